// Drives the dashboard's issue list merge (issue 26) in Debian's headless Chromium against
// a running Mesher server. Run by tests/dashboard_merge.rs:
//
//   node tests/dashboard/merge.mjs <base_url> <project_id> <token> <ingest_key> <screenshot.png>
//
// Three issues (2, 3 and 1 events). Two pages watch the project. On the first, at phone
// width and by the keyboard alone: tick two issues' checkboxes, "Merge 2 issues" into the
// first ticked; the merged row's count is the sum and the folded row is gone, on this page
// and live on the second; a third page showing the folded issue moves to the merged one;
// a later event of the folded issue counts on the merged row.
// Exit 0 with a one-line JSON summary, or 1 with the reason on stderr (a failed check, or
// any console error or warning or uncaught exception in either page). Every wait is
// bounded (WAIT); no fixed sleeps.

const WAIT = 10_000;
const CHROMIUM = process.env.MESHER_TEST_CHROMIUM || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const [base, project, token, ingestKey, screenshot] = process.argv.slice(2);
if (!screenshot) {
  process.stderr.write("usage: node tests/dashboard/merge.mjs <base_url> <project_id> <token> <ingest_key> <screenshot.png>\n");
  process.exit(2);
}

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (err) {
  process.stderr.write(`playwright-core is not installed (${err.message}): run npm ci in tests/dashboard (scripts/test.sh does)\n`);
  process.exit(1);
}

const problems = [];
const started = Date.now();

function watch(page, name) {
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") {
      problems.push(`${name}: console ${msg.type()}: ${msg.text()} (${msg.location().url}:${msg.location().lineNumber})`);
    }
  });
  page.on("pageerror", (err) => problems.push(`${name}: uncaught ${err.name}: ${err.message}`));
  page.on("crash", () => problems.push(`${name}: the page crashed`));
}

async function step(what, work) {
  try {
    return await work();
  } catch (err) {
    throw new Error(`${what}: ${String(err?.message ?? err).split("\n").slice(0, 4).join("\n  ")}`);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const tid = (id) => `[data-testid="${id}"]`;
const issueRow = (id) => `${tid("issue-row")}[data-issue-id="${id}"]`;
const visible = (page, selector, what) =>
  step(what, () => page.locator(selector).first().waitFor({ state: "visible", timeout: WAIT }));
const gone = (page, selector, what) =>
  step(what, () => page.locator(selector).first().waitFor({ state: "detached", timeout: WAIT }));
const countIs = (page, id, n, what) =>
  visible(page, `${issueRow(id)} ${tid("issue-events")}[data-count="${n}"]`, what);

async function call(method, path, credential, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${credential}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function ingest(event) {
  const r = await call("POST", "/api/v1/events", ingestKey, event);
  check(r.status === 202, `ingesting ${JSON.stringify(event)} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.issue_id;
}

async function open(browser, viewport, name, rest = "") {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  watch(page, name);
  await step(`${name}: open the project link`, () =>
    page.goto(`${base}/#project=${encodeURIComponent(project)}&token=${encodeURIComponent(token)}${rest}`, { timeout: WAIT }),
  );
  await visible(page, `${tid("connection-status")}[data-state="live"]`, `${name}: the view goes live`);
  return page;
}

/** Moves the keyboard's focus to `selector` by Tab alone (at most 200 presses). */
async function tabTo(page, selector, what) {
  for (let i = 0; i < 200; i++) {
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`${what}: Tab never reached ${selector}`);
}

async function run(browser) {
  const summary = {};
  const card = { message: "card declined", fingerprint: ["card"] };
  const payment = { message: "payment refused", fingerprint: ["payment"] };
  const disk = { message: "disk almost full", fingerprint: ["disk"], level: "warning" };
  const a = await ingest(card);
  await ingest(card);
  const b = await ingest(payment);
  await ingest(payment);
  await ingest(payment);
  const c = await ingest(disk);

  const phone = await open(browser, { width: 390, height: 844 }, "phone");
  const other = await open(browser, { width: 1280, height: 900 }, "desktop");
  // A third page has the issue that will be folded open.
  const viewer = await open(browser, { width: 1280, height: 900 }, "viewer", `&issue=${b}`);
  await visible(viewer, `${tid("issue-view")}[data-issue-id="${b}"]`, "viewer: the issue view opens");
  for (const page of [phone, other]) {
    await countIs(page, a, 2, "the first issue shows 2 events");
    await countIs(page, b, 3, "the second issue shows 3 events");
  }
  check(await phone.getByTestId("merge-bar").isHidden(), "the merge bar shows with nothing selected");

  // ---- By the keyboard: tick the card issue, then the payment issue; merge. --------------
  await tabTo(phone, `${issueRow(a)} ${tid("issue-select")}`, "the first checkbox");
  await phone.keyboard.press("Space");
  await visible(phone, tid("merge-bar"), "the merge bar shows once an issue is selected");
  const one = await phone.getByTestId("merge-button").getAttribute("aria-disabled");
  check(one === "true", "the merge button is enabled with one issue selected");
  await tabTo(phone, `${issueRow(b)} ${tid("issue-select")}`, "the second checkbox");
  await phone.keyboard.press("Space");
  const label = (await phone.getByTestId("merge-button").textContent()).trim();
  check(label === "Merge 2 issues", `the merge button says "${label}"`);
  const into = await phone.getByTestId("merge-into").inputValue();
  check(into === String(a), `the merge goes into issue ${into}, not the first selected ${a}`);
  await tabTo(phone, tid("merge-button"), "the merge button");
  await phone.keyboard.press("Enter");

  // ---- This page and the other: the sum, and the folded row gone. -----------------------
  for (const [page, name] of [[phone, "phone"], [other, "desktop"]]) {
    await gone(page, issueRow(b), `${name}: the folded issue leaves the list`);
    await countIs(page, a, 5, `${name}: the merged issue's count is the sum`);
    await visible(page, issueRow(c), `${name}: the issue not merged stays`);
  }
  await visible(viewer, `${tid("issue-view")}[data-issue-id="${a}"]`, "viewer: the view moves to the merged issue");
  await visible(phone, tid("merge-done"), "the page says what was merged");
  check(await phone.getByTestId("merge-bar").isHidden(), "the merge bar stays after the merge");
  const focused = await phone.evaluate(() => document.activeElement?.closest("[data-issue-id]")?.dataset.issueId);
  check(focused === String(a), `the keyboard is on issue ${focused}, not the merged one`);
  const folded = await call("GET", `/api/v1/issues/${b}`, token);
  check(folded.status === 404, `the folded issue answers ${folded.status}`);

  // ---- A later event of the folded issue counts on the merged row, on both pages. -------
  const landed = await ingest(payment);
  check(landed === a, `a later payment event landed in issue ${landed}, not ${a}`);
  for (const page of [phone, other]) await countIs(page, a, 6, "the later event counts on the merged issue");
  summary.merged_into = a;
  summary.folded = b;
  summary.count = 6;
  for (const page of [phone, other, viewer]) {
    check(await page.getByTestId("error-notice").isHidden(), `an error notice shows: ${await page.getByTestId("error-text").textContent()}`);
  }
  await step("screenshot", () => phone.screenshot({ path: screenshot, fullPage: false }));
  return summary;
}

let browser;
let code = 0;
const guard = setTimeout(() => {
  process.stderr.write("merge check: gave up after 100 s\n");
  process.exit(1);
}, 100_000);
try {
  browser = await step(`launch ${CHROMIUM}`, () =>
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS }),
  );
  const summary = await run(browser);
  if (problems.length) throw new Error(`the pages logged problems:\n  ${problems.join("\n  ")}`);
  process.stdout.write(`${JSON.stringify({ ok: true, ...summary, screenshot, ms: Date.now() - started })}\n`);
} catch (err) {
  code = 1;
  process.stderr.write(`merge check failed: ${err.message}\n`);
  if (problems.length && !String(err.message).includes("logged problems")) {
    process.stderr.write(`the pages also logged:\n  ${problems.join("\n  ")}\n`);
  }
  for (const ctx of browser?.contexts() ?? []) {
    for (const p of ctx.pages()) await p.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  }
} finally {
  clearTimeout(guard);
  await browser?.close().catch(() => {});
}
process.exit(code);

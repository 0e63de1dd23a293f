// Drives the dashboard's issue list (issue 25) in Debian's headless Chromium against a
// running Mesher server started with a small --rate-limit. Run by tests/dashboard_lists.rs:
//
//   node tests/dashboard/lists.mjs <base_url> <project_id> <token> <ingest_key> <rate_limit> <screenshot.png>
//
// 150 unresolved issues and one resolved; a bulk request over the rate limit. Then: the
// project view says how many events the limit refused; the list pages through the 150 with
// "Load more" and its count is the unresolved count, always; an issue resolved, archived or
// reopened by another client leaves or joins the is:unresolved list live; a regression
// joins it with a "regressed" mark, in the list and in the issue view; an issue resolved
// from the list leaves it, with a notice that can undo it. Exit 0 with a one-line JSON
// summary, or 1 with the reason on stderr (a failed check, or any console error or warning
// or uncaught exception in the page). Every wait is bounded (WAIT); no fixed sleeps.

const WAIT = 10_000;
const CHROMIUM = process.env.MESHER_TEST_CHROMIUM || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const [base, project, token, ingestKey, rateLimit, screenshot] = process.argv.slice(2);
if (!screenshot) {
  process.stderr.write(
    "usage: node tests/dashboard/lists.mjs <base_url> <project_id> <token> <ingest_key> <rate_limit> <screenshot.png>\n",
  );
  process.exit(2);
}

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (err) {
  process.stderr.write(
    `playwright-core is not installed (${err.message}): run npm ci in tests/dashboard (scripts/test.sh does)\n`,
  );
  process.exit(1);
}

const problems = [];
const started = Date.now();

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") {
      problems.push(`console ${msg.type()}: ${msg.text()} (${msg.location().url}:${msg.location().lineNumber})`);
    }
  });
  page.on("pageerror", (err) => problems.push(`uncaught ${err.name}: ${err.message}`));
  page.on("crash", () => problems.push("the page crashed"));
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
const until = (page, what, predicate, arg) =>
  step(what, () => page.waitForFunction(predicate, arg, { timeout: WAIT }));

/** A request with the ingest key or the token; the status and JSON body. */
async function call(method, path, credential, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${credential}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function bulk(events, want = 202) {
  const r = await call("POST", "/api/v1/events/bulk", ingestKey, events);
  check(r.status === want, `a bulk of ${events.length} answered ${r.status}, not ${want}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function ingest(event) {
  const r = await call("POST", "/api/v1/events", ingestKey, event);
  check(r.status === 202, `ingesting ${JSON.stringify(event)} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Another client (not the page) changes an issue's status. */
async function act(id, action) {
  const r = await call("POST", `/api/v1/issues/${id}/${action}`, token);
  check(r.status === 200, `${action} of issue ${id} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.issue;
}

async function unresolvedOnServer() {
  const r = await call("GET", `/api/v1/projects/${project}/stats?minutes=1`, token);
  check(r.status === 200, `GET stats answered ${r.status}`);
  return r.body.unresolved;
}

/** The list's note and the unresolved count say `n`, the same number. */
async function countsAre(page, n, what) {
  await until(
    page,
    `${what}: the unresolved count and the list's count should both be ${n}`,
    ([count, note, want]) =>
      document.querySelector(count)?.dataset.count === want &&
      document.querySelector(count)?.textContent.trim() === want &&
      document.querySelector(note)?.dataset.total === want &&
      document.querySelector(note)?.textContent.startsWith(`${want} issue`),
    [tid("issue-count"), tid("issues-note"), String(n)],
  );
}

const unresolvedRows = `${tid("issue-row")}[data-status="unresolved"]`;

async function rowCount(page, n, what) {
  await until(
    page,
    `${what}: the list should show ${n} unresolved rows`,
    ([sel, want]) => document.querySelectorAll(sel).length === want,
    [unresolvedRows, n],
  );
}

async function run(browser) {
  const summary = {};
  // ---- 150 unresolved issues, one resolved; a bulk refused by the rate limit. ----------
  const pad = (i) => String(i).padStart(3, "0");
  // Distinct words, not numbers: numbers are normalized away when grouping.
  const word = (i) => [...pad(i)].map((d) => "abcdefghij"[Number(d)]).join("");
  const many = Array.from({ length: 150 }, (_, i) => ({ message: `list issue ${word(i)}`, fingerprint: [`list-${i}`] }));
  const ids = [...(await bulk(many.slice(0, 100))).ids, ...(await bulk(many.slice(100))).ids];
  check(ids.length === 150, "150 events stored");
  const flaky = { message: "flaky nightly job", fingerprint: ["flaky"], level: "warning" };
  const flakyIssue = (await ingest(flaky)).issue_id;
  await act(flakyIssue, "resolve");
  check((await unresolvedOnServer()) === 150, "150 unresolved on the server");
  const limit = Number(rateLimit);
  const over = Array.from({ length: 100 }, (_, i) => ({ message: `burst ${i}` }));
  await bulk(over, 429);
  summary.refused = over.length;

  // ---- The project view: the refusals, and the list with its count. ---------------------
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  watch(page);
  await step("open the project link", () =>
    page.goto(`${base}/#project=${encodeURIComponent(project)}&token=${encodeURIComponent(token)}`, { timeout: WAIT }),
  );
  await visible(page, `${tid("connection-status")}[data-state="live"]`, "the view goes live");
  await visible(page, tid("rate-limit-notice"), "the project view tells of the refused events");
  const notice = (await page.getByTestId("rate-limit-notice").textContent()).trim();
  const expected = `100 events were refused by the rate limit in the last hour (limit ${limit.toLocaleString("en")}/min).`;
  check(notice === expected, `the rate-limit notice says "${notice}", not "${expected}"`);
  summary.rate_notice = notice;

  await rowCount(page, 100, "the first page");
  await countsAre(page, 150, "with 100 of 150 rows loaded");
  const note = (await page.getByTestId("issues-note").textContent()).trim();
  check(note === "150 issues · 100 shown", `the list's note says "${note}"`);
  await visible(page, tid("load-more"), "the list offers more");
  await page.getByTestId("load-more").click();
  await rowCount(page, 150, '"Load more" lists all 150');
  await step("the last page hides the button", () =>
    page.getByTestId("load-more").waitFor({ state: "hidden", timeout: WAIT }),
  );
  await countsAre(page, 150, "with every row loaded");
  const listed = await page.locator(unresolvedRows).evaluateAll((rows) => rows.map((r) => r.dataset.issueId));
  check(new Set(listed).size === 150, "an issue is listed twice");
  check(!listed.includes(String(flakyIssue)), "the resolved issue is in the is:unresolved list");

  // ---- Another client resolves, archives, reopens: the list follows live. ---------------
  const byOther = (await page.locator(unresolvedRows).nth(3).getAttribute("data-issue-id")) ?? "";
  await act(byOther, "resolve");
  await gone(page, issueRow(byOther), "an issue resolved by another client leaves the list");
  await countsAre(page, 149, "after another client resolved one");
  await rowCount(page, 149, "after another client resolved one");
  const archived = (await page.locator(unresolvedRows).nth(10).getAttribute("data-issue-id")) ?? "";
  await act(archived, "archive");
  await gone(page, issueRow(archived), "an archived issue leaves the list");
  await countsAre(page, 148, "after another client archived one");
  await act(archived, "unresolve");
  await visible(page, `${issueRow(archived)}[data-status="unresolved"]`, "an issue reopened by another client joins the list");
  await countsAre(page, 149, "after another client reopened one");
  check(!(await page.locator(issueRow(archived)).getAttribute("data-regressed")).includes("true"), "a reopened issue is marked regressed");

  // ---- A regression joins the list with its mark. ---------------------------------------
  await ingest(flaky);
  await visible(page, `${issueRow(flakyIssue)}[data-status="unresolved"][data-regressed="true"]`, "the regressed issue joins the list");
  await visible(page, `${issueRow(flakyIssue)} ${tid("regressed-mark")}`, 'the row shows the "regressed" mark');
  const mark = (await page.locator(`${issueRow(flakyIssue)} ${tid("regressed-mark")}`).textContent()).trim();
  check(mark === "regressed", `the mark says "${mark}"`);
  await countsAre(page, 150, "after the regression");
  const others = await page.locator(`${tid("issue-row")}[data-regressed="true"]`).count();
  check(others === 1, `${others} rows are marked regressed, not 1`);
  // Its issue view carries the mark too.
  await page.locator(`${issueRow(flakyIssue)} ${tid("issue-link")}`).click();
  await visible(page, `${tid("issue-view")}[data-issue-id="${flakyIssue}"]`, "the issue view opens");
  await visible(page, tid("issue-regressed"), 'the issue view shows the "regressed" mark');
  await page.getByTestId("back-link").click();
  await visible(page, tid("list-view"), "back on the list");

  // ---- Resolved from the list: it leaves at once, and can be undone. --------------------
  const mine = (await page.locator(unresolvedRows).nth(1).getAttribute("data-issue-id")) ?? "";
  await page.locator(issueRow(mine)).getByTestId("resolve-button").click();
  await gone(page, issueRow(mine), "the issue resolved here leaves the list");
  await visible(page, `${tid("list-undo")}[data-issue-id="${mine}"]`, "the list says what was resolved");
  await countsAre(page, 149, "after resolving one here");
  check((await unresolvedOnServer()) === 149, "the server does not count 149 unresolved");
  await page.locator(`${tid("list-undo")} ${tid("unresolve-button")}`).click();
  await visible(page, `${issueRow(mine)}[data-status="unresolved"]`, "undo brings it back");
  await countsAre(page, 150, "after undoing");
  // The regressed issue, resolved from its row, loses its mark and leaves.
  await page.locator(issueRow(flakyIssue)).getByTestId("resolve-button").click();
  await gone(page, issueRow(flakyIssue), "the regressed issue, resolved, leaves the list");
  await countsAre(page, 149, "at the end");
  const server = await unresolvedOnServer();
  check(server === 149, `the server counts ${server} unresolved, the page 149`);
  summary.unresolved = server;
  summary.rows = await page.locator(unresolvedRows).count();
  check(summary.rows === 149, `${summary.rows} rows at the end`);
  check(await page.getByTestId("error-notice").isHidden(), `an error notice shows: ${await page.getByTestId("error-text").textContent()}`);
  await step("screenshot", () => page.screenshot({ path: screenshot, fullPage: false }));
  await ctx.close();
  return summary;
}

let browser;
let code = 0;
const guard = setTimeout(() => {
  process.stderr.write("lists check: gave up after 100 s\n");
  process.exit(1);
}, 100_000);
try {
  browser = await step(`launch ${CHROMIUM}`, () =>
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS }),
  );
  const summary = await run(browser);
  if (problems.length) throw new Error(`the page logged problems:\n  ${problems.join("\n  ")}`);
  process.stdout.write(`${JSON.stringify({ ok: true, ...summary, screenshot, ms: Date.now() - started })}\n`);
} catch (err) {
  code = 1;
  process.stderr.write(`lists check failed: ${err.message}\n`);
  if (problems.length && !String(err.message).includes("logged problems")) {
    process.stderr.write(`the page also logged:\n  ${problems.join("\n  ")}\n`);
  }
  for (const ctx of browser?.contexts() ?? []) {
    for (const p of ctx.pages()) await p.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  }
} finally {
  clearTimeout(guard);
  await browser?.close().catch(() => {});
}
process.exit(code);

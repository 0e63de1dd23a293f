// Drives the dashboard (GET /) in Debian's headless Chromium, as a user would, against a
// running Mesher server. Run by tests/dashboard.rs:
//
//   node tests/dashboard/check.mjs <base_url> <project_id> <token> <ingest_key> <screenshot.png>
//
// Exit 0 with a one-line JSON summary on stdout, or exit 1 with the reason on stderr: a
// failed check, or any console error or warning or uncaught exception in the page. Every
// wait is bounded (WAIT); there are no fixed sleeps.

const WAIT = 10_000;
const CHROMIUM = process.env.MESHER_TEST_CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const [base, project, token, ingestKey, screenshot] = process.argv.slice(2);
if (!screenshot) {
  process.stderr.write(
    "usage: node tests/dashboard/check.mjs <base_url> <project_id> <token> <ingest_key> <screenshot.png>\n",
  );
  process.exit(2);
}
const mobileShot = screenshot.replace(/(\.png)?$/i, "-mobile.png");
const issueShot = screenshot.replace(/(\.png)?$/i, "-issue.png");
const issueMobileShot = screenshot.replace(/(\.png)?$/i, "-issue-mobile.png");
const PYTHON = process.env.MESHER_TEST_PYTHON || "python3";
const WEBAPP = new URL("../sentry/webapp.py", import.meta.url).pathname;

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (err) {
  process.stderr.write(
    `playwright-core is not installed (${err.message}): run npm ci in tests/dashboard (scripts/test.sh does)\n`,
  );
  process.exit(1);
}

const problems = []; // console errors and warnings, page errors
const started = Date.now();

function watch(page, name) {
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") {
      const at = msg.location();
      problems.push(`${name}: console ${msg.type()}: ${msg.text()} (${at.url}:${at.lineNumber})`);
    }
  });
  page.on("pageerror", (err) => problems.push(`${name}: uncaught ${err.name}: ${err.message}`));
  page.on("crash", () => problems.push(`${name}: the page crashed`));
}

/// Runs one step; a failure names the step (Playwright's call log is cut to its first lines).
async function step(what, work) {
  try {
    return await work();
  } catch (err) {
    const detail = String(err?.message ?? err).split("\n").slice(0, 4).join("\n  ");
    throw new Error(`${what}: ${detail}`);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const tid = (id) => `[data-testid="${id}"]`;

async function visible(page, selector, what) {
  await step(what, () => page.locator(selector).first().waitFor({ state: "visible", timeout: WAIT }));
}

async function until(page, what, predicate, arg) {
  await step(what, () => page.waitForFunction(predicate, arg, { timeout: WAIT }));
}

async function ingest(message, level, environment = "production") {
  const res = await fetch(`${base}/api/v1/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ingestKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ message, level, environment }),
  });
  const body = await res.json().catch(() => null);
  check(res.status === 202, `ingesting "${message}" answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

async function issueStatus(id) {
  const res = await fetch(`${base}/api/v1/issues/${id}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const body = await res.json();
  check(res.ok, `GET /api/v1/issues/${id} answered ${res.status}: ${JSON.stringify(body)}`);
  return body.issue.status;
}

/// Runs the real Python SDK's failing web app (tests/sentry/webapp.py) for `n` requests;
/// the ids of the events it sent, oldest first.
async function pythonApp(n) {
  const { execFile } = await import("node:child_process");
  const dsn = new URL(base);
  dsn.username = ingestKey;
  dsn.pathname = `/${project}`;
  const out = await new Promise((resolve, reject) =>
    execFile(PYTHON, [WEBAPP, dsn.href, String(n)], { timeout: WAIT }, (err, stdout, stderr) =>
      err ? reject(new Error(`${PYTHON} webapp.py failed: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
  const ids = out.split(/\s+/).filter(Boolean);
  check(ids.length === n && ids.every((id) => /^[0-9a-f]{32}$/.test(id)), `webapp.py printed ${JSON.stringify(out)}`);
  return ids;
}

async function storedEvent(id) {
  const res = await fetch(`${base}/api/v1/projects/${project}/events/${id}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const body = await res.json();
  check(res.ok, `GET the event ${id} answered ${res.status}: ${JSON.stringify(body)}`);
  return body.event;
}

async function texts(page, selector) {
  return (await page.locator(selector).allTextContents()).map((t) => t.replace(/\s+/g, " ").trim());
}

const feedRow = (text) => `${tid("feed-row")}:has-text(${JSON.stringify(text)})`;
const issueRow = (id) => `${tid("issue-row")}[data-issue-id="${id}"]`;

async function countText(page) {
  return (await page.locator(tid("issue-count")).textContent()).trim();
}

async function waitCount(page, n, what) {
  await until(
    page,
    `${what}: the unresolved count should become ${n}`,
    ([sel, want]) => document.querySelector(sel)?.textContent.trim() === want,
    [tid("issue-count"), String(n)],
  );
}

async function noHorizontalScroll(page, what) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  check(scroll <= width, `${what}: the page is ${scroll} px wide in a ${width} px window`);
}

async function run(browser) {
  const summary = {};

  // ---- Desktop: type the project and token, connect. -----------------------------------
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Every stream socket goes through this proxy, so the test can cut one and hold the next.
  const sockets = [];
  let gate = null;
  let socketArrived = () => {};
  await desktop.routeWebSocket(/\/stream\/projects\//, async (ws) => {
    sockets.push(ws);
    socketArrived();
    if (gate) await gate.promise;
    ws.connectToServer();
  });
  const page = await desktop.newPage();
  watch(page, "desktop");
  const response = await step("open the page", () => page.goto(`${base}/`, { timeout: WAIT }));
  check(response.ok(), `GET / answered ${response.status()}`);
  check(
    (response.headers()["content-security-policy"] ?? "").includes("script-src 'self'"),
    "GET / has no strict Content-Security-Policy",
  );
  await visible(page, tid("connect-button"), "the connect form shows");
  await page.getByTestId("project-input").fill(project);
  await page.getByTestId("token-input").fill(token);
  await page.getByTestId("connect-button").click();
  await visible(page, `${tid("connection-status")}[data-state="live"]`, "the view goes live");
  check(
    (await page.getByTestId("connection-status").textContent()).trim() === "live",
    "the connection indicator does not say live",
  );
  check(sockets.length === 1, `expected one stream socket, saw ${sockets.length}`);
  check(!sockets[0].url().includes(token), "the token is in the stream's URL (it goes as the first message)");
  check(
    !new URL(sockets[0].url()).searchParams.has("since"),
    "the first connection should not ask for a replay",
  );

  // ---- An event appears in the feed and in the issue list. -----------------------------
  const first = await ingest("payment failed for order 1", "error", "production");
  await visible(page, feedRow("payment failed for order 1"), "the first event appears in the feed");
  const row = page.locator(feedRow("payment failed for order 1")).first();
  check((await row.getAttribute("data-level")) === "error", "the feed row's level is not error");
  check(/^\d+$/.test((await row.getAttribute("data-seq")) ?? ""), "the feed row has no data-seq");
  check((await row.textContent()).includes("production"), "the feed row does not show the environment");
  await visible(page, `${issueRow(first.issue_id)}[data-status="unresolved"]`, "its issue appears in the list");
  await waitCount(page, 1, "after the first issue");
  await until(
    page,
    "the new issue counts 1 event",
    (sel) => document.querySelector(sel)?.textContent.trim() === "1 event",
    `${issueRow(first.issue_id)} ${tid("issue-events")}`,
  );
  // A second event of the same issue: the live count goes up.
  const again = await ingest("payment failed for order 2", "error", "production");
  check(again.issue_id === first.issue_id, "the two payment failures should be one issue");
  await visible(page, feedRow("payment failed for order 2"), "the second event appears in the feed");
  await until(
    page,
    "the issue's live count becomes 2",
    (sel) => document.querySelector(sel)?.textContent.trim() === "2 events",
    `${issueRow(first.issue_id)} ${tid("issue-events")}`,
  );
  const order = await page.locator(tid("feed-row")).evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
  check(order.length === 2 && order[0] > order[1], `the feed is not newest first: seqs ${order}`);

  // ---- Level filter: only fatal events. ------------------------------------------------
  await page.getByTestId("level-filter").selectOption("fatal");
  await visible(
    page,
    `${tid("filter-status")}[data-state="applied"][data-level="fatal"]`,
    "the server confirms the fatal filter (filters_updated)",
  );
  const other = await ingest("inventory sync timed out", "error", "production");
  const fatal = await ingest("database connection lost", "fatal", "production");
  await visible(page, feedRow("database connection lost"), "the fatal event appears in the feed");
  // The error was stored before the fatal one, so it would have arrived first.
  check((await page.locator(feedRow("inventory sync timed out")).count()) === 0, "a filtered-out error event is in the feed");
  const levels = await page.locator(tid("feed-row")).evaluateAll((rows) => rows.map((r) => r.dataset.level));
  check(levels.length > 0 && levels.every((l) => l === "fatal"), `the filtered feed shows levels ${levels}`);
  // Issue messages are not filtered: the error's new issue is listed all the same.
  await visible(page, issueRow(other.issue_id), "the filtered-out event's new issue is listed");
  await visible(page, issueRow(fatal.issue_id), "the fatal event's issue is listed");
  await waitCount(page, 3, "after three issues");

  // ---- Resolve the first issue; reopen it with the keyboard; resolve again. ------------
  const top = page.locator(tid("issue-row")).first();
  const topId = await top.getAttribute("data-issue-id");
  const before = Number(await countText(page));
  await top.getByTestId("resolve-button").click();
  // It leaves the is:unresolved list at once; the notice above the list can undo it.
  await step("the resolved issue leaves the is:unresolved list", () =>
    page.locator(issueRow(topId)).waitFor({ state: "detached", timeout: WAIT }),
  );
  await visible(page, `${tid("list-undo")}[data-issue-id="${topId}"]`, "the list says what was resolved");
  await waitCount(page, before - 1, "after resolving");
  check((await issueStatus(topId)) === "resolved", "the server does not have the issue resolved");
  // Focus moves to the button that undoes it.
  const focused = await page.evaluate(() => document.activeElement?.dataset?.testid ?? "");
  check(focused === "unresolve-button", `after resolving, the focus is on "${focused}", not the notice's unresolve button`);
  await page.keyboard.press("Enter");
  await visible(page, `${issueRow(topId)}[data-status="unresolved"]`, "Enter on Unresolve reopens the issue");
  await waitCount(page, before, "after reopening");
  await page.locator(issueRow(topId)).getByTestId("resolve-button").click();
  await step("resolving again", () => page.locator(issueRow(topId)).waitFor({ state: "detached", timeout: WAIT }));
  await waitCount(page, before - 1, "after resolving again");
  summary.resolved_issue = Number(topId);

  // ---- The stream drops; an event arrives meanwhile; the view catches up once. ---------
  const lastSeq = Math.max(...(await page.locator(tid("feed-row")).evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)))));
  let open;
  gate = { promise: new Promise((resolve) => (open = resolve)) };
  sockets.at(-1).close({ code: 1012, reason: "test: service restart" });
  await visible(page, `${tid("connection-status")}[data-state="reconnecting"]`, "the indicator says reconnecting");
  const missed = await ingest("disk full on worker 3", "fatal", "production");
  await step("the view opens a new stream", async () => {
    if (sockets.length >= 2) return;
    let timer;
    await Promise.race([
      new Promise((resolve) => (socketArrived = resolve)),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no second stream connection within ${WAIT} ms`)), WAIT))),
    ]).finally(() => clearTimeout(timer));
  });
  const again2 = new URL(sockets.at(-1).url());
  const since = Number(again2.searchParams.get("since"));
  check(since >= lastSeq, `the reconnection asks for since=${again2.searchParams.get("since")}, below the last seq seen (${lastSeq})`);
  check(again2.searchParams.get("level") === "fatal", "the reconnection does not keep the level filter");
  open();
  await visible(page, `${tid("connection-status")}[data-state="live"]`, "the view is live again");
  await visible(page, feedRow("disk full on worker 3"), "the event stored during the outage is replayed into the feed");
  const copies = await page.locator(`${tid("feed-row")}[data-seq="${await page.locator(feedRow("disk full on worker 3")).first().getAttribute("data-seq")}"]`).count();
  check(copies === 1, `the replayed event shows ${copies} times`);
  const seqs = await page.locator(tid("feed-row")).evaluateAll((rows) => rows.map((r) => r.dataset.seq));
  check(new Set(seqs).size === seqs.length, `the feed has duplicate seqs: ${seqs}`);
  summary.reconnected_since = since;
  summary.missed_issue = missed.issue_id;

  // ---- A lagged message shows a dismissible notice. ------------------------------------
  // The proxy speaks for the server here: a browser that reads its socket never lags.
  sockets.at(-1).send(JSON.stringify({ type: "lagged", dropped: 7 }));
  await visible(page, tid("lagged-notice"), "the lagged notice shows");
  const notice = (await page.getByTestId("lagged-notice").textContent()).replace(/\s+/g, " ");
  check(notice.includes("7 messages were dropped because this view fell behind"), `the lagged notice says: ${notice}`);
  await page.getByTestId("lagged-dismiss").click();
  await step("the lagged notice can be dismissed", () =>
    page.getByTestId("lagged-notice").waitFor({ state: "hidden", timeout: WAIT }),
  );

  // ---- Chart and notices. ---------------------------------------------------------------
  await until(
    page,
    "the chart counts the events",
    (sel) => Number(document.querySelector(sel)?.dataset.total) >= 3 && document.querySelector(`${sel} rect`) !== null,
    tid("chart"),
  );
  check(await page.getByTestId("lagged-notice").isHidden(), "a lagged notice shows without a lagged message");
  check(await page.getByTestId("error-notice").isHidden(), `an error notice shows: ${await page.getByTestId("error-text").textContent()}`);
  await noHorizontalScroll(page, "desktop");
  summary.feed_rows = await page.locator(tid("feed-row")).count();
  summary.issue_rows = await page.locator(tid("issue-row")).count();
  summary.unresolved = Number(await countText(page));
  summary.chart_total = Number(await page.getByTestId("chart").getAttribute("data-total"));
  await step("desktop screenshot", () => page.screenshot({ path: screenshot, fullPage: true }));

  // ---- Environment filter (any level): only staging events. ----------------------------
  await page.getByTestId("level-filter").selectOption("");
  await page.getByTestId("env-filter").fill("staging");
  await visible(
    page,
    `${tid("filter-status")}[data-state="applied"][data-level=""][data-environment="staging"]`,
    "the server confirms the environment filter",
  );
  await ingest("cache stampede on product page", "error", "production");
  await ingest("feature flag service unreachable", "warning", "staging");
  await visible(page, feedRow("feature flag service unreachable"), "the staging event appears in the feed");
  check((await page.locator(feedRow("cache stampede on product page")).count()) === 0, "a production event passed the staging filter");
  const envs = await page.locator(`${tid("feed-row")} .env`).allTextContents();
  check(envs.length > 0 && envs.every((e) => e === "staging"), `the staging feed shows environments ${envs}`);
  await waitCount(page, summary.unresolved + 2, "after two more issues");
  summary.unresolved += 2;

  // ---- More issues than the list holds: the count is the server's, not the list's. -----
  const letters = (i) => [...String(i)].map((d) => "abcdefghij"[Number(d)]).join("");
  for (let i = 0; i < 101; i++) await ingest(`quota exceeded for tenant ${letters(i)}x`, "error");
  summary.unresolved += 101;

  // ---- Phone width: a link with the fragment connects without typing. -----------------
  const phone = await browser.newContext({ viewport: { width: 375, height: 812 } });
  const mobile = await phone.newPage();
  watch(mobile, "mobile");
  await step("open the project link", () =>
    mobile.goto(`${base}/#project=${encodeURIComponent(project)}&token=${encodeURIComponent(token)}`, { timeout: WAIT }),
  );
  await visible(mobile, `${tid("connection-status")}[data-state="live"]`, "the link goes live without typing");
  check(!mobile.url().includes(token), "the token stays in the address bar");
  check((await mobile.getByTestId("project-input").inputValue()) === project, "the project field is not filled from the link");
  await until(
    mobile,
    "the linked view lists the unresolved issues",
    ([sel, n]) => document.querySelectorAll(sel).length >= n,
    [`${tid("issue-row")}[data-status="unresolved"]`, Math.min(summary.unresolved, 100)],
  );
  await waitCount(mobile, summary.unresolved, "on the phone, past the list's 100");
  // "Load more", from the keyboard: the next page (the Link header's cursor) under the first.
  const unresolvedRows = `${tid("issue-row")}[data-status="unresolved"]`;
  check(summary.unresolved > 100, `only ${summary.unresolved} unresolved issues: nothing to load`);
  check((await mobile.locator(unresolvedRows).count()) === 100, "the first page holds 100 issues");
  await visible(mobile, tid("load-more"), "the list offers more");
  await mobile.getByTestId("load-more").focus();
  await mobile.keyboard.press("Enter");
  await until(
    mobile,
    `"Load more" lists all ${summary.unresolved} unresolved issues`,
    ([sel, n]) => document.querySelectorAll(sel).length === n,
    [unresolvedRows, summary.unresolved],
  );
  await step("the last page hides the button", () =>
    mobile.getByTestId("load-more").waitFor({ state: "hidden", timeout: WAIT }),
  );
  const focusedClass = await mobile.evaluate(() => document.activeElement?.className ?? "");
  check(focusedClass === "issue-title", `after the last page the keyboard is on ${focusedClass || "nothing"}`);
  const ids = await mobile.locator(unresolvedRows).evaluateAll((rows) => rows.map((r) => r.getAttribute("data-issue-id")));
  check(new Set(ids).size === ids.length, "an issue is listed twice");
  // The chart shows what the project stored, not what this page happened to receive.
  const stats = await (
    await fetch(`${base}/api/v1/projects/${project}/stats?minutes=30`, { headers: { Authorization: `Bearer ${token}` } })
  ).json();
  const stored = stats.minutes.reduce((n, m) => n + m.total, 0);
  await until(
    mobile,
    `the phone's chart counts the ${stored} stored events`,
    ([sel, n]) => Number(document.querySelector(sel)?.dataset.total) === n,
    [tid("chart"), stored],
  );
  await visible(mobile, feedRow("disk full on worker 3"), "the linked view shows recent events");
  await noHorizontalScroll(mobile, "at 375 px");
  // Keyboard: Tab reaches the controls, and focus is visible.
  await mobile.getByTestId("level-filter").focus();
  const outline = await mobile.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(outline !== "none", "the focused control has no visible outline");
  await step("phone screenshot", () => mobile.screenshot({ path: mobileShot, fullPage: true }));
  summary.mobile_issue_rows = await mobile.locator(tid("issue-row")).count();
  summary.mobile_feed_rows = await mobile.locator(tid("feed-row")).count();

  await phone.close();
  await desktop.close();
  await issueView(browser, summary);
  return summary;
}

/// SPEC §6's issue view: a Python SDK event opened by its deep link, read as a developer
/// would, stepped through, updated live; the list's search and sort; Back.
async function issueView(browser, summary) {
  const [olderId, newerId] = await pythonApp(2);
  const newer = await storedEvent(newerId);
  const issueId = newer.issue_id;
  check((await storedEvent(olderId)).issue_id === issueId, "the two web app failures should be one issue");

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  watch(page, "issue view");
  await step("open the issue's deep link", () =>
    page.goto(`${base}/#project=${project}&token=${encodeURIComponent(token)}&issue=${issueId}&event=${newerId}`, { timeout: WAIT }),
  );
  await visible(page, `${tid("event-content")}[data-event-id="${newerId}"] ${tid("event-body")}`, "the linked event shows");
  check(!page.url().includes(token), "the token stays in the address bar");
  check(page.url().includes(`issue=${issueId}`) && page.url().includes(`event=${newerId}`), `the address lost the view: ${page.url()}`);
  check(await page.getByTestId("list-view").isHidden(), "the list shows beside the issue view");
  check((await page.getByTestId("issue-title").textContent()).includes("RuntimeError: checkout failed"), "the issue's title is missing");
  await until(page, "the issue counts its 2 events", (sel) => document.querySelector(sel)?.textContent === "2", tid("issue-event-count"));
  check((await page.getByTestId("issue-view-status").textContent()) === "unresolved", "the issue's status is not shown");
  check((await page.locator(`${tid("issue-actions")} ${tid("resolve-button")}`).count()) === 1, "the issue view has no Resolve action");
  // Discard asks twice: one click only arms it.
  await page.locator(`${tid("issue-actions")} ${tid("discard-button")}`).click();
  await until(page, "Discard asks for confirmation", (sel) => document.querySelector(sel)?.textContent === "Confirm discard", `${tid("issue-actions")} ${tid("discard-button")}`);
  check((await issueStatus(issueId)) === "unresolved", "one click on Discard discarded the issue");

  // The chain, outermost first, each with its in-app frames and their source.
  const types = await page.locator(tid("exception-type")).allTextContents();
  check(types.join(",") === "RuntimeError,KeyError", `the exception chain shows ${types}`);
  const appFrames = await texts(page, `${tid("frame")}[data-in-app="true"] > summary`);
  check(appFrames.some((f) => f.includes("webapp.py in checkout at line")), `in-app frames: ${appFrames}`);
  check(appFrames.some((f) => f.includes("webapp.py in price_of at line")), `in-app frames: ${appFrames}`);
  const libFrames = await page.locator(`${tid("frame")}[data-in-app="false"]`).count();
  const crash = await texts(page, tid("crash-line"));
  check(crash.some((l) => l.includes('raise RuntimeError("checkout failed: unknown product") from e')), `crash lines: ${crash}`);
  check(crash.some((l) => l.includes('return prices[sku] * cart["count"]')), `crash lines: ${crash}`);
  const lines = await page.locator(`${tid("context-lines")} li`).count();
  check(lines >= 10, `only ${lines} context lines show`);
  const vars = await texts(page, `${tid("frame-vars")} tr[data-key="sku"] td`);
  check(vars.includes("'pear'"), `the local variable sku shows ${vars}`);
  // Breadcrumbs, request, user, tags, contexts, release, SDK.
  check((await texts(page, tid("breadcrumb"))).some((b) => b.includes("cart loaded")), "the breadcrumb is missing");
  check((await page.getByTestId("request-url").textContent()) === "https://shop.example/checkout", "the request URL is missing");
  check((await texts(page, `${tid("request-query")} tr[data-key="cart"] td`)).includes("1"), "the request's query is missing");
  check((await texts(page, `${tid("request-headers")} tr[data-key="User-Agent"] td`)).some((v) => v.includes("Chrome/120.0")), "the request headers are missing");
  check((await texts(page, `${tid("event-user-table")} tr[data-key="email"] td`)).includes("ada@example.com"), "the user is missing");
  check((await texts(page, `${tid("event-tags-table")} tr[data-key="region"] td`)).includes("eu-west"), "the event's tags are missing");
  check((await texts(page, `${tid("context")}[data-name="runtime"] tr[data-key="name"] td`)).includes("CPython"), "the runtime context is missing");
  const facts = await texts(page, `${tid("event-summary")} td`);
  check(facts.includes("shop@1.4.2") && facts.includes("production"), `release/environment missing: ${facts}`);
  check(facts.some((f) => f.startsWith("sentry.python 2.")), `the SDK is missing: ${facts}`);
  // The tag breakdown counts both events.
  await visible(page, `${tid("tag-key")}[data-key="region"] ${tid("tag-value")}[data-value="eu-west"][data-count="2"]`, "the tag breakdown counts region=eu-west twice");
  summary.issue_view = { issue: issueId, exceptions: types.length, in_app_frames: appFrames.length, library_frames: libFrames, context_lines: lines };

  // Older: one step back, and the address follows (replaced, so Back still leaves).
  check(await page.getByTestId("newer-button").isDisabled(), "Newer is enabled on the newest event");
  await page.getByTestId("older-button").click();
  await visible(page, `${tid("event-content")}[data-event-id="${olderId}"] ${tid("event-body")}`, "Older shows the older event");
  check(page.url().includes(`event=${olderId}`), `the address does not name the older event: ${page.url()}`);
  check(await page.getByTestId("older-button").isDisabled(), "Older is enabled on the oldest event");
  check((await texts(page, `${tid("request-query")} tr[data-key="cart"] td`)).includes("0"), "the older event shows the newer one's request");
  await step("desktop screenshot of the issue view", () => page.screenshot({ path: issueShot, fullPage: true }));

  // A new event of the issue arrives live: the count grows, and Newest shows it.
  const [liveId] = await pythonApp(1);
  await until(page, "the issue's count grows to 3 live", (sel) => document.querySelector(sel)?.textContent === "3", tid("issue-event-count"));
  await visible(page, tid("new-events"), "the view says a newer event arrived");
  await page.getByTestId("newest-button").click();
  await visible(page, `${tid("event-content")}[data-event-id="${liveId}"] ${tid("event-body")}`, "Newest shows the event that arrived live");
  check(!page.url().includes("event="), `the newest is not pinned in the address: ${page.url()}`);
  // Keyboard: j steps to the older event.
  await page.getByTestId("issue-title").focus();
  await page.keyboard.press("j");
  await visible(page, `${tid("event-content")}[data-event-id="${newerId}"]`, "j steps to the older event");

  // Back to the list, then into the issue by its link, and out with the browser's Back.
  await page.getByTestId("back-link").click();
  await visible(page, tid("list-view"), "the back link returns to the list");
  check(await page.getByTestId("issue-view").isHidden(), "the issue view stays open on the list");
  const link = page.locator(`${issueRow(issueId)} ${tid("issue-link")}`);
  await visible(page, `${issueRow(issueId)} ${tid("issue-link")}`, "the issue is listed");
  await link.focus();
  await page.keyboard.press("Enter");
  await visible(page, `${tid("event-content")}[data-event-id="${liveId}"]`, "Enter on the issue's link opens it on its newest event");
  await step("the browser's Back", () => page.goBack({ timeout: WAIT }));
  await visible(page, tid("list-view"), "Back returns to the list");
  check(!page.url().includes("issue="), `after Back the address still names the issue: ${page.url()}`);

  // Search from the box (kept in the address) and sort.
  await page.getByTestId("search-input").fill("is:unresolved region:eu-west");
  await page.getByTestId("search-input").press("Enter");
  await until(
    page,
    "the search lists just the web app's issue",
    ([sel, id]) => {
      const rows = [...document.querySelectorAll(sel)];
      return rows.length === 1 && rows[0].dataset.issueId === String(id);
    },
    [tid("issue-row"), issueId],
  );
  check(decodeURIComponent(page.url()).replace(/\+/g, " ").includes("query=is:unresolved region:eu-west"), `the search is not in the address: ${page.url()}`);
  await page.getByTestId("search-input").fill('"quota exceeded"');
  await page.getByTestId("search-input").press("Enter");
  await until(
    page,
    "a text search lists the quota issues",
    (sel) => {
      const rows = [...document.querySelectorAll(sel)];
      return rows.length > 1 && rows.every((r) => r.textContent.includes("quota exceeded"));
    },
    tid("issue-row"),
  );
  await page.getByTestId("search-input").fill("is:unresolved");
  await page.getByTestId("sort-select").selectOption("event_count");
  await page.getByTestId("search-input").press("Enter");
  await until(
    page,
    "sorted by events, the most frequent issue comes first",
    ([sel, id]) => document.querySelector(sel)?.dataset.issueId === String(id),
    [tid("issue-row"), issueId],
  );
  check(page.url().includes("sort=event_count"), `the sort is not in the address: ${page.url()}`);
  check(await page.getByTestId("search-error").isHidden(), "a search error shows");
  check(await page.getByTestId("error-notice").isHidden(), `an error notice shows: ${await page.getByTestId("error-text").textContent()}`);
  await ctx.close();

  // Phone width: the deep link (the token kept by this browser) reads without sideways scrolling.
  const phone = await browser.newContext({ viewport: { width: 375, height: 812 } });
  const mobile = await phone.newPage();
  watch(mobile, "issue view, phone");
  await step("open the issue's deep link on a phone", () =>
    mobile.goto(`${base}/#project=${project}&token=${encodeURIComponent(token)}&issue=${issueId}&event=${olderId}`, { timeout: WAIT }),
  );
  await visible(mobile, `${tid("event-content")}[data-event-id="${olderId}"] ${tid("event-body")}`, "the phone shows the event");
  await noHorizontalScroll(mobile, "issue view at 375 px");
  await step("phone screenshot of the issue view", () => mobile.screenshot({ path: issueMobileShot, fullPage: true }));
  await phone.close();
}


let browser;
let code = 0;
const guard = setTimeout(() => {
  process.stderr.write("dashboard check: gave up after 110 s\n");
  process.exit(1);
}, 110_000);
try {
  browser = await step(`launch ${CHROMIUM}`, () =>
    // A plain launch runs on a new, empty temporary profile that Playwright removes.
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS }),
  );
  const summary = await run(browser);
  if (problems.length) throw new Error(`the page logged problems:\n  ${problems.join("\n  ")}`);
  process.stdout.write(
    `${JSON.stringify({ ok: true, ...summary, screenshot, mobile_screenshot: mobileShot, issue_screenshot: issueShot, issue_mobile_screenshot: issueMobileShot, ms: Date.now() - started })}\n`,
  );
} catch (err) {
  code = 1;
  process.stderr.write(`dashboard check failed: ${err.message}\n`);
  if (problems.length && !String(err.message).includes("logged problems")) {
    process.stderr.write(`the page also logged:\n  ${problems.join("\n  ")}\n`);
  }
  // A picture of the failure, for whoever reads the log.
  for (const ctx of browser?.contexts() ?? []) {
    for (const p of ctx.pages()) {
      await p.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
    }
  }
} finally {
  clearTimeout(guard);
  await browser?.close().catch(() => {});
}
process.exit(code);

// Drives the dashboard with an account (docs/PROTOCOL.md "People") in Debian's headless
// Chromium against a running Mesher server. Run by tests/dashboard.rs:
//
//   node tests/dashboard/accounts.mjs <base_url> <project_id> <project_name> <ingest_key> <email> <password>
//
// Sign in through the form (a wrong password first) → the overview lists the project with
// its unresolved count, which moves live → open it → the live view (session cookie, no
// token) shows an event sent afterwards → sign out → the sign-in form; the old cookie is
// refused. Exit 0 with a one-line JSON summary, or 1 with the reason on stderr (a failed
// check, or any console error or warning or uncaught exception in the page).

const WAIT = 10_000;
const CHROMIUM = process.env.MESHER_TEST_CHROMIUM || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const [base, project, projectName, ingestKey, email, password] = process.argv.slice(2);
if (!password) {
  process.stderr.write("usage: node tests/dashboard/accounts.mjs <base_url> <project_id> <project_name> <ingest_key> <email> <password>\n");
  process.exit(2);
}

const { chromium } = await import("playwright-core");

const problems = [];
// The wrong password's 401 is expected: Chromium logs the failed request.
let expect401 = false;
const started = Date.now();

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() !== "error" && msg.type() !== "warning") return;
    if (expect401 && msg.text().includes("status of 401")) return;
    problems.push(`console ${msg.type()}: ${msg.text()} (${msg.location().url})`);
  });
  page.on("pageerror", (err) => problems.push(`uncaught ${err.name}: ${err.message}`));
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
const visible = (page, selector, what) =>
  step(what, () => page.locator(selector).first().waitFor({ state: "visible", timeout: WAIT }));
const hiddenNow = (page, selector, what) =>
  step(what, () => page.locator(selector).first().waitFor({ state: "hidden", timeout: WAIT }));

async function ingest(message) {
  const res = await fetch(`${base}/api/v1/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ingestKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ message, level: "error" }),
  });
  check(res.status === 202, `ingesting "${message}" answered ${res.status}`);
}

async function run(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  watch(page);
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));

  await step("open the page", () => page.goto(`${base}/`, { timeout: WAIT }));
  await visible(page, tid("signin-form"), "the sign-in form shows");
  // The id/token form stays for project links; the project's views wait.
  await hiddenNow(page, tid("list-view"), "no project view before signing in");

  // ---- A wrong password: the server's message in the alert. ---------------------------
  expect401 = true;
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByLabel("Password").press("Enter");
  const alert = page.locator(`${tid("signin-error")}[role="alert"]`);
  await visible(page, tid("signin-error"), "a wrong password is reported");
  const wrong = (await alert.textContent()).trim();
  check(/wrong e-mail or password/i.test(wrong), `the alert says ${JSON.stringify(wrong)}`);

  // ---- Sign in with the keyboard. ------------------------------------------------------
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Password").press("Enter");
  await visible(page, tid("projects-view"), "the projects overview shows after signing in");
  expect401 = false;
  await hiddenNow(page, tid("signin-form"), "the sign-in form goes");
  const row = `${tid("project-row")}[data-project-id="${project}"]`;
  await visible(page, row, "the overview lists the project");
  check((await page.locator(`${row} ${tid("project-link")}`).textContent()).trim() === projectName, "the project's name");
  check((await page.getByTestId("account-email").textContent()).trim() === email, "the user's e-mail shows");
  const count = () => page.locator(`${row} ${tid("project-unresolved")}`).textContent();
  await step("the overview shows the unresolved count", () =>
    page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.trim() === "1", `${row} ${tid("project-unresolved")}`, { timeout: WAIT }));
  // A new issue: the count moves without a reload.
  await ingest("inventory sync failed");
  await step("the count updates live", () =>
    page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.trim() === "2", `${row} ${tid("project-unresolved")}`, { timeout: WAIT }));
  const unresolved = Number((await count()).trim());
  if (process.env.MESHER_ACCOUNTS_SHOT) await page.screenshot({ path: process.env.MESHER_ACCOUNTS_SHOT, fullPage: true });

  // ---- Phone width. ---------------------------------------------------------------------
  await page.setViewportSize({ width: 375, height: 800 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(wide <= 0, `the overview is ${wide} px wider than a 375 px window`);
  await page.setViewportSize({ width: 1280, height: 900 });

  // ---- Open the project: the cookie, no token. ---------------------------------------------
  await page.locator(`${row} ${tid("project-link")}`).click();
  await visible(page, `${tid("connection-status")}[data-state="live"]`, "the project's live view goes live");
  check(new URL(page.url()).hash === `#project=${project}`, `the address is ${page.url()}`);
  await hiddenNow(page, tid("connect-form"), "the id/token form is not shown to a signed-in user");
  check(sockets.length === 1 && !/token/.test(sockets[0]), `stream sockets: ${JSON.stringify(sockets)}`);
  await visible(page, `${tid("issue-row")}`, "the project's issues list");
  await ingest("checkout exploded after opening");
  await visible(page, `${tid("feed-row")}:has-text("checkout exploded after opening")`, "an event sent afterwards appears live");
  await step("the view's count is the server's", () =>
    page.waitForFunction(() => document.querySelector('[data-testid="issue-count"]')?.textContent?.trim() === "3", null, { timeout: WAIT }));

  // ---- Sign out. ---------------------------------------------------------------------------
  const cookie = (await ctx.cookies()).find((c) => c.name === "mesher_session");
  check(cookie && cookie.httpOnly, "the session cookie is HttpOnly");
  await page.getByTestId("signout-button").click();
  await visible(page, tid("signin-form"), "signing out returns to the sign-in form");
  await hiddenNow(page, tid("list-view"), "the project view goes");
  check((await page.getByTestId("connection-status").getAttribute("data-state")) === "idle", "the stream is closed");
  const me = await fetch(`${base}/api/v1/me`, { headers: { Cookie: `mesher_session=${cookie.value}` } });
  check(me.status === 401, `the old cookie still works after signing out: ${me.status}`);
  // A reload stays signed out and asks nothing that fails.
  await step("reload", () => page.reload({ timeout: WAIT }));
  await visible(page, tid("signin-form"), "the sign-in form after a reload");
  await ctx.close();
  return { unresolved, wrong_password_alert: wrong };
}

let browser;
let code = 0;
const guard = setTimeout(() => {
  process.stderr.write("accounts check: gave up after 90 s\n");
  process.exit(1);
}, 90_000);
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const summary = await run(browser);
  if (problems.length) throw new Error(`the page logged problems:\n  ${problems.join("\n  ")}`);
  process.stdout.write(`${JSON.stringify({ ok: true, ...summary, ms: Date.now() - started })}\n`);
} catch (err) {
  code = 1;
  process.stderr.write(`accounts check failed: ${err.message}\n`);
  if (problems.length) process.stderr.write(`the page also logged:\n  ${problems.join("\n  ")}\n`);
} finally {
  clearTimeout(guard);
  await browser?.close().catch(() => {});
}
process.exit(code);

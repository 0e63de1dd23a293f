// Drives a project's settings page (docs/PROTOCOL.md "People") in Debian's headless Chromium
// against a running Mesher server. Run by tests/dashboard_settings.rs:
//
//   node tests/dashboard/settings.mjs <base_url> <admin_email> <admin_password>
//        <member_email> <member_password> <receiver_url> <screenshot_dir>
//
// An admin signs in, creates a project on the overview and lands on its settings page →
// copies the DSN (read back from the clipboard) → adds a webhook to the receiver and sends
// it a test → turns on e-mail alerts, adds the member, makes an API token → screenshots at
// 1280 and 375 px → back to the live view, where an event sent by the real Python
// sentry-sdk with the copied DSN appears → the member, signed out in a second browser
// context, opens the issue's alert link, signs in and lands in that issue → changes their
// password on the settings page and signs out there. Exit 0 with a one-line JSON summary,
// or 1 with the reason on stderr (a failed check, or any console error or warning or
// uncaught exception in a page).

import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const WAIT = 10_000;
const CHROMIUM = process.env.MESHER_TEST_CHROMIUM || "/usr/bin/chromium";
const PYTHON = process.env.MESHER_TEST_PYTHON || "python3";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

const [base, adminEmail, adminPassword, memberEmail, memberPassword, receiver, shots] = process.argv.slice(2);
if (!shots) {
  process.stderr.write("usage: node tests/dashboard/settings.mjs <base_url> <admin_email> <admin_password> <member_email> <member_password> <receiver_url> <screenshot_dir>\n");
  process.exit(2);
}

const { chromium } = await import("playwright-core");

const problems = [];
const started = Date.now();

function watch(page, who) {
  page.on("console", (msg) => {
    if (msg.type() !== "error" && msg.type() !== "warning") return;
    problems.push(`${who}: console ${msg.type()}: ${msg.text()} (${msg.location().url})`);
  });
  page.on("pageerror", (err) => problems.push(`${who}: uncaught ${err.name}: ${err.message}`));
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
const text = async (page, selector) => ((await page.locator(selector).first().textContent()) ?? "").trim();
const textIs = (page, selector, want, what) =>
  step(what, () =>
    page.waitForFunction(
      ([sel, w]) => (document.querySelector(sel)?.textContent ?? "").trim() === w,
      [selector, want],
      { timeout: WAIT },
    ));

/** How much wider than its window the page is (0: it fits). */
const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

async function signIn(page, email, password) {
  await visible(page, tid("signin-form"), "the sign-in form shows");
  await page.getByLabel("E-mail", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Password", { exact: true }).press("Enter");
}

async function admin(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await ctx.newPage();
  watch(page, "admin");

  await step("open the page", () => page.goto(`${base}/`, { timeout: WAIT }));
  await signIn(page, adminEmail, adminPassword);
  await visible(page, tid("projects-view"), "the overview shows after signing in");

  // ---- A new project, from the overview. ----------------------------------------------
  await visible(page, tid("new-project-form"), "an admin is offered a New project form");
  await page.setViewportSize({ width: 375, height: 800 });
  const overviewWide = await overflow(page);
  check(overviewWide <= 0, `the admin's overview is ${overviewWide} px wider than a 375 px window`);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByLabel("New project").fill("checkout");
  await page.getByLabel("New project").press("Enter");
  await visible(page, tid("settings-view"), "the new project's settings page opens");
  const hash = new URL(page.url()).hash;
  const m = /^#project=(\d+)&view=settings$/.exec(hash);
  check(m, `the settings page's address is ${page.url()}`);
  const project = m[1];
  await hiddenNow(page, tid("projects-view"), "the overview goes");
  await hiddenNow(page, tid("list-view"), "no live view behind the settings");
  check((await text(page, tid("settings-heading"))).includes("checkout"), "the page names the project");
  // The project's token, once.
  await visible(page, tid("settings-secret"), "the new project's token is shown once");
  const projectToken = await text(page, tid("settings-secret-value"));
  check(/^[0-9a-f]{32,}$/.test(projectToken), `the token shown: ${projectToken}`);
  await page.getByTestId("settings-secret-dismiss").click();
  await hiddenNow(page, tid("settings-secret"), "the token notice goes");

  // ---- The DSN: copied to the clipboard, with a visible confirmation. ---------------------
  const dsn = await text(page, tid("dsn-value"));
  check(new RegExp(`^http://[0-9a-f]{32}@127\\.0\\.0\\.1:\\d+/${project}$`).test(dsn), `the DSN shown: ${dsn}`);
  // With the keyboard: a real button.
  await page.getByTestId("dsn-copy").focus();
  await page.keyboard.press("Enter");
  await textIs(page, tid("dsn-copied"), "Copied", "the Copy button says Copied");
  const copied = await step("read the clipboard", () => page.evaluate(() => navigator.clipboard.readText()));
  check(copied === dsn, `the clipboard holds ${JSON.stringify(copied)}, not the DSN`);

  // ---- The setup snippets, each with the real DSN. ----------------------------------------
  const python = await text(page, `${tid("snippet-python")} pre`);
  check(python.includes(`sentry_sdk.init(dsn="${dsn}")`), `the Python snippet: ${python}`);
  for (const [id, want] of [["browser", "@sentry/browser"], ["node", "@sentry/node"], ["curl", "/api/v1/events"]]) {
    await page.getByTestId(`snippet-tab-${id}`).click();
    await visible(page, tid(`snippet-${id}`), `the ${id} snippet shows`);
    const code = await text(page, tid(`snippet-${id}`));
    check(code.includes(want), `the ${id} snippet: ${code}`);
    const key = /^http:\/\/([0-9a-f]{32})@/.exec(dsn)[1];
    check(code.includes(id === "curl" ? key : dsn), `the ${id} snippet lacks the DSN: ${code}`);
  }
  await hiddenNow(page, tid("snippet-python"), "one snippet at a time");
  await page.getByTestId("snippet-tab-python").click();

  // ---- A webhook: added, sent a test. -------------------------------------------------------
  await page.getByLabel("URL").fill(receiver);
  await page.getByTestId("webhook-add").click();
  await visible(page, tid("webhook-row"), "the webhook is listed");
  await visible(page, tid("settings-secret"), "its signing secret is shown once");
  const secret = await text(page, tid("settings-secret-value"));
  check(/^[0-9a-f]{64}$/.test(secret), `the secret shown: ${secret}`);
  await page.getByTestId("settings-secret-copy").click();
  const copiedSecret = await step("read the clipboard", () => page.evaluate(() => navigator.clipboard.readText()));
  check(copiedSecret === secret, "the secret's Copy button copies it");
  await page.getByTestId("settings-secret-dismiss").click();
  check((await text(page, tid("webhook-row"))).includes("new, regressed"), "the default triggers");
  await page.getByTestId("webhook-test").click();
  await textIs(page, tid("webhook-result"), "Delivered: the target answered 200.", "the test delivery's answer shows");
  const hookId = await page.locator(tid("webhook-row")).getAttribute("data-webhook-id");

  // ---- E-mail alerts on; a member; an API token. -----------------------------------------------
  await page.getByLabel(/E-mail me/).check();
  await textIs(page, tid("email-status"), "On: new, regressed.", "e-mail alerts are on");
  await visible(page, tid("members-card"), "an admin sees the members");
  await page.getByLabel("E-mail of a user").fill(memberEmail);
  await page.getByLabel("E-mail of a user").press("Enter");
  await visible(page, `${tid("member-row")}[data-email="${memberEmail}"]`, "the member is listed");
  await page.getByLabel("Name").fill("ci");
  await page.getByTestId("token-create").click();
  await visible(page, tid("token-row"), "the API token is listed");
  const apiToken = await text(page, tid("settings-secret-value"));
  check(/^mshr_/.test(apiToken), `the API token shown: ${apiToken}`);
  await page.getByTestId("settings-secret-dismiss").click();
  // Rotating asks first; Cancel leaves it.
  await page.getByTestId("rotate-key").click();
  await visible(page, tid("rotate-key-confirm"), "rotating asks first");
  await page.getByTestId("rotate-key-cancel").click();
  await visible(page, tid("rotate-key"), "Cancel returns the button");
  check((await text(page, tid("dsn-value"))) === dsn, "nothing rotated");

  // ---- Screenshots: desktop and phone width. ----------------------------------------------------
  mkdirSync(shots, { recursive: true });
  await step("desktop screenshot", () => page.screenshot({ path: join(shots, "settings-desktop.png"), fullPage: true }));
  await page.setViewportSize({ width: 375, height: 800 });
  const wide = await overflow(page);
  check(wide <= 0, `the settings page is ${wide} px wider than a 375 px window`);
  await step("phone screenshot", () => page.screenshot({ path: join(shots, "settings-phone.png"), fullPage: true }));
  await page.setViewportSize({ width: 1280, height: 900 });

  // ---- Back to the live view: a real sentry-sdk event with the copied DSN arrives. ----------------
  await page.getByTestId("settings-back").click();
  await visible(page, `${tid("connection-status")}[data-state="live"]`, "the project's live view goes live");
  check(new URL(page.url()).hash === `#project=${project}`, `the address is ${page.url()}`);
  await hiddenNow(page, tid("settings-view"), "the settings page goes");
  await visible(page, tid("settings-link"), "the live view links to the settings");
  const app = join(ROOT, "tests", "sentry", "app.py");
  await step("the Python SDK sends with the copied DSN", () => promisify(execFile)(PYTHON, [app, copied], { timeout: 30_000 }));
  await visible(page, `${tid("feed-row")}:has-text("ZeroDivisionError")`, "the SDK's event appears live");
  const row = page.locator(`${tid("issue-row")}:has-text("ZeroDivisionError")`).first();
  await step("the SDK's issue is listed", () => row.waitFor({ state: "visible", timeout: WAIT }));
  const issue = await row.getAttribute("data-issue-id");
  // The settings link of the top bar returns to the page.
  await page.getByTestId("settings-link").click();
  await visible(page, tid("settings-view"), "the Settings link opens the settings page");
  await ctx.close();
  return { project, dsn, issue, secret, hook_id: Number(hookId), project_token: projectToken };
}

async function member(browser, project, issue) {
  const ctx = await browser.newContext({ viewport: { width: 375, height: 800 } });
  const page = await ctx.newPage();
  watch(page, "member");
  // The link an alert carries (src/alerts/payload.rs), opened signed out.
  const link = `${base}/#project=${project}&issue=${issue}`;
  await step("open the alert's link", () => page.goto(link, { timeout: WAIT }));
  await signIn(page, memberEmail, memberPassword);
  await visible(page, tid("issue-view"), "signing in lands in the linked issue");
  await textIs(page, tid("issue-title"), "ZeroDivisionError: division by zero", "the issue's title");
  const hash = new URL(page.url()).hash;
  check(hash.includes(`project=${project}`) && hash.includes(`issue=${issue}`), `the address is ${page.url()}`);

  // The member's settings: no admin parts; a new password.
  await step("open the settings", () => page.goto(`${base}/#project=${project}&view=settings`, { timeout: WAIT }));
  await visible(page, tid("settings-view"), "the member's settings page");
  await hiddenNow(page, tid("members-card"), "no members list for a member");
  await hiddenNow(page, tid("secrets-card"), "no rotation for a member");
  await page.getByLabel("Current password").fill(memberPassword);
  await page.getByLabel(/New password/).fill("a brand new password for the member");
  await page.getByTestId("password-change").click();
  await textIs(page, tid("password-done"), "Password changed. Your other sessions are signed out.", "the password is changed");
  const wide = await overflow(page);
  check(wide <= 0, `the member's settings page is ${wide} px wider than a 375 px window`);
  await page.getByTestId("settings-signout").click();
  await visible(page, tid("signin-form"), "signing out on the settings page returns to the sign-in form");
  await hiddenNow(page, tid("settings-view"), "the settings page goes");
  await ctx.close();
  return { link };
}

let browser;
let code = 0;
const guard = setTimeout(() => {
  process.stderr.write("settings check: gave up after 100 s\n");
  process.exit(1);
}, 100_000);
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const a = await admin(browser);
  const b = await member(browser, a.project, a.issue);
  if (problems.length) throw new Error(`the pages logged problems:\n  ${problems.join("\n  ")}`);
  process.stdout.write(`${JSON.stringify({ ok: true, ...a, ...b, ms: Date.now() - started })}\n`);
} catch (err) {
  code = 1;
  process.stderr.write(`settings check failed: ${err.message}\n`);
  if (problems.length) process.stderr.write(`the pages also logged:\n  ${problems.join("\n  ")}\n`);
} finally {
  clearTimeout(guard);
  await browser?.close().catch(() => {});
}
process.exit(code);

// "Sign in with SSO" in Debian's headless Chromium, against a running Mesher server whose
// OpenID Connect provider is a real one on loopback (oidc-provider-mock). Run by
// tests/dashboard_sso.rs:
//
//   node tests/dashboard/sso.mjs <base_url> <project_id> <issue_id> <issue_title> <subject> <screenshot_dir>
//
// A teammate opens an alert's link to an issue without a session → the sign-in page offers
// SSO → the provider's form (the subject typed in, "Authorize") → back in Mesher, signed in,
// on that very issue. Exit 0 with a one-line JSON summary, or 1 with the reason on stderr
// (a failed check, or any console error or uncaught exception in Mesher's page).

const WAIT = 10_000;
const CHROMIUM = process.env.MESHER_TEST_CHROMIUM || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const [base, project, issue, title, subject, shots] = process.argv.slice(2);
if (!shots) {
  process.stderr.write("usage: node tests/dashboard/sso.mjs <base_url> <project_id> <issue_id> <issue_title> <subject> <screenshot_dir>\n");
  process.exit(2);
}

const { chromium } = await import("playwright-core");
const problems = [];

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

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
let failed = null;
const summary = { ok: false };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (msg) => {
    // Only Mesher's own page is held to "no console errors"; the provider's is not ours.
    if (!page.url().startsWith(base)) return;
    if (msg.type() === "error") problems.push(`console error: ${msg.text()} (${msg.location().url})`);
  });
  page.on("pageerror", (err) => problems.push(`uncaught ${err.name}: ${err.message}`));

  const link = `${base}/#project=${project}&issue=${issue}`;
  await step("open the alert's link", () => page.goto(link));
  const sso = page.locator(tid("sso-link"));
  await step("the sign-in page offers SSO", () => sso.waitFor({ state: "visible", timeout: WAIT }));
  await step("go to the provider", () => Promise.all([page.waitForURL((u) => !u.href.startsWith(base), { timeout: WAIT }), sso.click()]));
  summary.provider = new URL(page.url()).origin;
  await step("authorize at the provider", async () => {
    await page.locator('input[name="sub"]').fill(subject);
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(base), { timeout: WAIT }),
      page.getByRole("button", { name: "Authorize" }).click(),
    ]);
  });
  summary.returnedTo = page.url();
  check(page.url() === link, `back on the alert's link, not ${page.url()}`);
  const heading = page.locator(tid("issue-title"));
  await step("the issue view opens, signed in", () => heading.waitFor({ state: "visible", timeout: WAIT }));
  await step("it is the alert's issue", () =>
    page.waitForFunction((t) => document.querySelector('[data-testid="issue-title"]')?.textContent?.includes(t), title, { timeout: WAIT }));
  summary.title = (await heading.textContent())?.trim();
  summary.account = (await page.locator("#account-email").textContent())?.trim();
  await page.screenshot({ path: `${shots}/sso-issue-desktop.png` });
  check(problems.length === 0, `problems in the page:\n  ${problems.join("\n  ")}`);
  summary.ok = true;
} catch (err) {
  failed = err;
} finally {
  await browser.close();
}
if (failed) {
  process.stderr.write(`sso.mjs: ${failed.message}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify(summary)}\n`);

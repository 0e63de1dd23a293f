// Source maps in the browser (SPEC §10), in Debian's headless Chromium. Run by
// tests/sourcemap_mapping.rs, in two steps:
//
//   node tests/dashboard/sourcemaps.mjs report <static_dir> <dsn>
//     serves <static_dir> at http://127.0.0.1:<port>/static/ with a page that loads
//     /static/app.min.js (the app bundled with @sentry/browser, which throws and reports to
//     <dsn>), and waits until the SDK has sent its event.
//   node tests/dashboard/sourcemaps.mjs view <base_url> <project_id> <token> <issue_id> <screenshot.png>
//     opens that issue in the dashboard and checks that the raising frame shows the
//     original file, function and source line, that the minified frame shows on request
//     and that one line names the map used; then takes a screenshot.
//
// Exit 0 with a one-line JSON summary, or 1 with the reason on stderr (a failed check, or
// any console error or warning or uncaught exception in the page). Every wait is bounded.

import http from "node:http";
import fs from "node:fs";
import path from "node:path";

const WAIT = 10_000;
const CHROMIUM = process.env.MESHER_TEST_CHROMIUM || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const [mode, ...args] = process.argv.slice(2);
const { chromium } = await import("playwright-core");
const problems = [];
const started = Date.now();

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") problems.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`uncaught ${err.name}: ${err.message}`));
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Serves the page and the bundle; answers the server and its origin. */
async function serve(dir, dsn) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><title>shop</title><link rel="icon" href="data:,"><script>window.MESHER_DSN = ${JSON.stringify(dsn)};</script>` +
        `<script src="/static/app.min.js"></script>`);
      return;
    }
    const file = path.join(dir, path.basename(url.pathname));
    if (!url.pathname.startsWith("/static/") || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/javascript" });
    res.end(fs.readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

async function report(page, [dir, dsn]) {
  const { server, origin } = await serve(dir, dsn);
  try {
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.__reported !== undefined, null, { timeout: WAIT });
    check(await page.evaluate(() => window.__reported === true), "the SDK did not flush its event");
    return { origin };
  } finally {
    server.close();
  }
}

async function view(page, [base, project, token, issue, screenshot]) {
  await page.setViewportSize({ width: 1200, height: 900 });
  await page.goto(`${base}/#project=${project}&token=${token}&issue=${issue}`);
  const frame = page.locator('[data-testid="frame"][data-in-app="true"]').first();
  await frame.waitFor({ timeout: WAIT });
  const title = await frame.locator("summary").first().innerText();
  check(/catalog\.js/.test(title) && /lookupPrice/.test(title), `the raising frame reads "${title}"`);
  const crash = await frame.locator('[data-testid="crash-line"]').innerText();
  check(crash.includes("throw new Error(`unknown SKU"), `the source line reads "${crash}"`);
  const used = await page.locator('[data-testid="source-map-used"]').first().innerText();
  check(used.includes("~/static/app.min.js.map"), `the map line reads "${used}"`);
  const minified = frame.locator('[data-testid="minified-frame"]');
  check(!(await minified.locator("code").isVisible()), "the minified frame shows before it is asked for");
  await minified.locator("summary").focus();
  await page.keyboard.press("Enter");
  const where = await minified.locator("code").innerText();
  check(/app\.min\.js/.test(where) && /at line \d+:\d+/.test(where), `the minified frame reads "${where}"`);
  await frame.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot });
  return { title, crash: crash.trim(), used, minified: where, screenshot };
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
let exit = 0;
try {
  const page = await browser.newPage();
  watch(page);
  const summary = mode === "report" ? await report(page, args) : await view(page, args);
  check(problems.length === 0, problems.join("\n"));
  process.stdout.write(`${JSON.stringify({ ok: true, mode, ...summary, ms: Date.now() - started })}\n`);
} catch (err) {
  process.stderr.write(`${err?.stack ?? err}\n${problems.join("\n")}\n`);
  exit = 1;
} finally {
  await browser.close();
}
process.exit(exit);

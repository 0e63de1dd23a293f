//! SPEC §10, the mapping side: the tiny app of tests/sourcemaps bundled and minified by the
//! real esbuild, uploaded by the real `sentry-cli` (the Python venv's), run by Node with the
//! real `@sentry/node` (tests/sentry) so that it throws and reports to the server; the
//! event answer's `exception` names the original file, function and line with its source.

mod common;

use common::{Creds, TestServer, WAIT};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sourcemaps");
const SDK_MODULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sentry/node_modules");

/// Loads the bundle and checks out one order per SKU given; each throws `unknown SKU`
/// from catalog.js's `lookupPrice`, and is reported with `@sentry/node`.
/// Usage: node report.cjs DSN BUNDLE RELEASE SKU...
const REPORTER: &str = r#"
const Sentry = require("@sentry/node");
const [dsn, bundle, release, ...skus] = process.argv.slice(2);
Sentry.init({ dsn, release: release || undefined, defaultIntegrations: false });
const { checkout } = require(bundle);
for (const sku of skus) {
  try {
    checkout({ id: 2, items: [{ sku, qty: 1 }] });
  } catch (e) {
    Sentry.captureException(e);
  }
}
Sentry.flush(10000).then((ok) => process.exit(ok ? 0 : 1));
"#;

/// The app bundled and minified by esbuild, with its map, into `<dir>/<name>/app.min.js`.
async fn build_app(dir: &Path, name: &str) -> PathBuf {
    let esbuild = Path::new(FIXTURES).join("node_modules/.bin/esbuild");
    assert!(esbuild.exists(), "esbuild missing: run scripts/test.sh");
    let out = dir.join(name);
    let status = tokio::process::Command::new(esbuild)
        .current_dir(FIXTURES)
        .args(["src/app.js", "--bundle", "--minify", "--sourcemap"])
        .args(["--platform=node", "--log-level=warning"])
        .arg(format!("--outfile={}", out.join("app.min.js").display()))
        .status()
        .await
        .expect("esbuild runs");
    assert!(status.success(), "esbuild failed");
    out
}

/// Runs the venv's `sentry-cli` against the server in `dir`; expects exit status 0.
async fn sentry_cli(s: &TestServer, token: &str, dir: &Path, args: &[&str]) {
    let cli = PathBuf::from(common::sdk::python()).with_file_name("sentry-cli");
    assert!(
        cli.exists(),
        "{} missing: run scripts/test.sh",
        cli.display()
    );
    let run = tokio::process::Command::new(cli)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("SENTRY_DISABLE_UPDATE_CHECK", "true")
        .args(["--url", &s.base, "--auth-token", token])
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT * 3, run).await.unwrap().unwrap();
    assert!(
        out.status.success(),
        "sentry-cli {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Uploads `dist` (below `dir`) for project `p`, with `extra` arguments.
async fn upload(s: &TestServer, p: &Creds, dir: &Path, extra: &[&str]) {
    let id = p.id.to_string();
    let args = ["sourcemaps", "upload", "--org", "o", "--project", &id];
    sentry_cli(s, &p.token, dir, &[&args[..], extra].concat()).await;
}

/// Runs the bundle at `dist/app.min.js` with `@sentry/node`, one error per SKU.
async fn report(p: &Creds, dir: &Path, dist: &Path, release: &str, skus: &[&str]) {
    assert!(
        Path::new(SDK_MODULES).join("@sentry/node").exists(),
        "run scripts/test.sh"
    );
    let script = dir.join("report.cjs");
    std::fs::write(&script, REPORTER).unwrap();
    let bundle = dist.join("app.min.js");
    let run = tokio::process::Command::new("node")
        .env("NODE_PATH", SDK_MODULES)
        .arg(&script)
        .args([p.dsn.as_str(), bundle.to_str().unwrap(), release])
        .args(skus)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT * 2, run).await.unwrap().unwrap();
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The event answer of the project's `n`-th stored event (from 0).
async fn nth_event(s: &TestServer, p: &Creds, n: usize) -> Value {
    let listed = s.all_events(p).await;
    let id = listed[n]["id"].as_str().unwrap().to_owned();
    let (status, v) = s
        .get(&format!("/api/v1/projects/{}/events/{id}", p.id), &p.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["event"].clone()
}

/// The frame that threw: the last of the outermost exception.
fn raising_frame(event: &Value) -> &Value {
    let frames = event["exception"][0]["frames"].as_array().expect("frames");
    frames.last().expect("a frame")
}

/// The frame that threw names catalog.js's `lookupPrice`, its line and source lines; the
/// minified frame rides along; `data` still holds the frame as sent.
fn assert_mapped_to_catalog(event: &Value) {
    let f = raising_frame(event);
    assert_eq!(f["mapped"], true, "{f}");
    assert!(
        f["filename"].as_str().unwrap().ends_with("src/catalog.js"),
        "{f}"
    );
    assert_eq!(f["function"], "lookupPrice", "{f}");
    assert_eq!(f["lineno"], 7, "{f}");
    assert!(
        f["context_line"]
            .as_str()
            .unwrap()
            .contains("throw new Error(`unknown SKU"),
        "{f}"
    );
    assert_eq!(f["pre_context"].as_array().unwrap().len(), 5);
    assert_eq!(f["pre_context"][3], "  const price = PRICES[sku];");
    assert!(
        f["minified"]["abs_path"]
            .as_str()
            .unwrap()
            .ends_with("app.min.js"),
        "{f}"
    );
    // Minified: far into a line (sentry-cli's injected snippet adds lines before it).
    assert!(f["minified"]["colno"].as_i64().unwrap() > 100, "{f}");
    assert!(f["map"].as_str().unwrap().contains("app.min.js.map"), "{f}");
    let callers: Vec<&str> = event["exception"][0]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["mapped"] == true)
        .map(|f| f["function"].as_str().unwrap_or(""))
        .collect();
    assert!(
        callers.ends_with(&["checkout", "priceOrder", "lookupPrice"]),
        "{callers:?}"
    );
    let sent = event["data"]["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    let sent_last = sent.last().unwrap();
    assert!(
        sent_last["filename"]
            .as_str()
            .unwrap()
            .ends_with("app.min.js")
    );
    assert_eq!(
        sent_last["colno"], f["minified"]["colno"],
        "data keeps the minified frame"
    );
}

#[tokio::test]
async fn a_node_error_of_an_injected_bundle_is_mapped_even_when_sent_before_the_upload() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    let dist = build_app(dir.path(), "dist").await;
    sentry_cli(&s, &p.token, dir.path(), &["sourcemaps", "inject", "dist"]).await;

    report(&p, dir.path(), &dist, "", &["kiwi"]).await;
    let before = nth_event(&s, &p, 0).await;
    let f = raising_frame(&before);
    assert_eq!(f["mapped"], false, "{f}");
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .starts_with("no source map for debug id "),
        "{f}"
    );

    upload(&s, &p, dir.path(), &["dist"]).await;
    // Read again once the server has seen the upload (it rereads a project's uploads
    // at most every two seconds).
    let mapped = tokio::time::timeout(WAIT, async {
        loop {
            let e = nth_event(&s, &p, 0).await;
            if raising_frame(&e)["mapped"] == true {
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the earlier event is mapped when read after the upload");
    assert_mapped_to_catalog(&mapped);
    assert_eq!(mapped["data"], before["data"], "data unchanged");

    // Events stored after the upload: grouped by their mapped frames, so two messages
    // thrown from one minified function are one issue.
    report(&p, dir.path(), &dist, "", &["mango", "plum"]).await;
    let (a, b) = (nth_event(&s, &p, 1).await, nth_event(&s, &p, 2).await);
    assert_mapped_to_catalog(&a);
    assert_eq!(a["issue_id"], b["issue_id"], "one issue for two values");
    assert!(
        a["culprit"].as_str().unwrap().contains("catalog.js"),
        "{}",
        a["culprit"]
    );
}

#[tokio::test]
async fn a_release_upload_without_debug_ids_is_matched_by_release_and_url() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    let dist = build_app(dir.path(), "plain").await;
    upload(&s, &p, dir.path(), &["--release", "1.2", "plain"]).await;
    report(&p, dir.path(), &dist, "1.2", &["kiwi"]).await;
    let event = nth_event(&s, &p, 0).await;
    assert_mapped_to_catalog(&event);
    assert_eq!(raising_frame(&event)["map"], "~/app.min.js.map");

    // Another release has no files: the frame says so.
    report(&p, dir.path(), &dist, "1.3", &["kiwi"]).await;
    let other = nth_event(&s, &p, 1).await;
    let f = raising_frame(&other);
    assert_eq!(f["mapped"], false);
    assert!(
        f["error"].as_str().unwrap().contains("in release 1.3"),
        "{f}"
    );
}

#[tokio::test]
async fn a_map_that_is_not_json_leaves_the_frame_unmapped_with_the_reason() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    let dist = build_app(dir.path(), "plain").await;
    std::fs::write(dist.join("app.min.js.map"), "this is not JSON").unwrap();
    upload(&s, &p, dir.path(), &["--release", "2.0", "plain"]).await;
    report(&p, dir.path(), &dist, "2.0", &["kiwi"]).await;
    let event = nth_event(&s, &p, 0).await;
    let f = raising_frame(&event);
    assert_eq!(f["mapped"], false, "{f}");
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid source map: "),
        "{f}"
    );
}

#[tokio::test]
async fn frames_of_other_languages_are_shown_as_sent_without_an_error() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let frame = json!({"filename": "shop/checkout.py", "function": "pay", "lineno": 12,
        "context_line": "raise CheckoutError(sku)", "pre_context": ["def pay(sku):"], "in_app": true});
    let body = json!({"exception": {"type": "CheckoutError", "value": "unknown SKU"},
        "stacktrace": [frame]});
    let (status, _) = s.send_event(&p, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let event = nth_event(&s, &p, 0).await;
    let chain = event["exception"].as_array().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0]["type"], "CheckoutError");
    let f = raising_frame(&event);
    assert_eq!(f["mapped"], false);
    assert_eq!(f["filename"], "shop/checkout.py");
    assert_eq!(f["context_line"], "raise CheckoutError(sku)");
    assert_eq!(f["in_app"], true);
    assert!(
        f.get("error").is_none() && f.get("minified").is_none(),
        "{f}"
    );
}

/// The browser app: the same three files and `@sentry/browser`, which reports the error
/// `checkout` throws to the DSN the page gives (`window.MESHER_DSN`).
fn web_entry() -> String {
    format!(
        r#"import * as Sentry from "@sentry/browser";
import {{ checkout }} from "{FIXTURES}/src/app.js";
Sentry.init({{ dsn: window.MESHER_DSN, release: "web-1", defaultIntegrations: false }});
try {{
  checkout({{ id: 3, items: [{{ sku: "kiwi", qty: 1 }}] }});
}} catch (e) {{
  Sentry.captureException(e);
}}
Sentry.flush(10000).then((ok) => {{ window.__reported = ok; }});
"#
    )
}

/// The browser app bundled and minified by esbuild into `<dir>/web/app.min.js`.
async fn build_web_app(dir: &Path) -> PathBuf {
    let entry = dir.join("web-entry.js");
    std::fs::write(&entry, web_entry()).unwrap();
    let out = dir.join("web");
    let status =
        tokio::process::Command::new(Path::new(FIXTURES).join("node_modules/.bin/esbuild"))
            .env("NODE_PATH", Path::new(FIXTURES).join("node_modules"))
            .arg(&entry)
            .args(["--bundle", "--minify", "--sourcemap", "--platform=browser"])
            .args(["--format=iife", "--log-level=warning"])
            .arg(format!("--outfile={}", out.join("app.min.js").display()))
            .status()
            .await
            .expect("esbuild runs");
    assert!(
        status.success(),
        "esbuild failed (is @sentry/browser installed?)"
    );
    out
}

#[tokio::test]
async fn a_browser_error_is_mapped_and_the_issue_view_shows_the_original_source() {
    common::browser::require();
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    let web = build_web_app(dir.path()).await;
    let prefix = ["--release", "web-1", "--url-prefix", "~/static", "web"];
    upload(&s, &p, dir.path(), &prefix).await;
    let limit = WAIT * 3;
    let dir_arg = web.to_str().unwrap();
    common::browser::run("sourcemaps.mjs", &["report", dir_arg, &p.dsn], limit).await;

    let event = nth_event(&s, &p, 0).await;
    assert_mapped_to_catalog(&event);
    let f = raising_frame(&event);
    assert!(
        f["minified"]["abs_path"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(f["map"], "~/static/app.min.js.map");

    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/target/sourcemap-issue.png");
    let issue = event["issue_id"].to_string();
    let args = ["view", &s.base, &p.id.to_string(), &p.token, &issue, shot];
    common::browser::run("sourcemaps.mjs", &args, limit).await;
    common::browser::assert_screenshot(shot);
}

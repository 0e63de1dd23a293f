//! The dashboard's browser scripts (tests/dashboard/*.mjs): Debian's Chromium driven by
//! playwright-core under Node. Each script prints one JSON summary line and exits 0, or
//! explains on stderr why it failed.

use std::path::Path;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CHROMIUM: &str = "/usr/bin/chromium";

/// Checks that the browser and its driver are installed (scripts/test.sh installs them).
pub(crate) fn require() {
    let playwright = format!("{ROOT}/tests/dashboard/node_modules/playwright-core");
    assert!(
        Path::new(&playwright).exists(),
        "playwright-core is not installed: run the tests with scripts/test.sh, which runs npm ci in tests/dashboard"
    );
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing");
}

/// Runs `node tests/dashboard/<script> ARGS` (with `MESHER_TEST_PYTHON` for scripts that
/// run the SDK) within `limit`; asserts it succeeded with `"ok": true` and answers its
/// summary.
pub(crate) async fn run(script: &str, args: &[&str], limit: Duration) -> serde_json::Value {
    let run = tokio::process::Command::new("node")
        .arg(format!("{ROOT}/tests/dashboard/{script}"))
        .args(args)
        .env("MESHER_TEST_PYTHON", super::sdk::python())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("{script} finishes within {limit:?}"))
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON summary ({e}): {stdout}"));
    assert_eq!(summary["ok"], true, "{summary}");
    println!("{summary}");
    summary
}

/// Asserts that the screenshot at `path` exists and is not empty.
pub(crate) fn assert_screenshot(path: &str) {
    let size = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("no screenshot at {path}: {e}"))
        .len();
    assert!(size > 0, "the screenshot {path} is empty");
}

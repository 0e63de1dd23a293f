//! The real Sentry SDKs' test apps (tests/sentry), run against a test server.

use super::WAIT;

/// The Python that has `sentry_sdk` (scripts/test.sh sets it up in target/test-venv).
pub(crate) fn python() -> String {
    std::env::var("MESHER_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-venv/bin/python");
        if std::path::Path::new(venv).exists() {
            venv.to_owned()
        } else {
            "python3".to_owned()
        }
    })
}

/// Runs `program tests/sentry/<app> <dsn>` to completion and answers what it printed.
pub(crate) async fn run_app(program: &str, app: &str, dsn: &str) -> String {
    let path = format!("{}/tests/sentry/{app}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::time::timeout(
        WAIT * 3,
        tokio::process::Command::new(program)
            .arg(&path)
            .arg(dsn)
            .output(),
    )
    .await
    .expect("the app finishes")
    .expect("the app runs");
    assert!(
        out.status.success(),
        "{app} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the app prints text")
}

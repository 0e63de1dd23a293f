//! Merging issues from the dashboard's issue list (issue 26) in a real headless Chromium,
//! driven by tests/dashboard/merge.mjs (playwright-core): two issues ticked and merged by
//! the keyboard at phone width, the merged row's count the sum, the folded row gone, on the
//! page and live on a second one.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::test]
async fn issues_ticked_in_the_list_merge_into_one_on_every_page() {
    common::browser::require();
    let s = TestServer::start().await;
    let p = s.project("merge").await;
    std::fs::create_dir_all(format!("{ROOT}/target")).expect("target/ exists");
    let shot = format!("{ROOT}/target/dashboard-merge.png");
    let _ = std::fs::remove_file(&shot);

    let id = p.id.to_string();
    let summary = common::browser::run(
        "merge.mjs",
        &[&s.base, &id, &p.token, &p.key, &shot],
        Duration::from_secs(110),
    )
    .await;

    // What the pages showed is what the server holds.
    let into = summary["merged_into"].as_i64().expect("merged_into");
    let (status, v) = s.get(&format!("/api/v1/issues/{into}"), &p.token).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["issue"]["event_count"], summary["count"], "{v}");
    let folded = summary["folded"].as_i64().expect("folded");
    let (status, _) = s.get(&format!("/api/v1/issues/{folded}"), &p.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    common::browser::assert_screenshot(&shot);
    s.stop().await;
}

//! Logging under a sustained failure (the database gone): the first refusal of a kind is
//! logged with its cause, then a count at most every 10 s — not a line or three per
//! refused request.

mod common;

use common::Creds;
use common::postgres::TestPostgres;
use common::process::{ServerProcess, free_port, run};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_logs_a_few_lines_not_one_per_request() {
    let mut pg = tokio::task::spawn_blocking(TestPostgres::start_new)
        .await
        .unwrap();
    let db = pg.url();
    let (_, out, _) = run(&["project", "create", "app", "--database-url", &db], &[]).await;
    let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("mesher.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = ServerProcess::start_logging(&db, free_port(), &["--rate-limit", "0"], log).await;
    let http = reqwest::Client::new();
    let post = |n: usize| {
        let (http, base, key) = (http.clone(), server.base.clone(), p.key.clone());
        async move {
            common::post_event(
                &http,
                &base,
                &key,
                &json!({"message": format!("event {n}")}),
            )
            .await
            .unwrap()
            .status()
        }
    };
    assert_eq!(post(0).await, 202);
    tokio::task::block_in_place(|| pg.stop());
    // 300 requests at once: each waits for the database (the pool's 5 s) and is refused.
    let answers = futures_util::future::join_all((1..=300).map(post)).await;
    let refused = answers.iter().filter(|s| **s == 503).count();
    assert_eq!(
        refused, 300,
        "every request during the outage is answered 503"
    );
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    println!("{} log lines for {refused} refused requests", lines.len());
    assert!(
        lines.len() <= 12,
        "{} log lines for {refused} refused requests:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert!(
        text.contains("group commit failed"),
        "the cause is logged once:\n{text}"
    );
    tokio::task::block_in_place(|| pg.start());
    server.kill().await;
}

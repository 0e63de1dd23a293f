//! SPEC §7 with several nodes on one PostgreSQL database: each alert is delivered by one
//! node, and a node killed mid-delivery leaves its delivery to another.

mod common;

use common::Creds;
use common::postgres::TestPostgres;
use common::process::{ServerProcess, free_port, run};
use common::receiver::{ALLOW_LOOPBACK, Receiver, Reply};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// The receiver is on loopback: the nodes may reach it.
const ALLOW: &[&str] = &["--webhook-allow-cidr", ALLOW_LOOPBACK];

async fn post(node: &ServerProcess, p: &Creds, message: &str) -> i64 {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/events", node.base))
        .bearer_auth(&p.key)
        .json(&json!({"message": message, "fingerprint": [message]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["issue_id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn two_nodes_deliver_each_alert_once_and_survive_a_killed_one() {
    let pg = tokio::task::spawn_blocking(TestPostgres::start_new)
        .await
        .unwrap();
    let db = pg.url();
    let (code, out, err) = run(&["project", "create", "app", "--database-url", &db], &[]).await;
    assert_eq!(code, 0, "{err}");
    let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
    let mut rx = Receiver::start().await;
    rx.script(&[Reply::Hang]); // the first delivery never gets an answer
    let (code, _, err) = run(
        &[
            "webhook",
            "add",
            &p.id.to_string(),
            &rx.url,
            "--database-url",
            &db,
            "--webhook-allow-cidr",
            ALLOW_LOOPBACK,
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");

    // Node A takes the first delivery and is killed while the receiver holds it.
    let a = ServerProcess::start(&db, free_port(), ALLOW).await;
    let mut issues = vec![post(&a, &p, "first").await];
    let hung = rx.next().await;
    let hung_id = hung.header("x-mesher-delivery");
    let b = ServerProcess::start(&db, free_port(), ALLOW).await;
    a.kill().await;
    issues.push(post(&b, &p, "second").await);
    // Node B takes it over once A's lease has run out (30 s): the same delivery again.
    let again = rx
        .within(Duration::from_secs(45))
        .await
        .expect("another node retries the dead node's delivery");
    assert_eq!(again.header("x-mesher-delivery"), hung_id);
    assert_eq!(again.body, hung.body);

    // Two live nodes, alerts raised on both: each delivered by one of them, once.
    let a2 = ServerProcess::start(&db, free_port(), ALLOW).await;
    for i in 0..20 {
        let node = if i % 2 == 0 { &a2 } else { &b };
        issues.push(post(node, &p, &format!("storm {i}")).await);
    }
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for a in again.json()["alerts"].as_array().unwrap() {
        *seen.entry(a["issue"]["id"].as_i64().unwrap()).or_default() += 1;
    }
    while seen.len() < issues.len() {
        let got = rx.next().await;
        for a in got.json()["alerts"].as_array().unwrap() {
            *seen.entry(a["issue"]["id"].as_i64().unwrap()).or_default() += 1;
        }
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "an alert was delivered twice: {seen:?}"
    );
    // Nothing more comes.
    assert!(rx.within(Duration::from_secs(2)).await.is_none());
    a2.kill().await;
    b.kill().await;
}

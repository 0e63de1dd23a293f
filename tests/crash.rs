//! "202 means durably stored": SIGKILL the server while clients ingest, restart it on the
//! same file, and find every event that was answered 202.

mod common;

use common::Creds;
use common::process::{ServerProcess, free_port, run, sqlite_url};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

#[tokio::test]
async fn every_202_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let (_, out, _) = run(&["project", "create", "crash", "--database-url", &db], &[]).await;
    let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
    let port = free_port();
    let server = ServerProcess::start(&db, port, &["--rate-limit", "0"]).await;

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (acked, answered, key, base) = (
            acked.clone(),
            answered.clone(),
            p.key.clone(),
            server.base.clone(),
        );
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0.. {
                let bulk = i % 4 == 3;
                let (url, body) = if bulk {
                    let batch: Vec<Value> = (0..10)
                        .map(|j| json!({"message": format!("c{c} bulk {i}.{j}")}))
                        .collect();
                    (format!("{base}/api/v1/events/bulk"), json!(batch))
                } else {
                    (
                        format!("{base}/api/v1/events"),
                        json!({"message": format!("c{c} single {i}")}),
                    )
                };
                let Ok(r) = http.post(url).bearer_auth(&key).json(&body).send().await else {
                    return;
                };
                if r.status() != 202 {
                    continue;
                }
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                let ids: Vec<String> = if bulk {
                    v["ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().to_owned())
                        .collect()
                } else {
                    vec![v["id"].as_str().unwrap().to_owned()]
                };
                acked.lock().await.extend(ids);
                answered.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Let real traffic build up (awaited by count, bounded in time), then pull the plug.
    tokio::time::timeout(Duration::from_secs(20), async {
        while answered.load(Ordering::SeqCst) < 300 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("clients got answers");
    server.kill().await;
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() >= 300);

    let server = ServerProcess::start(&db, port, &[]).await;
    let http = reqwest::Client::new();
    let mut stored = std::collections::HashSet::new();
    let mut since = 0;
    let mut last_seq = 0;
    loop {
        let v: Value = http
            .get(format!(
                "{}/api/v1/projects/{}/events?since={since}&limit=1000",
                server.base, p.id
            ))
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = v["events"].as_array().unwrap();
        if page.is_empty() {
            break;
        }
        for e in page {
            let seq = e["seq"].as_i64().unwrap();
            assert_eq!(seq, last_seq + 1, "seqs have no gaps");
            last_seq = seq;
            stored.insert(e["id"].as_str().unwrap().to_owned());
        }
        since = last_seq;
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost",
        lost.len(),
        acked.len()
    );
    eprintln!(
        "{} acknowledged, {} stored after SIGKILL",
        acked.len(),
        stored.len()
    );
    server.kill().await;
}

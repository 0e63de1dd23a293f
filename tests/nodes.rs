//! SPEC §5: two Mesher nodes on one PostgreSQL database and one Redis, both real servers
//! started here, talked to as clients would.

mod common;

use common::postgres::TestPostgres;
use common::redis::TestRedis;
use common::ws::{Ws, next_json};
use common::{Creds, TestServer, WAIT};
use mesher::DatabaseUrl;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Cluster {
    pg: TestPostgres,
    redis: TestRedis,
    a: TestServer,
    b: TestServer,
    p: Creds,
}

async fn cluster() -> Cluster {
    let pg = tokio::task::spawn_blocking(TestPostgres::start_new)
        .await
        .unwrap();
    let redis = TestRedis::start();
    let db = DatabaseUrl::Postgres(pg.url());
    let node = |db: DatabaseUrl, redis: String| async move {
        TestServer::start_on(Some(db), |c| {
            c.redis_url = Some(redis);
            c.rate_limit = 0;
        })
        .await
    };
    let a = node(db.clone(), redis.url()).await;
    let b = node(db, redis.url()).await;
    let p = a.project("shop").await;
    for n in [&a, &b] {
        wait_redis(n, true).await;
    }
    Cluster { pg, redis, a, b, p }
}

/// Waits until `/healthz` says Redis is up (or unreachable).
async fn wait_redis(node: &TestServer, up: bool) {
    let want = if up { "up" } else { "unreachable" };
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(r) = node.http.get(node.url("/healthz")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["redis"] == want
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("redis never became {want}"));
}

async fn subscribe(node: &TestServer, p: &Creds) -> Ws {
    let url = node.ws_url(&format!("/stream/projects/{}?token={}", p.id, p.token));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("stream connects");
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "subscribed");
    ws
}

/// The next `n` events' seqs and messages, skipping issue and count messages.
async fn events(ws: &mut Ws, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = next_json(ws).await;
        assert_ne!(v["type"], "lagged", "{v}");
        if v["type"] == "event" {
            out.push((
                v["seq"].as_i64().unwrap(),
                v["event"]["message"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// Sends one event to `node`; answers its id.
async fn ingest(node: &TestServer, p: &Creds, message: &str) -> String {
    let (status, v) = node.send_event(p, &json!({ "message": message })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Nothing more arrives on `ws` for a moment (a duplicate would).
async fn quiet(ws: &mut Ws) {
    let extra = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        loop {
            let v = next_json(ws).await;
            if v["type"] == "event" {
                return v;
            }
        }
    })
    .await;
    assert!(extra.is_err(), "unexpected extra event: {:?}", extra.ok());
}

#[tokio::test]
async fn events_cross_nodes_once_and_in_seq_order() {
    let c = cluster().await;
    let mut on_a = subscribe(&c.a, &c.p).await;
    let mut on_b = subscribe(&c.b, &c.p).await;

    ingest(&c.a, &c.p, "from a").await;
    assert_eq!(events(&mut on_b, 1).await, [(1, "from a".to_owned())]);
    ingest(&c.b, &c.p, "from b").await;
    assert_eq!(
        events(&mut on_a, 2).await,
        [(1, "from a".to_owned()), (2, "from b".to_owned())]
    );
    assert_eq!(events(&mut on_b, 1).await, [(2, "from b".to_owned())]);

    // Both nodes at once: every subscriber sees 3..=42 exactly once, in order.
    let (a, b, p) = (&c.a, &c.b, &c.p);
    let sends = (0..40).map(|i| async move {
        let node = if i % 2 == 0 { a } else { b };
        ingest(node, p, &format!("burst {i}")).await
    });
    futures_util::future::join_all(sends).await;
    for ws in [&mut on_a, &mut on_b] {
        let seqs: Vec<i64> = events(ws, 40).await.into_iter().map(|(s, _)| s).collect();
        assert_eq!(seqs, (3..=42).collect::<Vec<_>>());
        quiet(ws).await;
    }
}

#[tokio::test]
async fn an_issue_resolved_on_one_node_reaches_the_other() {
    let c = cluster().await;
    let mut on_a = subscribe(&c.a, &c.p).await;
    ingest(&c.a, &c.p, "checkout failed").await;
    let issue = loop {
        let v = next_json(&mut on_a).await;
        if v["type"] == "event" {
            break v["issue_id"].as_i64().unwrap();
        }
    };
    let (status, _) = c.b.act(issue, "resolve", &c.p.token).await;
    assert_eq!(status, StatusCode::OK);
    let mut count = None;
    loop {
        let v = next_json(&mut on_a).await;
        if v["type"] == "issue_count" {
            count = v["count"].as_i64();
        }
        if v["type"] == "issue" && v["action"] == "resolved" {
            assert_eq!(v["issue"]["id"], issue);
            assert_eq!(v["issue"]["status"], "resolved");
            break;
        }
    }
    // The unresolved count that follows is the database's: 0.
    while count != Some(0) {
        let v = next_json(&mut on_a).await;
        if v["type"] == "issue_count" {
            count = v["count"].as_i64();
        }
    }
}

#[tokio::test]
async fn a_redis_outage_stops_nothing_local_and_loses_nothing_after() {
    let mut c = cluster().await;
    let mut on_a = subscribe(&c.a, &c.p).await;
    let mut on_b = subscribe(&c.b, &c.p).await;
    ingest(&c.a, &c.p, "before").await;
    assert_eq!(events(&mut on_b, 1).await, [(1, "before".to_owned())]);
    assert_eq!(events(&mut on_a, 1).await, [(1, "before".to_owned())]);

    c.redis.kill();
    wait_redis(&c.a, false).await;
    wait_redis(&c.b, false).await;
    // Each node keeps ingesting and delivering to its own subscribers.
    ingest(&c.a, &c.p, "a during").await;
    ingest(&c.b, &c.p, "b during").await;
    ingest(&c.b, &c.p, "b during 2").await;
    assert_eq!(events(&mut on_a, 1).await, [(2, "a during".to_owned())]);
    // B stored seq 3 after A's 2: it sees the gap and reads 2 from the database first.
    assert_eq!(
        events(&mut on_b, 3).await,
        [
            (2, "a during".to_owned()),
            (3, "b during".to_owned()),
            (4, "b during 2".to_owned())
        ]
    );

    // Redis returns on the same port: each node catches up from the database, in seq order.
    c.redis.restart();
    wait_redis(&c.a, true).await;
    wait_redis(&c.b, true).await;
    assert_eq!(
        events(&mut on_a, 2).await,
        [(3, "b during".to_owned()), (4, "b during 2".to_owned())]
    );
    // Nobody gets anything twice.
    ingest(&c.a, &c.p, "after").await;
    assert_eq!(events(&mut on_a, 1).await, [(5, "after".to_owned())]);
    assert_eq!(events(&mut on_b, 1).await, [(5, "after".to_owned())]);
    quiet(&mut on_a).await;
    quiet(&mut on_b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_answers_503_and_loses_no_202() {
    let mut c = cluster().await;
    ingest(&c.a, &c.p, "before").await;
    tokio::task::block_in_place(|| c.pg.stop());

    let r = common::post_event(
        &c.a.http,
        &c.a.base,
        &c.p.key,
        &json!({"message": "while down"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let r = c.a.http.get(c.a.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("database unavailable"),
        "{v}"
    );

    tokio::task::block_in_place(|| c.pg.start());
    // It recovers by itself: the next event is stored, and exactly the 202s are.
    let id = tokio::time::timeout(WAIT, async {
        loop {
            let (status, v) = c.a.send_event(&c.p, &json!({"message": "after"})).await;
            if status == StatusCode::ACCEPTED {
                return v["id"].as_str().unwrap().to_owned();
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("ingestion recovers");
    let stored: Vec<String> =
        c.b.all_events(&c.p)
            .await
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(stored, ["before", "after"]);
    assert_eq!(c.a.all_events(&c.p).await[1]["id"], id);
}

/// Waits (until `deadline`) for `ws`'s close frame; answers its code.
async fn close_code_by(ws: &mut Ws, deadline: std::time::Instant) -> u16 {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("the stream was still open at the deadline"),
            Ok(Some(Ok(Message::Close(Some(f))))) => return f.code.into(),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_rotated_token_or_key_is_refused_by_every_node_within_5s_and_its_streams_closed() {
    let within = std::time::Duration::from_secs(5);
    let c = cluster().await;
    let mut on_a = subscribe(&c.a, &c.p).await;
    let mut on_b = subscribe(&c.b, &c.p).await;
    ingest(&c.b, &c.p, "before").await;

    // The token, replaced through node A's database by the CLI's code.
    let rotated = mesher::admin::rotate_token(&c.a.db, c.p.id).await.unwrap();
    let at = std::time::Instant::now();
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(close_code_by(ws, at + within).await, 1008);
    }
    let new_token = rotated["token"].as_str().unwrap();
    for node in [&c.a, &c.b] {
        let issues = format!("/api/v1/projects/{}/issues", c.p.id);
        assert_eq!(
            node.get(&issues, &c.p.token).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(node.get(&issues, new_token).await.0, StatusCode::OK);
    }
    assert!(at.elapsed() < within);

    // The ingest key.
    let rotated = mesher::admin::rotate_key(&c.b.db, c.p.id, &c.b.addr.to_string())
        .await
        .unwrap();
    let at = std::time::Instant::now();
    let new_key = rotated["ingest_key"].as_str().unwrap();
    for node in [&c.a, &c.b] {
        let refused = tokio::time::timeout(within, async {
            loop {
                let (status, _) = node
                    .post("/api/v1/events", &c.p.key, &json!({"message": "old"}))
                    .await;
                if status == StatusCode::UNAUTHORIZED {
                    return;
                }
                assert_eq!(status, StatusCode::ACCEPTED);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            refused.is_ok(),
            "the old key still worked 5 s after rotate-key"
        );
        let (status, v) = node
            .post("/api/v1/events", new_key, &json!({"message": "new"}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    }
    assert!(at.elapsed() < within);
}

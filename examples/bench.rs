//! Load generator for a running Mesher server. Prints one JSON line per scenario.
//!
//! `cargo run --release --example bench -- ingest --url http://127.0.0.1:8080 --key KEY \
//!      --clients 32 --batch 1 --seconds 10`
//!
//! `scripts/bench.sh` starts a server pinned to CPU 0 and runs this pinned to CPU 1.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Args {
    scenario: String,
    token: String,
    project: i64,
    subscribers: usize,
    connections: usize,
    server_pid: u32,
    events: usize,
    rate: f64,
    url: String,
    key: String,
    clients: usize,
    batch: usize,
    seconds: f64,
}

fn parse_args() -> Args {
    let mut args = Args {
        scenario: String::new(),
        token: String::new(),
        project: 1,
        subscribers: 1000,
        connections: 10_000,
        server_pid: 0,
        events: 20_000,
        rate: 0.0,
        url: "http://127.0.0.1:8080".into(),
        key: String::new(),
        clients: 32,
        batch: 1,
        seconds: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--url" => args.url = val(),
            "--key" => args.key = val(),
            "--clients" => args.clients = val().parse().expect("--clients N"),
            "--batch" => args.batch = val().parse().expect("--batch N"),
            "--seconds" => args.seconds = val().parse().expect("--seconds S"),
            "--token" => args.token = val(),
            "--project" => args.project = val().parse().expect("--project ID"),
            "--subscribers" => args.subscribers = val().parse().expect("--subscribers N"),
            "--connections" => args.connections = val().parse().expect("--connections N"),
            "--server-pid" => args.server_pid = val().parse().expect("--server-pid PID"),
            "--events" => args.events = val().parse().expect("--events N"),
            "--rate" => args.rate = val().parse().expect("--rate EVENTS_PER_SEC"),
            s if !s.starts_with("--") => args.scenario = s.to_owned(),
            other => panic!("unknown option {other}"),
        }
    }
    args
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// C keep-alive clients posting single events (batch 1) or bulk batches, closed loop.
async fn ingest(args: &Args) -> Value {
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (url, key, batch) = (args.url.clone(), args.key.clone(), args.batch);
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (path, mut lat, mut events, mut errors) = (
                if batch == 1 { "/api/v1/events" } else { "/api/v1/events/bulk" },
                Vec::new(),
                0usize,
                0usize,
            );
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let one = |j: usize| json!({"message": format!("bench client {c} request {i} item {j} timeout after {j}s"), "level": "error", "tags": {"client": c.to_string()}});
                let body = if batch == 1 { one(0) } else { Value::Array((0..batch).map(one).collect()) };
                let t = Instant::now();
                match http.post(format!("{url}{path}")).bearer_auth(&key).json(&body).send().await {
                    Ok(r) if r.status() == 202 => {
                        lat.push(t.elapsed());
                        events += batch;
                    }
                    _ => errors += 1,
                }
            }
            (lat, events, errors)
        }));
    }
    let (mut lat, mut events, mut errors) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, e, x) = t.await.unwrap();
        lat.extend(l);
        events += e;
        errors += x;
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort();
    json!({
        "scenario": "ingest",
        "clients": args.clients,
        "batch": args.batch,
        "seconds": elapsed,
        "events": events,
        "events_per_sec": (events as f64 / elapsed).round(),
        "requests_per_sec": (lat.len() as f64 / elapsed).round(),
        "errors": errors,
        "latency_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
    })
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// The send time the publisher put in the event's `t` tag; a substring scan, because
/// parsing every delivery as JSON would make the load generator the bottleneck.
fn sent_at(text: &str) -> Option<u64> {
    let i = text.find("\"t\":\"")? + 5;
    let end = text[i..].find('"')? + i;
    text[i..end].parse().ok()
}

/// N stream subscribers on one project; events published in bulk (closed loop, or paced
/// at --rate); deliveries/s, loss and send-to-receipt latency.
async fn fanout(args: &Args) -> Value {
    use futures_util::StreamExt;
    let ws_base = args.url.replacen("http", "ws", 1);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.subscribers);
    let expected = args.events;
    let mut subs = Vec::new();
    for i in 0..args.subscribers {
        let url = format!(
            "{ws_base}/stream/projects/{}?token={}",
            args.project, args.token
        );
        let ready = ready_tx.clone();
        subs.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("subscriber connects");
            let _ = ws.next().await; // subscribed
            ready.send(()).await.unwrap();
            let (mut got, mut dropped, mut lat, mut last) =
                (0usize, 0u64, Vec::new(), Instant::now());
            while (got as u64 + dropped) < expected as u64 {
                let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
                else {
                    break;
                };
                let Ok(text) = m.to_text() else { continue };
                if text.starts_with("{\"type\":\"event\"") {
                    got += 1;
                    last = Instant::now();
                    // Sample latencies on a tenth of the subscribers to bound memory.
                    if i % 10 == 0
                        && let Some(t) = sent_at(text)
                    {
                        lat.push(Duration::from_micros(now_us().saturating_sub(t)));
                    }
                } else if text.starts_with("{\"type\":\"lagged\"") {
                    let v: Value = serde_json::from_str(text).unwrap();
                    dropped += v["dropped"].as_u64().unwrap_or(0);
                }
            }
            (got, dropped, lat, last)
        }));
    }
    drop(ready_tx);
    for _ in 0..args.subscribers {
        ready_rx.recv().await;
    }
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut sent = 0usize;
    let pad = "p".repeat(300);
    while sent < expected {
        let n = args.batch.min(expected - sent);
        let t = now_us().to_string();
        let batch: Vec<Value> = (0..n).map(|j| json!({"message": format!("fanout {}", sent + j), "fingerprint": ["bench"], "tags": {"t": t}, "extra": {"pad": pad}})).collect();
        let r = http
            .post(format!("{}/api/v1/events/bulk", args.url))
            .bearer_auth(&args.key)
            .json(&batch)
            .send()
            .await
            .expect("publish");
        assert_eq!(
            r.status(),
            202,
            "publish refused: {}",
            r.text().await.unwrap_or_default()
        );
        sent += n;
        if args.rate > 0.0 {
            let due = start + Duration::from_secs_f64(sent as f64 / args.rate);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    let publish_secs = start.elapsed().as_secs_f64();
    let (mut got, mut dropped, mut lat, mut last) = (0usize, 0u64, Vec::new(), start);
    for s in subs {
        let (g, d, l, t) = s.await.unwrap();
        got += g;
        dropped += d;
        lat.extend(l);
        last = last.max(t);
    }
    let secs = (last - start).as_secs_f64().max(publish_secs);
    lat.sort();
    let expected_total = (expected * args.subscribers) as u64;
    json!({
        "scenario": "fanout",
        "subscribers": args.subscribers,
        "events": expected,
        "batch": args.batch,
        "target_rate": args.rate,
        "publish_rate": (expected as f64 / publish_secs).round(),
        "deliveries": got,
        "deliveries_per_sec": (got as f64 / secs).round(),
        "lagged_dropped": dropped,
        "loss": expected_total as i64 - got as i64 - dropped as i64,
        "latency_ms": {"p50": percentile(&lat, 0.5), "p90": percentile(&lat, 0.9), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
    })
}

/// The server's resident memory in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// K idle stream connections; the server's RSS per connection.
async fn connections(args: &Args) -> Value {
    use futures_util::StreamExt;
    let ws_base = args.url.replacen("http", "ws", 1);
    let before = rss_kib(args.server_pid);
    let start = Instant::now();
    let mut held = Vec::with_capacity(args.connections);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let url = format!(
            "{ws_base}/stream/projects/{}?token={}",
            args.project, args.token
        );
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let r = tokio_tungstenite::connect_async(url).await;
            drop(permit);
            let (mut ws, _) = r.ok()?;
            ws.next().await?.ok()?; // subscribed
            Some(ws)
        }));
    }
    for t in tasks {
        if let Some(ws) = t.await.unwrap() {
            held.push(ws);
        }
    }
    let connect_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(args.server_pid);
    let open = held.len();
    json!({
        "scenario": "connections",
        "connections": open,
        "failed": args.connections - open,
        "connect_seconds": connect_secs,
        "server_rss_kib_before": before,
        "server_rss_kib_after": after,
        "rss_kib_per_connection": if open > 0 { (after.saturating_sub(before)) as f64 / open as f64 } else { 0.0 },
    })
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let result = match args.scenario.as_str() {
        "ingest" => ingest(&args).await,
        "fanout" => fanout(&args).await,
        "connections" => connections(&args).await,
        other => {
            eprintln!("unknown scenario '{other}': expected ingest, fanout or connections");
            std::process::exit(2);
        }
    };
    println!("{result}");
}

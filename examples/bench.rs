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
    url: String,
    key: String,
    clients: usize,
    batch: usize,
    seconds: f64,
}

fn parse_args() -> Args {
    let mut args = Args {
        scenario: String::new(),
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

#[tokio::main]
async fn main() {
    let args = parse_args();
    let result = match args.scenario.as_str() {
        "ingest" => ingest(&args).await,
        other => {
            eprintln!("unknown scenario '{other}': expected ingest");
            std::process::exit(2);
        }
    };
    println!("{result}");
}

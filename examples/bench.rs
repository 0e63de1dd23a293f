//! Load generator for a running Mesher server. Prints one JSON line per scenario.
//!
//! `cargo run --release --example bench -- ingest --url http://127.0.0.1:8080 --key KEY \
//!      --clients 32 --batch 1 --seconds 10`
//!
//! `... -- envelope --url … --key KEY --project ID --clients 32 --seconds 10` posts Sentry
//! envelopes of a 15 KB Python SDK event instead.
//!
//! `... -- parse --events 20000` needs no server: it maps the same SDK event's bytes to
//! the event Mesher stores (the Sentry mapping and the detail's JSON), in this process,
//! and reports the CPU time per event (the part of the envelope scenario that is not I/O).
//!
//! `... -- flood --url … --key KEY --server-pid PID --clients 16 --seconds 5` floods the
//! server with 1 MiB bodies under unknown keys while one client posts real events.
//!
//! `scripts/bench.sh` starts a server pinned to CPU 0 and runs this pinned to CPU 1.

use serde_json::{Value, json};
use std::sync::Arc;
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
    /// Where fan-out events are posted (default: `url`); another node, for cross-node runs.
    publish_url: Option<String>,
    key: String,
    clients: usize,
    batch: usize,
    /// Fan-out publishers in a closed loop (each waits for its answer before the next).
    publishers: usize,
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
        publish_url: None,
        key: String::new(),
        clients: 32,
        batch: 1,
        publishers: 1,
        seconds: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--url" => args.url = val(),
            "--publish-url" => args.publish_url = Some(val()),
            "--key" => args.key = val(),
            "--clients" => args.clients = val().parse().expect("--clients N"),
            "--batch" => args.batch = val().parse().expect("--batch N"),
            "--publishers" => args.publishers = val().parse().expect("--publishers N"),
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

/// Each client's (latencies, events, errors), summed; the latencies sorted.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize, usize)>>,
) -> (Vec<Duration>, usize, usize) {
    let (mut lat, mut events, mut errors) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, e, x) = t.await.unwrap();
        lat.extend(l);
        events += e;
        errors += x;
    }
    lat.sort();
    (lat, events, errors)
}

/// C keep-alive clients posting single events (batch 1) or bulk batches, closed loop; with
/// `--rate R` paced at R requests/s in all (each client R/C, on a fixed schedule), the
/// latency then counted from each request's scheduled time, so a server that falls behind
/// shows it (no coordinated omission).
async fn ingest(args: &Args) -> Value {
    // Every client sends one unmeasured request first (its connection opened), then all
    // start together: the schedule must not count the clients' own start-up as latency.
    let ready = Arc::new(tokio::sync::Barrier::new(args.clients));
    let begun: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (url, key, batch) = (args.url.clone(), args.key.clone(), args.batch);
        let (ready, begun, seconds) = (ready.clone(), begun.clone(), args.seconds);
        let every =
            (args.rate > 0.0).then(|| Duration::from_secs_f64(args.clients as f64 / args.rate));
        // Clients start spread over one period, so the load is even.
        let offset = every.map(|e| e.mul_f64(c as f64 / args.clients as f64));
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (path, mut lat, mut events, mut errors) = (
                if batch == 1 { "/api/v1/events" } else { "/api/v1/events/bulk" },
                Vec::new(),
                0usize,
                0usize,
            );
            let one = |i: u64, j: usize| json!({"message": format!("bench client {c} request {i} item {j} timeout after {j}s"), "level": "error", "tags": {"client": c.to_string()}});
            let warm = if batch == 1 { one(0, 0) } else { Value::Array((0..batch).map(|j| one(0, j)).collect()) };
            let _ = http.post(format!("{url}{path}")).bearer_auth(&key).json(&warm).send().await;
            ready.wait().await;
            let start = *begun.get_or_init(Instant::now);
            let deadline = start + Duration::from_secs_f64(seconds);
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let body = if batch == 1 { one(i, 0) } else { Value::Array((0..batch).map(|j| one(i, j)).collect()) };
                let t = match (every, offset) {
                    (Some(e), Some(o)) => {
                        let due = start + o + e * (i - 1) as u32;
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    _ => Instant::now(),
                };
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
    let (lat, events, errors) = gather(tasks).await;
    let elapsed = begun.get().map_or(0.0, |s| s.elapsed().as_secs_f64());
    json!({
        "scenario": "ingest",
        "clients": args.clients,
        "batch": args.batch,
        "target_rate": args.rate,
        "seconds": elapsed,
        "events": events,
        "events_per_sec": (events as f64 / elapsed).round(),
        "requests_per_sec": (lat.len() as f64 / elapsed).round(),
        "errors": errors,
        "latency_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
    })
}

/// A Python SDK error event as `sentry-sdk` 2.x sends it with `include_local_variables` and
/// source context (≈ 16 KB of JSON): a two-exception chain of 6 frames each with 5 lines
/// of context around the crash line and their locals, 20 breadcrumbs, contexts, modules.
fn sdk_event(client: usize) -> Value {
    let frame = |n: usize| {
        json!({
            "filename": format!("app/handlers/module_{n}.py"),
            "abs_path": format!("/srv/app/app/handlers/module_{n}.py"),
            "function": format!("handle_step_{n}"),
            "module": format!("app.handlers.module_{n}"),
            "lineno": 40 + n,
            "in_app": !n.is_multiple_of(3),
            "pre_context": (0..5).map(|k| format!("        value_{k} = compute_{k}(request.user.id, payload)")).collect::<Vec<_>>(),
            "context_line": format!("        return handle_step_{}(payload, value_4)", n + 1),
            "post_context": (0..5).map(|k| format!("    log.debug(\"step {n}.{k} done for %s\", request.path)")).collect::<Vec<_>>(),
            "vars": {
                "payload": format!("{{'order_id': {n}4123, 'items': [1, 2, 3], 'currency': 'EUR'}}"),
                "request": "<WSGIRequest: POST '/api/checkout'>",
                "self": format!("<app.handlers.Handler object at 0x7f3a2c{n:04x}>"),
                "value_4": "None",
            },
        })
    };
    let chain = |ty: &str, value: &str, id: usize| {
        json!({
            "type": ty, "value": value, "module": "builtins",
            "mechanism": {"type": "chained", "handled": false, "exception_id": id},
            "stacktrace": {"frames": (0..6).map(frame).collect::<Vec<_>>()},
        })
    };
    json!({
        "level": "error",
        "platform": "python",
        "environment": "production",
        "release": "shop@2.4.1",
        "server_name": format!("web-{client}"),
        "timestamp": 1_764_590_400.123,
        "exception": {"values": [
            chain("KeyError", "'price'", 1),
            chain("RuntimeError", "checkout failed: unknown product", 0),
        ]},
        "breadcrumbs": {"values": (0..20).map(|k| json!({
            "timestamp": 1_764_590_399.0 + k as f64 / 100.0, "category": "query", "level": "info",
            "message": format!("SELECT * FROM products WHERE id = {k} LIMIT 1"), "type": "default",
        })).collect::<Vec<_>>()},
        "user": {"id": "42", "email": "ada@example.com", "ip_address": "10.0.0.7"},
        "tags": {"region": "eu-west", "client": client.to_string()},
        "contexts": {
            "runtime": {"name": "CPython", "version": "3.11.7", "build": "3.11.7 (main, Dec  8 2023, 14:22:46) [GCC 12.2.0]"},
            "os": {"name": "Linux", "version": "6.1.0-17-amd64"},
            "trace": {"trace_id": "de55f07a38e34590a473fc19c265a46b", "span_id": "a88d189acf1e8695", "op": "http.server"},
        },
        "modules": (0..40).map(|k| (format!("package-{k}"), json!(format!("1.{k}.0")))).collect::<serde_json::Map<_, _>>(),
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
    })
}

/// C keep-alive clients posting Sentry envelopes of one SDK event each (`sdk_event`), as
/// an SDK does, closed loop; every event has its own id, chosen by the client.
async fn envelope(args: &Args) -> Value {
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let event_bytes = sdk_event(0).to_string().len();
    for c in 0..args.clients {
        let (url, key, project) = (args.url.clone(), args.key.clone(), args.project);
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let template = sdk_event(c);
            let (mut lat, mut events, mut errors) = (Vec::new(), 0usize, 0usize);
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let id = format!("{:016x}{:08x}{:08x}", now_us(), c, i);
                let mut event = template.clone();
                event["event_id"] = json!(id);
                let payload = event.to_string();
                let body = format!(
                    "{{\"event_id\":\"{id}\",\"sent_at\":\"2026-12-01T12:00:00.000Z\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
                    payload.len()
                );
                let t = Instant::now();
                let sent = http
                    .post(format!("{url}/api/{project}/envelope/"))
                    .header("x-sentry-auth", format!("Sentry sentry_key={key}, sentry_version=7"))
                    .header("content-type", "application/x-sentry-envelope")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => {
                        lat.push(t.elapsed());
                        events += 1;
                    }
                    _ => errors += 1,
                }
            }
            (lat, events, errors)
        }));
    }
    let (lat, events, errors) = gather(tasks).await;
    let elapsed = start.elapsed().as_secs_f64();
    json!({
        "scenario": "envelope",
        "clients": args.clients,
        "event_bytes": event_bytes,
        "seconds": elapsed,
        "events": events,
        "events_per_sec": (events as f64 / elapsed).round(),
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

/// What one subscriber saw.
struct Seen {
    got: usize,
    dropped: u64,
    lat: Vec<Duration>,
    last: Instant,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects a subscriber and waits for `subscribed`.
async fn subscribe(args: &Args) -> Ws {
    use futures_util::StreamExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(stream_url(args))
        .await
        .expect("subscriber connects");
    let _ = ws.next().await; // subscribed
    ws
}

fn stream_url(args: &Args) -> String {
    format!(
        "{}/stream/projects/{}?token={}",
        args.url.replacen("http", "ws", 1),
        args.project,
        args.token
    )
}

/// A subscriber with a 4 KiB receive buffer, like a client on a slow link: once it stops
/// reading, the kernel holds little for it and the server's outbox takes the rest.
async fn subscribe_slow(args: &Args) -> Ws {
    use futures_util::StreamExt;
    let addr: std::net::SocketAddr = args
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("--url http://IP:PORT");
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket
        .connect(addr)
        .await
        .expect("slow subscriber connects");
    let (mut ws, _) = tokio_tungstenite::client_async(
        stream_url(args),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .expect("slow subscriber upgrades");
    let _ = ws.next().await; // subscribed
    ws
}

/// Server CPU time (user + system) in seconds, from /proc (USER_HZ = 100 on Linux).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// `fast` reading subscribers and `slow` ones that never read after `subscribed`, on one
/// project; `args.events` events published in bulk (closed loop, or paced at --rate).
async fn run_fanout(args: &Args, fast: usize, slow: usize) -> Value {
    use futures_util::StreamExt;
    let expected = args.events;
    let mut subs = Vec::new();
    for i in 0..fast {
        let mut ws = subscribe(args).await;
        subs.push(tokio::spawn(async move {
            let mut seen = Seen {
                got: 0,
                dropped: 0,
                lat: Vec::new(),
                last: Instant::now(),
            };
            while (seen.got as u64 + seen.dropped) < expected as u64 {
                let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
                else {
                    break;
                };
                let Ok(text) = m.to_text() else { continue };
                if text.starts_with("{\"type\":\"event\"") {
                    seen.got += 1;
                    seen.last = Instant::now();
                    // Sample latencies on a tenth of the subscribers to bound memory.
                    if i % 10 == 0
                        && let Some(t) = sent_at(text)
                    {
                        seen.lat
                            .push(Duration::from_micros(now_us().saturating_sub(t)));
                    }
                } else if text.starts_with("{\"type\":\"lagged\"") {
                    let v: Value = serde_json::from_str(text).unwrap();
                    seen.dropped += v["dropped"].as_u64().unwrap_or(0);
                }
            }
            seen
        }));
    }
    // Held open, never read: the server's outbox and the kernel's buffers fill up.
    let mut stalled = Vec::new();
    for _ in 0..slow {
        stalled.push(subscribe_slow(args).await);
    }
    let (rss_before, cpu_before) = (rss_kib(args.server_pid), cpu_secs(args.server_pid));
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let sampler = {
        let (peak, pid) = (peak.clone(), args.server_pid);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let http = reqwest::Client::new();
    let start = Instant::now();
    let pad = "p".repeat(300);
    // Paced runs publish open loop (a slow answer does not delay the next request), with
    // at most WINDOW requests in flight; unpaced runs are `--publishers` closed loops, each
    // waiting for its answer (as SDKs do).
    const WINDOW: usize = 64;
    let in_flight = if args.rate > 0.0 {
        WINDOW
    } else {
        args.publishers.max(1)
    };
    let window = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight));
    let post_lat = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut sent = 0usize;
    while sent < expected {
        let n = args.batch.min(expected - sent);
        let t = now_us().to_string();
        let mut batch: Vec<Value> = (0..n).map(|j| json!({"message": format!("fanout {}", sent + j), "fingerprint": ["bench"], "tags": {"t": t}, "extra": {"pad": pad}})).collect();
        let permit = window.clone().acquire_owned().await.unwrap();
        // `--batch 1` posts one event per request, as SDKs do.
        let (path, body) = if args.batch == 1 {
            ("events", batch.pop().expect("one event"))
        } else {
            ("events/bulk", Value::Array(batch))
        };
        let req = http
            .post(format!(
                "{}/api/v1/{path}",
                args.publish_url.as_deref().unwrap_or(&args.url)
            ))
            .bearer_auth(&args.key)
            .json(&body);
        let post_lat = post_lat.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = req.send().await.expect("publish");
            assert_eq!(
                r.status(),
                202,
                "publish refused: {}",
                r.text().await.unwrap_or_default()
            );
            post_lat.lock().unwrap().push(t.elapsed());
            drop(permit);
        });
        sent += n;
        if args.rate > 0.0 {
            let due = start + Duration::from_secs_f64(sent as f64 / args.rate);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    let _all_answered = window.acquire_many(in_flight as u32).await;
    let publish_secs = start.elapsed().as_secs_f64();
    let (mut got, mut dropped, mut lat, mut last) = (0usize, 0u64, Vec::new(), start);
    for s in subs {
        let seen = s.await.unwrap();
        got += seen.got;
        dropped += seen.dropped;
        lat.extend(seen.lat);
        last = last.max(seen.last);
    }
    let (rss_after, cpu_after) = (rss_kib(args.server_pid), cpu_secs(args.server_pid));
    sampler.abort();
    drop(stalled);
    let secs = (last - start).as_secs_f64().max(publish_secs);
    lat.sort();
    let mut post_lat = std::mem::take(&mut *post_lat.lock().unwrap());
    post_lat.sort();
    let expected_total = (expected * fast) as u64;
    let mut out = json!({
        "subscribers": fast,
        "events": expected,
        "batch": args.batch,
        "publishers": if args.rate > 0.0 { 0 } else { in_flight },
        "target_rate": args.rate,
        "publish_rate": (expected as f64 / publish_secs).round(),
        "deliveries": got,
        "deliveries_per_sec": (got as f64 / secs).round(),
        "lagged_dropped": dropped,
        "loss": expected_total as i64 - got as i64 - dropped as i64,
        "latency_ms": {"p50": percentile(&lat, 0.5), "p90": percentile(&lat, 0.9), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
        "publish_latency_ms": {"p50": percentile(&post_lat, 0.5), "p99": percentile(&post_lat, 0.99), "max": percentile(&post_lat, 1.0)},
    });
    if args.server_pid != 0 {
        let cpu = cpu_after - cpu_before;
        out["server_cpu_seconds"] = json!(cpu);
        out["server_cpu_us_per_delivery"] =
            json!((cpu * 1e6 / got.max(1) as f64 * 100.0).round() / 100.0);
        out["server_rss_kib"] = json!({"before": rss_before, "peak": peak.load(std::sync::atomic::Ordering::Relaxed), "after": rss_after});
    }
    out
}

/// N stream subscribers on one project; deliveries/s, loss and send-to-receipt latency.
async fn fanout(args: &Args) -> Value {
    let mut out = run_fanout(args, args.subscribers, 0).await;
    out["scenario"] = json!("fanout");
    out
}

/// The fan-out twice on the same server: all subscribers reading, then with a tenth more
/// that stop reading. Reports the fast subscribers' p99 both ways and the server's RSS.
async fn slow_consumer(args: &Args) -> Value {
    let fast = args.subscribers - args.subscribers / 10;
    let slow = args.subscribers / 10;
    let without = run_fanout(args, fast, 0).await;
    let with = run_fanout(args, fast, slow).await;
    let p99 = |v: &Value| v["latency_ms"]["p99"].as_f64().unwrap_or(0.0);
    json!({
        "scenario": "slow-consumer",
        "fast_subscribers": fast,
        "slow_subscribers": slow,
        "fast_p99_ms_without_slow": p99(&without),
        "fast_p99_ms_with_slow": p99(&with),
        "p99_increase_percent": ((p99(&with) / p99(&without) - 1.0) * 1000.0).round() / 10.0,
        "server_rss_kib_with_slow": with["server_rss_kib"],
        "without": without,
        "with": with,
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

/// The Sentry mapping of one SDK event (`sdk_event`), `--events` times per round, 7 rounds:
/// the median round's time per event.
fn parse(args: &Args) -> Value {
    let mut event = sdk_event(0);
    event["event_id"] = json!("c0ffee00c0ffee00c0ffee00c0ffee00");
    let bytes = serde_json::to_vec(&event).expect("JSON");
    let one = || {
        let event = mesher::sentry::parse_event(&bytes).expect("a valid event");
        mesher::model::stored::DetailJson::of(&event.detail).expect("detail JSON")
    };
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..args.events {
                std::hint::black_box(one());
            }
            start.elapsed().as_secs_f64() * 1e6 / args.events as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    json!({
        "scenario": "parse",
        "event_bytes": bytes.len(),
        "events_per_round": args.events,
        "us_per_event": {"median": rounds[3], "min": rounds[0], "max": rounds[6]},
    })
}

/// A flood of requests with unknown ingest keys (`--clients` attackers in a closed loop,
/// each posting a 1 MiB body under a new random key, so no cache of bad keys helps),
/// while one legitimate client posts single events at `--rate` (default 100/s). First the
/// legitimate client alone for `--seconds`, then with the flood: what each refused request
/// costs the server's CPU (over what the legitimate client alone costs it), and the
/// legitimate client's latency in both phases.
async fn flood(args: &Args) -> Value {
    let rate = if args.rate > 0.0 { args.rate } else { 100.0 };
    let cpu_alone = cpu_secs(args.server_pid);
    let alone_started = Instant::now();
    let alone = legit_client(args, rate).await;
    // The server's CPU per second for the legitimate client alone, taken off below.
    let cpu_alone = (cpu_secs(args.server_pid) - cpu_alone) / alone_started.elapsed().as_secs_f64();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let body = bytes::Bytes::from(vec![b'{'; 1 << 20]);
    let cpu_before = cpu_secs(args.server_pid);
    let started = Instant::now();
    let mut attackers = Vec::new();
    for c in 0..args.clients {
        let (url, stop, body) = (args.url.clone(), stop.clone(), body.clone());
        attackers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut refused, mut other, mut broken) = (0usize, 0usize, 0usize);
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let key = format!(
                    "{:016x}{:016x}",
                    c as u64 + 1,
                    n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                );
                match http
                    .post(format!("{url}/api/v1/events"))
                    .bearer_auth(&key)
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 401 => refused += 1,
                    Ok(_) => other += 1,
                    Err(_) => broken += 1,
                }
            }
            (refused, other, broken)
        }));
    }
    let during = legit_client(args, rate).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut refused, mut other, mut broken) = (0, 0, 0);
    for a in attackers {
        let (r, o, b) = a.await.unwrap();
        (refused, other, broken) = (refused + r, other + o, broken + b);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(args.server_pid) - cpu_before;
    let attack_cpu = (cpu - cpu_alone * elapsed).max(0.0);
    let attempts = (refused + other + broken).max(1);
    json!({
        "scenario": "flood",
        "attackers": args.clients,
        "attacker_body_bytes": body.len(),
        "seconds": elapsed,
        "refused_401": refused,
        "other_status": other,
        "connection_errors": broken,
        "attack_requests_per_sec": (attempts as f64 / elapsed).round(),
        "server_cpu_share": cpu / elapsed,
        "server_cpu_us_per_attack_request": (attack_cpu * 1e6 / attempts as f64).round(),
        "legit_rate": rate,
        "legit_alone": alone,
        "legit_during_flood": during,
    })
}

/// One keep-alive client posting single events at `rate`/s for `--seconds`: its latency
/// from each request's scheduled time, and its errors.
async fn legit_client(args: &Args, rate: f64) -> Value {
    let http = reqwest::Client::new();
    let every = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let (mut lat, mut errors, mut i) = (Vec::new(), 0usize, 0u32);
    while Instant::now() < deadline {
        let due = start + every * i;
        i += 1;
        tokio::time::sleep_until(due.into()).await;
        let body = json!({"message": format!("legit {i}"), "level": "error"});
        match http
            .post(format!("{}/api/v1/events", args.url))
            .bearer_auth(&args.key)
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status() == 202 => lat.push(due.elapsed()),
            _ => errors += 1,
        }
    }
    lat.sort();
    json!({"requests": lat.len(), "errors": errors,
           "latency_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)}})
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let result = match args.scenario.as_str() {
        "ingest" => ingest(&args).await,
        "envelope" => envelope(&args).await,
        "parse" => parse(&args),
        "fanout" => fanout(&args).await,
        "connections" => connections(&args).await,
        "slow-consumer" => slow_consumer(&args).await,
        "flood" => flood(&args).await,
        other => {
            eprintln!(
                "unknown scenario '{other}': expected ingest, envelope, parse, fanout, slow-consumer, connections or flood"
            );
            std::process::exit(2);
        }
    };
    println!("{result}");
}

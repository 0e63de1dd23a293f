//! SPEC §8, event limits: an event built to cost the server (a fingerprint of thousands of
//! `{{ default }}`, tens of thousands of tags, lists of a million small values) is refused
//! or read within Relay's limits, at a cost that does not grow with its shape. The server
//! runs as a child process, so that its CPU time and memory are its own
//! (`/proc/<pid>/stat`, `/proc/<pid>/status`).

mod common;

use common::process::{ServerProcess, free_port, run, sqlite_url};
use common::{Creds, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

struct Server {
    process: ServerProcess,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> (Server, Creds, Creds) {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite_url(dir.path());
        let mut projects = Vec::new();
        for name in ["heavy", "other"] {
            let (code, out, err) =
                run(&["project", "create", name, "--database-url", &db], &[]).await;
            assert_eq!(code, 0, "{err}");
            projects.push(Creds::from_json(&serde_json::from_str(&out).unwrap()));
        }
        let process = ServerProcess::start(&db, free_port(), &["--rate-limit", "0"]).await;
        let server = Server {
            process,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        let other = projects.pop().unwrap();
        (server, projects.pop().unwrap(), other)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.process.base)
    }

    fn pid(&self) -> u32 {
        self.process.child.id().expect("running")
    }

    /// The server's CPU time so far (user + system).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command's closing parenthesis: state is the 3rd field, utime
        // and stime the 14th and 15th, in clock ticks (USER_HZ, 100 on Linux).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// Starts the server's peak resident memory afresh from what it holds now (Linux 4.0
    /// and later; where that is refused, the peak stays the peak so far, a looser bound).
    fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    /// The server's peak resident memory so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    async fn post(&self, path: &str, key: &str, body: Vec<u8>) -> (u16, Value) {
        let r = tokio::time::timeout(
            WAIT * 3,
            self.http
                .post(self.url(path))
                .header(
                    "X-Sentry-Auth",
                    format!("Sentry sentry_key={key}, sentry_version=7"),
                )
                .header("Content-Type", "application/json")
                .body(body)
                .send(),
        )
        .await
        .expect("answered in time")
        .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (u16, String) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// An envelope of one event item.
fn envelope(payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{{}}\n{{\"type\":\"event\",\"length\":{}}}\n",
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out.push(b'\n');
    out
}

/// A message of about 100 KB with a variable part in every word (what normalizing costs).
fn long_message() -> String {
    (0..6_000)
        .map(|i| format!("timeout {i}s "))
        .collect::<String>()
        + &"x".repeat(30_000)
}

/// The answer of every ingest route to one event: (status, error text).
async fn every_route(s: &Server, p: &Creds, event: &Value) -> Vec<(&'static str, u16, String)> {
    let text = event.to_string();
    let mut out = Vec::new();
    for (route, path, body) in [
        (
            "events",
            "/api/v1/events".to_owned(),
            text.clone().into_bytes(),
        ),
        (
            "bulk",
            "/api/v1/events/bulk".to_owned(),
            format!("[{text}]").into_bytes(),
        ),
        (
            "envelope",
            format!("/api/{}/envelope/", p.id),
            envelope(text.as_bytes()),
        ),
        (
            "store",
            format!("/api/{}/store/", p.id),
            text.clone().into_bytes(),
        ),
    ] {
        let (status, v) = s.post(&path, &p.key, body).await;
        out.push((
            route,
            status,
            v["error"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{}/ingest?sentry_key={}",
        s.process.port, p.key
    ))
    .await
    .unwrap();
    ws.send(Message::text(text)).await.unwrap();
    let answer = loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            break serde_json::from_str::<Value>(t.as_str()).unwrap();
        }
    };
    let status = if answer["status"] == "accepted" {
        202
    } else {
        400
    };
    out.push((
        "ingest",
        status,
        answer["error"].as_str().unwrap_or_default().to_owned(),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fingerprint_of_2000_defaults_is_refused_at_once_on_every_route() {
    let (s, p, _) = Server::start().await;
    // Every route warmed up first (its buffers, the writer, the allocator's pages).
    for (route, status, error) in every_route(&s, &p, &json!({"message": long_message()})).await {
        assert!(matches!(status, 200 | 202), "{route}: {status} {error}");
    }
    let event = json!({"message": long_message(), "fingerprint": vec!["{{ default }}"; 2000]});
    assert!(event.to_string().len() > 130_000);
    s.reset_peak_rss();
    let (cpu, rss, started) = (s.cpu(), s.peak_rss_kib(), Instant::now());
    for (route, status, error) in every_route(&s, &p, &event).await {
        assert!(matches!(status, 400), "{route}: {status} {error}");
        assert!(error.contains("at most 64"), "{route}: {error}");
    }
    let (cpu, rss) = (s.cpu() - cpu, s.peak_rss_kib().saturating_sub(rss));
    // Once, 2,000 normalizations of the message took 1.4 s of CPU and 237 MB per request.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        cpu < Duration::from_millis(600),
        "five refusals cost {cpu:?} of CPU"
    );
    assert!(rss < 16 * 1024, "peak RSS grew by {rss} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_defaults_cost_what_one_does() {
    let (s, p, _) = Server::start().await;
    let message = long_message();
    let cost = |n: usize| {
        let event = json!({"message": message, "fingerprint": vec!["{{ default }}"; n]});
        let (s, p) = (&s, &p);
        async move {
            let before = s.cpu();
            for _ in 0..5 {
                let (status, v) = s
                    .post("/api/v1/events", &p.key, event.to_string().into_bytes())
                    .await;
                assert_eq!(status, 202, "{v}");
            }
            s.cpu() - before
        }
    };
    // Warm: the first event creates its issue and the server's caches.
    cost(1).await;
    let one = cost(1).await;
    let sixty_four = cost(64).await;
    // Once each placeholder normalized the 100 KB message again: 64 times the work.
    assert!(
        sixty_four < one * 2 + Duration::from_millis(100),
        "5 events with 64 placeholders cost {sixty_four:?}, with one {one:?}"
    );
}

/// 40,000 tags, each pair about 15 bytes: some 600 KB.
fn tag_flood(n: usize) -> Value {
    let tags: serde_json::Map<String, Value> = (0..40_000)
        .map(|i| (format!("k{n}-{i}"), json!(format!("v{i}"))))
        .collect();
    json!({"message": "tag flood", "tags": tags})
}

/// The median time of 15 single events of a project, one after the other.
async fn p50(s: &Server, p: &Creds) -> Duration {
    let single = json!({"message": "a single event"}).to_string();
    let mut times = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        let (status, _) = s
            .post("/api/v1/events", &p.key, single.clone().into_bytes())
            .await;
        assert_eq!(status, 202);
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_flood_is_accepted_with_100_tags_indexed_and_slows_no_one() {
    let (s, heavy, other) = Server::start().await;
    let (status, v) = s
        .post(
            "/api/v1/events",
            &heavy.key,
            tag_flood(0).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let issue = v["issue_id"].as_i64().unwrap();
    let (status, breakdown) = s
        .get(&format!("/api/v1/issues/{issue}/tags"), &heavy.token)
        .await;
    assert_eq!(status, 200);
    let tags: Value = serde_json::from_str(&breakdown).unwrap();
    let keys: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    // 100 tags and `environment` (the event has no release).
    assert_eq!(keys.len(), 101, "{:?}…", &keys[..keys.len().min(8)]);
    assert!(
        breakdown.len() < 32 * 1024,
        "the breakdown is {} bytes",
        breakdown.len()
    );
    // Every tag is still in the event as received.
    let (_, events) = s
        .get(
            &format!("/api/v1/issues/{issue}/events?limit=1"),
            &heavy.token,
        )
        .await;
    let id = serde_json::from_str::<Value>(&events).unwrap()["events"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, whole) = s
        .get(
            &format!("/api/v1/projects/{}/events/{id}", heavy.id),
            &heavy.token,
        )
        .await;
    let whole: Value = serde_json::from_str(&whole).unwrap();
    assert_eq!(
        whole["event"]["data"]["tags"].as_object().unwrap().len(),
        40_000
    );
    assert_eq!(whole["event"]["tags"].as_object().unwrap().len(), 100);

    let baseline = p50(&s, &other).await;
    // Eight floods sent at once; the other project's events are timed while they are
    // processed.
    let mut floods = Vec::new();
    for n in 1..=8 {
        let (http, url, key) = (s.http.clone(), s.url("/api/v1/events"), heavy.key.clone());
        let body = tag_flood(n).to_string();
        floods.push(tokio::spawn(async move {
            let r = http
                .post(&url)
                .bearer_auth(&key)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            Instant::now()
        }));
    }
    let started = Instant::now();
    let loaded = p50(&s, &other).await;
    let measured = started.elapsed();
    let mut processed = Duration::ZERO;
    for f in floods {
        processed = processed.max(f.await.unwrap() - started);
    }
    eprintln!(
        "p50 {loaded:?} (baseline {baseline:?}); measured for {measured:?}, floods done after {processed:?}"
    );
    assert!(
        processed > measured / 2,
        "the floods were processed while the events were timed"
    );
    // Once 40,000 rollup rows per event on the one writer raised it from 12 to 360 ms.
    assert!(
        loaded < baseline * 3 + Duration::from_millis(20),
        "p50 {loaded:?} while eight floods were processed, {baseline:?} before"
    );
}

/// Shapes of 1 MiB built to cost: a million small values where the event has lists.
fn amplifiers() -> Vec<(&'static str, Value)> {
    let n = 300_000;
    let objects = || vec![json!({}); n];
    let values: Vec<Value> = (0..20_000)
        .map(|_| json!({"type": "E", "stacktrace": {"frames": [{}]}}))
        .collect();
    let params = vec![json!(0); 450_000];
    // 250 frames of 4 KB names: what `{{ default }}` stands for is 1 MB.
    let long_frames: Vec<Value> = (0..250)
        .map(|i| json!({"function": format!("{i}{}", "f".repeat(4000))}))
        .collect();
    vec![
        (
            "sixty-four defaults over long frames",
            json!({"message": "m", "stacktrace": long_frames, "fingerprint": vec!["{{ default }}"; 64]}),
        ),
        (
            "native frames",
            json!({"message": "m", "stacktrace": objects()}),
        ),
        (
            "native breadcrumbs",
            json!({"message": "m", "breadcrumbs": objects()}),
        ),
        (
            "native extra",
            json!({"message": "m", "extra": {"zeros": vec![0; 450_000]}}),
        ),
        (
            "native unknown key",
            json!({"message": "m", "anything": vec![[0]; 200_000]}),
        ),
        (
            "sentry exception values",
            json!({"exception": {"values": values}}),
        ),
        (
            "sentry frames",
            json!({"exception": {"values": [{"type": "E", "stacktrace": {"frames": objects()}}]}}),
        ),
        (
            "sentry params",
            json!({"logentry": {"message": "%s", "params": params}}),
        ),
        (
            "sentry tag pairs",
            json!({"message": "m", "tags": vec![["k", "v"]; 90_000]}),
        ),
        // A key given twice: the one-scan reading does not apply, the key-by-key one does.
        (
            "sentry twice",
            json!({"message": "m", "level": "error", "contexts": vec![[0]; 200_000]}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_built_to_amplify_cost_about_their_size() {
    let (s, p, _) = Server::start().await;
    // Warm up the writer, the caches and the allocator with one large ordinary event.
    let warm = json!({"message": "m", "extra": {"s": "x".repeat(900_000)}}).to_string();
    assert_eq!(
        s.post("/api/v1/events", &p.key, warm.into_bytes()).await.0,
        202
    );
    for (name, event) in amplifiers() {
        let mut body = event.to_string();
        if name == "sentry twice" {
            body.insert_str(1, r#""level": "error", "#);
        }
        assert!(body.len() < 1 << 20, "{name}: {} bytes", body.len());
        let path = if !name.starts_with("sentry") {
            "/api/v1/events".to_owned()
        } else {
            format!("/api/{}/store/", p.id)
        };
        s.reset_peak_rss();
        let rss = s.peak_rss_kib();
        let cpu = s.cpu();
        let (status, v) = s.post(&path, &p.key, body.into_bytes()).await;
        let cpu = s.cpu() - cpu;
        assert!(matches!(status, 200 | 202), "{name}: {status} {v}");
        // A debug build: a release build takes a tenth of this.
        assert!(cpu < Duration::from_millis(1500), "{name}: {cpu:?} of CPU");
        let grown = s.peak_rss_kib().saturating_sub(rss);
        eprintln!("{name}: cpu {cpu:?} rss +{grown}");
        // 48 MiB: a debug build, whose first event of a shape may also grow the allocator's
        // per-thread pages and a zstd context on a worker thread not yet used (16–26 MiB
        // seen for the first shape); the old reading grew by 143 MiB on it.
        assert!(grown < 48 * 1024, "{name}: peak RSS grew by {grown} KiB");
    }
}

//! What source maps cost (SPEC §10, "Speed"; docs/BENCHMARKS.md, "Source maps"): prints one
//! JSON object.
//!
//! - `first_parse_ms`: the first event of a 10 MiB map: its files read (from memory here)
//!   and the map parsed; `warm_us_per_event`: mapping a 50-frame event once the map is
//!   cached (mean, p50, p99 over `--events`).
//! - `cache`: 20 different 10 MiB maps through a cache bounded at 64 MiB: the bytes it
//!   counts and the process's resident memory, which stay at the bound.
//! - `ingest`: a real server (SQLite in a temporary directory) with the map uploaded:
//!   50-frame events posted one at a time, those that need mapping (minified JavaScript of
//!   the uploaded release) and those that do not (Python), alternated in rounds in one run.
//!
//! `cargo run --release --example sourcemap_cost -- [--events N] [--rounds R]`

use mesher::sourcemaps::{Artifact, ArtifactSource, DEFAULT_CACHE_BYTES, Mapper, Want};
use serde_json::{Value, json};
use sourcemap::SourceMapBuilder;
use std::time::{Duration, Instant};

/// Lines of the generated minified file; each has [`TOKENS_PER_LINE`] mapped tokens.
const LINES: u32 = 400;
const TOKENS_PER_LINE: u32 = 500;
const FRAMES: usize = 50;

/// A map of about 10 MiB: 100 sources of ~40 KB each, 200,000 tokens, with names.
fn big_map(seed: u32) -> (Vec<u8>, Vec<u8>) {
    let mut b = SourceMapBuilder::new(Some("app.min.js"));
    let sources: Vec<u32> = (0..100)
        .map(|i| {
            let id = b.add_source(&format!("src/module{seed}_{i}.js"));
            let body: String = (0..1000)
                .map(|l| format!("  const value{l} = compute(input, {l}, options.factor * {l}); // line {l} of the module\n"))
                .collect();
            b.set_source_contents(id, Some(&body));
            id
        })
        .collect();
    let mut minified = String::new();
    for line in 0..LINES {
        for t in 0..TOKENS_PER_LINE {
            let src = sources[((line * TOKENS_PER_LINE + t) % 100) as usize];
            let name = b.add_name(&format!("originalName{t}"));
            b.add_raw(
                line,
                t * 12,
                (line * 2 + t) % 1000,
                2,
                Some(src),
                Some(name),
                false,
            );
            minified.push_str(&format!("function a{t}(){{}}"));
        }
        minified.push('\n');
    }
    let mut out = Vec::new();
    b.into_sourcemap().to_writer(&mut out).unwrap();
    (out, minified.into_bytes())
}

/// Files in memory: `~/static/app.min.js` and its map, for release `bench-1`.
struct Memory {
    maps: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ArtifactSource for Memory {
    async fn by_debug_id(&self, _: i64, id: &str, want: Want) -> Result<Option<Artifact>, String> {
        let n: usize = id.parse().map_err(|_| "not a number".to_owned())?;
        let (map, min) = &self.maps[n];
        let data = if want == Want::SourceMap { map } else { min };
        Ok(Some(Artifact {
            url: "~/static/app.min.js".into(),
            is_map: want == Want::SourceMap,
            data: data.clone(),
            ..Artifact::default()
        }))
    }
    async fn by_url(
        &self,
        _: i64,
        _: &str,
        _: Option<&str>,
        _: &str,
    ) -> Result<Option<Artifact>, String> {
        Ok(None)
    }
    async fn changed_at(&self, _: i64) -> Result<Option<i64>, String> {
        Ok(Some(1))
    }
}

/// A Sentry event of 50 minified frames, its file named by debug image `id`.
fn js_event(id: usize, release: Option<&str>) -> Value {
    let frames: Vec<Value> = (0..FRAMES as u32)
        .map(|i| {
            json!({"filename": "https://shop.example/static/app.min.js", "function": format!("a{i}"),
                   "lineno": 1 + (i * 7) % LINES, "colno": 1 + (i * 37 % TOKENS_PER_LINE) * 12, "in_app": true})
        })
        .collect();
    json!({"release": release, "exception": {"values": [{"type": "Error", "value": "boom",
        "stacktrace": {"frames": frames}}]},
        "debug_meta": {"images": [{"type": "sourcemap", "code_file": "https://shop.example/static/app.min.js", "debug_id": id.to_string()}]}})
}

fn summary(v: &mut [f64]) -> Value {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    let r = |x: f64| (x * 10.0).round() / 10.0;
    json!({"mean": r(v.iter().sum::<f64>() / v.len() as f64), "p50": r(at(0.5)), "p99": r(at(0.99))})
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0.0);
    (kb / 1024.0 * 10.0).round() / 10.0
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

async fn mapping_cost(events: usize) -> Value {
    let (map, min) = big_map(0);
    let map_mib = map.len() as f64 / (1 << 20) as f64;
    let mapper = Mapper::new(
        Memory {
            maps: vec![(map, min)],
        },
        DEFAULT_CACHE_BYTES,
    );
    let event = mesher::sourcemaps::event::SentEvent::read(&js_event(0, None).to_string());
    let t = Instant::now();
    let first = mapper.map_event(1, &event).await;
    let first_parse_ms = t.elapsed().as_secs_f64() * 1e3;
    let mapped = serde_json::to_value(&first).unwrap()[0]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["mapped"] == true)
        .count();
    let mut warm = Vec::with_capacity(events);
    for _ in 0..events {
        let t = Instant::now();
        std::hint::black_box(mapper.map_event(1, &event).await);
        warm.push(t.elapsed().as_secs_f64() * 1e6);
    }
    json!({"map_mib": (map_mib * 10.0).round() / 10.0, "frames": FRAMES, "frames_mapped": mapped,
           "first_parse_ms": (first_parse_ms * 10.0).round() / 10.0, "warm_us_per_event": summary(&mut warm)})
}

async fn cache_bound() -> Value {
    let bound = 64 << 20;
    let before = rss_mib();
    let maps: Vec<_> = (0..20).map(big_map).collect();
    let generated = rss_mib();
    let mapper = Mapper::new(Memory { maps }, bound);
    for n in 0..20 {
        let event = mesher::sourcemaps::event::SentEvent::read(&js_event(n, None).to_string());
        mapper.map_event(1, &event).await;
    }
    json!({"maps": 20, "bound_mib": 64, "cached_mib": mapper.cached_bytes() >> 20,
           "rss_mib_before": before, "rss_mib_with_maps_generated": generated, "rss_mib_after": rss_mib()})
}

#[tokio::main]
async fn main() {
    let events = arg("--events", 1000);
    let rounds = arg("--rounds", 5);
    let mapping = mapping_cost(events).await;
    let ingest = ingest::run(events, rounds).await;
    let cache = cache_bound().await;
    println!(
        "{}",
        json!({"mapping": mapping, "ingest": ingest, "cache": cache})
    );
}

mod ingest {
    //! A real server with the 10 MiB map uploaded, events posted one at a time.

    use super::*;
    use mesher::model::artifact::{ArtifactKind, BundleTarget, NewArtifact};

    fn artifact(url: &str, kind: ArtifactKind, data: &[u8]) -> NewArtifact {
        NewArtifact {
            url: url.into(),
            kind,
            debug_id: None,
            sourcemap: None,
            compressed: zstd::bulk::compress(data, 1).unwrap(),
        }
    }

    fn python_event() -> Value {
        let frames: Vec<Value> = (0..FRAMES)
            .map(|i| json!({"filename": format!("shop/mod{i}.py"), "function": format!("f{i}"), "lineno": i + 1, "in_app": true}))
            .collect();
        json!({"release": "bench-1", "exception": {"values": [{"type": "ValueError", "value": "boom",
            "stacktrace": {"frames": frames}}]}})
    }

    pub(super) async fn run(events: usize, rounds: usize) -> Value {
        let dir = tempfile_dir();
        let url: mesher::DatabaseUrl = format!("sqlite://{}/bench.db", dir.display())
            .parse()
            .unwrap();
        let project = mesher::admin::create_project(&url, "bench", "127.0.0.1:1")
            .await
            .unwrap();
        let (id, key) = (
            project["id"].as_i64().unwrap(),
            project["ingest_key"].as_str().unwrap().to_owned(),
        );
        let store = mesher::store::open(&url).await.unwrap();
        let (map, min) = big_map(0);
        let target = BundleTarget {
            projects: vec![id],
            checksum: "0".repeat(40),
            release: Some("bench-1".into()),
            dist: None,
        };
        let files = [
            artifact("~/static/app.min.js", ArtifactKind::MinifiedSource, &min),
            artifact("~/static/app.min.js.map", ArtifactKind::SourceMap, &map),
        ];
        store.store_bundle(&target, &files, &[]).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = mesher::ServeConfig::new(listener.local_addr().unwrap(), url);
        config.rate_limit = 0;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(mesher::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let post = |body: Value| {
            let req = client
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(&key)
                .json(&body);
            async move {
                let t = Instant::now();
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
                t.elapsed().as_secs_f64() * 1e6
            }
        };
        // Native events (`POST /api/v1/events`): the exception beside its stack trace.
        let native = |e: Value| {
            let frames = e["exception"]["values"][0]["stacktrace"]["frames"].clone();
            json!({"release": "bench-1", "exception": {"type": "Error", "value": "boom"}, "stacktrace": frames})
        };
        let js_body = native(js_event(0, None));
        let kinds = [
            ("needs_mapping", js_body),
            ("no_javascript", native(python_event())),
        ];
        post(kinds[0].1.clone()).await; // the map parsed once, before timing
        let mut lat: Vec<Vec<f64>> = vec![Vec::new(), Vec::new()];
        let mut secs = [Duration::ZERO; 2];
        for _ in 0..rounds {
            for (k, (_, body)) in kinds.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..events / rounds {
                    lat[k].push(post(body.clone()).await);
                }
                secs[k] += t.elapsed();
            }
        }
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        let _ = std::fs::remove_dir_all(&dir);
        let mut out = serde_json::Map::new();
        for (k, (name, _)) in kinds.iter().enumerate() {
            let per_s = lat[k].len() as f64 / secs[k].as_secs_f64();
            out.insert((*name).into(), json!({"events": lat[k].len(), "per_s": per_s.round(), "latency_us": summary(&mut lat[k])}));
        }
        Value::Object(out)
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mesher-sourcemap-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

//! The ceiling of durable single-event ingest on this machine: a server that does only
//! what every durable answer needs (HTTP, a group commit of the raw bodies, one sync
//! per group) and nothing an error tracker does (no parsing, grouping or database).
//!
//! It answers `POST /api/v1/events` like Mesher (202, `{"id", "issue_id"}`), so
//! `examples/bench ingest` drives it unchanged (docs/BENCHMARKS.md, "The durable ceiling probe"):
//!
//! ```text
//! cargo build --release --example durable_ceiling --example bench
//! taskset -c 0 target/release/examples/durable_ceiling --listen 127.0.0.1:3999 --file /tmp/ceiling.log &
//! taskset -c 1 target/release/examples/bench ingest --url http://127.0.0.1:3999 --key k --clients 32
//! ```
//!
//! `--sync fdatasync` (default) writes each group with one `pwrite` into a preallocated
//! file and one `fdatasync`, as a log of our own would; `--sync none` skips the sync (the
//! same without durability, for comparison). Any ingest key is taken. Nothing here is used
//! by the server.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use clap::Parser;
use std::os::unix::fs::FileExt;
use tokio::sync::{mpsc, oneshot};

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3999")]
    listen: String,
    /// The log file (preallocated to 256 MiB, then overwritten in a ring).
    #[arg(long)]
    file: std::path::PathBuf,
    /// `fdatasync` after each group, or `none`.
    #[arg(long, value_enum, default_value_t = Sync::Fdatasync)]
    sync: Sync,
    /// Also write this many bytes per event, unsynced, to a second file (`<file>.data`):
    /// the data a database writes besides its log, left to the kernel's writeback.
    #[arg(long, default_value_t = 0)]
    also_write: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Sync {
    Fdatasync,
    None,
}

type Job = (Bytes, oneshot::Sender<()>);

const LOG_BYTES: u64 = 256 << 20;

fn main() {
    let args = Args::parse();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&args.file)
        .expect("the log file");
    // Written once in full, so that later overwrites sync data only, not allocation.
    let zeros = vec![0u8; 1 << 20];
    for i in 0..(LOG_BYTES >> 20) {
        file.write_all_at(&zeros, i << 20).expect("preallocating");
    }
    file.sync_all().expect("syncing the preallocation");
    let sync = args.sync == Sync::Fdatasync;
    let data = (args.also_write > 0).then(|| {
        let path = args.file.with_extension("data");
        let data = std::fs::File::create(path).expect("the data file");
        (data, args.also_write)
    });
    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    std::thread::spawn(move || group_commits(file, data, rx, sync));
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async move {
        let app = Router::new()
            .route("/api/v1/events", post(event))
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .expect("the listen address");
        axum::serve(listener, app).await.expect("serving");
    });
}

async fn event(
    State(tx): State<mpsc::UnboundedSender<Job>>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let (reply, done) = oneshot::channel();
    if tx.send((body, reply)).is_err() || done.await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "{}");
    }
    (
        StatusCode::ACCEPTED,
        r#"{"id":"00000000000000000000000000000000","issue_id":0}"#,
    )
}

/// Takes every waiting body, appends them with one `pwrite`, syncs once, answers them all.
fn group_commits(
    file: std::fs::File,
    data: Option<(std::fs::File, usize)>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    sync: bool,
) {
    let mut at = 0u64;
    let mut data_at = 0u64;
    let filler = vec![7u8; data.as_ref().map_or(0, |d| d.1) * 64];
    let mut buf = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while let Ok(next) = rx.try_recv() {
            group.push(next);
        }
        buf.clear();
        for (body, _) in &group {
            buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
            buf.extend_from_slice(body);
        }
        if at + buf.len() as u64 > LOG_BYTES {
            at = 0;
        }
        file.write_all_at(&buf, at).expect("writing the log");
        at += buf.len() as u64;
        if let Some((data, per_event)) = &data {
            let mut left = per_event * group.len();
            while left > 0 {
                let n = left.min(filler.len());
                if data_at + n as u64 > LOG_BYTES {
                    data_at = 0;
                }
                data.write_all_at(&filler[..n], data_at)
                    .expect("writing the data");
                data_at += n as u64;
                left -= n;
            }
        }
        if sync {
            file.sync_data().expect("syncing the log");
        }
        for (_, reply) in group {
            let _ = reply.send(());
        }
    }
}

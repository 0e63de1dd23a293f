//! SPEC §8, health tells the truth: `/healthz` answers `503 {"status":"degraded"}` while
//! group commits fail, though the database still answers reads, and `200` again after
//! one succeeds. Commits really fail here: the SQLite file lives on a small tmpfs that is
//! filled up (where the test may mount one: as root, as CI runs), or the server process is
//! held to a file size limit (`RLIMIT_FSIZE`, which any user may set on its own process).

mod common;

use common::WAIT;
use common::process::{bin, free_port, run};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// A tmpfs of `size` at `dir`, or why it cannot be mounted.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Tmpfs(dir.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// How the test makes commits fail.
enum Fault {
    /// The database's filesystem is full.
    FullDisk { filler: PathBuf },
    /// The server may not write past 4 KiB into any file.
    FileSizeLimit,
}

struct Server {
    child: Child,
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Server {
    /// `mesher serve` on the SQLite file `db`, with one project. Started through `sh` so
    /// that SIGXFSZ is ignored (an ignored signal stays ignored across `exec`): past a file
    /// size limit, a write fails with EFBIG instead of killing the process.
    async fn start(db: &Path) -> Server {
        let url = format!("sqlite://{}", db.display());
        let (code, out, err) =
            run(&["project", "create", "app", "--database-url", &url], &[]).await;
        assert_eq!(code, 0, "{err}");
        let project: Value = serde_json::from_str(&out).unwrap();
        let port = free_port();
        let child = Command::new("sh")
            .args(["-c", r#"trap '' XFSZ; exec "$0" "$@""#, bin()])
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &url])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("server starts");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            key: project["ingest_key"].as_str().unwrap().to_owned(),
            http: reqwest::Client::new(),
        };
        tokio::time::timeout(WAIT, async {
            while server.health().await.0 != 200 {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await
        .expect("healthy in time");
        server
    }

    async fn health(&self) -> (u16, Value) {
        match self.http.get(format!("{}/healthz", self.base)).send().await {
            Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    /// Posts an event of about 200 KB that compresses poorly (so that it needs new pages).
    async fn post(&self, n: u64) -> (u16, Value) {
        let mut state = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let message: String = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                        [(state % 64) as usize],
                )
            })
            .collect();
        let r = common::post_event(
            &self.http,
            &self.base,
            &self.key,
            &json!({ "message": message }),
        )
        .await
        .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }
}

/// Sets the soft file size limit of process `pid` (`None`: unlimited).
fn limit_file_size(pid: u32, bytes: Option<u64>) {
    let limit = bytes.map_or_else(|| "unlimited".to_owned(), |b| b.to_string());
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}:")])
        .status()
        .expect("prlimit runs (util-linux)");
    assert!(status.success(), "prlimit --fsize={limit}");
}

/// Fills the filesystem holding `path` with one file, until it is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

/// Healthy → commits fail (the event answered 503, `/healthz` 503 degraded, reads still
/// working) → the fault cleared → an event stored → healthy again.
async fn degraded_while_commits_fail(server: &Server, fault: &Fault) {
    let (status, v) = server.post(0).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        server.health().await,
        (200, json!({"status": "ok", "database": "up"}))
    );

    match fault {
        Fault::FullDisk { filler } => fill(filler),
        Fault::FileSizeLimit => limit_file_size(server.pid(), Some(4096)),
    }
    // Some commits may still fit in the pages the database and its log already have.
    let mut refused = None;
    for n in 1..=100 {
        let (status, v) = server.post(n).await;
        if status != 202 {
            refused = Some((status, v));
            break;
        }
    }
    let (status, v) = refused.expect("a commit failed");
    assert_eq!(status, 503, "{v}");
    let (status, health) = server.health().await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["database"], "up", "reads still work: {health}");
    let error = health["error"].as_str().unwrap();
    assert!(error.starts_with("commits are failing: "), "{error}");
    // Still failing: still degraded.
    assert_eq!(server.post(1000).await.0, 503);
    assert_eq!(server.health().await.0, 503);

    match fault {
        Fault::FullDisk { filler } => std::fs::remove_file(filler).unwrap(),
        Fault::FileSizeLimit => limit_file_size(server.pid(), None),
    }
    // Degraded until a commit succeeds, then healthy.
    assert_eq!(server.health().await.0, 503);
    let (status, v) = server.post(2000).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        server.health().await,
        (200, json!({"status": "ok", "database": "up"}))
    );
}

#[tokio::test]
async fn a_full_disk_makes_health_degraded_until_a_commit_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    match Tmpfs::mount(&mnt, "8m") {
        Ok(tmpfs) => {
            let server = Server::start(&mnt.join("mesher.db")).await;
            let fault = Fault::FullDisk {
                filler: mnt.join("filler"),
            };
            degraded_while_commits_fail(&server, &fault).await;
            drop(server);
            drop(tmpfs);
        }
        Err(why) => {
            // Not root: the same failure of every commit comes from a file size limit.
            eprintln!("cannot mount a tmpfs ({why}): commits fail by RLIMIT_FSIZE instead");
            let server = Server::start(&dir.path().join("mesher.db")).await;
            degraded_while_commits_fail(&server, &Fault::FileSizeLimit).await;
        }
    }
}

#[tokio::test]
async fn a_file_size_limit_makes_health_degraded_until_a_commit_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("mesher.db")).await;
    degraded_while_commits_fail(&server, &Fault::FileSizeLimit).await;
}

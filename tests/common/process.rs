//! The `mesher` binary as a child process, for the CLI and crash tests.

use super::WAIT;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mesher")
}

/// Runs `mesher ARGS` to completion: (exit code, stdout, stderr).
pub(crate) async fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        WAIT,
        Command::new(bin())
            .args(args)
            .env_remove("MESHER_LISTEN")
            .env_remove("MESHER_DATABASE_URL")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("command finished in time")
    .expect("command ran");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free loopback port (bound and released; the tiny race is acceptable in tests).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A `mesher serve` child process.
pub(crate) struct ServerProcess {
    pub child: Child,
    pub base: String,
    pub port: u16,
}

impl ServerProcess {
    pub(crate) async fn start(db_url: &str, port: u16, extra: &[&str]) -> ServerProcess {
        ServerProcess::start_logging(db_url, port, extra, Stdio::inherit()).await
    }

    /// As [`start`](Self::start), its log (stderr, `RUST_LOG=warn`) going to `log`.
    pub(crate) async fn start_logging(
        db_url: &str,
        port: u16,
        extra: &[&str],
        log: impl Into<Stdio>,
    ) -> ServerProcess {
        ServerProcess::start_with_log_level(db_url, port, extra, "warn", log).await
    }

    /// As [`start_logging`](Self::start_logging), with `RUST_LOG` set to `level`.
    pub(crate) async fn start_with_log_level(
        db_url: &str,
        port: u16,
        extra: &[&str],
        level: &str,
        log: impl Into<Stdio>,
    ) -> ServerProcess {
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(bin())
            .args(["serve", "--listen", &listen, "--database-url", db_url])
            .args(extra)
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.into())
            .kill_on_drop(true)
            .spawn()
            .expect("server starts");
        let server = ServerProcess {
            child,
            base: format!("http://{listen}"),
            port,
        };
        let http = reqwest::Client::new();
        tokio::time::timeout(WAIT, async {
            loop {
                if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
                    && r.status().is_success()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
        .await
        .expect("server healthy in time");
        server
    }

    /// SIGKILL: no chance to flush or clean up.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }
}

pub(crate) fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("mesher.db").display())
}

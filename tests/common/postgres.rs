//! A throwaway PostgreSQL 15 cluster for one test: `initdb` into a temporary directory,
//! `pg_ctl start` on a free loopback port, one database `mesher` owned by the trust-auth
//! superuser `mesher`; stopped (and the directory removed) on drop.
//!
//! As root (CI), the binaries run as the `postgres` system user (`initdb` refuses root),
//! which then owns the temporary directory.
#![allow(dead_code)]

use super::process::free_port;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// Where the PostgreSQL 15 binaries are.
pub(crate) const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running (or stopped, between `stop` and `start`) test cluster.
pub(crate) struct TestPostgres {
    dir: TempDir,
    port: u16,
    as_postgres: bool,
    running: bool,
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl TestPostgres {
    /// Creates the cluster and its database, and starts it. Blocking (a few seconds); call
    /// it from `tokio::task::spawn_blocking` in async tests, or accept the short block.
    pub(crate) fn start_new() -> TestPostgres {
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("mesher-pg-")
            .tempdir()
            .expect("tempdir");
        let pg = TestPostgres {
            dir,
            port: free_port(),
            as_postgres,
            running: false,
        };
        if as_postgres {
            pg.run_plain(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(pg.dir.path()),
            );
        }
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                "mesher",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let mut pg = pg;
        pg.start();
        let port = pg.port.to_string();
        pg.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "mesher", "mesher"],
        );
        pg
    }

    /// `postgres://mesher@127.0.0.1:<port>/mesher`
    pub(crate) fn url(&self) -> String {
        format!("postgres://mesher@127.0.0.1:{}/mesher", self.port)
    }

    /// The port the server listens on (the same after a restart).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server (again) on the same port and data directory; returns once it
    /// accepts connections.
    pub(crate) fn start(&mut self) {
        let data = self.data_dir();
        let log = self.dir.path().join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            path_str(self.dir.path())
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-w",
                "-l",
                path_str(&log),
                "-o",
                &opts,
                "start",
            ],
        );
        self.running = true;
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are closed).
    pub(crate) fn stop(&mut self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-w", "-m", "fast", "stop"],
        );
        self.running = false;
    }

    /// The server's log so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the PostgreSQL binaries (as `postgres` when we are root), panicking
    /// with its output if it fails.
    fn run(&self, bin: &str, args: &[&str]) -> Output {
        let program = Path::new(PG_BIN).join(bin);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(args)
            // Never inherit a developer's PG* settings (PGDATABASE, PGHOST, ...).
            .env_remove("PGDATABASE")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGUSER")
            .env_remove("PGDATA")
            // runuser keeps the working directory, which `postgres` may not be able to read.
            .current_dir(self.dir.path());
        self.run_plain(&mut cmd)
    }

    fn run_plain(&self, cmd: &mut Command) -> Output {
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed ({}):\n{}{}\n--- server log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        out
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let program = Path::new(PG_BIN).join("pg_ctl");
            let mut cmd = if self.as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&program);
                c
            } else {
                Command::new(&program)
            };
            // Best effort: a failure here must not turn into a panic during unwinding.
            let _ = cmd
                .args(["-D", path_str(&data), "-w", "-m", "fast", "stop"])
                .current_dir(self.dir.path())
                .stdin(std::process::Stdio::null())
                .output();
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

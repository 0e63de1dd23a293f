//! SPEC §8, secrets stay secret: no token, ingest key, webhook secret or database password
//! in any log line (at `RUST_LOG=trace`) or error message; the SQLite file and its
//! `-wal`/`-shm` readable by their owner only. The binary runs as a child process, its
//! stderr captured, as an operator runs it.

mod common;

use common::process::{ServerProcess, free_port, run, sqlite_url};
use common::receiver::{ALLOW_LOOPBACK, Receiver};
use common::{Creds, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio_tungstenite::tungstenite::Message;

/// Every secret that must not be in `log`, by name; panics naming the first found.
fn assert_absent(log: &str, secrets: &[(&str, &str)]) {
    assert!(!log.is_empty(), "nothing was logged: is RUST_LOG honoured?");
    for (what, secret) in secrets {
        if let Some(line) = log.lines().find(|l| l.contains(secret)) {
            panic!("the {what} is in a log line:\n{line}");
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn no_secret_is_in_any_log_line_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let trace = [("RUST_LOG", "trace")];
    let (code, out, cli_log) = run(
        &["project", "create", "shop", "--database-url", &db],
        &trace,
    )
    .await;
    assert_eq!(code, 0, "{cli_log}");
    let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
    let mut receiver = Receiver::start().await;
    let log_path = dir.path().join("server.log");
    let port = free_port();
    let server = ServerProcess::start_with_log_level(
        &db,
        port,
        &["--webhook-allow-cidr", ALLOW_LOOPBACK],
        "trace",
        std::fs::File::create(&log_path).unwrap(),
    )
    .await;
    let http = reqwest::Client::new();
    let base = &server.base;

    // A webhook with a secret, added over HTTP; its deliveries are signed with it.
    let secret = "whsec-7f3a9c21d4e8b6f0a5c3e1d9b7f5a3c1";
    let r = http
        .post(format!(
            "{base}/api/v1/projects/{}/webhooks?token={}",
            p.id, p.token
        ))
        .json(&json!({"url": receiver.url, "secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Another, by the command line.
    let cli_secret = "clisec-0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e";
    let (code, _, webhook_log) = run(
        &[
            "webhook",
            "add",
            &p.id.to_string(),
            &receiver.url,
            "--secret",
            cli_secret,
            "--webhook-allow-cidr",
            ALLOW_LOOPBACK,
            "--database-url",
            &db,
        ],
        &trace,
    )
    .await;
    assert_eq!(code, 0, "{webhook_log}");

    // A stream with the token in the URL, and one with the token as its first message.
    let url = format!(
        "ws://127.0.0.1:{port}/stream/projects/{}?token={}",
        p.id, p.token
    );
    let (mut by_url, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let url = format!("ws://127.0.0.1:{port}/stream/projects/{}", p.id);
    let (mut by_message, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let auth = json!({"type": "auth", "token": p.token}).to_string();
    by_message.send(Message::text(auth)).await.unwrap();
    for ws in [&mut by_url, &mut by_message] {
        assert_eq!(common::ws::next_json(ws).await["type"], "subscribed");
    }

    // Events by every way a key travels: the query, Sentry's header, Bearer, the DSN's
    // own route, the WebSocket.
    let store = format!("{base}/api/{}/store/", p.id);
    let sent = [
        http.post(format!("{store}?sentry_version=7&sentry_key={}", p.key)),
        http.post(&store).header(
            "x-sentry-auth",
            format!("Sentry sentry_version=7, sentry_key={}", p.key),
        ),
        http.post(format!("{base}/api/v1/events"))
            .bearer_auth(&p.key),
    ];
    for (i, request) in sent.into_iter().enumerate() {
        let r = request
            .json(&json!({"message": format!("leak check {i}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let url = format!("ws://127.0.0.1:{port}/ingest?sentry_key={}", p.key);
    let (mut ingest, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ingest
        .send(Message::text(json!({"message": "by socket"}).to_string()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(WAIT, ingest.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(answer.to_text().unwrap().contains("accepted"), "{answer}");
    // Refused credentials are not logged either (a wrong key may be another server's).
    let wrong_key = "0123456789abcdef0123456789abcdef";
    let wrong_token = "f".repeat(64);
    let r = http
        .post(format!("{store}?sentry_key={wrong_key}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!(
            "{base}/api/v1/projects/{}/issues?token={wrong_token}",
            p.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Reads with the token in the query and in the header.
    let issues = format!("{base}/api/v1/projects/{}/issues", p.id);
    let r = http
        .get(format!("{issues}?token={}", p.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(&issues)
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The new issue's alert reaches the receiver, signed.
    let delivered = receiver.next().await;
    assert!(delivered.headers.contains_key("x-mesher-signature"));

    // Rotations print new secrets on stdout; logs keep them to themselves.
    let id = p.id.to_string();
    let (code, out, rotate_log) = run(
        &["project", "rotate-token", &id, "--database-url", &db],
        &trace,
    )
    .await;
    assert_eq!(code, 0, "{rotate_log}");
    let new_token = serde_json::from_str::<Value>(out.trim()).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out, rotate_key_log) = run(
        &["project", "rotate-key", &id, "--database-url", &db],
        &trace,
    )
    .await;
    assert_eq!(code, 0, "{rotate_key_log}");
    let new_key = serde_json::from_str::<Value>(out.trim()).unwrap()["ingest_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // The streams are closed when the token goes: the reason names no secret either.
    for ws in [&mut by_url, &mut by_message] {
        loop {
            match tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("closed in time")
            {
                Some(Ok(Message::Close(Some(f)))) => {
                    assert_eq!(u16::from(f.code), 1008);
                    break;
                }
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
    let r = http
        .get(format!("{issues}?token={new_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{store}?sentry_key={new_key}"))
        .json(&json!({"message": "new key"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    drop(server);

    let server_log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        server_log.contains("sentry_key=***"),
        "the request log shows the redacted query"
    );
    let secrets = [
        ("ingest key", p.key.as_str()),
        ("token", p.token.as_str()),
        ("rotated token", new_token.as_str()),
        ("rotated ingest key", new_key.as_str()),
        ("webhook secret", secret),
        ("webhook secret given to the CLI", cli_secret),
        ("unknown ingest key", wrong_key),
        ("unknown token", wrong_token.as_str()),
    ];
    let all = [server_log, cli_log, webhook_log, rotate_log, rotate_key_log].join("\n");
    assert_absent(&all, &secrets);
}

#[tokio::test]
async fn a_database_password_is_shown_as_stars_in_logs_and_errors() {
    let pg = tokio::task::spawn_blocking(common::postgres::TestPostgres::start_new)
        .await
        .unwrap();
    // The test cluster trusts local connections, so any password is accepted.
    let password = "pg-pass-5e8c1f2a";
    let url = pg.url().replace("mesher@", &format!("mesher:{password}@"));
    let log_path = tempfile::NamedTempFile::new().unwrap();
    let server = ServerProcess::start_with_log_level(
        &url,
        free_port(),
        &[],
        "trace",
        log_path.reopen().unwrap(),
    )
    .await;
    drop(server);
    let log = std::fs::read_to_string(log_path.path()).unwrap();
    let listening = log
        .lines()
        .find(|l| l.contains("mesher listening"))
        .expect("the start-up line");
    assert!(listening.contains("mesher:***@127.0.0.1"), "{listening}");
    assert_absent(&log, &[("database password", password)]);

    // Errors: a database that cannot be reached, and a URL that cannot be parsed.
    let closed = format!(
        "postgres://mesher:{password}@127.0.0.1:{}/mesher",
        free_port()
    );
    let (code, _, err) = run(&["project", "list", "--database-url", &closed], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains("mesher:***@127.0.0.1"), "{err}");
    assert_absent(&err, &[("database password", password)]);
    let (code, _, err) = run(
        &[
            "serve",
            "--database-url",
            &format!("postgress://mesher:{password}@db/x"),
        ],
        &[],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown database scheme 'postgress'"), "{err}");
    assert_absent(&err, &[("database password", password)]);
    let (code, _, err) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:1",
            "--database-url",
            &closed,
        ],
        &[("RUST_LOG", "trace")],
    )
    .await;
    assert_ne!(code, 0);
    assert_absent(&err, &[("database password", password)]);
}

#[tokio::test]
async fn the_database_file_and_its_wal_and_shm_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let file = dir.path().join("mesher.db");
    // The command line creates the file…
    let (code, out, err) = run(&["project", "create", "shop", "--database-url", &db], &[]).await;
    assert_eq!(code, 0, "{err}");
    let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
    assert_eq!(mode(&file), 0o600, "mesher.db");
    // …and a server's writes bring its -wal and -shm.
    let server = ServerProcess::start(&db, free_port(), &[]).await;
    let r = common::post_event(
        &reqwest::Client::new(),
        &server.base,
        &p.key,
        &json!({"message": "written"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.path().join(format!("mesher.db{suffix}"));
        assert_eq!(mode(&path), 0o600, "mesher.db{suffix}");
    }
    server.kill().await;

    // A file made by `serve` itself is private too.
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&sqlite_url(dir.path()), free_port(), &[]).await;
    assert_eq!(mode(&dir.path().join("mesher.db")), 0o600);
    server.kill().await;

    // An existing file keeps its mode, and the operator is told.
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let (code, _, _) = run(&["project", "create", "old", "--database-url", &db], &[]).await;
    assert_eq!(code, 0);
    let file = dir.path().join("mesher.db");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run(&["project", "list", "--database-url", &db], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert_eq!(mode(&file), 0o644);
}

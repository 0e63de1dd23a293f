//! SPEC §1: the `mesher` commands, run as a user runs them.

mod common;

use common::Creds;
use common::process::{ServerProcess, free_port, run, sqlite_url};
use serde_json::{Value, json};

#[tokio::test]
async fn project_create_list_and_dsn() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let (code, out, err) = run(&["project", "create", "demo", "--database-url", &db], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(v["name"], "demo");
    let key = v["ingest_key"].as_str().unwrap();
    assert!(
        key.len() == 32
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert!(v["token"].as_str().unwrap().len() >= 32);
    assert_eq!(v["dsn"], format!("http://{key}@127.0.0.1:8080/1"));
    assert!(
        dir.path().join("mesher.db").exists(),
        "the SQLite file was created"
    );

    let (code, out, _) = run(
        &["project", "create", "second", "--listen", "10.1.2.3:9000"],
        &[("MESHER_DATABASE_URL", &db)],
    )
    .await;
    assert_eq!(code, 0);
    let v2: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v2["id"], 2);
    assert_eq!(
        v2["dsn"],
        format!(
            "http://{}@10.1.2.3:9000/2",
            v2["ingest_key"].as_str().unwrap()
        )
    );

    let (code, out, _) = run(&["project", "list", "--database-url", &db], &[]).await;
    assert_eq!(code, 0);
    let listed: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0],
        json!({"id": 1, "name": "demo", "ingest_key": key, "dsn": v["dsn"]})
    );
    assert!(listed.iter().all(|p| p.get("token").is_none()));
}

#[tokio::test]
async fn the_dsn_names_the_address_serve_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let dsn_of = |out: &str| {
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        let key = v["ingest_key"].as_str().unwrap().to_owned();
        (
            v["dsn"].as_str().unwrap().to_owned(),
            key,
            v["id"].as_i64().unwrap(),
        )
    };
    let (code, out, err) = run(
        &[
            "project",
            "create",
            "web",
            "--database-url",
            &db,
            "--public-url",
            "https://errors.example.com/",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (dsn, key, id) = dsn_of(&out);
    assert_eq!(dsn, format!("https://{key}@errors.example.com/{id}"));

    // From the environment, as `serve` reads it; --public-url wins over --listen.
    let env = [("MESHER_PUBLIC_URL", "http://mesher.internal:9000/errors")];
    let (code, out, err) = run(
        &[
            "project",
            "create",
            "api",
            "--database-url",
            &db,
            "--listen",
            "10.1.2.3:9000",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (dsn, key, id) = dsn_of(&out);
    assert_eq!(
        dsn,
        format!("http://{key}@mesher.internal:9000/errors/{id}")
    );
    // `project list` and `rotate-key` print the same DSNs.
    let (code, out, _) = run(&["project", "list", "--database-url", &db], &env).await;
    assert_eq!(code, 0);
    assert_eq!(dsn_of(out.lines().nth(1).unwrap()).0, dsn);
    let (code, out, _) = run(
        &[
            "project",
            "rotate-key",
            &id.to_string(),
            "--database-url",
            &db,
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0);
    let (dsn, key, _) = dsn_of(&out);
    assert_eq!(
        dsn,
        format!("http://{key}@mesher.internal:9000/errors/{id}")
    );
}

#[tokio::test]
async fn a_new_database_file_is_announced_and_a_bad_public_url_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mesher.db");
    let db = sqlite_url(dir.path());
    for bad in ["ftp://errors.example.com", "https://", "errors.example.com"] {
        for (args, envs) in [
            (vec!["--public-url", bad], vec![]),
            (vec![], vec![("MESHER_PUBLIC_URL", bad)]),
        ] {
            let mut argv = vec!["project", "create", "web", "--database-url", &db];
            argv.extend(args);
            let (code, out, err) = run(&argv, &envs).await;
            assert_eq!(code, 2, "{bad}: {err}");
            assert!(
                err.contains("invalid value") && err.contains("--public-url"),
                "{err}"
            );
            assert_eq!(out, "");
            assert!(!file.exists(), "{bad}: a database was created");
        }
        // Exactly as `serve` refuses it.
        let (code, _, serve_err) = run(&["serve", "--public-url", bad], &[]).await;
        assert_eq!(code, 2);
        let (_, _, err) = run(&["project", "create", "x", "--public-url", bad], &[]).await;
        assert_eq!(err.lines().next(), serve_err.lines().next());
    }

    let (code, _, err) = run(&["project", "create", "web", "--database-url", &db], &[]).await;
    assert_eq!(code, 0, "{err}");
    let path = file.canonicalize().unwrap();
    let notice = format!("created a new database at {}", path.display());
    assert!(
        err.trim().lines().count() == 1 && err.trim().ends_with(&notice),
        "one line naming the file: {err}"
    );
    let (code, _, err) = run(&["project", "create", "api", "--database-url", &db], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "nothing said of an existing database");
}

#[tokio::test]
async fn bad_values_are_clear_errors_not_panics() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 7] = [
        (
            &["serve", "--listen", "nowhere"],
            &[],
            "invalid value 'nowhere' for '--listen <ADDR>'",
        ),
        (
            &["serve", "--database-url", "mysql://db/x"],
            &[],
            "unknown database scheme 'mysql': expected sqlite:// or postgres://",
        ),
        (
            &["serve", "--rate-limit=-5"],
            &[],
            "invalid value '-5' for '--rate-limit <N>'",
        ),
        (
            &["serve"],
            &[("MESHER_RETENTION_DAYS", "0")],
            "invalid value '0' for '--retention-days <N>'",
        ),
        (
            &["serve"],
            &[("MESHER_RATE_LIMIT", "lots")],
            "invalid value 'lots' for '--rate-limit <N>'",
        ),
        (
            &["serve", "--commit-delay-us", "100001"],
            &[],
            "invalid value '100001' for '--commit-delay-us <N>'",
        ),
        (
            &["project", "rotate-token", "x"],
            &[],
            "invalid value 'x' for '<ID>'",
        ),
    ];
    for (args, envs, expected) in cases {
        let (code, _, err) = run(args, envs).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    for command in ["rotate-token", "rotate-key"] {
        let (code, out, err) = run(&["project", command, "99", "--database-url", &db], &[]).await;
        assert_eq!(code, 2, "{command}: {err}");
        // The first run made the database, and says so: the likely reason for the refusal.
        let err = err
            .trim()
            .split_once('\n')
            .filter(|(first, _)| first.contains("created a new database at "))
            .map_or(err.trim(), |(_, rest)| rest);
        assert_eq!(err, "error: no project with id 99", "{command}");
        assert_eq!(out, "", "{command}");
    }
    let (code, _, err) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:1",
            "--database-url",
            "sqlite:///nonexistent-dir/x/y.db",
        ],
        &[],
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("unable to open database file") || err.contains("cannot"),
        "{err}"
    );
    let (code, out, _) = run(&["serve", "--help"], &[]).await;
    assert_eq!(code, 0);
    for flag in [
        "--listen",
        "--database-url",
        "--rate-limit",
        "--retention-days",
        "MESHER_RATE_LIMIT",
    ] {
        assert!(out.contains(flag), "--help mentions {flag}");
    }
}

#[tokio::test]
async fn projects_created_and_rotated_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let server = ServerProcess::start(&db, free_port(), &[]).await;
    let http = reqwest::Client::new();

    let (code, out, err) = run(&["project", "create", "live", "--database-url", &db], &[]).await;
    assert_eq!(code, 0, "{err}");
    let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
    let r = common::post_event(&http, &server.base, &p.key, &json!({"message": "first"}))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        202,
        "the running server accepts the new key at once"
    );

    let issues = format!("{}/api/v1/projects/{}/issues", server.base, p.id);
    assert_eq!(
        http.get(&issues)
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (code, out, _) = run(
        &[
            "project",
            "rotate-token",
            &p.id.to_string(),
            "--database-url",
            &db,
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0);
    let rotated: Value = serde_json::from_str(out.trim()).unwrap();
    let new_token = rotated["token"].as_str().unwrap();
    assert_ne!(new_token, p.token);
    let status = |key: String, url: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert!(
        within_5s(|| status(p.token.clone(), issues.clone())).await,
        "the old token still worked 5 s after rotate-token"
    );
    assert_eq!(
        http.get(&issues)
            .bearer_auth(new_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A new ingest key, printed as `project create` prints the project (no token).
    let (code, out, err) = run(
        &[
            "project",
            "rotate-key",
            &p.id.to_string(),
            "--database-url",
            &db,
            "--listen",
            "10.1.2.3:9000",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let new_key = v["ingest_key"].as_str().unwrap();
    assert_ne!(new_key, p.key);
    assert!(
        new_key.len() == 32
            && new_key
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(
        v,
        json!({"id": p.id, "name": "live", "ingest_key": new_key,
               "dsn": format!("http://{new_key}@10.1.2.3:9000/{}", p.id)})
    );
    let post = |key: String| {
        let http = http.clone();
        let url = format!("{}/api/v1/events", server.base);
        async move {
            http.post(url)
                .bearer_auth(key)
                .json(&json!({"message": "keyed"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert!(
        within_5s(|| post(p.key.clone())).await,
        "the old key still worked 5 s after rotate-key"
    );
    assert_eq!(
        post(new_key.to_owned()).await,
        202,
        "the new key works at once"
    );
    server.kill().await;
}

/// Whether `status()` answers 401 within 5 s (SPEC §8: revocation on every node).
async fn within_5s<F, Fut>(status: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::StatusCode>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if status().await == 401 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

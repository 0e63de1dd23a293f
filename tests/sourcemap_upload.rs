//! SPEC §10, the upload side: the real `sentry-cli` (PyPI's wheel, pinned in
//! tests/requirements.txt) injects debug IDs into a tiny app bundled and minified by the
//! real esbuild (tests/sourcemaps), uploads it to the server, and the store holds the
//! files as the mapping reads them; the routes' refusals checked directly.

mod common;

use common::postgres::TestPostgres;
use common::{Creds, TestServer, WAIT};
use mesher::DatabaseUrl;
use mesher::model::Millis;
use mesher::model::artifact::ArtifactKind;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sourcemaps");

/// The app's three files bundled and minified by esbuild, with a source map, into
/// `<dir>/<name>/app.min.js` (+ `.map`).
async fn build_app(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let esbuild = Path::new(FIXTURES).join("node_modules/.bin/esbuild");
    assert!(
        esbuild.exists(),
        "esbuild missing: run scripts/test.sh (npm ci in tests/sourcemaps)"
    );
    let status = tokio::process::Command::new(esbuild)
        .current_dir(FIXTURES)
        .args(["src/app.js", "--bundle", "--minify", "--sourcemap"])
        .args(["--platform=node", "--log-level=warning"])
        .arg(format!("--outfile={}", out.join("app.min.js").display()))
        .status()
        .await
        .expect("esbuild runs");
    assert!(status.success(), "esbuild failed");
    out
}

/// The `sentry-cli` of the test venv (beside `MESHER_TEST_PYTHON`).
fn sentry_cli_path() -> PathBuf {
    let python = PathBuf::from(common::sdk::python());
    let cli = python.with_file_name("sentry-cli");
    assert!(
        cli.exists(),
        "{} missing: run scripts/test.sh",
        cli.display()
    );
    cli
}

/// Runs `sentry-cli --url <server> --auth-token <token> <args>` in `dir`, isolated from
/// any user configuration, within a time bound.
async fn sentry_cli(s: &TestServer, token: &str, dir: &Path, args: &[&str]) -> Output {
    let run = tokio::process::Command::new(sentry_cli_path())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("SENTRY_DISABLE_UPDATE_CHECK", "true")
        .args(["--url", &s.base, "--auth-token", token])
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(WAIT * 3, run)
        .await
        .expect("sentry-cli finished in time")
        .expect("sentry-cli runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `sentry-cli` and expects exit status 0; answers its stdout.
async fn sentry_cli_ok(s: &TestServer, token: &str, dir: &Path, args: &[&str]) -> String {
    let out = sentry_cli(s, token, dir, args).await;
    assert!(out.status.success(), "sentry-cli {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The debug ID `sourcemaps inject` wrote into a minified file (`//# debugId=…`).
fn injected_debug_id(js: &Path) -> String {
    let code = std::fs::read_to_string(js).unwrap();
    let id = code
        .lines()
        .find_map(|l| l.strip_prefix("//# debugId="))
        .expect("sentry-cli injected a debug id");
    id.trim().to_ascii_lowercase()
}

/// Builds the app, injects debug IDs and uploads it for `project` with `token`; answers
/// the dist directory and the debug ID.
async fn upload_injected(
    s: &TestServer,
    token: &str,
    project: &str,
    dir: &Path,
) -> (PathBuf, String) {
    let dist = build_app(dir, "dist").await;
    sentry_cli_ok(s, token, dir, &["sourcemaps", "inject", "dist"]).await;
    let id = injected_debug_id(&dist.join("app.min.js"));
    let args = [
        "sourcemaps",
        "upload",
        "--org",
        "o",
        "--project",
        project,
        "dist",
    ];
    sentry_cli_ok(s, token, dir, &args).await;
    (dist, id)
}

/// The stored files of an injected upload are what was uploaded, found by debug ID.
async fn check_found_by_debug_id(s: &TestServer, p: &Creds, dist: &Path, id: &str) {
    let store = s.state().store();
    let js = store
        .artifact_by_debug_id(p.id, id, ArtifactKind::MinifiedSource)
        .await
        .unwrap()
        .expect("the minified file is stored under its debug id");
    assert_eq!(js.url, "~/app.min.js");
    assert_eq!(js.debug_id.as_deref(), Some(id));
    assert_eq!(js.sourcemap.as_deref(), Some("app.min.js.map"));
    assert_eq!(js.data, std::fs::read(dist.join("app.min.js")).unwrap());
    let map = store
        .artifact_by_debug_id(p.id, id, ArtifactKind::SourceMap)
        .await
        .unwrap()
        .expect("the map is stored under the same debug id");
    assert_eq!(map.url, "~/app.min.js.map");
    let parsed: Value = serde_json::from_slice(&map.data).expect("the map is JSON");
    let sources = parsed["sources"].to_string();
    assert!(sources.contains("cart.js") && sources.contains("catalog.js"));
    assert!(store.artifacts_changed_at(p.id).await.unwrap().is_some());
}

#[tokio::test]
async fn sentry_cli_injects_and_uploads_and_the_files_are_found_by_debug_id() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let other = s.project("other").await;
    assert_eq!(
        s.state().store().artifacts_changed_at(p.id).await.unwrap(),
        None
    );
    let dir = TempDir::new().unwrap();
    let (dist, id) = upload_injected(&s, &p.token, "shop", dir.path()).await;
    check_found_by_debug_id(&s, &p, &dist, &id).await;
    // Only for the project named.
    let store = s.state().store();
    let elsewhere = store.artifact_by_debug_id(other.id, &id, ArtifactKind::MinifiedSource);
    assert!(elsewhere.await.unwrap().is_none());
}

#[tokio::test]
async fn a_release_upload_without_debug_ids_is_found_by_release_dist_and_url() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    let plain = build_app(dir.path(), "plain").await;
    let id = p.id.to_string();
    let args = ["sourcemaps", "upload", "--org", "o", "--project", &id];
    let with_dist = [&args[..], &["--release", "1.2", "--dist", "web", "plain"]].concat();
    sentry_cli_ok(&s, &p.token, dir.path(), &with_dist).await;
    let no_dist = [&args[..], &["--release", "1.2", "plain"]].concat();
    sentry_cli_ok(&s, &p.token, dir.path(), &no_dist).await;

    let store = s.state().store();
    let found = store
        .artifact_by_url(p.id, "1.2", Some("web"), "~/app.min.js")
        .await
        .unwrap()
        .expect("found by release, dist and URL");
    assert_eq!(found.kind, ArtifactKind::MinifiedSource);
    assert_eq!(found.debug_id, None);
    assert_eq!(found.data, std::fs::read(plain.join("app.min.js")).unwrap());
    let map = store.artifact_by_url(p.id, "1.2", None, "~/app.min.js.map");
    assert_eq!(map.await.unwrap().unwrap().kind, ArtifactKind::SourceMap);
    let other_dist = store.artifact_by_url(p.id, "1.2", Some("ios"), "~/app.min.js");
    assert!(other_dist.await.unwrap().is_none());
    let other_release = store.artifact_by_url(p.id, "1.3", None, "~/app.min.js");
    assert!(other_release.await.unwrap().is_none());
}

#[tokio::test]
async fn releases_new_and_finalize_succeed() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    let org = ["--org", "o", "--project", "shop"];
    let out = sentry_cli_ok(
        &s,
        &p.token,
        dir.path(),
        &[&["releases", "new", "shop@1.2"][..], &org].concat(),
    )
    .await;
    assert!(out.contains("shop@1.2"), "{out}");
    sentry_cli_ok(
        &s,
        &p.token,
        dir.path(),
        &[&["releases", "finalize", "shop@1.2"][..], &org].concat(),
    )
    .await;
    // The project-scoped paths sentry-cli 2.x uses for one project.
    let body = json!({ "version": "2.0" });
    let url = s.url("/api/0/projects/o/shop/releases/");
    let r = s
        .http
        .post(url)
        .bearer_auth(&p.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let url = s.url("/api/0/projects/o/shop/releases/2.0/");
    let done = json!({ "dateReleased": "2026-01-01T00:00:00Z" });
    let r = s
        .http
        .put(url)
        .bearer_auth(&p.token)
        .json(&done)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], "2.0");
}

/// A user who is a member of `project`, and their API token (made through the API, as the
/// settings page makes it).
async fn member_token(s: &TestServer, email: &str, project: Option<i64>) -> String {
    let password = "a fine long password";
    mesher::people::create_user(&s.db, email, false, Some(password.into()))
        .await
        .unwrap();
    if let Some(project) = project {
        mesher::people::change_member(&s.db, project, email, true)
            .await
            .unwrap();
    }
    let (_, _, cookie) = s.sign_in(email, password).await;
    let r = s
        .http
        .post(s.url("/api/v1/me/tokens"))
        .header("cookie", cookie.unwrap())
        .header("origin", &s.base)
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_members_api_token_uploads_and_a_non_members_is_refused() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let token = member_token(&s, "ada@example.com", Some(p.id)).await;
    assert!(token.starts_with("mshr_"));
    let dir = TempDir::new().unwrap();
    let (dist, id) = upload_injected(&s, &token, &p.id.to_string(), dir.path()).await;
    check_found_by_debug_id(&s, &p, &dist, &id).await;

    let stranger = member_token(&s, "bob@example.com", None).await;
    let args = [
        "sourcemaps",
        "upload",
        "--org",
        "o",
        "--project",
        "shop",
        "dist",
    ];
    let out = sentry_cli(&s, &stranger, dir.path(), &args).await;
    assert!(!out.status.success(), "{}", text(&out));
    let (status, body) = assemble(&s, &stranger, json!(["shop"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

/// `POST …/artifactbundle/assemble/` of a bundle nobody uploaded, for `projects`.
async fn assemble(s: &TestServer, token: &str, projects: Value) -> (StatusCode, Value) {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let body = json!({ "checksum": sha, "chunks": [sha], "projects": projects });
    let url = s.url("/api/0/organizations/any/artifactbundle/assemble/");
    let r = s
        .http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_bad_token_is_refused_with_401_and_sentry_cli_fails() {
    let s = TestServer::start().await;
    s.project("shop").await;
    let dir = TempDir::new().unwrap();
    build_app(dir.path(), "dist").await;
    let args = [
        "sourcemaps",
        "upload",
        "--org",
        "o",
        "--project",
        "shop",
        "dist",
    ];
    let out = sentry_cli(&s, "not-a-token", dir.path(), &args).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("401"), "{}", text(&out));

    let url = s.url("/api/0/organizations/o/chunk-upload/");
    for token in [Some("not-a-token"), Some("mshr_nothing"), None] {
        let req = s.http.get(&url);
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].is_string() && body["error"].is_string(),
            "{body}"
        );
    }
}

#[tokio::test]
async fn another_projects_token_is_refused_with_403() {
    let s = TestServer::start().await;
    let shop = s.project("shop").await;
    let other = s.project("other").await;
    let (status, body) = assemble(&s, &other.token, json!([shop.id.to_string()])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = assemble(&s, &other.token, json!(["shop"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = assemble(&s, &other.token, json!(["no-such-project"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Its own project: the chunk is missing, so it is asked for.
    let (status, body) = assemble(&s, &other.token, json!(["other"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "not_found");
    assert_eq!(body["missingChunks"].as_array().unwrap().len(), 1);

    let dir = TempDir::new().unwrap();
    build_app(dir.path(), "dist").await;
    let args = [
        "sourcemaps",
        "upload",
        "--org",
        "o",
        "--project",
        "shop",
        "--release",
        "1.0",
        "dist",
    ];
    let out = sentry_cli(&s, &other.token, dir.path(), &args).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("403"), "{}", text(&out));
}

/// `POST …/chunk-upload/` of one gzip-compressed part named `name`, as sentry-cli sends it.
async fn post_chunk(
    s: &TestServer,
    token: &str,
    name: &str,
    content: &[u8],
) -> (StatusCode, Value) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(content).unwrap();
    let boundary = "------------------------mesherchunkboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file_gzip\"; \
         filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend(gz.finish().unwrap());
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = s
        .http
        .post(s.url("/api/0/organizations/o/chunk-upload/"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_chunk_whose_content_does_not_match_its_sha1_is_refused_with_400() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let claimed = hex::encode(Sha1::digest(b"what the name promises"));
    let (status, body) = post_chunk(&s, &p.token, &claimed, b"something else").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains(&claimed),
        "{body}"
    );
    let store = s.state().store();
    assert!(
        store
            .chunk_sizes(std::slice::from_ref(&claimed))
            .await
            .unwrap()
            .is_empty()
    );

    // The right content is taken, and taken again as a no-op.
    for _ in 0..2 {
        let (status, body) = post_chunk(&s, &p.token, &claimed, b"what the name promises").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(
        store
            .chunk_sizes(std::slice::from_ref(&claimed))
            .await
            .unwrap()[&claimed],
        22
    );
    let (status, _) = post_chunk(&s, &p.token, "not-a-sha1", b"x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_second_upload_of_the_same_files_sends_no_chunk_again() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    upload_injected(&s, &p.token, "shop", dir.path()).await;
    let store = s.state().store();
    let first = store.artifacts_changed_at(p.id).await.unwrap().unwrap();
    let args = [
        "sourcemaps",
        "upload",
        "--org",
        "o",
        "--project",
        "shop",
        "dist",
    ];
    let out = sentry_cli_ok(&s, &p.token, dir.path(), &args).await;
    assert!(
        out.contains("Nothing to upload, all files are on the server"),
        "{out}"
    );
    // Uploading it again counts as a new upload for retention.
    let again = store.artifacts_changed_at(p.id).await.unwrap().unwrap();
    assert!(again >= first);
}

/// Waits (without sleeping) until the clock is past `at`.
fn until_past(at: Millis) {
    while Millis::now() <= at {
        std::hint::spin_loop();
    }
}

#[tokio::test]
async fn retention_deletes_bundles_older_than_the_window() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    let (_, id) = upload_injected(&s, &p.token, "shop", dir.path()).await;
    let store = s.state().store();
    let stored = store.artifacts_changed_at(p.id).await.unwrap().unwrap();
    // A day's window keeps it.
    mesher::retention::pass(store, s.state().bus(), 1).await;
    let kept = store.artifact_by_debug_id(p.id, &id, ArtifactKind::MinifiedSource);
    assert!(kept.await.unwrap().is_some());
    // A window of 0 days: stored before now, so old.
    until_past(stored);
    mesher::retention::pass(store, s.state().bus(), 0).await;
    let gone = store.artifact_by_debug_id(p.id, &id, ArtifactKind::MinifiedSource);
    assert!(gone.await.unwrap().is_none());
    assert_eq!(store.artifacts_changed_at(p.id).await.unwrap(), None);
}

#[tokio::test]
async fn uploads_are_stored_and_found_on_postgresql_too() {
    let pg = tokio::task::spawn_blocking(TestPostgres::start_new)
        .await
        .unwrap();
    let s = TestServer::start_on(Some(DatabaseUrl::Postgres(pg.url())), |_| {}).await;
    let p = s.project("shop").await;
    let dir = TempDir::new().unwrap();
    let (dist, id) = upload_injected(&s, &p.token, "shop", dir.path()).await;
    check_found_by_debug_id(&s, &p, &dist, &id).await;
    let args = [
        "sourcemaps",
        "upload",
        "--org",
        "o",
        "--project",
        "shop",
        "dist",
    ];
    let out = sentry_cli_ok(&s, &p.token, dir.path(), &args).await;
    assert!(out.contains("Nothing to upload"), "{out}");

    build_app(dir.path(), "plain").await;
    let args = ["sourcemaps", "upload", "--org", "o", "--project", "shop"];
    let args = [&args[..], &["--release", "1.2", "--dist", "web", "plain"]].concat();
    sentry_cli_ok(&s, &p.token, dir.path(), &args).await;
    let store = s.state().store();
    let found = store.artifact_by_url(p.id, "1.2", Some("web"), "~/app.min.js");
    assert!(found.await.unwrap().is_some());
    assert!(
        store
            .artifact_by_url(p.id, "1.2", None, "~/app.min.js")
            .await
            .unwrap()
            .is_none()
    );

    let stored = store.artifacts_changed_at(p.id).await.unwrap().unwrap();
    until_past(stored);
    mesher::retention::pass(store, s.state().bus(), 0).await;
    assert_eq!(store.artifacts_changed_at(p.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_bundle_over_100_mib_is_refused_with_the_reason() {
    let s = TestServer::start().await;
    let p = s.project("shop").await;
    // One 1 MiB chunk named 101 times: a bundle of 101 MiB without uploading as much.
    let chunk = vec![7u8; 1 << 20];
    let sha = hex::encode(Sha1::digest(&chunk));
    let (status, body) = post_chunk(&s, &p.token, &sha, &chunk).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body = json!({
        "checksum": "0123456789abcdef0123456789abcdef01234567",
        "chunks": vec![sha; 101],
        "projects": ["shop"],
    });
    let url = s.url("/api/0/organizations/o/artifactbundle/assemble/");
    let r = s.http.post(url).bearer_auth(&p.token).json(&body).send();
    let answer: Value = r.await.unwrap().json().await.unwrap();
    assert_eq!(answer["state"], "error", "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("100 MiB"),
        "{answer}"
    );
    let store = s.state().store();
    assert_eq!(store.artifacts_changed_at(p.id).await.unwrap(), None);
}

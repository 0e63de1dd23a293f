//! SPEC §8, webhook targets: a project token (or a command) cannot point a webhook at the
//! server's own network (loopback, private, link-local… in any spelling) unless the
//! operator allows the range; a project has at most 20 webhooks; a receiver's redirect is
//! not followed and its answer is read to 64 KiB only. Real server, real receivers on
//! loopback (which is why most servers here allow 127.0.0.0/8).

mod common;

use common::postgres::TestPostgres;
use common::process::run;
use common::receiver::{ALLOW_LOOPBACK, Receiver, Reply, allow_loopback};
use common::{Creds, TestServer, WAIT};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Every kind of forbidden address, in the spellings a parser might let through.
const FORBIDDEN: &[&str] = &[
    "http://127.0.0.1:9/hook",
    "http://127.1/",
    "http://127.0.1/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "https://[::1]:8443/x",
    "http://[::ffff:127.0.0.1]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://localhost:6379/",
    "http://LocalHost./",
    "http://admin.localhost/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://10.0.0.1:2375/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://[fd00::1]/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://user:pw@10.1.2.3:8080/",
];

fn hooks_path(p: &Creds) -> String {
    format!("/api/v1/projects/{}/webhooks", p.id)
}

async fn listed(s: &TestServer, p: &Creds) -> Vec<Value> {
    let (status, v) = s.get(&hooks_path(p), &p.token).await;
    assert_eq!(status, 200, "{v}");
    v["webhooks"].as_array().unwrap().clone()
}

/// `mesher webhook add PROJECT URL --database-url DB ARGS…`: (exit code, stdout, stderr).
async fn cli_add(s: &TestServer, p: &Creds, url: &str, extra: &[&str]) -> (i32, String, String) {
    let (pid, db) = (p.id.to_string(), s.db.to_string());
    let mut args = vec!["webhook", "add", &pid, url, "--database-url", &db];
    args.extend_from_slice(extra);
    run(&args, &[]).await
}

async fn cli_list(s: &TestServer) -> usize {
    let (code, out, err) = run(
        &["webhook", "list", "--database-url", &s.db.to_string()],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    out.lines().count()
}

#[tokio::test]
async fn every_spelling_of_a_forbidden_address_is_refused_over_http() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    for url in FORBIDDEN {
        let (status, v) = s
            .post(&hooks_path(&p), &p.token, &json!({"url": url}))
            .await;
        assert_eq!(status, 400, "{url}: {v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.starts_with("forbidden address: "), "{url}: {error}");
        assert!(error.contains("--webhook-allow-cidr"), "{url}: {error}");
    }
    let (_, v) = s
        .post(
            &hooks_path(&p),
            &p.token,
            &json!({"url": "http://0x7f000001/"}),
        )
        .await;
    assert_eq!(
        v["error"],
        "forbidden address: the URL's host 127.0.0.1 is a loopback address; a webhook may \
         not reach loopback, private, link-local, shared, unspecified, multicast or \
         broadcast addresses unless the range is allowed with --webhook-allow-cidr"
    );
    assert_eq!(listed(&s, &p).await, Vec::<Value>::new(), "nothing added");
    // A public address, or a name (checked when delivered), is added.
    for url in ["http://93.184.216.34/hook", "https://hooks.example.com/x"] {
        let (status, v) = s
            .post(&hooks_path(&p), &p.token, &json!({"url": url}))
            .await;
        assert_eq!(status, 201, "{url}: {v}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_server_allows_only_the_ranges_it_is_given() {
    let s = TestServer::start_with(allow_loopback).await;
    let p = s.project("app").await;
    for url in [
        "http://127.1:9/hook",
        "http://0x7f000001:9/",
        "http://[::ffff:127.0.0.1]:9/",
    ] {
        let (status, v) = s
            .post(&hooks_path(&p), &p.token, &json!({"url": url}))
            .await;
        assert_eq!(status, 201, "{url}: {v}");
    }
    for url in [
        "http://[::1]/",
        "http://localhost/",
        "http://10.0.0.1/",
        "http://169.254.169.254/",
    ] {
        let (status, v) = s
            .post(&hooks_path(&p), &p.token, &json!({"url": url}))
            .await;
        assert_eq!(status, 400, "{url}: {v}");
    }
    assert_eq!(listed(&s, &p).await.len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn every_spelling_of_a_forbidden_address_is_refused_by_the_command() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    for url in FORBIDDEN {
        let (code, out, err) = cli_add(&s, &p, url, &[]).await;
        assert_eq!(code, 2, "{url}: {err}");
        assert!(err.contains("forbidden address: "), "{url}: {err}");
        assert_eq!(out, "", "{url}");
    }
    // Another range allowed is not this one.
    let (code, _, err) = cli_add(
        &s,
        &p,
        "http://127.1/",
        &["--webhook-allow-cidr", "10.0.0.0/8"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(cli_list(&s).await, 0, "nothing added");

    // Allowed by the flag (repeatable) or the environment (comma-separated).
    let (code, out, err) = cli_add(
        &s,
        &p,
        "http://0x7f000001:9/hook",
        &[
            "--webhook-allow-cidr",
            "10.0.0.0/8",
            "--webhook-allow-cidr",
            ALLOW_LOOPBACK,
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let hook: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(hook["url"], "http://0x7f000001:9/hook", "stored as given");
    let (pid, db) = (p.id.to_string(), s.db.to_string());
    let (code, _, err) = run(
        &[
            "webhook",
            "add",
            &pid,
            "http://192.168.1.20/",
            "--database-url",
            &db,
        ],
        &[("MESHER_WEBHOOK_ALLOW_CIDR", "10.0.0.0/8,192.168.0.0/16")],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    // A bad range is a usage error.
    let (code, _, err) = cli_add(
        &s,
        &p,
        "https://hooks.example.com/",
        &["--webhook-allow-cidr", "10.0.0.0/33"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not an address range"), "{err}");
    let (code, _, err) = run(
        &["serve", "--database-url", &db, "--listen", "127.0.0.1:0"],
        &[("MESHER_WEBHOOK_ALLOW_CIDR", "10.0.0.0/8,nowhere")],
    )
    .await;
    assert_eq!(code, 2, "serve refuses a bad range too: {err}");
    assert!(err.contains("'nowhere' is not an address range"), "{err}");
    assert_eq!(cli_list(&s).await, 2);
    s.stop().await;
}

#[tokio::test]
async fn a_loopback_receiver_is_reached_when_its_range_is_allowed() {
    let s = TestServer::start_with(|c| {
        c.webhook_allow_cidr = vec![ALLOW_LOOPBACK.parse().unwrap(), "::1/128".parse().unwrap()];
    })
    .await;
    let p = s.project("app").await;
    let mut literal = Receiver::start().await;
    let mut named = Receiver::start().await;
    // An odd spelling of the literal, and a name resolved at delivery.
    let (code, _, err) = cli_add(
        &s,
        &p,
        &format!("http://127.1:{}/hook", literal.port),
        &["--webhook-allow-cidr", ALLOW_LOOPBACK],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (status, v) = s
        .post(
            &hooks_path(&p),
            &p.token,
            &json!({"url": format!("http://localhost:{}/hook", named.port)}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (_, e) = s.send_event(&p, &json!({"message": "reached"})).await;
    for rx in [&mut literal, &mut named] {
        let got = rx.next().await;
        assert_eq!(got.json()["alerts"][0]["issue"]["id"], e["issue_id"]);
    }
    s.stop().await;
}

#[tokio::test]
async fn the_21st_webhook_of_a_project_is_refused() {
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let other = s.project("other").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let url = format!("https://hooks.example.com/{i}");
        let (status, v) = s
            .post(&hooks_path(&p), &p.token, &json!({"url": url}))
            .await;
        assert_eq!(status, 201, "webhook {i}: {v}");
        ids.push(v["webhook"]["id"].clone());
    }
    let want = "too many webhooks: a project has at most 20; remove one first";
    let (status, v) = s
        .post(
            &hooks_path(&p),
            &p.token,
            &json!({"url": "https://hooks.example.com/21"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], want);
    let (code, out, err) = cli_add(&s, &p, "https://hooks.example.com/21", &[]).await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim(), format!("error: {want}"));
    assert_eq!(out, "");
    assert_eq!(listed(&s, &p).await.len(), 20, "nothing added");
    // The limit is per project.
    let (status, _) = s
        .post(
            &hooks_path(&other),
            &other.token,
            &json!({"url": "https://hooks.example.com/other"}),
        )
        .await;
    assert_eq!(status, 201);
    // Removing one makes room for one.
    let r = s
        .http
        .delete(s.url(&format!("/api/v1/webhooks/{}", ids[0])))
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (code, _, err) = cli_add(&s, &p, "https://hooks.example.com/21", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (status, _) = s
        .post(
            &hooks_path(&p),
            &p.token,
            &json!({"url": "https://hooks.example.com/22"}),
        )
        .await;
    assert_eq!(status, 400);
    s.stop().await;
}

/// 30 adds at once: 20 succeed, whatever the interleaving.
async fn thirty_at_once(s: &TestServer) {
    let p = s.project("app").await;
    let adds = (0..30).map(|i| {
        let p = &p;
        async move {
            let url = format!("https://hooks.example.com/{i}");
            s.post(&hooks_path(p), &p.token, &json!({"url": url}))
                .await
                .0
        }
    });
    let statuses = futures_util::future::join_all(adds).await;
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 201).count(), 20);
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 400).count(), 10);
    assert_eq!(listed(s, &p).await.len(), 20);
}

#[tokio::test]
async fn twenty_webhooks_added_at_once_stay_twenty() {
    let s = TestServer::start().await;
    thirty_at_once(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn twenty_webhooks_added_at_once_stay_twenty_on_postgresql() {
    let pg = tokio::task::spawn_blocking(TestPostgres::start_new)
        .await
        .unwrap();
    let s = TestServer::start_on(Some(pg.url().parse().unwrap()), |_| {}).await;
    thirty_at_once(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let s = TestServer::start_with(allow_loopback).await;
    let p = s.project("app").await;
    let mut rx = Receiver::start().await;
    let mut elsewhere = Receiver::start().await;
    rx.script(&[
        Reply::Redirect(302, elsewhere.url.clone()),
        Reply::Redirect(307, elsewhere.url.clone()),
    ]);
    let (status, v) = s
        .post(&hooks_path(&p), &p.token, &json!({"url": rx.url}))
        .await;
    assert_eq!(status, 201, "{v}");
    s.send_event(&p, &json!({"message": "moved"})).await;
    // 302, 307 (each a failure, retried as the same delivery), then 200.
    let tries = [rx.next().await, rx.next().await, rx.next().await];
    let first = tries[0].header("x-mesher-delivery");
    assert!(tries.iter().all(|t| t.header("x-mesher-delivery") == first));
    assert!(
        elsewhere.within(Duration::from_secs(1)).await.is_none(),
        "a redirect was followed"
    );
    assert!(
        rx.within(Duration::from_secs(3)).await.is_none(),
        "delivered after the third answer"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_endless_answer_is_read_to_64_kib_only() {
    let s = TestServer::start_with(allow_loopback).await;
    let p = s.project("app").await;
    let mut rx = Receiver::start().await;
    // A failing answer without end, then a successful one without end.
    rx.script(&[Reply::Endless(500)]);
    rx.answer_all(Reply::Endless(200));
    let (status, v) = s
        .post(&hooks_path(&p), &p.token, &json!({"url": rx.url}))
        .await;
    assert_eq!(status, 201, "{v}");
    s.send_event(&p, &json!({"message": "chatty receiver"}))
        .await;
    rx.next().await;
    let failed_at = Instant::now();
    // The retry comes after about a second: the failed attempt did not wait for the end of
    // the body (nor for its 10 s limit).
    rx.next().await;
    let retried_after = failed_at.elapsed();
    assert!(
        retried_after < Duration::from_secs(5),
        "retried after {retried_after:?}"
    );
    let endless = rx.endless();
    tokio::time::timeout(WAIT, async {
        while endless.dropped.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the server hangs up on both endless answers");
    // The second answer was a 200: delivered, nothing more comes.
    assert!(
        rx.within(Duration::from_secs(3)).await.is_none(),
        "a delivered alert came again"
    );
    // What the receiver managed to send is what the sockets' buffers hold, not a stream
    // read for seconds at loopback speed.
    let sent = endless.bytes.load(Ordering::SeqCst);
    println!("the endless answers sent {sent} bytes; retried after {retried_after:?}");
    assert!(sent < 64 << 20, "{sent} bytes sent");
    s.stop().await;
}

//! SPEC §9's e-mail alerts against a real SMTP server on loopback (PyPI's `aiosmtpd`, see
//! `common::smtp`), with the guarantees of §7: a new issue mails the member once, naming the
//! action, title, level, event count and a link to the issue (`--public-url`); a storm of
//! new issues makes a few messages that name every issue once; nothing is lost while the
//! mail server is away, nor to a SIGKILL between the commit and the send; a recipient the
//! mail server hangs on delays no other.

mod common;

use common::process::{ServerProcess, free_port, run, sqlite_url};
use common::smtp::{Mail, Smtp};
use common::{Creds, TestServer, WAIT};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const FROM: &str = "Mesher <mesher@example.com>";

/// Makes `email` a user (`mesher user create`) and a member of `project` (`member add`) on
/// the database `db`, signs them in at `base` and turns their e-mail alerts on for new
/// issues: as a member does it, with the CLI and the API of a running server.
async fn member_mailed(http: &reqwest::Client, base: &str, db: &str, project: i64, email: &str) {
    let (code, out, err) = run(&["user", "create", email, "--database-url", db], &[]).await;
    assert_eq!(code, 0, "{err}");
    let user: Value = serde_json::from_str(out.trim()).unwrap();
    let password = user["password"].as_str().expect("a generated password");
    let pid = project.to_string();
    let (code, _, err) = run(&["member", "add", &pid, email, "--database-url", db], &[]).await;
    assert_eq!(code, 0, "{err}");
    let signed_in = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let on = http
        .put(format!("{base}/api/v1/projects/{project}/email-alerts"))
        .header("cookie", &cookie)
        .header("origin", base)
        .json(&json!({ "on": ["new"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(on.status(), StatusCode::OK, "{:?}", on.text().await);
    let shown: Value = http
        .get(format!("{base}/api/v1/projects/{project}/email-alerts"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["on"], json!(["new"]), "{shown}");
}

/// Sends one event (ingest key) to `base`; answers its issue's id.
async fn raise(http: &reqwest::Client, base: &str, p: &Creds, body: &Value) -> i64 {
    let r = common::post_event(http, base, &p.key, body).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    r.json::<Value>().await.unwrap()["issue_id"]
        .as_i64()
        .expect("issue_id")
}

/// The issues a message names, in its order (each alert links to its issue).
fn issues_named(mail: &Mail) -> Vec<i64> {
    mail.text
        .lines()
        .filter_map(|l| l.split_once("&issue=").map(|(_, id)| id.trim()))
        .map(|id| id.parse().expect("an issue id"))
        .collect()
}

/// The sum of `/metrics`' `mesher_alert_deliveries_total` lines of `outcome` at `base`.
async fn deliveries(http: &reqwest::Client, base: &str, outcome: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = format!("outcome=\"{outcome}\"");
    text.lines()
        .filter(|l| l.starts_with("mesher_alert_deliveries_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (polling, bounded by `limit`) until the server at `base` has counted more than
/// `before` failed e-mail attempts: the alert is committed, and was not sent.
async fn a_failed_attempt_after(http: &reqwest::Client, base: &str, before: f64, limit: Duration) {
    tokio::time::timeout(limit, async {
        while deliveries(http, base, "retried").await <= before {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a failed delivery attempt");
}

/// Collects messages until every issue of `want` was named (within `limit` in all);
/// answers how often each issue was named and the messages.
async fn until_named(
    smtp: &mut Smtp,
    want: &[i64],
    limit: Duration,
) -> (HashMap<i64, usize>, Vec<Mail>) {
    let deadline = Instant::now() + limit;
    let mut named: HashMap<i64, usize> = HashMap::new();
    let mut mails = Vec::new();
    while !want.iter().all(|i| named.contains_key(i)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(mail) = smtp.within(left).await else {
            let missing: Vec<_> = want.iter().filter(|i| !named.contains_key(i)).collect();
            panic!("within {limit:?}, no message named issues {missing:?}; got {mails:#?}");
        };
        for issue in issues_named(&mail) {
            *named.entry(issue).or_default() += 1;
        }
        mails.push(mail);
    }
    (named, mails)
}

#[tokio::test]
async fn a_member_who_turned_email_on_is_mailed_once_for_a_new_issue() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut smtp = Smtp::start().await;
        let smtp_url = smtp.url();
        let s = TestServer::start_with(|c| {
            c.smtp_url = Some(smtp_url);
            c.smtp_from = Some(FROM.into());
            c.public_url = Some("https://errors.example.com".into());
        })
        .await;
        let p = s.project("shop").await;
        let db = s.db.to_string();
        member_mailed(&s.http, &s.base, &db, p.id, "ada@example.com").await;
        let hooks = s
            .get(&format!("/api/v1/projects/{}/webhooks", p.id), &p.token)
            .await
            .1;
        assert_eq!(
            hooks["webhooks"],
            json!([]),
            "e-mail is not listed among the webhooks"
        );

        let first = raise(
            &s.http,
            &s.base,
            &p,
            &json!({ "message": "checkout failed", "level": "error" }),
        )
        .await;
        let mail = smtp.next().await;
        assert_eq!(mail.envelope_to, ["ada@example.com"], "{mail:#?}");
        assert_eq!(mail.envelope_from, "mesher@example.com", "{mail:#?}");
        assert_eq!(mail.to, "ada@example.com", "{mail:#?}");
        assert_eq!(mail.from, FROM, "{mail:#?}");
        assert_eq!(mail.subject, "[Mesher] checkout failed", "{mail:#?}");
        // The action, the title, the level, the event count and the issue view's link.
        assert_eq!(
            mail.text.trim(),
            format!(
                "New issue: checkout failed\n  level error, 1 event\n  \
                 https://errors.example.com/#project={}&issue={first}",
                p.id
            ),
            "{mail:#?}"
        );

        // More events of that issue raise nothing; the next new issue's message is the
        // next one (a recipient's deliveries go in order): no second message of the first.
        for _ in 0..3 {
            let again = raise(
                &s.http,
                &s.base,
                &p,
                &json!({ "message": "checkout failed", "level": "error" }),
            )
            .await;
            assert_eq!(again, first);
        }
        let (_, issue) = s.get(&format!("/api/v1/issues/{first}"), &p.token).await;
        assert_eq!(issue["issue"]["event_count"], 4, "{issue}");
        let second = raise(
            &s.http,
            &s.base,
            &p,
            &json!({ "message": "paiement refusé — carte ✓", "level": "warning" }),
        )
        .await;
        let next = smtp.next().await;
        assert_eq!(issues_named(&next), [second], "{next:#?}");
        // Not ASCII: the subject and the text are encoded, and read back as they were.
        assert_eq!(
            next.subject, "[Mesher] paiement refusé — carte ✓",
            "{next:#?}"
        );
        assert!(
            next.text
                .starts_with("New issue: paiement refusé — carte ✓\n  level warning, 1 event\n"),
            "{next:#?}"
        );
        assert_ne!(
            mail.message_id, next.message_id,
            "two deliveries, two message ids"
        );
        s.stop().await;
    })
    .await
    .expect("the test finishes within 60 s");
}

#[tokio::test]
async fn a_storm_of_500_new_issues_makes_a_few_messages_naming_each_once() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let mut smtp = Smtp::start().await;
        let smtp_url = smtp.url();
        let s = TestServer::start_with(|c| {
            c.smtp_url = Some(smtp_url);
            c.smtp_from = Some(FROM.into());
            c.rate_limit = 0;
        })
        .await;
        let p = s.project("shop").await;
        let db = s.db.to_string();
        member_mailed(&s.http, &s.base, &db, p.id, "ada@example.com").await;

        // 500 new issues, as fast as the API takes them: five bulks of 100, at once.
        let started = Instant::now();
        let mut bulks = Vec::new();
        for b in 0..5 {
            let batch: Vec<Value> = (0..100)
                .map(|i| json!({ "message": format!("storm {b}-{i}"), "fingerprint": [format!("storm-{b}-{i}")] }))
                .collect();
            let (http, base, key) = (s.http.clone(), s.base.clone(), p.key.clone());
            bulks.push(tokio::spawn(async move {
                let r = http
                    .post(format!("{base}/api/v1/events/bulk"))
                    .bearer_auth(key)
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::ACCEPTED);
            }));
        }
        for b in bulks {
            b.await.unwrap();
        }
        let titles: Vec<String> = (0..5)
            .flat_map(|b| (0..100).map(move |i| format!("storm {b}-{i}")))
            .collect();

        // Messages until each title was named (within 60 s in all).
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut named: HashMap<String, usize> = HashMap::new();
        let mut ids = std::collections::HashSet::new();
        let mut mails = Vec::new();
        while !titles.iter().all(|t| named.contains_key(t)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = smtp.within(left).await.unwrap_or_else(|| {
                panic!(
                    "{} of 500 issues named within 60 s, in {} messages",
                    named.len(),
                    mails.len()
                )
            });
            let issues = issues_named(&m);
            let n = issues.len();
            assert!(n <= 100, "a message of {n} alerts");
            if n > 1 {
                assert_eq!(
                    m.subject,
                    format!("[Mesher] {n} alerts in project {}", p.id)
                );
            }
            ids.extend(issues);
            // Each alert names its action and its issue's title.
            let alerts: Vec<&str> = m
                .text
                .lines()
                .filter_map(|l| l.strip_prefix("New issue: "))
                .collect();
            assert_eq!(alerts.len(), n, "{m:#?}");
            for title in alerts {
                *named.entry(title.to_owned()).or_default() += 1;
            }
            mails.push(m);
        }
        let took = started.elapsed();
        let twice: Vec<_> = named.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "issues named twice: {twice:?}");
        assert_eq!(named.len(), 500, "only the storm's issues are named");
        assert_eq!(ids.len(), 500, "each alert links to its own issue");
        assert!(
            (5..=10).contains(&mails.len()),
            "{} messages for 500 alerts",
            mails.len()
        );
        // Nothing more comes: the 500 alerts were all delivered.
        assert!(
            smtp.within(Duration::from_secs(1)).await.is_none(),
            "a message after the storm's"
        );
        println!(
            "500 new issues: {} messages ({:?}), all delivered in {took:?}",
            mails.len(),
            mails.iter().map(|m| issues_named(m).len()).collect::<Vec<_>>()
        );
        s.stop().await;
    })
    .await
    .expect("the test finishes within 90 s");
}

#[tokio::test]
async fn alerts_raised_while_a_message_is_in_flight_go_together_in_the_next() {
    tokio::time::timeout(Duration::from_secs(60), async {
        // Each message takes 2 s to be accepted.
        let mut smtp = Smtp::slow(Duration::from_secs(2)).await;
        let smtp_url = smtp.url();
        let s = TestServer::start_with(|c| {
            c.smtp_url = Some(smtp_url);
            c.smtp_from = Some(FROM.into());
            c.rate_limit = 0;
        })
        .await;
        let p = s.project("shop").await;
        let db = s.db.to_string();
        member_mailed(&s.http, &s.base, &db, p.id, "ada@example.com").await;

        let first = raise(&s.http, &s.base, &p, &json!({ "message": "first" })).await;
        assert_eq!(smtp.receiving().await, "ada@example.com");
        // While that message is in flight: 30 new issues (numbers in a message group as
        // one issue: fingerprints keep them apart), sent concurrently.
        let mut raised = Vec::new();
        for i in 0..30 {
            let (http, base, p) = (s.http.clone(), s.base.clone(), p.clone());
            raised.push(tokio::spawn(async move {
                let body = json!({
                    "message": format!("meanwhile {i}"),
                    "fingerprint": [format!("meanwhile-{i}")],
                });
                raise(&http, &base, &p, &body).await
            }));
        }
        let mut meanwhile = Vec::new();
        for r in raised {
            meanwhile.push(r.await.unwrap());
        }
        meanwhile.sort();
        assert_eq!(issues_named(&smtp.next().await), [first]);
        let together = smtp.next().await;
        let mut named = issues_named(&together);
        named.sort();
        assert_eq!(named, meanwhile, "{together:#?}");
        assert_eq!(
            together.subject,
            format!("[Mesher] 30 alerts in project {}", p.id)
        );
        s.stop().await;
    })
    .await
    .expect("the test finishes within 60 s");
}

/// `mesher serve` (a child process) on `db`, mailing through `smtp_port`.
async fn serve_mailing(db: &str, port: u16, smtp_port: u16) -> ServerProcess {
    let smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    ServerProcess::start(db, port, &["--smtp-url", &smtp_url, "--smtp-from", FROM]).await
}

#[tokio::test]
async fn nothing_is_lost_while_the_mail_server_is_away() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite_url(dir.path());
        let (_, out, _) = run(&["project", "create", "shop", "--database-url", &db], &[]).await;
        let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
        let mut smtp = Smtp::start().await;
        let smtp_port = smtp.port;
        let server = serve_mailing(&db, free_port(), smtp_port).await;
        let http = reqwest::Client::new();
        member_mailed(&http, &server.base, &db, p.id, "ada@example.com").await;

        // Delivered while the mail server is up (the mailer now knows that server).
        let before = raise(&http, &server.base, &p, &json!({ "message": "before" })).await;
        assert_eq!(issues_named(&smtp.next().await), [before]);
        // ... and Mesher has the server's "250 OK" (the message is printed just before
        // it): killed sooner, the server would rightly send it again (at least once).
        tokio::time::timeout(WAIT, async {
            while deliveries(&http, &server.base, "delivered").await < 1.0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the delivery is recorded");

        // The mail server goes away (SIGKILL, by its PID); alerts are raised meanwhile
        // and fail to go out.
        let pid = smtp.pid();
        smtp.kill().await;
        let failed = deliveries(&http, &server.base, "retried").await;
        let mut away = Vec::new();
        for msg in ["away one", "away two", "away three"] {
            away.push(raise(&http, &server.base, &p, &json!({ "message": msg })).await);
        }
        a_failed_attempt_after(&http, &server.base, failed, WAIT).await;
        let down_since = Instant::now();

        // It comes back on the same port: every alert arrives, once.
        let mut smtp = Smtp::on(smtp_port).await;
        assert_ne!(smtp.pid(), pid);
        let (named, mails) = until_named(&mut smtp, &away, Duration::from_secs(30)).await;
        assert!(
            named.values().all(|n| *n == 1),
            "an alert sent twice: {mails:#?}"
        );
        assert_eq!(named.len(), 3, "{mails:#?}");
        println!(
            "mail server back: {} messages, the last {:?} after the first failure",
            mails.len(),
            down_since.elapsed()
        );
        server.kill().await;
    })
    .await
    .expect("the test finishes within 90 s");
}

#[tokio::test]
async fn an_alert_committed_but_not_sent_is_mailed_after_a_sigkill() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite_url(dir.path());
        let (_, out, _) = run(&["project", "create", "shop", "--database-url", &db], &[]).await;
        let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
        let smtp_port = free_port(); // nothing listens yet: the mail server is down
        let port = free_port();
        let server = serve_mailing(&db, port, smtp_port).await;
        let http = reqwest::Client::new();
        member_mailed(&http, &server.base, &db, p.id, "ada@example.com").await;

        // One alert in a delivery that failed (waiting for its retry), one just committed
        // (202): neither sent when the server is killed.
        let tried = raise(&http, &server.base, &p, &json!({ "message": "tried" })).await;
        a_failed_attempt_after(&http, &server.base, 0.0, WAIT).await;
        let fresh = raise(&http, &server.base, &p, &json!({ "message": "fresh" })).await;
        server.kill().await;

        // The mail server comes up, then Mesher on the same database: both arrive.
        let mut smtp = Smtp::on(smtp_port).await;
        let restarted = Instant::now();
        let server = serve_mailing(&db, port, smtp_port).await;
        let (named, mails) = until_named(&mut smtp, &[tried, fresh], Duration::from_secs(60)).await;
        assert_eq!(named.len(), 2, "{mails:#?}");
        for m in &mails {
            assert_eq!(m.envelope_to, ["ada@example.com"]);
        }
        println!(
            "after the SIGKILL: {} messages within {:?} of the restart",
            mails.len(),
            restarted.elapsed()
        );
        server.kill().await;
    })
    .await
    .expect("the test finishes within 120 s");
}

#[tokio::test]
async fn a_message_in_flight_at_a_sigkill_is_mailed_after_the_restart() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite_url(dir.path());
        let (_, out, _) = run(&["project", "create", "shop", "--database-url", &db], &[]).await;
        let p = Creds::from_json(&serde_json::from_str(out.trim()).unwrap());
        // A mail server that takes the connection and never answers for this recipient.
        let stuck = Smtp::hanging_on_recipient("ada@example.com").await;
        let smtp_port = stuck.port;
        let port = free_port();
        let server = serve_mailing(&db, port, smtp_port).await;
        let http = reqwest::Client::new();
        member_mailed(&http, &server.base, &db, p.id, "ada@example.com").await;

        let issue = raise(&http, &server.base, &p, &json!({ "message": "in flight" })).await;
        let mut stuck = stuck;
        assert_eq!(stuck.hanging().await, "ada@example.com");
        // SIGKILL in the middle of the SMTP conversation; then the mail server is
        // replaced by one that answers, and Mesher restarts on the same database.
        server.kill().await;
        stuck.kill().await;
        let mut smtp = Smtp::on(smtp_port).await;
        let restarted = Instant::now();
        let server = serve_mailing(&db, port, smtp_port).await;
        // The killed process's claim on the recipient (30 s from its attempt's start)
        // runs out first: no two nodes ever send one recipient's messages at once.
        let (named, mails) = until_named(&mut smtp, &[issue], Duration::from_secs(60)).await;
        assert_eq!(named[&issue], 1, "{mails:#?}");
        println!(
            "the message in flight at the SIGKILL: mailed {:?} after the restart",
            restarted.elapsed()
        );
        server.kill().await;
    })
    .await
    .expect("the test finishes within 120 s");
}

#[tokio::test]
async fn who_is_no_longer_a_member_is_mailed_no_more() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut smtp = Smtp::start().await;
        let smtp_url = smtp.url();
        let s = TestServer::start_with(|c| {
            c.smtp_url = Some(smtp_url);
            c.smtp_from = Some(FROM.into());
        })
        .await;
        let p = s.project("shop").await;
        let db = s.db.to_string();
        for who in ["ada@example.com", "bob@example.com", "cy@example.com"] {
            member_mailed(&s.http, &s.base, &db, p.id, who).await;
        }
        // Bob leaves the project, Cy's account is removed (the CLI, as an admin does it).
        let pid = p.id.to_string();
        let (code, _, err) = run(
            &[
                "member",
                "remove",
                &pid,
                "bob@example.com",
                "--database-url",
                &db,
            ],
            &[],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(
            &["user", "remove", "cy@example.com", "--database-url", &db],
            &[],
        )
        .await;
        assert_eq!(code, 0, "{err}");

        let issue = raise(&s.http, &s.base, &p, &json!({ "message": "secret" })).await;
        let mail = smtp.next().await;
        assert_eq!(mail.envelope_to, ["ada@example.com"], "{mail:#?}");
        assert_eq!(issues_named(&mail), [issue]);
        // The others' deliveries were due at the same poll as Ada's: had they been sent,
        // they would have come with it.
        let other = smtp.within(Duration::from_secs(2)).await;
        assert!(other.is_none(), "mailed to a non-member: {other:#?}");
        s.stop().await;
    })
    .await
    .expect("the test finishes within 60 s");
}

#[tokio::test]
async fn a_recipient_the_mail_server_hangs_on_delays_no_other() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut smtp = Smtp::hanging_on_recipient("stuck@example.com").await;
        let smtp_url = smtp.url();
        let s = TestServer::start_with(|c| {
            c.smtp_url = Some(smtp_url);
            c.smtp_from = Some(FROM.into());
        })
        .await;
        let p = s.project("shop").await;
        let db = s.db.to_string();
        member_mailed(&s.http, &s.base, &db, p.id, "stuck@example.com").await;
        member_mailed(&s.http, &s.base, &db, p.id, "ada@example.com").await;

        let started = Instant::now();
        let mut issues = Vec::new();
        for msg in ["one", "two"] {
            issues.push(raise(&s.http, &s.base, &p, &json!({ "message": msg })).await);
            // Each within well under an attempt's 10 s limit, while the other recipient's
            // attempt hangs.
            let mail = smtp.next_within(Duration::from_secs(5)).await;
            assert_eq!(mail.envelope_to, ["ada@example.com"], "{mail:#?}");
            assert_eq!(issues_named(&mail), [*issues.last().unwrap()]);
        }
        // The other recipient's message is in flight meanwhile, hung.
        assert_eq!(smtp.hanging().await, "stuck@example.com");
        println!("both messages in {:?}", started.elapsed());
        s.stop().await;
    })
    .await
    .expect("the test finishes within 60 s");
}

#[test]
fn a_bad_smtp_flag_exits_2_naming_it_without_its_password() {
    for args in [
        vec![
            "--smtp-url",
            "http://mail:hunter22@example.com",
            "--smtp-from",
            "a@example.com",
        ],
        vec![
            "--smtp-url",
            "smtp://mail:hunter22@[bad",
            "--smtp-from",
            "a@example.com",
        ],
        vec!["--smtp-url", "smtp://mail:hunter22@127.0.0.1:25"],
        vec![
            "--smtp-url",
            "smtp://127.0.0.1:25",
            "--smtp-from",
            "not an address",
        ],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesher"))
            .arg("serve")
            .args(&args)
            .env_remove("MESHER_SMTP_URL")
            .env_remove("MESHER_SMTP_FROM")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--smtp-"), "{stderr}");
        assert!(
            !stderr.contains("hunter22"),
            "the password is shown: {stderr}"
        );
    }
}

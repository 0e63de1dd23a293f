//! SPEC §9's e-mail alerts against a real SMTP server on loopback (PyPI's `aiosmtpd`,
//! printing each message it receives): a member turns them on, a new issue mails them once.

mod common;

use common::process::free_port;
use common::{TestServer, WAIT};
use reqwest::StatusCode;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

const PASSWORD: &str = "a fine long password";

/// An SMTP server on loopback; each received message's text arrives on the channel.
struct Smtp {
    port: u16,
    messages: mpsc::UnboundedReceiver<String>,
    _child: tokio::process::Child,
}

async fn smtp() -> Smtp {
    let port = free_port();
    let mut child = tokio::process::Command::new(common::sdk::python())
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Debugging", "stdout"])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("aiosmtpd starts (tests/requirements.txt)");
    let (tx, messages) = mpsc::unbounded_channel();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::spawn(async move {
        let mut message: Option<String> = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("MESSAGE FOLLOWS") {
                message = Some(String::new());
            } else if line.contains("END MESSAGE") {
                let _ = tx.send(message.take().unwrap_or_default());
            } else if let Some(m) = message.as_mut() {
                m.push_str(&line);
                m.push('\n');
            }
        }
    });
    tokio::time::timeout(WAIT, async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the SMTP server listens");
    Smtp {
        port,
        messages,
        _child: child,
    }
}

#[tokio::test]
async fn a_member_who_turned_email_on_is_mailed_once_for_a_new_issue() {
    let mail = smtp().await;
    let port = mail.port;
    let mut messages = mail.messages;
    let s = TestServer::start_with(|c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.smtp_from = Some("Mesher <mesher@example.com>".into());
    })
    .await;
    let p = s.project("shop").await;
    mesher::people::create_user(&s.db, "ada@example.com", false, Some(PASSWORD.into()))
        .await
        .unwrap();
    mesher::people::change_member(&s.db, p.id, "ada@example.com", true)
        .await
        .unwrap();
    let (_, _, cookie) = s.sign_in("ada@example.com", PASSWORD).await;
    let cookie = cookie.expect("a session cookie");
    let url = s.url(&format!("/api/v1/projects/{}/email-alerts", p.id));
    let on = s
        .http
        .put(&url)
        .header("cookie", &cookie)
        .header("origin", &s.base)
        .json(&json!({ "on": ["new"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(on.status(), StatusCode::OK);
    let shown = s
        .http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        shown.json::<serde_json::Value>().await.unwrap()["on"],
        json!(["new"])
    );
    let hooks = s
        .get(&format!("/api/v1/projects/{}/webhooks", p.id), &p.token)
        .await
        .1;
    assert_eq!(
        hooks["webhooks"],
        json!([]),
        "e-mail is not listed among the webhooks"
    );

    for _ in 0..3 {
        let (status, _) = s
            .send_event(
                &p,
                &json!({ "message": "checkout failed", "level": "error" }),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let message = tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("a message within 10 s")
        .expect("the SMTP server runs");
    assert!(message.contains("To: ada@example.com"), "{message}");
    assert!(
        message.contains("From: Mesher <mesher@example.com>"),
        "{message}"
    );
    assert!(
        message.contains("Subject: [Mesher] checkout failed"),
        "{message}"
    );
    assert!(message.contains("New issue: checkout failed"), "{message}");
    assert!(
        message.contains(&format!("#project={}&issue=", p.id)),
        "{message}"
    );
    let again = tokio::time::timeout(Duration::from_secs(2), messages.recv()).await;
    assert!(again.is_err(), "one issue, one message: {again:?}");
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

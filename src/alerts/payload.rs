//! What a webhook is sent, without I/O: the delivery bodies (`json` and `slack`), the
//! signature, and the retry schedule. The alerts a change raises are `model::alert`'s.

use backon::BackoffBuilder;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::time::Duration;

/// The `json` format: `{"project_id": P, "alerts": [...]}`, the stored alerts as they are.
pub fn json_body(project_id: i64, alerts: &[String]) -> String {
    let mut body = format!("{{\"project_id\":{project_id},\"alerts\":[");
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(a);
    }
    body.push_str("]}");
    body
}

/// Slack's control characters in message text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn headline(action: &str) -> &'static str {
    match action {
        "new" => "New issue",
        "regressed" => "Regressed",
        "resolved" => "Resolved",
        "archived" => "Archived",
        "unresolved" => "Reopened",
        "discarded" => "Discarded",
        _ => "Changed",
    }
}

/// The `slack` format: an incoming-webhook message naming each alert's action, the issue's
/// title (a link to it on the dashboard at `public_url`) and level.
pub fn slack_body(project_id: i64, alerts: &[String], public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let mut lines = Vec::with_capacity(alerts.len() + 1);
    if alerts.len() > 1 {
        lines.push(format!(
            "Mesher: {} alerts in project {project_id}",
            alerts.len()
        ));
    }
    for a in alerts {
        let v: Value = serde_json::from_str(a).unwrap_or(Value::Null);
        let issue = &v["issue"];
        let title = issue["title"].as_str().unwrap_or("(no title)");
        let id = issue["id"].as_i64().unwrap_or(0);
        let level = issue["level"].as_str().unwrap_or("error");
        let link = format!("{base}/#project={project_id}&issue={id}");
        let mut line = format!(
            "*{}*: <{link}|{}> ({level})",
            headline(v["action"].as_str().unwrap_or("")),
            slack_escape(title)
        );
        if let Some(culprit) = issue["culprit"].as_str().filter(|c| !c.is_empty()) {
            line.push_str(&format!(" in `{}`", slack_escape(culprit)));
        }
        lines.push(line);
    }
    json!({ "text": lines.join("\n") }).to_string()
}

/// The `email` format: a subject line, a blank line, then a text naming each alert's action,
/// the issue's title, level and event count, and a link to the issue on the dashboard.
pub fn email_body(project_id: i64, alerts: &[String], public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let mut text = String::new();
    let mut first_title = String::new();
    for a in alerts {
        let v: Value = serde_json::from_str(a).unwrap_or(Value::Null);
        let issue = &v["issue"];
        let title = issue["title"].as_str().unwrap_or("(no title)");
        if first_title.is_empty() {
            first_title = title.chars().take(120).collect();
        }
        let id = issue["id"].as_i64().unwrap_or(0);
        let level = issue["level"].as_str().unwrap_or("error");
        let count = issue["event_count"].as_i64().unwrap_or(0);
        let action = headline(v["action"].as_str().unwrap_or(""));
        let events = if count == 1 { "event" } else { "events" };
        text.push_str(&format!(
            "{action}: {title}\n  level {level}, {count} {events}\n  {base}/#project={project_id}&issue={id}\n\n"
        ));
    }
    let subject = match alerts.len() {
        1 => format!("[Mesher] {first_title}"),
        n => format!("[Mesher] {n} alerts in project {project_id}"),
    };
    // Control characters would break the header: a title is the client's text.
    let subject: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{subject}\n\n{text}")
}

/// `X-Mesher-Signature`: `sha256=` and the hex HMAC-SHA256 of the exact body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// How long to wait after the `attempts`-th failed attempt: 1–2 s, doubling, at most
/// 5 minutes apart, with jitter (backon adds up to one more delay) so that the deliveries
/// a receiver's outage held back do not all return at once. backon gives the schedule; the
/// wait itself is kept in the database (`next_attempt`), so a restart keeps it.
pub fn retry_delay(attempts: u32) -> Duration {
    let delay = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(300))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempts.saturating_sub(1) as usize)
        .unwrap_or(MAX_RETRY_DELAY);
    delay.min(MAX_RETRY_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies() {
        let a = r#"{"action":"new","issue":{"id":7,"title":"TypeError: <x> & y","level":"error","culprit":"app.js in pay"}}"#;
        assert_eq!(
            json_body(1, &[a.into()]),
            format!(r#"{{"project_id":1,"alerts":[{a}]}}"#)
        );
        assert_eq!(json_body(1, &[]), r#"{"project_id":1,"alerts":[]}"#);
        let slack: Value =
            serde_json::from_str(&slack_body(1, &[a.into()], "http://m.example/")).unwrap();
        assert_eq!(
            slack["text"],
            "*New issue*: <http://m.example/#project=1&issue=7|TypeError: &lt;x&gt; &amp; y> (error) in `app.js in pay`"
        );
        let two = slack_body(1, &[a.into(), a.into()], "http://m");
        assert!(two.contains("Mesher: 2 alerts in project 1"));
    }

    #[test]
    fn retries_grow_from_about_a_second_to_five_minutes() {
        let first = retry_delay(1);
        assert!(
            first >= Duration::from_secs(1) && first <= Duration::from_secs(3),
            "{first:?}"
        );
        let fourth = retry_delay(4);
        assert!(fourth >= Duration::from_secs(8), "{fourth:?}");
        for n in [12, 40, 1000] {
            assert_eq!(retry_delay(n), MAX_RETRY_DELAY, "{n}");
        }
    }
}

//! Webhooks (SPEC §7), without I/O: what one is, which issue changes it is told of, and
//! the validation of what a user gives when adding one.

use super::{IssueAction, Millis};
use serde::Serialize;

/// The body a webhook is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"project_id", "alerts": [...]}`.
    Json,
    /// A Slack incoming-webhook message, `{"text": ...}`.
    Slack,
    /// An e-mail to a member (SPEC §9): the target is `mailto:<address>`, set through the
    /// e-mail alerts route, never given as a webhook's format.
    Email,
}

impl WebhookFormat {
    /// Its name in commands and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Email => "email",
        }
    }

    /// A stored format: as [`WebhookFormat::parse`], and `email`.
    pub fn stored(s: &str) -> Result<WebhookFormat, String> {
        match s {
            "email" => Ok(WebhookFormat::Email),
            other => WebhookFormat::parse(other),
        }
    }

    /// Parses `json` or `slack`.
    pub fn parse(s: &str) -> Result<WebhookFormat, String> {
        match s {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            other => Err(format!("unknown format '{other}': expected json or slack")),
        }
    }
}

/// Every trigger, in the order they are listed.
pub const TRIGGERS: [IssueAction; 6] = [
    IssueAction::New,
    IssueAction::Regressed,
    IssueAction::Resolved,
    IssueAction::Archived,
    IssueAction::Unresolved,
    IssueAction::Discarded,
];

/// Most webhooks a project has (SPEC §8): each costs a task and a connection per alert, so
/// a project token cannot make the server deliver one alert thousands of times.
pub const MAX_WEBHOOKS: usize = 20;

/// The refusal of a project's webhook past [`MAX_WEBHOOKS`].
pub fn too_many() -> String {
    format!("too many webhooks: a project has at most {MAX_WEBHOOKS}; remove one first")
}

/// The triggers of a webhook added without `--on`.
pub const DEFAULT_TRIGGERS: &str = "new,regressed";

/// Parses a comma list of triggers (`new,regressed,resolved,...`): each once, in the order
/// of [`TRIGGERS`].
pub fn parse_triggers(list: &str) -> Result<Vec<IssueAction>, String> {
    let mut on = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(format!(
                "'{list}' has an empty trigger: expected a comma list of {}",
                names()
            ));
        }
        let Some(action) = TRIGGERS.iter().find(|t| t.as_str() == name) else {
            return Err(format!("unknown trigger '{name}': expected {}", names()));
        };
        if !on.contains(action) {
            on.push(*action);
        }
    }
    on.sort_by_key(|a| TRIGGERS.iter().position(|t| t == a));
    Ok(on)
}

fn names() -> String {
    TRIGGERS.map(IssueAction::as_str).join(", ")
}

/// Checks a receiver's URL: `http://` or `https://` with a host, at most 2,048 bytes.
pub fn validate_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("'{url}' is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') || host.contains(char::is_whitespace) {
        return Err(format!("'{url}' has no host"));
    }
    if url.len() > 2048 || url.contains(char::is_whitespace) {
        return Err(format!(
            "'{url}' is not a valid URL (spaces, or over 2,048 bytes)"
        ));
    }
    Ok(())
}

/// A webhook as stored (and printed, without its secret by `list`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: i64,
    /// The project whose issues it is told of.
    pub project_id: i64,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The issue changes it is told of.
    pub on: Vec<IssueAction>,
    /// The body's format.
    pub format: WebhookFormat,
    /// The HMAC-SHA256 key of `X-Mesher-Signature`.
    pub secret: String,
}

impl Webhook {
    /// The triggers as stored: a comma list.
    pub fn on_list(&self) -> String {
        self.on
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// As printed: `{"id", "project_id", "url", "on", "format"}` plus `secret` when asked.
    pub fn to_json(&self, with_secret: bool) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "project_id": self.project_id,
            "url": self.url,
            "on": self.on.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "format": self.format.as_str(),
        });
        if with_secret {
            v["secret"] = self.secret.clone().into();
        }
        v
    }
}

/// A delivery: up to 100 alerts of one webhook, with the exact body every attempt sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `X-Mesher-Delivery`, the same on every retry.
    pub id: String,
    /// The webhook it is for.
    pub webhook_id: i64,
    /// The body, as signed.
    pub body: String,
    /// Alerts in it.
    pub alerts: i64,
    /// Attempts made so far.
    pub attempts: i64,
    /// When it was made (its first attempt follows at once).
    pub created: Millis,
    /// When its oldest alert was raised.
    pub oldest_alert: Millis,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 2xx answer.
    Delivered,
    /// Failed; try again at this time.
    Retry(Millis),
    /// Failed for the last time (retried for the whole window).
    GivenUp,
}

/// What adding a webhook did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookAdded {
    /// It was added.
    Added(Webhook),
    /// The project does not exist.
    NoProject,
    /// The project already has [`MAX_WEBHOOKS`](crate::model::webhook::MAX_WEBHOOKS).
    Full,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_parse_in_a_fixed_order_once_each() {
        assert_eq!(
            parse_triggers("regressed,new,new").unwrap(),
            [IssueAction::New, IssueAction::Regressed]
        );
        assert_eq!(parse_triggers(" resolved , discarded").unwrap().len(), 2);
        assert_eq!(
            parse_triggers("new,exploded").unwrap_err(),
            "unknown trigger 'exploded': expected new, regressed, resolved, archived, unresolved, discarded"
        );
        assert!(
            parse_triggers("new,,resolved")
                .unwrap_err()
                .contains("empty trigger")
        );
        assert!(parse_triggers("").is_err());
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(validate_url("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(validate_url("http://127.0.0.1:9000/hook?x=1").is_ok());
        assert_eq!(
            validate_url("ftp://x").unwrap_err(),
            "'ftp://x' is not an http:// or https:// URL"
        );
        assert_eq!(
            validate_url("http://").unwrap_err(),
            "'http://' has no host"
        );
        assert!(validate_url("http://:80/").is_err());
        assert!(validate_url("http://a b/").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(WebhookFormat::parse("slack"), Ok(WebhookFormat::Slack));
        assert_eq!(
            WebhookFormat::parse("xml").unwrap_err(),
            "unknown format 'xml': expected json or slack"
        );
    }
}

//! E-mail alerts over SMTP (SPEC §9), sent with lettre: a delivery of the outbox whose
//! target is `mailto:<address>` becomes one message, so e-mail has the webhooks' guarantees
//! (written in the change's transaction, retried, one in flight per recipient, alerts
//! raised meanwhile sent together). Only someone who may still use the project is mailed
//! ([`recipient_may_use`]): a member removed, or a user removed, gets no more alerts.

use crate::model::webhook::Webhook;
use crate::store::{Store, StoreError};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// The SMTP server and the sender (`--smtp-url`, `--smtp-from`).
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer(from {})", self.from)
    }
}

impl Mailer {
    /// A mailer for `url` (`smtp://[user:pass@]host:port`, `smtps://` for TLS) sending as
    /// `from`; each message gets `timeout` to be handed over.
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("invalid --smtp-url: {e}"))?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("invalid --smtp-from '{from}': {e}"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends a delivery's `body` (its first line is the subject, then a blank line, then
    /// the text) to `to` (`mailto:<address>`); the delivery's id is the message's id, so
    /// a retry of one delivery is recognizably the same message.
    pub async fn send(&self, to: &str, body: &str, delivery: &str) -> Result<(), String> {
        let to = to.strip_prefix("mailto:").unwrap_or(to);
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let (subject, text) = body.split_once("\n\n").unwrap_or(("[Mesher] alert", body));
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{delivery}@mesher>")))
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// Whether the recipient of an e-mail target (`mailto:<address>`) may still use its project
/// (SPEC §9: e-mail is a member's, any admin's): false once the user is no longer a member,
/// or no longer a user. Asked before each message, so a membership removed by the CLI or
/// another node counts at once.
pub async fn recipient_may_use(store: &Store, hook: &Webhook) -> Result<bool, StoreError> {
    let email = hook.url.strip_prefix("mailto:").unwrap_or(&hook.url);
    match store.user_by_email(email).await? {
        Some((user, _)) => store.may_use(&user, hook.project_id).await,
        None => Ok(false),
    }
}

//! Sentry SDK compatibility (SPEC §2.2), without I/O: the envelope format, the event
//! schema mapping and the DSN. The HTTP handlers are in `http::sentry`.

mod by_key;
pub(crate) mod envelope;
mod event;
mod read;
pub(crate) mod scan;
mod scanned;

pub use envelope::{Envelope, EnvelopeError, Item};
pub use event::parse_event;

/// Envelope item types that carry an error event; every other type is accepted and ignored
/// (transaction, session, sessions, client_report, attachment, check_in, profile, ...).
pub(crate) const EVENT_ITEM: &str = "event";

/// The public key and project id of a DSN (`http://<key>@host/<project_id>`).
pub(crate) fn dsn_parts(dsn: &str) -> Option<(String, String)> {
    let dsn: sentry_types::Dsn = dsn.parse().ok()?;
    Some((
        dsn.public_key().to_owned(),
        dsn.project_id().value().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dsn_parts() {
        assert_eq!(
            super::dsn_parts("http://abc123@127.0.0.1:8080/7"),
            Some(("abc123".into(), "7".into()))
        );
        assert_eq!(super::dsn_parts("not a dsn"), None);
    }
}

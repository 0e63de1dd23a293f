//! Message normalization for grouping: lowercase, then variable parts become placeholders,
//! so that "timeout after 30s" and "timeout after 31s" group into one issue.

use regex::{Captures, Regex};
use std::sync::LazyLock;

/// One alternation, tried left to right at each position, so the more specific shapes
/// (UUIDs, timestamps, IPs) win over the plain number rule that would otherwise split them.
static VARIABLE_PARTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)",
        r"|(?P<ts>\b\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?)",
        r"|(?P<time>\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?)",
        r"|(?P<ipv4>\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b)",
        r"|(?P<ipv6>\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}\b)",
        r"|(?P<email>\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b)",
        r"|(?P<addr>\b0x[0-9a-f]+\b)",
        r"|(?P<hex>\b[0-9a-f]{8,}\b)",
        r"|(?P<num>[-+]?\d+(?:\.\d+)?)",
    ))
    .expect("normalizer regex compiles")
});

static WHITESPACE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s+").expect("whitespace regex compiles"));

/// Lowercases `text` and replaces its variable parts with `<uuid>`, `<timestamp>`, `<ip>`,
/// `<email>`, `<hex>` or `<num>`; runs of white space become one space.
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase();
    let replaced = VARIABLE_PARTS.replace_all(&lower, |c: &Captures<'_>| {
        let placeholder = if c.name("uuid").is_some() {
            "<uuid>"
        } else if c.name("ts").is_some() || c.name("time").is_some() {
            "<timestamp>"
        } else if c.name("ipv4").is_some() || c.name("ipv6").is_some() {
            "<ip>"
        } else if c.name("email").is_some() {
            "<email>"
        } else if c.name("addr").is_some() {
            "<hex>"
        } else if let Some(m) = c.name("hex") {
            // A run of hex letters alone ("deadbeef", "acceded") is a word, not an id.
            if m.as_str().bytes().any(|b| b.is_ascii_digit()) {
                "<hex>"
            } else {
                return m.as_str().to_owned();
            }
        } else {
            "<num>"
        };
        placeholder.to_owned()
    });
    WHITESPACE.replace_all(replaced.trim(), " ").into_owned()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    /// Pairs that must normalize to the same text (one issue).
    const SAME: &[(&str, &str)] = &[
        ("timeout after 30s", "timeout after 31s"),
        ("Timeout after 30s", "timeout AFTER 30s"),
        ("user 123 not found", "user 98765 not found"),
        ("segfault at 0x7ffd5a3c", "segfault at 0xdeadbeef"),
        (
            "order 6f9619ff-8b86-d011-b42d-00c04fc964ff failed",
            "order 123e4567-e89b-12d3-a456-426614174000 failed",
        ),
        (
            "connect to 10.0.0.1:5432 refused",
            "connect to 192.168.1.20:6543 refused",
        ),
        (
            "at 2026-11-23T12:00:01Z job failed",
            "at 2025-01-02T03:04:05.123+02:00 job failed",
        ),
        ("started 12:00:01 done", "started 23:59:59.5 done"),
        (
            "mail to a.b@example.com bounced",
            "mail to zed@test.org bounced",
        ),
        (
            "commit 4f2a9c1e8b missing",
            "commit 0b1c2d3e4f5a6b7c missing",
        ),
        ("ratio 0.25 too low", "ratio 12.5 too low"),
        (
            "host fe80:0:0:0:1ff:fe23:4567:890a down",
            "host 2001:db8:0:0:0:0:2:1 down",
        ),
        ("too   many\nspaces", "too many spaces"),
    ];

    /// Pairs that must stay apart (two issues).
    const DIFFERENT: &[(&str, &str)] = &[
        ("timeout after 30s", "timeout after 30ms"),
        ("user not found", "order not found"),
        (
            "cannot read property 'x' of undefined",
            "cannot read property 'y' of undefined",
        ),
        ("deadbeef feed", "facade feed"),
        ("TypeError", "ValueError"),
    ];

    #[test]
    fn groups_together() {
        for (a, b) in SAME {
            assert_eq!(normalize(a), normalize(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn keeps_apart() {
        for (a, b) in DIFFERENT {
            assert_ne!(normalize(a), normalize(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn placeholders() {
        assert_eq!(normalize("timeout after 30s"), "timeout after <num>s");
        assert_eq!(
            normalize("GET /users/42 from 10.1.2.3 at 0xff"),
            "get /users/<num> from <ip> at <hex>"
        );
        assert_eq!(normalize("deadbeef"), "deadbeef");
    }
}

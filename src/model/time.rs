//! Timestamps: stored as unix milliseconds, shown as RFC 3339 in UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde::{Serialize, Serializer};

/// Unix time in milliseconds; serializes as `2026-11-23T12:00:00.000Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

/// The latest instant accepted (year 9999), so that every stored value formats.
const MAX_MILLIS: i64 = 253_402_300_799_999;

impl Millis {
    /// The current time.
    pub fn now() -> Millis {
        Millis(Utc::now().timestamp_millis())
    }

    /// RFC 3339 with milliseconds and `Z`.
    pub fn to_rfc3339(self) -> String {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Parses RFC 3339 (a naive `YYYY-MM-DDTHH:MM:SS[.f]` is taken as UTC, as Sentry SDKs
    /// sometimes send it).
    pub fn parse_rfc3339(s: &str) -> Option<Millis> {
        let ms = match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.timestamp_millis(),
            Err(_) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()?
                .and_utc()
                .timestamp_millis(),
        };
        Millis::from_millis(ms)
    }

    /// Unix seconds, fractional allowed.
    pub fn from_unix_seconds(secs: f64) -> Option<Millis> {
        if !secs.is_finite() {
            return None;
        }
        let ms = (secs * 1000.0).round();
        if ms < i64::MIN as f64 || ms > i64::MAX as f64 {
            return None;
        }
        Millis::from_millis(ms as i64)
    }

    fn from_millis(ms: i64) -> Option<Millis> {
        (0..=MAX_MILLIS).contains(&ms).then_some(Millis(ms))
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = Millis::parse_rfc3339("2026-11-23T12:00:01.5+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T11:00:01.500Z");
        assert_eq!(
            Millis::parse_rfc3339("2026-11-23T12:00:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-23T12:00:00.000Z"
        );
        assert_eq!(Millis::from_unix_seconds(1.25), Some(Millis(1250)));
        assert_eq!(Millis::from_unix_seconds(-5.0), None);
        assert_eq!(Millis::parse_rfc3339("yesterday"), None);
    }
}

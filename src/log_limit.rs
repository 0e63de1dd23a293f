//! Logging under a sustained failure: the first failure of a kind is logged with its
//! cause, then at most one summary line per [`WINDOW`] with how many more there were —
//! so a full disk is not filled faster by the server's own logs (measured before: 8,805
//! lines for 2,934 refused requests). Written here because it is a dozen lines over a
//! mutex; the tracing ecosystem's rate-limit layers drop lines without the count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per kind per this long.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// What to log for one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Emit {
    /// Log it, with its cause: the first of its kind (after a quiet window).
    First,
    /// Log a summary: this many more since the last line (this one included).
    Summary(u64),
    /// Count it, log nothing.
    Quiet,
}

#[derive(Default)]
struct Kind {
    last_line: Option<Instant>,
    since: u64,
}

static KINDS: Mutex<Option<HashMap<&'static str, Kind>>> = Mutex::new(None);

/// Decides for one failure of `kind`, now.
pub(crate) fn check(kind: &'static str) -> Emit {
    check_at(kind, Instant::now())
}

fn check_at(kind: &'static str, now: Instant) -> Emit {
    let mut kinds = KINDS.lock().unwrap_or_else(|e| e.into_inner());
    let k = kinds
        .get_or_insert_with(HashMap::new)
        .entry(kind)
        .or_default();
    match k.last_line {
        Some(at) if now.duration_since(at) < WINDOW => {
            k.since += 1;
            Emit::Quiet
        }
        Some(_) if k.since > 0 => {
            let n = k.since + 1;
            k.since = 0;
            k.last_line = Some(now);
            Emit::Summary(n)
        }
        _ => {
            k.last_line = Some(now);
            Emit::First
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_then_a_count_per_window() {
        let t = Instant::now();
        let at = |s: u64| t + Duration::from_millis(s);
        assert_eq!(check_at("test-a", at(0)), Emit::First);
        for i in 1..=500 {
            assert_eq!(check_at("test-a", at(i * 10)), Emit::Quiet);
        }
        // The next failure after the window logs the count (500 quiet ones and itself).
        assert_eq!(check_at("test-a", at(10_001)), Emit::Summary(501));
        assert_eq!(check_at("test-a", at(10_002)), Emit::Quiet);
        assert_eq!(check_at("test-a", at(20_002)), Emit::Summary(2));
        // A quiet window later, a failure is news again, with its cause.
        assert_eq!(check_at("test-a", at(60_000)), Emit::First);
        // Kinds are counted apart.
        assert_eq!(check_at("test-b", at(60_001)), Emit::First);
    }
}

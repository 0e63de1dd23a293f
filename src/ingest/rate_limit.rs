//! Per-project rate limiting with `governor` (GCRA): `--rate-limit` events per 60 s, with
//! bursts up to the whole window's allowance, refilled smoothly.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A limiter keyed by project id.
pub(crate) struct ProjectRateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<i64>>,
    clock: DefaultClock,
    per_minute: u32,
    refused: RefusedCounts,
}

/// Minutes of refusals kept per project: an hour.
const REFUSED_MINUTES: usize = 60;

/// One minute's refused events of a project: the minute (unix ms / 60,000) and its count.
#[derive(Default)]
struct MinuteCount {
    minute: AtomicI64,
    count: AtomicU64,
}

/// Events the limit refused, per project and minute, for the last hour (in this node's
/// memory). Only a refusal touches it: an accepted event never does. A refusal takes a
/// shared lock and adds to an atomic; only a project's first refusal takes the write lock.
#[derive(Default)]
pub(crate) struct RefusedCounts {
    projects: RwLock<HashMap<i64, Arc<[MinuteCount; REFUSED_MINUTES]>>>,
}

impl RefusedCounts {
    /// Counts `n` events of `project` refused in `minute` (unix ms / 60,000).
    pub(crate) fn add(&self, project: i64, minute: i64, n: u64) {
        let known = self
            .projects
            .read()
            .ok()
            .and_then(|m| m.get(&project).cloned());
        let ring =
            match known {
                Some(ring) => ring,
                None => match self.projects.write() {
                    Ok(mut m) => Arc::clone(m.entry(project).or_insert_with(|| {
                        Arc::new(std::array::from_fn(|_| MinuteCount::default()))
                    })),
                    Err(_) => return,
                },
            };
        let slot = &ring[minute.rem_euclid(REFUSED_MINUTES as i64) as usize];
        let was = slot.minute.swap(minute, Ordering::AcqRel);
        if was != minute {
            // A new minute in this slot: the count of an hour ago goes. (Two refusals
            // racing at a minute's turn may lose one count; the figure is a notice.)
            slot.count.store(n, Ordering::Release);
        } else {
            slot.count.fetch_add(n, Ordering::AcqRel);
        }
    }

    /// Events of `project` refused in the 60 minutes up to and including `minute`.
    pub(crate) fn last_hour(&self, project: i64, minute: i64) -> u64 {
        let Some(ring) = self
            .projects
            .read()
            .ok()
            .and_then(|m| m.get(&project).cloned())
        else {
            return 0;
        };
        let oldest = minute - (REFUSED_MINUTES as i64 - 1);
        ring.iter()
            .filter(|s| (oldest..=minute).contains(&s.minute.load(Ordering::Acquire)))
            .map(|s| s.count.load(Ordering::Acquire))
            .sum()
    }
}

/// The current minute, as [`RefusedCounts`] numbers them.
fn current_minute() -> i64 {
    crate::model::Millis::now().0.div_euclid(60_000)
}

impl ProjectRateLimiter {
    /// `per_minute` events per project per 60 s; 0 turns limiting off.
    pub(crate) fn new(per_minute: u32) -> ProjectRateLimiter {
        let limiter = NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        ProjectRateLimiter {
            limiter,
            clock: DefaultClock::default(),
            per_minute,
            refused: RefusedCounts::default(),
        }
    }

    /// `--rate-limit`: events per project per 60 s (0: off).
    pub(crate) fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Events of `project` this node refused for the rate limit in the last hour.
    pub(crate) fn refused_last_hour(&self, project: i64) -> u64 {
        self.refused.last_hour(project, current_minute())
    }

    /// Takes `n` events from the project's allowance, or says how long to wait.
    pub(crate) fn check(&self, project: i64, n: usize) -> Result<(), Duration> {
        let (Some(limiter), Some(n)) = (
            &self.limiter,
            NonZeroU32::new(n.min(u32::MAX as usize) as u32),
        ) else {
            return Ok(());
        };
        let wait = match limiter.check_key_n(&project, n) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(self.clock.now()),
            // More events in one request than a whole window allows.
            Err(_) => Duration::from_secs(60),
        };
        self.refused
            .add(project, current_minute(), u64::from(n.get()));
        Err(wait)
    }
}

/// Seconds for `Retry-After`: the wait rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.as_secs() == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_project() {
        let l = ProjectRateLimiter::new(3);
        assert!(l.check(1, 2).is_ok());
        assert!(l.check(1, 1).is_ok());
        let wait = l.check(1, 1).unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20));
        assert!(l.check(2, 3).is_ok(), "projects have separate allowances");
        assert!(
            l.check(3, 4).is_err(),
            "a request larger than the window is refused"
        );
        assert!(ProjectRateLimiter::new(0).check(1, 1_000_000).is_ok());
    }

    #[test]
    fn refusals_are_counted_per_project_for_an_hour() {
        let l = ProjectRateLimiter::new(2);
        assert!(l.check(1, 2).is_ok());
        assert!(l.check(1, 3).is_err());
        assert!(l.check(1, 1).is_err());
        assert_eq!(l.refused_last_hour(1), 4);
        assert_eq!(l.refused_last_hour(2), 0);
        assert_eq!(l.per_minute(), 2);

        let c = RefusedCounts::default();
        c.add(7, 1_000, 5);
        c.add(7, 1_000, 1);
        c.add(7, 1_030, 2);
        assert_eq!(c.last_hour(7, 1_030), 8);
        assert_eq!(c.last_hour(7, 1_059), 8);
        assert_eq!(c.last_hour(7, 1_060), 2, "minute 1000 is over an hour old");
        c.add(7, 1_060, 3); // the same slot as minute 1000, reused
        assert_eq!(c.last_hour(7, 1_060), 5);
        assert_eq!(c.last_hour(7, 1_200), 0);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}

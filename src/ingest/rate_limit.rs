//! Per-project rate limiting with `governor` (GCRA): `--rate-limit` events per 60 s, with
//! bursts up to the whole window's allowance, refilled smoothly.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// A limiter keyed by project id.
pub(crate) struct ProjectRateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<i64>>,
    clock: DefaultClock,
}

impl ProjectRateLimiter {
    /// `per_minute` events per project per 60 s; 0 turns limiting off.
    pub(crate) fn new(per_minute: u32) -> ProjectRateLimiter {
        let limiter = NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        ProjectRateLimiter {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Takes `n` events from the project's allowance, or says how long to wait.
    pub(crate) fn check(&self, project: i64, n: usize) -> Result<(), Duration> {
        let (Some(limiter), Some(n)) = (
            &self.limiter,
            NonZeroU32::new(n.min(u32::MAX as usize) as u32),
        ) else {
            return Ok(());
        };
        match limiter.check_key_n(&project, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            // More events in one request than a whole window allows.
            Err(_) => Err(Duration::from_secs(60)),
        }
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
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}

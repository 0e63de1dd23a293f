//! The drain ticker (SPEC §4): a pass at least every `--drain-interval-ms` writes whatever
//! waits in an outbox whose socket takes it. One task for the whole hub, not a timer per
//! connection: the fan-out path already writes after every batch, so a pass rarely finds
//! work, and 1,000 connections' timers cost 4,000 wake-ups a second for nothing.

use super::hub::Hub;
use std::sync::Arc;
use std::time::Duration;

/// Runs a drain pass every `every` until cancelled (the supervisor restarts it if it dies).
pub(crate) async fn run(hub: Arc<Hub>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        hub.drain();
    }
}

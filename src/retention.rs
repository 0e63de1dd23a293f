//! Retention: a background task that deletes events received more than `--retention-days`
//! ago, and then issues left without events (discarded issues stay, as tombstones, so
//! that their fingerprint keeps being dropped); source-map bundles stored as long ago go too.

use crate::bus::Bus;
use crate::model::Millis;
use crate::store::Store;
use crate::task::Service;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a pass runs.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// One pass: purge, then publish the changed unresolved counts.
pub async fn pass(store: &Store, bus: &Bus, days: u32) {
    let cutoff = Millis(Millis::now().0 - i64::from(days) * 86_400_000);
    match store.purge_before(cutoff).await {
        Ok(result) => {
            if result.events > 0 || result.issues > 0 {
                tracing::info!(
                    events = result.events,
                    issues = result.issues,
                    days,
                    "retention pass deleted old data"
                );
            }
            for msg in result.messages {
                bus.publish(msg).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "retention pass failed; will retry next interval"),
    }
    // Ended sessions, and failed sign-ins older than the attempt limit's window.
    let now = Millis::now();
    let window = crate::accounts::FAILURE_WINDOW.as_millis() as i64;
    match store.purge_sessions(now, Millis(now.0 - window)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(sessions = n, "ended sessions deleted"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot delete ended sessions; will retry next interval")
        }
    }
    // Source-map bundles (SPEC §10) are kept as long as the events they map.
    match store.purge_artifacts(cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(bundles = n, days, "old source-map bundles deleted"),
        Err(e) => tracing::warn!(error = %e, "cannot delete old source-map bundles; will retry"),
    }
}

/// The retention task.
pub struct Retention {
    /// Where to purge.
    pub store: Store,
    /// Where the changed counts go.
    pub bus: Bus,
    /// `--retention-days`.
    pub days: u32,
    /// When to stop.
    pub shutdown: CancellationToken,
}

impl Service for Retention {
    fn run(&mut self) -> impl Future<Output = ()> + Send + '_ {
        run(
            self.store.clone(),
            self.bus.clone(),
            self.days,
            self.shutdown.clone(),
        )
    }
}

/// Runs a pass at start and then every [`INTERVAL`], until `shutdown`.
pub async fn run(store: Store, bus: Bus, days: u32, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => pass(&store, &bus, days).await,
            _ = shutdown.cancelled() => return,
        }
    }
}

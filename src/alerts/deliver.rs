//! The delivery loop: claims webhooks with work due, and for each runs one delivery at a
//! time on its own task, so a slow, hung or refusing receiver delays only itself (SPEC §7).

use super::payload::{self, retry_delay};
use crate::log_limit::Emit;
use crate::model::Millis;
use crate::model::webhook::{Webhook, WebhookFormat};
use crate::store::Store;
use crate::store::alerts::{Delivery, DeliveryOutcome};
use crate::telemetry::{ALERT_DELIVERIES, ALERT_LATENCY, ALERTS_WAITING};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often the database is asked for work (new alerts, retries due, webhooks added or
/// removed by the CLI): a change is acted on within this.
pub const POLL: Duration = Duration::from_millis(500);
/// One attempt's limit: connecting, sending and the answer (SPEC §7: 10 s).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Delivered (or given up) deliveries are kept this long, then deleted with their alerts.
pub const KEEP_DELIVERED: Duration = Duration::from_secs(7 * 86_400);

/// What the loop needs besides the store.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The dashboard's address, for the links in Slack messages.
    pub public_url: String,
    /// How long a delivery is retried before it is given up (SPEC §7: 24 h).
    pub retry_for: Duration,
}

/// Runs until `shutdown`; deliveries in flight are then dropped (their alerts stay in the
/// outbox and go after the restart: at least once).
pub async fn run(store: Arc<dyn Store>, settings: Settings, shutdown: CancellationToken) {
    let client = match reqwest::Client::builder()
        .connect_timeout(ATTEMPT_TIMEOUT)
        .timeout(ATTEMPT_TIMEOUT)
        // A redirect is a failure (retried, and logged with its status): followed, a 301
        // would turn the POST into a bodyless GET whose 2xx would count as delivered.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Mesher/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            // Only a broken TLS setup fails here; the supervisor restarts the task.
            panic!("the webhook HTTP client cannot be built: {e}");
        }
    };
    let node = crate::store::new_event_id();
    let mut in_flight: JoinSet<i64> = JoinSet::new();
    let mut busy: HashSet<i64> = HashSet::new();
    let mut tasks: HashMap<tokio::task::Id, i64> = HashMap::new();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_gauge = Instant::now() - Duration::from_secs(60);
    let mut last_purge = Instant::now() - Duration::from_secs(7200);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                // Deliveries in flight stop here; their webhooks are free at once for the
                // next start (or another node) rather than when the lease runs out.
                in_flight.abort_all();
                for id in busy {
                    let _ = store.release_webhook(id, &node).await;
                }
                return;
            }
            Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                match done {
                    Ok((task, id)) => {
                        tasks.remove(&task);
                        busy.remove(&id);
                    }
                    Err(e) => {
                        // Its webhook is free again here, and its lease runs out.
                        if let Some(id) = tasks.remove(&e.id()) {
                            busy.remove(&id);
                        }
                        tracing::error!(error = %e, "a webhook delivery task failed");
                    }
                }
            }
            _ = poll.tick() => {
                match store.claim_webhooks(&node, Millis::now()).await {
                    Ok(claimed) => {
                        for hook in claimed {
                            if busy.insert(hook.id) {
                                let id = hook.id;
                                let work = deliver_due(store.clone(), client.clone(), hook, node.clone(), settings.clone());
                                tasks.insert(in_flight.spawn(work).id(), id);
                            } else {
                                // Its task is finishing; it takes the next claim.
                                let _ = store.release_webhook(hook.id, &node).await;
                            }
                        }
                    }
                    Err(e) => match crate::log_limit::check("alert poll") {
                        Emit::First => tracing::warn!(error = %e, "cannot read the webhooks' work; will retry"),
                        Emit::Summary(n) => tracing::warn!(error = %e, failures = n, "still cannot read the webhooks' work"),
                        Emit::Quiet => {}
                    },
                }
                if last_gauge.elapsed() >= Duration::from_secs(2) {
                    last_gauge = Instant::now();
                    if let Ok(n) = store.alerts_waiting().await {
                        metrics::gauge!(ALERTS_WAITING).set(n as f64);
                    }
                }
                if last_purge.elapsed() >= Duration::from_secs(3600) {
                    last_purge = Instant::now();
                    let cutoff = Millis(Millis::now().0 - KEEP_DELIVERED.as_millis() as i64);
                    match store.purge_deliveries(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deliveries = n, "old webhook deliveries deleted"),
                        Err(e) => tracing::warn!(error = %e, "cannot delete old webhook deliveries"),
                    }
                }
            }
        }
    }
}

/// Delivers what is due for one claimed webhook, one delivery after another (a storm's
/// alerts go 100 at a time), until nothing is due or an attempt fails; then gives the
/// lease back. Answers the webhook's id.
async fn deliver_due(
    store: Arc<dyn Store>,
    client: reqwest::Client,
    hook: Webhook,
    node: String,
    settings: Settings,
) -> i64 {
    let make_body = {
        let (project, format, url) = (hook.project_id, hook.format, settings.public_url.clone());
        move |alerts: &[String]| match format {
            WebhookFormat::Json => payload::json_body(project, alerts),
            WebhookFormat::Slack => payload::slack_body(project, alerts, &url),
        }
    };
    loop {
        let delivery = match store
            .next_delivery(&hook, &node, Millis::now(), &make_body)
            .await
        {
            Ok(Some(d)) => d,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(webhook = hook.id, error = %e, "cannot read the webhook's next delivery");
                break;
            }
        };
        // The lease covers this attempt from here (reading and opening the delivery may
        // have waited for the database).
        match store.renew_lease(hook.id, &node, Millis::now()).await {
            Ok(true) => {}
            Ok(false) => break, // another node has it now
            Err(e) => {
                tracing::warn!(webhook = hook.id, error = %e, "cannot renew a webhook's lease");
                break;
            }
        }
        let failed = attempt(&client, &hook, &delivery).await;
        let now = Millis::now();
        let outcome = match &failed {
            None => DeliveryOutcome::Delivered,
            Some(_) if now.0 - delivery.created.0 >= settings.retry_for.as_millis() as i64 => {
                DeliveryOutcome::GivenUp
            }
            Some(_) => DeliveryOutcome::Retry(Millis(
                now.0 + retry_delay(delivery.attempts as u32 + 1).as_millis() as i64,
            )),
        };
        match (&outcome, &failed) {
            (DeliveryOutcome::Delivered, _) => {
                metrics::counter!(ALERT_DELIVERIES, "outcome" => "delivered").increment(1);
                metrics::histogram!(ALERT_LATENCY)
                    .record((now.0 - delivery.oldest_alert.0).max(0) as f64 / 1000.0);
            }
            (DeliveryOutcome::Retry(at), Some(why)) => {
                metrics::counter!(ALERT_DELIVERIES, "outcome" => "retried").increment(1);
                tracing::warn!(
                    webhook = hook.id, delivery = %delivery.id, attempt = delivery.attempts + 1,
                    retry_in_ms = at.0 - now.0, "webhook delivery failed: {why}"
                );
            }
            (_, why) => {
                metrics::counter!(ALERT_DELIVERIES, "outcome" => "given_up").increment(1);
                tracing::error!(
                    webhook = hook.id, delivery = %delivery.id, alerts = delivery.alerts,
                    attempts = delivery.attempts + 1,
                    "webhook delivery given up after {:?} of retries: {}",
                    settings.retry_for, why.as_deref().unwrap_or("")
                );
            }
        }
        if let Err(e) = store.finish_delivery(&delivery.id, outcome, now).await {
            tracing::warn!(webhook = hook.id, error = %e, "cannot record a webhook delivery; it will be sent again");
            break;
        }
        if failed.is_some() {
            break; // the retry waits for its time; the lease goes back meanwhile
        }
    }
    if let Err(e) = store.release_webhook(hook.id, &node).await {
        tracing::warn!(webhook = hook.id, error = %e, "cannot release a webhook's lease; it expires by itself");
    }
    hook.id
}

/// One POST; `None` when it was answered 2xx, else why not.
async fn attempt(client: &reqwest::Client, hook: &Webhook, d: &Delivery) -> Option<String> {
    let sent = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-mesher-delivery", &d.id)
        .header(
            "x-mesher-signature",
            payload::signature(&hook.secret, d.body.as_bytes()),
        )
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("answered {}", r.status())),
        Err(e) if e.is_timeout() => Some(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
        Err(e) if e.is_connect() => Some(format!("cannot connect: {e}")),
        Err(e) => Some(e.to_string()),
    }
}

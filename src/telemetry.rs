//! Metrics (SPEC §6): names, the Prometheus recorder and `/metrics` rendering.
//!
//! Counters are recorded where things happen through the `metrics` facade; gauges that
//! describe the present (connections, queued messages) are read from the hub at scrape
//! time, so the hot path pays nothing for them. The recorder is process-wide.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Open stream connections (gauge).
pub(crate) const STREAM_CONNECTIONS: &str = "mesher_stream_connections";
/// Events stored (counter).
pub(crate) const EVENTS_INGESTED: &str = "mesher_events_ingested_total";
/// Ingest requests refused, by `reason` (counter).
pub(crate) const EVENTS_REJECTED: &str = "mesher_events_rejected_total";
/// Stream messages put into outboxes (counter).
pub(crate) const MESSAGES_QUEUED: &str = "mesher_messages_queued_total";
/// Stream messages written to sockets (counter).
pub(crate) const MESSAGES_DELIVERED: &str = "mesher_messages_delivered_total";
/// Stream messages dropped from full outboxes (counter).
pub(crate) const MESSAGES_DROPPED: &str = "mesher_messages_dropped_total";
/// Messages waiting in all outboxes (gauge).
pub(crate) const OUTBOX_DEPTH: &str = "mesher_outbox_depth";
/// The fullest outbox (gauge).
pub(crate) const OUTBOX_DEPTH_MAX: &str = "mesher_outbox_depth_max";
/// Stream connections closed because a write took too long (counter).
pub(crate) const WRITE_TIMEOUTS: &str = "mesher_stream_write_timeouts_total";
/// From receipt of an event to its write on a stream socket, seconds (histogram; one
/// sample per socket write, its oldest event's).
pub(crate) const DELIVERY_LATENCY: &str = "mesher_ingest_to_delivery_seconds";
/// Events per group commit (histogram).
pub(crate) const COMMIT_BATCH: &str = "mesher_commit_batch_events";
/// How long each group commit took, from the batch's hand-over to the store until its
/// answer, seconds (histogram).
pub(crate) const COMMIT_SECONDS: &str = "mesher_commit_seconds";
/// Background task restarts, by `task` (counter).
pub(crate) const TASK_RESTARTS: &str = "mesher_task_restarts_total";
/// Webhook delivery attempts, by `outcome`: `delivered`, `retried`, `given_up` (counter).
pub(crate) const ALERT_DELIVERIES: &str = "mesher_alert_deliveries_total";
/// Alerts not yet delivered (gauge).
pub(crate) const ALERTS_WAITING: &str = "mesher_alerts_waiting";
/// From an alert being raised to its delivery, seconds (histogram; one sample per
/// delivery, its oldest alert's).
pub(crate) const ALERT_LATENCY: &str = "mesher_alert_delivery_latency_seconds";
/// Reloads of the key directory (`credentials`), by `cause`: `schedule` (every second)
/// or `miss` (an unknown credential asked for one) (counter). Each is one database query.
pub(crate) const CREDENTIAL_RELOADS: &str = "mesher_credential_reloads_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The stream path's metrics, looked up once: each `counter!`/`histogram!` call hashes its
/// key and takes a registry lock, which the fan-out path need not pay per write.
pub(crate) struct StreamMetrics {
    /// [`MESSAGES_QUEUED`].
    pub queued: metrics::Counter,
    /// [`MESSAGES_DROPPED`].
    pub dropped: metrics::Counter,
    /// [`MESSAGES_DELIVERED`].
    pub delivered: metrics::Counter,
    /// [`DELIVERY_LATENCY`].
    pub latency: metrics::Histogram,
}

/// The stream path's metric handles (the recorder is installed first, so they are live).
pub(crate) fn stream() -> &'static StreamMetrics {
    static STREAM: OnceLock<StreamMetrics> = OnceLock::new();
    STREAM.get_or_init(|| {
        install();
        StreamMetrics {
            queued: metrics::counter!(MESSAGES_QUEUED),
            dropped: metrics::counter!(MESSAGES_DROPPED),
            delivered: metrics::counter!(MESSAGES_DELIVERED),
            latency: metrics::histogram!(DELIVERY_LATENCY),
        }
    })
}

/// Installs the process-wide recorder (once) and answers its handle.
pub(crate) fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let latency = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let batch = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DELIVERY_LATENCY.into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(COMMIT_BATCH.into()), &batch))
            .and_then(|b| {
                let commit = [
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ];
                b.set_buckets_for_metric(Matcher::Full(COMMIT_SECONDS.into()), &commit)
            })
            .and_then(|b| {
                let alert = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0];
                b.set_buckets_for_metric(Matcher::Full(ALERT_LATENCY.into()), &alert)
            })
            .expect("bucket lists are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(STREAM_CONNECTIONS, "Open stream connections.");
    describe_counter!(EVENTS_INGESTED, "Events stored.");
    describe_counter!(
        EVENTS_REJECTED,
        "Ingest requests (or WebSocket ingest messages) refused, by reason."
    );
    describe_counter!(MESSAGES_QUEUED, "Stream messages put into outboxes.");
    describe_counter!(MESSAGES_DELIVERED, "Stream messages written to sockets.");
    describe_counter!(
        MESSAGES_DROPPED,
        "Stream messages dropped from full outboxes (reported as lagged)."
    );
    describe_gauge!(OUTBOX_DEPTH, "Messages waiting in all outboxes.");
    describe_gauge!(OUTBOX_DEPTH_MAX, "Messages waiting in the fullest outbox.");
    describe_counter!(
        WRITE_TIMEOUTS,
        "Stream connections closed because a write took longer than --write-timeout-ms."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        metrics::Unit::Seconds,
        "From an event's receipt to its write on a stream socket."
    );
    describe_histogram!(COMMIT_BATCH, "Events per group commit.");
    describe_histogram!(
        COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "How long each group commit took."
    );
    describe_counter!(TASK_RESTARTS, "Background task restarts, by task.");
    describe_counter!(
        ALERT_DELIVERIES,
        "Webhook delivery attempts, by outcome (delivered, retried, given_up)."
    );
    describe_gauge!(ALERTS_WAITING, "Alerts raised and not yet delivered.");
    describe_counter!(
        CREDENTIAL_RELOADS,
        "Reloads of the project credentials from the database, by cause (schedule, miss)."
    );
    describe_histogram!(
        ALERT_LATENCY,
        metrics::Unit::Seconds,
        "From an alert being raised to its delivery."
    );
}

/// How often histogram samples are folded into their buckets (the exporter buffers them
/// until then, so this bounds that buffer).
pub(crate) const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Folds buffered histogram samples into buckets, forever (a supervised task).
pub(crate) async fn upkeep() {
    let handle = install();
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// The reason label for a refused ingest request, from its status code.
pub(crate) fn reject_reason(status: u16) -> &'static str {
    match status {
        400 => "invalid",
        401 => "unauthorized",
        403 => "forbidden",
        408 => "timeout",
        413 => "too_large",
        415 => "unsupported_encoding",
        429 => "rate_limited",
        503 => "unavailable",
        _ => "other",
    }
}

/// Counts one refused ingest request.
pub(crate) fn rejected(status: u16) {
    metrics::counter!(EVENTS_REJECTED, "reason" => reject_reason(status)).increment(1);
}

/// Connections answered 503 because `--max-connections` were open.
pub(crate) const CONNECTIONS_REFUSED: &str = "mesher_connections_refused_total";

/// Counts a connection refused over the cap.
pub(crate) fn connection_refused() {
    metrics::counter!(CONNECTIONS_REFUSED).increment(1);
}

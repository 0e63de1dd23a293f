//! SPEC §7's metrics: deliveries by outcome and the alerts waiting. Alone in its test
//! binary, as the metrics recorder is one per process.

mod common;

use common::TestServer;
use common::process::run;
use common::receiver::{ALLOW_LOOPBACK, Receiver, Reply, allow_loopback};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn deliveries_are_counted_by_outcome() {
    // Retries stop after 3 s (the flaky receiver answers 200 on its third attempt, decided
    // within 2 s), so the failing receiver's delivery is given up within seconds.
    let s = TestServer::start_with(|c| {
        allow_loopback(c);
        c.alert_retry_for = Duration::from_secs(3);
    })
    .await;
    let p = s.project("app").await;
    let mut flaky = Receiver::start().await;
    flaky.script(&[Reply::Status(500), Reply::Status(503)]);
    let mut dead = Receiver::start().await;
    dead.answer_all(Reply::Status(500));
    for url in [&flaky.url, &dead.url] {
        let (code, _, err) = run(
            &[
                "webhook",
                "add",
                &p.id.to_string(),
                url,
                "--database-url",
                &s.db.to_string(),
                "--webhook-allow-cidr",
                ALLOW_LOOPBACK,
            ],
            &[],
        )
        .await;
        assert_eq!(code, 0, "{err}");
    }
    s.send_event(&p, &json!({"message": "boom"})).await;
    for _ in 0..3 {
        flaky.next().await; // 500, 503, 200
    }
    dead.next().await;
    dead.next().await;
    // The dead receiver's delivery is given up once its window has passed.
    let gave_up = "mesher_alert_deliveries_total{outcome=\"given_up\"}";
    tokio::time::timeout(common::WAIT, async {
        while s.metric(gave_up).await != Some(1.0) {
            dead.within(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the failing delivery is given up");
    assert_eq!(
        s.metric("mesher_alert_deliveries_total{outcome=\"delivered\"}")
            .await,
        Some(1.0)
    );
    let retried = s
        .metric("mesher_alert_deliveries_total{outcome=\"retried\"}")
        .await
        .unwrap();
    assert!(retried >= 3.0, "retried {retried}");
    // Nothing is waiting any more (the gauge is read every 2 s).
    tokio::time::timeout(common::WAIT, async {
        while s.metric("mesher_alerts_waiting").await != Some(0.0) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("no alert waits");
    assert!(
        s.metric("mesher_alert_delivery_latency_seconds_count")
            .await
            >= Some(1.0)
    );
    s.stop().await;
}

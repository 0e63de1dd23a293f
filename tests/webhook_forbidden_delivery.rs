//! SPEC §8: a webhook whose address is forbidden when it is delivered (written into the
//! database past the add-time check, or a name that resolves to loopback) gets no POST;
//! the delivery fails as `forbidden address` in /metrics and is not retried. Alone in its
//! test binary, as the metrics recorder is one per process.

mod common;

use common::TestServer;
use common::receiver::Receiver;
use mesher::model::IssueAction;
use mesher::model::webhook::WebhookAdded;
use mesher::model::webhook::WebhookFormat;
use serde_json::json;
use std::time::Duration;

const FORBIDDEN: &str = "mesher_alert_deliveries_total{outcome=\"forbidden_address\"}";

async fn wait_forbidden(s: &TestServer, n: f64) {
    tokio::time::timeout(common::WAIT, async {
        while s.metric(FORBIDDEN).await != Some(n) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} deliveries refused as forbidden"));
}

#[tokio::test]
async fn a_forbidden_address_gets_no_post_and_is_not_retried() {
    // No --webhook-allow-cidr: the loopback receiver may not be reached.
    let s = TestServer::start().await;
    let p = s.project("app").await;
    let mut rx = Receiver::start().await;
    // Past the add-time check: a name resolved at delivery (to loopback), and literals.
    let urls = [
        format!("http://localhost:{}/hook", rx.port),
        format!("http://127.0.0.1:{}/hook", rx.port),
        format!("http://[::ffff:127.0.0.1]:{}/hook", rx.port),
        format!("http://0x7f000001:{}/hook", rx.port),
    ];
    for url in &urls {
        let added = s
            .state()
            .store()
            .create_webhook(p.id, url, &[IssueAction::New], WebhookFormat::Json, "k")
            .await
            .unwrap();
        assert!(matches!(added, WebhookAdded::Added(_)), "{url}: {added:?}");
    }
    s.send_event(&p, &json!({"message": "inside job"})).await;
    wait_forbidden(&s, 4.0).await;
    // Not retried: retries start about a second after a failure, so three quiet seconds
    // would have shown one.
    assert!(
        rx.within(Duration::from_secs(3)).await.is_none(),
        "a forbidden address got a POST"
    );
    assert_eq!(s.metric(FORBIDDEN).await, Some(4.0), "tried again");
    for outcome in ["retried", "delivered", "given_up"] {
        let line = format!("mesher_alert_deliveries_total{{outcome=\"{outcome}\"}}");
        assert_eq!(s.metric(&line).await, None, "{outcome}");
    }
    // Its alerts are given up: none waits.
    tokio::time::timeout(common::WAIT, async {
        while s.metric("mesher_alerts_waiting").await != Some(0.0) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("no alert waits");
    // The next alert is refused the same way.
    s.send_event(&p, &json!({"message": "inside job again"}))
        .await;
    wait_forbidden(&s, 8.0).await;
    assert!(rx.within(Duration::from_secs(1)).await.is_none());
    s.stop().await;
}

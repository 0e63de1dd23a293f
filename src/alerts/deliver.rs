//! The delivery loop: claims webhooks with work due, and for each runs one delivery at a
//! time on its own task, so a slow, hung or refusing receiver delays only itself (SPEC §7).
//!
//! Where it connects is checked here (SPEC §8, rules in `target`): an address literal
//! before the request, a name by the client's resolver, which refuses the whole name when
//! one of its addresses is forbidden and otherwise hands the connector exactly the
//! addresses it checked, so a second lookup cannot answer differently (DNS rebinding).

use super::payload::{self, retry_delay};
use super::target::{self, Cidr, ForbiddenAddress, Host};
use crate::log_limit::Emit;
use crate::model::Millis;
use crate::model::webhook::{Delivery, DeliveryOutcome};
use crate::model::webhook::{Webhook, WebhookFormat};
use crate::store::Store;
use crate::task::Service;
use crate::telemetry::{ALERT_DELIVERIES, ALERT_LATENCY, ALERTS_WAITING};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
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
/// Most of a receiver's answer read (SPEC §8: 64 KiB); the rest is dropped with the
/// connection, so a receiver streaming forever costs one chunk of memory.
pub const ANSWER_LIMIT: usize = 64 * 1024;
/// Deliveries in flight at once, at most: each holds an outgoing connection, and the
/// descriptors the server keeps for itself (`http::listener`) are counted.
const MAX_IN_FLIGHT: usize = 64;
/// Most of a failed answer's text quoted in the log.
const QUOTED: usize = 200;

/// What the loop needs besides the store.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The dashboard's address, for the links in Slack messages.
    pub public_url: String,
    /// How long a delivery is retried before it is given up (SPEC §7: 24 h).
    pub retry_for: Duration,
    /// `--webhook-allow-cidr`: forbidden addresses the operator allows.
    pub allow: Vec<Cidr>,
    /// `--smtp-url` and `--smtp-from`: where e-mail alerts go out, if anywhere.
    pub mailer: Option<Arc<super::mail::Mailer>>,
}

/// The client's resolver: the system's (`getaddrinfo`, as reqwest's default), then every
/// address checked.
struct CheckedResolver {
    allow: Arc<[Cidr]>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port in.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            target::check_resolved(&host, &addrs, &allow)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The webhook client: 10 s per attempt, no redirects, no proxies, checked addresses.
fn client(allow: &[Cidr]) -> reqwest::Client {
    match reqwest::Client::builder()
        .connect_timeout(ATTEMPT_TIMEOUT)
        .timeout(ATTEMPT_TIMEOUT)
        // A redirect is a failure (retried, and logged with its status): followed, a 301
        // would turn the POST into a bodyless GET whose 2xx would count as delivered, and
        // could point anywhere, the forbidden addresses included.
        .redirect(reqwest::redirect::Policy::none())
        // Through a proxy the connection's address would be the proxy's, and the target's
        // would go unchecked: webhooks connect directly, whatever HTTP(S)_PROXY says.
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver {
            allow: allow.into(),
        }))
        .user_agent(concat!("Mesher/", env!("CARGO_PKG_VERSION")))
        // Idle connections kept for the next delivery are descriptors too.
        .pool_max_idle_per_host(2)
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            // Only a broken TLS setup fails here; the supervisor restarts the task.
            panic!("the webhook HTTP client cannot be built: {e}");
        }
    }
}

/// The webhook delivery task.
pub struct Deliverer {
    /// The outbox and the webhooks.
    pub store: Store,
    /// How deliveries are made.
    pub settings: Settings,
    /// When to stop.
    pub shutdown: CancellationToken,
}

impl Service for Deliverer {
    fn run(&mut self) -> impl Future<Output = ()> + Send + '_ {
        run(
            self.store.clone(),
            self.settings.clone(),
            self.shutdown.clone(),
        )
    }
}

/// Runs until `shutdown`; deliveries in flight are then dropped (their alerts stay in the
/// outbox and go after the restart: at least once).
pub async fn run(store: Store, settings: Settings, shutdown: CancellationToken) {
    let mut deliveries = Deliveries::new(store, settings);
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return deliveries.stop().await,
            Some(done) = deliveries.in_flight.join_next_with_id(), if !deliveries.in_flight.is_empty() => {
                deliveries.finished(done);
            }
            _ = poll.tick() => deliveries.poll().await,
        }
    }
}

/// The loop's state: one task per webhook with work, and when the periodic chores ran.
struct Deliveries {
    store: Store,
    settings: Settings,
    client: reqwest::Client,
    /// This process's name on the leases it takes.
    node: String,
    /// The delivery tasks; each answers its webhook's id.
    in_flight: JoinSet<i64>,
    /// Webhooks with a task running: a webhook's deliveries go one at a time.
    busy: HashSet<i64>,
    /// Each task's webhook, for a task that fails before it answers its id.
    tasks: HashMap<tokio::task::Id, i64>,
    /// When the chores last ran; `None`: due at the next poll. (Not "now minus an hour":
    /// an `Instant` before the clock's start, the machine's boot, panics.)
    last_gauge: Option<Instant>,
    last_purge: Option<Instant>,
}

impl Deliveries {
    fn new(store: Store, settings: Settings) -> Deliveries {
        Deliveries {
            client: client(&settings.allow),
            node: crate::store::new_event_id(),
            store,
            settings,
            in_flight: JoinSet::new(),
            busy: HashSet::new(),
            tasks: HashMap::new(),
            last_gauge: None,
            last_purge: None,
        }
    }

    /// Stops the deliveries in flight and gives their leases back.
    async fn stop(mut self) {
        // Their webhooks are free at once for the next start (or another node) rather
        // than when the lease runs out.
        self.in_flight.abort_all();
        for id in self.busy {
            let _ = self.store.release_webhook(id, &self.node).await;
        }
    }

    /// Forgets a delivery task that ended, so its webhook can be claimed again.
    fn finished(&mut self, done: Result<(tokio::task::Id, i64), tokio::task::JoinError>) {
        match done {
            Ok((task, id)) => {
                self.tasks.remove(&task);
                self.busy.remove(&id);
            }
            Err(e) => {
                // Its webhook is free again here, and its lease runs out.
                if let Some(id) = self.tasks.remove(&e.id()) {
                    self.busy.remove(&id);
                }
                tracing::error!(error = %e, "a webhook delivery task failed");
            }
        }
    }

    /// One poll: claims the webhooks with work due, then does the chores that are due.
    async fn poll(&mut self) {
        self.claim_due().await;
        if due(&mut self.last_gauge, Duration::from_secs(2))
            && let Ok(n) = self.store.alerts_waiting().await
        {
            metrics::gauge!(ALERTS_WAITING).set(n as f64);
        }
        if due(&mut self.last_purge, Duration::from_secs(3600)) {
            self.purge_old_deliveries().await;
        }
    }

    /// Claims the webhooks with work due and starts a delivery task for each.
    async fn claim_due(&mut self) {
        match self.store.claim_webhooks(&self.node, Millis::now()).await {
            Ok(claimed) => {
                for hook in claimed {
                    self.start(hook).await;
                }
            }
            Err(e) => match crate::log_limit::check("alert poll") {
                Emit::First => {
                    tracing::warn!(error = %e, "cannot read the webhooks' work; will retry")
                }
                Emit::Summary(n) => {
                    tracing::warn!(error = %e, failures = n, "still cannot read the webhooks' work")
                }
                Emit::Quiet => {}
            },
        }
    }

    /// Starts delivering to a claimed webhook, or gives the claim back when there is no
    /// room or the webhook already has a task.
    async fn start(&mut self, hook: Webhook) {
        if self.tasks.len() >= MAX_IN_FLIGHT {
            // Left for a later poll, here or on another node.
            let _ = self.store.release_webhook(hook.id, &self.node).await;
        } else if self.busy.insert(hook.id) {
            let id = hook.id;
            let work = deliver_due(
                self.store.clone(),
                self.client.clone(),
                hook,
                self.node.clone(),
                self.settings.clone(),
            );
            self.tasks.insert(self.in_flight.spawn(work).id(), id);
        } else {
            // Its task is finishing; it takes the next claim.
            let _ = self.store.release_webhook(hook.id, &self.node).await;
        }
    }

    /// Deletes the deliveries finished more than [`KEEP_DELIVERED`] ago.
    async fn purge_old_deliveries(&self) {
        let cutoff = Millis(Millis::now().0 - KEEP_DELIVERED.as_millis() as i64);
        match self.store.purge_deliveries(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "old webhook deliveries deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old webhook deliveries"),
        }
    }
}

/// Delivers what is due for one claimed webhook, one delivery after another (a storm's
/// alerts go 100 at a time), until nothing is due or an attempt fails; then gives the
/// lease back. Answers the webhook's id.
async fn deliver_due(
    store: Store,
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
            WebhookFormat::Email => payload::email_body(project, alerts, &url),
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
        let tried = match hook.format {
            WebhookFormat::Email => {
                mail(&store, settings.mailer.as_deref(), &hook, &delivery).await
            }
            _ => attempt(&client, &hook, &delivery, &settings.allow).await,
        };
        let now = Millis::now();
        let outcome = outcome_of(&tried, &delivery, now, settings.retry_for);
        record(&hook, &delivery, &tried, &outcome, now, settings.retry_for);
        let failed = !matches!(tried, Attempt::Delivered);
        if let Err(e) = store.finish_delivery(&delivery.id, outcome, now).await {
            tracing::warn!(webhook = hook.id, error = %e, "cannot record a webhook delivery; it will be sent again");
            break;
        }
        if failed {
            break; // the retry waits for its time; the lease goes back meanwhile
        }
    }
    if let Err(e) = store.release_webhook(hook.id, &node).await {
        tracing::warn!(webhook = hook.id, error = %e, "cannot release a webhook's lease; it expires by itself");
    }
    hook.id
}

/// What an attempt makes of its delivery: delivered, retried later, or given up.
fn outcome_of(
    tried: &Attempt,
    delivery: &Delivery,
    now: Millis,
    retry_for: Duration,
) -> DeliveryOutcome {
    match tried {
        Attempt::Delivered => DeliveryOutcome::Delivered,
        // Trying again would meet the same address (or, for a name, an attacker's next
        // DNS answer): the alerts go as if their 24 hours were over.
        Attempt::Forbidden(_) => DeliveryOutcome::GivenUp,
        // Not to be mailed (any more): not retried either.
        Attempt::NotMember => DeliveryOutcome::GivenUp,
        Attempt::Failed(_) if now.0 - delivery.created.0 >= retry_for.as_millis() as i64 => {
            DeliveryOutcome::GivenUp
        }
        Attempt::Failed(_) => DeliveryOutcome::Retry(Millis(
            now.0 + retry_delay(delivery.attempts as u32 + 1).as_millis() as i64,
        )),
    }
}

/// Counts an attempt by its outcome and logs a failure.
fn record(
    hook: &Webhook,
    delivery: &Delivery,
    tried: &Attempt,
    outcome: &DeliveryOutcome,
    now: Millis,
    retry_for: Duration,
) {
    let why = match tried {
        Attempt::Failed(why) => why.clone(),
        Attempt::Forbidden(f) => f.to_string(),
        Attempt::Delivered | Attempt::NotMember => String::new(),
    };
    match (outcome, tried) {
        (DeliveryOutcome::Delivered, _) => {
            metrics::counter!(ALERT_DELIVERIES, "outcome" => "delivered").increment(1);
            metrics::histogram!(ALERT_LATENCY)
                .record((now.0 - delivery.oldest_alert.0).max(0) as f64 / 1000.0);
        }
        (_, Attempt::Forbidden(_)) => {
            metrics::counter!(ALERT_DELIVERIES, "outcome" => "forbidden_address").increment(1);
            tracing::warn!(
                webhook = hook.id, delivery = %delivery.id, alerts = delivery.alerts,
                "webhook delivery refused, its alerts given up: {why} (not a webhook \
                 target unless allowed with --webhook-allow-cidr)"
            );
        }
        (_, Attempt::NotMember) => {
            metrics::counter!(ALERT_DELIVERIES, "outcome" => "given_up").increment(1);
            tracing::info!(
                webhook = hook.id, delivery = %delivery.id, alerts = delivery.alerts,
                "e-mail alerts not sent: the recipient is no longer a member of the project"
            );
        }
        (DeliveryOutcome::Retry(at), _) => {
            metrics::counter!(ALERT_DELIVERIES, "outcome" => "retried").increment(1);
            tracing::warn!(
                webhook = hook.id, delivery = %delivery.id, attempt = delivery.attempts + 1,
                retry_in_ms = at.0 - now.0, "webhook delivery failed: {why}"
            );
        }
        _ => {
            metrics::counter!(ALERT_DELIVERIES, "outcome" => "given_up").increment(1);
            tracing::error!(
                webhook = hook.id, delivery = %delivery.id, alerts = delivery.alerts,
                attempts = delivery.attempts + 1,
                "webhook delivery given up after {retry_for:?} of retries: {why}"
            );
        }
    }
}

/// How one attempt ended.
enum Attempt {
    /// Answered 2xx.
    Delivered,
    /// Not delivered, why (retried).
    Failed(String),
    /// Not sent: the address may not be reached (not retried).
    Forbidden(ForbiddenAddress),
    /// Not mailed: the recipient may no longer use the project (not retried).
    NotMember,
}

/// One e-mail, to the member the target names, if they still are one.
async fn mail(
    store: &Store,
    mailer: Option<&super::mail::Mailer>,
    hook: &Webhook,
    d: &Delivery,
) -> Attempt {
    match super::mail::recipient_may_use(store, hook).await {
        Ok(true) => {}
        Ok(false) => return Attempt::NotMember,
        Err(e) => return Attempt::Failed(format!("cannot read the recipient's membership: {e}")),
    }
    let Some(mailer) = mailer else {
        return Attempt::Failed("no SMTP server is configured (--smtp-url)".into());
    };
    match tokio::time::timeout(ATTEMPT_TIMEOUT, mailer.send(&hook.url, &d.body, &d.id)).await {
        Ok(Ok(())) => Attempt::Delivered,
        Ok(Err(why)) => Attempt::Failed(why),
        Err(_) => Attempt::Failed("the SMTP server took too long".into()),
    }
}

/// One POST, to a checked address only.
async fn attempt(
    client: &reqwest::Client,
    hook: &Webhook,
    d: &Delivery,
    allow: &[Cidr],
) -> Attempt {
    // An address literal never reaches the resolver.
    match target::host_of(&hook.url) {
        Ok(Host::Ip(ip)) => {
            if let Err(why) = target::check_ip(ip, allow) {
                return Attempt::Forbidden(ForbiddenAddress {
                    host: ip.to_string(),
                    ip,
                    why,
                });
            }
        }
        Ok(Host::Name(_)) => {}
        Err(_) => return Attempt::Failed("the URL is not valid".into()),
    }
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
        Ok(r) => {
            let status = r.status();
            let head = read_answer(r).await;
            if status.is_success() {
                Attempt::Delivered
            } else if head.is_empty() {
                Attempt::Failed(format!("answered {status}"))
            } else {
                Attempt::Failed(format!("answered {status}: {head}"))
            }
        }
        // The URL stays out of the log: a Slack webhook's path is its credential.
        Err(e) => match forbidden_in(&e) {
            Some(f) => Attempt::Forbidden(f.clone()),
            None => failure(e.without_url()),
        },
    }
}

/// How a test delivery ([`send_test`]) ended.
#[derive(Debug)]
pub enum TestSent {
    /// The target answered with this status (2xx or not) and the start of its answer.
    Answered(u16, String),
    /// No answer: why (cannot connect, no answer in time, a forbidden address…).
    Failed(String),
}

/// Sends `body` to the webhook once, now, outside the outbox (the dashboard's "Send test"):
/// signed as a delivery is, through the same checked client, so a forbidden address is
/// refused here exactly as in a delivery. Nothing is stored or retried.
pub async fn send_test(hook: &Webhook, body: String, allow: &[Cidr]) -> TestSent {
    let delivery = Delivery {
        id: crate::store::new_event_id(),
        webhook_id: hook.id,
        body,
        alerts: 1,
        attempts: 0,
        created: Millis::now(),
        oldest_alert: Millis::now(),
    };
    match target::host_of(&hook.url) {
        Ok(Host::Ip(ip)) => {
            if let Err(why) = target::check_ip(ip, allow) {
                let f = ForbiddenAddress {
                    host: ip.to_string(),
                    ip,
                    why,
                };
                return TestSent::Failed(f.to_string());
            }
        }
        Ok(Host::Name(_)) => {}
        Err(_) => return TestSent::Failed("the URL is not valid".into()),
    }
    let sent = client(allow)
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-mesher-delivery", &delivery.id)
        .header(
            "x-mesher-signature",
            payload::signature(&hook.secret, delivery.body.as_bytes()),
        )
        .body(delivery.body)
        .send()
        .await;
    match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            TestSent::Answered(status, read_answer(r).await)
        }
        Err(e) => match forbidden_in(&e) {
            Some(f) => TestSent::Failed(f.to_string()),
            None => match failure(e.without_url()) {
                Attempt::Failed(why) => TestSent::Failed(why),
                _ => TestSent::Failed("not sent".into()),
            },
        },
    }
}

/// Why an attempt that got no answer failed.
fn failure(e: reqwest::Error) -> Attempt {
    Attempt::Failed(if e.is_timeout() {
        format!("no answer within {ATTEMPT_TIMEOUT:?}")
    } else if e.is_connect() {
        format!("cannot connect: {}", chain(&e))
    } else {
        chain(&e)
    })
}

/// An error with its causes (reqwest's own text alone says only "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The resolver's refusal, somewhere in the connect error's causes.
fn forbidden_in(e: &reqwest::Error) -> Option<&ForbiddenAddress> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(f) = c.downcast_ref::<ForbiddenAddress>() {
            return Some(f);
        }
        cause = c.source();
    }
    None
}

/// Reads the answer's body up to [`ANSWER_LIMIT`] (a short one to its end, so its
/// connection can be used again) and answers its start as printable text, for the log.
/// A body that fails or stalls after the status line changes nothing: the status decides.
async fn read_answer(mut r: reqwest::Response) -> String {
    let mut read = 0;
    let mut head: Vec<u8> = Vec::new();
    while read < ANSWER_LIMIT {
        match r.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                let room = QUOTED.saturating_sub(head.len());
                head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&head)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}
/// Whether a chore last run at `last` is due again after `every`; if so, notes it as run now.
fn due(last: &mut Option<Instant>, every: Duration) -> bool {
    let due = last.is_none_or(|at| at.elapsed() >= every);
    if due {
        *last = Some(Instant::now());
    }
    due
}

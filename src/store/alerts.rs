//! Webhooks and the alert outbox in the database (SPEC §7), written once for both stores:
//! the SQL below (with `?` placeholders, which PostgreSQL's store numbers) and the method
//! bodies in [`alert_methods!`], which each store expands once (the code
//! is the same; only the pool's and connection's types differ).
//!
//! Who delivers: a node claims a webhook that has work due by setting its lease (a
//! conditional `UPDATE`, so two nodes never both win it) and keeps it while it delivers;
//! a node that dies leaves the lease to expire ([`LEASE`]), and another takes over. So
//! each webhook has at most one delivery in flight across all nodes.

use crate::model::Millis;
use crate::model::webhook::{Webhook, WebhookFormat, parse_triggers};
use std::time::Duration;

/// How long a claim holds a webhook: three attempts' time (10 s each), renewed right
/// before each attempt; what a dead node's webhooks wait for another node. (Nodes' clocks
/// are assumed to agree within a few seconds, as NTP keeps them.)
pub const LEASE: Duration = Duration::from_secs(30);

/// A delivery: up to 100 alerts of one webhook, with the exact body every attempt sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `X-Mesher-Delivery`, the same on every retry.
    pub id: String,
    /// The webhook it is for.
    pub webhook_id: i64,
    /// The body, as signed.
    pub body: String,
    /// Alerts in it.
    pub alerts: i64,
    /// Attempts made so far.
    pub attempts: i64,
    /// When it was made (its first attempt follows at once).
    pub created: Millis,
    /// When its oldest alert was raised.
    pub oldest_alert: Millis,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 2xx answer.
    Delivered,
    /// Failed; try again at this time.
    Retry(Millis),
    /// Failed for the last time (retried for the whole window).
    GivenUp,
}

/// What adding a webhook did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookAdded {
    /// It was added.
    Added(Webhook),
    /// The project does not exist.
    NoProject,
    /// The project already has [`MAX_WEBHOOKS`](crate::model::webhook::MAX_WEBHOOKS).
    Full,
}

pub(super) type WebhookRow = (i64, i64, String, String, String, String);
pub(super) type DeliveryRow = (String, i64, String, i64, i64, i64, i64, i64);

pub(super) fn webhook(row: WebhookRow) -> Result<Webhook, super::StoreError> {
    let (id, project_id, url, triggers, format, secret) = row;
    Ok(Webhook {
        id,
        project_id,
        url,
        on: parse_triggers(&triggers).map_err(super::rows::corrupt)?,
        format: WebhookFormat::parse(&format).map_err(super::rows::corrupt)?,
        secret,
    })
}

pub(super) fn delivery(row: DeliveryRow) -> (Delivery, Millis) {
    let (id, webhook_id, body, alerts, attempts, created, oldest_alert, next_attempt) = row;
    (
        Delivery {
            id,
            webhook_id,
            body,
            alerts,
            attempts,
            created: Millis(created),
            oldest_alert: Millis(oldest_alert),
        },
        Millis(next_attempt),
    )
}

/// Locks the project's row (PostgreSQL: until the transaction ends), so that two adds at
/// once cannot both find room for one more webhook; no row: no project. Binds: project.
pub(super) const LOCK_PROJECT: &str = "UPDATE projects SET name = name WHERE id = ?";
pub(super) const COUNT_OF_PROJECT: &str = "SELECT count(*) FROM webhooks WHERE project_id = ?";
pub(super) const CREATE: &str = "INSERT INTO webhooks (project_id, url, triggers, format, secret, \
     created_at) SELECT id, ?, ?, ?, ?, ? FROM projects WHERE id = ? RETURNING id";
pub(super) const LIST_ALL: &str =
    "SELECT id, project_id, url, triggers, format, secret FROM webhooks ORDER BY id";
pub(super) const LIST_PROJECT: &str = "SELECT id, project_id, url, triggers, format, secret \
     FROM webhooks WHERE project_id = ? ORDER BY id";
pub(super) const REMOVE: [&str; 3] = [
    "DELETE FROM alerts WHERE webhook_id = ?",
    "DELETE FROM deliveries WHERE webhook_id = ?",
    "DELETE FROM webhooks WHERE id = ?",
];
/// The webhooks with work due (a pending delivery whose time has come, or waiting alerts
/// and no pending delivery) whose lease is free: read first, so that an idle poll writes
/// nothing (on SQLite a write would queue behind the group commit). Binds: now, now.
pub(super) const DUE: &str = "SELECT id FROM webhooks \
     WHERE lease_until < ? AND ( \
       EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = webhooks.id \
               AND d.state = 'pending' AND d.next_attempt <= ?) \
       OR (NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = webhooks.id \
                       AND d.state = 'pending') \
           AND EXISTS (SELECT 1 FROM alerts a WHERE a.webhook_id = webhooks.id \
                       AND a.delivery_id IS NULL)))";
/// Claims one of them unless another node was quicker. Binds: node, until, id, now.
pub(super) const CLAIM: &str = "UPDATE webhooks SET lease_owner = ?, lease_until = ? \
     WHERE id = ? AND lease_until < ? RETURNING id, project_id, url, triggers, format, secret";
pub(super) const RENEW: &str =
    "UPDATE webhooks SET lease_until = ? WHERE id = ? AND lease_owner = ?";
pub(super) const RELEASE: &str =
    "UPDATE webhooks SET lease_until = 0, lease_owner = NULL WHERE id = ? AND lease_owner = ?";
pub(super) const PENDING: &str = "SELECT id, webhook_id, body, alerts, attempts, created, \
     oldest_alert, next_attempt FROM deliveries WHERE webhook_id = ? AND state = 'pending'";
pub(super) const WAITING: &str = "SELECT id, alert, created FROM alerts \
     WHERE webhook_id = ? AND delivery_id IS NULL ORDER BY id LIMIT ?";
pub(super) const OPEN: &str = "INSERT INTO deliveries (id, webhook_id, body, alerts, \
     oldest_alert, attempts, created, next_attempt, state) VALUES (?, ?, ?, ?, ?, 0, ?, ?, 'pending')";
pub(super) const DELIVERED: &str = "UPDATE deliveries SET state = 'delivered', \
     attempts = attempts + 1, finished = ? WHERE id = ? AND state = 'pending'";
pub(super) const RETRY: &str = "UPDATE deliveries SET attempts = attempts + 1, \
     next_attempt = ? WHERE id = ? AND state = 'pending'";
pub(super) const GIVEN_UP: &str = "UPDATE deliveries SET state = 'given_up', \
     attempts = attempts + 1, finished = ? WHERE id = ? AND state = 'pending'";
pub(super) const WAITING_COUNT: &str = "SELECT count(*) FROM alerts WHERE delivery_id IS NULL \
     OR delivery_id IN (SELECT id FROM deliveries WHERE state = 'pending')";
pub(super) const PURGE: [&str; 2] = [
    "DELETE FROM alerts WHERE delivery_id IN \
     (SELECT id FROM deliveries WHERE state <> 'pending' AND finished < ?)",
    "DELETE FROM deliveries WHERE state <> 'pending' AND finished < ?",
];
/// Alerts of a webhook removed while a batch that had read it was committing.
pub(super) const ORPHANS: &str =
    "DELETE FROM alerts WHERE webhook_id NOT IN (SELECT id FROM webhooks)";
pub(super) const HOOKS_OF_ALL: &str = "SELECT id, project_id, triggers FROM webhooks";

/// Which webhooks each raised alert goes to: `(webhook id, alert json)` in raise order.
pub(super) fn fan_out<'a>(
    raised: &'a [crate::model::alert::Raised],
    hooks: &[(i64, i64, String)],
) -> Vec<(i64, &'a str)> {
    let mut out = Vec::new();
    for r in raised {
        for (id, project, triggers) in hooks {
            if *project == r.project_id && triggers.split(',').any(|t| t == r.action.as_str()) {
                out.push((*id, r.json.as_str()));
            }
        }
    }
    out
}

/// [`AlertOutbox`](super::AlertOutbox) for a store with `self.pool`, `Self::begin`,
/// `Self::finish` and a `$sql` function that turns the `?` SQL above into its dialect, and
/// its `raise_alerts`, for its write transactions. Expanded once per store: the code is
/// the same, only the pool's and connection's types differ.
macro_rules! alert_methods {
    ($store:ty, $conn:ty, $sql:path) => {
        #[async_trait::async_trait]
        impl super::AlertOutbox for $store {
            async fn create_webhook(
                &self,
                project: i64,
                url: &str,
                on: &[crate::model::IssueAction],
                format: crate::model::webhook::WebhookFormat,
                secret: &str,
            ) -> Result<super::alerts::WebhookAdded, super::StoreError> {
                use super::alerts::WebhookAdded;
                let on_list = on.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",");
                let mut tx = self.begin().await?;
                let work = async {
                    let found = sqlx::query(&$sql(super::alerts::LOCK_PROJECT))
                        .bind(project)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if found == 0 {
                        return Ok(WebhookAdded::NoProject);
                    }
                    let n: i64 = sqlx::query_scalar(&$sql(super::alerts::COUNT_OF_PROJECT))
                        .bind(project)
                        .fetch_one(&mut *tx)
                        .await?;
                    if n >= crate::model::webhook::MAX_WEBHOOKS as i64 {
                        return Ok(WebhookAdded::Full);
                    }
                    let id: Option<i64> = sqlx::query_scalar(&$sql(super::alerts::CREATE))
                        .bind(url)
                        .bind(&on_list)
                        .bind(format.as_str())
                        .bind(secret)
                        .bind(crate::model::Millis::now().0)
                        .bind(project)
                        .fetch_optional(&mut *tx)
                        .await?;
                    Ok::<_, super::StoreError>(match id {
                        Some(id) => WebhookAdded::Added(crate::model::webhook::Webhook {
                            id,
                            project_id: project,
                            url: url.to_owned(),
                            on: on.to_vec(),
                            format,
                            secret: secret.to_owned(),
                        }),
                        None => WebhookAdded::NoProject,
                    })
                }
                .await;
                Self::finish(tx, work).await
            }

            async fn list_webhooks(
                &self,
                project: Option<i64>,
            ) -> Result<Vec<crate::model::webhook::Webhook>, super::StoreError> {
                let rows: Vec<super::alerts::WebhookRow> = match project {
                    Some(p) => {
                        sqlx::query_as(&$sql(super::alerts::LIST_PROJECT))
                            .bind(p)
                            .fetch_all(&self.pool)
                            .await?
                    }
                    None => {
                        sqlx::query_as(&$sql(super::alerts::LIST_ALL))
                            .fetch_all(&self.pool)
                            .await?
                    }
                };
                rows.into_iter().map(super::alerts::webhook).collect()
            }

            async fn remove_webhook(&self, id: i64) -> Result<bool, super::StoreError> {
                let mut tx = self.begin().await?;
                let work = async {
                    let mut removed = 0;
                    for sql in super::alerts::REMOVE {
                        removed = sqlx::query(&$sql(sql))
                            .bind(id)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                    Ok::<_, super::StoreError>(removed == 1)
                }
                .await;
                Self::finish(tx, work).await
            }

            async fn claim_webhooks(
                &self,
                node: &str,
                now: crate::model::Millis,
            ) -> Result<Vec<crate::model::webhook::Webhook>, super::StoreError> {
                let due: Vec<i64> = sqlx::query_scalar(&$sql(super::alerts::DUE))
                    .bind(now.0)
                    .bind(now.0)
                    .fetch_all(&self.pool)
                    .await?;
                let until = now.0 + super::alerts::LEASE.as_millis() as i64;
                let mut claimed = Vec::with_capacity(due.len());
                for id in due {
                    let row: Option<super::alerts::WebhookRow> =
                        sqlx::query_as(&$sql(super::alerts::CLAIM))
                            .bind(node)
                            .bind(until)
                            .bind(id)
                            .bind(now.0)
                            .fetch_optional(self.write_pool())
                            .await?;
                    if let Some(row) = row {
                        claimed.push(super::alerts::webhook(row)?);
                    }
                }
                Ok(claimed)
            }

            async fn release_webhook(&self, id: i64, node: &str) -> Result<(), super::StoreError> {
                sqlx::query(&$sql(super::alerts::RELEASE))
                    .bind(id)
                    .bind(node)
                    .execute(self.write_pool())
                    .await?;
                Ok(())
            }

            async fn renew_lease(
                &self,
                id: i64,
                node: &str,
                now: crate::model::Millis,
            ) -> Result<bool, super::StoreError> {
                let until = now.0 + super::alerts::LEASE.as_millis() as i64;
                let held = sqlx::query(&$sql(super::alerts::RENEW))
                    .bind(until)
                    .bind(id)
                    .bind(node)
                    .execute(self.write_pool())
                    .await?
                    .rows_affected();
                Ok(held == 1)
            }

            async fn next_delivery(
                &self,
                webhook: &crate::model::webhook::Webhook,
                node: &str,
                now: crate::model::Millis,
                body: &(dyn for<'b> Fn(&'b [String]) -> String + Send + Sync),
            ) -> Result<Option<super::alerts::Delivery>, super::StoreError> {
                if !self.renew_lease(webhook.id, node, now).await? {
                    return Ok(None); // removed, or taken over after this node's lease ran out
                }
                let pending: Option<super::alerts::DeliveryRow> =
                    sqlx::query_as(&$sql(super::alerts::PENDING))
                        .bind(webhook.id)
                        .fetch_optional(&self.pool)
                        .await?;
                if let Some(row) = pending {
                    let (d, next_attempt) = super::alerts::delivery(row);
                    return Ok((next_attempt <= now).then_some(d));
                }
                let waiting: Vec<(i64, String, i64)> =
                    sqlx::query_as(&$sql(super::alerts::WAITING))
                        .bind(webhook.id)
                        .bind(crate::model::alert::MAX_ALERTS as i64)
                        .fetch_all(&self.pool)
                        .await?;
                if waiting.is_empty() {
                    return Ok(None);
                }
                let alerts: Vec<String> = waiting.iter().map(|(_, a, _)| a.clone()).collect();
                let d = super::alerts::Delivery {
                    id: super::new_event_id(),
                    webhook_id: webhook.id,
                    body: body(&alerts),
                    alerts: waiting.len() as i64,
                    attempts: 0,
                    created: now,
                    oldest_alert: crate::model::Millis(
                        waiting.iter().map(|(_, _, c)| *c).min().unwrap_or(now.0),
                    ),
                };
                let mut tx = self.begin().await?;
                let work = async {
                    sqlx::query(&$sql(super::alerts::OPEN))
                        .bind(&d.id)
                        .bind(d.webhook_id)
                        .bind(&d.body)
                        .bind(d.alerts)
                        .bind(d.oldest_alert.0)
                        .bind(d.created.0)
                        .bind(d.created.0)
                        .execute(&mut *tx)
                        .await?;
                    let mut q = sqlx::QueryBuilder::new("UPDATE alerts SET delivery_id = ");
                    q.push_bind(&d.id)
                        .push(" WHERE delivery_id IS NULL AND id IN (");
                    let mut ids = q.separated(", ");
                    for (id, _, _) in &waiting {
                        ids.push_bind(*id);
                    }
                    q.push(")");
                    let taken = q.build().execute(&mut *tx).await?.rows_affected();
                    if taken != waiting.len() as u64 {
                        // Another node's delivery took some of them meanwhile (its lease ran
                        // out under this one): leave them to it.
                        return Err(super::StoreError::Corrupt(
                            "alerts were taken by another delivery".into(),
                        ));
                    }
                    Ok::<_, super::StoreError>(())
                }
                .await;
                Self::finish(tx, work).await?;
                Ok(Some(d))
            }

            async fn finish_delivery(
                &self,
                id: &str,
                outcome: super::alerts::DeliveryOutcome,
                now: crate::model::Millis,
            ) -> Result<(), super::StoreError> {
                let (sql, at) = match outcome {
                    super::alerts::DeliveryOutcome::Delivered => (super::alerts::DELIVERED, now),
                    super::alerts::DeliveryOutcome::Retry(next) => (super::alerts::RETRY, next),
                    super::alerts::DeliveryOutcome::GivenUp => (super::alerts::GIVEN_UP, now),
                };
                sqlx::query(&$sql(sql))
                    .bind(at.0)
                    .bind(id)
                    .execute(self.write_pool())
                    .await?;
                Ok(())
            }

            async fn alerts_waiting(&self) -> Result<i64, super::StoreError> {
                Ok(sqlx::query_scalar(&$sql(super::alerts::WAITING_COUNT))
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn purge_deliveries(
                &self,
                cutoff: crate::model::Millis,
            ) -> Result<u64, super::StoreError> {
                let mut tx = self.begin().await?;
                let work = async {
                    let mut deleted = 0;
                    for sql in super::alerts::PURGE {
                        deleted = sqlx::query(&$sql(sql))
                            .bind(cutoff.0)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                    sqlx::query(super::alerts::ORPHANS)
                        .execute(&mut *tx)
                        .await?;
                    Ok::<_, super::StoreError>(deleted)
                }
                .await;
                Self::finish(tx, work).await
            }
        }

        impl $store {
            /// Writes the alerts a transaction's changes raise, in that transaction.
            async fn raise_alerts(
                conn: &mut $conn,
                raised: &[crate::model::alert::Raised],
                now: crate::model::Millis,
            ) -> Result<(), super::StoreError> {
                if raised.is_empty() {
                    return Ok(());
                }
                let hooks: Vec<(i64, i64, String)> =
                    sqlx::query_as(&$sql(super::alerts::HOOKS_OF_ALL))
                        .fetch_all(&mut *conn)
                        .await?;
                let rows = super::alerts::fan_out(raised, &hooks);
                for chunk in rows.chunks(1_000) {
                    let mut q =
                        sqlx::QueryBuilder::new("INSERT INTO alerts (webhook_id, created, alert) ");
                    q.push_values(chunk, |mut b, (hook, alert)| {
                        b.push_bind(*hook).push_bind(now.0).push_bind(*alert);
                    });
                    q.build().execute(&mut *conn).await?;
                }
                Ok(())
            }
        }
    };
}
pub(super) use alert_methods;

/// `?` placeholders numbered `$1, $2, …` for PostgreSQL (the SQL here has no `?` in a
/// literal).
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IssueAction;
    use crate::model::alert::Raised;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(numbered(CLAIM).matches('$').count(), 4);
        assert_eq!(numbered(DUE).matches('$').count(), 2);
    }

    #[test]
    fn each_alert_goes_to_the_webhooks_of_its_project_that_asked_for_it() {
        let raised = [
            Raised {
                project_id: 1,
                action: IssueAction::New,
                json: "n".into(),
            },
            Raised {
                project_id: 1,
                action: IssueAction::Resolved,
                json: "r".into(),
            },
            Raised {
                project_id: 2,
                action: IssueAction::New,
                json: "m".into(),
            },
        ];
        let hooks = vec![
            (10, 1, "new,regressed".to_string()),
            (11, 1, "resolved".to_string()),
            (12, 2, "new".to_string()),
            (13, 3, "new".to_string()),
        ];
        assert_eq!(fan_out(&raised, &hooks), [(10, "n"), (11, "r"), (12, "m")]);
    }
}

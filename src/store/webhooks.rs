//! Webhooks and the alert outbox (SPEC §7).
//!
//! Who delivers: a node claims a webhook that has work due by setting its lease (a
//! conditional `UPDATE`, so two nodes never both win it) and keeps it while it delivers;
//! a node that dies leaves the lease to expire ([`LEASE`]), and another takes over. So
//! each webhook has at most one delivery in flight across all nodes.

use super::db::{transaction, with_db};
use super::{ProjectId, Store, StoreError, new_event_id};
use crate::model::alert::{MAX_ALERTS, Raised, fan_out};
use crate::model::webhook::{Delivery, DeliveryOutcome, WebhookAdded};
use crate::model::webhook::{MAX_WEBHOOKS, Webhook, WebhookFormat, parse_triggers};
use crate::model::{IssueAction, Millis};
use sqlx::{Database, QueryBuilder};
use std::time::Duration;

/// How long a claim holds a webhook: three attempts' time (10 s each), renewed right
/// before each attempt; what a dead node's webhooks wait for another node. (Nodes' clocks
/// are assumed to agree within a few seconds, as NTP keeps them.)
pub(crate) const LEASE: Duration = Duration::from_secs(30);

type WebhookRow = (i64, i64, String, String, String, String);
type DeliveryRow = (String, i64, String, i64, i64, i64, i64, i64);

fn webhook(row: WebhookRow) -> Result<Webhook, StoreError> {
    let (id, project_id, url, triggers, format, secret) = row;
    Ok(Webhook {
        id,
        project_id,
        url,
        on: parse_triggers(&triggers).map_err(super::rows::corrupt)?,
        format: WebhookFormat::stored(&format).map_err(super::rows::corrupt)?,
        secret,
    })
}

fn delivery(row: DeliveryRow) -> (Delivery, Millis) {
    let (id, webhook_id, body, alerts, attempts, created, oldest_alert, next_attempt) = row;
    let delivery = Delivery {
        id,
        webhook_id,
        body,
        alerts,
        attempts,
        created: Millis(created),
        oldest_alert: Millis(oldest_alert),
    };
    (delivery, Millis(next_attempt))
}

const WEBHOOK_COLUMNS: &str = "id, project_id, url, triggers, format, secret";
const CREATE: &str = "INSERT INTO webhooks (project_id, url, triggers, format, secret, \
     created_at) SELECT id, $1, $2, $3, $4, $5 FROM projects WHERE id = $6 RETURNING id";
const DUE: &str = "SELECT id FROM webhooks \
     WHERE lease_until < $1 AND ( \
       EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = webhooks.id \
               AND d.state = 'pending' AND d.next_attempt <= $1) \
       OR (NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = webhooks.id \
                       AND d.state = 'pending') \
           AND EXISTS (SELECT 1 FROM alerts a WHERE a.webhook_id = webhooks.id \
                       AND a.delivery_id IS NULL)))";
const PENDING: &str = "SELECT id, webhook_id, body, alerts, attempts, created, \
     oldest_alert, next_attempt FROM deliveries WHERE webhook_id = $1 AND state = 'pending'";
const WAITING: &str = "SELECT id, alert, created FROM alerts \
     WHERE webhook_id = $1 AND delivery_id IS NULL ORDER BY id LIMIT $2";
const OPEN: &str = "INSERT INTO deliveries (id, webhook_id, body, alerts, oldest_alert, \
     attempts, created, next_attempt, state) VALUES ($1, $2, $3, $4, $5, 0, $6, $6, 'pending')";
/// Every webhook's triggers: what [`fan_out`] matches raised alerts against.
pub(super) const HOOKS_OF_ALL: &str = "SELECT id, project_id, triggers FROM webhooks";

impl Store {
    /// Adds a webhook unless the project is missing or has [`MAX_WEBHOOKS`] already. The
    /// URL is stored as given: checking where it leads is the caller's (and the
    /// delivery's) job.
    pub async fn create_webhook(
        &self,
        project: ProjectId,
        url: &str,
        on: &[IssueAction],
        format: WebhookFormat,
        secret: &str,
    ) -> Result<WebhookAdded, StoreError> {
        let on_list = on.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",");
        let added = |id| {
            WebhookAdded::Added(Webhook {
                id,
                project_id: project,
                url: url.to_owned(),
                on: on.to_vec(),
                format,
                secret: secret.to_owned(),
            })
        };
        transaction!(self, db, tx => {
            // Locks the project's row (PostgreSQL: until the transaction ends), so that two
            // adds at once cannot both find room for one more webhook.
            let found = sqlx::query("UPDATE projects SET name = name WHERE id = $1")
                .bind(project)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if found == 0 {
                return Ok(WebhookAdded::NoProject);
            }
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks WHERE project_id = $1")
                .bind(project)
                .fetch_one(&mut *tx)
                .await?;
            if count >= MAX_WEBHOOKS as i64 {
                return Ok(WebhookAdded::Full);
            }
            let id: Option<i64> = sqlx::query_scalar(CREATE)
                .bind(url)
                .bind(&on_list)
                .bind(format.as_str())
                .bind(secret)
                .bind(Millis::now().0)
                .bind(project)
                .fetch_optional(&mut *tx)
                .await?;
            Ok(id.map_or(WebhookAdded::NoProject, added))
        })
    }

    /// Every webhook (of one project), by id.
    pub async fn list_webhooks(
        &self,
        project: Option<ProjectId>,
    ) -> Result<Vec<Webhook>, StoreError> {
        // E-mail alerts share the outbox but are the members' own, not webhooks.
        let filter = if project.is_some() {
            "WHERE format <> 'email' AND project_id = $1 "
        } else {
            "WHERE format <> 'email' "
        };
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks {filter}ORDER BY id");
        let rows: Vec<WebhookRow> = with_db!(self, db => {
            let mut q = sqlx::query_as(&sql);
            if let Some(p) = project {
                q = q.bind(p);
            }
            q.fetch_all(&db.pool).await?
        });
        rows.into_iter().map(webhook).collect()
    }

    /// The e-mail alert of `target` (`mailto:<address>`) in `project`, if it is on.
    pub async fn email_alert(
        &self,
        project: ProjectId,
        target: &str,
    ) -> Result<Option<Webhook>, StoreError> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks \
             WHERE format = 'email' AND project_id = $1 AND url = $2"
        );
        let row: Option<WebhookRow> = with_db!(self, db => sqlx::query_as(&sql)
            .bind(project)
            .bind(target)
            .fetch_optional(&db.pool)
            .await?);
        row.map(webhook).transpose()
    }

    /// Removes a webhook with its alerts and deliveries; false when there was none.
    pub async fn remove_webhook(&self, id: i64) -> Result<bool, StoreError> {
        const REMOVE: [&str; 3] = [
            "DELETE FROM alerts WHERE webhook_id = $1",
            "DELETE FROM deliveries WHERE webhook_id = $1",
            "DELETE FROM webhooks WHERE id = $1",
        ];
        transaction!(self, db, tx => {
            let mut removed = 0;
            for sql in REMOVE {
                removed = sqlx::query(sql).bind(id).execute(&mut *tx).await?.rows_affected();
            }
            Ok(removed == 1)
        })
    }

    /// Claims, for `node`, every webhook with a delivery due whose lease is free.
    pub async fn claim_webhooks(
        &self,
        node: &str,
        now: Millis,
    ) -> Result<Vec<Webhook>, StoreError> {
        let claim = format!(
            "UPDATE webhooks SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND lease_until < $4 RETURNING {WEBHOOK_COLUMNS}"
        );
        let until = now.0 + LEASE.as_millis() as i64;
        let rows: Vec<WebhookRow> = with_db!(self, db => {
            let due: Vec<i64> = sqlx::query_scalar(DUE).bind(now.0).fetch_all(&db.pool).await?;
            let mut claimed = Vec::with_capacity(due.len());
            for id in due {
                let row: Option<WebhookRow> = sqlx::query_as(&claim)
                    .bind(node)
                    .bind(until)
                    .bind(id)
                    .bind(now.0)
                    .fetch_optional(db.write_pool())
                    .await?;
                claimed.extend(row);
            }
            claimed
        });
        rows.into_iter().map(webhook).collect()
    }

    /// Extends a claimed webhook's lease; false when it is no longer this node's.
    pub async fn renew_lease(&self, id: i64, node: &str, now: Millis) -> Result<bool, StoreError> {
        const RENEW: &str =
            "UPDATE webhooks SET lease_until = $1 WHERE id = $2 AND lease_owner = $3";
        let until = now.0 + LEASE.as_millis() as i64;
        let held = with_db!(self, db => sqlx::query(RENEW)
            .bind(until)
            .bind(id)
            .bind(node)
            .execute(db.write_pool())
            .await?
            .rows_affected());
        Ok(held == 1)
    }

    /// Gives a claimed webhook's lease back.
    pub async fn release_webhook(&self, id: i64, node: &str) -> Result<(), StoreError> {
        const RELEASE: &str = "UPDATE webhooks SET lease_until = 0, lease_owner = NULL \
                               WHERE id = $1 AND lease_owner = $2";
        with_db!(self, db => {
            sqlx::query(RELEASE).bind(id).bind(node).execute(db.write_pool()).await?;
        });
        Ok(())
    }

    /// The webhook's next delivery: its pending one when due, else a new one of up to 100
    /// waiting alerts (`body` makes its body from their JSON); `None` when nothing is due or
    /// the lease was lost. Renews the lease.
    pub async fn next_delivery(
        &self,
        webhook: &Webhook,
        node: &str,
        now: Millis,
        body: &(dyn for<'b> Fn(&'b [String]) -> String + Send + Sync),
    ) -> Result<Option<Delivery>, StoreError> {
        if !self.renew_lease(webhook.id, node, now).await? {
            return Ok(None); // removed, or taken over after this node's lease ran out
        }
        let pending: Option<DeliveryRow> = with_db!(self, db => sqlx::query_as(PENDING)
            .bind(webhook.id)
            .fetch_optional(&db.pool)
            .await?);
        if let Some(row) = pending {
            let (d, next_attempt) = delivery(row);
            return Ok((next_attempt <= now).then_some(d));
        }
        let waiting: Vec<(i64, String, i64)> = with_db!(self, db => sqlx::query_as(WAITING)
            .bind(webhook.id)
            .bind(MAX_ALERTS as i64)
            .fetch_all(&db.pool)
            .await?);
        if waiting.is_empty() {
            return Ok(None);
        }
        let alerts: Vec<String> = waiting.iter().map(|(_, a, _)| a.clone()).collect();
        let oldest = waiting.iter().map(|(_, _, c)| *c).min().unwrap_or(now.0);
        let d = Delivery {
            id: new_event_id(),
            webhook_id: webhook.id,
            body: body(&alerts),
            alerts: waiting.len() as i64,
            attempts: 0,
            created: now,
            oldest_alert: Millis(oldest),
        };
        let ids: Vec<i64> = waiting.iter().map(|(id, _, _)| *id).collect();
        self.open_delivery(&d, &ids).await?;
        Ok(Some(d))
    }

    /// Stores a new delivery and gives it these waiting alerts.
    async fn open_delivery(&self, d: &Delivery, alerts: &[i64]) -> Result<(), StoreError> {
        transaction!(self, db, tx => {
            sqlx::query(OPEN)
                .bind(&d.id)
                .bind(d.webhook_id)
                .bind(&d.body)
                .bind(d.alerts)
                .bind(d.oldest_alert.0)
                .bind(d.created.0)
                .execute(&mut *tx)
                .await?;
            let mut q = QueryBuilder::new("UPDATE alerts SET delivery_id = ");
            q.push_bind(&d.id).push(" WHERE delivery_id IS NULL AND id IN (");
            let mut ids = q.separated(", ");
            for id in alerts {
                ids.push_bind(*id);
            }
            q.push(")");
            let taken = q.build().execute(&mut *tx).await?.rows_affected();
            if taken != alerts.len() as u64 {
                // Another node's delivery took some of them meanwhile (its lease ran out
                // under this one): leave them to it.
                return Err(StoreError::Corrupt("alerts were taken by another delivery".into()));
            }
            Ok(())
        })
    }

    /// Records how an attempt ended.
    pub async fn finish_delivery(
        &self,
        id: &str,
        outcome: DeliveryOutcome,
        now: Millis,
    ) -> Result<(), StoreError> {
        let (sql, at) = match outcome {
            DeliveryOutcome::Delivered => (
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, \
                 finished = $1 WHERE id = $2 AND state = 'pending'",
                now,
            ),
            DeliveryOutcome::Retry(next) => (
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt = $1 \
                 WHERE id = $2 AND state = 'pending'",
                next,
            ),
            DeliveryOutcome::GivenUp => (
                "UPDATE deliveries SET state = 'given_up', attempts = attempts + 1, \
                 finished = $1 WHERE id = $2 AND state = 'pending'",
                now,
            ),
        };
        with_db!(self, db => {
            sqlx::query(sql).bind(at.0).bind(id).execute(db.write_pool()).await?;
        });
        Ok(())
    }

    /// Alerts not yet delivered (waiting, or in a pending delivery).
    pub async fn alerts_waiting(&self) -> Result<i64, StoreError> {
        const WAITING_COUNT: &str = "SELECT count(*) FROM alerts WHERE delivery_id IS NULL \
             OR delivery_id IN (SELECT id FROM deliveries WHERE state = 'pending')";
        with_db!(self, db => Ok(sqlx::query_scalar(WAITING_COUNT).fetch_one(&db.pool).await?))
    }

    /// Deletes deliveries finished before `cutoff`, with their alerts.
    pub async fn purge_deliveries(&self, cutoff: Millis) -> Result<u64, StoreError> {
        const PURGE: [&str; 2] = [
            "DELETE FROM alerts WHERE delivery_id IN \
             (SELECT id FROM deliveries WHERE state <> 'pending' AND finished < $1)",
            "DELETE FROM deliveries WHERE state <> 'pending' AND finished < $1",
        ];
        const ORPHANS: &str =
            "DELETE FROM alerts WHERE webhook_id NOT IN (SELECT id FROM webhooks)";
        transaction!(self, db, tx => {
            let mut deleted = 0;
            for sql in PURGE {
                deleted = sqlx::query(sql).bind(cutoff.0).execute(&mut *tx).await?.rows_affected();
            }
            sqlx::query(ORPHANS).execute(&mut *tx).await?;
            Ok(deleted)
        })
    }
}

/// The inserts that queue the raised alerts for each webhook that wants them, in the
/// transaction that raised them (`hooks`: the rows of [`HOOKS_OF_ALL`] read in it).
pub(super) fn alert_inserts<'a, DB>(
    raised: &'a [Raised],
    hooks: &[(i64, i64, String)],
    now: Millis,
) -> Vec<QueryBuilder<'a, DB>>
where
    DB: Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let rows = fan_out(raised, hooks);
    let insert = |chunk: &[(i64, &'a str)]| {
        let mut q = QueryBuilder::new("INSERT INTO alerts (webhook_id, created, alert) ");
        q.push_values(chunk.iter().copied(), |mut b, (hook, alert)| {
            b.push_bind(hook).push_bind(now.0).push_bind(alert);
        });
        q
    };
    rows.chunks(1_000).map(insert).collect()
}

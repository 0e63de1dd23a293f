-- Webhooks and their alert outbox (SPEC §7, src/alerts). An alert is written in the
-- transaction of the change that raises it; a delivery takes up to 100 waiting alerts of
-- one webhook, keeps its body (so every retry is the same bytes, signature and id) and is
-- retried until delivered or given up. The node delivering for a webhook holds its lease.
CREATE TABLE webhooks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    url          TEXT    NOT NULL,
    triggers     TEXT    NOT NULL, -- comma list: new,regressed,resolved,archived,unresolved,discarded
    format       TEXT    NOT NULL, -- json | slack
    secret       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER NOT NULL DEFAULT 0 -- unix ms
);

CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    alert        TEXT    NOT NULL, -- {"action", "issue", "event"?}
    delivery_id  TEXT              -- NULL while waiting
);
CREATE INDEX alerts_waiting ON alerts (webhook_id, id) WHERE delivery_id IS NULL;
CREATE INDEX alerts_by_delivery ON alerts (delivery_id);

CREATE TABLE deliveries (
    id            TEXT    PRIMARY KEY,
    webhook_id    INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    alerts        INTEGER NOT NULL,
    oldest_alert  INTEGER NOT NULL, -- unix ms the oldest of its alerts was raised
    attempts      INTEGER NOT NULL DEFAULT 0,
    created       INTEGER NOT NULL,
    next_attempt  INTEGER NOT NULL,
    state         TEXT    NOT NULL, -- pending | delivered | given_up
    finished      INTEGER
);
CREATE INDEX deliveries_pending ON deliveries (webhook_id) WHERE state = 'pending';
CREATE INDEX deliveries_finished ON deliveries (finished) WHERE state <> 'pending';

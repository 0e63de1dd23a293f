-- The PostgreSQL schema: the same tables as SQLite's, with BIGINT integers (unix ms,
-- ids, seqs) so that every integer column decodes as i64. `tags` and `detail` stay TEXT
-- holding JSON, read and written by the same code paths as SQLite's.
--
-- Several Mesher nodes may share one database: writers lock the project row
-- (`SELECT ... FOR UPDATE`) before touching its issues and events, so a project's seq
-- stays gap-free and issue counters lose no update.

-- Projects: the ingest key may only send events; the token (stored hashed) reads.
CREATE TABLE projects (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT      NOT NULL,
    ingest_key  TEXT      NOT NULL UNIQUE,
    token_hash  TEXT      NOT NULL UNIQUE,
    -- The last seq given to one of the project's events; seqs only grow.
    last_seq    BIGINT    NOT NULL DEFAULT 0,
    created_at  BIGINT    NOT NULL
);

CREATE TABLE issues (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT    NOT NULL REFERENCES projects(id),
    fingerprint  TEXT      NOT NULL,
    title        TEXT      NOT NULL,
    culprit      TEXT      NOT NULL,
    level        TEXT      NOT NULL,
    status       TEXT      NOT NULL,
    event_count  BIGINT    NOT NULL,
    first_seen   BIGINT    NOT NULL, -- unix ms, when received
    last_seen    BIGINT    NOT NULL,
    UNIQUE (project_id, fingerprint)
);
CREATE INDEX issues_by_status ON issues (project_id, status, last_seen);
CREATE INDEX issues_by_last_seen ON issues (project_id, last_seen);

CREATE TABLE events (
    project_id   BIGINT    NOT NULL REFERENCES projects(id),
    seq          BIGINT    NOT NULL,
    event_id     TEXT      NOT NULL,
    issue_id     BIGINT    NOT NULL REFERENCES issues(id),
    level        TEXT      NOT NULL,
    environment  TEXT      NOT NULL,
    release      TEXT,
    timestamp    BIGINT    NOT NULL, -- unix ms, the event's own time
    received     BIGINT    NOT NULL, -- unix ms, for retention
    message      TEXT,
    title        TEXT      NOT NULL,
    culprit      TEXT      NOT NULL,
    tags         TEXT      NOT NULL, -- JSON object of strings
    detail       TEXT      NOT NULL, -- JSON object: exception, stacktrace, breadcrumbs, ...
    PRIMARY KEY (project_id, seq)
);
CREATE UNIQUE INDEX events_by_event_id ON events (project_id, event_id);
CREATE INDEX events_by_issue ON events (issue_id, seq);
CREATE INDEX events_by_received ON events (received);

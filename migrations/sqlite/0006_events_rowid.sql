-- The events table with a rowid (it was WITHOUT ROWID, keyed by (project_id, seq)).
-- Measured (docs/BENCHMARKS.md): appends to a rowid table take SQLite's fast path instead
-- of rebalancing three pages at every split, and rows up to ~4 KB stay in their leaf (a
-- WITHOUT ROWID row over ~1 KB spills to an overflow page of its own). (project_id, seq)
-- stays unique and is still how events are found and paged. The rows are copied once, at
-- the first start of this version.
CREATE TABLE events_by_rowid (
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    seq          INTEGER NOT NULL,
    event_id     TEXT    NOT NULL,
    issue_id     INTEGER NOT NULL REFERENCES issues(id),
    level        TEXT    NOT NULL,
    environment  TEXT    NOT NULL,
    release      TEXT,
    timestamp    INTEGER NOT NULL, -- unix ms, the event's own time
    received     INTEGER NOT NULL, -- unix ms, for retention
    message      TEXT,
    title        TEXT    NOT NULL,
    culprit      TEXT    NOT NULL,
    tags         TEXT    NOT NULL, -- JSON object of strings
    detail       TEXT    NOT NULL, -- JSON object: exception, stacktrace, breadcrumbs, ...
    -- Each event as it was received (JSON, after decompression), compressed with zstd
    -- (under 512 bytes: as is); NULL for events stored before the column existed.
    raw          BLOB,
    UNIQUE (project_id, seq)
);
INSERT INTO events_by_rowid (project_id, seq, event_id, issue_id, level, environment, release,
        timestamp, received, message, title, culprit, tags, detail, raw)
    SELECT project_id, seq, event_id, issue_id, level, environment, release,
        timestamp, received, message, title, culprit, tags, detail, raw
    FROM events ORDER BY project_id, seq;
DROP TABLE events;
ALTER TABLE events_by_rowid RENAME TO events;
CREATE UNIQUE INDEX events_by_event_id ON events (project_id, event_id);
CREATE INDEX events_by_issue ON events (issue_id, seq);
CREATE INDEX events_by_received ON events (received);

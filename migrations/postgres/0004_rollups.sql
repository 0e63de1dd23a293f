-- Counts kept beside the events (src/store/rollups.rs): how many stored events carry each
-- (issue, key, value), and events per minute and level of each issue and project. The tag
-- breakdown and the stats read these instead of aggregating the events (on 1,000,000
-- events that took seconds). Every write batch adds to them, retention subtracts.
CREATE TABLE issue_tag_counts (
    issue_id  BIGINT NOT NULL,
    key       TEXT   NOT NULL,
    value     TEXT   NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (issue_id, key, value)
);

INSERT INTO issue_tag_counts (issue_id, key, value, count)
    SELECT issue_id, key, value, count(*) FROM (
        SELECT e.issue_id AS issue_id, j.key AS key, j.value AS value
            FROM events e, jsonb_each_text(e.tags::jsonb) j
        UNION ALL SELECT issue_id, 'environment', environment FROM events
        UNION ALL SELECT issue_id, 'release', release FROM events WHERE release IS NOT NULL
    ) kv GROUP BY issue_id, key, value;

DROP TABLE issue_tag_values;
ALTER TABLE issue_tag_counts RENAME TO issue_tag_values;

CREATE TABLE issue_minutes (
    issue_id  BIGINT NOT NULL,
    minute    BIGINT NOT NULL, -- unix ms of the minute's start
    level     TEXT   NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (issue_id, minute, level)
);

INSERT INTO issue_minutes (issue_id, minute, level, count)
    SELECT issue_id, (received / 60000) * 60000, level, count(*) FROM events
    GROUP BY 1, 2, 3;

CREATE TABLE project_minutes (
    project_id BIGINT NOT NULL,
    minute     BIGINT NOT NULL,
    level      TEXT   NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (project_id, minute, level)
);

INSERT INTO project_minutes (project_id, minute, level, count)
    SELECT project_id, (received / 60000) * 60000, level, count(*) FROM events
    GROUP BY 1, 2, 3;

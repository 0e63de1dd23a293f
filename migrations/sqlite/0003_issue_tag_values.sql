-- Which tag values (and environments and releases, under those keys) an issue's stored
-- events carry, once each: search terms on them are one index seek per issue instead of a
-- scan of the issue's events. Kept by every write batch; rows of deleted issues go with the
-- retention pass that deletes the issues.
CREATE TABLE issue_tag_values (
    issue_id  INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    PRIMARY KEY (issue_id, key, value)
) WITHOUT ROWID;

INSERT OR IGNORE INTO issue_tag_values (issue_id, key, value)
    SELECT e.issue_id, j.key, j.value FROM events e, json_each(e.tags) j;
INSERT OR IGNORE INTO issue_tag_values (issue_id, key, value)
    SELECT issue_id, 'environment', environment FROM events;
INSERT OR IGNORE INTO issue_tag_values (issue_id, key, value)
    SELECT issue_id, 'release', release FROM events WHERE release IS NOT NULL;

-- Every fingerprint an issue answers to (SPEC §3): the one it was made for, the fingerprint
-- the newer grouping rule gives its events (the upgrade rule: an event whose fingerprint
-- names no issue but whose earlier-rule fingerprint does joins that issue), and those of
-- the issues merged into it. The group commit looks issues up here, so every existing
-- issue's own fingerprint is copied in. Rows go with their issue (retention, merge).
CREATE TABLE issue_fingerprints (
    project_id   BIGINT NOT NULL,
    fingerprint  TEXT   NOT NULL,
    issue_id     BIGINT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, fingerprint)
);
CREATE INDEX issue_fingerprints_by_issue ON issue_fingerprints (issue_id);

INSERT INTO issue_fingerprints (project_id, fingerprint, issue_id)
    SELECT project_id, fingerprint, id FROM issues;

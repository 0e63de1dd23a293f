-- The events table without its two foreign keys (docs/BENCHMARKS.md, issue 14): each one
-- ran a trigger per inserted row (a `FOR KEY SHARE` lookup of the project and of the
-- issue), 15% of PostgreSQL's CPU in a single-event group commit. The group commit is the
-- only writer of events and already holds what the keys checked: it locks the project's
-- row before it writes (`FOR UPDATE`) and takes each issue id from the same transaction;
-- retention deletes only issues left without events, under the same project locks. The
-- rollup tables beside it never had foreign keys.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_project_id_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_issue_id_fkey;

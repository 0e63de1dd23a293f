-- Source-map artifacts uploaded by sentry-cli (SPEC §10), kept in the database so one
-- backup holds them and every node sees them.
-- Chunks of a bundle not yet assembled, by SHA-1 (stored once), zstd-compressed; a
-- bundle's chunks are deleted once it is assembled, and stale ones by retention.
CREATE TABLE artifact_chunks (
    sha1       TEXT    PRIMARY KEY,      -- of the uncompressed chunk, lowercase hex
    size       INTEGER NOT NULL,         -- uncompressed bytes
    data       BLOB    NOT NULL,         -- zstd
    created_at INTEGER NOT NULL
);
CREATE INDEX artifact_chunks_by_age ON artifact_chunks (created_at);
-- One assembled bundle per project it was uploaded for.
CREATE TABLE artifact_bundles (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    checksum   TEXT    NOT NULL,         -- SHA-1 of the bundle's zip
    release    TEXT,
    dist       TEXT,
    files      INTEGER NOT NULL,
    created_at INTEGER NOT NULL          -- unix ms; uploading it again moves it
);
CREATE INDEX artifact_bundles_by_checksum ON artifact_bundles (project_id, checksum);
CREATE INDEX artifact_bundles_by_age ON artifact_bundles (created_at);
-- The files of a bundle, one row each; release and dist copied from the bundle so that a
-- lookup by URL reads one index.
CREATE TABLE artifact_files (
    bundle_id  INTEGER NOT NULL REFERENCES artifact_bundles(id),
    project_id INTEGER NOT NULL,
    release    TEXT,
    dist       TEXT,
    url        TEXT    NOT NULL,         -- ~/static/app.min.js
    kind       TEXT    NOT NULL,         -- minified_source, source_map, source, other
    debug_id   TEXT,                     -- lowercase UUID with dashes
    sourcemap  TEXT,                     -- a minified file's Sourcemap header
    data       BLOB    NOT NULL          -- zstd
);
CREATE INDEX artifact_files_by_bundle ON artifact_files (bundle_id);
CREATE INDEX artifact_files_by_debug_id ON artifact_files (project_id, debug_id, kind)
    WHERE debug_id IS NOT NULL;
CREATE INDEX artifact_files_by_url ON artifact_files (project_id, release, url);

-- Accounts (SPEC §9): users with Argon2id password hashes, server-side sessions, API tokens,
-- project memberships, and the failed sign-ins that the attempt limit counts.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE, -- lowercased
    password_hash TEXT,                    -- PHC string; NULL: signs in by SSO only
    admin         INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,        -- SHA-256 of the cookie's secret
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created    INTEGER NOT NULL,
    last_used  INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created    INTEGER NOT NULL
);
CREATE TABLE members (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);
CREATE TABLE sign_in_failures (
    email TEXT    NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_by_email ON sign_in_failures (email, at);

//! Projects: what a project is and the secrets it is known by.

use super::Millis;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A project's id (positive; Sentry SDKs need a number).
pub type ProjectId = i64;

/// A project as listed (no secrets but the ingest key, which may only send events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    /// Project id.
    pub id: ProjectId,
    /// Display name.
    pub name: String,
    /// The key that authenticates ingestion: 32 lowercase hex digits.
    pub ingest_key: String,
}

/// A project just created (or re-keyed), with the one copy of its token.
#[derive(Clone, Debug)]
pub struct CreatedProject {
    /// The project.
    pub project: Project,
    /// The read token in clear; only its hash is stored.
    pub token: String,
}

/// A project's credentials as stored: `(id, ingest key, SHA-256 of the token)`.
pub type ProjectCredentials = (ProjectId, String, String);

/// Hashes a project token for storage. Tokens are 256 random bits, so a plain SHA-256
/// suffices (a slow password hash protects low-entropy secrets, which these are not).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new ingest key: 32 lowercase hex digits.
pub fn new_ingest_key() -> String {
    random_hex(16)
}

/// A new project token: 64 lowercase hex digits.
pub fn new_token() -> String {
    random_hex(32)
}

/// A new event id: 32 lowercase hex digits laid out as a UUIDv7 — the time in ms, then 74
/// random bits — so that the ids of one batch sort together and their inserts into the
/// `(project, event id)` index land on its last pages, not on one random page each.
pub fn new_event_id() -> String {
    let ms = (Millis::now().0.max(0) as u64).to_be_bytes();
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms[2..]);
    rand::rng().fill_bytes(&mut b[6..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    hex::encode(b)
}

/// The project's DSN on `server`: the server's public URL (`--public-url`, e.g.
/// `https://errors.example.com/mesher`), or its listen address (`127.0.0.1:8080`, taken as
/// `http://127.0.0.1:8080`). Sentry's form: `<scheme>://<key>@<host>[/<path>]/<project id>`.
pub fn dsn(project: &Project, server: &str) -> String {
    let (scheme, rest) = server.split_once("://").unwrap_or(("http", server));
    // What an SDK reads from a DSN: the host and the path; no query, fragment or user.
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = path.trim_end_matches('/');
    let (key, id) = (&project.ingest_key, project.id);
    format!("{scheme}://{key}@{host}{path}/{id}")
}

#[cfg(test)]
mod tests {
    use super::{Project, dsn};

    #[test]
    fn a_dsn_names_the_public_url_or_the_listen_address() {
        let p = Project {
            id: 7,
            name: "shop".into(),
            ingest_key: "k".into(),
        };
        for (server, expected) in [
            ("127.0.0.1:8080", "http://k@127.0.0.1:8080/7"),
            (
                "https://errors.example.com",
                "https://k@errors.example.com/7",
            ),
            (
                "https://errors.example.com/",
                "https://k@errors.example.com/7",
            ),
            ("http://[::1]:9000/mesher/", "http://k@[::1]:9000/mesher/7"),
            (
                "https://u@errors.example.com/m?x=1#y",
                "https://k@errors.example.com/m/7",
            ),
        ] {
            assert_eq!(dsn(&p, server), expected, "{server}");
        }
    }
}

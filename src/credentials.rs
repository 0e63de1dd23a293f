//! The key directory: every project's ingest key and token hash, held in memory and
//! reloaded from the database, so that checking a credential costs no database read.
//!
//! - A hit is a hash-map lookup. The directory is reloaded every [`RELOAD_EVERY`] by one
//!   query ([`Store::project_credentials`]), so a rotated key or token is refused within
//!   that time on every node: each node polls the shared database; no Redis is needed.
//! - A key that is not 32 lowercase hex digits (a token: 64) is refused without a lookup.
//! - A miss asks for a reload begun after the miss, so that a project created by
//!   `mesher project create` (another process) works at once. Reloads are made by one
//!   task only (misses share it) and at most once per [`MIN_RELOAD_GAP`], so a flood of
//!   random keys costs the database at most a few queries per second.
//! - A credential confirmed unknown goes into a bounded negative cache: repeated use of it
//!   (an SDK configured with a revoked key) is refused at once, without asking for a
//!   reload. The directory is always looked at first, so a negative entry never hides a
//!   credential that the database holds.
//!
//! Subscribers ([`Credentials::watch`]) are told whenever the directory's contents change:
//! open WebSockets check their own credential then, and close when it is gone.

use crate::store::{ProjectId, Store, hash_token};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the directory is reloaded however quiet things are: the bound on how long a
/// rotated credential keeps working (the contract says 5 s).
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// The least time between the starts of two reloads: at most 10 queries per second
/// however many unknown credentials arrive.
pub const MIN_RELOAD_GAP: Duration = Duration::from_millis(100);
/// Unknown credentials remembered, of each kind; the oldest is forgotten first.
pub const NEGATIVE_CAPACITY: usize = 4096;
/// How long a miss waits for its reload before the request is answered 503 (the
/// database is slow or gone): short, so a request never holds its connection long.
const RELOAD_WAIT: Duration = Duration::from_secs(1);

/// The database could not be asked (the request may be retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the credentials could not be read from the database")]
pub struct Unavailable;

/// What the database holds, by credential.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Directory {
    keys: HashMap<String, ProjectId>,
    tokens: HashMap<String, ProjectId>,
}

impl Directory {
    /// The project an ingest key belongs to.
    pub fn key_project(&self, key: &str) -> Option<ProjectId> {
        self.keys.get(key).copied()
    }

    /// The project whose token hashes to `hash`.
    pub fn token_project(&self, hash: &str) -> Option<ProjectId> {
        self.tokens.get(hash).copied()
    }

    /// Projects known.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no project is known.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Whether `key` looks like an ingest key: 32 lowercase hex digits.
pub fn is_ingest_key(key: &str) -> bool {
    is_lower_hex(key, 32)
}

/// Whether `token` looks like a project token: 64 lowercase hex digits.
pub fn is_token(token: &str) -> bool {
    is_lower_hex(token, 64)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A credential's kind, for the negative cache.
#[derive(Clone, Copy)]
enum Kind {
    Key,
    Token,
}

/// Credentials confirmed unknown, at most `capacity`, oldest forgotten first.
struct Misses {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Misses {
    fn new(capacity: usize) -> Misses {
        Misses {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    fn insert(&mut self, id: &str) {
        if self.capacity == 0 || !self.set.insert(id.to_owned()) {
            return;
        }
        self.order.push_back(id.to_owned());
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    fn len(&self) -> usize {
        self.set.len()
    }
}

/// How the last reload ended.
#[derive(Clone, Copy, Debug, Default)]
struct Finished {
    /// Its number (reloads are numbered from 1 as they start).
    number: u64,
    ok: bool,
}

/// The key directory; cheap to clone.
#[derive(Clone)]
pub struct Credentials(Arc<Inner>);

struct Inner {
    store: Store,
    directory: watch::Sender<Directory>,
    /// Reloads started so far (the number of the latest).
    started: AtomicU64,
    finished: watch::Sender<Finished>,
    /// A miss wants a reload…
    wanted: Notify,
    /// …numbered at least this (one started after the miss).
    wanted_number: AtomicU64,
    key_misses: Mutex<Misses>,
    token_misses: Mutex<Misses>,
}

impl Credentials {
    /// An empty directory over `store`; [`Credentials::run`] fills and reloads it.
    pub fn new(store: Store) -> Credentials {
        Credentials(Arc::new(Inner {
            store,
            directory: watch::Sender::new(Directory::default()),
            started: AtomicU64::new(0),
            finished: watch::Sender::new(Finished::default()),
            wanted: Notify::new(),
            wanted_number: AtomicU64::new(0),
            key_misses: Mutex::new(Misses::new(NEGATIVE_CAPACITY)),
            token_misses: Mutex::new(Misses::new(NEGATIVE_CAPACITY)),
        }))
    }

    /// A directory over `store`, reloaded by the supervised task `credentials` until
    /// `supervisor`'s shutdown.
    pub fn start(store: Store, supervisor: &crate::task::Supervisor) -> Credentials {
        let credentials = Credentials::new(store);
        let (task, stop) = (credentials.clone(), supervisor.shutdown().clone());
        supervisor.spawn("credentials", move || task.clone().run(stop.clone()));
        credentials
    }

    /// The project an ingest key belongs to; `None` when it is unknown or malformed.
    pub async fn key_project(&self, key: &str) -> Result<Option<ProjectId>, Unavailable> {
        if !is_ingest_key(key) {
            return Ok(None);
        }
        self.lookup(Kind::Key, key).await
    }

    /// The project a token belongs to, with the token's hash (what a connection opened
    /// with it remembers); `None` when it is unknown or malformed.
    pub async fn token_project(
        &self,
        token: &str,
    ) -> Result<Option<(ProjectId, String)>, Unavailable> {
        if !is_token(token) {
            return Ok(None);
        }
        let hash = hash_token(token);
        Ok(self
            .lookup(Kind::Token, &hash)
            .await?
            .map(|project| (project, hash)))
    }

    /// Tells of every change of the directory's contents (read it with `borrow`).
    pub fn watch(&self) -> watch::Receiver<Directory> {
        self.0.directory.subscribe()
    }

    /// Unknown credentials remembered: (ingest keys, tokens).
    pub fn negative_entries(&self) -> (usize, usize) {
        (
            self.0.key_misses.lock().expect("misses poisoned").len(),
            self.0.token_misses.lock().expect("misses poisoned").len(),
        )
    }

    fn find(&self, kind: Kind, id: &str) -> Option<ProjectId> {
        let directory = self.0.directory.borrow();
        match kind {
            Kind::Key => directory.key_project(id),
            Kind::Token => directory.token_project(id),
        }
    }

    fn misses(&self, kind: Kind) -> std::sync::MutexGuard<'_, Misses> {
        match kind {
            Kind::Key => &self.0.key_misses,
            Kind::Token => &self.0.token_misses,
        }
        .lock()
        .expect("misses poisoned")
    }

    async fn lookup(&self, kind: Kind, id: &str) -> Result<Option<ProjectId>, Unavailable> {
        if let Some(project) = self.find(kind, id) {
            return Ok(Some(project));
        }
        if self.misses(kind).contains(id) {
            return Ok(None);
        }
        self.reload_after_now().await?;
        let found = self.find(kind, id);
        if found.is_none() {
            self.misses(kind).insert(id);
        }
        Ok(found)
    }

    /// Waits for a reload that starts after this call (shared with every miss meanwhile).
    async fn reload_after_now(&self) -> Result<(), Unavailable> {
        let mut finished = self.0.finished.subscribe();
        // A reload numbered above the latest started one starts after this line.
        let needed = self.0.started.load(Ordering::SeqCst) + 1;
        self.0.wanted_number.fetch_max(needed, Ordering::SeqCst);
        self.0.wanted.notify_one();
        let done = tokio::time::timeout(RELOAD_WAIT, finished.wait_for(|f| f.number >= needed))
            .await
            .ok()
            .and_then(|r| r.ok().map(|f| f.ok));
        match done {
            Some(true) => Ok(()),
            _ => Err(Unavailable),
        }
    }

    /// Reloads the directory every [`RELOAD_EVERY`], and sooner (at most every
    /// [`MIN_RELOAD_GAP`]) when a miss asks, until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut last_start: Option<Instant> = None;
        loop {
            let periodic = last_start.map_or_else(Instant::now, |at| at + RELOAD_EVERY);
            let cause = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(periodic) => "schedule",
                _ = self.0.wanted.notified() => {
                    // A reload started since the miss asked answers it (a wake-up left
                    // over from the misses it already served costs no query).
                    if self.0.wanted_number.load(Ordering::SeqCst)
                        <= self.0.started.load(Ordering::SeqCst)
                    {
                        continue;
                    }
                    if let Some(at) = last_start {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep_until(at + MIN_RELOAD_GAP) => {}
                        }
                    }
                    "miss"
                }
            };
            last_start = Some(Instant::now());
            let number = self.0.started.fetch_add(1, Ordering::SeqCst) + 1;
            metrics::counter!(crate::telemetry::CREDENTIAL_RELOADS, "cause" => cause).increment(1);
            let ok = self.reload().await;
            self.0.finished.send_replace(Finished { number, ok });
        }
    }

    /// One reload: the directory is replaced (and subscribers told) if it changed.
    async fn reload(&self) -> bool {
        match self.0.store.project_credentials().await {
            Ok(rows) => {
                let mut fresh = Directory::default();
                for (id, key, token_hash) in rows {
                    fresh.keys.insert(key, id);
                    fresh.tokens.insert(token_hash, id);
                }
                self.0.directory.send_if_modified(|current| {
                    if *current == fresh {
                        return false;
                    }
                    *current = fresh;
                    true
                });
                true
            }
            Err(e) => {
                use crate::log_limit::{Emit, check};
                match check("credentials reload") {
                    Emit::First => {
                        tracing::warn!(error = %e, "cannot reload the project credentials; keeping the last ones")
                    }
                    Emit::Summary(n) => {
                        tracing::warn!(error = %e, failures = n, "still cannot reload the project credentials")
                    }
                    Emit::Quiet => {}
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(is_ingest_key(&"a1".repeat(16)));
        assert!(!is_ingest_key(&"A1".repeat(16)), "uppercase");
        assert!(!is_ingest_key(&"a1".repeat(17)), "too long");
        assert!(!is_ingest_key("g".repeat(32).as_str()));
        assert!(is_token(&"0f".repeat(32)));
        assert!(!is_token(&"0f".repeat(16)));
    }

    #[test]
    fn the_negative_cache_is_bounded_and_forgets_the_oldest() {
        let mut m = Misses::new(3);
        for id in ["a", "b", "c", "a", "d"] {
            m.insert(id);
        }
        assert_eq!(m.len(), 3);
        assert!(!m.contains("a"), "the oldest went first");
        assert!(m.contains("b") && m.contains("c") && m.contains("d"));
    }
}

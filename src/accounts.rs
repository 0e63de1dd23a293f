//! Who a signed-in request is (SPEC §9): sign-in with its failed-attempt limit, sessions and
//! API tokens resolved to users, and membership checks, each answered from a short-lived
//! cache so that a request costs a hash lookup, not a database read.
//!
//! The cache holds an answer for [`FRESH`]: a removed user, session, token or membership
//! stops working within that time on every node (SPEC §9 allows 5 s), and at once on the
//! node that removed it.

use crate::model::Millis;
use crate::model::user::{self, User, UserId};
use crate::store::{ProjectId, Store, StoreError, hash_token};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a cached answer is used.
const FRESH: Duration = Duration::from_secs(2);
/// Answers cached at most per map; a full map is emptied (it refills from the database).
const CACHE_CAP: usize = 10_000;
/// Failed sign-ins for one e-mail within [`FAILURE_WINDOW`] after which it is refused.
pub(crate) const MAX_FAILURES: i64 = 10;
/// The window of the failed-attempt limit.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password verifications at once: each takes Argon2id's 19 MiB and tens of ms of a core,
/// so a flood of sign-ins waits for these rather than taking the server's memory and CPU.
const VERIFYING_AT_ONCE: usize = 2;

/// Why a sign-in failed.
#[derive(Debug)]
pub(crate) enum SignInError {
    /// Unknown e-mail or wrong password (the same answer for both).
    Wrong,
    /// Too many failures for this e-mail: retry after this many seconds.
    Locked(u64),
    /// The database failed.
    Store(StoreError),
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        SignInError::Store(e)
    }
}

/// A map of answers with the time each was read.
struct Cache<K, V>(Mutex<HashMap<K, (V, Instant)>>);

impl<K: std::hash::Hash + Eq, V: Clone> Cache<K, V> {
    fn new() -> Self {
        Cache(Mutex::new(HashMap::new()))
    }

    fn get(&self, key: &K) -> Option<V> {
        let map = self.0.lock().expect("cache lock");
        let (v, at) = map.get(key)?;
        (at.elapsed() < FRESH).then(|| v.clone())
    }

    fn put(&self, key: K, v: V) {
        let mut map = self.0.lock().expect("cache lock");
        if map.len() >= CACHE_CAP {
            map.clear();
        }
        map.insert(key, (v, Instant::now()));
    }

    fn forget(&self, key: &K) {
        self.0.lock().expect("cache lock").remove(key);
    }
}

/// The accounts service: cheap to clone.
#[derive(Clone)]
pub(crate) struct Accounts(Arc<Inner>);

struct Inner {
    store: Store,
    /// Session or API token hash → its user (`None`: no such live credential).
    credentials: Cache<String, Option<User>>,
    /// (user, project) → may use.
    members: Cache<(UserId, ProjectId), bool>,
    verifying: Semaphore,
}

impl Accounts {
    pub(crate) fn new(store: Store) -> Accounts {
        Accounts(Arc::new(Inner {
            store,
            credentials: Cache::new(),
            members: Cache::new(),
            verifying: Semaphore::new(VERIFYING_AT_ONCE),
        }))
    }

    /// Checks an e-mail and password; the user and a new session's secret. After
    /// [`MAX_FAILURES`] failures within [`FAILURE_WINDOW`] the e-mail is locked, a right
    /// password included, until the oldest of them leaves the window.
    pub(crate) async fn sign_in(
        &self,
        email: &str,
        password: &str,
    ) -> Result<(User, String), SignInError> {
        let email = user::normalize_email(email).unwrap_or_else(|_| email.to_owned());
        let since = self.not_locked(&email).await?;
        let found = self.0.store.user_by_email(&email).await?;
        let hash = found.as_ref().and_then(|(_, h)| h.clone());
        // An unknown e-mail is checked against a decoy, so that it takes as long as a
        // wrong password.
        let hash = hash.unwrap_or_else(|| user::decoy_hash().to_owned());
        if !self.verify(password, hash).await || found.is_none() {
            self.0.store.record_sign_in_failure(&email, since).await?;
            return Err(SignInError::Wrong);
        }
        let (user, _) = found.expect("checked above");
        let secret = user::new_session_secret();
        self.0
            .store
            .create_session(user.id, &hash_token(&secret))
            .await?;
        Ok((user, secret))
    }

    /// Changes the signed-in `user`'s password to `new` (already checked with
    /// `user::check_password`) when `current` is theirs; a wrong `current` counts toward
    /// the sign-in failure limit of their e-mail, and is refused while it is locked. Every
    /// session of the user ends but `keep` (the secret of the session that asked), at once
    /// on this node.
    pub(crate) async fn change_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
        keep: Option<&str>,
    ) -> Result<(), SignInError> {
        let since = self.not_locked(&user.email).await?;
        let found = self.0.store.user_by_email(&user.email).await?;
        let hash = found.and_then(|(_, h)| h);
        let hash = hash.unwrap_or_else(|| user::decoy_hash().to_owned());
        if !self.verify(current, hash).await {
            self.0
                .store
                .record_sign_in_failure(&user.email, since)
                .await?;
            return Err(SignInError::Wrong);
        }
        let new = new.to_owned();
        let hash = tokio::task::spawn_blocking(move || user::hash_password(&new))
            .await
            .expect("hashing a password does not fail");
        let keep = keep.map(hash_token);
        self.0
            .store
            .change_password(user.id, &hash, keep.as_deref())
            .await?;
        // Which sessions ended is not known here: every cached credential is read again.
        self.0.credentials.0.lock().expect("cache lock").clear();
        Ok(())
    }

    /// Signs in the user of an e-mail an identity provider verified: a new session's
    /// secret. An unknown e-mail becomes a user (not admin, no projects) when `may_create`;
    /// otherwise `None`.
    pub(crate) async fn sign_in_verified(
        &self,
        email: &str,
        may_create: bool,
    ) -> Result<Option<(User, String)>, StoreError> {
        let user = match self.0.store.user_by_email(email).await? {
            Some((user, _)) => user,
            None if may_create => match self.0.store.create_user(email, None, false).await? {
                crate::store::UserAdded::Added(user) => user,
                // Created meanwhile by another sign-in or the CLI.
                crate::store::UserAdded::Exists => match self.0.store.user_by_email(email).await? {
                    Some((user, _)) => user,
                    None => return Ok(None),
                },
            },
            None => return Ok(None),
        };
        let secret = user::new_session_secret();
        self.0
            .store
            .create_session(user.id, &hash_token(&secret))
            .await?;
        Ok(Some((user, secret)))
    }

    /// Refuses an e-mail with [`MAX_FAILURES`] failures within [`FAILURE_WINDOW`] (until the
    /// oldest of them leaves it); otherwise the window's start, for recording a failure.
    async fn not_locked(&self, email: &str) -> Result<Millis, SignInError> {
        let since = Millis(Millis::now().0 - FAILURE_WINDOW.as_millis() as i64);
        let (failures, oldest) = self.0.store.sign_in_failures(email, since).await?;
        if failures >= MAX_FAILURES {
            let until = oldest.unwrap_or(since.0) + FAILURE_WINDOW.as_millis() as i64;
            return Err(SignInError::Locked(
                ((until - Millis::now().0) / 1000).max(1) as u64,
            ));
        }
        Ok(since)
    }

    /// Verifies on the blocking pool, at most [`VERIFYING_AT_ONCE`] at a time.
    async fn verify(&self, password: &str, hash: String) -> bool {
        let Ok(_permit) = self.0.verifying.acquire().await else {
            return false;
        };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || user::verify_password(&password, &hash))
            .await
            .unwrap_or(false)
    }

    /// The user of a session secret, if it is live.
    pub(crate) async fn session_user(&self, secret: &str) -> Result<Option<User>, StoreError> {
        let hash = hash_token(secret);
        if let Some(u) = self.0.credentials.get(&hash) {
            return Ok(u);
        }
        let u = self.0.store.session_user(&hash).await?;
        self.0.credentials.put(hash, u.clone());
        Ok(u)
    }

    /// The user an API token acts for.
    pub(crate) async fn api_token_user(&self, token: &str) -> Result<Option<User>, StoreError> {
        let hash = hash_token(token);
        if let Some(u) = self.0.credentials.get(&hash) {
            return Ok(u);
        }
        let u = self.0.store.api_token_user(&hash).await?;
        self.0.credentials.put(hash, u.clone());
        Ok(u)
    }

    /// Ends a session (at once on this node).
    pub(crate) async fn sign_out(&self, secret: &str) -> Result<(), StoreError> {
        let hash = hash_token(secret);
        self.0.store.end_session(&hash).await?;
        self.0.credentials.forget(&hash);
        Ok(())
    }

    /// Deletes one of the user's API tokens; false when there was none with that id.
    pub(crate) async fn delete_api_token(&self, user: UserId, id: i64) -> Result<bool, StoreError> {
        let deleted = self.0.store.delete_api_token(user, id).await?;
        // Which hash it had is not kept: every cached credential is read again.
        self.0.credentials.0.lock().expect("cache lock").clear();
        Ok(deleted)
    }

    /// Whether the user may use the project (an admin: any).
    pub(crate) async fn may_use(
        &self,
        user: &User,
        project: ProjectId,
    ) -> Result<bool, StoreError> {
        if user.admin {
            return Ok(true);
        }
        let key = (user.id, project);
        if let Some(ok) = self.0.members.get(&key) {
            return Ok(ok);
        }
        let ok = self.0.store.may_use(user, project).await?;
        self.0.members.put(key, ok);
        Ok(ok)
    }

    /// Forgets cached memberships (after this node changed one).
    pub(crate) fn memberships_changed(&self) {
        self.0.members.0.lock().expect("cache lock").clear();
    }
}

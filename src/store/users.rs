//! People (SPEC §9): users, memberships, sessions, API tokens and failed sign-ins.

use super::db::{transaction, with_db};
use super::{Project, ProjectId, Store, StoreError, rows};
use crate::model::Millis;
use crate::model::user::{User, UserId};
use std::time::Duration;

/// How long a session lasts at most, and unused.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an unused session lasts.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);
/// A session's last use is written at most this often (not on every request).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

const USER_COLUMNS: &str = "id, email, admin";

/// What adding a user did.
#[derive(Debug, PartialEq, Eq)]
pub enum UserAdded {
    /// Created.
    Added(User),
    /// A user with that e-mail exists.
    Exists,
}

/// What adding a member did.
#[derive(Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Done (or already so).
    Done,
    /// No such project.
    NoProject,
    /// No such user.
    NoUser,
}

/// An API token as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiToken {
    /// Token id.
    pub id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// When it was made (unix ms).
    pub created: i64,
}

type UserRow = (i64, String, bool);

fn user((id, email, admin): UserRow) -> User {
    User { id, email, admin }
}

impl Store {
    /// Creates a user; `password_hash` `None` signs in by SSO only.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: Option<&str>,
        admin: bool,
    ) -> Result<UserAdded, StoreError> {
        const SQL: &str = "INSERT INTO users (email, password_hash, admin, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING RETURNING id";
        let id: Option<i64> = with_db!(self, db => sqlx::query_scalar(SQL)
            .bind(email)
            .bind(password_hash)
            .bind(admin)
            .bind(Millis::now().0)
            .fetch_optional(db.write_pool())
            .await?);
        Ok(id.map_or(UserAdded::Exists, |id| {
            UserAdded::Added(user((id, email.to_owned(), admin)))
        }))
    }

    /// Every user, by id.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        let rows: Vec<UserRow> =
            with_db!(self, db => sqlx::query_as(&sql).fetch_all(&db.pool).await?);
        Ok(rows.into_iter().map(user).collect())
    }

    /// The user with this (normalized) e-mail, with their password hash.
    pub async fn user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1");
        let row: Option<(i64, String, bool, Option<String>)> = with_db!(self, db =>
            sqlx::query_as(&sql).bind(email).fetch_optional(&db.pool).await?);
        Ok(row.map(|(id, email, admin, hash)| (user((id, email, admin)), hash)))
    }

    /// Sets a user's password and ends every session of theirs; the user, `None` when unknown.
    pub async fn set_password(&self, email: &str, hash: &str) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "UPDATE users SET password_hash = $1 WHERE email = $2 RETURNING {USER_COLUMNS}"
        );
        let row: Option<UserRow> = transaction!(self, db, tx => {
            let row: Option<UserRow> = sqlx::query_as(&sql)
                .bind(hash)
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((id, _, _)) = &row {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(*id).execute(&mut *tx).await?;
            }
            Ok(row)
        })?;
        Ok(row.map(user))
    }

    /// Sets a user's password (by id) and ends every session of theirs but the one whose
    /// secret hashes to `keep` (the one that asked for the change).
    pub async fn change_password(
        &self,
        user: UserId,
        hash: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        transaction!(self, db, tx => {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
                .bind(user)
                .bind(keep.unwrap_or(""))
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }

    /// Removes a user with their sessions, API tokens and memberships; false when unknown.
    pub async fn remove_user(&self, email: &str) -> Result<bool, StoreError> {
        const CHILDREN: [&str; 3] = [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM api_tokens WHERE user_id = $1",
            "DELETE FROM members WHERE user_id = $1",
        ];
        transaction!(self, db, tx => {
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(id) = id else { return Ok(false) };
            for sql in CHILDREN {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
            Ok(true)
        })
    }

    /// Makes the user a member of the project or not (either again: no change).
    pub async fn set_member(
        &self,
        project: ProjectId,
        email: &str,
        member: bool,
    ) -> Result<MemberChange, StoreError> {
        let sql = match member {
            true => {
                "INSERT INTO members (project_id, user_id) VALUES ($1, $2) \
                     ON CONFLICT (project_id, user_id) DO NOTHING"
            }
            false => "DELETE FROM members WHERE project_id = $1 AND user_id = $2",
        };
        self.change_member(project, email, sql).await
    }

    /// Runs `sql` with the project's and the user's ids once both are known to exist.
    async fn change_member(
        &self,
        project: ProjectId,
        email: &str,
        sql: &'static str,
    ) -> Result<MemberChange, StoreError> {
        transaction!(self, db, tx => {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE id = $1")
                .bind(project)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Ok(MemberChange::NoProject);
            }
            let user: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(user) = user else { return Ok(MemberChange::NoUser) };
            sqlx::query(sql).bind(project).bind(user).execute(&mut *tx).await?;
            Ok(MemberChange::Done)
        })
    }

    /// The members of a project, by e-mail.
    pub async fn list_members(&self, project: ProjectId) -> Result<Vec<User>, StoreError> {
        const SQL: &str = "SELECT u.id, u.email, u.admin FROM users u \
             JOIN members m ON m.user_id = u.id WHERE m.project_id = $1 ORDER BY u.email";
        let rows: Vec<UserRow> = with_db!(self, db => sqlx::query_as(SQL)
            .bind(project)
            .fetch_all(&db.pool)
            .await?);
        Ok(rows.into_iter().map(user).collect())
    }

    /// Whether the user may use the project: an admin, or one of its members.
    pub async fn may_use(&self, user: &User, project: ProjectId) -> Result<bool, StoreError> {
        if user.admin {
            return Ok(true);
        }
        const SQL: &str = "SELECT 1 FROM members WHERE project_id = $1 AND user_id = $2";
        let found: Option<i32> = with_db!(self, db => sqlx::query_scalar(SQL)
            .bind(project)
            .bind(user.id)
            .fetch_optional(&db.pool)
            .await?);
        Ok(found.is_some())
    }

    /// The projects the user may use (an admin: all), by id.
    pub async fn projects_of(&self, user: &User) -> Result<Vec<Project>, StoreError> {
        let all = "SELECT id, name, ingest_key FROM projects p WHERE $1 OR EXISTS \
             (SELECT 1 FROM members m WHERE m.project_id = p.id AND m.user_id = $2) ORDER BY id";
        with_db!(self, db => {
            let rows = sqlx::query(all).bind(user.admin).bind(user.id).fetch_all(&db.pool).await?;
            rows.iter().map(rows::project).collect()
        })
    }

    /// Starts a session whose secret hashes to `token_hash`.
    pub async fn create_session(&self, user: UserId, token_hash: &str) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO sessions (token_hash, user_id, created, last_used) \
             VALUES ($1, $2, $3, $3)";
        with_db!(self, db => {
            sqlx::query(SQL).bind(token_hash).bind(user).bind(Millis::now().0).execute(db.write_pool()).await?;
        });
        Ok(())
    }

    /// The user of a live session (not past [`SESSION_LIFETIME`], used within
    /// [`SESSION_IDLE`]); notes its use.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let now = Millis::now().0;
        let created_after = now - SESSION_LIFETIME.as_millis() as i64;
        let used_after = now - SESSION_IDLE.as_millis() as i64;
        const SQL: &str = "SELECT u.id, u.email, u.admin, s.last_used FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.created > $2 AND s.last_used > $3";
        let row: Option<(i64, String, bool, i64)> = with_db!(self, db => sqlx::query_as(SQL)
            .bind(token_hash)
            .bind(created_after)
            .bind(used_after)
            .fetch_optional(&db.pool)
            .await?);
        let Some((id, email, admin, last_used)) = row else {
            return Ok(None);
        };
        if now - last_used > TOUCH_EVERY.as_millis() as i64 {
            const TOUCH: &str = "UPDATE sessions SET last_used = $1 WHERE token_hash = $2";
            with_db!(self, db => {
                sqlx::query(TOUCH).bind(now).bind(token_hash).execute(db.write_pool()).await?;
            });
        }
        Ok(Some(user((id, email, admin))))
    }

    /// Ends a session.
    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        with_db!(self, db => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(db.write_pool()).await?;
        });
        Ok(())
    }

    /// Stores a new API token of the user (its hash only).
    pub async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        token_hash: &str,
    ) -> Result<ApiToken, StoreError> {
        const SQL: &str = "INSERT INTO api_tokens (user_id, name, token_hash, created) \
             VALUES ($1, $2, $3, $4) RETURNING id";
        let created = Millis::now().0;
        let id: i64 = with_db!(self, db => sqlx::query_scalar(SQL)
            .bind(user)
            .bind(db.fit_text(name))
            .bind(token_hash)
            .bind(created)
            .fetch_one(db.write_pool())
            .await?);
        Ok(ApiToken {
            id,
            name: name.to_owned(),
            created,
        })
    }

    /// The user's API tokens, by id.
    pub async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>, StoreError> {
        const SQL: &str = "SELECT id, name, created FROM api_tokens WHERE user_id = $1 ORDER BY id";
        let rows: Vec<(i64, String, i64)> = with_db!(self, db => sqlx::query_as(SQL)
            .bind(user)
            .fetch_all(&db.pool)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(id, name, created)| ApiToken { id, name, created })
            .collect())
    }

    /// Deletes one of the user's API tokens; false when they have none with that id.
    pub async fn delete_api_token(&self, user: UserId, id: i64) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2";
        let n = with_db!(self, db => sqlx::query(SQL)
            .bind(id)
            .bind(user)
            .execute(db.write_pool())
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// The user an API token acts for.
    pub async fn api_token_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        const SQL: &str = "SELECT u.id, u.email, u.admin FROM api_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1";
        let row: Option<UserRow> = with_db!(self, db => sqlx::query_as(SQL)
            .bind(token_hash)
            .fetch_optional(&db.pool)
            .await?);
        Ok(row.map(user))
    }

    /// Notes a failed sign-in for `email` and answers how many it has had since `since`
    /// (this one included); failures older than that are forgotten.
    pub async fn record_sign_in_failure(
        &self,
        email: &str,
        since: Millis,
    ) -> Result<i64, StoreError> {
        transaction!(self, db, tx => {
            sqlx::query("DELETE FROM sign_in_failures WHERE at <= $1").bind(since.0).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO sign_in_failures (email, at) VALUES ($1, $2)")
                .bind(db.fit_text(email))
                .bind(Millis::now().0)
                .execute(&mut *tx)
                .await?;
            Ok(sqlx::query_scalar("SELECT count(*) FROM sign_in_failures WHERE email = $1 AND at > $2")
                .bind(db.fit_text(email))
                .bind(since.0)
                .fetch_one(&mut *tx)
                .await?)
        })
    }

    /// Failed sign-ins for `email` since `since`, and the oldest of them (unix ms).
    pub async fn sign_in_failures(
        &self,
        email: &str,
        since: Millis,
    ) -> Result<(i64, Option<i64>), StoreError> {
        const SQL: &str =
            "SELECT count(*), min(at) FROM sign_in_failures WHERE email = $1 AND at > $2";
        with_db!(self, db => Ok(sqlx::query_as(SQL)
            .bind(db.fit_text(email))
            .bind(since.0)
            .fetch_one(&db.pool)
            .await?))
    }

    /// Deletes the sessions that have ended by `now` (past [`SESSION_LIFETIME`], or unused
    /// for [`SESSION_IDLE`]) and failed sign-ins older than `failures_before`; answers how
    /// many sessions went.
    pub async fn purge_sessions(
        &self,
        now: Millis,
        failures_before: Millis,
    ) -> Result<u64, StoreError> {
        let created_before = now.0 - SESSION_LIFETIME.as_millis() as i64;
        let used_before = now.0 - SESSION_IDLE.as_millis() as i64;
        transaction!(self, db, tx => {
            let ended = sqlx::query("DELETE FROM sessions WHERE created <= $1 OR last_used <= $2")
                .bind(created_before)
                .bind(used_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM sign_in_failures WHERE at <= $1")
                .bind(failures_before.0)
                .execute(&mut *tx)
                .await?;
            Ok(ended)
        })
    }
}

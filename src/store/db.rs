//! The two databases behind [`Store`](super::Store), and the one place their SQL differs.
//!
//! Every query in `store/` is written once, with `$n` placeholders (sqlx's SQLite driver
//! reads them as PostgreSQL does), inside [`with_db!`] or [`transaction!`]: each compiles
//! its body once per database, with `db` naming that database's handle
//! ([`SqliteDb`] or [`PgDb`]). The handles answer the same questions with the same names:
//! which pool reads, which writes, how a write transaction begins, how text is fit for a
//! column, and the locking clauses only PostgreSQL needs (SQLite's write transactions
//! hold the whole database's lock from `BEGIN IMMEDIATE` on).

use super::StoreError;
pub(super) use super::postgres::PgDb;
pub(super) use super::sqlite::SqliteDb;
use sqlx::{Database, Transaction};

/// One of the two databases.
pub(super) enum Db {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

/// Runs `$body` with `$db` bound to the store's database handle, compiled for each.
macro_rules! with_db {
    ($store:expr, $db:ident => $body:expr) => {
        match $store.db() {
            $crate::store::db::Db::Sqlite($db) => $body,
            $crate::store::db::Db::Postgres($db) => $body,
        }
    };
}

/// Runs `$body` in a write transaction `$tx` of the store's database (`$db` as in
/// [`with_db!`]): committed when it returns `Ok`, rolled back when it fails.
macro_rules! transaction {
    ($store:expr, $db:ident, $tx:ident => $body:expr) => {
        $crate::store::db::with_db!($store, $db => {
            #[allow(unused_mut)]
            let mut $tx = $db.begin().await?;
            let result: Result<_, $crate::store::StoreError> = async { $body }.await;
            $crate::store::db::finish($tx, result).await
        })
    };
}

pub(super) use {transaction, with_db};

/// Commits on success, rolls back on failure. A transaction dropped unfinished (its task
/// cancelled) is rolled back by sqlx before its connection is reused, so no lock outlives
/// it.
pub(super) async fn finish<DB: Database, T>(
    tx: Transaction<'static, DB>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

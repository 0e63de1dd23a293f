//! The two databases behind [`Store`](super::Store), and the one place their SQL differs.
//!
//! Every query in `store/` is written once, with `$n` placeholders (sqlx's SQLite driver
//! reads them as PostgreSQL does), inside [`with_db!`] or [`transaction!`]: each compiles
//! its body once per database, with `db` naming that database's handle
//! ([`SqliteDb`] or [`PgDb`]). The handles answer the same questions with the same names:
//! which pool reads, which writes, how a write transaction begins, how text is fit for a
//! column, and the locking clauses only PostgreSQL needs (SQLite's write transactions
//! hold the whole database's lock from `BEGIN IMMEDIATE` on).

pub(super) use super::postgres::PgDb;
pub(super) use super::sqlite::SqliteDb;

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
            $crate::store::finish($tx, result).await
        })
    };
}

pub(super) use {transaction, with_db};

//! Write transactions on the SQLite pool, shared by the jobs and models tables.

use sqlx::SqlitePool;

/// Start a transaction that will write. `BEGIN IMMEDIATE` takes SQLite's write lock up
/// front: a deferred transaction that reads first and writes later cannot upgrade its lock
/// while another connection writes, and SQLite then fails at once instead of waiting.
pub(super) async fn begin_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

//! The SQLite database (via sqlx): jobs (the durable queue), epochs, events and models.
//! Migrations live in `migrations/` and are embedded in the binary.

pub mod events;
pub mod jobs;
pub mod models;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use events::StoredEvent;
pub use jobs::{EpochMetrics, Job, JobStatus, Progress};
pub use models::ModelRecord;

/// Open (creating if needed) `<data_dir>/vggserve.db` in WAL mode and migrate it.
pub async fn connect(data_dir: &Path) -> anyhow::Result<SqlitePool> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let path = data_dir.join("vggserve.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        // WAL: readers never block the worker's writes, and a crash never tears a commit.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("opening database {}", path.display()))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("migrating the database")?;
    Ok(pool)
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Start a transaction that will write. `BEGIN IMMEDIATE` takes SQLite's write lock up
/// front: a deferred transaction that reads first and writes later cannot upgrade its lock
/// while another connection writes, and SQLite then fails at once instead of waiting.
pub(crate) async fn begin_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

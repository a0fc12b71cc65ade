//! [`SqliteStore`]: the [`Store`] on one machine, a SQLite file in WAL mode via sqlx.
//! Migrations live in `migrations/` and are embedded in the binary.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{
    events, jobs, models, CancelOutcome, EpochMetrics, Job, JobStatus, ModelRecord, NewJob,
    Outcome, Progress, Store, StoreError, StoredEvent,
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed) `<data_dir>/vggserve.db` in WAL mode and migrate it.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Self> {
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
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_job(
        &self,
        job: &NewJob,
        max_queued: i64,
    ) -> Result<(Job, StoredEvent), StoreError> {
        jobs::insert(&self.pool, job, max_queued).await
    }

    async fn job(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        jobs::get(&self.pool, id).await
    }

    async fn jobs(&self, status: Option<JobStatus>) -> Result<Vec<Job>, StoreError> {
        jobs::list(&self.pool, status).await
    }

    async fn queued_count(&self) -> Result<i64, StoreError> {
        jobs::queued_count(&self.pool).await
    }

    async fn active_jobs_on(&self, dataset: &str) -> Result<Vec<Uuid>, StoreError> {
        jobs::active_on(&self.pool, dataset).await
    }

    async fn claim_next(&self) -> Result<Option<(Job, StoredEvent)>, StoreError> {
        jobs::claim_next(&self.pool).await
    }

    async fn set_progress(&self, id: Uuid, progress: &Progress) -> Result<bool, StoreError> {
        jobs::set_progress(&self.pool, id, progress).await
    }

    async fn record_epoch(
        &self,
        id: Uuid,
        epoch: &EpochMetrics,
    ) -> Result<StoredEvent, StoreError> {
        jobs::record_epoch(&self.pool, id, epoch).await
    }

    async fn finish_job(
        &self,
        id: Uuid,
        status: JobStatus,
        outcome: &Outcome,
    ) -> Result<StoredEvent, StoreError> {
        jobs::finish(&self.pool, id, status, outcome).await
    }

    async fn request_cancel(&self, id: Uuid) -> Result<CancelOutcome, StoreError> {
        jobs::request_cancel(&self.pool, id).await
    }

    async fn interrupted(&self) -> Result<Vec<Job>, StoreError> {
        jobs::list(&self.pool, Some(JobStatus::Running)).await
    }

    async fn requeue_for_resume(&self, id: Uuid) -> Result<StoredEvent, StoreError> {
        jobs::requeue_for_resume(&self.pool, id).await
    }

    async fn events_after(&self, job: Uuid, after: i64) -> Result<Vec<StoredEvent>, StoreError> {
        events::after(&self.pool, job, after).await
    }

    async fn insert_model(&self, model: &ModelRecord) -> Result<(), StoreError> {
        models::insert(&self.pool, model).await
    }

    async fn model(&self, id: Uuid) -> Result<Option<ModelRecord>, StoreError> {
        models::get(&self.pool, id).await
    }

    async fn models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        models::list(&self.pool).await
    }

    async fn default_model(&self) -> Result<Option<ModelRecord>, StoreError> {
        models::default_model(&self.pool).await
    }

    async fn set_default_model(&self, id: Uuid) -> Result<bool, StoreError> {
        models::set_default(&self.pool, id).await
    }

    async fn delete_model(&self, id: Uuid) -> Result<Option<ModelRecord>, StoreError> {
        models::delete(&self.pool, id).await
    }
}

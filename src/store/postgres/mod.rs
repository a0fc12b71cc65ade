//! [`PostgresStore`]: the [`Store`] that API replicas and workers on many machines share.
//! Migrations live in `migrations/postgres/`. Workers claim with `FOR UPDATE SKIP LOCKED`
//! and hold jobs by lease on the database's clock (`queue`); recorded events fire a
//! trigger's `NOTIFY`, progress is a `NOTIFY` of its own, and one `LISTEN`ing connection
//! per process turns both into [`Notice`]s (`listen`). Rows and reads: `jobs`, `models`,
//! `datasets`.

mod chains;
mod datasets;
mod events;
mod jobs;
mod listen;
mod models;
mod queue;

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    CancelOutcome, ClaimSpec, DatasetRecord, EpochMetrics, Job, JobStatus, Lease, ModelRecord,
    NewJob, NewPipeline, Notice, Outcome, Pipeline, Progress, Settle, Store, StoreError,
    StoredEvent,
};

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    notices: broadcast::Sender<Notice>,
}

impl PostgresStore {
    /// Connect, migrate, and start listening for notices.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url.parse().context("reading --database-url")?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // An outage shows as failed requests and a failing /readyz, not as hangs.
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .context("migrating the database")?;
        let (notices, _) = broadcast::channel(1024);
        tokio::spawn(listen::relay(pool.clone(), notices.clone()));
        Ok(Self { pool, notices })
    }
}

impl PostgresStore {
    /// Set a job's status behind the store's back, as a version before chains ended jobs.
    #[cfg(test)]
    pub(crate) async fn force_status(&self, id: Uuid, status: JobStatus) {
        sqlx::query("UPDATE jobs SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id)
            .execute(&self.pool)
            .await
            .expect("updating a job's status");
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_jobs(
        &self,
        jobs: &[NewJob],
        pipeline: Option<&NewPipeline>,
        max_queued: i64,
    ) -> Result<Vec<(Job, StoredEvent)>, StoreError> {
        jobs::insert(&self.pool, jobs, pipeline, max_queued).await
    }

    async fn pipeline(&self, id: Uuid) -> Result<Option<Pipeline>, StoreError> {
        jobs::pipeline(&self.pool, id).await
    }

    async fn pipelines(&self) -> Result<Vec<Pipeline>, StoreError> {
        jobs::pipelines(&self.pool).await
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

    async fn claim_next(
        &self,
        spec: &ClaimSpec,
    ) -> Result<Option<(Job, Lease, StoredEvent)>, StoreError> {
        queue::claim_next(&self.pool, spec).await
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<bool, StoreError> {
        queue::heartbeat(&self.pool, lease, extend).await
    }

    async fn set_progress(&self, lease: &Lease, progress: &Progress) -> Result<bool, StoreError> {
        queue::set_progress(&self.pool, lease, progress).await
    }

    async fn record_epoch(
        &self,
        lease: &Lease,
        epoch: &EpochMetrics,
    ) -> Result<StoredEvent, StoreError> {
        queue::record_epoch(&self.pool, lease, epoch).await
    }

    async fn finish_job(
        &self,
        lease: &Lease,
        status: JobStatus,
        outcome: &Outcome,
        model: Option<&ModelRecord>,
    ) -> Result<StoredEvent, StoreError> {
        queue::finish(&self.pool, lease, status, outcome, model).await
    }

    async fn release(&self, lease: &Lease) -> Result<StoredEvent, StoreError> {
        queue::release(&self.pool, lease).await
    }

    async fn expired(&self) -> Result<Vec<Job>, StoreError> {
        queue::expired(&self.pool).await
    }

    async fn settle_expired(
        &self,
        id: Uuid,
        attempt: i64,
        settle: &Settle,
    ) -> Result<Option<StoredEvent>, StoreError> {
        queue::settle_expired(&self.pool, id, attempt, settle).await
    }

    async fn request_cancel(&self, id: Uuid) -> Result<CancelOutcome, StoreError> {
        queue::request_cancel(&self.pool, id).await
    }

    async fn settle_waiting(&self) -> Result<usize, StoreError> {
        chains::settle_waiting(&self.pool).await
    }

    async fn events_after(
        &self,
        jobs: &[Uuid],
        after: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        events::after(&self.pool, jobs, after).await
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

    async fn insert_dataset(&self, record: &DatasetRecord) -> Result<(), StoreError> {
        datasets::insert(&self.pool, record).await
    }

    async fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, StoreError> {
        datasets::get(&self.pool, name).await
    }

    async fn datasets(&self) -> Result<Vec<DatasetRecord>, StoreError> {
        datasets::list(&self.pool).await
    }

    async fn delete_dataset(&self, name: &str) -> Result<Option<DatasetRecord>, StoreError> {
        datasets::delete(&self.pool, name).await
    }
}

/// A timestamp as the API shows it (RFC 3339, milliseconds, UTC), like the SQLite store.
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

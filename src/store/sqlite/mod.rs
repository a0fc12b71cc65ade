//! [`SqliteStore`]: the [`Store`] on one machine, a SQLite file in WAL mode via sqlx (one
//! process, or an API process and worker processes beside it on the same disk). Migrations
//! live in `migrations/sqlite/` and are embedded in the binary. Rows and reads are in
//! `jobs`, `models`, `datasets` and `events`; the queue's moves in `queue`.

mod chains;
mod datasets;
mod events;
mod jobs;
mod models;
mod poll;
mod queue;
mod write;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    CancelOutcome, ClaimSpec, DatasetRecord, EpochMetrics, Job, JobStatus, Lease, ModelRecord,
    NewJob, NewPipeline, Notice, Outcome, Pipeline, Progress, Settle, Store, StoreError,
    StoredEvent,
};

/// How often another process's writes are looked for (see [`watch_others`]).
const POLL: Duration = Duration::from_millis(500);

/// The progress of running jobs last announced by this handle, whoever wrote it: the
/// poll announces only what differs, so progress written here is not announced twice.
type Announced = Arc<Mutex<HashMap<Uuid, Progress>>>;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    notices: broadcast::Sender<Notice>,
    progress: Announced,
}

impl SqliteStore {
    /// Open (creating it and its folder if needed) the database file `path` in WAL mode
    /// and migrate it.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database's folder {}", dir.display()))?;
        }
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
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("migrating the database")?;
        let (notices, _) = broadcast::channel(1024);
        let progress = Announced::default();
        tokio::spawn(poll::watch_others(
            pool.clone(),
            notices.clone(),
            progress.clone(),
        ));
        Ok(Self {
            pool,
            notices,
            progress,
        })
    }

    /// Set a job's status behind the store's back, as a version before chains ended jobs.
    #[cfg(test)]
    pub(crate) async fn force_status(&self, id: Uuid, status: JobStatus) {
        sqlx::query("UPDATE jobs SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .expect("updating a job's status");
    }

    /// Tell this process's subscribers at once (another process's hear it from the poll).
    fn announce(&self, event: &StoredEvent) {
        let _ = self.notices.send(Notice::Recorded {
            job_id: event.job_id,
            id: event.id,
        });
    }

    fn announced(&self, event: StoredEvent) -> StoredEvent {
        self.announce(&event);
        event
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
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
        let inserted = jobs::insert(&self.pool, jobs, pipeline, max_queued).await?;
        for (_, event) in &inserted {
            self.announce(event);
        }
        Ok(inserted)
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
        let claimed = queue::claim_next(&self.pool, spec).await?;
        Ok(claimed.map(|(job, lease, event)| (job, lease, self.announced(event))))
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<bool, StoreError> {
        queue::heartbeat(&self.pool, lease, extend).await
    }

    async fn set_progress(&self, lease: &Lease, progress: &Progress) -> Result<bool, StoreError> {
        let cancel = queue::set_progress(&self.pool, lease, progress).await?;
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(lease.job_id, progress.clone());
        let _ = self.notices.send(Notice::Progress {
            job_id: lease.job_id,
            progress: progress.clone(),
        });
        Ok(cancel)
    }

    async fn record_epoch(
        &self,
        lease: &Lease,
        epoch: &EpochMetrics,
    ) -> Result<StoredEvent, StoreError> {
        queue::record_epoch(&self.pool, lease, epoch)
            .await
            .map(|e| self.announced(e))
    }

    async fn finish_job(
        &self,
        lease: &Lease,
        status: JobStatus,
        outcome: &Outcome,
        model: Option<&ModelRecord>,
    ) -> Result<StoredEvent, StoreError> {
        queue::finish(&self.pool, lease, status, outcome, model)
            .await
            .map(|e| self.announced(e))
    }

    async fn release(&self, lease: &Lease) -> Result<StoredEvent, StoreError> {
        queue::release(&self.pool, lease)
            .await
            .map(|e| self.announced(e))
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
        let event = queue::settle_expired(&self.pool, id, attempt, settle).await?;
        Ok(event.map(|e| self.announced(e)))
    }

    async fn request_cancel(&self, id: Uuid) -> Result<CancelOutcome, StoreError> {
        let outcome = queue::request_cancel(&self.pool, id).await?;
        if let CancelOutcome::Cancelled(event) = &outcome {
            self.announce(event);
        }
        Ok(outcome)
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

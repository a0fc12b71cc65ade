//! Durable state behind one trait, [`Store`]: jobs (the queue), their epochs and events, and
//! trained-model records. Everything above reaches storage only through `Arc<dyn Store>`, so
//! a second backend (PostgreSQL for several workers) implements the same trait.
//! [`SqliteStore`] is the one-machine backend; its SQL lives in `jobs`, `models`, `events`.

mod events;
mod jobs;
mod models;
mod sqlite;
#[cfg(test)]
mod tests;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

pub use crate::domain::{
    EpochMetrics, Job, JobKind, JobStatus, ModelRecord, Outcome, Progress, StoredEvent,
};
pub use sqlite::SqliteStore;

/// The store as the layers above hold it.
pub type SharedStore = Arc<dyn Store>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the job queue is full ({0} jobs waiting)")]
    QueueFull(i64),
    /// A stored row that cannot be what it claims (an unknown status, unreadable JSON):
    /// reported, never papered over with a default.
    #[error("stored {what} is unreadable: {message}")]
    Corrupt { what: String, message: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

/// A job about to be queued.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub kind: JobKind,
    pub dataset: String,
    /// The resolved parameters, as JSON.
    pub params: serde_json::Value,
}

/// What a cancel request did.
#[derive(Debug)]
pub enum CancelOutcome {
    /// It was queued: now cancelled, with this status event.
    Cancelled(StoredEvent),
    /// It is running: the flag is set; the worker running it stops within a batch.
    Requested,
    /// It had already ended.
    AlreadyFinished(JobStatus),
    NotFound,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Queue a job with its `queued` event, unless `max_queued` jobs already wait.
    async fn insert_job(
        &self,
        job: &NewJob,
        max_queued: i64,
    ) -> Result<(Job, StoredEvent), StoreError>;
    async fn job(&self, id: Uuid) -> Result<Option<Job>, StoreError>;
    /// Newest first (at most 500), optionally only those in `status`, with their epochs.
    async fn jobs(&self, status: Option<JobStatus>) -> Result<Vec<Job>, StoreError>;
    async fn queued_count(&self) -> Result<i64, StoreError>;
    /// Jobs still queued or running on `dataset`, oldest first (a dataset in use cannot
    /// be deleted).
    async fn active_jobs_on(&self, dataset: &str) -> Result<Vec<Uuid>, StoreError>;
    /// Mark the oldest queued job running; return it with its `running` event.
    async fn claim_next(&self) -> Result<Option<(Job, StoredEvent)>, StoreError>;
    /// Record progress; answers whether a cancel has been requested for the job.
    async fn set_progress(&self, id: Uuid, progress: &Progress) -> Result<bool, StoreError>;
    /// Record an epoch and its event together: a replay never sees one without the other.
    async fn record_epoch(&self, id: Uuid, epoch: &EpochMetrics)
        -> Result<StoredEvent, StoreError>;
    /// Move a job to a terminal status and record the status event.
    async fn finish_job(
        &self,
        id: Uuid,
        status: JobStatus,
        outcome: &Outcome,
    ) -> Result<StoredEvent, StoreError>;
    async fn request_cancel(&self, id: Uuid) -> Result<CancelOutcome, StoreError>;
    /// Jobs left `running` by a previous process (crash, kill -9).
    async fn interrupted(&self) -> Result<Vec<Job>, StoreError>;
    /// Put an interrupted job back in the queue, keeping its place, to resume.
    async fn requeue_for_resume(&self, id: Uuid) -> Result<StoredEvent, StoreError>;
    /// A job's recorded events with id greater than `after`, in order.
    async fn events_after(&self, job: Uuid, after: i64) -> Result<Vec<StoredEvent>, StoreError>;

    async fn insert_model(&self, model: &ModelRecord) -> Result<(), StoreError>;
    async fn model(&self, id: Uuid) -> Result<Option<ModelRecord>, StoreError>;
    /// Newest first.
    async fn models(&self) -> Result<Vec<ModelRecord>, StoreError>;
    /// The model `/predict` uses without `?model=`: the one marked default, else the newest.
    async fn default_model(&self) -> Result<Option<ModelRecord>, StoreError>;
    /// Mark one model default (and no other). False if it does not exist.
    async fn set_default_model(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Remove the record; returns it so the caller can delete its artifact.
    async fn delete_model(&self, id: Uuid) -> Result<Option<ModelRecord>, StoreError>;
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

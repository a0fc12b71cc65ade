//! Durable state behind one trait, [`Store`]: jobs (the queue, with leases), their epochs
//! and events, trained-model records, and the records of datasets uploaded to a shared
//! artifact store. Everything above reaches storage only through
//! `Arc<dyn Store>`: [`SqliteStore`] is the one-machine backend, [`PostgresStore`] the one
//! several API replicas and workers share. [`open`] picks one from a database URL.
//!
//! The queue's contract, the same on both: a worker claims a queued job with a lease
//! (owner, expiry) and extends it by heartbeat; every write for a running job is fenced on
//! the lease ([`Lease`]), so a worker that lost it records nothing; a job whose lease
//! expired is settled by any worker ([`Store::expired`], [`Store::settle_expired`]).

#[cfg(test)]
mod chain_tests;
mod chains;
mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

pub use crate::domain::{
    DatasetRecord, EpochMetrics, Job, JobKind, JobStatus, Lease, ModelRecord, Notice, Outcome,
    Pipeline, Progress, StoredEvent,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Open the store a `--database-url` names: `sqlite://PATH` (a file, created if missing)
/// or `postgres://…`; migrated either way.
pub async fn open(url: &str) -> anyhow::Result<SharedStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else {
        anyhow::bail!("--database-url must start with sqlite:// or postgres://, got {url:?}")
    }
}

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
    /// The job's lease passed to another worker (or the job left `running`): the write was
    /// refused and the job must stop here.
    #[error("job {0} is no longer held by this worker (its lease expired and passed on)")]
    LeaseLost(Uuid),
    /// A job named as a dependency (by parameter `field` of new job `job`) has already
    /// failed or been cancelled: the new job could never run.
    #[error("{reason}")]
    DependencyEnded {
        job: Uuid,
        field: String,
        reason: String,
    },
    /// A unique name (a dataset's) is already taken.
    #[error("{0:?} is already taken")]
    Taken(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// The database could not be reached (down, restarting, network cut): worth retrying,
    /// unlike a refused write (a lost lease, a constraint) or a corrupt row.
    pub fn is_transient(&self) -> bool {
        let Self::Database(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => true,
            // SQLSTATE classes 08 (connection exception) and 57 (operator intervention:
            // the server shutting down or restarting).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
            _ => false,
        }
    }

    /// An insert's error, as [`StoreError::Taken`] when it broke a unique constraint.
    pub(crate) fn taken(error: sqlx::Error, name: &str) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Taken(name.to_owned()),
            _ => Self::Database(error),
        }
    }

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
    /// Jobs it waits on: it is queued `waiting` unless every one has already succeeded.
    pub depends_on: Vec<Dependency>,
    /// Its step's name, when it is queued as part of a pipeline.
    pub step: Option<String>,
}

/// One parameter of a new job that names a job which may not have finished yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub job: Uuid,
    /// The parameter: `features`, `from_model` or `model`.
    pub field: String,
    /// The parameter becomes the model `job` registers once it succeeds (it names the job
    /// until then); otherwise it names the job itself.
    pub takes_model: bool,
}

/// A pipeline about to be queued with its jobs.
#[derive(Debug, Clone)]
pub struct NewPipeline {
    pub id: Uuid,
    pub recipe: Option<i64>,
}

/// Which queued jobs a worker takes, and how long its claim holds without a heartbeat.
#[derive(Debug, Clone)]
pub struct ClaimSpec {
    /// Unique per worker process (fencing compares it).
    pub owner: String,
    /// Kinds this worker runs; empty: every kind.
    pub kinds: Vec<JobKind>,
    pub lease: Duration,
}

/// What to do with a job whose worker was lost.
#[derive(Debug, Clone)]
pub enum Settle {
    /// Back in the queue, keeping its place, to resume from its checkpoint.
    Requeue,
    /// Failed with this reason (its recorded epochs kept).
    Fail(String),
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
    /// Notices of every recorded event and progress report, from any process using this
    /// store. A receiver that falls behind gets `Lagged` and must re-read the store.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Notice>;

    /// Queue a job with its `queued` (or `waiting`) event, unless `max_queued` jobs already
    /// wait.
    async fn insert_job(
        &self,
        job: &NewJob,
        max_queued: i64,
    ) -> Result<(Job, StoredEvent), StoreError> {
        let mut inserted = self
            .insert_jobs(std::slice::from_ref(job), None, max_queued)
            .await?;
        inserted
            .pop()
            .ok_or_else(|| StoreError::corrupt(format!("job {}", job.id), "not inserted"))
    }
    /// Queue jobs together (all or none), each `waiting` on its dependencies unless they
    /// have all succeeded, and `queued` otherwise; a job may depend on one before it in
    /// `jobs`. With `pipeline`, the jobs are its steps. Refused when the queue would hold
    /// more than `max_queued` queued and waiting jobs, or ([`StoreError::DependencyEnded`])
    /// when a dependency has failed or been cancelled.
    async fn insert_jobs(
        &self,
        jobs: &[NewJob],
        pipeline: Option<&NewPipeline>,
        max_queued: i64,
    ) -> Result<Vec<(Job, StoredEvent)>, StoreError>;
    /// A pipeline with its jobs (in the order they were queued).
    async fn pipeline(&self, id: Uuid) -> Result<Option<Pipeline>, StoreError>;
    /// Newest first, at most 100.
    async fn pipelines(&self) -> Result<Vec<Pipeline>, StoreError>;
    async fn job(&self, id: Uuid) -> Result<Option<Job>, StoreError>;
    /// Newest first (at most 500), optionally only those in `status`, with their epochs.
    async fn jobs(&self, status: Option<JobStatus>) -> Result<Vec<Job>, StoreError>;
    async fn queued_count(&self) -> Result<i64, StoreError>;
    /// Jobs still waiting, queued or running on `dataset`, oldest first (a dataset in use cannot
    /// be deleted).
    async fn active_jobs_on(&self, dataset: &str) -> Result<Vec<Uuid>, StoreError>;
    /// Mark the oldest queued job of `spec.kinds` running under a new lease held by
    /// `spec.owner`; return it with the lease and its `running` event.
    async fn claim_next(
        &self,
        spec: &ClaimSpec,
    ) -> Result<Option<(Job, Lease, StoredEvent)>, StoreError>;
    /// Extend the lease by `lease` from now; answers whether a cancel has been requested.
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<bool, StoreError>;
    /// Record progress; answers whether a cancel has been requested for the job.
    async fn set_progress(&self, lease: &Lease, progress: &Progress) -> Result<bool, StoreError>;
    /// Record an epoch and its event together: a replay never sees one without the other.
    async fn record_epoch(
        &self,
        lease: &Lease,
        epoch: &EpochMetrics,
    ) -> Result<StoredEvent, StoreError>;
    /// Move a job to a terminal status, registering the model it trained (if any) in the
    /// same transaction, and record the status event.
    async fn finish_job(
        &self,
        lease: &Lease,
        status: JobStatus,
        outcome: &Outcome,
        model: Option<&ModelRecord>,
    ) -> Result<StoredEvent, StoreError>;
    /// Give a running job back to the queue (the worker is shutting down): it resumes from
    /// its checkpoint on the next claim, and this claim does not count as a lost worker's
    /// (or, if its cancel was requested meanwhile, it is cancelled).
    async fn release(&self, lease: &Lease) -> Result<StoredEvent, StoreError>;
    /// Running jobs whose lease has expired: their worker died, froze or lost the network.
    async fn expired(&self) -> Result<Vec<Job>, StoreError>;
    /// Settle a job found by [`Store::expired`] if it is still that claim (`attempt`) and
    /// its lease is still expired (else `None`: its worker came back, or another worker
    /// settled it first). A job whose cancel was requested is cancelled, not requeued.
    async fn settle_expired(
        &self,
        id: Uuid,
        attempt: i64,
        settle: &Settle,
    ) -> Result<Option<StoredEvent>, StoreError>;
    async fn request_cancel(&self, id: Uuid) -> Result<CancelOutcome, StoreError>;
    /// Settle jobs left waiting on dependencies that have all ended (see
    /// `chains::settle_stranded`); answers how many events that recorded.
    async fn settle_waiting(&self) -> Result<usize, StoreError>;
    /// The recorded events of `jobs` with id greater than `after`, in order.
    async fn events_after(&self, jobs: &[Uuid], after: i64)
        -> Result<Vec<StoredEvent>, StoreError>;

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

    /// Register a dataset uploaded to the artifact store; [`StoreError::Taken`] if its name is.
    async fn insert_dataset(&self, record: &DatasetRecord) -> Result<(), StoreError>;
    async fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, StoreError>;
    /// By name.
    async fn datasets(&self) -> Result<Vec<DatasetRecord>, StoreError>;
    /// Remove the record; returns it so the caller can delete its files.
    async fn delete_dataset(&self, name: &str) -> Result<Option<DatasetRecord>, StoreError>;
}

/// A status event's data: `{"status"}`, with the error when the outcome has one.
pub(crate) fn status_event(status: JobStatus, outcome: &Outcome) -> serde_json::Value {
    let mut data = serde_json::json!({"status": status.as_str()});
    if let Some(error) = &outcome.error {
        data["error"] = serde_json::Value::String(error.clone());
    }
    data
}

/// The event already recorded for exactly this epoch, if any: a write retried after its
/// commit's answer was lost (the database went away in between) finds it and succeeds.
pub(crate) fn same_epoch_event(
    job_id: Uuid,
    recorded: Vec<(i64, serde_json::Value)>,
    data: &serde_json::Value,
) -> Option<StoredEvent> {
    recorded
        .into_iter()
        .find(|(_, recorded)| recorded == data)
        .map(|(id, data)| StoredEvent {
            id,
            job_id,
            kind: "epoch".into(),
            data,
        })
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

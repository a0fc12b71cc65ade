//! The nouns every layer shares: jobs and their status, epochs, progress, recorded events
//! and trained-model records. Plain data with no behaviour beyond naming itself, so that the
//! store (below) and the job system, recipes and API (above) agree on one definition.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where a job is in its life. Stored as its snake_case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum JobStatus {
    /// Queued behind jobs it depends on: claimable once every one has succeeded.
    Waiting,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// What a job does. Stored as its snake_case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum JobKind {
    ExtractFeatures,
    Train,
    FineTune,
    Evaluate,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Work done in the current phase of a running job.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Progress {
    pub done: i64,
    pub total: i64,
    /// What is counted: "images", "steps", "epochs", …
    pub unit: String,
}

/// One epoch's metrics, as Keras's `history` has them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EpochMetrics {
    pub epoch: i64,
    pub loss: f64,
    pub acc: f64,
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    /// Wall-clock seconds the epoch took.
    pub seconds: f64,
    /// The best epoch so far by the run's `monitor`, this one included (absent for epochs
    /// recorded before best epochs were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<i64>,
}

/// A job as stored and as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: Uuid,
    pub kind: JobKind,
    pub dataset: Option<String>,
    pub status: JobStatus,
    /// The resolved parameters the job runs with (every default filled in).
    #[schema(value_type = Object)]
    pub params: Value,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub progress: Progress,
    pub epochs: Vec<EpochMetrics>,
    /// What the job produced (kind-specific JSON), once it has succeeded.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times a worker has claimed the job (more than one after a worker was lost
    /// and another resumed it, or a worker gave it back at shutdown).
    pub attempts: i64,
    /// Claims given back at shutdown: `attempts - releases` workers were lost.
    #[serde(skip)]
    pub releases: i64,
    /// The jobs this one waits on (its `features`, `from_model` or `model` named them
    /// before they had finished), in the order of those parameters.
    pub depends_on: Vec<Uuid>,
    /// The pipeline that queued it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Uuid>,
    /// Its step's name in that pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// A worker's hold on a running job. Every write the worker makes for the job names it and
/// is refused once the lease has passed to another worker (fencing): `attempt` is the
/// job's claim count when this worker claimed it, so an old holder never matches again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: Uuid,
    pub owner: String,
    pub attempt: i64,
}

/// What the store tells every API process as it happens, whichever process wrote it: a
/// recorded event (read it back by id) or live progress (never stored as an event).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Recorded { job_id: Uuid, id: i64 },
    Progress { job_id: Uuid, progress: Progress },
}

impl Notice {
    pub fn job_id(&self) -> Uuid {
        match self {
            Self::Recorded { job_id, .. } | Self::Progress { job_id, .. } => *job_id,
        }
    }
}

/// How a job ended, as recorded with its terminal status.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub result: Option<Value>,
    pub model_id: Option<Uuid>,
    pub error: Option<String>,
}

/// A recorded job event (status change or epoch), replayable to SSE clients. Ids are
/// global and increasing, so `Last-Event-ID` is a position in the record.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub id: i64,
    pub job_id: Uuid,
    pub kind: String,
    pub data: Value,
}

/// A trained model: an immutable record pointing at its artifact under the data dir.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelRecord {
    pub id: Uuid,
    /// Which recipe made it: `features`, `augmented` or `fine_tuned`.
    pub recipe: String,
    pub dataset: String,
    /// Class names in label order.
    pub classes: Vec<String>,
    #[schema(value_type = Object)]
    pub params: Value,
    /// The last epoch's metrics.
    #[schema(value_type = Object)]
    pub metrics: Value,
    #[schema(value_type = Option<Object>)]
    pub test_metrics: Option<Value>,
    pub source_job: Uuid,
    pub created_at: String,
    /// Artifact path relative to the data dir.
    #[serde(skip)]
    pub artifact: String,
    #[serde(skip)]
    pub artifact_sha256: String,
    /// How to rebuild the model (head shape, classes, input size, preprocessing).
    #[schema(value_type = Object)]
    pub config: Value,
    pub is_default: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for status in [
            JobStatus::Waiting,
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ] {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                Value::from(status.as_str())
            );
        }
        assert_eq!(JobKind::FineTune.as_str(), "fine_tune");
        assert_eq!("extract_features".parse(), Ok(JobKind::ExtractFeatures));
        assert!("finished".parse::<JobStatus>().is_err());
        assert!("dance".parse::<JobKind>().is_err());
    }
}

/// A dataset uploaded to a shared artifact store: the name users give it, the version whose
/// files are under `datasets/<version>/<name>/` in the store (a name deleted and uploaded
/// again gets a new version, so no machine keeps serving the old files), and each split's
/// classes and image count, so that listing downloads nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRecord {
    pub name: String,
    pub version: Uuid,
    /// `{split: {"classes": [...], "images": n}}`, as `GET /v1/datasets` shows it.
    pub splits: Value,
    pub created_at: String,
}

/// Jobs queued together by `POST /v1/pipelines`, each a named step waiting on the ones
/// it uses: the seed's recipe as one chain, or the user's own.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pipeline {
    pub id: Uuid,
    /// 1, 2 or 3 when the pipeline is one of the seed's recipes.
    pub recipe: Option<i64>,
    pub created_at: String,
    /// Where the chain stands: `succeeded` once every step has, `failed` or `cancelled`
    /// once every step has ended and one did not succeed, else the furthest a step got
    /// (`running`, then `queued`, then `waiting`).
    pub status: JobStatus,
    /// Its jobs in the order they were queued (each with its `step`).
    pub jobs: Vec<Job>,
}

impl Pipeline {
    /// The chain's status from its jobs' (see [`Pipeline::status`]).
    pub fn status_of(jobs: &[Job]) -> JobStatus {
        let has = |status: JobStatus| jobs.iter().any(|j| j.status == status);
        if jobs.iter().all(|j| j.status.is_terminal()) {
            if has(JobStatus::Failed) {
                JobStatus::Failed
            } else if has(JobStatus::Cancelled) {
                JobStatus::Cancelled
            } else {
                JobStatus::Succeeded
            }
        } else if has(JobStatus::Running) {
            JobStatus::Running
        } else if has(JobStatus::Queued) {
            JobStatus::Queued
        } else {
            // Some ended, the rest wait: the next one is about to be promoted.
            JobStatus::Waiting
        }
    }
}

//! Jobs, their epochs and their events. The jobs table is the queue (FIFO by `seq`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::events::{insert_event, StoredEvent};
use super::now;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    pub done: i64,
    pub total: i64,
    pub unit: String,
}

/// One epoch's metrics, as Keras's `history` has them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    pub epoch: i64,
    pub loss: f64,
    pub acc: f64,
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub dataset: Option<String>,
    pub status: JobStatus,
    pub params: Value,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub progress: Progress,
    pub epochs: Vec<EpochMetrics>,
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobStoreError {
    #[error("the job queue is full ({0} jobs waiting)")]
    QueueFull(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const JOB_COLUMNS: &str =
    "id, kind, dataset, status, params, created_at, started_at, finished_at, \
    progress_done, progress_total, progress_unit, result, model_id, error";

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Job, sqlx::Error> {
    let json = |column: &str| -> Result<Option<Value>, sqlx::Error> {
        let text: Option<String> = row.try_get(column)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    };
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let model_id: Option<String> = row.try_get("model_id")?;
    Ok(Job {
        id: Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        kind: row.try_get("kind")?,
        dataset: row.try_get("dataset")?,
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        params: json("params")?.unwrap_or(Value::Null),
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        progress: Progress {
            done: row.try_get("progress_done")?,
            total: row.try_get("progress_total")?,
            unit: row.try_get("progress_unit")?,
        },
        epochs: Vec::new(),
        result: json("result")?,
        model_id: model_id.and_then(|m| Uuid::parse_str(&m).ok()),
        error: row.try_get("error")?,
    })
}

/// Queue a job, unless `max_queued` jobs already wait.
pub async fn insert(
    pool: &SqlitePool,
    id: Uuid,
    kind: &str,
    dataset: Option<&str>,
    params: &Value,
    max_queued: i64,
) -> Result<Job, JobStoreError> {
    let mut tx = super::begin_write(pool).await?;
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
        .fetch_one(&mut *tx)
        .await?;
    if queued >= max_queued {
        return Err(JobStoreError::QueueFull(queued));
    }
    sqlx::query(
        "INSERT INTO jobs (id, kind, dataset, status, params, created_at) VALUES (?, ?, ?, 'queued', ?, ?)",
    )
    .bind(id.to_string())
    .bind(kind)
    .bind(dataset)
    .bind(params.to_string())
    .bind(now())
    .execute(&mut *tx)
    .await?;
    insert_event(
        &mut tx,
        id,
        "status",
        &serde_json::json!({"status": "queued"}),
    )
    .await?;
    tx.commit().await?;
    Ok(get(pool, id).await?.expect("job just inserted"))
}

pub async fn get(pool: &SqlitePool, id: Uuid) -> Result<Option<Job>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut job = job_from_row(&row)?;
    job.epochs = epochs(pool, id).await?;
    Ok(Some(job))
}

/// Newest first, optionally only those in `status`.
pub async fn list(pool: &SqlitePool, status: Option<JobStatus>) -> Result<Vec<Job>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1) ORDER BY seq DESC LIMIT 500"
    ))
    .bind(status.map(JobStatus::as_str))
    .fetch_all(pool)
    .await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let mut job = job_from_row(&row)?;
        job.epochs = epochs(pool, job.id).await?;
        jobs.push(job);
    }
    Ok(jobs)
}

pub async fn epochs(pool: &SqlitePool, id: Uuid) -> Result<Vec<EpochMetrics>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT epoch, loss, acc, val_loss, val_acc, seconds FROM epochs WHERE job_id = ? ORDER BY epoch",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(EpochMetrics {
                epoch: row.try_get("epoch")?,
                loss: row.try_get("loss")?,
                acc: row.try_get("acc")?,
                val_loss: row.try_get("val_loss")?,
                val_acc: row.try_get("val_acc")?,
                seconds: row.try_get("seconds")?,
            })
        })
        .collect()
}

pub async fn queued_count(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
        .fetch_one(pool)
        .await
}

/// Mark the oldest queued job running and return it with its status event id.
pub async fn claim_next(pool: &SqlitePool) -> Result<Option<(Job, StoredEvent)>, sqlx::Error> {
    let mut tx = super::begin_write(pool).await?;
    let id: Option<String> = sqlx::query_scalar(
        "UPDATE jobs SET status = 'running', started_at = ? \
         WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1) RETURNING id",
    )
    .bind(now())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id.and_then(|i| Uuid::parse_str(&i).ok()) else {
        return Ok(None);
    };
    let event = insert_event(
        &mut tx,
        id,
        "status",
        &serde_json::json!({"status": "running"}),
    )
    .await?;
    tx.commit().await?;
    Ok(get(pool, id).await?.map(|job| (job, event)))
}

pub async fn set_progress(
    pool: &SqlitePool,
    id: Uuid,
    progress: &Progress,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET progress_done = ?, progress_total = ?, progress_unit = ? WHERE id = ?",
    )
    .bind(progress.done)
    .bind(progress.total)
    .bind(&progress.unit)
    .bind(id.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// Record an epoch and its event together: a replay never sees one without the other.
pub async fn record_epoch(
    pool: &SqlitePool,
    id: Uuid,
    epoch: &EpochMetrics,
) -> Result<StoredEvent, sqlx::Error> {
    let mut tx = super::begin_write(pool).await?;
    sqlx::query(
        "INSERT INTO epochs (job_id, epoch, loss, acc, val_loss, val_acc, seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id.to_string())
    .bind(epoch.epoch)
    .bind(epoch.loss)
    .bind(epoch.acc)
    .bind(epoch.val_loss)
    .bind(epoch.val_acc)
    .bind(epoch.seconds)
    .execute(&mut *tx)
    .await?;
    let event = insert_event(
        &mut tx,
        id,
        "epoch",
        &serde_json::to_value(epoch).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// How a job ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub result: Option<Value>,
    pub model_id: Option<Uuid>,
    pub error: Option<String>,
}

/// Move a job to a terminal status and record the status event.
pub async fn finish(
    pool: &SqlitePool,
    id: Uuid,
    status: JobStatus,
    outcome: &Outcome,
) -> Result<StoredEvent, sqlx::Error> {
    let mut tx = super::begin_write(pool).await?;
    sqlx::query(
        "UPDATE jobs SET status = ?, finished_at = ?, result = ?, model_id = ?, error = ? WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(now())
    .bind(outcome.result.as_ref().map(Value::to_string))
    .bind(outcome.model_id.map(|m| m.to_string()))
    .bind(&outcome.error)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    let mut data = serde_json::json!({"status": status.as_str()});
    if let Some(error) = &outcome.error {
        data["error"] = Value::String(error.clone());
    }
    let event = insert_event(&mut tx, id, "status", &data).await?;
    tx.commit().await?;
    Ok(event)
}

/// What a cancel request did.
#[derive(Debug)]
pub enum CancelOutcome {
    /// It was queued: now cancelled, with this status event.
    Cancelled(StoredEvent),
    /// It is running: the worker will stop it within a batch.
    Requested,
    /// It had already ended.
    AlreadyFinished(JobStatus),
    NotFound,
}

pub async fn request_cancel(pool: &SqlitePool, id: Uuid) -> Result<CancelOutcome, sqlx::Error> {
    let mut tx = super::begin_write(pool).await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(status) = status.as_deref().and_then(JobStatus::parse) else {
        return Ok(CancelOutcome::NotFound);
    };
    let outcome = match status {
        JobStatus::Queued => {
            sqlx::query("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?")
                .bind(now())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            let event = insert_event(
                &mut tx,
                id,
                "status",
                &serde_json::json!({"status": "cancelled"}),
            )
            .await?;
            CancelOutcome::Cancelled(event)
        }
        JobStatus::Running => {
            sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ?")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            CancelOutcome::Requested
        }
        done => CancelOutcome::AlreadyFinished(done),
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Jobs left `running` by a previous process (crash, kill -9). Returned so the caller can
/// resume or fail them; never left running.
pub async fn interrupted(pool: &SqlitePool) -> Result<Vec<Job>, sqlx::Error> {
    list(pool, Some(JobStatus::Running)).await
}

/// Put an interrupted job back at the front of the queue to resume from its checkpoint.
pub async fn requeue_for_resume(pool: &SqlitePool, id: Uuid) -> Result<StoredEvent, sqlx::Error> {
    let mut tx = super::begin_write(pool).await?;
    // A resumed job keeps its place: it is claimed before anything queued after it.
    sqlx::query("UPDATE jobs SET status = 'queued' WHERE id = ?")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    let event = insert_event(
        &mut tx,
        id,
        "status",
        &serde_json::json!({"status": "queued", "resumed": true}),
    )
    .await?;
    tx.commit().await?;
    Ok(event)
}

//! Jobs and their epochs. The jobs table is the queue (FIFO by `seq`); every status change
//! is recorded with its event in one transaction.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::write::begin_write;
use super::{
    events, now, CancelOutcome, EpochMetrics, Job, JobStatus, NewJob, Outcome, Progress,
    StoreError, StoredEvent,
};

const JOB_COLUMNS: &str =
    "id, kind, dataset, status, params, created_at, started_at, finished_at, \
    progress_done, progress_total, progress_unit, result, model_id, error";

fn from_row(row: &SqliteRow) -> Result<Job, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |column: &str, e: &dyn std::fmt::Display| {
        StoreError::corrupt(format!("job {id} {column}"), e)
    };
    let json = |column: &str| -> Result<Option<Value>, StoreError> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| corrupt(column, &e))
    };
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let model_id: Option<String> = row.try_get("model_id")?;
    Ok(Job {
        id: Uuid::parse_str(&id).map_err(|e| corrupt("id", &e))?,
        kind: kind.parse().map_err(|e| corrupt("kind", &e))?,
        dataset: row.try_get("dataset")?,
        status: status.parse().map_err(|e| corrupt("status", &e))?,
        params: json("params")?.ok_or_else(|| corrupt("params", &"missing"))?,
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
        model_id: model_id
            .map(|m| Uuid::parse_str(&m))
            .transpose()
            .map_err(|e| corrupt("model_id", &e))?,
        error: row.try_get("error")?,
    })
}

fn epoch_from_row(row: &SqliteRow) -> Result<EpochMetrics, sqlx::Error> {
    Ok(EpochMetrics {
        epoch: row.try_get("epoch")?,
        loss: row.try_get("loss")?,
        acc: row.try_get("acc")?,
        val_loss: row.try_get("val_loss")?,
        val_acc: row.try_get("val_acc")?,
        seconds: row.try_get("seconds")?,
    })
}

pub(super) async fn insert(
    pool: &SqlitePool,
    job: &NewJob,
    max_queued: i64,
) -> Result<(Job, StoredEvent), StoreError> {
    let mut tx = begin_write(pool).await?;
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
        .fetch_one(&mut *tx)
        .await?;
    if queued >= max_queued {
        return Err(StoreError::QueueFull(queued));
    }
    sqlx::query(
        "INSERT INTO jobs (id, kind, dataset, status, params, created_at) VALUES (?, ?, ?, 'queued', ?, ?)",
    )
    .bind(job.id.to_string())
    .bind(job.kind.as_str())
    .bind(&job.dataset)
    .bind(job.params.to_string())
    .bind(now())
    .execute(&mut *tx)
    .await?;
    let event = events::insert(
        &mut tx,
        job.id,
        "status",
        &events::status(JobStatus::Queued),
    )
    .await?;
    tx.commit().await?;
    let stored = get(pool, job.id)
        .await?
        .ok_or_else(|| StoreError::corrupt(format!("job {}", job.id), "vanished after insert"))?;
    Ok((stored, event))
}

pub(super) async fn get(pool: &SqlitePool, id: Uuid) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut job = from_row(&row)?;
    let rows = sqlx::query(
        "SELECT epoch, loss, acc, val_loss, val_acc, seconds FROM epochs WHERE job_id = ? ORDER BY epoch",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await?;
    job.epochs = rows.iter().map(epoch_from_row).collect::<Result<_, _>>()?;
    Ok(Some(job))
}

/// Newest first, at most 500, with their epochs: two queries whatever the number of jobs.
pub(super) async fn list(
    pool: &SqlitePool,
    status: Option<JobStatus>,
) -> Result<Vec<Job>, StoreError> {
    const PAGE: &str =
        "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1) ORDER BY seq DESC LIMIT 500";
    let status = status.map(JobStatus::as_str);
    let rows = sqlx::query(&PAGE.replace("{COLUMNS}", JOB_COLUMNS))
        .bind(status)
        .fetch_all(pool)
        .await?;
    let mut jobs = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let epoch_rows = sqlx::query(&format!(
        "SELECT job_id, epoch, loss, acc, val_loss, val_acc, seconds FROM epochs \
         WHERE job_id IN (SELECT id FROM ({})) ORDER BY job_id, epoch",
        PAGE.replace("{COLUMNS}", "id, seq")
    ))
    .bind(status)
    .fetch_all(pool)
    .await?;
    let mut by_job: HashMap<String, Vec<EpochMetrics>> = HashMap::new();
    for row in &epoch_rows {
        let job_id: String = row.try_get("job_id")?;
        by_job.entry(job_id).or_default().push(epoch_from_row(row)?);
    }
    for job in &mut jobs {
        job.epochs = by_job.remove(&job.id.to_string()).unwrap_or_default();
    }
    Ok(jobs)
}

pub(super) async fn queued_count(pool: &SqlitePool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
            .fetch_one(pool)
            .await?,
    )
}

pub(super) async fn active_on(pool: &SqlitePool, dataset: &str) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE dataset = ? AND status IN ('queued', 'running') ORDER BY seq",
    )
    .bind(dataset)
    .fetch_all(pool)
    .await?;
    ids.iter()
        .map(|id| Uuid::parse_str(id).map_err(|e| StoreError::corrupt(format!("job {id} id"), e)))
        .collect()
}

pub(super) async fn claim_next(
    pool: &SqlitePool,
) -> Result<Option<(Job, StoredEvent)>, StoreError> {
    let mut tx = begin_write(pool).await?;
    let id: Option<String> = sqlx::query_scalar(
        "UPDATE jobs SET status = 'running', started_at = ? \
         WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1) RETURNING id",
    )
    .bind(now())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else { return Ok(None) };
    let id = Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(format!("job {id} id"), e))?;
    let event = events::insert(&mut tx, id, "status", &events::status(JobStatus::Running)).await?;
    tx.commit().await?;
    Ok(get(pool, id).await?.map(|job| (job, event)))
}

pub(super) async fn set_progress(
    pool: &SqlitePool,
    id: Uuid,
    progress: &Progress,
) -> Result<bool, StoreError> {
    let cancel: Option<i64> = sqlx::query_scalar(
        "UPDATE jobs SET progress_done = ?, progress_total = ?, progress_unit = ? WHERE id = ? \
         RETURNING cancel_requested",
    )
    .bind(progress.done)
    .bind(progress.total)
    .bind(&progress.unit)
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    Ok(cancel.is_some_and(|c| c != 0))
}

pub(super) async fn record_epoch(
    pool: &SqlitePool,
    id: Uuid,
    epoch: &EpochMetrics,
) -> Result<StoredEvent, StoreError> {
    let mut tx = begin_write(pool).await?;
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
    let data = serde_json::to_value(epoch).map_err(|e| StoreError::corrupt("epoch", e))?;
    let event = events::insert(&mut tx, id, "epoch", &data).await?;
    tx.commit().await?;
    Ok(event)
}

pub(super) async fn finish(
    pool: &SqlitePool,
    id: Uuid,
    status: JobStatus,
    outcome: &Outcome,
) -> Result<StoredEvent, StoreError> {
    let mut tx = begin_write(pool).await?;
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
    let mut data = events::status(status);
    if let Some(error) = &outcome.error {
        data["error"] = Value::String(error.clone());
    }
    let event = events::insert(&mut tx, id, "status", &data).await?;
    tx.commit().await?;
    Ok(event)
}

pub(super) async fn request_cancel(
    pool: &SqlitePool,
    id: Uuid,
) -> Result<CancelOutcome, StoreError> {
    let mut tx = begin_write(pool).await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(status) = status else {
        return Ok(CancelOutcome::NotFound);
    };
    let status: JobStatus = status
        .parse()
        .map_err(|e| StoreError::corrupt(format!("job {id} status"), e))?;
    let outcome = match status {
        JobStatus::Queued => {
            sqlx::query("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?")
                .bind(now())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            let data = events::status(JobStatus::Cancelled);
            CancelOutcome::Cancelled(events::insert(&mut tx, id, "status", &data).await?)
        }
        JobStatus::Running => {
            // Read back by the running job with its next progress report (`set_progress`).
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

pub(super) async fn requeue_for_resume(
    pool: &SqlitePool,
    id: Uuid,
) -> Result<StoredEvent, StoreError> {
    let mut tx = begin_write(pool).await?;
    // A resumed job keeps its place: it is claimed before anything queued after it.
    sqlx::query("UPDATE jobs SET status = 'queued' WHERE id = ?")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    let data = serde_json::json!({"status": "queued", "resumed": true});
    let event = events::insert(&mut tx, id, "status", &data).await?;
    tx.commit().await?;
    Ok(event)
}

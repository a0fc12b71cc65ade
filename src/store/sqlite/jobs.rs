//! Jobs and their epochs as rows: queueing, reading and listing. The queue's moves (claim,
//! lease, fenced writes, settling) are `queue`'s.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::write::begin_write;
use crate::store::{
    now, status_event, EpochMetrics, Job, JobStatus, NewJob, Progress, StoreError, StoredEvent,
};

use super::events;

pub(super) const JOB_COLUMNS: &str =
    "id, kind, dataset, status, params, created_at, started_at, finished_at, \
    progress_done, progress_total, progress_unit, result, model_id, error, attempts, releases";

pub(super) fn from_row(row: &SqliteRow) -> Result<Job, StoreError> {
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
        attempts: row.try_get("attempts")?,
        releases: row.try_get("releases")?,
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
        &status_event(JobStatus::Queued, &Default::default()),
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

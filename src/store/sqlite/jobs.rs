//! Jobs and their epochs as rows: queueing (with `chains`), reading and listing, and
//! pipelines with their jobs. The queue's moves (claim,
//! lease, fenced writes, settling) are `queue`'s.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::chains;
use super::write::begin_write;
use crate::store::{
    EpochMetrics, Job, JobStatus, NewJob, NewPipeline, Pipeline, Progress, StoreError, StoredEvent,
};

pub(super) const JOB_COLUMNS: &str =
    "id, kind, dataset, status, params, created_at, started_at, finished_at, \
    progress_done, progress_total, progress_unit, result, model_id, error, attempts, releases, \
    pipeline, step";

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
    let pipeline: Option<String> = row.try_get("pipeline")?;
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
        depends_on: Vec::new(),
        pipeline: pipeline
            .map(|p| Uuid::parse_str(&p))
            .transpose()
            .map_err(|e| corrupt("pipeline", &e))?,
        step: row.try_get("step")?,
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
        best_epoch: row.try_get("best_epoch")?,
    })
}

pub(super) async fn insert(
    pool: &SqlitePool,
    jobs: &[NewJob],
    pipeline: Option<&NewPipeline>,
    max_queued: i64,
) -> Result<Vec<(Job, StoredEvent)>, StoreError> {
    let mut tx = begin_write(pool).await?;
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'waiting')")
            .fetch_one(&mut *tx)
            .await?;
    if queued + jobs.len() as i64 > max_queued {
        return Err(StoreError::QueueFull(queued));
    }
    let first_events = chains::insert(&mut tx, jobs, pipeline).await?;
    tx.commit().await?;
    let mut inserted = Vec::with_capacity(jobs.len());
    for (job, event) in jobs.iter().zip(first_events) {
        let stored = get(pool, job.id).await?.ok_or_else(|| {
            StoreError::corrupt(format!("job {}", job.id), "vanished after insert")
        })?;
        inserted.push((stored, event));
    }
    Ok(inserted)
}

pub(super) async fn get(pool: &SqlitePool, id: Uuid) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut job = from_row(&row)?;
    let rows = sqlx::query(
        "SELECT epoch, loss, acc, val_loss, val_acc, seconds, best_epoch FROM epochs WHERE job_id = ? ORDER BY epoch",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await?;
    job.epochs = rows.iter().map(epoch_from_row).collect::<Result<_, _>>()?;
    job.depends_on = dependencies(pool, &[job.id])
        .await?
        .remove(&job.id)
        .unwrap_or_default();
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
        "SELECT job_id, epoch, loss, acc, val_loss, val_acc, seconds, best_epoch FROM epochs \
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
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let mut depends_on = dependencies(pool, &ids).await?;
    for job in &mut jobs {
        job.epochs = by_job.remove(&job.id.to_string()).unwrap_or_default();
        job.depends_on = depends_on.remove(&job.id).unwrap_or_default();
    }
    Ok(jobs)
}

/// What each of `jobs` depends on, in the order its parameters were recorded.
async fn dependencies(
    pool: &SqlitePool,
    jobs: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>, StoreError> {
    let ids: Vec<String> = jobs.iter().map(Uuid::to_string).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT job_id, depends_on FROM job_dependencies \
         WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY field",
    )
    .bind(Value::from(ids).to_string())
    .fetch_all(pool)
    .await?;
    let mut by_job: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (job, on) in rows {
        let parse = |id: &str| {
            Uuid::parse_str(id).map_err(|e| StoreError::corrupt(format!("dependency {id}"), e))
        };
        by_job.entry(parse(&job)?).or_default().push(parse(&on)?);
    }
    Ok(by_job)
}

/// A pipeline and its jobs (oldest first).
pub(super) async fn pipeline(pool: &SqlitePool, id: Uuid) -> Result<Option<Pipeline>, StoreError> {
    let row: Option<(Option<i64>, String)> =
        sqlx::query_as("SELECT recipe, created_at FROM pipelines WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?;
    let Some((recipe, created_at)) = row else {
        return Ok(None);
    };
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE pipeline = ? ORDER BY seq")
            .bind(id.to_string())
            .fetch_all(pool)
            .await?;
    let mut jobs = Vec::with_capacity(ids.len());
    for job in ids {
        let job =
            Uuid::parse_str(&job).map_err(|e| StoreError::corrupt(format!("job {job}"), e))?;
        jobs.extend(get(pool, job).await?);
    }
    Ok(Some(Pipeline {
        id,
        recipe,
        created_at,
        status: Pipeline::status_of(&jobs),
        jobs,
    }))
}

/// Newest first, at most 100.
pub(super) async fn pipelines(pool: &SqlitePool) -> Result<Vec<Pipeline>, StoreError> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM pipelines ORDER BY seq DESC LIMIT 100")
            .fetch_all(pool)
            .await?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let id =
            Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(format!("pipeline {id}"), e))?;
        found.extend(pipeline(pool, id).await?);
    }
    Ok(found)
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
        "SELECT id FROM jobs WHERE dataset = ? AND status IN ('waiting', 'queued', 'running') \
         ORDER BY seq",
    )
    .bind(dataset)
    .fetch_all(pool)
    .await?;
    ids.iter()
        .map(|id| Uuid::parse_str(id).map_err(|e| StoreError::corrupt(format!("job {id} id"), e)))
        .collect()
}

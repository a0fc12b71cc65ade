//! Jobs and their epochs as PostgreSQL rows: queueing (with `chains`), reading and
//! listing, and pipelines with their jobs. The queue's
//! moves (claim, lease, fenced writes, settling) are `queue`'s.

use std::collections::HashMap;

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{chains, rfc3339};
use crate::store::{
    EpochMetrics, Job, JobStatus, NewJob, NewPipeline, Pipeline, Progress, StoreError, StoredEvent,
};

pub(super) const JOB_COLUMNS: &str =
    "id, kind, dataset, status, params, created_at, started_at, finished_at, \
    progress_done, progress_total, progress_unit, result, model_id, error, attempts, releases, \
    pipeline, step";

pub(super) fn from_row(row: &PgRow) -> Result<Job, StoreError> {
    let id: Uuid = row.try_get("id")?;
    let corrupt = |column: &str, e: &dyn std::fmt::Display| {
        StoreError::corrupt(format!("job {id} {column}"), e)
    };
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let time = |column: &str| -> Result<Option<String>, sqlx::Error> {
        let t: Option<chrono::DateTime<chrono::Utc>> = row.try_get(column)?;
        Ok(t.map(rfc3339))
    };
    Ok(Job {
        id,
        kind: kind.parse().map_err(|e| corrupt("kind", &e))?,
        dataset: row.try_get("dataset")?,
        status: status.parse().map_err(|e| corrupt("status", &e))?,
        params: row.try_get("params")?,
        created_at: time("created_at")?.unwrap_or_default(),
        started_at: time("started_at")?,
        finished_at: time("finished_at")?,
        progress: Progress {
            done: row.try_get("progress_done")?,
            total: row.try_get("progress_total")?,
            unit: row.try_get("progress_unit")?,
        },
        epochs: Vec::new(),
        result: row.try_get("result")?,
        model_id: row.try_get("model_id")?,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
        releases: row.try_get("releases")?,
        depends_on: Vec::new(),
        pipeline: row.try_get("pipeline")?,
        step: row.try_get("step")?,
    })
}

fn epoch_from_row(row: &PgRow) -> Result<EpochMetrics, sqlx::Error> {
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

/// Held by a job's insert from counting the queue to committing.
const QUEUE_ADMISSION_LOCK: i64 = 0x7667_7175_6575;

/// Queue jobs unless more than `max_queued` would wait: exact across replicas, as the
/// count and the inserts happen under one lock.
pub(super) async fn insert(
    pool: &PgPool,
    jobs: &[NewJob],
    pipeline: Option<&NewPipeline>,
    max_queued: i64,
) -> Result<Vec<(Job, StoredEvent)>, StoreError> {
    let mut tx = pool.begin().await?;
    // One admission at a time, counted inside it: replicas accepting jobs at once cannot
    // take the queue past its bound. (Taken before any row or event lock, never after.)
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(QUEUE_ADMISSION_LOCK)
        .execute(&mut *tx)
        .await?;
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

pub(super) async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut job = from_row(&row)?;
    let rows = sqlx::query(
        "SELECT epoch, loss, acc, val_loss, val_acc, seconds, best_epoch FROM epochs WHERE job_id = $1 ORDER BY epoch",
    )
    .bind(id)
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
pub(super) async fn list(pool: &PgPool, status: Option<JobStatus>) -> Result<Vec<Job>, StoreError> {
    const PAGE: &str = "SELECT {COLUMNS} FROM jobs WHERE ($1::text IS NULL OR status = $1) \
                        ORDER BY seq DESC LIMIT 500";
    let status = status.map(JobStatus::as_str);
    let rows = sqlx::query(&PAGE.replace("{COLUMNS}", JOB_COLUMNS))
        .bind(status)
        .fetch_all(pool)
        .await?;
    let mut jobs = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    let epoch_rows = sqlx::query(&format!(
        "SELECT job_id, epoch, loss, acc, val_loss, val_acc, seconds, best_epoch FROM epochs \
         WHERE job_id IN (SELECT id FROM ({}) page) ORDER BY job_id, epoch",
        PAGE.replace("{COLUMNS}", "id, seq")
    ))
    .bind(status)
    .fetch_all(pool)
    .await?;
    let mut by_job: HashMap<Uuid, Vec<EpochMetrics>> = HashMap::new();
    for row in &epoch_rows {
        let job_id: Uuid = row.try_get("job_id")?;
        by_job.entry(job_id).or_default().push(epoch_from_row(row)?);
    }
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let mut depends_on = dependencies(pool, &ids).await?;
    for job in &mut jobs {
        job.epochs = by_job.remove(&job.id).unwrap_or_default();
        job.depends_on = depends_on.remove(&job.id).unwrap_or_default();
    }
    Ok(jobs)
}

/// What each of `jobs` depends on.
async fn dependencies(
    pool: &PgPool,
    jobs: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>, StoreError> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT job_id, depends_on FROM job_dependencies WHERE job_id = ANY($1) ORDER BY field",
    )
    .bind(jobs)
    .fetch_all(pool)
    .await?;
    let mut by_job: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (job, on) in rows {
        by_job.entry(job).or_default().push(on);
    }
    Ok(by_job)
}

/// A pipeline and its jobs (oldest first).
pub(super) async fn pipeline(pool: &PgPool, id: Uuid) -> Result<Option<Pipeline>, StoreError> {
    let row: Option<(Option<i64>, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT recipe, created_at FROM pipelines WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some((recipe, created_at)) = row else {
        return Ok(None);
    };
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM jobs WHERE pipeline = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(pool)
        .await?;
    let mut jobs = Vec::with_capacity(ids.len());
    for job in ids {
        jobs.extend(get(pool, job).await?);
    }
    Ok(Some(Pipeline {
        id,
        recipe,
        created_at: rfc3339(created_at),
        status: Pipeline::status_of(&jobs),
        jobs,
    }))
}

/// Newest first, at most 100.
pub(super) async fn pipelines(pool: &PgPool) -> Result<Vec<Pipeline>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM pipelines ORDER BY seq DESC LIMIT 100")
        .fetch_all(pool)
        .await?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        found.extend(pipeline(pool, id).await?);
    }
    Ok(found)
}

pub(super) async fn queued_count(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
            .fetch_one(pool)
            .await?,
    )
}

pub(super) async fn active_on(pool: &PgPool, dataset: &str) -> Result<Vec<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM jobs WHERE dataset = $1 AND status IN ('waiting', 'queued', 'running') \
         ORDER BY seq",
    )
    .bind(dataset)
    .fetch_all(pool)
    .await?)
}

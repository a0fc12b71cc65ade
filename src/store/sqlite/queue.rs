//! The queue's moves on SQLite: claim with a lease, heartbeat, the writes a worker makes
//! for its job (each fenced on its lease inside the write transaction), release, settling
//! jobs whose lease expired, and cancel. Lease times are this machine's clock in Unix ms.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::write::begin_write;
use super::{chains, events, jobs, models};
use crate::store::{
    now, CancelOutcome, ClaimSpec, EpochMetrics, Job, JobStatus, Lease, ModelRecord, Outcome,
    Progress, Settle, StoreError, StoredEvent,
};
use crate::store::{same_epoch_event, status_event};

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn until(lease: Duration) -> i64 {
    now_ms() + lease.as_millis() as i64
}

/// Refuse the write unless `lease` still holds the job; answers its cancel flag.
async fn fence(tx: &mut Tx, lease: &Lease) -> Result<bool, StoreError> {
    let cancel: Option<i64> = sqlx::query_scalar(
        "SELECT cancel_requested FROM jobs \
         WHERE id = ? AND status = 'running' AND lease_owner = ? AND attempts = ?",
    )
    .bind(lease.job_id.to_string())
    .bind(&lease.owner)
    .bind(lease.attempt)
    .fetch_optional(&mut **tx)
    .await?;
    cancel
        .map(|c| c != 0)
        .ok_or(StoreError::LeaseLost(lease.job_id))
}

pub(super) async fn claim_next(
    pool: &SqlitePool,
    spec: &ClaimSpec,
) -> Result<Option<(Job, Lease, StoredEvent)>, StoreError> {
    let kinds: Vec<&str> = spec.kinds.iter().map(|k| k.as_str()).collect();
    let mut tx = begin_write(pool).await?;
    let claimed: Option<(String, i64)> = sqlx::query_as(
        "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), \
           lease_owner = ?, lease_until = ?, attempts = attempts + 1 \
         WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' \
           AND (? = '[]' OR kind IN (SELECT value FROM json_each(?))) ORDER BY seq LIMIT 1) \
         RETURNING id, attempts",
    )
    .bind(now())
    .bind(&spec.owner)
    .bind(until(spec.lease))
    .bind(Value::from(kinds.clone()).to_string())
    .bind(Value::from(kinds).to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, attempt)) = claimed else {
        return Ok(None);
    };
    let id = Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(format!("job {id} id"), e))?;
    let data = json!({"status": "running", "attempt": attempt, "worker": spec.owner});
    let event = events::insert(&mut tx, id, "status", &data).await?;
    tx.commit().await?;
    let job = jobs::get(pool, id)
        .await?
        .ok_or_else(|| StoreError::corrupt(format!("job {id}"), "vanished after claim"))?;
    let lease = Lease {
        job_id: id,
        owner: spec.owner.clone(),
        attempt,
    };
    Ok(Some((job, lease, event)))
}

pub(super) async fn heartbeat(
    pool: &SqlitePool,
    lease: &Lease,
    extend: Duration,
) -> Result<bool, StoreError> {
    let mut tx = begin_write(pool).await?;
    let cancel = fence(&mut tx, lease).await?;
    sqlx::query("UPDATE jobs SET lease_until = ? WHERE id = ?")
        .bind(until(extend))
        .bind(lease.job_id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(cancel)
}

pub(super) async fn set_progress(
    pool: &SqlitePool,
    lease: &Lease,
    progress: &Progress,
) -> Result<bool, StoreError> {
    let mut tx = begin_write(pool).await?;
    let cancel = fence(&mut tx, lease).await?;
    sqlx::query(
        "UPDATE jobs SET progress_done = ?, progress_total = ?, progress_unit = ? WHERE id = ?",
    )
    .bind(progress.done)
    .bind(progress.total)
    .bind(&progress.unit)
    .bind(lease.job_id.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(cancel)
}

pub(super) async fn record_epoch(
    pool: &SqlitePool,
    lease: &Lease,
    epoch: &EpochMetrics,
) -> Result<StoredEvent, StoreError> {
    let mut tx = begin_write(pool).await?;
    fence(&mut tx, lease).await?;
    let data = serde_json::to_value(epoch).map_err(|e| StoreError::corrupt("epoch", e))?;
    let recorded: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, data FROM events WHERE job_id = ? AND kind = 'epoch'")
            .bind(lease.job_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
    let recorded = recorded
        .into_iter()
        .filter_map(|(id, text)| Some((id, serde_json::from_str(&text).ok()?)))
        .collect();
    if let Some(event) = same_epoch_event(lease.job_id, recorded, &data) {
        return Ok(event);
    }
    sqlx::query(
        "INSERT INTO epochs (job_id, epoch, loss, acc, val_loss, val_acc, seconds, best_epoch) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(lease.job_id.to_string())
    .bind(epoch.epoch)
    .bind(epoch.loss)
    .bind(epoch.acc)
    .bind(epoch.val_loss)
    .bind(epoch.val_acc)
    .bind(epoch.seconds)
    .bind(epoch.best_epoch)
    .execute(&mut *tx)
    .await?;
    let event = events::insert(&mut tx, lease.job_id, "epoch", &data).await?;
    tx.commit().await?;
    Ok(event)
}

pub(super) async fn finish(
    pool: &SqlitePool,
    lease: &Lease,
    status: JobStatus,
    outcome: &Outcome,
    model: Option<&ModelRecord>,
) -> Result<StoredEvent, StoreError> {
    let mut tx = begin_write(pool).await?;
    fence(&mut tx, lease).await?;
    if let Some(model) = model {
        models::insert(&mut *tx, model).await?;
    }
    let event = end(&mut tx, lease.job_id, status, outcome).await?;
    tx.commit().await?;
    Ok(event)
}

/// Move a job to a terminal status with its event, inside `tx`, and settle the jobs
/// waiting on it (`chains`).
async fn end(
    tx: &mut Tx,
    id: Uuid,
    status: JobStatus,
    outcome: &Outcome,
) -> Result<StoredEvent, StoreError> {
    sqlx::query(
        "UPDATE jobs SET status = ?, finished_at = ?, result = ?, model_id = ?, error = ?, \
           lease_owner = NULL, lease_until = NULL WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(now())
    .bind(outcome.result.as_ref().map(Value::to_string))
    .bind(outcome.model_id.map(|m| m.to_string()))
    .bind(&outcome.error)
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    // Its dependents first, then every event: the event is the last lock taken.
    let settled = chains::settle_dependents(tx, id).await?;
    let event = events::insert(tx, id, "status", &status_event(status, outcome)).await?;
    for (job, data) in settled {
        events::insert(tx, job, "status", &data).await?;
    }
    Ok(event)
}

/// Back to the queue (keeping its place) with a `resumed` status event, inside `tx`; or
/// cancelled, if a cancel was requested while it ran.
async fn requeue(tx: &mut Tx, id: Uuid, released: bool) -> Result<StoredEvent, StoreError> {
    let cancel: i64 = sqlx::query_scalar("SELECT cancel_requested FROM jobs WHERE id = ?")
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await?;
    if cancel != 0 {
        return end(tx, id, JobStatus::Cancelled, &Outcome::default()).await;
    }
    sqlx::query(
        "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL, \
           releases = releases + ? WHERE id = ?",
    )
    .bind(i64::from(released))
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    let data = json!({"status": "queued", "resumed": true});
    events::insert(tx, id, "status", &data).await
}

pub(super) async fn release(pool: &SqlitePool, lease: &Lease) -> Result<StoredEvent, StoreError> {
    let mut tx = begin_write(pool).await?;
    fence(&mut tx, lease).await?;
    let event = requeue(&mut tx, lease.job_id, true).await?;
    tx.commit().await?;
    Ok(event)
}

pub(super) async fn expired(pool: &SqlitePool) -> Result<Vec<Job>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE status = 'running' AND lease_until < ? ORDER BY seq",
    )
    .bind(now_ms())
    .fetch_all(pool)
    .await?;
    let mut found = Vec::new();
    for id in ids {
        let id =
            Uuid::parse_str(&id).map_err(|e| StoreError::corrupt(format!("job {id} id"), e))?;
        found.extend(jobs::get(pool, id).await?);
    }
    Ok(found)
}

pub(super) async fn settle_expired(
    pool: &SqlitePool,
    id: Uuid,
    attempt: i64,
    settle: &Settle,
) -> Result<Option<StoredEvent>, StoreError> {
    let mut tx = begin_write(pool).await?;
    let still: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM jobs WHERE id = ? AND attempts = ? AND status = 'running' AND lease_until < ?",
    )
    .bind(id.to_string())
    .bind(attempt)
    .bind(now_ms())
    .fetch_optional(&mut *tx)
    .await?;
    if still.is_none() {
        return Ok(None);
    }
    let event = match settle {
        Settle::Requeue => requeue(&mut tx, id, false).await?,
        Settle::Fail(error) => {
            let outcome = Outcome {
                error: Some(error.clone()),
                ..Default::default()
            };
            end(&mut tx, id, JobStatus::Failed, &outcome).await?
        }
    };
    tx.commit().await?;
    Ok(Some(event))
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
        // Its dependencies are left alone; jobs waiting on it fail (see `end`).
        JobStatus::Queued | JobStatus::Waiting => {
            let event = end(&mut tx, id, JobStatus::Cancelled, &Outcome::default()).await?;
            CancelOutcome::Cancelled(event)
        }
        JobStatus::Running => {
            // Read back by the worker with its next heartbeat or progress report.
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

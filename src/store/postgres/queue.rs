//! The queue's moves on PostgreSQL: claim with `FOR UPDATE SKIP LOCKED` and a lease on the
//! database's clock, heartbeat, the writes a worker makes for its job (each fenced on its
//! lease, the row locked for the transaction), release, settling jobs whose lease expired,
//! and cancel.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::events::{self, Tx};
use super::listen::{ProgressPayload, PROGRESS};
use super::{chains, jobs, models};
use crate::store::{same_epoch_event, status_event};
use crate::store::{
    CancelOutcome, ClaimSpec, EpochMetrics, Job, JobStatus, Lease, ModelRecord, Outcome, Progress,
    Settle, StoreError, StoredEvent,
};

fn seconds(lease: Duration) -> f64 {
    lease.as_secs_f64()
}

/// Refuse the write unless `lease` still holds the job (its row then stays locked until
/// the transaction ends); answers its cancel flag.
async fn fence(tx: &mut Tx, lease: &Lease) -> Result<bool, StoreError> {
    let cancel: Option<bool> = sqlx::query_scalar(
        "SELECT cancel_requested FROM jobs \
         WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $3 FOR UPDATE",
    )
    .bind(lease.job_id)
    .bind(&lease.owner)
    .bind(lease.attempt)
    .fetch_optional(&mut **tx)
    .await?;
    cancel.ok_or(StoreError::LeaseLost(lease.job_id))
}

pub(super) async fn claim_next(
    pool: &PgPool,
    spec: &ClaimSpec,
) -> Result<Option<(Job, Lease, StoredEvent)>, StoreError> {
    let kinds: Vec<&str> = spec.kinds.iter().map(|k| k.as_str()).collect();
    let mut tx = pool.begin().await?;
    let claimed: Option<(Uuid, i64)> = sqlx::query_as(
        "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, now()), \
           lease_owner = $1, lease_until = now() + make_interval(secs => $2), \
           attempts = attempts + 1 \
         WHERE id = (SELECT id FROM jobs WHERE status = 'queued' \
           AND (cardinality($3::text[]) = 0 OR kind = ANY($3)) \
           ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, attempts",
    )
    .bind(&spec.owner)
    .bind(seconds(spec.lease))
    .bind(&kinds)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, attempt)) = claimed else {
        return Ok(None);
    };
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
    pool: &PgPool,
    lease: &Lease,
    extend: Duration,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let cancel = fence(&mut tx, lease).await?;
    sqlx::query("UPDATE jobs SET lease_until = now() + make_interval(secs => $1) WHERE id = $2")
        .bind(seconds(extend))
        .bind(lease.job_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(cancel)
}

pub(super) async fn set_progress(
    pool: &PgPool,
    lease: &Lease,
    progress: &Progress,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let cancel = fence(&mut tx, lease).await?;
    sqlx::query(
        "UPDATE jobs SET progress_done = $1, progress_total = $2, progress_unit = $3 WHERE id = $4",
    )
    .bind(progress.done)
    .bind(progress.total)
    .bind(&progress.unit)
    .bind(lease.job_id)
    .execute(&mut *tx)
    .await?;
    let payload = ProgressPayload {
        job_id: lease.job_id,
        progress: progress.clone(),
    };
    let payload =
        serde_json::to_string(&payload).map_err(|e| StoreError::corrupt("progress", e))?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(PROGRESS)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(cancel)
}

pub(super) async fn record_epoch(
    pool: &PgPool,
    lease: &Lease,
    epoch: &EpochMetrics,
) -> Result<StoredEvent, StoreError> {
    let mut tx = pool.begin().await?;
    fence(&mut tx, lease).await?;
    let data = serde_json::to_value(epoch).map_err(|e| StoreError::corrupt("epoch", e))?;
    let recorded: Vec<(i64, serde_json::Value)> =
        sqlx::query_as("SELECT id, data FROM events WHERE job_id = $1 AND kind = 'epoch'")
            .bind(lease.job_id)
            .fetch_all(&mut *tx)
            .await?;
    if let Some(event) = same_epoch_event(lease.job_id, recorded, &data) {
        return Ok(event);
    }
    sqlx::query(
        "INSERT INTO epochs (job_id, epoch, loss, acc, val_loss, val_acc, seconds, best_epoch) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(lease.job_id)
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
    pool: &PgPool,
    lease: &Lease,
    status: JobStatus,
    outcome: &Outcome,
    model: Option<&ModelRecord>,
) -> Result<StoredEvent, StoreError> {
    let mut tx = pool.begin().await?;
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
        "UPDATE jobs SET status = $1, finished_at = now(), result = $2, model_id = $3, \
           error = $4, lease_owner = NULL, lease_until = NULL WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(&outcome.result)
    .bind(outcome.model_id)
    .bind(&outcome.error)
    .bind(id)
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
/// cancelled, if a cancel was requested while it ran. The job's row is locked by then.
async fn requeue(tx: &mut Tx, id: Uuid, released: bool) -> Result<StoredEvent, StoreError> {
    let cancel: bool = sqlx::query_scalar("SELECT cancel_requested FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    if cancel {
        return end(tx, id, JobStatus::Cancelled, &Outcome::default()).await;
    }
    sqlx::query(
        "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL, \
           releases = releases + $1 WHERE id = $2",
    )
    .bind(i64::from(released))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let data = json!({"status": "queued", "resumed": true});
    events::insert(tx, id, "status", &data).await
}

pub(super) async fn release(pool: &PgPool, lease: &Lease) -> Result<StoredEvent, StoreError> {
    let mut tx = pool.begin().await?;
    fence(&mut tx, lease).await?;
    let event = requeue(&mut tx, lease.job_id, true).await?;
    tx.commit().await?;
    Ok(event)
}

pub(super) async fn expired(pool: &PgPool) -> Result<Vec<Job>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE status = 'running' AND lease_until < now() ORDER BY seq",
    )
    .fetch_all(pool)
    .await?;
    let mut found = Vec::new();
    for id in ids {
        found.extend(jobs::get(pool, id).await?);
    }
    Ok(found)
}

pub(super) async fn settle_expired(
    pool: &PgPool,
    id: Uuid,
    attempt: i64,
    settle: &Settle,
) -> Result<Option<StoredEvent>, StoreError> {
    let mut tx = pool.begin().await?;
    let still: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM jobs WHERE id = $1 AND attempts = $2 AND status = 'running' \
           AND lease_until < now() FOR UPDATE",
    )
    .bind(id)
    .bind(attempt)
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

pub(super) async fn request_cancel(pool: &PgPool, id: Uuid) -> Result<CancelOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(id)
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
            sqlx::query("UPDATE jobs SET cancel_requested = true WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            CancelOutcome::Requested
        }
        done => CancelOutcome::AlreadyFinished(done),
    };
    tx.commit().await?;
    Ok(outcome)
}

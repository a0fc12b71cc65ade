//! Job chains on PostgreSQL: the row operations [`crate::store::chains`] runs inside a
//! transaction, and queueing jobs with their dependencies and pipeline. Locks: the jobs
//! waiting on an ending job are locked (`FOR UPDATE`), so two dependencies ending at once
//! settle their common dependent one after the other, the second seeing the first's
//! commit; a new job's dependencies are share-locked while it is admitted, so none ends
//! unseen between the check and the insert. Events are recorded last.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::events::{self, Tx};
use crate::store::chains::{self, ChainTx, JobState};
use crate::store::{Dependency, NewJob, NewPipeline, StoreError, StoredEvent};

/// Waiting jobs none of whose dependencies is still to finish.
const STRANDED: &str = "SELECT j.id FROM jobs j WHERE j.status = 'waiting' AND NOT EXISTS \
     (SELECT 1 FROM job_dependencies d JOIN jobs o ON o.id = d.depends_on \
      WHERE d.job_id = j.id AND o.status IN ('waiting', 'queued', 'running')) ORDER BY j.seq";

/// The chain's view of one transaction; `share` locks the dependencies it reads.
pub(super) struct Rows<'a> {
    tx: &'a mut Tx,
    share: bool,
}

/// After job `id` ended inside `tx`: settle the jobs waiting on it (their events to record).
pub(super) async fn settle_dependents(
    tx: &mut Tx,
    id: Uuid,
) -> Result<Vec<(Uuid, Value)>, StoreError> {
    chains::settle_dependents(&mut Rows { tx, share: false }, id).await
}

#[async_trait]
impl ChainTx for Rows<'_> {
    async fn waiting_on(&mut self, id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM jobs WHERE status = 'waiting' \
               AND id IN (SELECT job_id FROM job_dependencies WHERE depends_on = $1) \
             ORDER BY seq FOR UPDATE",
        )
        .bind(id)
        .fetch_all(&mut **self.tx)
        .await?)
    }

    async fn stranded(&mut self) -> Result<Vec<Uuid>, StoreError> {
        let locked = format!("{STRANDED} FOR UPDATE OF j SKIP LOCKED");
        Ok(sqlx::query_scalar(&locked)
            .fetch_all(&mut **self.tx)
            .await?)
    }

    async fn dependencies(&mut self, job: Uuid) -> Result<Vec<Dependency>, StoreError> {
        let rows: Vec<(Uuid, String, bool)> = sqlx::query_as(
            "SELECT depends_on, field, takes_model FROM job_dependencies \
             WHERE job_id = $1 ORDER BY field",
        )
        .bind(job)
        .fetch_all(&mut **self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(job, field, takes_model)| Dependency {
                job,
                field,
                takes_model,
            })
            .collect())
    }

    async fn state(&mut self, id: Uuid) -> Result<Option<JobState>, StoreError> {
        let query = if self.share {
            "SELECT status, model_id, error FROM jobs WHERE id = $1 FOR SHARE"
        } else {
            "SELECT status, model_id, error FROM jobs WHERE id = $1"
        };
        let row: Option<(String, Option<Uuid>, Option<String>)> = sqlx::query_as(query)
            .bind(id)
            .fetch_optional(&mut **self.tx)
            .await?;
        row.map(|(status, model_id, error)| {
            Ok(JobState {
                status: status
                    .parse()
                    .map_err(|e| StoreError::corrupt(format!("job {id} status"), e))?,
                model_id,
                error,
            })
        })
        .transpose()
    }

    async fn params(&mut self, job: Uuid) -> Result<Value, StoreError> {
        Ok(sqlx::query_scalar("SELECT params FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&mut **self.tx)
            .await?)
    }

    async fn promote(&mut self, job: Uuid, params: &Value) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET status = 'queued', params = $1 WHERE id = $2")
            .bind(params)
            .bind(job)
            .execute(&mut **self.tx)
            .await?;
        Ok(())
    }

    async fn fail(&mut self, job: Uuid, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET status = 'failed', finished_at = now(), error = $1 WHERE id = $2",
        )
        .bind(reason)
        .bind(job)
        .execute(&mut **self.tx)
        .await?;
        Ok(())
    }
}

/// Insert `jobs` (and their pipeline) inside `tx`, each waiting or queued as its
/// dependencies allow; returns their first events.
pub(super) async fn insert(
    tx: &mut Tx,
    jobs: &[NewJob],
    pipeline: Option<&NewPipeline>,
) -> Result<Vec<StoredEvent>, StoreError> {
    if let Some(pipeline) = pipeline {
        sqlx::query("INSERT INTO pipelines (id, recipe) VALUES ($1, $2)")
            .bind(pipeline.id)
            .bind(pipeline.recipe)
            .execute(&mut **tx)
            .await?;
    }
    let mut first_events = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut rows = Rows { tx, share: true };
        let (status, params) =
            chains::admit(&mut rows, job.id, job.params.clone(), &job.depends_on).await?;
        sqlx::query(
            "INSERT INTO jobs (id, kind, dataset, status, params, pipeline, step) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(job.id)
        .bind(job.kind.as_str())
        .bind(&job.dataset)
        .bind(status.as_str())
        .bind(&params)
        .bind(pipeline.map(|p| p.id))
        .bind(&job.step)
        .execute(&mut **tx)
        .await?;
        for dependency in &job.depends_on {
            sqlx::query(
                "INSERT INTO job_dependencies (job_id, depends_on, field, takes_model) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(job.id)
            .bind(dependency.job)
            .bind(&dependency.field)
            .bind(dependency.takes_model)
            .execute(&mut **tx)
            .await?;
        }
        first_events.push((job.id, chains::admitted_event(status, &job.depends_on)));
    }
    let mut recorded = Vec::with_capacity(first_events.len());
    for (job, data) in first_events {
        recorded.push(events::insert(tx, job, "status", &data).await?);
    }
    Ok(recorded)
}

/// Settle the jobs left waiting on dependencies that have all ended; how many events
/// that recorded.
pub(super) async fn settle_waiting(pool: &sqlx::PgPool) -> Result<usize, StoreError> {
    // Read first: a transaction only when there is something to settle.
    if sqlx::query_scalar::<_, Uuid>(STRANDED)
        .fetch_optional(pool)
        .await?
        .is_none()
    {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let settled = chains::settle_stranded(&mut Rows {
        tx: &mut tx,
        share: false,
    })
    .await?;
    for (job, data) in &settled {
        events::insert(&mut tx, *job, "status", data).await?;
    }
    tx.commit().await?;
    Ok(settled.len())
}

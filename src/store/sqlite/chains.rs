//! Job chains on SQLite: the row operations [`crate::store::chains`] runs inside a write
//! transaction (SQLite has one writer at a time, so nothing else moves meanwhile), and
//! queueing jobs with their dependencies and pipeline.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::events;
use crate::store::chains::{self, ChainTx, JobState};
use crate::store::{now, Dependency, NewJob, NewPipeline, StoreError, StoredEvent};

pub(super) type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// Waiting jobs none of whose dependencies is still to finish.
pub(super) const STRANDED: &str = "SELECT id FROM jobs j WHERE status = 'waiting' AND NOT EXISTS \
     (SELECT 1 FROM job_dependencies d JOIN jobs o ON o.id = d.depends_on \
      WHERE d.job_id = j.id AND o.status IN ('waiting', 'queued', 'running')) ORDER BY seq";

/// The chain's view of one write transaction.
pub(super) struct Rows<'a>(pub &'a mut Tx);

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::corrupt(format!("job id {text}"), e))
}

#[async_trait]
impl ChainTx for Rows<'_> {
    async fn waiting_on(&mut self, id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT d.job_id FROM job_dependencies d JOIN jobs j ON j.id = d.job_id \
             WHERE d.depends_on = ? AND j.status = 'waiting' ORDER BY j.seq",
        )
        .bind(id.to_string())
        .fetch_all(&mut **self.0)
        .await?;
        ids.iter().map(|id| uuid(id)).collect()
    }

    async fn stranded(&mut self) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(STRANDED)
            .fetch_all(&mut **self.0)
            .await?;
        ids.iter().map(|id| uuid(id)).collect()
    }

    async fn dependencies(&mut self, job: Uuid) -> Result<Vec<Dependency>, StoreError> {
        let rows: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT depends_on, field, takes_model FROM job_dependencies \
             WHERE job_id = ? ORDER BY field",
        )
        .bind(job.to_string())
        .fetch_all(&mut **self.0)
        .await?;
        rows.into_iter()
            .map(|(on, field, takes_model)| {
                Ok(Dependency {
                    job: uuid(&on)?,
                    field,
                    takes_model,
                })
            })
            .collect()
    }

    async fn state(&mut self, id: Uuid) -> Result<Option<JobState>, StoreError> {
        let row: Option<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT status, model_id, error FROM jobs WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&mut **self.0)
                .await?;
        row.map(|(status, model_id, error)| {
            Ok(JobState {
                status: status
                    .parse()
                    .map_err(|e| StoreError::corrupt(format!("job {id} status"), e))?,
                model_id: model_id.as_deref().map(uuid).transpose()?,
                error,
            })
        })
        .transpose()
    }

    async fn params(&mut self, job: Uuid) -> Result<Value, StoreError> {
        let text: String = sqlx::query_scalar("SELECT params FROM jobs WHERE id = ?")
            .bind(job.to_string())
            .fetch_one(&mut **self.0)
            .await?;
        serde_json::from_str(&text).map_err(|e| StoreError::corrupt(format!("job {job} params"), e))
    }

    async fn promote(&mut self, job: Uuid, params: &Value) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET status = 'queued', params = ? WHERE id = ?")
            .bind(params.to_string())
            .bind(job.to_string())
            .execute(&mut **self.0)
            .await?;
        Ok(())
    }

    async fn fail(&mut self, job: Uuid, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET status = 'failed', finished_at = ?, error = ? WHERE id = ?")
            .bind(now())
            .bind(reason)
            .bind(job.to_string())
            .execute(&mut **self.0)
            .await?;
        Ok(())
    }
}

/// After job `id` ended inside `tx`: settle the jobs waiting on it (their events to record).
pub(super) async fn settle_dependents(
    tx: &mut Tx,
    id: Uuid,
) -> Result<Vec<(Uuid, Value)>, StoreError> {
    chains::settle_dependents(&mut Rows(tx), id).await
}

/// Insert `jobs` (and their pipeline) inside `tx`, each waiting or queued as its
/// dependencies allow; returns their first events.
pub(super) async fn insert(
    tx: &mut Tx,
    jobs: &[NewJob],
    pipeline: Option<&NewPipeline>,
) -> Result<Vec<StoredEvent>, StoreError> {
    if let Some(pipeline) = pipeline {
        sqlx::query("INSERT INTO pipelines (id, recipe, created_at) VALUES (?, ?, ?)")
            .bind(pipeline.id.to_string())
            .bind(pipeline.recipe)
            .bind(now())
            .execute(&mut **tx)
            .await?;
    }
    let mut first_events = Vec::with_capacity(jobs.len());
    for job in jobs {
        let (status, params) =
            chains::admit(&mut Rows(tx), job.id, job.params.clone(), &job.depends_on).await?;
        sqlx::query(
            "INSERT INTO jobs (id, kind, dataset, status, params, created_at, pipeline, step) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(job.id.to_string())
        .bind(job.kind.as_str())
        .bind(&job.dataset)
        .bind(status.as_str())
        .bind(params.to_string())
        .bind(now())
        .bind(pipeline.map(|p| p.id.to_string()))
        .bind(&job.step)
        .execute(&mut **tx)
        .await?;
        for dependency in &job.depends_on {
            sqlx::query(
                "INSERT INTO job_dependencies (job_id, depends_on, field, takes_model) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(job.id.to_string())
            .bind(dependency.job.to_string())
            .bind(&dependency.field)
            .bind(dependency.takes_model)
            .execute(&mut **tx)
            .await?;
        }
        first_events.push((job.id, chains::admitted_event(status, &job.depends_on)));
    }
    // Events last, as everywhere (see `crate::store::chains`).
    let mut recorded = Vec::with_capacity(first_events.len());
    for (job, data) in first_events {
        recorded.push(events::insert(tx, job, "status", &data).await?);
    }
    Ok(recorded)
}

/// Settle the jobs left waiting on dependencies that have all ended; how many events
/// that recorded.
pub(super) async fn settle_waiting(pool: &sqlx::SqlitePool) -> Result<usize, StoreError> {
    // Read first: a write transaction only when there is something to settle.
    if sqlx::query_scalar::<_, String>(STRANDED)
        .fetch_optional(pool)
        .await?
        .is_none()
    {
        return Ok(0);
    }
    let mut tx = super::write::begin_write(pool).await?;
    let settled = chains::settle_stranded(&mut Rows(&mut tx)).await?;
    for (job, data) in &settled {
        events::insert(&mut tx, *job, "status", data).await?;
    }
    tx.commit().await?;
    Ok(settled.len())
}

//! Trained-model records on PostgreSQL: immutable rows pointing at artifacts.

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::rfc3339;
use crate::store::{ModelRecord, StoreError};

const COLUMNS: &str = "id, recipe, dataset, classes, params, metrics, test_metrics, source_job, \
    created_at, artifact, artifact_sha256, config, is_default";

fn from_row(row: &PgRow) -> Result<ModelRecord, StoreError> {
    let id: Uuid = row.try_get("id")?;
    let classes: Value = row.try_get("classes")?;
    let classes: Vec<String> = serde_json::from_value(classes)
        .map_err(|e| StoreError::corrupt(format!("model {id} classes"), e))?;
    if classes.len() < 2 {
        return Err(StoreError::corrupt(
            format!("model {id} classes"),
            format!("a classifier needs at least 2 classes, found {classes:?}"),
        ));
    }
    let test_metrics: Option<Value> = row.try_get("test_metrics")?;
    Ok(ModelRecord {
        id,
        recipe: row.try_get("recipe")?,
        dataset: row.try_get("dataset")?,
        classes,
        params: row.try_get("params")?,
        metrics: row.try_get("metrics")?,
        test_metrics: test_metrics.filter(|v| !v.is_null()),
        source_job: row.try_get("source_job")?,
        created_at: rfc3339(row.try_get("created_at")?),
        artifact: row.try_get("artifact")?,
        artifact_sha256: row.try_get("artifact_sha256")?,
        config: row.try_get("config")?,
        is_default: row.try_get("is_default")?,
    })
}

/// Insert a model record (on the pool, or inside the transaction that finishes its job).
pub(super) async fn insert<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    model: &ModelRecord,
) -> Result<(), StoreError> {
    let created_at = match model.created_at.as_str() {
        "" => chrono::Utc::now(),
        text => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| StoreError::corrupt(format!("model {} created_at", model.id), e))?
            .into(),
    };
    sqlx::query(&format!(
        "INSERT INTO models ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, false)"
    ))
    .bind(model.id)
    .bind(&model.recipe)
    .bind(&model.dataset)
    .bind(Value::from(model.classes.clone()))
    .bind(&model.params)
    .bind(&model.metrics)
    .bind(&model.test_metrics)
    .bind(model.source_job)
    .bind(created_at)
    .bind(&model.artifact)
    .bind(&model.artifact_sha256)
    .bind(&model.config)
    .execute(executor)
    .await?;
    Ok(())
}

pub(super) async fn get(pool: &PgPool, id: Uuid) -> Result<Option<ModelRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM models WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &PgPool) -> Result<Vec<ModelRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM models ORDER BY created_at DESC, seq DESC"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn default_model(pool: &PgPool) -> Result<Option<ModelRecord>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM models ORDER BY is_default DESC, created_at DESC, seq DESC LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn set_default(pool: &PgPool, id: Uuid) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    // One writer at a time: two replicas setting different defaults cannot leave two.
    sqlx::query("LOCK TABLE models IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let updated = sqlx::query("UPDATE models SET is_default = (id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM models WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() || updated.rows_affected() == 0 {
        return Ok(false); // rolled back: the old default stays
    }
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn delete(pool: &PgPool, id: Uuid) -> Result<Option<ModelRecord>, StoreError> {
    let row = sqlx::query(&format!(
        "DELETE FROM models WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

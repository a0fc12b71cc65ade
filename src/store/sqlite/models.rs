//! Trained-model records: immutable rows pointing at artifacts under the data dir.

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::write::begin_write;
use crate::store::{now, ModelRecord, StoreError};

const COLUMNS: &str = "id, recipe, dataset, classes, params, metrics, test_metrics, source_job, \
    created_at, artifact, artifact_sha256, config, is_default";

/// A stored JSON column, parsed; an unreadable one is an error naming the model and column.
fn json(row: &SqliteRow, id: &str, column: &str) -> Result<Option<Value>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| StoreError::corrupt(format!("model {id} {column}"), e))
}

fn from_row(row: &SqliteRow) -> Result<ModelRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let uuid = |column: &str| -> Result<Uuid, StoreError> {
        let text: String = row.try_get(column)?;
        Uuid::parse_str(&text).map_err(|e| StoreError::corrupt(format!("model {id} {column}"), e))
    };
    let required = |column: &str| -> Result<Value, StoreError> {
        json(row, &id, column)?
            .ok_or_else(|| StoreError::corrupt(format!("model {id} {column}"), "missing"))
    };
    let classes: Vec<String> = serde_json::from_value(required("classes")?)
        .map_err(|e| StoreError::corrupt(format!("model {id} classes"), e))?;
    if classes.len() < 2 {
        return Err(StoreError::corrupt(
            format!("model {id} classes"),
            format!("a classifier needs at least 2 classes, found {classes:?}"),
        ));
    }
    Ok(ModelRecord {
        id: uuid("id")?,
        recipe: row.try_get("recipe")?,
        dataset: row.try_get("dataset")?,
        classes,
        params: required("params")?,
        metrics: required("metrics")?,
        test_metrics: json(row, &id, "test_metrics")?.filter(|v| !v.is_null()),
        source_job: uuid("source_job")?,
        created_at: row.try_get("created_at")?,
        artifact: row.try_get("artifact")?,
        artifact_sha256: row.try_get("artifact_sha256")?,
        config: required("config")?,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
    })
}

/// Insert a model record (on the pool, or inside the transaction that finishes its job).
pub(super) async fn insert<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    model: &ModelRecord,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO models ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
    ))
    .bind(model.id.to_string())
    .bind(&model.recipe)
    .bind(&model.dataset)
    .bind(Value::from(model.classes.clone()).to_string())
    .bind(model.params.to_string())
    .bind(model.metrics.to_string())
    .bind(model.test_metrics.as_ref().map(Value::to_string))
    .bind(model.source_job.to_string())
    .bind(if model.created_at.is_empty() {
        now()
    } else {
        model.created_at.clone()
    })
    .bind(&model.artifact)
    .bind(&model.artifact_sha256)
    .bind(model.config.to_string())
    .execute(executor)
    .await?;
    Ok(())
}

pub(super) async fn get(pool: &SqlitePool, id: Uuid) -> Result<Option<ModelRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM models WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool) -> Result<Vec<ModelRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM models ORDER BY created_at DESC, rowid DESC"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn default_model(pool: &SqlitePool) -> Result<Option<ModelRecord>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM models ORDER BY is_default DESC, created_at DESC, rowid DESC LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn set_default(pool: &SqlitePool, id: Uuid) -> Result<bool, StoreError> {
    let mut tx = begin_write(pool).await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM models WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Ok(false);
    }
    sqlx::query("UPDATE models SET is_default = (id = ?)")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn delete(pool: &SqlitePool, id: Uuid) -> Result<Option<ModelRecord>, StoreError> {
    let mut tx = begin_write(pool).await?;
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM models WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let model = from_row(&row)?;
    sqlx::query("DELETE FROM models WHERE id = ?")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(model))
}

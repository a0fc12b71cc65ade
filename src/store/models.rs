//! Trained models: immutable records pointing at artifacts under the data dir.

use serde::Serialize;
use serde_json::Value;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::now;

#[derive(Debug, Clone, Serialize)]
pub struct ModelRecord {
    pub id: Uuid,
    pub recipe: String,
    pub dataset: String,
    pub classes: Vec<String>,
    pub params: Value,
    pub metrics: Value,
    pub test_metrics: Option<Value>,
    pub source_job: Uuid,
    pub created_at: String,
    /// Artifact path relative to the data dir.
    #[serde(skip)]
    pub artifact: String,
    #[serde(skip)]
    pub artifact_sha256: String,
    pub config: Value,
    pub is_default: bool,
}

const COLUMNS: &str = "id, recipe, dataset, classes, params, metrics, test_metrics, source_job, \
    created_at, artifact, artifact_sha256, config, is_default";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ModelRecord, sqlx::Error> {
    let json = |column: &str| -> Result<Value, sqlx::Error> {
        let text: Option<String> = row.try_get(column)?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null))
    };
    let uuid = |column: &str| -> Result<Uuid, sqlx::Error> {
        let text: String = row.try_get(column)?;
        Uuid::parse_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    let test_metrics = json("test_metrics")?;
    Ok(ModelRecord {
        id: uuid("id")?,
        recipe: row.try_get("recipe")?,
        dataset: row.try_get("dataset")?,
        classes: serde_json::from_value(json("classes")?).unwrap_or_default(),
        params: json("params")?,
        metrics: json("metrics")?,
        test_metrics: (!test_metrics.is_null()).then_some(test_metrics),
        source_job: uuid("source_job")?,
        created_at: row.try_get("created_at")?,
        artifact: row.try_get("artifact")?,
        artifact_sha256: row.try_get("artifact_sha256")?,
        config: json("config")?,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
    })
}

pub async fn insert(pool: &SqlitePool, model: &ModelRecord) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO models ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
    ))
    .bind(model.id.to_string())
    .bind(&model.recipe)
    .bind(&model.dataset)
    .bind(serde_json::to_string(&model.classes).unwrap_or_default())
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
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn get(pool: &SqlitePool, id: Uuid) -> Result<Option<ModelRecord>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM models WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Newest first.
pub async fn list(pool: &SqlitePool) -> Result<Vec<ModelRecord>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM models ORDER BY created_at DESC, rowid DESC"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The model `/predict` uses without `?model=`: the one marked default, else the newest.
pub async fn default_model(pool: &SqlitePool) -> Result<Option<ModelRecord>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM models ORDER BY is_default DESC, created_at DESC, rowid DESC LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Mark one model default (and no other). False if it does not exist.
pub async fn set_default(pool: &SqlitePool, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = super::begin_write(pool).await?;
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

/// Remove the record; returns it so the caller can delete its artifact.
pub async fn delete(pool: &SqlitePool, id: Uuid) -> Result<Option<ModelRecord>, sqlx::Error> {
    let model = get(pool, id).await?;
    if model.is_some() {
        sqlx::query("DELETE FROM models WHERE id = ?")
            .bind(id.to_string())
            .execute(pool)
            .await?;
    }
    Ok(model)
}

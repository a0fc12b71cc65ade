//! Dataset records on SQLite: a name taken once, pointing at a version of files in the
//! artifact store.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use crate::store::{now, DatasetRecord, StoreError};

fn from_row(row: &SqliteRow) -> Result<DatasetRecord, StoreError> {
    let name: String = row.try_get("name")?;
    let version: String = row.try_get("version")?;
    let splits: String = row.try_get("splits")?;
    Ok(DatasetRecord {
        version: Uuid::parse_str(&version)
            .map_err(|e| StoreError::corrupt(format!("dataset {name:?} version"), e))?,
        splits: serde_json::from_str(&splits)
            .map_err(|e| StoreError::corrupt(format!("dataset {name:?} splits"), e))?,
        created_at: row.try_get("created_at")?,
        name,
    })
}

pub(super) async fn insert(pool: &SqlitePool, record: &DatasetRecord) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO datasets (name, version, splits, created_at) VALUES (?, ?, ?, ?)")
        .bind(&record.name)
        .bind(record.version.to_string())
        .bind(record.splits.to_string())
        .bind(now())
        .execute(pool)
        .await
        .map_err(|e| StoreError::taken(e, &record.name))?;
    Ok(())
}

pub(super) async fn get(
    pool: &SqlitePool,
    name: &str,
) -> Result<Option<DatasetRecord>, StoreError> {
    let row = sqlx::query("SELECT * FROM datasets WHERE name = ?")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool) -> Result<Vec<DatasetRecord>, StoreError> {
    let rows = sqlx::query("SELECT * FROM datasets ORDER BY name")
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn delete(
    pool: &SqlitePool,
    name: &str,
) -> Result<Option<DatasetRecord>, StoreError> {
    let row = sqlx::query("DELETE FROM datasets WHERE name = ? RETURNING *")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

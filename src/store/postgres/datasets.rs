//! Dataset records on PostgreSQL: a name taken once, pointing at a version of files in the
//! artifact store.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::rfc3339;
use crate::store::{DatasetRecord, StoreError};

fn from_row(row: &PgRow) -> Result<DatasetRecord, StoreError> {
    Ok(DatasetRecord {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        splits: row.try_get("splits")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

pub(super) async fn insert(pool: &PgPool, record: &DatasetRecord) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO datasets (name, version, splits) VALUES ($1, $2, $3)")
        .bind(&record.name)
        .bind(record.version)
        .bind(&record.splits)
        .execute(pool)
        .await
        .map_err(|e| StoreError::taken(e, &record.name))?;
    Ok(())
}

pub(super) async fn get(pool: &PgPool, name: &str) -> Result<Option<DatasetRecord>, StoreError> {
    let row = sqlx::query("SELECT * FROM datasets WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &PgPool) -> Result<Vec<DatasetRecord>, StoreError> {
    let rows = sqlx::query("SELECT * FROM datasets ORDER BY name")
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn delete(pool: &PgPool, name: &str) -> Result<Option<DatasetRecord>, StoreError> {
    let row = sqlx::query("DELETE FROM datasets WHERE name = $1 RETURNING *")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

//! The events table: what SSE replays. Every recorded event of a job, in id order; ids
//! are global and increasing, so `Last-Event-ID` is a position in this table.

use serde_json::Value;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use crate::store::{now, StoreError, StoredEvent};

pub(super) async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    job_id: Uuid,
    kind: &str,
    data: &Value,
) -> Result<StoredEvent, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (job_id, kind, data, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(job_id.to_string())
    .bind(kind)
    .bind(data.to_string())
    .bind(now())
    .fetch_one(&mut **tx)
    .await?;
    Ok(StoredEvent {
        id,
        job_id,
        kind: kind.to_owned(),
        data: data.clone(),
    })
}

pub(super) async fn after(
    pool: &SqlitePool,
    jobs: &[Uuid],
    after: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let ids: Vec<String> = jobs.iter().map(Uuid::to_string).collect();
    let rows = sqlx::query(
        "SELECT id, job_id, kind, data FROM events \
         WHERE job_id IN (SELECT value FROM json_each(?)) AND id > ? ORDER BY id",
    )
    .bind(Value::from(ids).to_string())
    .bind(after)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let job_id: String = row.try_get("job_id")?;
            let data: String = row.try_get("data")?;
            let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(format!("event {id}"), e);
            Ok(StoredEvent {
                id,
                job_id: Uuid::parse_str(&job_id).map_err(|e| corrupt(&e))?,
                kind: row.try_get("kind")?,
                data: serde_json::from_str(&data).map_err(|e| corrupt(&e))?,
            })
        })
        .collect()
}

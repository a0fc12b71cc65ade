//! The events table on PostgreSQL: inserted in order under one advisory lock, read back
//! by job and id for SSE replay.

use serde_json::Value;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::store::{StoreError, StoredEvent};

/// Held from an event's id being drawn until its transaction commits: ids then commit in
/// increasing order, so a reader that has seen id N has seen every id below it.
const EVENT_ORDER_LOCK: i64 = 0x7667_6765_7665;

pub(super) type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Insert an event as the last write of `tx` (the advisory lock is the last lock taken,
/// so no transaction waits for a row while holding it).
pub(super) async fn insert(
    tx: &mut Tx,
    job_id: Uuid,
    kind: &str,
    data: &Value,
) -> Result<StoredEvent, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_ORDER_LOCK)
        .execute(&mut **tx)
        .await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (job_id, kind, data) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(job_id)
    .bind(kind)
    .bind(data)
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
    pool: &PgPool,
    jobs: &[Uuid],
    after: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, job_id, kind, data FROM events WHERE job_id = ANY($1) AND id > $2 ORDER BY id",
    )
    .bind(jobs)
    .bind(after)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredEvent {
                id: row.try_get("id")?,
                job_id: row.try_get("job_id")?,
                kind: row.try_get("kind")?,
                data: row.try_get("data")?,
            })
        })
        .collect()
}

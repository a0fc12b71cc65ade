//! What other processes on the same SQLite file write (a `vggserve worker` beside the
//! API), found by polling, as SQLite has no notifications: new events by id, and running
//! jobs' progress, turned into this process's [`Notice`]s.

use std::collections::HashMap;
use std::sync::PoisonError;

use sqlx::SqlitePool;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{Announced, POLL};
use crate::store::{Notice, Progress};

/// Events recorded and progress written by other processes on the same file (a `vggserve
/// worker` beside the API) are found by polling, as SQLite has no notifications: the
/// events table by id, and running jobs' progress. Stops when the pool is closed.
pub(super) async fn watch_others(
    pool: SqlitePool,
    notices: broadcast::Sender<Notice>,
    announced: Announced,
) {
    let mut last: i64 = match sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
        .fetch_one(&pool)
        .await
    {
        Ok(last) => last,
        Err(_) => return,
    };
    loop {
        tokio::time::sleep(POLL).await;
        if pool.is_closed() {
            return;
        }
        let rows: Vec<(i64, String)> = match sqlx::query_as(
            "SELECT id, job_id FROM events WHERE id > ? ORDER BY id LIMIT 1000",
        )
        .bind(last)
        .fetch_all(&pool)
        .await
        {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "cannot poll the events table");
                continue;
            }
        };
        for (id, job_id) in rows {
            last = id;
            if let Ok(job_id) = Uuid::parse_str(&job_id) {
                let _ = notices.send(Notice::Recorded { job_id, id });
            }
        }
        if let Err(error) = poll_progress(&pool, &notices, &announced).await {
            tracing::warn!(%error, "cannot poll running jobs' progress");
        }
    }
}

async fn poll_progress(
    pool: &SqlitePool,
    notices: &broadcast::Sender<Notice>,
    announced: &Announced,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT id, progress_done, progress_total, progress_unit FROM jobs WHERE status = 'running'",
    )
    .fetch_all(pool)
    .await?;
    let mut announced = announced.lock().unwrap_or_else(PoisonError::into_inner);
    let running: HashMap<Uuid, Progress> = rows
        .into_iter()
        .filter_map(|(id, done, total, unit)| {
            let id = Uuid::parse_str(&id).ok()?;
            Some((id, Progress { done, total, unit }))
        })
        .collect();
    for (job_id, progress) in &running {
        if progress.total > 0 && announced.get(job_id) != Some(progress) {
            let _ = notices.send(Notice::Progress {
                job_id: *job_id,
                progress: progress.clone(),
            });
        }
    }
    *announced = running;
    Ok(())
}

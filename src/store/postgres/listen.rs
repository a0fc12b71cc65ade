//! One `LISTEN`ing connection per process: recorded events (the events table's trigger) and
//! progress (`set_progress`'s own `NOTIFY`) become [`Notice`]s for this process's SSE
//! streams. When the connection drops (a PostgreSQL restart), notices sent meanwhile are
//! lost, so after reconnecting the events recorded since the last one seen are read back.

use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::store::{Notice, Progress};

pub(super) const EVENTS: &str = "vggserve_events";
pub(super) const PROGRESS: &str = "vggserve_progress";

/// A progress `NOTIFY`'s payload.
#[derive(Debug, serde::Serialize, Deserialize)]
pub(super) struct ProgressPayload {
    pub job_id: Uuid,
    #[serde(flatten)]
    pub progress: Progress,
}

/// Runs for the life of the process.
pub(super) async fn relay(pool: PgPool, notices: broadcast::Sender<Notice>) {
    // None until the newest id at start is known.
    let mut last_seen: Option<i64> = None;
    let mut catch_up = true;
    let mut listener: Option<PgListener> = None;
    loop {
        if listener.is_none() {
            match connect(&pool).await {
                Ok(l) => listener = Some(l),
                Err(error) => {
                    tracing::warn!(%error, "cannot LISTEN for job events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        if catch_up {
            match recorded_since(&pool, &mut last_seen, &notices).await {
                Ok(()) => catch_up = false,
                Err(error) => {
                    tracing::warn!(%error, "cannot read recorded events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let Some(active) = listener.as_mut() else {
            continue;
        };
        match active.try_recv().await {
            Ok(Some(notification)) => {
                if let Some(notice) = parse(notification.channel(), notification.payload()) {
                    if let (Notice::Recorded { id, .. }, Some(last)) = (&notice, &mut last_seen) {
                        *last = (*last).max(*id);
                    }
                    let _ = notices.send(notice);
                }
            }
            // The connection dropped; the listener reconnects on its next call.
            Ok(None) => {
                tracing::warn!("lost the LISTEN connection to PostgreSQL; reconnecting");
                catch_up = true;
            }
            Err(error) => {
                tracing::warn!(%error, "LISTEN failed; reconnecting");
                listener = None;
                catch_up = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([EVENTS, PROGRESS]).await?;
    Ok(listener)
}

/// Announce every event recorded after `last_seen`; at start, only learn the newest id.
async fn recorded_since(
    pool: &PgPool,
    last_seen: &mut Option<i64>,
    notices: &broadcast::Sender<Notice>,
) -> Result<(), sqlx::Error> {
    let Some(last) = last_seen else {
        let newest = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(pool)
            .await?;
        *last_seen = Some(newest);
        return Ok(());
    };
    let rows: Vec<(i64, Uuid)> =
        sqlx::query_as("SELECT id, job_id FROM events WHERE id > $1 ORDER BY id")
            .bind(*last)
            .fetch_all(pool)
            .await?;
    for (id, job_id) in rows {
        *last = id;
        let _ = notices.send(Notice::Recorded { job_id, id });
    }
    Ok(())
}

fn parse(channel: &str, payload: &str) -> Option<Notice> {
    match channel {
        EVENTS => {
            let (job_id, id) = payload.split_once(' ')?;
            Some(Notice::Recorded {
                job_id: job_id.parse().ok()?,
                id: id.parse().ok()?,
            })
        }
        PROGRESS => {
            let p: ProgressPayload = serde_json::from_str(payload).ok()?;
            Some(Notice::Progress {
                job_id: p.job_id,
                progress: p.progress,
            })
        }
        _ => None,
    }
}

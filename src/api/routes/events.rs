//! `GET /v1/jobs/{id}/events`: server-sent events. A client first gets every recorded event
//! after its `Last-Event-ID` (all of them when new), then live ones, and the stream ends
//! after the job's terminal status. A subscriber that falls behind the broadcast channel
//! resyncs from the database, so it never slows the worker and never misses an epoch.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use crate::api::{ApiError, AppState};
use crate::jobs::JobEvent;
use crate::store::jobs as job_store;
use crate::store::JobStatus;

pub async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = ApiError::parse_id(&id, "job")?;
    if job_store::get(&state.pool, id).await?.is_none() {
        return Err(ApiError::not_found(format!("job {id} not found")).field("id"));
    }
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    // Subscribe before reading the history, so nothing falls between the two.
    let live = state.hub.subscribe();
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(feed(state, id, last_seen, live, sender));
    Ok(Sse::new(ReceiverStream::new(receiver))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn to_sse(event: &JobEvent) -> Event {
    Event::default()
        .id(event.id.to_string())
        .event(event.kind.clone())
        .data(event.data.to_string())
}

fn is_terminal(event: &JobEvent) -> bool {
    event.kind == "status"
        && event.data["status"]
            .as_str()
            .and_then(JobStatus::parse)
            .is_some_and(JobStatus::is_terminal)
}

/// Send recorded events after `last_sent` from the store; true when the stream is over.
async fn replay(
    state: &AppState,
    id: Uuid,
    last_sent: &mut i64,
    sender: &mpsc::Sender<Result<Event, Infallible>>,
) -> Result<bool, ()> {
    let events = crate::store::events::events_after(&state.pool, id, *last_sent)
        .await
        .map_err(|error| {
            tracing::error!(%error, "SSE replay failed");
        })?;
    for stored in events {
        let event = JobEvent::from(stored);
        sender.send(Ok(to_sse(&event))).await.map_err(|_| ())?;
        *last_sent = event.id;
        if is_terminal(&event) {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn feed(
    state: AppState,
    id: Uuid,
    mut last_sent: i64,
    mut live: broadcast::Receiver<JobEvent>,
    sender: mpsc::Sender<Result<Event, Infallible>>,
) {
    match replay(&state, id, &mut last_sent, &sender).await {
        Ok(true) | Err(()) => return,
        Ok(false) => {}
    }
    // A late client also gets where the job stands now, before the next live progress.
    if let Ok(Some(job)) = job_store::get(&state.pool, id).await {
        if job.status == JobStatus::Running && job.progress.total > 0 {
            let progress = JobEvent {
                id: last_sent,
                job_id: id,
                kind: "progress".into(),
                data: serde_json::json!(job.progress),
                recorded: false,
            };
            if sender.send(Ok(to_sse(&progress))).await.is_err() {
                return;
            }
        }
    }
    loop {
        match live.recv().await {
            Ok(event) if event.job_id != id => {}
            Ok(event) if !event.recorded => {
                if sender.send(Ok(to_sse(&event))).await.is_err() {
                    return;
                }
            }
            Ok(event) if event.id <= last_sent => {} // already sent from the store
            // A newer recorded event, or a lag: whatever was recorded since the last one
            // sent comes from the store, in order, so the client sees no gap or repeat.
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                match replay(&state, id, &mut last_sent, &sender).await {
                    Ok(true) | Err(()) => return,
                    Ok(false) => {}
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

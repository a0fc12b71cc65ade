//! `GET /v1/jobs/{id}/events`: server-sent events. A client first gets every recorded event
//! after its `Last-Event-ID` (all of them when new), then live ones, and the stream ends
//! after the job's terminal status. Live means the store's notices ([`Notice`]), which
//! come from whichever process recorded the event (a worker on another machine included):
//! a recorded one is read back from the store by id, so the client sees no gap or repeat,
//! and a subscriber that falls behind resyncs from the store the same way.
//! Each job has at most `--max-sse-subscribers-per-job` live streams (429 beyond); a slot is
//! held by the task feeding the stream and given back when that task ends.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use crate::api::extract::PathId;
use crate::api::{ApiError, AppState, ErrorBody};
use crate::domain::{JobStatus, Notice, StoredEvent};

/// What is sent: a recorded event, or progress carrying the last recorded id sent.
struct JobEvent {
    id: i64,
    kind: String,
    data: serde_json::Value,
}

impl From<StoredEvent> for JobEvent {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            data: e.data,
        }
    }
}

/// How often a live stream also reads its job's events from the store.
const REREAD: Duration = Duration::from_secs(30);

/// One server-sent event, as a client parses it from the stream.
#[derive(Debug, utoipa::ToSchema)]
pub struct SseEvent {
    /// `status`, `epoch` or `progress`.
    pub event: String,
    /// The last recorded event's id: send it back as `Last-Event-ID` to resume.
    pub id: String,
    /// The event's JSON: `{"status"}`, an epoch's metrics, or `{"done","total","unit"}`.
    pub data: String,
}

/// Server-sent events of a job: `status`, `epoch` and `progress`, replayed then live.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/events",
    tag = "jobs",
    params(
        ("id" = uuid::Uuid, Path, description = "Job id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
        ("access_token" = Option<String>, Query, description = "The API token, for EventSource clients that cannot send headers"),
    ),
    responses(
        (status = 200, description = "An event stream that ends after the job's final status", content_type = "text/event-stream", body = SseEvent),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 429, description = "Too many live streams on this job", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(job = %id))]
pub async fn stream(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if state.store.job(id).await?.is_none() {
        return Err(ApiError::not_found(format!("job {id} not found")).field("id"));
    }
    let max = state.settings.max_sse_subscribers_per_job as usize;
    let Some(slot) = state.sse_subscribers.try_acquire(id, max) else {
        return Err(ApiError::too_many(format!(
            "job {id} already has {max} live event streams, the most allowed; close one first"
        ))
        .field("id"));
    };
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    // Subscribe before reading the history, so nothing falls between the two.
    let live = state.store.subscribe();
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        // The slot lives exactly as long as the feeding task: it ends after the terminal
        // status, on an error, or as soon as the client has gone (see `feed`).
        let _slot = slot;
        feed(state, id, last_seen, live, sender).await;
    });
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
            .and_then(|s| s.parse::<JobStatus>().ok())
            .is_some_and(JobStatus::is_terminal)
}

/// Send recorded events after `last_sent` from the store; true when the stream is over.
async fn replay(
    state: &AppState,
    id: Uuid,
    last_sent: &mut i64,
    sender: &mpsc::Sender<Result<Event, Infallible>>,
) -> Result<bool, ()> {
    let events = state
        .store
        .events_after(id, *last_sent)
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
    mut live: broadcast::Receiver<Notice>,
    sender: mpsc::Sender<Result<Event, Infallible>>,
) {
    match replay(&state, id, &mut last_sent, &sender).await {
        Ok(true) | Err(()) => return,
        Ok(false) => {}
    }
    // A late client also gets where the job stands now, before the next live progress.
    if let Ok(Some(job)) = state.store.job(id).await {
        if job.status == JobStatus::Running && job.progress.total > 0 {
            let progress = JobEvent {
                id: last_sent,
                kind: "progress".into(),
                data: serde_json::json!(job.progress),
            };
            if sender.send(Ok(to_sse(&progress))).await.is_err() {
                return;
            }
        }
    }
    // Notices are how events arrive; reading the store now and then as well means a lost
    // notice (a notification connection gone quiet) delays an event, never loses it.
    let mut reread = tokio::time::interval(REREAD);
    reread.reset();
    loop {
        let received = tokio::select! {
            // The client went away: end now, giving its slot back, rather than at the job's
            // next event, which for a queued job may be hours away.
            () = sender.closed() => return,
            received = live.recv() => received,
            _ = reread.tick() => Err(broadcast::error::RecvError::Lagged(0)),
        };
        match received {
            Ok(notice) if notice.job_id() != id => {}
            Ok(Notice::Progress { progress, .. }) => {
                let event = JobEvent {
                    id: last_sent,
                    kind: "progress".into(),
                    data: serde_json::json!(progress),
                };
                if sender.send(Ok(to_sse(&event))).await.is_err() {
                    return;
                }
            }
            Ok(Notice::Recorded { id: recorded, .. }) if recorded <= last_sent => {} // sent
            // A newer recorded event, or a lag: whatever was recorded since the last one
            // sent comes from the store, in order, so the client sees no gap or repeat.
            Ok(Notice::Recorded { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                match replay(&state, id, &mut last_sent, &sender).await {
                    Ok(true) | Err(()) => return,
                    Ok(false) => {}
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

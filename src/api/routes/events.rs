//! `GET /v1/jobs/{id}/events`: server-sent events. A client first gets every recorded event
//! after its `Last-Event-ID` (all of them when new), then live ones, and the stream ends
//! after the job's terminal status. Live means the store's notices ([`Notice`]), which
//! come from whichever process recorded the event (a worker on another machine included):
//! a recorded one is read back from the store by id, so the client sees no gap or repeat,
//! and a subscriber that falls behind resyncs from the store the same way.
//! Each job has at most `--max-sse-subscribers-per-job` live streams (429 beyond); a slot is
//! held by the task feeding the stream and given back when that task ends. A pipeline's
//! stream (`pipelines`) is the same feed over all its jobs ([`Subject`]).

use std::collections::{HashMap, HashSet};
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
use crate::domain::{JobStatus, Notice, Pipeline};
use crate::store::StoreError;

/// What is sent: a recorded event, or progress carrying the last recorded id sent.
struct JobEvent {
    id: i64,
    kind: String,
    data: serde_json::Value,
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
    open_stream(state, id, Subject::job(id), &headers)
}

/// What a stream follows: one job, or a pipeline's jobs, each event then naming its step
/// and job. It ends once every job's final status has been sent.
pub struct Subject {
    steps: HashMap<Uuid, Option<String>>,
    ended: HashSet<Uuid>,
}

impl Subject {
    pub fn job(id: Uuid) -> Self {
        Self {
            steps: HashMap::from([(id, None)]),
            ended: HashSet::new(),
        }
    }

    pub fn pipeline(pipeline: &Pipeline) -> Self {
        let steps = pipeline
            .jobs
            .iter()
            .map(|job| (job.id, Some(job.step.clone().unwrap_or_default())))
            .collect();
        Self {
            steps,
            ended: HashSet::new(),
        }
    }

    fn jobs(&self) -> Vec<Uuid> {
        self.steps.keys().copied().collect()
    }

    /// The event as the client gets it: with `step` and `job` when following a pipeline.
    fn event(&self, job: Uuid, id: i64, kind: &str, mut data: serde_json::Value) -> JobEvent {
        if let Some(Some(step)) = self.steps.get(&job) {
            if let Some(fields) = data.as_object_mut() {
                fields.insert("step".into(), step.clone().into());
                fields.insert("job".into(), job.to_string().into());
            }
        }
        JobEvent {
            id,
            kind: kind.to_owned(),
            data,
        }
    }

    /// Note a sent event; true once every job has ended.
    fn sent(&mut self, job: Uuid, event: &JobEvent) -> bool {
        if is_terminal(&event.kind, &event.data) {
            self.ended.insert(job);
        }
        self.ended.len() == self.steps.len()
    }
}

/// Stream `subject`'s events from after the client's `Last-Event-ID`, holding one of the
/// live-stream slots of `key` (the job's or pipeline's id).
pub fn open_stream(
    state: AppState,
    key: Uuid,
    mut subject: Subject,
    headers: &HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let max = state.settings.max_sse_subscribers_per_job as usize;
    let Some(slot) = state.sse_subscribers.try_acquire(key, max) else {
        return Err(ApiError::too_many(format!(
            "{key} already has {max} live event streams, the most allowed; close one first"
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
        if ended_before(&state, &mut subject, last_seen).await.is_ok() {
            feed(state, subject, last_seen, live, sender).await;
        }
    });
    Ok(Sse::new(ReceiverStream::new(receiver))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Mark the jobs whose final status came at or before `last_seen` (a client resuming
/// after it): the stream need not wait for them again.
async fn ended_before(state: &AppState, subject: &mut Subject, last_seen: i64) -> Result<(), ()> {
    if last_seen == 0 {
        return Ok(());
    }
    let jobs = subject.jobs();
    let error = |error: StoreError| tracing::error!(%error, "SSE resume failed");
    // Statuses before events: a job that ends in between has its final event read below,
    // so it is never taken as ended without that event being sent.
    let mut ended_now = Vec::new();
    for &id in &jobs {
        let job = state.store.job(id).await.map_err(error)?;
        if job.is_some_and(|j| j.status.is_terminal()) {
            ended_now.push(id);
        }
    }
    let later = state
        .store
        .events_after(&jobs, last_seen)
        .await
        .map_err(error)?;
    for id in ended_now {
        let ends_later = later
            .iter()
            .any(|e| e.job_id == id && is_terminal(&e.kind, &e.data));
        if !ends_later {
            subject.ended.insert(id);
        }
    }
    Ok(())
}

fn to_sse(event: &JobEvent) -> Event {
    Event::default()
        .id(event.id.to_string())
        .event(event.kind.clone())
        .data(event.data.to_string())
}

fn is_terminal(kind: &str, data: &serde_json::Value) -> bool {
    kind == "status"
        && data["status"]
            .as_str()
            .and_then(|s| s.parse::<JobStatus>().ok())
            .is_some_and(JobStatus::is_terminal)
}

/// Send recorded events after `last_sent` from the store; true when the stream is over.
async fn replay(
    state: &AppState,
    subject: &mut Subject,
    last_sent: &mut i64,
    sender: &mpsc::Sender<Result<Event, Infallible>>,
) -> Result<bool, ()> {
    let events = state
        .store
        .events_after(&subject.jobs(), *last_sent)
        .await
        .map_err(|error| {
            tracing::error!(%error, "SSE replay failed");
        })?;
    for stored in events {
        let job = stored.job_id;
        let event = subject.event(job, stored.id, &stored.kind, stored.data);
        sender.send(Ok(to_sse(&event))).await.map_err(|_| ())?;
        *last_sent = event.id;
        if subject.sent(job, &event) {
            return Ok(true);
        }
    }
    Ok(subject.ended.len() == subject.steps.len())
}

async fn feed(
    state: AppState,
    mut subject: Subject,
    mut last_sent: i64,
    mut live: broadcast::Receiver<Notice>,
    sender: mpsc::Sender<Result<Event, Infallible>>,
) {
    match replay(&state, &mut subject, &mut last_sent, &sender).await {
        Ok(true) | Err(()) => return,
        Ok(false) => {}
    }
    // A late client also gets where the running jobs stand now, before their next progress.
    for id in subject.jobs() {
        if let Ok(Some(job)) = state.store.job(id).await {
            if job.status == JobStatus::Running && job.progress.total > 0 {
                let progress =
                    subject.event(id, last_sent, "progress", serde_json::json!(job.progress));
                if sender.send(Ok(to_sse(&progress))).await.is_err() {
                    return;
                }
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
            Ok(notice) if !subject.steps.contains_key(&notice.job_id()) => {}
            Ok(Notice::Progress { job_id, progress }) => {
                let event =
                    subject.event(job_id, last_sent, "progress", serde_json::json!(progress));
                if sender.send(Ok(to_sse(&event))).await.is_err() {
                    return;
                }
            }
            Ok(Notice::Recorded { id: recorded, .. }) if recorded <= last_sent => {} // sent
            // A newer recorded event, or a lag: whatever was recorded since the last one
            // sent comes from the store, in order, so the client sees no gap or repeat.
            Ok(Notice::Recorded { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                match replay(&state, &mut subject, &mut last_sent, &sender).await {
                    Ok(true) | Err(()) => return,
                    Ok(false) => {}
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

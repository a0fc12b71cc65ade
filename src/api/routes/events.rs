//! `GET /v1/jobs/{id}/events`: server-sent events. A client first gets every recorded event
//! after its `Last-Event-ID` (all of them when new), then live ones, and the stream ends
//! after the job's terminal status. A subscriber that falls behind the broadcast channel
//! resyncs from the database, so it never slows the worker and never misses an epoch.
//! Each job has at most `--max-sse-subscribers-per-job` live streams (429 beyond); a slot is
//! held by the task feeding the stream and given back when that task ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
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
    let max = state.settings.max_sse_subscribers_per_job as usize;
    let Some(slot) = state.sse_subscribers.try_acquire(id, max) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "job {id} already has {max} live event streams, the most allowed; close one first"
            ),
        )
        .field("id"));
    };
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    // Subscribe before reading the history, so nothing falls between the two.
    let live = state.hub.subscribe();
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

/// How many live streams each job has. A job's entry goes when its last stream ends, so
/// the map only holds jobs being watched right now.
#[derive(Clone, Default)]
pub struct SubscriberLimits {
    counts: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl SubscriberLimits {
    /// A slot for one more stream of job `id`, or None when it already has `max`.
    fn try_acquire(&self, id: Uuid, max: usize) -> Option<SubscriberSlot> {
        // The critical sections cannot panic, so a poisoned lock still holds valid counts.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.get(&id).copied().unwrap_or(0);
        if count >= max {
            return None;
        }
        counts.insert(id, count + 1);
        Some(SubscriberSlot {
            limits: self.clone(),
            id,
        })
    }
}

/// One live stream's place in its job's count; given back on drop.
struct SubscriberSlot {
    limits: SubscriberLimits,
    id: Uuid,
}

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        let mut counts = self
            .limits
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.id);
            }
        }
    }
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
        let received = tokio::select! {
            // The client went away: end now, giving its slot back, rather than at the job's
            // next event, which for a queued job may be hours away.
            () = sender.closed() => return,
            received = live.recv() => received,
        };
        match received {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_job_and_given_back_on_drop() {
        let limits = SubscriberLimits::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = limits.try_acquire(a, 2).expect("first");
        let second = limits.try_acquire(a, 2).expect("second");
        assert!(limits.try_acquire(a, 2).is_none());
        let other = limits
            .try_acquire(b, 2)
            .expect("another job has its own count");
        drop(first);
        let third = limits.try_acquire(a, 2).expect("a dropped slot comes back");
        drop((second, third, other));
        assert!(limits.counts.lock().unwrap().is_empty());
    }
}

//! Live job events. Recorded events (status, epoch) are written to the database first and
//! then broadcast with their database id; progress events are live-only and carry the id of
//! the last recorded event, so `Last-Event-ID` resumes without gaps or repeats.
//!
//! One bounded broadcast channel serves every subscriber: a slow subscriber lags (and
//! resyncs from the database) instead of slowing the worker.

use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::StoredEvent;

#[derive(Debug, Clone)]
pub struct JobEvent {
    /// Database id for recorded events; for progress, the last recorded id before it.
    pub id: i64,
    pub job_id: Uuid,
    pub kind: String,
    pub data: Value,
    /// Whether the event is in the database (replayable).
    pub recorded: bool,
}

impl From<StoredEvent> for JobEvent {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.id,
            job_id: e.job_id,
            kind: e.kind,
            data: e.data,
            recorded: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EventHub {
    sender: broadcast::Sender<JobEvent>,
}

impl EventHub {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }

    /// Never blocks; with no subscribers the event is simply dropped (it is in the store).
    pub fn publish(&self, event: JobEvent) {
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.sender.subscribe()
    }
}

//! How a running job reports: epochs recorded durably then broadcast, progress (at most 4 a
//! second) stored and broadcast, and whether to stop: the cancel flag (set here by
//! `POST /cancel`, or read back from the store with each progress report) and shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::runtime::Handle;
use uuid::Uuid;

use super::control::Shared;
use super::events::{EventHub, JobEvent};
use crate::domain::{EpochMetrics, Progress};
use crate::store::SharedStore;
use crate::train::Reporter;

/// Reports to the store and the event hub; progress at most 4 times a second.
pub struct JobReporter {
    store: SharedStore,
    hub: EventHub,
    runtime: Handle,
    job_id: Uuid,
    cancel: Arc<AtomicBool>,
    shared: Arc<Shared>,
    last_progress: Option<Instant>,
    /// The id of the last recorded event: progress events carry it (see `events`).
    last_event_id: i64,
}

impl JobReporter {
    pub(super) fn new(
        store: SharedStore,
        hub: EventHub,
        runtime: Handle,
        job_id: Uuid,
        cancel: Arc<AtomicBool>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            store,
            hub,
            runtime,
            job_id,
            cancel,
            shared,
            last_progress: None,
            last_event_id: 0,
        }
    }
}

impl Reporter for JobReporter {
    fn progress(&mut self, done: u64, total: u64, unit: &str) {
        let due = self
            .last_progress
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(250));
        if !due && done < total {
            return;
        }
        self.last_progress = Some(Instant::now());
        let progress = Progress {
            done: done as i64,
            total: total as i64,
            unit: unit.to_owned(),
        };
        match self
            .runtime
            .block_on(self.store.set_progress(self.job_id, &progress))
        {
            // A cancel asked of the store (by any process) stops the job like a local one.
            Ok(true) => self.cancel.store(true, Ordering::SeqCst),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot record progress"),
        }
        self.hub.publish(JobEvent {
            id: self.last_event_id,
            job_id: self.job_id,
            kind: "progress".into(),
            data: json!(progress),
            recorded: false,
        });
    }

    fn epoch(&mut self, metrics: &EpochMetrics) -> anyhow::Result<()> {
        let event = self
            .runtime
            .block_on(self.store.record_epoch(self.job_id, metrics))?;
        self.last_event_id = event.id;
        metrics::histogram!("epoch_seconds").record(metrics.seconds);
        tracing::info!(
            epoch = metrics.epoch,
            loss = metrics.loss,
            acc = metrics.acc,
            val_loss = metrics.val_loss,
            val_acc = metrics.val_acc,
            "epoch"
        );
        self.hub.publish(event.into());
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.shared.shutdown.load(Ordering::SeqCst)
    }
}

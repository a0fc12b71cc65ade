//! How a running job reports: epochs recorded durably then broadcast, progress (at most 4 a
//! second) stored and broadcast, and the cancel/shutdown flags a recipe checks each batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::SqlitePool;
use tokio::runtime::Handle;
use uuid::Uuid;

use super::events::{EventHub, JobEvent};
use crate::store::jobs as job_store;
use crate::store::{EpochMetrics, Progress};
use crate::train::Reporter;

/// Reports to the database and the event hub; progress at most 4 times a second.
pub(super) struct JobReporter {
    pub(super) pool: SqlitePool,
    pub(super) hub: EventHub,
    pub(super) rt: Handle,
    pub(super) job_id: Uuid,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) shutdown: Arc<AtomicBool>,
    pub(super) last_progress: Option<Instant>,
    pub(super) last_event_id: i64,
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
        if let Err(error) =
            self.rt
                .block_on(job_store::set_progress(&self.pool, self.job_id, &progress))
        {
            tracing::warn!(%error, "cannot record progress");
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
            .rt
            .block_on(job_store::record_epoch(&self.pool, self.job_id, metrics))?;
        self.last_event_id = event.id;
        metrics::histogram!("epoch_seconds").record(metrics.seconds);
        tracing::info!(job = %self.job_id, epoch = metrics.epoch, loss = metrics.loss, acc = metrics.acc,
            val_loss = metrics.val_loss, val_acc = metrics.val_acc, "epoch");
        self.hub.publish(event.into());
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.shutdown.load(Ordering::SeqCst)
    }
}

//! How a running job reports: epochs recorded durably, progress at most 4 times a second
//! (the store tells every API process of both), each write fenced on the job's lease; and
//! whether to stop: the cancel flag (set here by `POST /cancel`, or read back from the
//! store with each progress report or heartbeat, or set when the lease is lost) and
//! shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::control::Shared;
use super::lease::outlasting_outage;
use crate::domain::{EpochMetrics, Lease, Progress};
use crate::store::{SharedStore, StoreError};
use crate::train::Reporter;

/// Reports to the store under the job's lease; progress at most 4 times a second.
pub struct JobReporter {
    store: SharedStore,
    runtime: Handle,
    lease: Lease,
    cancel: Arc<AtomicBool>,
    shared: Arc<Shared>,
    last_progress: Option<Instant>,
}

impl JobReporter {
    pub(super) fn new(
        store: SharedStore,
        runtime: Handle,
        lease: Lease,
        cancel: Arc<AtomicBool>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            store,
            runtime,
            lease,
            cancel,
            shared,
            last_progress: None,
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
            .block_on(self.store.set_progress(&self.lease, &progress))
        {
            // A cancel asked of the store (by any process) stops the job like a local one,
            // and so does a lease that passed to another worker.
            Ok(true) | Err(StoreError::LeaseLost(_)) => self.cancel.store(true, Ordering::SeqCst),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot record progress"),
        }
    }

    fn epoch(&mut self, metrics: &EpochMetrics) -> anyhow::Result<()> {
        let (store, lease) = (&self.store, &self.lease);
        let record = outlasting_outage(|| store.record_epoch(lease, metrics));
        let event = self.runtime.block_on(record)?;
        metrics::histogram!("epoch_seconds").record(metrics.seconds);
        tracing::info!(
            epoch = metrics.epoch,
            loss = metrics.loss,
            acc = metrics.acc,
            val_loss = metrics.val_loss,
            val_acc = metrics.val_acc,
            event = event.id,
            "epoch"
        );
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.shared.shutdown.load(Ordering::SeqCst)
    }
}

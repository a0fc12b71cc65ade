//! The worker: one `std::thread` that owns training and runs queued jobs one at a time in
//! FIFO order, claiming them from the store (the durable queue) under a lease that a
//! heartbeat task extends while the job runs (`lease`); its loop, and the settling of jobs
//! whose worker was lost, are `claim_loop`'s. The async side holds a [`WorkerHandle`]
//! (wake up, cancel); [`Worker`] owns the thread and joins it on shutdown or drop. A running job cannot take commands, so the
//! two share one [`Shared`] state: the job running now with its cancel flag, and the
//! shutdown flag, checked every batch.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::claim_loop::Loop;
pub use super::claim_loop::{JobRunner, WorkerConfig};
use super::control::Shared;
use crate::store::SharedStore;

/// The async side's handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
    /// Capacity one: wake-ups coalesce, and a full channel already means "look again".
    wake: SyncSender<()>,
}

impl WorkerHandle {
    /// A job was queued: look at the queue now rather than at the next poll.
    pub fn notify(&self) {
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => tracing::warn!("the worker has stopped"),
        }
    }

    /// Ask the running job `id` to stop at its next batch. False if it is not running here.
    pub fn cancel(&self, id: Uuid) -> bool {
        match &*self.shared.current() {
            Some((running, flag)) if *running == id => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }
}

/// Owns the worker thread: [`Worker::shutdown`] (or dropping it) stops it after its
/// current batch and joins it, giving the interrupted job back to the queue.
pub struct Worker {
    handle: WorkerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Forwards the store's notices as wake-ups; aborted on stop.
    watcher: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Start the thread. It runs blocking store calls on `runtime`.
    pub fn spawn(
        store: SharedStore,
        config: WorkerConfig,
        runner: impl JobRunner,
        runtime: Handle,
    ) -> std::io::Result<Self> {
        let (wake, woken) = mpsc::sync_channel(1);
        let handle = WorkerHandle {
            shared: Arc::default(),
            wake,
        };
        tracing::info!(owner = %config.owner, kinds = ?config.kinds, lease = ?config.lease, "worker starting");
        let state = Loop {
            store,
            config,
            runtime,
            shared: handle.shared.clone(),
        };
        // A job queued by another process wakes this worker through the store's notices
        // (any recorded event: a claim attempt is one query), not at its next poll.
        let mut notices = state.store.subscribe();
        let waker = handle.clone();
        let watcher = state.runtime.spawn(async move {
            while !matches!(notices.recv().await, Err(RecvError::Closed)) {
                waker.notify();
            }
        });
        let thread = std::thread::Builder::new()
            .name("vggserve-worker".into())
            .spawn(move || state.run(runner, woken))?;
        Ok(Self {
            handle,
            thread: Some(thread),
            watcher,
        })
    }

    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// Stop after the current batch and wait for the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.watcher.abort();
        self.handle.shared.shutdown.store(true, Ordering::SeqCst);
        self.handle.notify();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the worker thread panicked");
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;

//! The worker: one `std::thread` that owns training and runs queued jobs one at a time in
//! FIFO order, claiming them from the store (the durable queue). The async side holds a
//! [`WorkerHandle`] (wake up, cancel); [`Worker`] owns the thread and joins it on shutdown
//! or drop. A running job cannot take commands, so the two share one [`Shared`] state: the
//! job running now with its cancel flag, and the shutdown flag, checked every batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tracing::Instrument;
use uuid::Uuid;

use super::control::Shared;
use super::events::EventHub;
use super::reporter::JobReporter;
use crate::domain::{Job, JobStatus, Outcome};
use crate::store::SharedStore;
use crate::train::recipes;
use crate::train::TrainError;

/// What runs a claimed job: the recipes in production, a stand-in in the worker's tests.
pub trait JobRunner: Send + 'static {
    /// Run `job` to its end, reporting through `reporter`; a trained model comes back
    /// saved but not yet registered.
    fn run(
        &mut self,
        job: &Job,
        reporter: &mut JobReporter,
    ) -> Result<recipes::Outcome, TrainError>;
    /// Record the model a job trained; returns its id.
    fn register(&mut self, job: &Job, model: recipes::TrainedModel) -> anyhow::Result<Uuid>;
    /// Drop what a finished job no longer needs (its checkpoint).
    fn cleanup(&mut self, job: &Job);
}

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
/// current batch and joins it. The interrupted job is settled at the next start.
pub struct Worker {
    handle: WorkerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Start the thread. It runs blocking store calls on `runtime`.
    pub fn spawn(
        store: SharedStore,
        hub: EventHub,
        runner: impl JobRunner,
        runtime: Handle,
    ) -> std::io::Result<Self> {
        let (wake, woken) = mpsc::sync_channel(1);
        let handle = WorkerHandle {
            shared: Arc::default(),
            wake,
        };
        let state = Loop {
            store,
            hub,
            runtime,
            shared: handle.shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("vggserve-worker".into())
            .spawn(move || state.run(runner, woken))?;
        Ok(Self {
            handle,
            thread: Some(thread),
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

/// The thread's side.
struct Loop {
    store: SharedStore,
    hub: EventHub,
    runtime: Handle,
    shared: Arc<Shared>,
}

impl Loop {
    fn run(self, mut runner: impl JobRunner, woken: Receiver<()>) {
        while !self.shared.shutdown.load(Ordering::SeqCst) {
            match self.runtime.block_on(self.store.claim_next()) {
                Ok(Some((job, event))) => {
                    self.hub.publish(event.into());
                    let span = tracing::info_span!("job", id = %job.id, kind = %job.kind);
                    span.in_scope(|| self.run_job(&mut runner, job));
                }
                Ok(None) => {
                    // Idle: wait for a wake-up, polling now and then in case one was missed.
                    let _ = woken.recv_timeout(Duration::from_secs(1));
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the job queue");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn run_job(&self, runner: &mut impl JobRunner, job: Job) {
        let cancel = Arc::new(AtomicBool::new(false));
        *self.shared.current() = Some((job.id, cancel.clone()));
        tracing::info!("job started");
        let started = Instant::now();
        let mut reporter = JobReporter::new(
            self.store.clone(),
            self.hub.clone(),
            self.runtime.clone(),
            job.id,
            cancel,
            self.shared.clone(),
        );
        // A panic inside a recipe (LibTorch, a bug) fails the job, not the worker.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runner.run(&job, &mut reporter)
        }))
        .unwrap_or_else(|panic| {
            Err(TrainError::Other(anyhow::anyhow!(
                "internal error: {}",
                panic_message(&*panic)
            )))
        });
        *self.shared.current() = None;
        let (status, outcome) = match result {
            Ok(outcome) => match self.register(runner, &job, outcome) {
                Ok(outcome) => (JobStatus::Succeeded, outcome),
                Err(error) => (JobStatus::Failed, failure(&error)),
            },
            Err(TrainError::Cancelled) if self.shared.shutdown.load(Ordering::SeqCst) => {
                // Left `running`: the next start settles it as after a crash.
                tracing::warn!("job interrupted by shutdown");
                return;
            }
            Err(TrainError::Cancelled) => (JobStatus::Cancelled, Outcome::default()),
            Err(TrainError::Invalid(message)) => (
                JobStatus::Failed,
                Outcome {
                    error: Some(message),
                    ..Default::default()
                },
            ),
            Err(TrainError::Other(error)) => (JobStatus::Failed, failure(&error)),
        };
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(status = status.as_str(), seconds, "job finished");
        metrics::histogram!("job_duration_seconds", "kind" => job.kind.as_str(), "status" => status.as_str())
            .record(seconds);
        // The job has ended: its checkpoint is no longer needed (the model, if any, is saved).
        runner.cleanup(&job);
        let finish = self.store.finish_job(job.id, status, &outcome);
        match self.runtime.block_on(finish.in_current_span()) {
            Ok(event) => self.hub.publish(event.into()),
            Err(error) => tracing::error!(%error, "cannot record the job's end"),
        }
    }

    /// Register the trained model (if any) and build the job's outcome.
    fn register(
        &self,
        runner: &mut impl JobRunner,
        job: &Job,
        outcome: recipes::Outcome,
    ) -> anyhow::Result<Outcome> {
        let model_id = match outcome.model {
            Some(model) => Some(runner.register(job, model)?),
            None => None,
        };
        Ok(Outcome {
            result: Some(outcome.result),
            model_id,
            error: None,
        })
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

fn failure(error: &anyhow::Error) -> Outcome {
    tracing::error!(error = format!("{error:#}"), "job failed");
    Outcome {
        error: Some(format!("{error:#}")),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;

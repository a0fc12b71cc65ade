//! The worker thread's loop, and what it is given (who it is: [`WorkerConfig`]; what runs
//! a job: [`JobRunner`]): claim the next job of this worker's kinds and run it under
//! its lease (the heartbeat in `lease` extends it; a run interrupted by shutdown is given
//! back to the queue), record its end and model; when idle, settle the jobs whose worker
//! was lost (their lease expired): back in the queue to resume, or failed with the reason.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tracing::Instrument;
use uuid::Uuid;

use super::control::Shared;
use super::lease::{outlasting_outage, Heartbeat};
use super::reporter::JobReporter;
use crate::domain::{Job, JobKind, JobStatus, Lease, ModelRecord, Outcome};
use crate::store::{ClaimSpec, Settle, SharedStore, StoreError};
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
    /// The record of the model a job trained (registered with the job's end).
    fn record(&mut self, job: &Job, model: recipes::TrainedModel) -> anyhow::Result<ModelRecord>;
    /// Whether a job that stopped with recorded epochs can resume (it has a checkpoint).
    fn can_resume(&self, job: &Job) -> bool;
    /// Drop what a finished job no longer needs (its checkpoint).
    fn cleanup(&mut self, job: &Job);
    /// Remove the files of a model whose registration was refused (the lease was lost).
    fn discard(&mut self, model: &ModelRecord);
}

/// Who this worker is and what it takes.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique per process: `<name>/<random>`.
    pub owner: String,
    /// Kinds it runs; empty: all.
    pub kinds: Vec<JobKind>,
    /// How long a claim holds without a heartbeat (heartbeats come every third of it).
    pub lease: Duration,
    /// Claims a job may have before a lost worker fails it instead of requeueing it.
    pub max_attempts: i64,
}

impl WorkerConfig {
    /// `name` plus a random suffix, so two processes with one name never share leases.
    pub fn new(name: &str, kinds: Vec<JobKind>, lease: Duration, max_attempts: i64) -> Self {
        let suffix = Uuid::new_v4().simple().to_string();
        Self {
            owner: format!("{name}/{}", &suffix[..12]),
            kinds,
            lease,
            max_attempts,
        }
    }
}

/// The thread's side.
pub(super) struct Loop {
    pub store: SharedStore,
    pub config: WorkerConfig,
    pub runtime: Handle,
    pub shared: Arc<Shared>,
}

impl Loop {
    pub fn run(self, mut runner: impl JobRunner, woken: Receiver<()>) {
        let spec = ClaimSpec {
            owner: self.config.owner.clone(),
            kinds: self.config.kinds.clone(),
            lease: self.config.lease,
        };
        while !self.shared.shutdown.load(Ordering::SeqCst) {
            match self.runtime.block_on(self.store.claim_next(&spec)) {
                Ok(Some((job, lease, _))) => {
                    let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = lease.attempt);
                    span.in_scope(|| self.run_job(&mut runner, job, lease));
                }
                Ok(None) => {
                    self.settle_expired(&runner);
                    // Jobs left waiting on ended dependencies (a worker of a version
                    // before chains ended one): settled here, as their end would have.
                    if let Err(error) = self.runtime.block_on(self.store.settle_waiting()) {
                        tracing::error!(%error, "cannot settle waiting jobs");
                    }
                    // Idle: wait for a wake-up, polling now and then in case one was missed
                    // (or the job was queued through another process).
                    let _ = woken.recv_timeout(Duration::from_secs(1));
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the job queue");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Settle the jobs whose worker was lost: a job that can go on (no epoch yet, or a
    /// checkpoint) is queued again to resume; one that cannot, or was lost too often, fails
    /// with the reason, its recorded epochs kept. Any worker may do it; one wins per job.
    fn settle_expired(&self, runner: &impl JobRunner) {
        let expired = match self.runtime.block_on(self.store.expired()) {
            Ok(expired) => expired,
            Err(error) => return tracing::error!(%error, "cannot look for lost jobs"),
        };
        for job in expired {
            let span = tracing::info_span!("job", id = %job.id, kind = %job.kind);
            let _entered = span.enter();
            let lost = job.attempts - job.releases;
            let settle = if lost >= self.config.max_attempts {
                Settle::Fail(format!(
                    "the worker running this job was lost {lost} times (the most allowed); \
                     the recorded epochs are kept"
                ))
            } else if job.epochs.is_empty() || runner.can_resume(&job) {
                Settle::Requeue
            } else {
                Settle::Fail(format!(
                    "interrupted: the worker running this job stopped after epoch {} and \
                     it cannot resume (no checkpoint); the recorded epochs are kept",
                    job.epochs.len()
                ))
            };
            match self
                .runtime
                .block_on(self.store.settle_expired(job.id, job.attempts, &settle))
            {
                Ok(Some(_)) => tracing::warn!(
                    ?settle,
                    epochs = job.epochs.len(),
                    "settled a job whose worker was lost"
                ),
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "cannot settle a lost job"),
            }
        }
    }

    fn run_job(&self, runner: &mut impl JobRunner, job: Job, lease: Lease) {
        let cancel = Arc::new(AtomicBool::new(false));
        *self.shared.current() = Some((job.id, cancel.clone()));
        tracing::info!("job started");
        let started = Instant::now();
        let heartbeat = Heartbeat::start(
            &self.runtime,
            self.store.clone(),
            lease.clone(),
            self.config.lease,
            cancel.clone(),
        );
        let mut reporter = JobReporter::new(
            self.store.clone(),
            self.runtime.clone(),
            lease.clone(),
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
        // The heartbeat goes on until the job's end is recorded: publishing the model and a
        // database outage can outlast what is left of the lease.
        if heartbeat.lost() {
            // Another worker holds the job now: nothing more may be recorded from here.
            return tracing::warn!("the job's lease was lost; another worker has it");
        }
        let mut model = None;
        let (status, outcome) = match result {
            Ok(outcome) => match self.record(runner, &job, outcome) {
                Ok((outcome, record)) => {
                    model = record;
                    (JobStatus::Succeeded, outcome)
                }
                Err(error) => (JobStatus::Failed, failure(&error)),
            },
            Err(TrainError::Cancelled(_)) if self.shared.shutdown.load(Ordering::SeqCst) => {
                return self.interrupted_by_shutdown(runner, &job, &lease);
            }
            Err(TrainError::Cancelled(training)) => {
                let result = training.map(|training| serde_json::json!({"training": training}));
                (
                    JobStatus::Cancelled,
                    Outcome {
                        result,
                        ..Default::default()
                    },
                )
            }
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
        let finish = outlasting_outage(|| {
            self.store
                .finish_job(&lease, status, &outcome, model.as_ref())
        });
        let finished = self.runtime.block_on(finish.in_current_span());
        heartbeat.stop();
        match finished {
            // The job has ended: its checkpoint is no longer needed (the model is saved).
            Ok(_) => runner.cleanup(&job),
            Err(StoreError::LeaseLost(_)) => {
                tracing::warn!(
                    "the job's lease was lost before its end was recorded; another worker has it"
                );
                if let Some(model) = &model {
                    runner.discard(model);
                }
            }
            Err(error) => tracing::error!(%error, "cannot record the job's end"),
        }
    }

    /// Shutdown stopped the job: give it back to the queue to resume elsewhere or at the
    /// next start; a job that cannot resume fails with the reason instead.
    fn interrupted_by_shutdown(&self, runner: &impl JobRunner, job: &Job, lease: &Lease) {
        let fresh = self.runtime.block_on(self.store.job(job.id)).ok().flatten();
        let epochs = fresh.map_or(0, |j| j.epochs.len());
        let result = if epochs == 0 || runner.can_resume(job) {
            tracing::warn!(epochs, "job interrupted by shutdown; back in the queue");
            self.runtime
                .block_on(outlasting_outage(|| self.store.release(lease)))
        } else {
            let error = format!(
                "interrupted: the server stopped during this job after epoch {epochs} and it \
                 cannot resume (no checkpoint); the recorded epochs are kept"
            );
            tracing::warn!(%error);
            let outcome = Outcome {
                error: Some(error),
                ..Default::default()
            };
            let finish = self
                .store
                .finish_job(lease, JobStatus::Failed, &outcome, None);
            self.runtime.block_on(finish)
        };
        if let Err(error) = result {
            tracing::error!(%error, "cannot give the interrupted job back");
        }
    }

    /// The record of the trained model (if any) and the job's outcome.
    fn record(
        &self,
        runner: &mut impl JobRunner,
        job: &Job,
        outcome: recipes::Outcome,
    ) -> anyhow::Result<(Outcome, Option<ModelRecord>)> {
        let record = match outcome.model {
            Some(model) => Some(runner.record(job, model)?),
            None => None,
        };
        let outcome = Outcome {
            result: Some(outcome.result),
            model_id: record.as_ref().map(|r| r.id),
            error: None,
        };
        Ok((outcome, record))
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

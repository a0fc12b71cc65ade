//! The worker: one `std::thread` that owns training on the model's device and runs queued
//! jobs in FIFO order, claiming them from the database (the durable queue). The async side
//! talks to it only through the database, a wake-up channel and a cancel flag.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::SqlitePool;
use tokio::runtime::Handle;
use uuid::Uuid;

use super::events::EventHub;
use super::reporter::JobReporter;
use super::spec::{JobKind, JobParams};
use crate::data::dataset::Dataset;
use crate::data::decode::ResizeFilter;
use crate::model::head::HeadConfig;
use crate::model::layers::LAYERS;
use crate::model::{Classifier, ConvBase};
use crate::store::jobs::{self as job_store, Outcome};
use crate::store::{models as model_store, Job, JobStatus, ModelRecord};
use crate::train::artifacts::{has_checkpoint, load_record, remove_checkpoint, ModelConfig};
use crate::train::recipes::{self, Context};
use crate::train::TrainError;

pub struct WorkerConfig {
    pub pool: SqlitePool,
    pub hub: EventHub,
    pub base: ConvBase,
    pub data_dir: PathBuf,
    pub datasets_dir: PathBuf,
    pub resize: ResizeFilter,
    pub max_pixels: u64,
}

/// The job running now and its cancel flag.
type CurrentJob = Arc<Mutex<Option<(Uuid, Arc<AtomicBool>)>>>;

/// The async side's handle on the worker thread.
#[derive(Clone)]
pub struct WorkerHandle {
    wake: mpsc::Sender<()>,
    current: CurrentJob,
    shutdown: Arc<AtomicBool>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl WorkerHandle {
    /// A job was queued: look at the queue now rather than at the next poll.
    pub fn notify(&self) {
        let _ = self.wake.send(());
    }

    /// Ask the running job `id` to stop at its next batch. False if it is not running here.
    pub fn cancel(&self, id: Uuid) -> bool {
        match &*self.current.lock().expect("worker lock") {
            Some((running, flag)) if *running == id => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }

    /// Stop after the current batch; the interrupted job is dealt with as after a crash.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
        if let Some(thread) = self.thread.lock().expect("worker lock").take() {
            let _ = thread.join();
        }
    }
}

/// Settle jobs a previous process left `running` (crash, kill -9, shutdown): a job with a
/// checkpoint, or with no recorded epoch, is queued again (it resumes from the checkpoint,
/// or starts over with nothing lost or repeated); one with epochs but no checkpoint (the
/// dense head on features, which is quick) is failed with the reason, its epochs kept.
pub async fn recover_interrupted(pool: &SqlitePool, data_dir: &Path) -> anyhow::Result<()> {
    for job in job_store::interrupted(pool).await? {
        if job.epochs.is_empty() || has_checkpoint(data_dir, job.id) {
            tracing::warn!(job = %job.id, epochs = job.epochs.len(), "requeueing an interrupted job");
            job_store::requeue_for_resume(pool, job.id).await?;
        } else {
            let error = format!(
                "interrupted: the server stopped during this job after epoch {}; the recorded epochs are kept",
                job.epochs.len()
            );
            tracing::warn!(job = %job.id, %error);
            let outcome = Outcome {
                error: Some(error),
                ..Default::default()
            };
            job_store::finish(pool, job.id, JobStatus::Failed, &outcome).await?;
        }
    }
    Ok(())
}

pub fn spawn(config: WorkerConfig) -> std::io::Result<WorkerHandle> {
    let (wake, woken) = mpsc::channel();
    let handle = WorkerHandle {
        wake,
        current: Arc::default(),
        shutdown: Arc::default(),
        thread: Arc::default(),
    };
    let runtime = Handle::current();
    let worker_handle = handle.clone();
    let thread = std::thread::Builder::new()
        .name("vggserve-worker".into())
        .spawn(move || run(config, worker_handle, woken, runtime))?;
    *handle.thread.lock().expect("worker lock") = Some(thread);
    Ok(handle)
}

fn run(config: WorkerConfig, handle: WorkerHandle, woken: mpsc::Receiver<()>, rt: Handle) {
    while !handle.shutdown.load(Ordering::SeqCst) {
        match rt.block_on(job_store::claim_next(&config.pool)) {
            Ok(Some((job, event))) => {
                config.hub.publish(event.into());
                run_job(&config, &handle, &rt, job);
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

fn run_job(config: &WorkerConfig, handle: &WorkerHandle, rt: &Handle, job: Job) {
    let cancel = Arc::new(AtomicBool::new(false));
    *handle.current.lock().expect("worker lock") = Some((job.id, cancel.clone()));
    tracing::info!(job = %job.id, kind = %job.kind, "job started");
    let started = Instant::now();
    let mut reporter = JobReporter {
        pool: config.pool.clone(),
        hub: config.hub.clone(),
        rt: rt.clone(),
        job_id: job.id,
        cancel,
        shutdown: handle.shutdown.clone(),
        last_progress: None,
        last_event_id: 0,
    };
    // A panic inside a recipe (LibTorch, a bug) fails the job, not the worker.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        execute(config, rt, &job, &mut reporter)
    }))
    .unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(TrainError::Other(anyhow::anyhow!(
            "internal error: {message}"
        )))
    });
    *handle.current.lock().expect("worker lock") = None;
    let (status, outcome) = match result {
        Ok(outcome) => match register_model(config, rt, &job, outcome) {
            Ok(outcome) => (JobStatus::Succeeded, outcome),
            Err(error) => (JobStatus::Failed, failure(&error)),
        },
        Err(TrainError::Cancelled) if handle.shutdown.load(Ordering::SeqCst) => {
            // Leave it `running`: the next start settles it like a crash would.
            tracing::warn!(job = %job.id, "job interrupted by shutdown");
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
    tracing::info!(job = %job.id, status = status.as_str(), seconds = started.elapsed().as_secs_f64(), "job finished");
    metrics::histogram!("job_duration_seconds", "kind" => job.kind.clone(), "status" => status.as_str())
        .record(started.elapsed().as_secs_f64());
    // The job has ended: its checkpoint is no longer needed (the model, if any, is saved).
    remove_checkpoint(&config.data_dir, job.id);
    match rt.block_on(job_store::finish(&config.pool, job.id, status, &outcome)) {
        Ok(event) => config.hub.publish(event.into()),
        Err(error) => tracing::error!(job = %job.id, %error, "cannot record the job's end"),
    }
}

fn failure(error: &anyhow::Error) -> Outcome {
    tracing::error!(error = format!("{error:#}"), "job failed");
    Outcome {
        error: Some(format!("{error:#}")),
        ..Default::default()
    }
}

fn execute(
    config: &WorkerConfig,
    rt: &Handle,
    job: &Job,
    reporter: &mut JobReporter,
) -> Result<recipes::Outcome, TrainError> {
    let params: JobParams = serde_json::from_value(job.params.clone()).map_err(|e| {
        TrainError::Other(anyhow::anyhow!("stored job parameters are unreadable: {e}"))
    })?;
    let dataset = Dataset::open(&config.datasets_dir, &params.dataset)?;
    let mut ctx = Context {
        base: &config.base,
        data_dir: &config.data_dir,
        resize: config.resize,
        max_pixels: config.max_pixels,
        job_id: job.id,
        recorded_epochs: job.epochs.len() as u32,
        reporter,
    };
    match params.kind {
        JobKind::ExtractFeatures => recipes::extract_features(&mut ctx, &dataset, &params),
        JobKind::Train => match params.features {
            Some(features) => recipes::train_on_features(&mut ctx, &params, features),
            None => {
                let head = HeadConfig::new(
                    crate::model::layers::OUT_CHANNELS * feature_side(params.image_size).pow(2),
                )
                .with_dropout(0.0);
                let start = Classifier {
                    base: config.base.net.clone(),
                    head: head.init(&config.base.device),
                };
                recipes::train_end_to_end(
                    &mut ctx,
                    &dataset,
                    &params,
                    start,
                    head,
                    LAYERS.len(),
                    "augmented",
                )
            }
        },
        JobKind::FineTune => {
            let id = params
                .from_model
                .ok_or_else(|| TrainError::Invalid("from_model is required".into()))?;
            let (model, model_config) = load_registered(config, rt, id)?;
            let from = recipes::trainable_from(params.unfreeze_from.as_deref());
            recipes::train_end_to_end(
                &mut ctx,
                &dataset,
                &params,
                model,
                model_config.head,
                from,
                "fine_tuned",
            )
        }
        JobKind::Evaluate => {
            let id = params
                .model
                .ok_or_else(|| TrainError::Invalid("model is required".into()))?;
            let (model, model_config) = load_registered(config, rt, id)?;
            recipes::evaluate(&mut ctx, &dataset, &params, &model, &model_config)
        }
    }
}

fn feature_side(image_size: u32) -> usize {
    crate::model::layers::output_side(image_size as usize)
}

fn load_registered(
    config: &WorkerConfig,
    rt: &Handle,
    id: Uuid,
) -> Result<(Classifier, ModelConfig), TrainError> {
    let record = rt
        .block_on(model_store::get(&config.pool, id))
        .map_err(|e| TrainError::Other(e.into()))?
        .ok_or_else(|| TrainError::Invalid(format!("model {id} no longer exists")))?;
    Ok(load_record(&config.data_dir, &record, &config.base)?)
}

/// Record the trained model (if any) and build the job's outcome.
fn register_model(
    config: &WorkerConfig,
    rt: &Handle,
    job: &Job,
    outcome: recipes::Outcome,
) -> anyhow::Result<Outcome> {
    let Some(trained) = outcome.model else {
        return Ok(Outcome {
            result: Some(outcome.result),
            ..Default::default()
        });
    };
    let record = ModelRecord {
        id: trained.id,
        recipe: trained.config.recipe.clone(),
        dataset: job.dataset.clone().unwrap_or_default(),
        classes: trained.config.classes.clone(),
        params: job.params.clone(),
        metrics: trained.metrics,
        test_metrics: trained.test_metrics,
        source_job: job.id,
        created_at: String::new(),
        artifact: trained.artifact,
        artifact_sha256: trained.artifact_sha256,
        config: serde_json::to_value(&trained.config)?,
        is_default: false,
    };
    rt.block_on(model_store::insert(&config.pool, &record))?;
    Ok(Outcome {
        result: Some(outcome.result),
        model_id: Some(trained.id),
        error: None,
    })
}

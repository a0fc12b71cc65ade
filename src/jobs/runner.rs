//! [`RecipeRunner`]: how the worker runs a claimed job for real: parse its stored
//! parameters, open its dataset (fetched first if it was uploaded on another machine), fetch
//! the artifacts it needs (the models it names, the features it trains on, its checkpoints
//! when it resumes another worker's run), call the recipe, publish what it made, and
//! describe the model it trained for the registry.

use std::path::PathBuf;

use tokio::runtime::Handle;
use uuid::Uuid;

use super::reporter::JobReporter;
use super::spec::{JobParams, TrainParams};
use super::worker::JobRunner;
use crate::artifacts::SharedArtifacts;
use crate::data::catalog::SharedCatalog;
use crate::data::dataset::Dataset;
use crate::data::decode::ResizeFilter;
use crate::domain::{Job, ModelRecord};
use crate::model::saved::load_record;
use crate::model::{Classifier, ConvBase, ModelConfig};
use crate::store::SharedStore;
use crate::train::artifacts::{
    checkpoints_artifact, features_artifact, has_checkpoint, remove_checkpoint,
};
use crate::train::recipes::{self, Context, SharedCache, TrainedModel};
use crate::train::TrainError;

pub struct RecipeRunner {
    pub store: SharedStore,
    pub runtime: Handle,
    pub base: ConvBase,
    pub artifacts: SharedArtifacts,
    pub data_dir: PathBuf,
    pub catalog: SharedCatalog,
    pub resize: ResizeFilter,
    pub max_pixels: u64,
}

impl JobRunner for RecipeRunner {
    fn run(
        &mut self,
        job: &Job,
        reporter: &mut JobReporter,
    ) -> Result<recipes::Outcome, TrainError> {
        let params: JobParams = serde_json::from_value(job.params.clone()).map_err(|e| {
            TrainError::Other(anyhow::anyhow!("stored job parameters are unreadable: {e}"))
        })?;
        // An uploaded dataset this machine has not seen yet is fetched from the store.
        let folder = retrying(&self.runtime, || async {
            Ok(self.catalog.folder(params.dataset()).await?)
        })
        .map_err(TrainError::Other)?;
        let dataset = Dataset::open(&folder, params.dataset())?;
        // Resuming a job another worker began: its checkpoints, if it saved any.
        self.sync_checkpoints(job.id).map_err(TrainError::Other)?;
        if let JobParams::Train(TrainParams::OnFeatures(c)) = &params {
            self.fetch(&features_artifact(c.features))?;
        }
        let (artifacts, runtime) = (&self.artifacts, &self.runtime);
        let publish = |rel: &str| retrying(runtime, || artifacts.publish(rel));
        let shared_cache = StoreCache {
            artifacts: &self.artifacts,
            runtime: &self.runtime,
            given_up: Default::default(),
        };
        let mut ctx = Context {
            base: &self.base,
            data_dir: &self.data_dir,
            resize: self.resize,
            max_pixels: self.max_pixels,
            job_id: job.id,
            attempt: job.attempts,
            publish: &publish,
            shared_cache: &shared_cache,
            recorded_epochs: job.epochs.len() as u32,
            reporter,
        };
        match &params {
            JobParams::ExtractFeatures(c) => {
                let outcome = recipes::extract_features(&mut ctx, &dataset, c)?;
                publish(&features_artifact(job.id)).map_err(TrainError::Other)?;
                Ok(outcome)
            }
            JobParams::Train(TrainParams::OnFeatures(c)) => recipes::train_on_features(&mut ctx, c),
            JobParams::Train(TrainParams::Augmented(c)) => {
                recipes::train_augmented(&mut ctx, &dataset, c)
            }
            JobParams::FineTune(c) => {
                let (model, saved) = self.load_registered(c.from_model)?;
                recipes::fine_tune(&mut ctx, &dataset, c, model, saved)
            }
            JobParams::Evaluate(c) => {
                let (model, saved) = self.load_registered(c.model)?;
                recipes::evaluate(&mut ctx, &dataset, c, &model, &saved)
            }
        }
    }

    fn record(&mut self, job: &Job, trained: TrainedModel) -> anyhow::Result<ModelRecord> {
        // Published before it is registered: a registered model always has its files.
        let folder = std::path::Path::new(&trained.artifact)
            .parent()
            .and_then(|p| p.to_str())
            .ok_or_else(|| anyhow::anyhow!("model artifact {} has no folder", trained.artifact))?;
        retrying(&self.runtime, || self.artifacts.publish(folder))?;
        self.artifacts.published_model(folder);
        Ok(ModelRecord {
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
        })
    }

    fn can_resume(&self, job: &Job) -> bool {
        match self.sync_checkpoints(job.id) {
            Ok(()) => has_checkpoint(&self.data_dir, job.id),
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot fetch the job's checkpoints"
                );
                false
            }
        }
    }

    fn discard(&mut self, model: &ModelRecord) {
        let folder = crate::model::saved::model_folder(model.id);
        let _ = std::fs::remove_dir_all(self.data_dir.join(&folder));
        if let Err(error) = self.runtime.block_on(self.artifacts.remove(&folder)) {
            tracing::warn!(%error, "could not remove an unregistered model's files");
        }
    }

    fn cleanup(&mut self, job: &Job) {
        remove_checkpoint(&self.data_dir, job.id);
        if let Err(error) = self
            .runtime
            .block_on(self.artifacts.remove(&checkpoints_artifact(job.id)))
        {
            tracing::warn!(%error, "could not remove the job's published checkpoints");
        }
    }
}

impl RecipeRunner {
    /// With an artifact store, the job's checkpoints as published (every save is): a local
    /// copy may be older (this machine ran the job before another worker took it over).
    fn sync_checkpoints(&self, job: Uuid) -> anyhow::Result<()> {
        if self.artifacts.is_remote() {
            remove_checkpoint(&self.data_dir, job);
            let rel = checkpoints_artifact(job);
            retrying(&self.runtime, || self.artifacts.fetch(&rel))?;
        }
        Ok(())
    }

    /// Make an artifact present locally if the artifact store has it.
    fn fetch(&self, rel: &str) -> Result<bool, TrainError> {
        retrying(&self.runtime, || self.artifacts.fetch(rel)).map_err(TrainError::Other)
    }

    fn load_registered(&self, id: Uuid) -> Result<(Classifier, ModelConfig), TrainError> {
        let record = self
            .runtime
            .block_on(self.store.model(id))
            .map_err(|e| TrainError::Other(e.into()))?
            .ok_or_else(|| TrainError::Invalid(format!("model {id} no longer exists")))?;
        let folder = crate::model::saved::model_folder(id);
        let held = retrying(&self.runtime, || self.artifacts.fetch_model(&folder))
            .map_err(TrainError::Other)?
            .ok_or_else(|| TrainError::Invalid(format!("model {id}'s files are missing")))?;
        let loaded = load_record(&self.data_dir, &record, &self.base)?;
        drop(held);
        Ok(loaded)
    }
}

/// Cache entries shared through the artifact store (nothing to share without one). Best
/// effort and bounded: each exchange gets `CACHE_EXCHANGE` at most, and after a failure the
/// job stops trying (a store that is down costs it no more than one wait).
struct StoreCache<'a> {
    artifacts: &'a SharedArtifacts,
    runtime: &'a Handle,
    given_up: std::cell::Cell<bool>,
}

const CACHE_EXCHANGE: std::time::Duration = std::time::Duration::from_secs(60);

impl StoreCache<'_> {
    fn exchange<T>(
        &self,
        what: &str,
        operation: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> Option<T> {
        if self.given_up.get() {
            return None;
        }
        // The timer is made inside the runtime: this thread is not one of its own.
        let outcome = self
            .runtime
            .block_on(async { tokio::time::timeout(CACHE_EXCHANGE, operation).await });
        match outcome {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot {what}; going on without"
                );
                self.given_up.set(true);
                None
            }
            Err(_) => {
                tracing::warn!(limit = ?CACHE_EXCHANGE, "cannot {what} in time; going on without");
                self.given_up.set(true);
                None
            }
        }
    }
}

impl SharedCache for StoreCache<'_> {
    fn fetch(&self, files: &[String]) -> usize {
        let fetched = self.artifacts.fetch_files(files);
        self.exchange("fetch shared cache entries", fetched)
            .unwrap_or(0)
    }

    fn share(&self, files: &[String]) {
        self.exchange("share cache entries", self.artifacts.publish_files(files));
    }
}

/// Run an artifact-store operation, trying again a few times (2, 4, 8, 16 s apart) before
/// giving up: object storage fails transiently (timeouts, a server restarting), and a job
/// should not fail for that.
fn retrying<T, F, Fut>(runtime: &Handle, mut operation: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut wait = std::time::Duration::from_secs(2);
    for _ in 0..4 {
        match runtime.block_on(operation()) {
            Ok(value) => return Ok(value),
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    ?wait,
                    "artifact store failed; retrying"
                );
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
    runtime.block_on(operation())
}

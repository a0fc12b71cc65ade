//! The seed's recipes, each a function from its own parameter type (a burn `Config` whose
//! defaults are the seed's, declared once) to an [`Outcome`]:
//! 1. [`extract_features`] ([`ExtractConfig`]) + [`train_on_features`] ([`HeadTrainingConfig`]),
//! 2. [`train_augmented`] ([`EndToEndConfig`]) through the frozen base,
//! 3. [`fine_tune`] ([`FineTuneConfig`]): the same loop with the top conv layers unfrozen,
//!
//! and [`evaluate`] ([`EvaluateConfig`]) of a trained model on a split. This file holds what
//! they share.

mod end_to_end;
mod evaluate;
mod extract;
mod fine_tune;
mod frozen;
mod on_features;

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};
use uuid::Uuid;

use super::fit::{check_cancel, Meter, Reporter, TrainError};
use crate::data::batch::{prefetch, BadFile};
use crate::data::dataset::Sample;
use crate::data::decode::{ImageSpec, ResizeFilter};
use crate::domain::EpochMetrics;
use crate::model::saved::save_model;
use crate::model::{Classifier, ConvBase, ModelConfig};
use crate::train::best::Selection;
pub use end_to_end::{train_augmented, EndToEndConfig};
pub use evaluate::{evaluate, evaluate_samples, EvaluateConfig};
pub use extract::{extract_features, ExtractConfig};
pub use fine_tune::{fine_tune, FineTuneConfig};
pub use on_features::{train_on_features, HeadTrainingConfig};

/// What a recipe needs from its surroundings.
pub struct Context<'a> {
    pub base: &'a ConvBase,
    pub data_dir: &'a Path,
    pub resize: ResizeFilter,
    pub max_pixels: u64,
    pub job_id: Uuid,
    /// Which claim of the job this is (1, then more after a lost worker): checkpoints are
    /// kept per attempt.
    pub attempt: i64,
    /// Make an artifact folder (relative to the data dir) durable beyond this machine, for
    /// a worker elsewhere that resumes or continues this job's work.
    pub publish: &'a dyn Fn(&str) -> anyhow::Result<()>,
    /// Cache entries other machines may share: see [`SharedCache`].
    pub shared_cache: &'a dyn SharedCache,
    /// Epochs this job recorded before (a job resumed after a restart).
    pub recorded_epochs: u32,
    pub reporter: &'a mut dyn Reporter,
}

/// Entries of a cache (files relative to the data dir) shared with other machines, best
/// effort: a failure is logged and costs recomputing, never the job.
pub trait SharedCache {
    /// Bring those of `files` another machine shared; answers how many came.
    fn fetch(&self, files: &[String]) -> usize;
    /// Offer `files` to other machines.
    fn share(&self, files: &[String]);
}

impl Context<'_> {
    fn spec(&self, image_size: u32) -> ImageSpec {
        ImageSpec {
            size: image_size,
            filter: self.resize,
            max_pixels: self.max_pixels,
        }
    }
}

/// A model a recipe trained, saved, ready to be registered.
pub struct TrainedModel {
    pub id: Uuid,
    pub config: ModelConfig,
    pub artifact: String,
    pub artifact_sha256: String,
    pub metrics: Value,
    pub test_metrics: Option<Value>,
}

pub struct Outcome {
    pub result: Value,
    pub model: Option<TrainedModel>,
}

pub(super) fn note_bad(list: &mut Vec<String>, bad: &[BadFile]) {
    for file in bad {
        tracing::warn!(path = %file.path.display(), reason = %file.reason, "skipping unreadable image");
        if list.len() < 50 {
            list.push(format!("{}: {}", file.path.display(), file.reason));
        }
    }
}

pub(super) fn epoch_metrics(
    epoch: u32,
    train: &Meter,
    val: Option<&Meter>,
    started: Instant,
) -> EpochMetrics {
    EpochMetrics {
        epoch: epoch as i64,
        loss: train.loss(),
        acc: train.acc(),
        val_loss: val.map(Meter::loss),
        val_acc: val.map(Meter::acc),
        seconds: started.elapsed().as_secs_f64(),
        best_epoch: None,
    }
}

/// How many classes a model can tell apart.
pub const CLASSES: std::ops::RangeInclusive<usize> = 2..=100;

pub(super) fn check_classes(classes: &[String]) -> Result<(), TrainError> {
    if !CLASSES.contains(&classes.len()) {
        return Err(TrainError::Invalid(format!(
            "a classifier needs {} to {} classes, found {} {:?}",
            CLASSES.start(),
            CLASSES.end(),
            classes.len(),
            classes
        )));
    }
    Ok(())
}

/// Save the model a training run chose and describe it: `metrics` are its epoch's (the
/// model record's `metrics`, with `training` added), `training` which epoch it is and why
/// the run stopped.
pub(super) fn finish(
    ctx: &mut Context,
    model: Classifier,
    config: ModelConfig,
    metrics: Option<EpochMetrics>,
    training: &Selection,
    test_metrics: Option<Value>,
) -> Result<Outcome, TrainError> {
    let id = Uuid::new_v4();
    let (artifact, artifact_sha256) = save_model(ctx.data_dir, id, &model, &config)?;
    let training = training.json();
    let mut metrics = serde_json::to_value(metrics).unwrap_or_default();
    if let Some(fields) = metrics.as_object_mut() {
        fields.insert("training".into(), training.clone());
    }
    let result =
        json!({"final": metrics, "training": training, "test": test_metrics, "model_id": id});
    Ok(Outcome {
        result,
        model: Some(TrainedModel {
            id,
            config,
            artifact,
            artifact_sha256,
            metrics,
            test_metrics,
        }),
    })
}

/// Decoded images (HWC bytes), their labels, and the files that could not be read.
type Decoded = (Vec<Vec<u8>>, Vec<usize>, Vec<String>);

/// Decode a list of samples into memory (HWC bytes), skipping unreadable files.
pub(super) fn decode_all(
    ctx: &mut Context,
    samples: &[Sample],
    spec: ImageSpec,
    what: &str,
) -> Result<Decoded, TrainError> {
    let paths = samples.iter().map(|s| s.path.clone()).collect();
    let (mut images, mut labels, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for batch in prefetch(paths, 50, spec, 2) {
        check_cancel(ctx.reporter)?;
        labels.extend(batch.indices.iter().map(|&i| samples[i].label));
        images.extend(batch.images);
        note_bad(&mut bad, &batch.bad);
        ctx.reporter.progress(
            (labels.len() + bad.len()) as u64,
            samples.len() as u64,
            what,
        );
    }
    if images.is_empty() {
        return Err(TrainError::Invalid(format!(
            "no readable images to use for {what}"
        )));
    }
    Ok((images, labels, bad))
}

impl From<crate::data::dataset::DatasetError> for TrainError {
    fn from(e: crate::data::dataset::DatasetError) -> Self {
        TrainError::Invalid(e.to_string())
    }
}

//! `evaluate`: a trained model over a split's image files: loss, accuracy, the confusion
//! matrix, per-class precision/recall/F1 and the most confidently wrong photos.

use burn::config::Config;
use serde_json::json;
use uuid::Uuid;

use super::{note_bad, Context, Outcome};
use crate::data::batch::prefetch;
use crate::data::dataset::{Dataset, Split};
use crate::data::decode::ImageSpec;
use crate::model::input::images_to_tensor;
use crate::model::{Classifier, ModelConfig};
use crate::train::evaluation::Evaluation;
use crate::train::fit::{check_cancel, logits_to_vec, TrainError};

/// `evaluate`: which model, on which split. Defaults are the seed's.
#[derive(Config, Debug, PartialEq)]
pub struct EvaluateConfig {
    pub dataset: String,
    pub model: Uuid,
    #[config(default = "String::from(\"test\")")]
    pub split: String,
    #[config(default = 20)]
    pub batch_size: u32,
}

/// A model over a split's image files: loss, accuracy, confusion, per-class figures and
/// the most confidently wrong photos (named relative to the dataset's folder).
pub fn evaluate_samples(
    ctx: &mut Context,
    model: &Classifier,
    dataset: &Dataset,
    split: &Split,
    units: usize,
    spec: ImageSpec,
    batch: usize,
) -> Result<Evaluation, TrainError> {
    let samples = &split.samples;
    let paths = samples.iter().map(|s| s.path.clone()).collect();
    let mut evaluation = Evaluation::new(&split.classes, units);
    let mut done = 0;
    let mut bad = Vec::new();
    for decoded in prefetch(paths, batch.max(1), spec, 2) {
        check_cancel(ctx.reporter)?;
        if !decoded.images.is_empty() {
            let labels: Vec<usize> = decoded.indices.iter().map(|&i| samples[i].label).collect();
            let files: Vec<String> = decoded
                .indices
                .iter()
                .map(|&i| {
                    let path = &samples[i].path;
                    let relative = path.strip_prefix(&dataset.root).unwrap_or(path);
                    relative.display().to_string()
                })
                .collect();
            let x = images_to_tensor(
                &decoded.images,
                spec.size as usize,
                ctx.base.preprocessing,
                &ctx.base.device,
            );
            let logits = model.head.forward(model.base.forward(x));
            evaluation.add(&logits_to_vec(logits)?, &labels, Some(&files));
        }
        note_bad(&mut bad, &decoded.bad);
        done += decoded.indices.len() + decoded.bad.len();
        ctx.reporter
            .progress(done as u64, samples.len() as u64, "images evaluated");
    }
    Ok(evaluation)
}

/// `evaluate`: a trained model on one split of a dataset.
pub fn evaluate(
    ctx: &mut Context,
    dataset: &Dataset,
    params: &EvaluateConfig,
    model: &Classifier,
    config: &ModelConfig,
) -> Result<Outcome, TrainError> {
    let split_name = params.split.as_str();
    let split = dataset.split(split_name)?;
    if split.classes != config.classes {
        return Err(TrainError::Invalid(format!(
            "the model knows classes {:?}, the split has {:?}",
            config.classes, split.classes
        )));
    }
    let spec = ctx.spec(config.image_size);
    let units = config.head.units();
    let batch = params.batch_size as usize;
    let evaluation = evaluate_samples(ctx, model, dataset, split, units, spec, batch)?;
    let mut result = evaluation.json();
    result["split"] = json!(split_name);
    // `images` as before: how many photos were evaluated.
    result["images"] = result["count"].clone();
    Ok(Outcome {
        result,
        model: None,
    })
}

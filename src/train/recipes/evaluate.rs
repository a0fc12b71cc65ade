//! `evaluate`: loss and accuracy of a trained model over a split's image files.

use burn::config::Config;
use serde_json::json;
use uuid::Uuid;

use super::{note_bad, Context, Outcome};
use crate::data::batch::prefetch;
use crate::data::dataset::{Dataset, Sample};
use crate::data::decode::ImageSpec;
use crate::model::input::images_to_tensor;
use crate::model::{Classifier, ModelConfig};
use crate::train::fit::{check_cancel, logits_to_vec, Meter, TrainError};

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

/// Loss and accuracy of a model over image files.
pub fn evaluate_samples(
    ctx: &mut Context,
    model: &Classifier,
    samples: &[Sample],
    spec: ImageSpec,
    batch: usize,
) -> Result<Meter, TrainError> {
    let paths = samples.iter().map(|s| s.path.clone()).collect();
    let mut meter = Meter::default();
    let mut done = 0;
    let mut bad = Vec::new();
    for decoded in prefetch(paths, batch.max(1), spec, 2) {
        check_cancel(ctx.reporter)?;
        if !decoded.images.is_empty() {
            let labels: Vec<usize> = decoded.indices.iter().map(|&i| samples[i].label).collect();
            let x = images_to_tensor(
                &decoded.images,
                spec.size as usize,
                ctx.base.preprocessing,
                &ctx.base.device,
            );
            let logits = model.head.forward(model.base.forward(x));
            meter.add_logits(&logits_to_vec(logits)?, &labels);
        }
        note_bad(&mut bad, &decoded.bad);
        done += decoded.indices.len() + decoded.bad.len();
        ctx.reporter
            .progress(done as u64, samples.len() as u64, "images evaluated");
    }
    Ok(meter)
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
    let meter = evaluate_samples(ctx, model, &split.samples, spec, params.batch_size as usize)?;
    Ok(Outcome {
        result: json!({"split": split_name, "loss": meter.loss(), "acc": meter.acc(), "images": meter.json()["count"]}),
        model: None,
    })
}

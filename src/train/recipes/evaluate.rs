//! `evaluate`: loss and accuracy of a trained model over a split's image files.

use serde_json::json;

use super::{note_bad, Context, Outcome};
use crate::data::batch::{images_to_tensor, prefetch};
use crate::data::dataset::{Dataset, Sample};
use crate::data::decode::ImageSpec;
use crate::jobs::spec::JobParams;
use crate::model::Classifier;
use crate::train::artifacts::ModelConfig;
use crate::train::fit::{check_cancel, logits_to_vec, Meter, TrainError};

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
    params: &JobParams,
    model: &Classifier,
    config: &ModelConfig,
) -> Result<Outcome, TrainError> {
    let split_name = params.split.as_deref().unwrap_or("test");
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

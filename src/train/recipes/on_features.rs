//! Recipe 1, step 2: the dense head trained on cached conv features.

use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::{check_classes, epoch_metrics, finish, Context, Outcome};
use crate::model::head::{DenseHead, HeadConfig};
use crate::model::{Classifier, ModelConfig};
use crate::tensor_io::tensor_to_vec;
use crate::train::artifacts::{features_path, read_features, FeatureSet};
use crate::train::best::{Keeper, Monitor, Stopped, Watch};
use crate::train::evaluation::Evaluation;
use crate::train::fit::{keras_rmsprop, logits_to_vec, Loss, Meter, TrainError};

/// Recipe 1, step 2: the dense head on the features of an `extract_features` job (whose
/// image size it inherits). Defaults are the seed's.
#[derive(Config, Debug, PartialEq)]
pub struct HeadTrainingConfig {
    pub dataset: String,
    /// The `extract_features` job whose features to train on.
    pub features: Uuid,
    #[config(default = 30)]
    pub epochs: u32,
    #[config(default = 20)]
    pub batch_size: u32,
    /// RMSprop step size.
    #[config(default = 2e-5)]
    pub learning_rate: f64,
    /// The same seed repeats a run exactly.
    #[config(default = 1337)]
    pub seed: u64,
    /// Train even when the dataset report finds a photo in two splits or an empty class.
    #[config(default = false)]
    pub allow_leaks: bool,
    /// The validation figure that picks the best epoch: `val_loss` (lowest) or `val_acc`.
    #[config(default = "Monitor::ValLoss")]
    pub monitor: Monitor,
    /// Register the best epoch's weights (Keras's `restore_best_weights`); `false` keeps
    /// the last epoch's, as the seed does.
    #[config(default = true)]
    pub restore_best: bool,
    /// Stop after this many epochs in a row without improving `monitor`; 0: never.
    #[config(default = 0)]
    pub early_stopping_patience: u32,
}

/// Recipe 1, step 2: Dense(256, ReLU) → Dropout(0.5) → Dense(1 sigmoid, or N softmax) on
/// cached features.
pub fn train_on_features(
    ctx: &mut Context,
    params: &HeadTrainingConfig,
) -> Result<Outcome, TrainError> {
    let features_job = params.features;
    let load = |split: &str| read_features(&features_path(ctx.data_dir, features_job, split));
    let train = load("train")
        .map_err(|e| TrainError::Invalid(format!("features job has no train split: {e:#}")))?;
    let validation = load("validation")
        .map_err(|e| TrainError::Invalid(format!("features job has no validation split: {e:#}")))?;
    let test = load("test").ok();
    if train.weights_sha256 != ctx.base.weights_sha256 {
        return Err(TrainError::Invalid(
            "those features were extracted with other base weights than the server runs".into(),
        ));
    }
    check_classes(&train.classes)?;
    let device = ctx.base.device.clone();
    let seed = params.seed;
    device.seed(seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let autodiff = device.clone().autodiff();
    let head_config = HeadConfig::for_classes(train.width(), train.classes.len()).with_dropout(0.5);
    let units = head_config.units();
    let mut head = head_config.init(&autodiff);
    let mut optimizer = keras_rmsprop().init();
    let loss_fn = Loss::for_units(units, &autodiff);
    let lr = params.learning_rate;
    let batch = params.batch_size as usize;
    let epochs = params.epochs;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let watch = Watch::new(params.monitor, params.early_stopping_patience, None);
    let mut keeper = Keeper::new(watch, params.restore_best, None, None);
    let mut stopped = Stopped::Completed;
    for epoch in 1..=epochs {
        let started = Instant::now();
        order.shuffle(&mut rng);
        let mut meter = Meter::new(units);
        for indices in order.chunks(batch) {
            keeper.check_cancel(ctx.reporter)?;
            let (rows, labels) = train.gather(indices);
            // [B, C·H·W] on the autodiff device: only the head is in the graph.
            let x = Tensor::<2>::from_data(
                TensorData::new(rows, [indices.len(), train.width()]),
                &autodiff,
            );
            let logits = head.forward_flat(x);
            let loss = loss_fn.forward(logits.clone(), &labels, &autodiff);
            let loss_value = tensor_to_vec(loss.clone().inner())?[0] as f64;
            meter.add_batch(loss_value, &logits_to_vec(logits.inner())?, &labels);
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = optimizer.step(lr, head, grads);
        }
        let val = evaluate_features(&head.valid(), &validation, batch, &device, units)?;
        let mut metrics = epoch_metrics(epoch, &meter, Some(val.meter()), started);
        keeper.epoch(&mut metrics, || head.valid());
        ctx.reporter.epoch(&metrics)?;
        ctx.reporter.progress(epoch as u64, epochs as u64, "epochs");
        // Patience running out on the last epoch stops nothing: the run completed.
        if keeper.should_stop() && epoch < epochs {
            stopped = Stopped::EarlyStopped;
            break;
        }
    }
    let (head, metrics, training) = keeper.finish(head.valid(), stopped);
    let test_metrics = match &test {
        Some(test) => Some(evaluate_features(&head, test, batch, &device, units)?.json()),
        None => None,
    };
    let model = Classifier {
        base: ctx.base.net.clone(),
        head,
    };
    let config = ModelConfig {
        recipe: "features".into(),
        head: head_config,
        classes: train.classes.clone(),
        image_size: train.image_size,
        preprocessing: ctx.base.preprocessing,
        weights_sha256: ctx.base.weights_sha256.clone(),
        includes_base: false,
    };
    finish(ctx, model, config, metrics, &training, test_metrics)
}

fn evaluate_features(
    head: &DenseHead,
    set: &FeatureSet,
    batch: usize,
    device: &Device,
    units: usize,
) -> Result<Evaluation, TrainError> {
    let mut evaluation = Evaluation::new(&set.classes, units);
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(batch.max(1) * 10) {
        let (rows, labels) = set.gather(chunk);
        let x = Tensor::<2>::from_data(TensorData::new(rows, [chunk.len(), set.width()]), device);
        let files: Option<Vec<String>> = (set.files.len() == set.len())
            .then(|| chunk.iter().map(|&i| set.files[i].clone()).collect());
        evaluation.add(
            &logits_to_vec(head.forward_flat(x))?,
            &labels,
            files.as_deref(),
        );
    }
    Ok(evaluation)
}

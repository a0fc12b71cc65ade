//! Recipe 2, and the loop recipe 3 shares: end-to-end training with live augmentation, the
//! layers before a split point frozen (run without autodiff), the rest and the head trained.

use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::optim::GradientsParams;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::frozen::{frozen_layers, run_frozen_batches, run_frozen_once};
use super::{check_classes, decode_all, epoch_metrics, evaluate_samples, finish, Context, Outcome};
use crate::data::dataset::Dataset;
use crate::model::head::HeadConfig;
use crate::model::input::images_to_tensor;
use crate::model::layers::{output_side, LayerKind, LayerSpec, LAYERS, OUT_CHANNELS};
use crate::model::{Classifier, ModelConfig};
use crate::tensor_io::tensor_to_vec;
use crate::train::artifacts::{
    checkpoint_artifact, load_checkpoint, save_checkpoint, CheckpointInfo,
};
use crate::train::augment::Augmentation;
use crate::train::best::{Keeper, Monitor, Stopped, Watch};
use crate::train::fit::{keras_rmsprop, logits_to_vec, Loss, Meter, TrainError};

/// Recipe 2: a new head trained on top of the frozen base, through live augmentation.
/// Defaults are the seed's. Recipe 3 (`FineTuneConfig`) runs the same loop.
#[derive(Config, Debug, PartialEq)]
pub struct EndToEndConfig {
    pub dataset: String,
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
    /// Augmented batches per epoch.
    #[config(default = 100)]
    pub steps_per_epoch: u32,
    /// Validation batches per epoch.
    #[config(default = 50)]
    pub validation_steps: u32,
    /// Photos are resized to this square size.
    #[config(default = 150)]
    pub image_size: u32,
    /// Live augmentation; without it the frozen layers run once per image (much faster).
    #[config(default = true)]
    pub augment: bool,
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

/// Recipe 2: a fresh head (no dropout) on the frozen pretrained base.
pub fn train_augmented(
    ctx: &mut Context,
    dataset: &Dataset,
    params: &EndToEndConfig,
) -> Result<Outcome, TrainError> {
    let side = output_side(params.image_size as usize);
    let classes = dataset.split("train")?.classes.len();
    let head = HeadConfig::for_classes(OUT_CHANNELS * side * side, classes).with_dropout(0.0);
    let start = Classifier {
        base: ctx.base.net.clone(),
        head: head.init(&ctx.base.device),
    };
    train_end_to_end(ctx, dataset, params, start, head, LAYERS.len(), "augmented")
}

/// The loop of recipes 2 and 3. Layers before `trainable_from` (an index into [`LAYERS`])
/// stay frozen and run on the plain device, so no autodiff graph is built for them; layers
/// from there on and the head are trained.
pub(super) fn train_end_to_end(
    ctx: &mut Context,
    dataset: &Dataset,
    params: &EndToEndConfig,
    start: Classifier,
    head_config: HeadConfig,
    trainable_from: usize,
    recipe: &str,
) -> Result<Outcome, TrainError> {
    // A job resumed after a restart continues from its last checkpoint: the weights of the
    // epoch it saved, counting from the last epoch recorded (never recording one twice).
    // The best epoch's weights (when they are to be restored) are kept the same way.
    let (start, head_config, saved_epoch, mut keeper) =
        match load_checkpoint(ctx.data_dir, ctx.job_id, ctx.base)? {
            Some((model, info, best)) => {
                tracing::info!(job = %ctx.job_id, epoch = info.epoch, "resuming from checkpoint");
                if info.epoch > ctx.recorded_epochs {
                    ctx.reporter.epoch(&info.metrics)?;
                }
                let watch = Watch::new(params.monitor, params.early_stopping_patience, info.best);
                let best = best.zip(info.best_metrics);
                let keeper = Keeper::new(watch, params.restore_best, best, Some(info.metrics));
                (model, info.head, info.epoch, keeper)
            }
            None => {
                let watch = Watch::new(params.monitor, params.early_stopping_patience, None);
                let keeper = Keeper::new(watch, params.restore_best, None, None);
                (start, head_config, 0, keeper)
            }
        };
    let first_epoch = saved_epoch.max(ctx.recorded_epochs) + 1;
    let train_split = dataset.split("train")?;
    let val_split = dataset.split("validation")?;
    check_classes(&train_split.classes)?;
    let units = head_config.units();
    if units != crate::model::head::output_units(train_split.classes.len()) {
        return Err(TrainError::Invalid(format!(
            "the model has {units} output units; the dataset's {} classes need {}",
            train_split.classes.len(),
            crate::model::head::output_units(train_split.classes.len())
        )));
    }
    let spec = ctx.spec(params.image_size);
    let size = spec.size as usize;
    let batch = params.batch_size as usize;
    let seed = params.seed;
    let device = ctx.base.device.clone();
    device.seed(seed);
    // A resumed job draws a fresh stream (its old position is not saved).
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (u64::from(first_epoch - 1) << 32));
    let steps = params.steps_per_epoch as usize;
    let val_cap = params.validation_steps as usize * batch;
    let (train_images, train_labels, _) =
        decode_all(ctx, &train_split.samples, spec, "training images decoded")?;

    // Validation images never change, and neither do the frozen layers: run those once.
    let mut val_samples = val_split.samples.clone();
    val_samples.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed));
    val_samples.truncate(val_cap);
    let (val_images, val_labels, _) =
        decode_all(ctx, &val_samples, spec, "validation images decoded")?;
    let preprocessing = ctx.base.preprocessing;
    let frozen = frozen_layers(ctx, &start.base, trainable_from, &train_images, size)?;
    let augment = params.augment;
    // Without augmentation the frozen layers see the same pixels every epoch: run them once
    // per training image and train on their outputs (the fast path for fine-tuning).
    let frozen_train = if augment {
        None
    } else {
        Some(run_frozen_once(ctx, &frozen, &train_images, size, batch)?)
    };
    let frozen_val = run_frozen_batches(ctx, &frozen, &val_images, &val_labels, size, batch)?;

    let autodiff = device.clone().autodiff();
    // `unfreeze` marks every parameter trainable and re-enables training flags (dropout)
    // that `valid()` turned off; `train` then moves the module onto the autodiff backend.
    let mut model = start.unfreeze().train();
    for spec in LAYERS.iter().take(trainable_from) {
        if let Some(conv) = conv_position(spec) {
            model.base.convs[conv] = model.base.convs[conv].clone().freeze();
        }
    }
    let mut optimizer = keras_rmsprop().init();
    let loss_fn = Loss::for_units(units, &autodiff);
    let lr = params.learning_rate;
    let augmentation = Augmentation::default();
    let epochs = params.epochs;
    let mut order: Vec<usize> = Vec::new();
    // A run resumed after it had stopped early does not train again.
    let mut stopped = Stopped::Completed;
    let first_epoch = if keeper.should_stop() && first_epoch <= epochs {
        stopped = Stopped::EarlyStopped;
        epochs + 1
    } else {
        first_epoch
    };
    for epoch in first_epoch..=epochs {
        let started = Instant::now();
        let mut meter = Meter::new(units);
        for step in 0..steps {
            keeper.check_cancel(ctx.reporter)?;
            // Keras's iterator: an endless walk over reshuffled passes of the training set.
            let mut indices = Vec::with_capacity(batch);
            while indices.len() < batch.min(train_images.len()) {
                if order.is_empty() {
                    order = (0..train_images.len()).collect();
                    order.shuffle(&mut rng);
                }
                indices.push(order.pop().expect("refilled above"));
            }
            let labels: Vec<usize> = indices.iter().map(|&i| train_labels[i]).collect();
            // [B, 3, S, S] preprocessed, warped → frozen layers without a graph (or their
            // cached outputs) → trainable layers and head with one.
            // LibTorch runs eagerly on the CPU, so these instants time each phase.
            let t_start = Instant::now();
            let mut t_augmented = t_start;
            let mid = match &frozen_train {
                Some(cached) => cached.batch(&indices, &device),
                None => {
                    let images: Vec<Vec<u8>> =
                        indices.iter().map(|&i| train_images[i].clone()).collect();
                    let x = images_to_tensor(&images, size, preprocessing, &device);
                    let x = augmentation.apply(x, &mut rng);
                    t_augmented = Instant::now();
                    frozen.forward(x)?
                }
            }
            .autodiff();
            let t_frozen = Instant::now();
            let features = model.base.forward_layers(mid, trainable_from..LAYERS.len());
            let logits = model.head.forward(features);
            let loss = loss_fn.forward(logits.clone(), &labels, &autodiff);
            let loss_value = tensor_to_vec(loss.clone().inner())?[0] as f64;
            meter.add_batch(loss_value, &logits_to_vec(logits.inner())?, &labels);
            let t_forward = Instant::now();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
            tracing::debug!(
                augment_s = (t_augmented - t_start).as_secs_f64(),
                frozen_s = (t_frozen - t_augmented).as_secs_f64(),
                trainable_forward_s = (t_forward - t_frozen).as_secs_f64(),
                backward_and_step_s = t_forward.elapsed().as_secs_f64(),
                "training step"
            );
            ctx.reporter
                .progress((step + 1) as u64, steps as u64, "steps");
        }
        let eval = model.valid();
        let mut val = Meter::new(units);
        for (mid, labels) in &frozen_val {
            let features = eval
                .base
                .forward_layers(mid.clone(), trainable_from..LAYERS.len());
            val.add_logits(&logits_to_vec(eval.head.forward(features))?, labels);
        }
        let mut metrics = epoch_metrics(epoch, &meter, Some(&val), started);
        keeper.epoch(&mut metrics, || model.valid());
        // Checkpoint first, then record: a crash between the two finds the epoch in the
        // checkpoint and records it on resume, so no epoch is lost or recorded twice.
        let info = CheckpointInfo {
            epoch,
            head: head_config.clone(),
            metrics: metrics.clone(),
            best: keeper.best_so_far().cloned(),
            best_metrics: keeper.best_kept().map(|(_, m)| m.clone()),
        };
        let best = keeper.best_kept().map(|(weights, _)| weights);
        save_checkpoint(
            ctx.data_dir,
            ctx.job_id,
            ctx.attempt,
            &model.valid(),
            &info,
            best,
        )?;
        (ctx.publish)(&checkpoint_artifact(ctx.job_id, ctx.attempt))?;
        ctx.reporter.epoch(&metrics)?;
        // Patience running out on the last epoch stops nothing: the run completed.
        if keeper.should_stop() && epoch < epochs {
            stopped = Stopped::EarlyStopped;
            break;
        }
    }
    let (trained, metrics, training) = keeper.finish(model.valid(), stopped);
    let test_metrics = match dataset.splits.get("test").filter(|s| !s.samples.is_empty()) {
        Some(test) => {
            let evaluation = evaluate_samples(ctx, &trained, dataset, test, units, spec, batch)?;
            Some(evaluation.json())
        }
        None => None,
    };
    let config = ModelConfig {
        recipe: recipe.into(),
        head: head_config,
        classes: train_split.classes.clone(),
        image_size: params.image_size,
        preprocessing,
        weights_sha256: ctx.base.weights_sha256.clone(),
        includes_base: trainable_from < LAYERS.len(),
    };
    let mut outcome = finish(ctx, trained, config, metrics, &training, test_metrics)?;
    outcome.result["conv_precision"] = frozen.tag().into();
    Ok(outcome)
}

fn conv_position(layer: &LayerSpec) -> Option<usize> {
    match layer.kind {
        LayerKind::Conv { conv, .. } => Some(conv),
        LayerKind::Pool => None,
    }
}

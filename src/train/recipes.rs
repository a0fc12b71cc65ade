//! The seed's recipes, each a function from parameters to an [`Outcome`]:
//! 1. `extract_features` + `train_on_features` (dense head on cached conv features),
//! 2. `train_end_to_end` with augmentation through the frozen base,
//! 3. the same with the top conv layers unfrozen (fine-tuning),
//!
//! and `evaluate` of a trained model on a split.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

use super::artifacts::{
    features_path, read_features, save_model, write_features, FeatureSet, ModelConfig,
};
use super::augment::Augmentation;
use super::feature_cache::FeatureCache;
use super::fit::{
    bce_with_logits, check_cancel, keras_rmsprop, label_tensor, logits_to_vec, Meter, Reporter,
    TrainError,
};
use crate::data::batch::{images_to_tensor, prefetch, BadFile};
use crate::data::dataset::{Dataset, Sample};
use crate::data::decode::{ImageSpec, ResizeFilter};
use crate::jobs::spec::JobParams;
use crate::model::head::HeadConfig;
use crate::model::layers::{layer_index, output_side, LAYERS, OUT_CHANNELS};
use crate::model::{Classifier, ConvBase};
use crate::store::EpochMetrics;
use crate::tensor_io::tensor_to_vec;

/// What a recipe needs from its surroundings.
pub struct Context<'a> {
    pub base: &'a ConvBase,
    pub data_dir: &'a Path,
    pub resize: ResizeFilter,
    pub max_pixels: u64,
    pub job_id: Uuid,
    pub reporter: &'a mut dyn Reporter,
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

/// An image's cache key and its cached features, if any; or why it could not be read.
type Lookup = Result<(String, Option<Vec<f32>>), BadFile>;

/// Recipe 1, step 1: run the conv base once over every split and store the features.
/// Images whose features are in the [`FeatureCache`] (same bytes, weights, preprocessing,
/// size and filter) skip the network.
pub fn extract_features(
    ctx: &mut Context,
    dataset: &Dataset,
    params: &JobParams,
) -> Result<Outcome, TrainError> {
    let started = Instant::now();
    let spec = ctx.spec(params.image_size);
    let side = output_side(spec.size as usize);
    let width = OUT_CHANNELS * side * side;
    let cache = FeatureCache::new(
        ctx.data_dir,
        &ctx.base.weights_sha256,
        ctx.base.preprocessing.as_str(),
        &spec,
        width,
    );
    let total: usize = dataset.splits.values().map(|s| s.samples.len()).sum();
    let mut done = 0usize;
    let (mut cached, mut computed) = (0usize, 0usize);
    let mut splits = serde_json::Map::new();
    let mut skipped_files = Vec::new();
    for (split, data) in &dataset.splits {
        if data.samples.is_empty() {
            continue;
        }
        // Look every image up by content first; only the misses go through the network.
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; data.samples.len()];
        let mut keys: Vec<Option<String>> = vec![None; data.samples.len()];
        let mut bad: Vec<BadFile> = Vec::new();
        for (chunk_index, chunk) in data.samples.chunks(256).enumerate() {
            check_cancel(ctx.reporter)?;
            let looked_up: Vec<Lookup> = chunk
                .par_iter()
                .map(|sample| {
                    let bytes = std::fs::read(&sample.path).map_err(|e| BadFile {
                        path: sample.path.clone(),
                        reason: e.to_string(),
                    })?;
                    let key = FeatureCache::key(&bytes);
                    let hit = cache.get(&key);
                    Ok((key, hit))
                })
                .collect();
            for (offset, result) in looked_up.into_iter().enumerate() {
                let i = chunk_index * 256 + offset;
                match result {
                    Ok((key, hit)) => {
                        if hit.is_some() {
                            cached += 1;
                            done += 1;
                        }
                        slots[i] = hit;
                        keys[i] = Some(key);
                    }
                    Err(file) => bad.push(file),
                }
            }
            ctx.reporter.progress(done as u64, total as u64, "images");
        }
        let misses: Vec<usize> = (0..data.samples.len())
            .filter(|&i| slots[i].is_none() && keys[i].is_some())
            .collect();
        let paths = misses
            .iter()
            .map(|&i| data.samples[i].path.clone())
            .collect();
        for batch in prefetch(paths, params.batch_size as usize, spec, 2) {
            check_cancel(ctx.reporter)?;
            if !batch.images.is_empty() {
                let y = tensor_to_vec(ctx.base.features(&batch.images, spec.size as usize))?;
                for (row, &j) in y.chunks_exact(width).zip(&batch.indices) {
                    let i = misses[j];
                    if let Some(key) = &keys[i] {
                        cache.put(key, row);
                    }
                    slots[i] = Some(row.to_vec());
                }
                computed += batch.images.len();
            }
            done += batch.indices.len() + batch.bad.len();
            bad.extend(batch.bad);
            ctx.reporter.progress(done as u64, total as u64, "images");
        }
        note_bad(&mut skipped_files, &bad);
        let mut features = Vec::with_capacity(data.samples.len() * width);
        let mut labels = Vec::with_capacity(data.samples.len());
        for (slot, sample) in slots.into_iter().zip(&data.samples) {
            if let Some(row) = slot {
                features.extend(row);
                labels.push(sample.label);
            }
        }
        if labels.is_empty() {
            return Err(TrainError::Invalid(format!(
                "no readable images in split {split:?}"
            )));
        }
        let set = FeatureSet {
            shape: [labels.len(), OUT_CHANNELS, side, side],
            features,
            labels,
            classes: data.classes.clone(),
            image_size: params.image_size,
            weights_sha256: ctx.base.weights_sha256.clone(),
        };
        write_features(&features_path(ctx.data_dir, ctx.job_id, split), &set)?;
        splits.insert(
            split.clone(),
            json!({"images": set.len(), "skipped": bad.len(), "shape": set.shape}),
        );
    }
    Ok(Outcome {
        result: json!({
            "splits": splits,
            "classes": dataset.classes(),
            "skipped_files": skipped_files,
            "cache": {"hits": cached, "computed": computed},
            "seconds": started.elapsed().as_secs_f64(),
        }),
        model: None,
    })
}

fn note_bad(list: &mut Vec<String>, bad: &[BadFile]) {
    for file in bad {
        tracing::warn!(path = %file.path.display(), reason = %file.reason, "skipping unreadable image");
        if list.len() < 50 {
            list.push(format!("{}: {}", file.path.display(), file.reason));
        }
    }
}

/// Recipe 1, step 2: Dense(256, ReLU) → Dropout(0.5) → Dense(1) on cached features.
pub fn train_on_features(
    ctx: &mut Context,
    params: &JobParams,
    features_job: Uuid,
) -> Result<Outcome, TrainError> {
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
    check_binary(&train.classes)?;
    let device = ctx.base.device.clone();
    let seed = params.seed.unwrap_or(1337);
    device.seed(seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let autodiff = device.clone().autodiff();
    let head_config = HeadConfig::new(train.width()).with_dropout(0.5);
    let mut head = head_config.init(&autodiff);
    let mut optimizer = keras_rmsprop().init();
    let loss_fn = bce_with_logits(&autodiff);
    let lr = params.learning_rate.unwrap_or(2e-5);
    let batch = params.batch_size as usize;
    let epochs = params.epochs.unwrap_or(30);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut last = json!(null);
    for epoch in 1..=epochs {
        let started = Instant::now();
        order.shuffle(&mut rng);
        let mut meter = Meter::default();
        for indices in order.chunks(batch) {
            check_cancel(ctx.reporter)?;
            let (rows, labels) = train.gather(indices);
            // [B, C·H·W] on the autodiff device: only the head is in the graph.
            let x = Tensor::<2>::from_data(
                TensorData::new(rows, [indices.len(), train.width()]),
                &autodiff,
            );
            let logits = head.forward_flat(x);
            let loss = loss_fn.forward(logits.clone(), label_tensor(&labels, &autodiff));
            let loss_value = tensor_to_vec(loss.clone().inner())?[0] as f64;
            meter.add_batch(loss_value, &logits_to_vec(logits.inner())?, &labels);
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = optimizer.step(lr, head, grads);
        }
        let val = evaluate_features(&head.valid(), &validation, batch, &device)?;
        let metrics = epoch_metrics(epoch, &meter, Some(&val), started);
        ctx.reporter.epoch(&metrics)?;
        ctx.reporter.progress(epoch as u64, epochs as u64, "epochs");
        last = serde_json::to_value(&metrics).unwrap_or_default();
    }
    let head = head.valid();
    let test_metrics = match &test {
        Some(test) => Some(evaluate_features(&head, test, batch, &device)?.json()),
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
    finish(ctx, model, config, last, test_metrics)
}

fn evaluate_features(
    head: &crate::model::head::DenseHead,
    set: &FeatureSet,
    batch: usize,
    device: &Device,
) -> Result<Meter, TrainError> {
    let mut meter = Meter::default();
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(batch.max(1) * 10) {
        let (rows, labels) = set.gather(chunk);
        let x = Tensor::<2>::from_data(TensorData::new(rows, [chunk.len(), set.width()]), device);
        meter.add_logits(&logits_to_vec(head.forward_flat(x))?, &labels);
    }
    Ok(meter)
}

fn epoch_metrics(epoch: u32, train: &Meter, val: Option<&Meter>, started: Instant) -> EpochMetrics {
    EpochMetrics {
        epoch: epoch as i64,
        loss: train.loss(),
        acc: train.acc(),
        val_loss: val.map(Meter::loss),
        val_acc: val.map(Meter::acc),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn check_binary(classes: &[String]) -> Result<(), TrainError> {
    if classes.len() != 2 {
        return Err(TrainError::Invalid(format!(
            "the recipes train a binary classifier (sigmoid output): need exactly 2 classes, found {} {:?}",
            classes.len(),
            classes
        )));
    }
    Ok(())
}

fn finish(
    ctx: &mut Context,
    model: Classifier,
    config: ModelConfig,
    metrics: Value,
    test_metrics: Option<Value>,
) -> Result<Outcome, TrainError> {
    let id = Uuid::new_v4();
    let (artifact, artifact_sha256) = save_model(ctx.data_dir, id, &model, &config)?;
    let result = json!({"final": metrics, "test": test_metrics, "model_id": id});
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
fn decode_all(
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

/// Recipes 2 and 3: end to end with live augmentation. Layers before `trainable_from`
/// (an index into [`LAYERS`]) stay frozen and run on the plain device, so no autodiff graph
/// is built for them; layers from there on and the head are trained.
pub fn train_end_to_end(
    ctx: &mut Context,
    dataset: &Dataset,
    params: &JobParams,
    start: Classifier,
    head_config: HeadConfig,
    trainable_from: usize,
    recipe: &str,
) -> Result<Outcome, TrainError> {
    let train_split = dataset.split("train")?;
    let val_split = dataset.split("validation")?;
    check_binary(&train_split.classes)?;
    let spec = ctx.spec(params.image_size);
    let size = spec.size as usize;
    let batch = params.batch_size as usize;
    let seed = params.seed.unwrap_or(1337);
    let device = ctx.base.device.clone();
    device.seed(seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let steps = params.steps_per_epoch.unwrap_or(100) as usize;
    let val_cap = params.validation_steps.unwrap_or(50) as usize * batch;
    let (train_images, train_labels, _) =
        decode_all(ctx, &train_split.samples, spec, "training images decoded")?;

    // Validation images never change, and neither do the frozen layers: run those once.
    let mut val_samples = val_split.samples.clone();
    val_samples.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed));
    val_samples.truncate(val_cap);
    let (val_images, val_labels, _) =
        decode_all(ctx, &val_samples, spec, "validation images decoded")?;
    let frozen = start.base.clone();
    let preprocessing = ctx.base.preprocessing;
    let frozen_val: Vec<(Tensor<4>, Vec<usize>)> = val_images
        .chunks(batch)
        .zip(val_labels.chunks(batch))
        .map(|(images, labels)| {
            let x = images_to_tensor(images, size, preprocessing, &device);
            (frozen.forward_layers(x, 0..trainable_from), labels.to_vec())
        })
        .collect();

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
    let loss_fn = bce_with_logits(&autodiff);
    let lr = params.learning_rate.unwrap_or(2e-5);
    let augmentation = Augmentation::default();
    let epochs = params.epochs.unwrap_or(30);
    let mut order: Vec<usize> = Vec::new();
    let mut last = json!(null);
    for epoch in 1..=epochs {
        let started = Instant::now();
        let mut meter = Meter::default();
        for step in 0..steps {
            check_cancel(ctx.reporter)?;
            // Keras's iterator: an endless walk over reshuffled passes of the training set.
            let mut indices = Vec::with_capacity(batch);
            while indices.len() < batch.min(train_images.len()) {
                if order.is_empty() {
                    order = (0..train_images.len()).collect();
                    order.shuffle(&mut rng);
                }
                indices.push(order.pop().expect("refilled above"));
            }
            let images: Vec<Vec<u8>> = indices.iter().map(|&i| train_images[i].clone()).collect();
            let labels: Vec<usize> = indices.iter().map(|&i| train_labels[i]).collect();
            // [B, 3, S, S] preprocessed, warped → frozen layers without a graph →
            // trainable layers and head with one.
            let x = images_to_tensor(&images, size, preprocessing, &device);
            let x = augmentation.apply(x, &mut rng);
            let mid = frozen.forward_layers(x, 0..trainable_from).autodiff();
            let features = model.base.forward_layers(mid, trainable_from..LAYERS.len());
            let logits = model.head.forward(features);
            let loss = loss_fn.forward(logits.clone(), label_tensor(&labels, &autodiff));
            let loss_value = tensor_to_vec(loss.clone().inner())?[0] as f64;
            meter.add_batch(loss_value, &logits_to_vec(logits.inner())?, &labels);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);
            ctx.reporter
                .progress((step + 1) as u64, steps as u64, "steps");
        }
        let eval = model.valid();
        let mut val = Meter::default();
        for (mid, labels) in &frozen_val {
            let features = eval
                .base
                .forward_layers(mid.clone(), trainable_from..LAYERS.len());
            val.add_logits(&logits_to_vec(eval.head.forward(features))?, labels);
        }
        let metrics = epoch_metrics(epoch, &meter, Some(&val), started);
        ctx.reporter.epoch(&metrics)?;
        last = serde_json::to_value(&metrics).unwrap_or_default();
    }
    let trained = model.valid();
    let test_metrics = match dataset.splits.get("test").filter(|s| !s.samples.is_empty()) {
        Some(test) => Some(evaluate_samples(ctx, &trained, &test.samples, spec, batch)?.json()),
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
    finish(ctx, trained, config, last, test_metrics)
}

fn conv_position(layer: &crate::model::layers::LayerSpec) -> Option<usize> {
    match layer.kind {
        crate::model::layers::LayerKind::Conv { conv, .. } => Some(conv),
        crate::model::layers::LayerKind::Pool => None,
    }
}

/// The split point for fine-tuning: everything before `unfreeze_from` stays frozen.
pub fn trainable_from(unfreeze_from: Option<&str>) -> usize {
    unfreeze_from.and_then(layer_index).unwrap_or(LAYERS.len())
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

impl From<crate::data::dataset::DatasetError> for TrainError {
    fn from(e: crate::data::dataset::DatasetError) -> Self {
        TrainError::Invalid(e.to_string())
    }
}

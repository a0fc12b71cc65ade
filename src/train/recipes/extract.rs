//! Recipe 1, step 1: conv-base features for every split, through the feature cache (this
//! machine's, then what other machines shared through the artifact store).

use std::time::Instant;

use burn::config::Config;
use rayon::prelude::*;
use serde_json::json;

use super::{decode_all, note_bad, Context, Outcome};
use crate::data::batch::{prefetch, BadFile};
use crate::data::dataset::Dataset;
use crate::data::decode::ImageSpec;
use crate::model::frozen::{spread, CALIBRATION_PHOTOS};
use crate::model::layers::{output_side, OUT_CHANNELS};
use crate::model::{ConvBase, Precision};
use crate::tensor_io::tensor_to_vec;
use crate::train::artifacts::{features_path, write_features, FeatureSet};
use crate::train::feature_cache::FeatureCache;
use crate::train::fit::{check_cancel, TrainError};

/// Recipe 1, step 1: what to extract. Defaults are the seed's.
#[derive(Config, Debug, PartialEq)]
pub struct ExtractConfig {
    pub dataset: String,
    /// Photos are resized to this square size.
    #[config(default = 150)]
    pub image_size: u32,
    #[config(default = 20)]
    pub batch_size: u32,
}

/// An image's cache key and its cached features, if any; or why it could not be read.
type Lookup = Result<(String, Option<Vec<f32>>), BadFile>;

/// Recipe 1, step 1: run the conv base once over every split and store the features.
/// Images whose features are in the [`FeatureCache`] (same bytes, weights, preprocessing,
/// size and filter) skip the network.
pub fn extract_features(
    ctx: &mut Context,
    dataset: &Dataset,
    params: &ExtractConfig,
) -> Result<Outcome, TrainError> {
    let started = Instant::now();
    let spec = ctx.spec(params.image_size);
    let side = output_side(spec.size as usize);
    let width = OUT_CHANNELS * side * side;
    let base = calibrated(ctx, dataset, spec)?;
    let cache = FeatureCache::new(
        ctx.data_dir,
        &base.weights_sha256,
        base.preprocessing.as_str(),
        &base.features_tag(),
        &spec,
        width,
    );
    let total: usize = dataset.splits.values().map(|s| s.samples.len()).sum();
    let mut done = 0usize;
    // Cache hits (`shared` of them fetched from other machines), and images computed.
    let (mut cached, mut shared, mut computed) = (0usize, 0usize, 0usize);
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
        let mut misses: Vec<usize> = (0..data.samples.len())
            .filter(|&i| slots[i].is_none() && keys[i].is_some())
            .collect();
        // Then among what other machines computed and shared.
        let wanted: Vec<String> = misses
            .iter()
            .filter_map(|&i| keys[i].as_deref().map(|key| cache.relative(key)))
            .collect();
        if !wanted.is_empty() && ctx.shared_cache.fetch(&wanted) > 0 {
            misses.retain(|&i| {
                slots[i] = keys[i].as_deref().and_then(|key| cache.get(key));
                slots[i].is_none()
            });
            let came = wanted.len() - misses.len();
            cached += came;
            shared += came;
            done += came;
            ctx.reporter.progress(done as u64, total as u64, "images");
        }
        let mut computed_here = Vec::with_capacity(misses.len());
        let paths = misses
            .iter()
            .map(|&i| data.samples[i].path.clone())
            .collect();
        for batch in prefetch(paths, params.batch_size as usize, spec, 2) {
            check_cancel(ctx.reporter)?;
            if !batch.images.is_empty() {
                let y = tensor_to_vec(base.features(&batch.images, spec.size as usize)?)?;
                for (row, &j) in y.chunks_exact(width).zip(&batch.indices) {
                    let i = misses[j];
                    if let Some(key) = &keys[i] {
                        if cache.put(key, row) {
                            computed_here.push(cache.relative(key));
                        }
                    }
                    slots[i] = Some(row.to_vec());
                }
                computed += batch.images.len();
            }
            done += batch.indices.len() + batch.bad.len();
            bad.extend(batch.bad);
            ctx.reporter.progress(done as u64, total as u64, "images");
        }
        ctx.shared_cache.share(&computed_here);
        note_bad(&mut skipped_files, &bad);
        let mut features = Vec::with_capacity(data.samples.len() * width);
        let mut labels = Vec::with_capacity(data.samples.len());
        let mut files = Vec::with_capacity(data.samples.len());
        for (slot, sample) in slots.into_iter().zip(&data.samples) {
            if let Some(row) = slot {
                features.extend(row);
                labels.push(sample.label);
                let relative = sample
                    .path
                    .strip_prefix(&dataset.root)
                    .unwrap_or(&sample.path);
                files.push(relative.display().to_string());
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
            files,
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
            "cache": {"hits": cached, "shared_hits": shared, "computed": computed},
            "conv_precision": base.features_tag(),
            "seconds": started.elapsed().as_secs_f64(),
        }),
        model: None,
    })
}

/// The server's base, and for int8 calibrated on the training split (at most
/// [`CALIBRATION_PHOTOS`] photos, evenly spaced over its classes).
fn calibrated(
    ctx: &mut Context,
    dataset: &Dataset,
    spec: ImageSpec,
) -> Result<ConvBase, TrainError> {
    if ctx.base.precision != Precision::Int8 {
        return Ok(ctx.base.clone());
    }
    let split = dataset
        .splits
        .get("train")
        .or_else(|| dataset.splits.values().next())
        .ok_or_else(|| TrainError::Invalid("the dataset has no photos".into()))?;
    let sample = spread(&split.samples, CALIBRATION_PHOTOS);
    let (photos, _, _) = decode_all(ctx, &sample, spec, "int8 calibration photos decoded")?;
    Ok(ctx
        .base
        .clone()
        .calibrated_on(&photos, spec.size as usize)?)
}

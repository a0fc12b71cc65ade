//! Files a training job leaves under the data dir: extracted features
//! (`features/<job>/<split>.safetensors`), written atomically, and per-epoch checkpoints
//! (`checkpoints/<job>/`, the `checkpoint` module's, re-exported here). Trained models
//! themselves are the model layer's (`model::saved`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use uuid::Uuid;

use crate::tensor_io::{read_f32_safetensors, write_f32_safetensors};

pub use super::checkpoint::{
    checkpoint_artifact, checkpoints_artifact, has_checkpoint, load_checkpoint, remove_checkpoint,
    save_checkpoint, CheckpointInfo, Resumed,
};

/// Conv features of one split, with labels, as `extract_features` stores them.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    /// [N, C, H, W] row-major.
    pub features: Vec<f32>,
    pub shape: [usize; 4],
    pub labels: Vec<usize>,
    /// Each sample's file, relative to its dataset's folder (empty in feature files written
    /// before they were recorded: evaluations then name no photos).
    pub files: Vec<String>,
    pub classes: Vec<String>,
    pub image_size: u32,
    pub weights_sha256: String,
}

impl FeatureSet {
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// Values per sample (C·H·W).
    pub fn width(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }

    /// Gather samples `indices` into one flat [len, width] buffer.
    pub fn gather(&self, indices: &[usize]) -> (Vec<f32>, Vec<usize>) {
        let width = self.width();
        let mut rows = Vec::with_capacity(indices.len() * width);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            rows.extend_from_slice(&self.features[i * width..(i + 1) * width]);
            labels.push(self.labels[i]);
        }
        (rows, labels)
    }
}

pub fn features_path(data_dir: &Path, job: Uuid, split: &str) -> PathBuf {
    data_dir
        .join(features_artifact(job))
        .join(format!("{split}.safetensors"))
}

pub fn write_features(path: &Path, set: &FeatureSet) -> anyhow::Result<()> {
    let labels: Vec<f32> = set.labels.iter().map(|&l| l as f32).collect();
    let metadata = HashMap::from([
        ("classes".to_string(), serde_json::to_string(&set.classes)?),
        ("image_size".to_string(), set.image_size.to_string()),
        ("weights_sha256".to_string(), set.weights_sha256.clone()),
        ("files".to_string(), serde_json::to_string(&set.files)?),
    ]);
    write_f32_safetensors(
        path,
        [
            (
                "features".to_string(),
                set.shape.to_vec(),
                set.features.as_slice(),
            ),
            ("labels".to_string(), vec![labels.len()], labels.as_slice()),
        ],
        metadata,
    )
}

pub fn read_features(path: &Path) -> anyhow::Result<FeatureSet> {
    let (mut tensors, metadata) = read_f32_safetensors(path)?;
    let features = tensors
        .remove("features")
        .with_context(|| format!("{} has no `features`", path.display()))?;
    let labels = tensors
        .remove("labels")
        .with_context(|| format!("{} has no `labels`", path.display()))?;
    let shape: [usize; 4] = features
        .shape
        .as_slice()
        .try_into()
        .with_context(|| format!("{}: features are not 4-D", path.display()))?;
    if labels.data.len() != shape[0] {
        bail!(
            "{}: {} labels for {} samples",
            path.display(),
            labels.data.len(),
            shape[0]
        );
    }
    let field = |key: &str| {
        metadata
            .get(key)
            .with_context(|| format!("{} has no `{key}` metadata", path.display()))
    };
    Ok(FeatureSet {
        features: features.data,
        shape,
        labels: labels.data.iter().map(|&l| l as usize).collect(),
        classes: serde_json::from_str(field("classes")?)
            .with_context(|| format!("{}: unreadable `classes`", path.display()))?,
        image_size: field("image_size")?
            .parse()
            .with_context(|| format!("{}: unreadable `image_size`", path.display()))?,
        weights_sha256: field("weights_sha256")?.clone(),
        files: match metadata.get("files") {
            Some(files) => serde_json::from_str(files)
                .with_context(|| format!("{}: unreadable `files`", path.display()))?,
            None => Vec::new(),
        },
    })
}

/// A features job's output, relative to the data dir.
pub fn features_artifact(job: Uuid) -> String {
    format!("features/{job}")
}

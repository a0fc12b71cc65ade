//! Files a job leaves under the data dir: cached features (`features/<job>/<split>`) and
//! trained models (`models/<id>/`: weights + `config.json`, burn-style). All written
//! atomically; model weights are checked against their recorded SHA-256 on load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::head::HeadConfig;
use crate::model::{Classifier, ConvBase, Preprocessing};
use crate::tensor_io::{read_f32_safetensors, write_f32_safetensors};

/// Conv features of one split, with labels, as `extract_features` stores them.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    /// [N, C, H, W] row-major.
    pub features: Vec<f32>,
    pub shape: [usize; 4],
    pub labels: Vec<usize>,
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
        .join("features")
        .join(job.to_string())
        .join(format!("{split}.safetensors"))
}

pub fn write_features(path: &Path, set: &FeatureSet) -> anyhow::Result<()> {
    let labels: Vec<f32> = set.labels.iter().map(|&l| l as f32).collect();
    let metadata = HashMap::from([
        ("classes".to_string(), serde_json::to_string(&set.classes)?),
        ("image_size".to_string(), set.image_size.to_string()),
        ("weights_sha256".to_string(), set.weights_sha256.clone()),
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
    Ok(FeatureSet {
        features: features.data,
        shape,
        labels: labels.data.iter().map(|&l| l as usize).collect(),
        classes: metadata
            .get("classes")
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default(),
        image_size: metadata
            .get("image_size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(150),
        weights_sha256: metadata.get("weights_sha256").cloned().unwrap_or_default(),
    })
}

/// Everything needed to rebuild a trained model, saved as `config.json` beside its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelConfig {
    pub recipe: String,
    pub head: HeadConfig,
    pub classes: Vec<String>,
    pub image_size: u32,
    pub preprocessing: Preprocessing,
    /// SHA-256 of the pretrained base weights the model was trained on.
    pub weights_sha256: String,
    /// Whether the artifact holds the conv base too (fine-tuned), or only the head.
    pub includes_base: bool,
}

/// Where a model's files live, relative to the data dir.
pub fn model_artifact(id: Uuid) -> PathBuf {
    PathBuf::from("models")
        .join(id.to_string())
        .join("model.safetensors")
}

/// Save weights (only the head unless the base was trained) and config; returns the
/// artifact's relative path and SHA-256.
pub fn save_model(
    data_dir: &Path,
    id: Uuid,
    model: &Classifier,
    config: &ModelConfig,
) -> anyhow::Result<(String, String)> {
    let relative = model_artifact(id);
    let path = data_dir.join(&relative);
    let dir = path.parent().context("model path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut store = SafetensorsStore::from_file(&path).overwrite(true);
    if !config.includes_base {
        store = store.with_regex(r"^head\.");
    }
    model
        .valid()
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("saving {}: {e}", path.display()))?;
    let config_path = dir.join("config.json");
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(tmp.as_file(), config)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&config_path)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let sha = file_sha256(&path)?;
    Ok((relative.to_string_lossy().into_owned(), sha))
}

/// Rebuild a model on the base's device from its artifact, refusing a file whose bytes no
/// longer match the recorded SHA-256 (torn write, tampering, disk error).
pub fn load_model(
    data_dir: &Path,
    artifact: &str,
    expected_sha256: &str,
    config: &ModelConfig,
    base: &ConvBase,
) -> anyhow::Result<Classifier> {
    let path = data_dir.join(artifact);
    let sha = file_sha256(&path)?;
    if sha != expected_sha256 {
        bail!(
            "model file {} is corrupt (SHA-256 {sha}, recorded {expected_sha256})",
            path.display()
        );
    }
    if config.weights_sha256 != base.weights_sha256 && !config.includes_base {
        bail!(
            "model was trained on base weights {}…, but the server runs {}…",
            &config.weights_sha256.get(..12).unwrap_or(""),
            &base.weights_sha256.get(..12).unwrap_or("")
        );
    }
    let mut model = Classifier {
        base: base.net.clone(),
        head: config.head.init(&base.device),
    };
    let mut store = SafetensorsStore::from_file(&path).allow_partial(!config.includes_base);
    let result = model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?;
    if !result.errors.is_empty() || !result.unused.is_empty() {
        bail!(
            "model file {} does not fit the model: errors {:?}, unused {:?}",
            path.display(),
            result.errors,
            result.unused
        );
    }
    if config.includes_base {
        model.base = model.base.into_channels_last()?;
    }
    Ok(model.valid())
}

/// What a training job's checkpoint records beside the model's weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The last epoch whose weights the checkpoint holds.
    pub epoch: u32,
    pub head: HeadConfig,
    /// That epoch's metrics: the checkpoint is written before the epoch is recorded, so a
    /// crash in between can still record it on resume.
    pub metrics: crate::store::EpochMetrics,
}

fn checkpoint_dir(data_dir: &Path, job: Uuid) -> PathBuf {
    data_dir.join("checkpoints").join(job.to_string())
}

/// Save the whole model after an epoch: weights first, then `checkpoint.json`, each
/// atomically, so a checkpoint whose JSON exists always has complete weights.
pub fn save_checkpoint(
    data_dir: &Path,
    job: Uuid,
    model: &Classifier,
    info: &CheckpointInfo,
) -> anyhow::Result<()> {
    let dir = checkpoint_dir(data_dir, job);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut store = SafetensorsStore::from_file(dir.join("model.safetensors")).overwrite(true);
    model
        .valid()
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("saving checkpoint in {}: {e}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(&dir)?;
    serde_json::to_writer(tmp.as_file(), info)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join("checkpoint.json"))
        .with_context(|| format!("writing {}", dir.display()))?;
    Ok(())
}

pub fn has_checkpoint(data_dir: &Path, job: Uuid) -> bool {
    checkpoint_dir(data_dir, job)
        .join("checkpoint.json")
        .is_file()
}

/// The model and info of a job's last checkpoint, if it has one.
pub fn load_checkpoint(
    data_dir: &Path,
    job: Uuid,
    base: &ConvBase,
) -> anyhow::Result<Option<(Classifier, CheckpointInfo)>> {
    let dir = checkpoint_dir(data_dir, job);
    let Ok(text) = std::fs::read_to_string(dir.join("checkpoint.json")) else {
        return Ok(None);
    };
    let info: CheckpointInfo = serde_json::from_str(&text).context("unreadable checkpoint.json")?;
    let mut model = Classifier {
        base: base.net.clone(),
        head: info.head.init(&base.device),
    };
    let mut store = SafetensorsStore::from_file(dir.join("model.safetensors"));
    let result = model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("loading checkpoint in {}: {e}", dir.display()))?;
    if !result.errors.is_empty() || !result.unused.is_empty() || !result.missing.is_empty() {
        bail!("checkpoint in {} does not fit the model", dir.display());
    }
    model.base = model.base.into_channels_last()?;
    Ok(Some((model.valid(), info)))
}

/// Drop a job's checkpoint once the job has ended.
pub fn remove_checkpoint(data_dir: &Path, job: Uuid) {
    let dir = checkpoint_dir(data_dir, job);
    if let Err(error) = std::fs::remove_dir_all(&dir) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(%error, dir = %dir.display(), "could not remove a checkpoint");
        }
    }
}

/// Load a registered model: its config from the record, its weights from its artifact.
pub fn load_record(
    data_dir: &Path,
    record: &crate::store::ModelRecord,
    base: &ConvBase,
) -> anyhow::Result<(Classifier, ModelConfig)> {
    let config: ModelConfig = serde_json::from_value(record.config.clone())
        .with_context(|| format!("model {} has an unreadable config", record.id))?;
    let model = load_model(
        data_dir,
        &record.artifact,
        &record.artifact_sha256,
        &config,
        base,
    )?;
    Ok((model, config))
}

pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

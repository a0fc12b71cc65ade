//! Files a training job leaves under the data dir: extracted features
//! (`features/<job>/<split>.safetensors`) and per-epoch checkpoints (`checkpoints/<job>/`).
//! All written atomically. Trained models themselves are the model layer's (`model::saved`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::EpochMetrics;
use crate::model::head::HeadConfig;
use crate::model::{Classifier, ConvBase};
use crate::tensor_io::{read_f32_safetensors, write_f32_safetensors};

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

/// What a training job's checkpoint records beside the model's weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The last epoch whose weights the checkpoint holds.
    pub epoch: u32,
    pub head: HeadConfig,
    /// That epoch's metrics: the checkpoint is written before the epoch is recorded, so a
    /// crash in between can still record it on resume.
    pub metrics: EpochMetrics,
}

fn job_checkpoints(data_dir: &Path, job: Uuid) -> PathBuf {
    data_dir.join(checkpoints_artifact(job))
}

/// Each claim of a job (`attempt`) checkpoints into a folder of its own: a worker that lost
/// its lease but has not noticed yet can finish an epoch and save, and must not overwrite
/// what the job's new holder saved.
fn checkpoint_dir(data_dir: &Path, job: Uuid, attempt: i64) -> PathBuf {
    data_dir.join(checkpoint_artifact(job, attempt))
}

/// A job's checkpoints (every attempt's), relative to the data dir: the artifact a worker
/// elsewhere fetches to resume it.
pub fn checkpoints_artifact(job: Uuid) -> String {
    format!("checkpoints/{job}")
}

/// One attempt's checkpoint, relative to the data dir (published after each save).
pub fn checkpoint_artifact(job: Uuid, attempt: i64) -> String {
    format!("checkpoints/{job}/attempt-{attempt}")
}

/// A features job's output, relative to the data dir.
pub fn features_artifact(job: Uuid) -> String {
    format!("features/{job}")
}

/// The folder of the job's checkpoint to resume from: the latest attempt's that saved one
/// (an earlier attempt's may be newer in epochs but was never recorded past its last
/// recorded epoch). Checkpoints of versions before attempts count as attempt 0.
fn latest_checkpoint(data_dir: &Path, job: Uuid) -> Option<PathBuf> {
    let root = job_checkpoints(data_dir, job);
    let mut candidates: Vec<(i64, PathBuf)> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let attempt = path
                .file_name()?
                .to_str()?
                .strip_prefix("attempt-")?
                .parse()
                .ok()?;
            Some((attempt, path))
        })
        .collect();
    candidates.push((0, root));
    candidates
        .into_iter()
        .filter(|(_, dir)| dir.join("checkpoint.json").is_file())
        .max_by_key(|(attempt, _)| *attempt)
        .map(|(_, dir)| dir)
}

/// Save the whole model after an epoch: weights first, then `checkpoint.json`, each
/// atomically, so a checkpoint whose JSON exists always has complete weights.
pub fn save_checkpoint(
    data_dir: &Path,
    job: Uuid,
    attempt: i64,
    model: &Classifier,
    info: &CheckpointInfo,
) -> anyhow::Result<()> {
    let dir = checkpoint_dir(data_dir, job, attempt);
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
    latest_checkpoint(data_dir, job).is_some()
}

/// The model and info of a job's last checkpoint, if it has one.
pub fn load_checkpoint(
    data_dir: &Path,
    job: Uuid,
    base: &ConvBase,
) -> anyhow::Result<Option<(Classifier, CheckpointInfo)>> {
    let Some(dir) = latest_checkpoint(data_dir, job) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(dir.join("checkpoint.json"))
        .with_context(|| format!("reading {}", dir.display()))?;
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

/// Drop a job's checkpoints (every attempt's) once the job has ended.
pub fn remove_checkpoint(data_dir: &Path, job: Uuid) {
    let dir = job_checkpoints(data_dir, job);
    if let Err(error) = std::fs::remove_dir_all(&dir) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(%error, dir = %dir.display(), "could not remove a checkpoint");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("checkpoint.json"), "{}").unwrap();
    }

    #[test]
    fn resuming_reads_the_latest_attempt_that_saved_a_checkpoint() {
        let data = tempfile::tempdir().unwrap();
        let job = Uuid::new_v4();
        assert!(!has_checkpoint(data.path(), job));
        // Checkpoints of a version before attempts: the job's folder itself.
        checkpoint(&job_checkpoints(data.path(), job));
        assert_eq!(
            latest_checkpoint(data.path(), job),
            Some(job_checkpoints(data.path(), job))
        );
        checkpoint(&checkpoint_dir(data.path(), job, 1));
        checkpoint(&checkpoint_dir(data.path(), job, 2));
        // Attempt 3 started but saved nothing yet; attempt 10 sorts after 2 as a number.
        std::fs::create_dir_all(checkpoint_dir(data.path(), job, 3)).unwrap();
        assert_eq!(
            latest_checkpoint(data.path(), job),
            Some(checkpoint_dir(data.path(), job, 2))
        );
        checkpoint(&checkpoint_dir(data.path(), job, 10));
        assert_eq!(
            latest_checkpoint(data.path(), job),
            Some(checkpoint_dir(data.path(), job, 10))
        );
        remove_checkpoint(data.path(), job);
        assert!(!has_checkpoint(data.path(), job));
    }
}

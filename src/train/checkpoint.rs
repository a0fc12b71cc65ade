//! A training job's checkpoints (`checkpoints/<job>/attempt-<n>/`): after each epoch the
//! whole model and `checkpoint.json`, and the best epoch's weights when the run will
//! restore them (`best-<epoch>.safetensors`, only the latest best kept), so a resumed job
//! continues where it was, best epoch included. Each file is written before the JSON that
//! names it, so a checkpoint whose JSON exists always has its weights.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::best::BestSoFar;
use crate::domain::EpochMetrics;
use crate::model::head::HeadConfig;
use crate::model::{Classifier, ConvBase};

/// What a training job's checkpoint records beside the model's weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The last epoch whose weights the checkpoint holds.
    pub epoch: u32,
    pub head: HeadConfig,
    /// That epoch's metrics: the checkpoint is written before the epoch is recorded, so a
    /// crash in between can still record it on resume.
    pub metrics: EpochMetrics,
    /// The best epoch so far (absent in checkpoints of versions before best epochs).
    #[serde(default)]
    pub best: Option<BestSoFar>,
    /// Its metrics, when its weights are kept beside (`best-<epoch>.safetensors`).
    #[serde(default)]
    pub best_metrics: Option<EpochMetrics>,
}

/// What a job resumes from: the last epoch's model, the checkpoint's record, and the best
/// epoch's weights when they were kept.
pub type Resumed = (Classifier, CheckpointInfo, Option<Classifier>);

fn best_file(epoch: u32) -> String {
    format!("best-{epoch}.safetensors")
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

/// Write `model`'s weights to `path` through a temporary name, so `path` is whole or absent.
fn save_weights(model: &Classifier, path: &Path) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let mut store = SafetensorsStore::from_file(&partial).overwrite(true);
    model
        .valid()
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("saving {}: {e}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}

fn load_weights(path: &Path, head: &HeadConfig, base: &ConvBase) -> anyhow::Result<Classifier> {
    let mut model = Classifier {
        base: base.net.clone(),
        head: head.init(&base.device),
    };
    let mut store = SafetensorsStore::from_file(path);
    let result = model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?;
    if !result.errors.is_empty() || !result.unused.is_empty() || !result.missing.is_empty() {
        bail!("{} does not fit the model", path.display());
    }
    model.base = model.base.into_channels_last()?;
    Ok(model.valid())
}

/// Save the whole model after an epoch, and `best` (the best epoch's weights, which
/// `info.best` names) unless this attempt's folder has them already; then
/// `checkpoint.json`; then drop the best weights of earlier bests.
pub fn save_checkpoint(
    data_dir: &Path,
    job: Uuid,
    attempt: i64,
    model: &Classifier,
    info: &CheckpointInfo,
    best: Option<&Classifier>,
) -> anyhow::Result<()> {
    let dir = checkpoint_dir(data_dir, job, attempt);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    save_weights(model, &dir.join("model.safetensors"))?;
    let kept = match (&info.best_metrics, best) {
        (Some(metrics), Some(weights)) => {
            let name = best_file(metrics.epoch as u32);
            if !dir.join(&name).is_file() {
                save_weights(weights, &dir.join(&name))?;
            }
            Some(name)
        }
        _ => None,
    };
    let tmp = tempfile::NamedTempFile::new_in(&dir)?;
    serde_json::to_writer(tmp.as_file(), info)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join("checkpoint.json"))
        .with_context(|| format!("writing {}", dir.display()))?;
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("best-") && Some(&name) != kept.as_ref() {
            std::fs::remove_file(entry.path())?;
        }
    }
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
) -> anyhow::Result<Option<Resumed>> {
    let Some(dir) = latest_checkpoint(data_dir, job) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(dir.join("checkpoint.json"))
        .with_context(|| format!("reading {}", dir.display()))?;
    let info: CheckpointInfo = serde_json::from_str(&text).context("unreadable checkpoint.json")?;
    let model = load_weights(&dir.join("model.safetensors"), &info.head, base)?;
    let best = match &info.best_metrics {
        Some(metrics) => Some(load_weights(
            &dir.join(best_file(metrics.epoch as u32)),
            &info.head,
            base,
        )?),
        None => None,
    };
    Ok(Some((model, info, best)))
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

//! Trained models on disk: `models/<id>/model.safetensors` (the head, plus the conv base
//! when it was fine-tuned) and `config.json` beside it, burn-style, written atomically.
//! A model's weights are checked against their recorded SHA-256 whenever they are loaded.
//! Imported models (`Portable::save`) are written in the same layout.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::head::HeadConfig;
use super::{Classifier, ConvBase, Preprocessing};
use crate::domain::ModelRecord;

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

/// The folder of a model's files (weights and config), relative to the data dir.
pub fn model_folder(id: Uuid) -> String {
    format!("models/{id}")
}

/// Where a model's weights live, relative to the data dir.
pub fn model_artifact(id: Uuid) -> PathBuf {
    PathBuf::from(model_folder(id)).join("model.safetensors")
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
    write_config(dir, config)?;
    let sha = file_sha256(&path)?;
    Ok((relative.to_string_lossy().into_owned(), sha))
}

/// Write `config.json` into a model's folder, atomically.
pub(crate) fn write_config(dir: &Path, config: &ModelConfig) -> anyhow::Result<()> {
    let config_path = dir.join("config.json");
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(tmp.as_file(), config)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&config_path)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(())
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

/// Load a registered model: its config from the record, its weights from its artifact.
pub fn load_record(
    data_dir: &Path,
    record: &ModelRecord,
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

//! What a portable model file says about itself: the metadata written on export, and the
//! model config read back from it on import, every value checked and named when it is wrong,
//! and what the file must be (`FORMAT`) and why one is refused (`ImportError`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::ModelRecord;
use crate::model::head::{output_units, HeadConfig};
use crate::model::layers::{output_side, OUT_CHANNELS};
use crate::model::saved::ModelConfig;
use crate::model::Preprocessing;

/// The `format` metadata value that marks a vggserve model file.
pub const FORMAT: &str = "vggserve.model";
pub const FORMAT_VERSION: &str = "1";

/// Why a file is not a vggserve model this server can take.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The reader's own words ("not a safetensors file: …").
    #[error("{0}")]
    NotSafetensors(String),
    #[error("metadata {key}: {message}")]
    Metadata { key: &'static str, message: String },
    #[error("tensor {0} is missing")]
    Missing(String),
    #[error("tensor {0} does not belong in a vggserve model")]
    Unexpected(String),
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor {0} holds NaN or infinite values")]
    NotFinite(String),
}

/// What a model file says about itself.
pub(super) fn metadata(record: &ModelRecord, config: &ModelConfig) -> BTreeMap<String, String> {
    let json = |v: &Value| v.to_string();
    let size = config.image_size;
    let output = if config.head.units() == 1 {
        "sigmoid"
    } else {
        "softmax"
    };
    BTreeMap::from([
        ("format".into(), FORMAT.into()),
        ("format_version".into(), FORMAT_VERSION.into()),
        (
            "producer".into(),
            format!("vggserve {}", env!("CARGO_PKG_VERSION")),
        ),
        ("model_id".into(), record.id.to_string()),
        ("classes".into(), json(&serde_json::json!(config.classes))),
        ("output".into(), output.into()),
        ("image_size".into(), size.to_string()),
        (
            "input".into(),
            format!("float32 NCHW [N, 3, {size}, {size}], RGB, preprocessed"),
        ),
        ("preprocessing".into(), config.preprocessing.to_string()),
        // `outputs` resolved: files saved before multi-class models may lack it.
        (
            "head".into(),
            json(&serde_json::json!(config
                .head
                .clone()
                .with_outputs(Some(config.head.units())))),
        ),
        ("recipe".into(), config.recipe.clone()),
        ("dataset".into(), record.dataset.clone()),
        ("params".into(), json(&record.params)),
        ("metrics".into(), json(&record.metrics)),
        (
            "test_metrics".into(),
            json(&serde_json::json!(record.test_metrics)),
        ),
        ("source_job".into(), record.source_job.to_string()),
        ("created_at".into(), record.created_at.clone()),
        ("weights_sha256".into(), config.weights_sha256.clone()),
    ])
}

/// The model config a file's metadata describes (`includes_base` is the importer's call).
pub(super) fn config_from(metadata: &BTreeMap<String, String>) -> Result<ModelConfig, ImportError> {
    let get = |key: &'static str| {
        metadata.get(key).ok_or(ImportError::Metadata {
            key,
            message: "missing (is this a vggserve model export?)".into(),
        })
    };
    let bad = |key: &'static str, message: String| ImportError::Metadata { key, message };
    if get("format")? != FORMAT {
        return Err(bad("format", format!("expected {FORMAT:?}")));
    }
    let version = get("format_version")?;
    if version != FORMAT_VERSION {
        return Err(bad(
            "format_version",
            format!("{version:?} is not supported (this server reads {FORMAT_VERSION:?})"),
        ));
    }
    let classes: Vec<String> = serde_json::from_str(get("classes")?)
        .map_err(|e| bad("classes", format!("not a JSON array of names: {e}")))?;
    let distinct: std::collections::BTreeSet<&String> = classes.iter().collect();
    if classes.len() < 2 || distinct.len() != classes.len() || classes.iter().any(String::is_empty)
    {
        return Err(bad(
            "classes",
            "needs two or more distinct, non-empty names".into(),
        ));
    }
    let image_size: u32 = get("image_size")?
        .parse()
        .ok()
        .filter(|s| (32..=1024).contains(s))
        .ok_or_else(|| {
            bad(
                "image_size",
                "must be a whole number from 32 to 1024".into(),
            )
        })?;
    let preprocessing: Preprocessing = get("preprocessing")?
        .parse()
        .map_err(|_| bad("preprocessing", "must be rgb01, caffe or torch".into()))?;
    let head: HeadConfig = serde_json::from_str(get("head")?)
        .map_err(|e| bad("head", format!("not a head description: {e}")))?;
    let side = output_side(image_size as usize);
    if head.input != OUT_CHANNELS * side * side {
        return Err(bad(
            "head",
            format!(
                "input {} does not fit image_size {image_size} (expected {})",
                head.input,
                OUT_CHANNELS * side * side
            ),
        ));
    }
    if !(0.0..1.0).contains(&head.dropout) {
        return Err(bad(
            "head",
            format!("dropout {} is not in [0, 1)", head.dropout),
        ));
    }
    if head.units() != output_units(classes.len()) || head.hidden == 0 {
        return Err(bad(
            "head",
            format!(
                "{} output units for {} classes",
                head.units(),
                classes.len()
            ),
        ));
    }
    let recipe = get("recipe")?.clone();
    Ok(ModelConfig {
        recipe,
        head,
        classes,
        image_size,
        preprocessing,
        weights_sha256: metadata.get("weights_sha256").cloned().unwrap_or_default(),
        includes_base: true,
    })
}

//! The portable model file: a trained model as one safetensors file that other tools read.
//! The conv base is in torchvision's names and layout (`features.{i}.weight`, OIHW), the
//! head in PyTorch's `nn.Linear` layout (`head.1` and `head.4`, weights [out, in]), and the
//! metadata says what a user needs to run it: class names, output, input size,
//! preprocessing, recipe and metrics. `GET /v1/models/{id}/export` serves it (and builds
//! the ONNX graph from it); `POST /v1/models` takes it back, refusing any file that does
//! not fit, tensor by tensor. See docs/EXPORT.md.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use uuid::Uuid;

mod metadata;

use self::metadata::{config_from, metadata};
pub use self::metadata::{ImportError, FORMAT, FORMAT_VERSION};
use super::head::HeadConfig;
use super::layers::convs;
use super::saved::{file_sha256, model_artifact, write_config, ModelConfig};
use super::weights::WeightSet;
use crate::domain::ModelRecord;
use crate::tensor_io::{
    parse_f32_safetensors, read_f32_safetensors, write_f32_safetensors, RawTensor,
};

/// The head's two linear layers, named as in `nn.Sequential(Flatten, Linear, ReLU,
/// Dropout, Linear)`.
pub const HIDDEN: &str = "head.1";
pub const OUTPUT: &str = "head.4";

/// A model in the portable layout.
#[derive(Debug, Clone)]
pub struct Portable {
    /// Every tensor, by its name in the file.
    pub tensors: BTreeMap<String, RawTensor>,
    pub config: ModelConfig,
    /// The file's string metadata.
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("model {model} was trained on base weights {trained}…, but this server runs {server}…: export it where it was trained")]
    OtherBase {
        model: uuid::Uuid,
        trained: String,
        server: String,
    },
    #[error(transparent)]
    Read(#[from] anyhow::Error),
}

impl Portable {
    /// A registered model's files as a portable model: the head from its artifact, the
    /// base from the artifact too when it was fine-tuned, else from the server's weights
    /// (which must be the ones it was trained on).
    pub fn from_saved(
        record: &ModelRecord,
        config: &ModelConfig,
        model_file: &Path,
        base: Option<&WeightSet>,
    ) -> Result<Self, ExportError> {
        let (saved, _) = read_f32_safetensors(model_file)?;
        let take = |name: &str| -> anyhow::Result<&RawTensor> {
            saved
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("{} lacks {name}", model_file.display()))
        };
        let mut tensors = BTreeMap::new();
        if config.includes_base {
            for (k, conv) in convs().enumerate() {
                for part in ["weight", "bias"] {
                    let tensor = take(&format!("base.convs.{k}.{part}"))?.clone();
                    tensors.insert(format!("features.{}.{part}", conv.torch_index), tensor);
                }
            }
        } else {
            let base = base.context("the server's base weights are needed for this model")?;
            if config.weights_sha256 != base.sha256 {
                return Err(ExportError::OtherBase {
                    model: record.id,
                    trained: config.weights_sha256.chars().take(12).collect(),
                    server: base.sha256.chars().take(12).collect(),
                });
            }
            for (name, tensor) in base.tensors_sorted() {
                tensors.insert(name.to_owned(), tensor.clone());
            }
        }
        // burn keeps a linear layer's weight as [in, out]; PyTorch as [out, in].
        for (burn, torch) in [("head.hidden", HIDDEN), ("head.output", OUTPUT)] {
            tensors.insert(
                format!("{torch}.weight"),
                transposed(take(&format!("{burn}.weight"))?),
            );
            tensors.insert(
                format!("{torch}.bias"),
                take(&format!("{burn}.bias"))?.clone(),
            );
        }
        Ok(Self {
            tensors,
            config: config.clone(),
            metadata: metadata(record, config),
        })
    }

    /// Write the portable file (atomically).
    pub fn write_safetensors(&self, path: &Path) -> anyhow::Result<()> {
        write_f32_safetensors(
            path,
            self.tensors
                .iter()
                .map(|(name, t)| (name.clone(), t.shape.clone(), t.data.as_slice())),
            self.metadata.clone().into_iter().collect(),
        )
    }

    /// Save as an imported model, in the layout [`save_model`](super::saved::save_model) writes (burn's names, linear
    /// weights [in, out]); the conv base only when `config.includes_base`. Returns the
    /// artifact's relative path and SHA-256.
    pub fn save(
        &self,
        data_dir: &Path,
        id: Uuid,
        config: &ModelConfig,
    ) -> anyhow::Result<(String, String)> {
        let relative = model_artifact(id);
        let path = data_dir.join(&relative);
        let dir = path.parent().context("model path has a parent")?;
        let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        if config.includes_base {
            for (k, conv) in convs().enumerate() {
                for part in ["weight", "bias"] {
                    let t = &self.tensors[&format!("features.{}.{part}", conv.torch_index)];
                    tensors.push((
                        format!("base.convs.{k}.{part}"),
                        t.shape.clone(),
                        t.data.clone(),
                    ));
                }
            }
        }
        for (layer, burn) in [(HIDDEN, "head.hidden"), (OUTPUT, "head.output")] {
            let (weight, bias) = self.linear_in_out(layer);
            tensors.push((format!("{burn}.weight"), weight.shape, weight.data));
            tensors.push((
                format!("{burn}.bias"),
                bias.shape.clone(),
                bias.data.clone(),
            ));
        }
        write_f32_safetensors(
            &path,
            tensors
                .iter()
                .map(|(n, s, d)| (n.clone(), s.clone(), d.as_slice())),
            HashMap::new(),
        )?;
        write_config(dir, config)?;
        let sha = file_sha256(&path)?;
        Ok((relative.to_string_lossy().into_owned(), sha))
    }

    /// Read and check a portable model file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ImportError> {
        let (tensors, metadata) = parse_f32_safetensors(bytes, |_| true)
            .map_err(|e| ImportError::NotSafetensors(e.to_string()))?;
        let metadata: BTreeMap<String, String> = metadata.into_iter().collect();
        let config = config_from(&metadata)?;
        let tensors: BTreeMap<String, RawTensor> = tensors.into_iter().collect();
        let expected = expected_shapes(&config.head);
        for (name, shape) in &expected {
            let tensor = tensors
                .get(name)
                .ok_or_else(|| ImportError::Missing(name.clone()))?;
            if &tensor.shape != shape {
                return Err(ImportError::Shape {
                    name: name.clone(),
                    expected: shape.clone(),
                    found: tensor.shape.clone(),
                });
            }
            if tensor.data.iter().any(|v| !v.is_finite()) {
                return Err(ImportError::NotFinite(name.clone()));
            }
        }
        if let Some(name) = tensors.keys().find(|n| !expected.contains_key(*n)) {
            return Err(ImportError::Unexpected(name.clone()));
        }
        Ok(Self {
            tensors,
            config,
            metadata,
        })
    }

    /// A linear layer (`HIDDEN` or `OUTPUT`) in burn's layout: weight [in, out], bias.
    pub fn linear_in_out(&self, layer: &str) -> (RawTensor, &RawTensor) {
        (
            transposed(&self.tensors[&format!("{layer}.weight")]),
            &self.tensors[&format!("{layer}.bias")],
        )
    }

    /// Whether the conv base is, value for value, the one in `base`.
    pub fn base_equals(&self, base: &WeightSet) -> bool {
        base.tensors_sorted().into_iter().all(|(name, tensor)| {
            self.tensors
                .get(name)
                .is_some_and(|t| t.data == tensor.data)
        })
    }

    /// The metadata value `key` parsed as JSON (`Value::Null` when absent or not JSON).
    pub fn json(&self, key: &str) -> Value {
        self.metadata
            .get(key)
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null)
    }
}

/// Every tensor a model with `head` holds, with its shape.
fn expected_shapes(head: &HeadConfig) -> BTreeMap<String, Vec<usize>> {
    let mut shapes = BTreeMap::new();
    for conv in convs() {
        let (i, cin, cout) = (conv.torch_index, conv.in_channels, conv.out_channels);
        shapes.insert(format!("features.{i}.weight"), vec![cout, cin, 3, 3]);
        shapes.insert(format!("features.{i}.bias"), vec![cout]);
    }
    shapes.insert(format!("{HIDDEN}.weight"), vec![head.hidden, head.input]);
    shapes.insert(format!("{HIDDEN}.bias"), vec![head.hidden]);
    shapes.insert(format!("{OUTPUT}.weight"), vec![head.units(), head.hidden]);
    shapes.insert(format!("{OUTPUT}.bias"), vec![head.units()]);
    shapes
}

/// A row-major matrix transposed.
fn transposed(t: &RawTensor) -> RawTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut data = vec![0.0; t.data.len()];
    for r in 0..rows {
        for c in 0..cols {
            data[c * rows + r] = t.data[r * cols + c];
        }
    }
    RawTensor {
        shape: vec![cols, rows],
        data,
    }
}

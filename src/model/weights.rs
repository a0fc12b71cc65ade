//! Loading pretrained conv-base weights from the three formats users have, into one
//! validated [`WeightSet`]: safetensors (torchvision names), torchvision's `.pth` checkpoint,
//! and Keras's `notop.h5`. Every failure names the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use sha2::{Digest, Sha256};

use super::layers::convs;
use super::preprocess::Preprocessing;
use crate::tensor_io::{f32s_from_le_bytes, parse_f32_safetensors, RawTensor, SafetensorsError};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("weights file {0} not found (set VGGSERVE_WEIGHTS or --weights, or run `vggserve weights fetch`)")]
    NotFound(PathBuf),
    #[error("cannot read weights file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("weights file {path} is not a valid {format} file: {message}")]
    Format {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("weights file {path}: unknown extension (expected .safetensors, .pth/.pt or .h5)")]
    UnknownFormat { path: PathBuf },
    #[error("weights file {path} lacks tensor {name}")]
    MissingTensor { path: PathBuf, name: String },
    #[error("weights file {path}: tensor {name} has shape {found:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("weights file {path}: tensor {name} has dtype {found}, expected f32")]
    Dtype {
        path: PathBuf,
        name: String,
        found: String,
    },
    #[error("weights file {path}: unknown preprocessing in metadata: {message}")]
    Preprocessing { path: PathBuf, message: String },
}

/// The on-disk format a weight file was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    Safetensors,
    Pytorch,
    KerasH5,
}

impl WeightsFormat {
    fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "safetensors" => Some(Self::Safetensors),
            "pth" | "pt" => Some(Self::Pytorch),
            "h5" | "hdf5" => Some(Self::KerasH5),
            _ => None,
        }
    }

    /// What a file of this format expects when its metadata does not say.
    fn default_preprocessing(self) -> Preprocessing {
        match self {
            Self::Safetensors | Self::Pytorch => Preprocessing::Torch,
            Self::KerasH5 => Preprocessing::Caffe,
        }
    }
}

/// The 26 conv-base tensors in torchvision's names and layout (OIHW), validated.
#[derive(Debug, Clone)]
pub struct WeightSet {
    tensors: HashMap<String, RawTensor>,
    pub preprocessing: Preprocessing,
    /// SHA-256 of the file's bytes: identifies the weights in caches and model records.
    pub sha256: String,
    pub path: PathBuf,
    pub format: WeightsFormat,
}

impl WeightSet {
    /// Read and validate a weights file. `preprocessing` overrides what the file says.
    pub fn load(path: &Path, preprocessing: Option<Preprocessing>) -> Result<Self, WeightsError> {
        let format = WeightsFormat::of(path).ok_or_else(|| WeightsError::UnknownFormat {
            path: path.to_owned(),
        })?;
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => WeightsError::NotFound(path.to_owned()),
            _ => WeightsError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let (tensors, declared) = match format {
            WeightsFormat::Safetensors => read_safetensors(path, &bytes)?,
            WeightsFormat::Pytorch => (read_pytorch(path)?, None),
            WeightsFormat::KerasH5 => (read_keras_h5(path)?, Some(Preprocessing::Caffe)),
        };
        let set = Self {
            tensors,
            preprocessing: preprocessing
                .or(declared)
                .unwrap_or(format.default_preprocessing()),
            sha256,
            path: path.to_owned(),
            format,
        };
        set.validate()?;
        Ok(set)
    }

    fn validate(&self) -> Result<(), WeightsError> {
        for conv in convs() {
            let (index, cin, cout) = (conv.torch_index, conv.in_channels, conv.out_channels);
            self.expect(&format!("features.{index}.weight"), &[cout, cin, 3, 3])?;
            self.expect(&format!("features.{index}.bias"), &[cout])?;
        }
        Ok(())
    }

    fn expect(&self, name: &str, shape: &[usize]) -> Result<&RawTensor, WeightsError> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| WeightsError::MissingTensor {
                path: self.path.clone(),
                name: name.to_owned(),
            })?;
        if tensor.shape != shape {
            return Err(WeightsError::Shape {
                path: self.path.clone(),
                name: name.to_owned(),
                expected: shape.to_vec(),
                found: tensor.shape.clone(),
            });
        }
        Ok(tensor)
    }

    /// The conv kernel as logical OIHW laid out physically as OHWI ("channels last"), so
    /// that LibTorch picks its NHWC convolution kernels, which are faster on CPU and GPU.
    pub fn conv_weight_channels_last(
        &self,
        torch_index: usize,
        cin: usize,
        cout: usize,
        device: &Device,
    ) -> Result<Tensor<4>, WeightsError> {
        let raw = self.expect(
            &format!("features.{torch_index}.weight"),
            &[cout, cin, 3, 3],
        )?;
        Ok(kernel_channels_last(&raw.data, cout, cin, device))
    }

    pub fn conv_bias(
        &self,
        torch_index: usize,
        cout: usize,
        device: &Device,
    ) -> Result<Tensor<1>, WeightsError> {
        let raw = self.expect(&format!("features.{torch_index}.bias"), &[cout])?;
        Ok(Tensor::<1>::from_data(
            TensorData::new(raw.data.clone(), [cout]),
            device,
        ))
    }

    /// The tensors in torchvision names, sorted, for writing a converted file.
    pub fn tensors_sorted(&self) -> Vec<(&str, &RawTensor)> {
        let mut all: Vec<_> = self
            .tensors
            .iter()
            .map(|(name, t)| (name.as_str(), t))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }
}

/// 3×3 kernels given OIHW (row-major) → logical OIHW laid out physically as OHWI
/// ("channels last"), so that LibTorch picks its NHWC convolution kernels.
pub fn kernel_channels_last(oihw: &[f32], cout: usize, cin: usize, device: &Device) -> Tensor<4> {
    let mut ohwi = vec![0f32; oihw.len()];
    for o in 0..cout {
        for i in 0..cin {
            for k in 0..9 {
                ohwi[(o * 9 + k) * cin + i] = oihw[(o * cin + i) * 9 + k];
            }
        }
    }
    let t = Tensor::<4>::from_data(TensorData::new(ohwi, [cout, 3, 3, cin]), device);
    // [O, H, W, I] → [O, I, H, W] as a strided view: no copy, channels-last strides.
    t.permute([0, 3, 1, 2])
}

type Read = (HashMap<String, RawTensor>, Option<Preprocessing>);

fn read_safetensors(path: &Path, bytes: &[u8]) -> Result<Read, WeightsError> {
    let (tensors, metadata) = parse_f32_safetensors(bytes, |name| name.starts_with("features."))
        .map_err(|e| match e {
            SafetensorsError::Dtype { name, found } => WeightsError::Dtype {
                path: path.to_owned(),
                name,
                found,
            },
            SafetensorsError::Format(e) => WeightsError::Format {
                path: path.to_owned(),
                format: "safetensors",
                message: e.to_string(),
            },
        })?;
    let declared = declared_preprocessing(path, &metadata)?;
    Ok((tensors, declared))
}

/// `preprocessing` in the metadata wins; otherwise an `input` note saying "[0,1]" (the
/// stand-in's) means RGB/255.
fn declared_preprocessing(
    path: &Path,
    metadata: &HashMap<String, String>,
) -> Result<Option<Preprocessing>, WeightsError> {
    if let Some(value) = metadata.get("preprocessing") {
        return value
            .parse()
            .map(Some)
            .map_err(|_| WeightsError::Preprocessing {
                path: path.to_owned(),
                message: format!("{value:?} (expected rgb01, caffe or torch)"),
            });
    }
    Ok(metadata
        .get("input")
        .filter(|note| note.contains("[0,1]"))
        .map(|_| Preprocessing::Rgb01))
}

fn read_pytorch(path: &Path) -> Result<HashMap<String, RawTensor>, WeightsError> {
    use burn::store::pytorch_reader::{DType, PytorchReader};
    let format_error = |message: String| WeightsError::Format {
        path: path.to_owned(),
        format: "PyTorch checkpoint",
        message,
    };
    // From the path: `from_reader` takes a bare pickle, not the zip checkpoint torch.save writes.
    let reader = PytorchReader::new(path).map_err(|e| format_error(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, tensor) in reader.into_tensors() {
        // A full torchvision state dict also holds `classifier.*`: only the base is ours.
        if !name.starts_with("features.") {
            continue;
        }
        if tensor.dtype() != DType::F32 {
            return Err(WeightsError::Dtype {
                path: path.to_owned(),
                name,
                found: format!("{:?}", tensor.dtype()),
            });
        }
        let shape = tensor.shape().to_vec();
        let raw = tensor
            .read()
            .map_err(|e| format_error(format!("tensor {name}: {e}")))?;
        let data = f32s_from_le_bytes(&raw);
        tensors.insert(name, RawTensor { shape, data });
    }
    Ok(tensors)
}

fn read_keras_h5(path: &Path) -> Result<HashMap<String, RawTensor>, WeightsError> {
    let tensors =
        super::keras_h5::read_keras_vgg16_notop(path).map_err(|e| WeightsError::Format {
            path: path.to_owned(),
            format: "Keras HDF5",
            message: e.to_string(),
        })?;
    Ok(tensors
        .into_iter()
        .map(|(name, shape, data)| (name, RawTensor { shape, data }))
        .collect())
}

/// Write the base's weights as safetensors in torchvision names, with the preprocessing
/// recorded in the metadata (used by `weights fetch` and conversions). Atomic.
pub fn write_safetensors(
    set: &WeightSet,
    out: &Path,
    extra_metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let mut metadata = extra_metadata;
    metadata.insert("preprocessing".into(), set.preprocessing.to_string());
    metadata.insert("layout".into(), "torchvision".into());
    metadata.insert("include_top".into(), "false".into());
    crate::tensor_io::write_f32_safetensors(
        out,
        set.tensors_sorted()
            .into_iter()
            .map(|(name, t)| (name.to_owned(), t.shape.clone(), t.data.as_slice())),
        metadata,
    )
}

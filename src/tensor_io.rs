//! Reading and writing plain f32 tensors as safetensors files, atomically.
//!
//! Used for weights conversions, `vggserve features` output and cached features: all are
//! "named f32 arrays plus string metadata", and all must never be seen half-written.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

/// A plain f32 tensor read from a file, row-major.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Named tensors and the file's string metadata.
pub type Tensors = (HashMap<String, RawTensor>, HashMap<String, String>);

/// Why bytes could not be read as f32 safetensors.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    #[error("not a safetensors file: {0}")]
    Format(#[from] safetensors::SafeTensorError),
    #[error("tensor {name} is {found}, expected F32")]
    Dtype { name: String, found: String },
}

/// Write `(name, shape, data)` tensors to `path` via a temp file and rename.
pub fn write_f32_safetensors<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (String, Vec<usize>, &'a [f32])>,
    metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, data)| {
            let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, bytes)
        })
        .collect();
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .with_context(|| format!("tensor {name}"))?;
            Ok((name.as_str(), view))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // safetensors writes a sibling temp file and renames it over `path`.
    safetensors::serialize_to_file(views, Some(metadata), path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Read every f32 tensor of a safetensors file, with its metadata.
pub fn read_f32_safetensors(path: &Path) -> anyhow::Result<Tensors> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_f32_safetensors(&bytes, |_| true).with_context(|| path.display().to_string())
}

/// The f32 tensors of safetensors bytes whose names `keep` accepts, with the metadata.
pub fn parse_f32_safetensors(
    bytes: &[u8],
    keep: impl Fn(&str) -> bool,
) -> Result<Tensors, SafetensorsError> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)?;
    let file = safetensors::SafeTensors::deserialize(bytes)?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        if !keep(&name) {
            continue;
        }
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(SafetensorsError::Dtype {
                name,
                found: format!("{:?}", view.dtype()),
            });
        }
        let tensor = RawTensor {
            shape: view.shape().to_vec(),
            data: f32s_from_le_bytes(view.data()),
        };
        tensors.insert(name, tensor);
    }
    Ok((tensors, metadata.metadata().clone().unwrap_or_default()))
}

/// Little-endian f32 bytes (safetensors, PyTorch storages, cache entries) to values.
pub fn f32s_from_le_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Copy a tensor's values to the host as f32, row-major in its logical shape.
pub fn tensor_to_vec<const D: usize>(tensor: burn::prelude::Tensor<D>) -> anyhow::Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading tensor: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_tensors_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let data = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0];
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        write_f32_safetensors(&path, [("x".to_string(), vec![2, 3], &data[..])], meta).unwrap();
        let (tensors, meta) = read_f32_safetensors(&path).unwrap();
        assert_eq!(tensors["x"].shape, vec![2, 3]);
        assert_eq!(tensors["x"].data, data);
        assert_eq!(meta["k"], "v");
    }
}

//! Reading Keras's VGG16 "notop" weights (`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`)
//! with the pure-Rust `hdf5-pure` crate (no C libhdf5), returning the 26 conv-base tensors
//! in torchvision's names (`features.{0,2,5,...,28}.{weight,bias}`) and layout.
//!
//! This module owns only the HDF5 side: finding the 13 conv layers in the layout Keras's
//! `save_weights` writes, checking each tensor's dtype and shape, and the HWIO -> OIHW
//! transpose. It knows nothing of burn: it hands back plain `Vec<f32>` that the caller
//! (`weights.rs`) wraps.
//!
//! Layout read (Keras 1 and 2 `save_weights_to_hdf5_group`, h5py 2 or 3):
//! * root attribute `layer_names` (fixed- or variable-length strings, possibly split by
//!   Keras into `layer_names0`, `layer_names1`, ... when large); a whole-model file's
//!   `/model_weights` group is used when the root has no `layer_names` but it does;
//! * one group per layer with attribute `weight_names`, whose entries are dataset paths
//!   relative to the layer group (`block1_conv1_W_1:0`, or `block1_conv1/kernel:0`, which
//!   h5py nests one group deeper). Keras orders them kernel, bias;
//! * kernels float32 HWIO `[3, 3, in, out]`, biases float32 `[out]`.
//!
//! Without `layer_names` the conv layers are looked up as groups by name; without
//! `weight_names` (or when a listed name does not resolve) the layer group is walked and
//! its one rank-4 dataset taken as the kernel and its one rank-1 dataset as the bias.
//! Other layers (input, pooling, a top's dense layers) are ignored.
//!
//! **Channel order:** the kernels are returned as stored, only transposed. Keras's VGG16
//! weights expect BGR input in 0..255 with the caffe means `[103.939, 116.779, 123.68]`
//! (BGR order) subtracted; `features.0.weight`'s input channels are therefore B, G, R. This
//! module does not flip them: the caller must record `preprocessing = "caffe"` for these
//! weights so that preprocessing swaps RGB to BGR.
//!
//! Every error names the tensor (torchvision name and HDF5 path) or the layer it concerns;
//! malformed input gives an error, never a panic.

use std::path::Path;

use hdf5_pure::{AttrValue, DType, Error as H5Error, File, FormatError, Group};

use super::layers::convs;

/// One tensor as returned: torchvision name, shape, row-major data.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

#[derive(Debug, thiserror::Error)]
pub enum KerasH5Error {
    /// The file cannot be opened or is not HDF5 the reader understands.
    #[error("cannot open as HDF5: {0}")]
    Open(String),
    /// The file's structure cannot be read (truncated or corrupt metadata).
    #[error("cannot read {object}: {message}")]
    Format { object: String, message: String },
    /// A root or layer attribute exists but is not what Keras writes.
    #[error("attribute {attr} of {object}: {message}")]
    Attribute {
        object: String,
        attr: String,
        message: String,
    },
    /// A conv layer is absent (from `layer_names` or as a group).
    #[error("layer {layer} (for {tensor}) not found: {message}")]
    MissingLayer {
        layer: String,
        tensor: String,
        message: String,
    },
    /// A conv layer's kernel or bias cannot be found.
    #[error("tensor {tensor} not found in layer group {layer}: {message}")]
    MissingTensor {
        tensor: String,
        layer: String,
        message: String,
    },
    #[error("tensor {tensor} ({hdf5_path}) has shape {found:?}, expected {expected:?}")]
    Shape {
        tensor: String,
        hdf5_path: String,
        expected: Vec<usize>,
        found: Vec<u64>,
    },
    #[error("tensor {tensor} ({hdf5_path}) has dtype {found}, expected f32")]
    Dtype {
        tensor: String,
        hdf5_path: String,
        found: String,
    },
    /// Metadata were fine but the data could not be read.
    #[error("tensor {tensor} ({hdf5_path}): cannot read data: {message}")]
    Read {
        tensor: String,
        hdf5_path: String,
        message: String,
    },
}

/// Read the 13 conv layers of a Keras VGG16 weights file (notop, or a full one whose top is
/// ignored) as 26 tensors named and laid out as torchvision's `vgg16().features`:
/// `features.N.weight` OIHW `[out, in, 3, 3]` and `features.N.bias` `[out]`, in network
/// order (weight before bias).
///
/// The kernels are transposed from Keras's HWIO but keep Keras's input channel order,
/// which is **BGR** for `features.0.weight`: use these weights with caffe preprocessing
/// (RGB -> BGR, 0..255, minus the BGR means), as the module doc explains.
pub fn read_keras_vgg16_notop(path: &Path) -> Result<Vec<NamedTensor>, KerasH5Error> {
    let file =
        File::open(path).map_err(|e| KerasH5Error::Open(format!("{}: {e}", path.display())))?;
    read_file(&file)
}

/// [`read_keras_vgg16_notop`] on a file already in memory.
///
/// For a caller that already holds the bytes (to hash them, say), this saves reading the
/// file twice.
pub fn read_keras_vgg16_notop_from_bytes(bytes: Vec<u8>) -> Result<Vec<NamedTensor>, KerasH5Error> {
    let file = File::from_bytes(bytes).map_err(|e| KerasH5Error::Open(e.to_string()))?;
    read_file(&file)
}

fn read_file(file: &File) -> Result<Vec<NamedTensor>, KerasH5Error> {
    let (base, base_path, layer_names) = weights_root(file)?;
    let mut out = Vec::with_capacity(26);
    for conv in convs() {
        let (layer, index) = (conv.name, conv.torch_index);
        let (cin, cout) = (conv.in_channels, conv.out_channels);
        let weight_name = format!("features.{index}.weight");
        if let Some(names) = &layer_names {
            if !names.iter().any(|n| n == layer) {
                return Err(KerasH5Error::MissingLayer {
                    layer: layer.to_owned(),
                    tensor: weight_name,
                    message: format!(
                        "not in attribute layer_names of {base_path} ({})",
                        names.join(", ")
                    ),
                });
            }
        }
        let layer_path = join(&base_path, layer);
        let group = base.group(layer).map_err(|e| match e {
            H5Error::Format(FormatError::PathNotFound(_)) | H5Error::NotAGroup(_) => {
                KerasH5Error::MissingLayer {
                    layer: layer.to_owned(),
                    tensor: weight_name.clone(),
                    message: format!("no group {layer_path}: {e}"),
                }
            }
            other => KerasH5Error::Format {
                object: format!("layer group {layer_path} (for {weight_name})"),
                message: other.to_string(),
            },
        })?;
        let (kernel_path, bias_path) =
            find_kernel_and_bias(file, &group, &layer_path, &weight_name)?;

        let kernel = read_f32(file, &kernel_path, &weight_name, &[3, 3, cin, cout])?;
        out.push((
            weight_name,
            vec![cout, cin, 3, 3],
            hwio_to_oihw(&kernel, 3, 3, cin, cout),
        ));
        let bias_name = format!("features.{index}.bias");
        let bias = read_f32(file, &bias_path, &bias_name, &[cout])?;
        out.push((bias_name, vec![cout], bias));
    }
    Ok(out)
}

/// The group holding the per-layer groups, its path, and its `layer_names` if it has them.
fn weights_root(file: &File) -> Result<(Group, String, Option<Vec<String>>), KerasH5Error> {
    let root = file.root();
    if let Some(names) = string_list_attr(&root, "/", "layer_names")? {
        return Ok((root, "/".to_owned(), Some(names)));
    }
    // A whole model saved with `model.save("x.h5")` keeps the weights under /model_weights.
    if let Ok(group) = file.group("/model_weights") {
        if let Some(names) = string_list_attr(&group, "/model_weights", "layer_names")? {
            return Ok((group, "/model_weights".to_owned(), Some(names)));
        }
    }
    Ok((root, "/".to_owned(), None))
}

/// HDF5 paths of a conv layer's kernel and bias.
fn find_kernel_and_bias(
    file: &File,
    group: &Group,
    layer_path: &str,
    tensor: &str,
) -> Result<(String, String), KerasH5Error> {
    if let Some(names) = string_list_attr(group, layer_path, "weight_names")? {
        if names.len() != 2 {
            return Err(KerasH5Error::MissingTensor {
                tensor: tensor.to_owned(),
                layer: layer_path.to_owned(),
                message: format!(
                    "attribute weight_names lists {} weights, expected kernel and bias: {names:?}",
                    names.len()
                ),
            });
        }
        let kernel = join(layer_path, &names[0]);
        let bias = join(layer_path, &names[1]);
        if file.dataset(&kernel).is_ok() && file.dataset(&bias).is_ok() {
            return Ok((kernel, bias));
        }
        // Listed names that do not resolve: fall through to walking the group.
    }
    walk_for_kernel_and_bias(group, layer_path, tensor)
}

/// Fallback: the one rank-4 dataset (kernel) and the one rank-1 dataset (bias) found in the
/// layer group or its subgroups (two levels deep is all Keras uses; four is allowed).
fn walk_for_kernel_and_bias(
    group: &Group,
    layer_path: &str,
    tensor: &str,
) -> Result<(String, String), KerasH5Error> {
    let mut found: Vec<(String, usize)> = Vec::new();
    collect_datasets(group, layer_path, 0, &mut found).map_err(|message| {
        KerasH5Error::MissingTensor {
            tensor: tensor.to_owned(),
            layer: layer_path.to_owned(),
            message,
        }
    })?;
    let of_rank = |rank: usize| -> Vec<&String> {
        found
            .iter()
            .filter(|(_, r)| *r == rank)
            .map(|(p, _)| p)
            .collect()
    };
    let (kernels, biases) = (of_rank(4), of_rank(1));
    match (kernels.as_slice(), biases.as_slice()) {
        ([kernel], [bias]) => Ok(((*kernel).clone(), (*bias).clone())),
        _ => {
            Err(KerasH5Error::MissingTensor {
                tensor: tensor.to_owned(),
                layer: layer_path.to_owned(),
                message: format!(
                "no usable weight_names attribute, and the group does not hold exactly one rank-4 \
                 (kernel) and one rank-1 (bias) dataset; it holds {:?}",
                found.iter().map(|(p, r)| format!("{p} (rank {r})")).collect::<Vec<_>>()
            ),
            })
        }
    }
}

fn collect_datasets(
    group: &Group,
    path: &str,
    depth: usize,
    found: &mut Vec<(String, usize)>,
) -> Result<(), String> {
    if depth > 4 {
        return Ok(());
    }
    let datasets = group
        .iter_datasets()
        .map_err(|e| format!("cannot list {path}: {e}"))?;
    for (name, dataset) in datasets {
        let child = join(path, &name);
        let rank = dataset
            .shape()
            .map_err(|e| format!("cannot read the shape of {child}: {e}"))?
            .len();
        found.push((child, rank));
    }
    let groups = group
        .iter_groups()
        .map_err(|e| format!("cannot list {path}: {e}"))?;
    for (name, sub) in groups {
        collect_datasets(&sub, &join(path, &name), depth + 1, found)?;
    }
    Ok(())
}

/// Read a float32 dataset of exactly `expected` shape.
fn read_f32(
    file: &File,
    hdf5_path: &str,
    tensor: &str,
    expected: &[usize],
) -> Result<Vec<f32>, KerasH5Error> {
    let read_err = |message: String| KerasH5Error::Read {
        tensor: tensor.to_owned(),
        hdf5_path: hdf5_path.to_owned(),
        message,
    };
    let dataset = file
        .dataset(hdf5_path)
        .map_err(|e| read_err(e.to_string()))?;
    let dtype = dataset
        .dtype()
        .map_err(|e| read_err(format!("datatype: {e}")))?;
    if dtype != DType::F32 {
        return Err(KerasH5Error::Dtype {
            tensor: tensor.to_owned(),
            hdf5_path: hdf5_path.to_owned(),
            found: dtype.to_string(),
        });
    }
    let shape = dataset
        .shape()
        .map_err(|e| read_err(format!("dataspace: {e}")))?;
    if shape.len() != expected.len() || shape.iter().zip(expected).any(|(&s, &e)| s != e as u64) {
        return Err(KerasH5Error::Shape {
            tensor: tensor.to_owned(),
            hdf5_path: hdf5_path.to_owned(),
            expected: expected.to_vec(),
            found: shape,
        });
    }
    let data = dataset.read_f32().map_err(|e| read_err(e.to_string()))?;
    let len: usize = expected.iter().product();
    if data.len() != len {
        return Err(read_err(format!(
            "got {} values, expected {len}",
            data.len()
        )));
    }
    Ok(data)
}

/// `out[o][i][h][w] = in[h][w][i][o]`; `src.len()` must be `kh * kw * cin * cout`.
fn hwio_to_oihw(src: &[f32], kh: usize, kw: usize, cin: usize, cout: usize) -> Vec<f32> {
    let mut dst = vec![0.0f32; src.len()];
    for h in 0..kh {
        for w in 0..kw {
            for i in 0..cin {
                let row = ((h * kw + w) * cin + i) * cout;
                for (o, &v) in src[row..row + cout].iter().enumerate() {
                    dst[((o * cin + i) * kh + h) * kw + w] = v;
                }
            }
        }
    }
    dst
}

/// A list-of-strings attribute, joined across Keras's `name0`, `name1`, ... chunks when it
/// was split. `Ok(None)` when absent. An empty numeric array (what Keras writes for a layer
/// without weights) reads as an empty list.
fn string_list_attr(
    group: &Group,
    object: &str,
    name: &str,
) -> Result<Option<Vec<String>>, KerasH5Error> {
    let attrs = group.attrs().map_err(|e| KerasH5Error::Attribute {
        object: object.to_owned(),
        attr: name.to_owned(),
        message: format!("cannot read attributes: {e}"),
    })?;
    let as_list = |attr: &str, value: &AttrValue| -> Result<Vec<String>, KerasH5Error> {
        if let Some(strings) = value.as_strings() {
            return Ok(strings
                .iter()
                .map(|s| s.trim_end_matches('\0').to_owned())
                .collect());
        }
        if value.to_f64s().is_some_and(|v| v.is_empty()) {
            return Ok(Vec::new());
        }
        Err(KerasH5Error::Attribute {
            object: object.to_owned(),
            attr: attr.to_owned(),
            message: format!("expected a list of strings, found {value:?}"),
        })
    };
    if let Some(value) = attrs.get(name) {
        return as_list(name, value).map(Some);
    }
    let mut joined = Vec::new();
    let mut chunk = 0usize;
    while let Some(value) = attrs.get(&format!("{name}{chunk}")) {
        joined.extend(as_list(&format!("{name}{chunk}"), value)?);
        chunk += 1;
    }
    Ok((chunk > 0).then_some(joined))
}

/// `base` + `/` + `rel`, without doubling the root's slash.
fn join(base: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches('/');
    if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_definition() {
        let (kh, kw, cin, cout) = (3, 3, 2, 4);
        let src: Vec<f32> = (0..kh * kw * cin * cout).map(|x| x as f32).collect();
        let dst = hwio_to_oihw(&src, kh, kw, cin, cout);
        for o in 0..cout {
            for i in 0..cin {
                for h in 0..kh {
                    for w in 0..kw {
                        assert_eq!(
                            dst[((o * cin + i) * kh + h) * kw + w],
                            src[((h * kw + w) * cin + i) * cout + o]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b/c:0"), "/a/b/c:0");
        assert_eq!(join("/a/", "/b"), "/a/b");
    }

    #[test]
    fn not_hdf5_is_an_error() {
        let err =
            read_keras_vgg16_notop_from_bytes(b"definitely not an HDF5 file".to_vec()).unwrap_err();
        assert!(matches!(err, KerasH5Error::Open(_)), "{err}");
    }
}

//! From decoded images to input tensors, and a prefetching loader that decodes the next
//! batches on other threads while the current one runs through the network.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use burn::prelude::*;
use rayon::prelude::*;

use super::decode::{load_image, ImageSpec};
use crate::model::preprocess::Preprocessing;

/// HWC RGB images of `size × size` → [N, 3, size, size], stored channels-last (NHWC).
///
/// Images are naturally HWC, so laying the tensor out as NHWC costs nothing here, and
/// LibTorch then runs its faster channels-last convolutions.
pub fn images_to_tensor(
    images: &[Vec<u8>],
    size: usize,
    preprocessing: Preprocessing,
    device: &Device,
) -> Tensor<4> {
    let mut data = Vec::with_capacity(images.len() * size * size * 3);
    for image in images {
        preprocessing.extend_hwc(image, &mut data);
    }
    let nhwc = Tensor::<4>::from_data(TensorData::new(data, [images.len(), size, size, 3]), device);
    // [N, H, W, C] → [N, C, H, W] as a strided view.
    nhwc.permute([0, 3, 1, 2])
}

/// Preprocessed NCHW floats (e.g. a golden fixture) → the same channels-last tensor.
pub fn nchw_to_tensor(data: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
    let [n, c, h, w] = shape;
    let mut nhwc = vec![0f32; data.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    nhwc[((b * h + y) * w + x) * c + ch] = data[((b * c + ch) * h + y) * w + x];
                }
            }
        }
    }
    Tensor::<4>::from_data(TensorData::new(nhwc, [n, h, w, c]), device).permute([0, 3, 1, 2])
}

/// A file that could not be decoded, and why.
#[derive(Debug, Clone)]
pub struct BadFile {
    pub path: PathBuf,
    pub reason: String,
}

/// One decoded batch: images (HWC bytes) in file order, with the files' indices.
pub struct DecodedBatch {
    pub indices: Vec<usize>,
    pub images: Vec<Vec<u8>>,
    pub bad: Vec<BadFile>,
}

/// Decode `paths` in batches of `batch_size` on a background thread, at most `ahead`
/// batches in flight (bounded memory). Iterating yields batches in order.
pub fn prefetch(
    paths: Vec<PathBuf>,
    batch_size: usize,
    spec: ImageSpec,
    ahead: usize,
) -> impl Iterator<Item = DecodedBatch> {
    let (tx, rx) = mpsc::sync_channel(ahead.max(1));
    thread::spawn(move || {
        let total = paths.len();
        for start in (0..total).step_by(batch_size.max(1)) {
            let end = (start + batch_size).min(total);
            let decoded: Vec<(usize, Result<Vec<u8>, BadFile>)> = (start..end)
                .into_par_iter()
                .map(|i| (i, read_and_decode(&paths[i], &spec)))
                .collect();
            let mut batch = DecodedBatch {
                indices: Vec::new(),
                images: Vec::new(),
                bad: Vec::new(),
            };
            for (i, result) in decoded {
                match result {
                    Ok(image) => {
                        batch.indices.push(i);
                        batch.images.push(image);
                    }
                    Err(bad) => batch.bad.push(bad),
                }
            }
            if tx.send(batch).is_err() {
                return; // the consumer stopped (cancelled job): stop decoding.
            }
        }
    });
    rx.into_iter()
}

fn read_and_decode(path: &PathBuf, spec: &ImageSpec) -> Result<Vec<u8>, BadFile> {
    let bad = |reason: String| BadFile {
        path: path.clone(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    load_image(&bytes, spec).map_err(|e| bad(e.to_string()))
}

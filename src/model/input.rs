//! Decoded images (HWC RGB bytes) to the network's input tensors, preprocessed the way the
//! weights expect and laid out channels-last, which LibTorch's fastest convolutions want.

use burn::prelude::*;

use super::preprocess::Preprocessing;

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

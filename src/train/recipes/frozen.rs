//! The frozen layers' outputs, computed once per training image when training does not
//! augment (the fast path of fine-tuning): kept on the host, served in batches.

use burn::prelude::*;

use super::Context;
use crate::model::input::images_to_tensor;
use crate::tensor_io::tensor_to_vec;
use crate::train::fit::{check_cancel, TrainError};

/// Outputs of the frozen layers for every training image, kept on the host.
pub(super) struct FrozenOutputs {
    rows: Vec<f32>,
    /// [C, H, W] of one image's output.
    shape: [usize; 3],
}

impl FrozenOutputs {
    /// The outputs of images `indices` as one [B, C, H, W] tensor.
    pub(super) fn batch(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        let width: usize = self.shape.iter().product();
        let mut data = Vec::with_capacity(indices.len() * width);
        for &i in indices {
            data.extend_from_slice(&self.rows[i * width..(i + 1) * width]);
        }
        let [c, h, w] = self.shape;
        Tensor::<4>::from_data(TensorData::new(data, [indices.len(), c, h, w]), device)
    }
}

pub(super) fn run_frozen_once(
    ctx: &mut Context,
    frozen: &crate::model::frozen::FrozenLayers,
    images: &[Vec<u8>],
    size: usize,
    batch: usize,
) -> Result<FrozenOutputs, TrainError> {
    let mut rows = Vec::new();
    let mut shape = [0; 3];
    for (done, chunk) in images.chunks(batch).enumerate() {
        check_cancel(ctx.reporter)?;
        let x = images_to_tensor(chunk, size, ctx.base.preprocessing, &ctx.base.device);
        let y = frozen.forward(x)?;
        let [_, c, h, w] = y.dims();
        shape = [c, h, w];
        rows.extend(tensor_to_vec(y)?);
        ctx.reporter.progress(
            ((done + 1) * batch).min(images.len()) as u64,
            images.len() as u64,
            "frozen layers run once",
        );
    }
    Ok(FrozenOutputs { rows, shape })
}

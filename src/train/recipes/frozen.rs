//! The frozen layers of recipes 2 and 3: built in the server's conv precision (int8
//! calibrated on the job's training photos), and their outputs computed once where the
//! input never changes: the validation photos always, the training photos when training
//! does not augment (the fast path of fine-tuning), kept on the host, served in batches.

use burn::prelude::*;

use super::Context;
use crate::model::frozen::{spread, FrozenLayers, CALIBRATION_PHOTOS};
use crate::model::input::images_to_tensor;
use crate::model::vgg16::Vgg16;
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

/// `net`'s layers before `trainable_from`, in the server's conv precision; int8 calibrated
/// on [`CALIBRATION_PHOTOS`] of the (decoded) training photos.
pub(super) fn frozen_layers(
    ctx: &Context,
    net: &Vgg16,
    trainable_from: usize,
    train_images: &[Vec<u8>],
    size: usize,
) -> Result<FrozenLayers, TrainError> {
    let photos = spread(train_images, CALIBRATION_PHOTOS);
    let precision = ctx.base.precision;
    let preprocessing = ctx.base.preprocessing;
    Ok(FrozenLayers::new(
        net,
        precision,
        trainable_from,
        &photos,
        size,
        preprocessing,
    )?)
}

/// The frozen layers' outputs for `images` in batches of `batch`, with their labels.
pub(super) fn run_frozen_batches(
    ctx: &Context,
    frozen: &FrozenLayers,
    images: &[Vec<u8>],
    labels: &[usize],
    size: usize,
    batch: usize,
) -> Result<Vec<(Tensor<4>, Vec<usize>)>, TrainError> {
    let (preprocessing, device) = (ctx.base.preprocessing, &ctx.base.device);
    images
        .chunks(batch)
        .zip(labels.chunks(batch))
        .map(|(images, labels)| {
            let x = images_to_tensor(images, size, preprocessing, device);
            Ok((frozen.forward(x)?, labels.to_vec()))
        })
        .collect()
}

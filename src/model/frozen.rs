//! The frozen first layers of a VGG16 as a training job runs them: in the server's conv
//! precision, without autodiff, and for int8 quantised with ranges calibrated on the job's
//! own training photos (post-training static quantisation; see `model::int8`).

use burn::prelude::*;

use super::input::images_to_tensor;
use super::int8::{Calibration, Int8Vgg16};
use super::layers::{LayerKind, LAYERS};
use super::precision::Precision;
use super::preprocess::Preprocessing;
use super::vgg16::Vgg16;

/// How many photos int8 ranges are calibrated on: evenly spaced over the training split.
pub const CALIBRATION_PHOTOS: usize = 32;
/// Photos per calibration pass.
const CALIBRATION_BATCH: usize = 8;

/// Layers `0..layers` of a base, frozen.
#[derive(Debug, Clone)]
pub enum FrozenLayers {
    Float {
        net: Vgg16,
        layers: usize,
        precision: Precision,
    },
    Int8(Int8Vgg16),
}

impl FrozenLayers {
    /// `net`'s first `layers` layers in `precision`; int8 calibrated on `photos` (HWC RGB,
    /// `size × size`, preprocessed by `preprocessing`; callers pick them with [`spread`]).
    pub fn new(
        net: &Vgg16,
        precision: Precision,
        layers: usize,
        photos: &[Vec<u8>],
        size: usize,
        preprocessing: Preprocessing,
    ) -> anyhow::Result<Self> {
        let has_conv = LAYERS[..layers]
            .iter()
            .any(|l| matches!(l.kind, LayerKind::Conv { .. }));
        if precision != Precision::Int8 || !has_conv {
            let net = net.clone().with_precision(precision);
            // int8 of no conv is f32.
            let precision = match precision {
                Precision::Int8 => Precision::F32,
                other => other,
            };
            return Ok(Self::Float {
                net,
                layers,
                precision,
            });
        }
        let device = net.convs[0].weight.val().device();
        let batches = photos
            .chunks(CALIBRATION_BATCH)
            .map(|chunk| images_to_tensor(chunk, size, preprocessing, &device));
        let calibration = Calibration::measure(net, layers, preprocessing.range(), batches)?;
        Ok(Self::Int8(Int8Vgg16::build(net, calibration, layers)?))
    }

    /// [N, 3, S, S] → the output of the last frozen layer.
    pub fn forward(&self, x: Tensor<4>) -> anyhow::Result<Tensor<4>> {
        match self {
            Self::Float { net, layers, .. } => Ok(net.forward_layers(x, 0..*layers)),
            Self::Int8(int8) => int8.forward_first(x, int8.layers()),
        }
    }

    /// What these layers compute in: `f32`, `bf16`, or `int8-` and its ranges' hash.
    pub fn tag(&self) -> String {
        match self {
            Self::Float { precision, .. } => precision.to_string(),
            Self::Int8(int8) => int8.calibration.tag(),
        }
    }
}

/// At most `n` of `items`, evenly spaced (every class of a split sorted by class): how jobs
/// pick the [`CALIBRATION_PHOTOS`] of their training split.
pub fn spread<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    (0..n).map(|i| items[i * items.len() / n].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_evenly_spaced_items() {
        let items: Vec<usize> = (0..100).collect();
        assert_eq!(spread(&items, 4), vec![0, 25, 50, 75]);
        assert_eq!(spread(&items[..3], 4), vec![0, 1, 2]);
    }
}

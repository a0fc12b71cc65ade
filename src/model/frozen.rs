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
    Float { net: Vgg16, layers: usize },
    Int8(Int8Vgg16),
}

impl FrozenLayers {
    /// `net`'s first `layers` layers in `precision`; int8 calibrated on `photos` (HWC RGB,
    /// `size × size`; at most [`CALIBRATION_PHOTOS`] of them, evenly spaced, are used).
    pub fn new(
        net: &Vgg16,
        precision: Precision,
        layers: usize,
        photos: &[Vec<u8>],
        (size, preprocessing): (usize, Preprocessing),
    ) -> anyhow::Result<Self> {
        let has_conv = LAYERS[..layers]
            .iter()
            .any(|l| matches!(l.kind, LayerKind::Conv { .. }));
        if precision != Precision::Int8 || !has_conv {
            let net = net.clone().with_precision(precision);
            return Ok(Self::Float { net, layers });
        }
        let device = net.convs[0].weight.val().device();
        let sample = spread(photos, CALIBRATION_PHOTOS);
        let batches = sample
            .chunks(CALIBRATION_BATCH)
            .map(|chunk| images_to_tensor(chunk, size, preprocessing, &device));
        let calibration = Calibration::measure(net, layers, batches)?;
        Ok(Self::Int8(Int8Vgg16::build(net, calibration, layers)?))
    }

    /// [N, 3, S, S] → the output of the last frozen layer.
    pub fn forward(&self, x: Tensor<4>) -> anyhow::Result<Tensor<4>> {
        match self {
            Self::Float { net, layers } => Ok(net.forward_layers(x, 0..*layers)),
            Self::Int8(int8) => int8.forward_layers(x, int8.layers()),
        }
    }

    /// The int8 ranges, when quantised.
    pub fn calibration(&self) -> Option<&Calibration> {
        match self {
            Self::Float { .. } => None,
            Self::Int8(int8) => Some(&int8.calibration),
        }
    }
}

/// At most `n` of `items`, evenly spaced (every class of a split sorted by class).
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

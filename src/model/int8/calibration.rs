//! Post-training static calibration: the activation ranges an int8 conv base quantises
//! with, measured by running the f32 base over sample photos (a job's training split).
//!
//! Activations are quantised per tensor as unsigned integers: the input affinely over its
//! observed [min, max], each conv's ReLU output over [0, its largest value]. On CPUs without
//! VNNI the int8 kernels multiply pairs of u8 × s8 into saturating 16-bit sums, so
//! activations there use 7 bits (PyTorch's `reduce_range`), elsewhere 8. The ranges hash
//! into [`Calibration::tag`], which names int8 features in the feature cache: features
//! quantised with other ranges are other features.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::layers::{LayerKind, LAYERS};
use crate::model::vgg16::Vgg16;
use crate::tensor_io::tensor_to_vec;

/// Activation ranges of the conv base over some photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Smallest and largest preprocessed input value.
    pub input: (f32, f32),
    /// Largest output (after ReLU) of each conv, in order; as many as were calibrated.
    pub convs: Vec<f32>,
    /// Quantisation levels of activations: 127 (7 bits) or 255.
    pub levels: u32,
    /// How many photos the ranges come from.
    pub images: usize,
}

impl Calibration {
    /// Run `net`'s first `layers` layers over `batches` (preprocessed [N, 3, S, S] inputs) and
    /// record the ranges.
    pub fn measure(
        net: &Vgg16,
        layers: usize,
        batches: impl IntoIterator<Item = Tensor<4>>,
    ) -> anyhow::Result<Self> {
        let mut input = (f32::INFINITY, f32::NEG_INFINITY);
        let mut convs: Vec<f32> = Vec::new();
        let mut images = 0;
        for x in batches {
            images += x.dims()[0];
            let values = tensor_to_vec(x.clone())?;
            input.0 = values.iter().fold(input.0, |m, v| m.min(*v));
            input.1 = values.iter().fold(input.1, |m, v| m.max(*v));
            let mut x = x;
            let mut conv = 0;
            for (i, layer) in LAYERS[..layers].iter().enumerate() {
                x = net.forward_layers(x, i..i + 1);
                if matches!(layer.kind, LayerKind::Conv { .. }) {
                    let max = tensor_to_vec(x.clone().max())?[0];
                    match convs.get_mut(conv) {
                        Some(m) => *m = m.max(max),
                        None => convs.push(max),
                    }
                    conv += 1;
                }
            }
        }
        anyhow::ensure!(images > 0, "no photos to calibrate the int8 conv base on");
        Ok(Self {
            input,
            convs,
            levels: activation_levels(),
            images,
        })
    }

    /// The input's scale and zero point (uint8, affine over the observed range).
    pub fn input_quantisation(&self) -> (f64, i64) {
        let (lo, hi) = (f64::from(self.input.0.min(0.0)), f64::from(self.input.1));
        let scale = ((hi - lo) / f64::from(self.levels)).max(1e-8);
        (scale, (-lo / scale).round() as i64)
    }

    /// The output scale of conv `k` (zero point 0).
    pub fn conv_scale(&self, k: usize) -> Option<f64> {
        let max = f64::from(*self.convs.get(k)?);
        Some((max / f64::from(self.levels)).max(1e-8))
    }

    /// `int8-` and a short hash of the ranges: what names these features in caches.
    pub fn tag(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        format!("int8-{}", hex::encode(&Sha256::digest(text)[..6]))
    }
}

/// 255 levels where the CPU multiplies u8 × s8 without saturating (VNNI), else 127.
fn activation_levels() -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni") {
        return 255;
    }
    127
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calibration(input: (f32, f32)) -> Calibration {
        Calibration {
            input,
            convs: vec![10.0, 2.54],
            levels: 127,
            images: 4,
        }
    }

    #[test]
    fn ranges_become_scales_and_zero_points() {
        let c = calibration((0.0, 1.0));
        assert_eq!(c.input_quantisation(), (1.0 / 127.0, 0));
        let (scale, zero) = calibration((-1.0, 1.0)).input_quantisation();
        assert!((scale - 2.0 / 127.0).abs() < 1e-12);
        assert_eq!(zero, 64, "0.0 lands on a level");
        assert!((c.conv_scale(1).unwrap_or(0.0) - 0.02).abs() < 1e-9);
        assert_eq!(c.conv_scale(2), None, "conv 2 was not calibrated");
    }

    #[test]
    fn other_ranges_are_another_tag() {
        let a = calibration((0.0, 1.0));
        assert!(a.tag().starts_with("int8-"));
        assert_eq!(a.tag(), calibration((0.0, 1.0)).tag());
        assert_ne!(a.tag(), calibration((0.0, 0.9)).tag());
    }
}

//! Post-training static calibration: the activation ranges an int8 conv base quantises
//! with, measured by running the f32 base over sample photos (a job's training split).
//!
//! Activations are quantised per tensor as unsigned integers: the input affinely over the
//! range its preprocessing gives pixels 0–255, each conv's ReLU output over [0, its largest
//! value on the photos]. On CPUs without
//! VNNI the int8 kernels multiply pairs of u8 × s8 into saturating 16-bit sums, so
//! activations there use 7 bits (PyTorch's `reduce_range`), elsewhere 8. The ranges hash
//! into [`Calibration::tag`], which names int8 features in the feature cache: features
//! quantised with other ranges are other features.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ffi::Int8Error;
use crate::model::layers::{LayerKind, LAYERS};
use crate::model::vgg16::Vgg16;
use crate::tensor_io::tensor_to_vec;

/// Activation ranges of the conv base over some photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Smallest and largest preprocessed input value the preprocessing can give.
    pub input: (f32, f32),
    /// Largest output (after ReLU) of each conv, in order; as many as were calibrated.
    pub convs: Vec<f32>,
    /// Quantisation levels of activations: 127 (7 bits) or 255.
    pub levels: u32,
    /// How many photos the ranges come from.
    pub images: usize,
}

impl Calibration {
    /// Run `net`'s first `layers` layers over `batches` (preprocessed [N, 3, S, S] inputs whose
    /// values lie in `input`, the preprocessing's range) and record the ranges.
    pub fn measure(
        net: &Vgg16,
        layers: usize,
        input: (f32, f32),
        batches: impl IntoIterator<Item = Tensor<4>>,
    ) -> Result<Self, CalibrationError> {
        let mut convs: Vec<f32> = Vec::new();
        let mut images = 0;
        for mut x in batches {
            images += x.dims()[0];
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
        if images == 0 {
            return Err(Int8Error::NoPhotos.into());
        }
        Ok(Self {
            input,
            // Rounded up to 3 significant digits: the last bits of a float sum differ between
            // CPUs and thread counts, and should not make other ranges (another cache tag).
            convs: convs.into_iter().map(round_up).collect(),
            levels: activation_levels(),
            images,
        })
    }

    /// The input's scale and zero point (uint8, affine over the preprocessing's range).
    pub fn input_quantisation(&self) -> (f64, i64) {
        let lo = f64::from(self.input.0.min(0.0));
        let hi = f64::from(self.input.1.max(0.0));
        let scale = ((hi - lo) / f64::from(self.levels)).max(SMALLEST_SCALE);
        (scale, (-lo / scale).round() as i64)
    }

    /// The output scale of conv `k` (zero point 0).
    pub fn conv_scale(&self, k: usize) -> Option<f64> {
        let max = f64::from(*self.convs.get(k)?);
        Some((max / f64::from(self.levels)).max(SMALLEST_SCALE))
    }

    /// `int8-` and a short hash of the scheme and the ranges: what names these features in
    /// caches (how many photos gave the ranges does not change them).
    pub fn tag(&self) -> String {
        let ranges = (SCHEME, self.input, &self.convs, self.levels);
        let text = serde_json::to_string(&ranges).unwrap_or_default();
        format!("int8-{}", hex::encode(&Sha256::digest(text)[..6]))
    }
}

/// How int8 features are computed, beyond the ranges: the kernels' engine and the weights'
/// quantisation. Another scheme makes other features, so it is part of their tag.
const SCHEME: &str = "onednn, per-channel symmetric int8 weights (max|w|/127), uint8 activations";

/// The smallest scale (PyTorch's observers use float32 epsilon): a dead layer still runs.
const SMALLEST_SCALE: f64 = f32::EPSILON as f64;

/// Why calibration failed.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error(transparent)]
    Int8(#[from] Int8Error),
    #[error("int8 calibration: reading activations: {0:#}")]
    Read(#[from] anyhow::Error),
}

/// `x` rounded up to 3 significant digits.
fn round_up(x: f32) -> f32 {
    if x <= 0.0 || !x.is_finite() {
        return x.max(0.0);
    }
    let step = 10f32.powf(x.log10().floor() - 2.0);
    (x / step).ceil() * step
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
        let more_photos = Calibration {
            images: 32,
            ..calibration((0.0, 1.0))
        };
        assert_eq!(
            a.tag(),
            more_photos.tag(),
            "the same ranges from more photos"
        );
    }

    #[test]
    fn ranges_round_up_to_three_digits() {
        assert!((round_up(12.341) - 12.4).abs() < 1e-4);
        assert!((round_up(0.0012001) - 0.00121).abs() < 1e-8);
        assert_eq!(round_up(0.0), 0.0);
        assert!(round_up(97.3) >= 97.3);
    }
}

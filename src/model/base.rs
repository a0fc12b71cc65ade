//! The pretrained conv base as the rest of the program uses it: the network, the device
//! it lives on, how its inputs are preprocessed and which weights it came from, and the
//! precision its frozen passes run in (an int8 copy of it, when that is int8).

use std::path::Path;

use burn::prelude::*;

use super::autotune::Choice;
use super::frozen::FrozenLayers;
use super::input::images_to_tensor;
use super::int8::Int8Vgg16;
use super::layers::LAYERS;
use super::precision::Precision;
use super::preprocess::Preprocessing;
use super::vgg16::Vgg16;
use super::weights::{WeightSet, WeightsError};

#[derive(Debug, Clone)]
pub struct ConvBase {
    /// The f32 network: what trained models start from and what checkpoints carry.
    pub net: Vgg16,
    /// `net` in `precision`'s float format, for frozen passes (the same tensors when that is
    /// f32 or int8).
    pub inference: Vgg16,
    pub precision: Precision,
    /// The whole base quantised, when `precision` is int8: calibrated on the reference input
    /// until [`ConvBase::calibrated_on`] a job's photos.
    pub int8: Option<Int8Vgg16>,
    pub device: Device,
    pub preprocessing: Preprocessing,
    /// SHA-256 of the weights file: part of every feature-cache key and model record.
    pub weights_sha256: String,
    /// How `--conv-precision auto` chose `precision` (none when it was given).
    pub precision_choice: Option<Choice>,
}

impl ConvBase {
    pub fn load(
        path: &Path,
        preprocessing: Option<Preprocessing>,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let weights = WeightSet::load(path, preprocessing)?;
        Self::from_weights(&weights, device)
    }

    pub fn from_weights(weights: &WeightSet, device: &Device) -> Result<Self, WeightsError> {
        let net = Vgg16::from_weights(weights, device)?;
        Ok(Self {
            inference: net.clone(),
            precision: Precision::F32,
            int8: None,
            net,
            device: device.clone(),
            preprocessing: weights.preprocessing,
            weights_sha256: weights.sha256.clone(),
            precision_choice: None,
        })
    }

    /// Run frozen passes in `precision` from now on. int8 runs on the CPU only, and is
    /// calibrated on the built-in reference input until [`Self::calibrated_on`] real photos.
    pub fn with_precision(mut self, precision: Precision) -> anyhow::Result<Self> {
        self.inference = self.net.clone().with_precision(precision);
        self.precision = precision;
        self.int8 = None;
        if precision == Precision::Int8 {
            let device = crate::device::describe(&self.device);
            anyhow::ensure!(
                device == "cpu",
                "--conv-precision int8 runs LibTorch's CPU kernels, not on {device}: use f32 or bf16 there"
            );
            self = self.calibrated_on(
                &super::reference::reference_images(),
                super::reference::SIDE,
            )?;
        }
        Ok(self)
    }

    /// The same base with its int8 layers calibrated on `images` (HWC RGB, `size × size`; a
    /// job's training photos, picked by `frozen::spread`). Unchanged when not int8.
    pub fn calibrated_on(mut self, images: &[Vec<u8>], size: usize) -> anyhow::Result<Self> {
        if self.precision == Precision::Int8 {
            let all = LAYERS.len();
            let frozen = FrozenLayers::new(
                &self.net,
                self.precision,
                all,
                images,
                size,
                self.preprocessing,
            )?;
            if let FrozenLayers::Int8(int8) = frozen {
                self.int8 = Some(int8);
            }
        }
        Ok(self)
    }

    /// What names this base's features in caches: the precision, and for int8 its ranges.
    pub fn features_tag(&self) -> String {
        match &self.int8 {
            Some(int8) => int8.calibration.tag(),
            None => self.precision.to_string(),
        }
    }

    /// Record how the precision was chosen.
    pub fn with_choice(mut self, choice: Choice) -> Self {
        self.precision_choice = Some(choice);
        self
    }

    /// HWC RGB images of `size × size` → [N, 512, size/32, size/32] features.
    pub fn features(&self, images: &[Vec<u8>], size: usize) -> anyhow::Result<Tensor<4>> {
        let x = images_to_tensor(images, size, self.preprocessing, &self.device);
        // [N, 3, size, size] → [N, 512, size/32, size/32]
        match &self.int8 {
            Some(int8) => int8.forward_first(x, LAYERS.len()),
            None => Ok(self.inference.forward(x)),
        }
    }
}

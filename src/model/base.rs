//! The pretrained conv base as the rest of the program uses it: the network, the device
//! it lives on, how its inputs are preprocessed and which weights it came from.

use std::path::Path;

use burn::prelude::*;

use super::autotune::Choice;
use super::input::images_to_tensor;
use super::precision::Precision;
use super::preprocess::Preprocessing;
use super::vgg16::Vgg16;
use super::weights::{WeightSet, WeightsError};

#[derive(Debug, Clone)]
pub struct ConvBase {
    /// The f32 network: what trained models start from and what checkpoints carry.
    pub net: Vgg16,
    /// `net` in `precision`, for frozen passes (the same tensors when that is f32).
    pub inference: Vgg16,
    pub precision: Precision,
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
            net,
            device: device.clone(),
            preprocessing: weights.preprocessing,
            weights_sha256: weights.sha256.clone(),
            precision_choice: None,
        })
    }

    /// Run frozen passes in `precision` from now on.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.inference = self.net.clone().with_precision(precision);
        self.precision = precision;
        self
    }

    /// Record how the precision was chosen.
    pub fn with_choice(mut self, choice: Choice) -> Self {
        self.precision_choice = Some(choice);
        self
    }

    /// HWC RGB images of `size × size` → [N, 512, size/32, size/32] features.
    pub fn features(&self, images: &[Vec<u8>], size: usize) -> Tensor<4> {
        let x = images_to_tensor(images, size, self.preprocessing, &self.device);
        // [N, 3, size, size] → [N, 512, size/32, size/32]
        self.inference.forward(x)
    }
}

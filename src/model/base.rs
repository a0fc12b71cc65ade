//! The pretrained conv base as the rest of the program uses it: the network, the device
//! it lives on, how its inputs are preprocessed and which weights it came from.

use std::path::Path;

use burn::prelude::*;

use super::preprocess::Preprocessing;
use super::vgg16::Vgg16;
use super::weights::{WeightSet, WeightsError};
use crate::data::batch::images_to_tensor;

#[derive(Debug, Clone)]
pub struct ConvBase {
    pub net: Vgg16,
    pub device: Device,
    pub preprocessing: Preprocessing,
    /// SHA-256 of the weights file: part of every feature-cache key and model record.
    pub weights_sha256: String,
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
        Ok(Self {
            net: Vgg16::from_weights(weights, device)?,
            device: device.clone(),
            preprocessing: weights.preprocessing,
            weights_sha256: weights.sha256.clone(),
        })
    }

    /// HWC RGB images of `size × size` → [N, 512, size/32, size/32] features.
    pub fn features(&self, images: &[Vec<u8>], size: usize) -> Tensor<4> {
        let x = images_to_tensor(images, size, self.preprocessing, &self.device);
        self.net.forward(x)
    }
}

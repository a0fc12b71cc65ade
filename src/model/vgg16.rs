//! The VGG16 convolutional base as a burn `Module`, and its forward pass by layer range.
//!
//! Weights are built from a [`WeightSet`](super::weights::WeightSet) (see `weights.rs`), never
//! randomly initialised: the base is always pretrained.

use std::ops::Range;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::layers::{LayerKind, LAYERS, NUM_CONVS};
use super::precision::Precision;
use super::weights::{kernel_channels_last, WeightSet, WeightsError};

/// VGG16 without its top: 13 conv 3×3 (pad 1) + ReLU, 5 max-pools.
#[derive(Module, Debug)]
pub struct Vgg16 {
    /// The 13 convolutions in order (`convs[k]` is torchvision's k-th conv).
    pub convs: Vec<Conv2d>,
    pool: MaxPool2d,
}

impl Vgg16 {
    /// Build the base on `device` from loaded weights (already validated by the loader).
    pub fn from_weights(weights: &WeightSet, device: &Device) -> Result<Self, WeightsError> {
        let mut convs = Vec::with_capacity(NUM_CONVS);
        for conv in super::layers::convs() {
            let (index, cin, cout) = (conv.torch_index, conv.in_channels, conv.out_channels);
            let weight = weights.conv_weight_channels_last(index, cin, cout, device)?;
            let bias = weights.conv_bias(index, cout, device)?;
            convs.push(Conv2d {
                weight: Param::from_tensor(weight),
                bias: Some(Param::from_tensor(bias)),
                stride: [1, 1],
                kernel_size: [3, 3],
                dilation: [1, 1],
                groups: 1,
                padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
            });
        }
        Ok(Self {
            convs,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        })
    }

    /// Lay the conv kernels out channels-last again, values unchanged. Loading weights
    /// through burn's stores (a fine-tuned model, a checkpoint) restores them contiguous
    /// OIHW, which makes LibTorch fall back to its slower NCHW convolutions.
    pub fn into_channels_last(mut self) -> Result<Self, WeightsError> {
        for conv in &mut self.convs {
            let weight = conv.weight.val();
            let [cout, cin, _, _] = weight.dims();
            let device = weight.device();
            let data =
                crate::tensor_io::tensor_to_vec(weight).map_err(|e| WeightsError::Format {
                    path: "<model in memory>".into(),
                    format: "tensor",
                    message: format!("{e:#}"),
                })?;
            conv.weight = conv
                .weight
                .clone()
                .map(|_| kernel_channels_last(&data, cout, cin, &device));
        }
        Ok(self)
    }

    /// The same base computing in `precision` (weights cast; channels-last kept). For frozen,
    /// no-grad passes only: training updates f32 weights.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        let dtype = precision.dtype();
        for conv in &mut self.convs {
            conv.weight = conv.weight.clone().map(|w| w.cast(dtype));
            conv.bias = conv.bias.take().map(|b| b.map(|b| b.cast(dtype)));
        }
        self
    }

    /// The whole base: [N, 3, H, W] → [N, 512, H/32, W/32] (`block5_pool`).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_layers(x, 0..LAYERS.len())
    }

    /// Run the layers `range` of [`LAYERS`]: e.g. `0..14` ends at `block4_pool`
    /// ([N, 512, 9, 9] for 150×150) and `14..18` is block 5 on top of it.
    /// Inputs and outputs are f32 whatever the precision the weights are in.
    pub fn forward_layers(&self, x: Tensor<4>, range: Range<usize>) -> Tensor<4> {
        let compute = self.convs[0].weight.val().dtype();
        let input = x.dtype();
        let mut x = if compute == input { x } else { x.cast(compute) };
        for layer in &LAYERS[range] {
            x = match layer.kind {
                // [N, Cin, H, W] → [N, Cout, H, W]
                LayerKind::Conv { conv, .. } => relu(self.convs[conv].forward(x)),
                // [N, C, H, W] → [N, C, H/2, W/2]
                LayerKind::Pool => self.pool.forward(x),
            };
        }
        if compute == input {
            x
        } else {
            x.cast(input)
        }
    }
}

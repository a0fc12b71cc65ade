//! The dense classifier on top of the conv base: Flatten → Dense(256, ReLU) → Dropout →
//! Dense(units). Two classes keep the seed's model, one unit (a sigmoid logit, binary
//! cross-entropy); N > 2 classes get N units (softmax logits, categorical cross-entropy).
//! It outputs logits: the loss applies the sigmoid or softmax itself (numerically stable),
//! and `Classifier::predict` turns them into class probabilities.

use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Saved beside every model so it can be rebuilt exactly.
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Flattened conv-base output: 512 × 4 × 4 for 150×150 inputs.
    pub input: usize,
    #[config(default = 256)]
    pub hidden: usize,
    /// 0.5 in recipe 1; recipes 2 and 3 use none.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Output units ([`output_units`] of the class count); absent (models saved before
    /// more than two classes were possible) means 1.
    pub outputs: Option<usize>,
}

/// Output units for `classes` classes: one sigmoid unit for two (the seed's model), one
/// softmax unit per class for more.
pub fn output_units(classes: usize) -> usize {
    if classes == 2 {
        1
    } else {
        classes
    }
}

#[derive(Module, Debug)]
pub struct DenseHead {
    hidden: Linear,
    dropout: Dropout,
    output: Linear,
}

impl HeadConfig {
    /// The head for `input` features and `classes` classes.
    pub fn for_classes(input: usize, classes: usize) -> Self {
        Self::new(input).with_outputs(Some(output_units(classes)))
    }

    pub fn units(&self) -> usize {
        self.outputs.unwrap_or(1)
    }

    /// Keras's defaults: Glorot-uniform kernels, zero biases.
    pub fn init(&self, device: &Device) -> DenseHead {
        let linear = |d_in, d_out| {
            let mut layer = LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device);
            if let Some(bias) = layer.bias.take() {
                layer.bias = Some(bias.map(|b| b.zeros_like()));
            }
            layer
        };
        DenseHead {
            hidden: linear(self.input, self.hidden),
            dropout: DropoutConfig::new(self.dropout).init(),
            output: linear(self.hidden, self.units()),
        }
    }
}

impl DenseHead {
    /// [N, C, H, W] conv features → [N, units] logits.
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        // [N, C, H, W] → [N, C·H·W]
        let x = features.flatten(1, 3);
        self.forward_flat(x)
    }

    /// [N, D] flattened features → [N, units] logits.
    pub fn forward_flat(&self, x: Tensor<2>) -> Tensor<2> {
        // [N, D] → [N, 256]
        let x = relu(self.hidden.forward(x));
        let x = self.dropout.forward(x);
        // [N, 256] → [N, units]
        self.output.forward(x)
    }
}

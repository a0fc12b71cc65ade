//! A trained model: the conv base (possibly with fine-tuned top layers) plus its dense head.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::head::DenseHead;
use super::vgg16::Vgg16;

#[derive(Module, Debug)]
pub struct Classifier {
    pub base: Vgg16,
    pub head: DenseHead,
}

impl Classifier {
    /// [N, 3, H, W] preprocessed images → [N] probability of the second class.
    pub fn predict(&self, images: Tensor<4>) -> Tensor<1> {
        // [N, 3, H, W] → [N, 512, h, w] → [N, 1] → [N]
        let logits = self.head.forward(self.base.forward(images));
        sigmoid(logits).flatten(0, 1)
    }
}

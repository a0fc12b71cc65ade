//! A trained model: the conv base (possibly with fine-tuned top layers) plus its dense head,
//! and how its logits become class probabilities.

use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};

use super::head::DenseHead;
use super::vgg16::Vgg16;

#[derive(Module, Debug)]
pub struct Classifier {
    pub base: Vgg16,
    pub head: DenseHead,
}

impl Classifier {
    /// [N, 3, H, W] preprocessed images → [N, classes] class probabilities.
    pub fn predict(&self, images: Tensor<4>) -> Tensor<2> {
        // [N, 3, H, W] → [N, 512, h, w] → [N, units]
        probabilities(self.head.forward(self.base.forward(images)))
    }
}

/// [N, units] logits → [N, classes] probabilities: one sigmoid unit gives the two classes
/// `1 − p` and `p`; N softmax units give N.
pub fn probabilities(logits: Tensor<2>) -> Tensor<2> {
    let [_, units] = logits.dims();
    if units == 1 {
        let p = sigmoid(logits);
        // [N, 1] → [N, 2]
        Tensor::cat(vec![p.clone().neg().add_scalar(1.0), p], 1)
    } else {
        softmax(logits, 1)
    }
}

//! Grad-CAM (Selvaraju et al., 2017) on `block5_conv3`: where in a photo the model found
//! the evidence for a class. The gradient of the class score with respect to the layer's
//! activations (after its ReLU), averaged over positions, weighs each channel; the weighted
//! sum of the activations, through a ReLU, divided by its maximum, is the heatmap in
//! [0, 1] (all zeros when nothing speaks for the class). The class score is the logit
//! before the sigmoid or softmax: for a two-class model's single unit, `z` for the second
//! class and `−z` for the first. Only the layers after `block5_conv3` are differentiated;
//! the rest is an ordinary forward pass.

use burn::prelude::*;
use burn::tensor::activation::relu;

use super::classifier::{probabilities, Classifier};
use super::layers::{layer_index, LAYERS};
use crate::tensor_io::tensor_to_vec;

/// The layer explained.
pub const LAYER: &str = "block5_conv3";

/// One image's explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// Every class's probability, as `/predict` gives them.
    pub probabilities: Vec<f32>,
    /// The class explained.
    pub class: usize,
    /// Rows × columns of the grid (the layer's spatial size: 9 × 9 for 150-pixel inputs).
    pub side: [usize; 2],
    /// Row-major, in [0, 1].
    pub values: Vec<f32>,
}

/// Explain `images` ([N, 3, S, S], preprocessed) for the class in `targets` (one per image;
/// `None`: the most probable class).
pub fn grad_cam(
    model: &Classifier,
    images: Tensor<4>,
    targets: &[Option<usize>],
) -> anyhow::Result<Vec<Heatmap>> {
    let layer = layer_index(LAYER).expect("block5_conv3 is a VGG16 layer") + 1;
    // [N, 3, S, S] → [N, 512, h, w], without a graph.
    let activations = model.base.forward_layers(images, 0..layer);
    let [n, _, h, w] = activations.dims();
    anyhow::ensure!(n == targets.len(), "{n} images, {} targets", targets.len());
    let leaf = activations.clone().autodiff().require_grad();
    // The head's weights stay constants: only the activations need a gradient.
    let logits = model
        .head
        .forward(model.base.forward_layers(leaf.clone(), layer..LAYERS.len()));
    let [_, units] = logits.dims();
    let probs = tensor_to_vec(probabilities(logits.clone().inner()))?;
    let classes = if units == 1 { 2 } else { units };
    let rows: Vec<&[f32]> = probs.chunks_exact(classes).collect();
    let mut chosen = Vec::with_capacity(n);
    let mut mask = vec![0f32; n * units];
    for (i, target) in targets.iter().enumerate() {
        let class = match target {
            Some(class) => *class,
            None => argmax(rows[i]),
        };
        anyhow::ensure!(class < classes, "class {class} of {classes}");
        // The class score: a softmax unit's logit, or ±z for the single sigmoid unit.
        if units == 1 {
            mask[i] = if class == 1 { 1.0 } else { -1.0 };
        } else {
            mask[i * units + class] = 1.0;
        }
        chosen.push(class);
    }
    let device = logits.device();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, units]), &device);
    // Each image's score depends on its own activations only: one backward for the batch.
    let grads = (logits * mask).sum().backward();
    let gradient = leaf
        .grad(&grads)
        .ok_or_else(|| anyhow::anyhow!("no gradient reached {LAYER}"))?;
    // α [N, 512, 1, 1]: the gradient averaged over positions; cam [N, 1, h, w].
    let alpha = gradient.mean_dim(3).mean_dim(2);
    let cam = relu((activations * alpha).sum_dim(1));
    let cam = tensor_to_vec(cam)?;
    Ok(cam
        .chunks_exact(h * w)
        .zip(rows)
        .zip(chosen)
        .map(|((map, row), class)| Heatmap {
            probabilities: row.to_vec(),
            class,
            side: [h, w],
            values: normalised(map),
        })
        .collect())
}

fn argmax(row: &[f32]) -> usize {
    // First of equals, as `/predict` ranks them.
    row.iter()
        .enumerate()
        .fold(0, |best, (i, &p)| if p > row[best] { i } else { best })
}

/// Divided by the maximum; all zeros stays all zeros.
fn normalised(map: &[f32]) -> Vec<f32> {
    let max = map.iter().copied().fold(0f32, f32::max);
    if max > 0.0 {
        map.iter().map(|v| v / max).collect()
    } else {
        vec![0.0; map.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_scaled_to_their_maximum_and_a_flat_map_stays_zero() {
        assert_eq!(normalised(&[0.0, 2.0, 1.0]), vec![0.0, 1.0, 0.5]);
        assert_eq!(normalised(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(argmax(&[0.2, 0.5, 0.5]), 1);
    }
}

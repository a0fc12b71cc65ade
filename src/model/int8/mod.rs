//! The int8 conv base: the frozen layers of VGG16 with per-channel int8 weights and
//! uint8 activations, run by LibTorch's quantised oneDNN kernels (`shim.cpp`), calibrated
//! on photos by [`Calibration`]. For frozen, no-grad passes only (features for recipe 1,
//! the frozen blocks of recipes 2 and 3): nothing trains through it.
//!
//! Inputs and outputs are f32 tensors like the float base's; they cross into C++ as host
//! buffers, so it runs where the quantised CPU kernels do (not on a CUDA device).

mod calibration;
mod ffi;

use std::sync::Arc;

use burn::prelude::*;

pub use calibration::{Calibration, CalibrationError};
pub use ffi::Int8Error;
use ffi::QuantizedNet;

use super::layers::{LayerKind, LAYERS};
use super::vgg16::Vgg16;
use crate::tensor_io::tensor_to_vec;

/// The first `layers` layers of a [`Vgg16`], quantised.
#[derive(Debug, Clone)]
pub struct Int8Vgg16 {
    net: Arc<QuantizedNet>,
    pub calibration: Calibration,
}

impl Int8Vgg16 {
    /// Quantise `vgg`'s first `layers` layers with `calibration`'s ranges (which must cover
    /// their convs).
    pub fn build(vgg: &Vgg16, calibration: Calibration, layers: usize) -> anyhow::Result<Self> {
        let mut net = QuantizedNet::new()?;
        for layer in &LAYERS[..layers] {
            match layer.kind {
                LayerKind::Conv {
                    conv,
                    in_channels,
                    out_channels,
                    ..
                } => {
                    let scale = calibration
                        .conv_scale(conv)
                        .ok_or(Int8Error::NoRange { layer: layer.name })?;
                    let module = &vgg.convs[conv];
                    let weight =
                        tensor_to_vec(module.weight.val().cast(burn::tensor::FloatDType::F32))?;
                    let bias = match &module.bias {
                        Some(b) => tensor_to_vec(b.val().cast(burn::tensor::FloatDType::F32))?,
                        None => vec![0.0; out_channels],
                    };
                    net.push_conv(&weight, &bias, out_channels, in_channels, scale)?;
                }
                LayerKind::Pool => net.push_pool()?,
            }
        }
        Ok(Self {
            net: Arc::new(net),
            calibration,
        })
    }

    /// How many layers of [`LAYERS`] this network holds.
    pub fn layers(&self) -> usize {
        self.net.steps()
    }

    /// Run layers `0..layers` of [`LAYERS`]: [N, 3, H, W] → the last one's output, f32.
    pub fn forward_first(&self, x: Tensor<4>, layers: usize) -> anyhow::Result<Tensor<4>> {
        if layers > self.layers() {
            return Err(Int8Error::Shape(format!(
                "the int8 base holds {} layers, not {layers}",
                self.layers()
            ))
            .into());
        }
        let [n, c, h, w] = x.dims();
        let device = x.device();
        let input = tensor_to_vec(x.cast(burn::tensor::FloatDType::F32))?;
        let [oc, oh, ow] = output_shape([c, h, w], layers);
        let mut out = vec![0f32; n * oc * oh * ow];
        self.net.forward(
            &input,
            [n, c, h, w],
            self.calibration.input_quantisation(),
            layers,
            &mut out,
        )?;
        Ok(Tensor::from_data(
            TensorData::new(out, [n, oc, oh, ow]),
            &device,
        ))
    }
}

/// [C, H, W] after the first `layers` layers.
fn output_shape([mut c, mut h, mut w]: [usize; 3], layers: usize) -> [usize; 3] {
    for layer in &LAYERS[..layers] {
        match layer.kind {
            LayerKind::Conv { out_channels, .. } => c = out_channels,
            LayerKind::Pool => (h, w) = (h / 2, w / 2),
        }
    }
    [c, h, w]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shapes_follow_the_layers() {
        assert_eq!(output_shape([3, 150, 150], 0), [3, 150, 150]);
        assert_eq!(output_shape([3, 150, 150], 14), [512, 9, 9]);
        assert_eq!(output_shape([3, 150, 150], 18), [512, 4, 4]);
    }
}

//! Pixel preprocessing, which belongs to the weights: each pretrained file was trained on
//! inputs scaled its own way, and feeding it any other scaling silently costs accuracy.

use serde::{Deserialize, Serialize};

/// How RGB pixels (0..=255) become the network's input channels.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Preprocessing {
    /// RGB / 255 (the stand-in weights; PyTorch models trained on `ToTensor()` alone).
    Rgb01,
    /// Keras `imagenet_utils` "caffe" mode: channels reordered to BGR, 0..255 minus the
    /// ImageNet BGR mean (the Keras `.h5` weights).
    Caffe,
    /// torchvision: RGB / 255, then minus mean / std per channel (the official `.pth`).
    Torch,
}

const CAFFE_MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];
const TORCH_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const TORCH_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Preprocessing {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The smallest and largest value any pixel becomes.
    pub fn range(self) -> (f32, f32) {
        let mut values = Vec::new();
        self.extend_hwc(&[0, 0, 0, 255, 255, 255], &mut values);
        let lo = values.iter().fold(f32::INFINITY, |m, v| m.min(*v));
        let hi = values.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
        (lo, hi)
    }

    /// Append the preprocessed channels of interleaved RGB pixels (HWC) to `out`, staying HWC.
    pub fn extend_hwc(self, rgb: &[u8], out: &mut Vec<f32>) {
        out.reserve(rgb.len());
        for px in rgb.chunks_exact(3) {
            let [r, g, b] = [px[0] as f32, px[1] as f32, px[2] as f32];
            match self {
                Self::Rgb01 => out.extend([r / 255.0, g / 255.0, b / 255.0]),
                Self::Caffe => out.extend([
                    b - CAFFE_MEAN_BGR[0],
                    g - CAFFE_MEAN_BGR[1],
                    r - CAFFE_MEAN_BGR[2],
                ]),
                Self::Torch => out.extend([
                    (r / 255.0 - TORCH_MEAN[0]) / TORCH_STD[0],
                    (g / 255.0 - TORCH_MEAN[1]) / TORCH_STD[1],
                    (b / 255.0 - TORCH_MEAN[2]) / TORCH_STD[2],
                ]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_scales_as_documented() {
        let px = [255u8, 128, 0];
        let mut out = Vec::new();
        Preprocessing::Rgb01.extend_hwc(&px, &mut out);
        assert_eq!(out, vec![1.0, 128.0 / 255.0, 0.0]);
        out.clear();
        Preprocessing::Caffe.extend_hwc(&px, &mut out);
        assert_eq!(out, vec![0.0 - 103.939, 128.0 - 116.779, 255.0 - 123.68]);
        out.clear();
        Preprocessing::Torch.extend_hwc(&px, &mut out);
        assert!((out[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert_eq!(Preprocessing::Rgb01.range(), (0.0, 1.0));
        assert_eq!(Preprocessing::Caffe.range(), (-123.68, 255.0 - 103.939));
        assert_eq!("caffe".parse::<Preprocessing>(), Ok(Preprocessing::Caffe));
        assert_eq!(Preprocessing::Rgb01.as_str(), "rgb01");
        assert_eq!(serde_json::to_value(Preprocessing::Rgb01).unwrap(), "rgb01");
        assert!("bgr".parse::<Preprocessing>().is_err());
    }
}

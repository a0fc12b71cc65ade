//! Our VGG16 on LibTorch must compute what PyTorch computes: `block4_pool` and
//! `block5_pool` for the shared golden input, within 1e-4 relative error, both through the
//! library and through the `vggserve features --tensor` command.

#![allow(deprecated)]

mod common {
    pub mod shared;
}

use burn::prelude::*;
use common::shared::{require, standin_weights};
use vggserve::model::input::nchw_to_tensor;
use vggserve::model::layers::layer_index;
use vggserve::model::{ConvBase, Precision};
use vggserve::tensor_io::{read_f32_safetensors, tensor_to_vec};

fn relative_error(ours: &[f32], theirs: &[f32]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "different element counts");
    let max_abs = theirs.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    let max_err = ours
        .iter()
        .zip(theirs)
        .fold(0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()));
    assert!(max_abs > 0.0, "reference is all zeros");
    max_err / max_abs
}

#[test]
fn conv_base_matches_pytorch_at_block4_and_block5_pool() {
    let (golden, _) = read_f32_safetensors(&require("fixtures/vgg16-golden.safetensors")).unwrap();
    let base = ConvBase::load(&standin_weights(), None, &Device::libtorch()).unwrap();
    assert_eq!(
        base.preprocessing.as_str(),
        "rgb01",
        "stand-in metadata declares RGB/255"
    );
    let input = &golden["input"];
    let x = nchw_to_tensor(
        &input.data,
        input.shape.clone().try_into().unwrap(),
        &base.device,
    );
    for (name, shape) in [
        ("block4_pool", [4, 512, 9, 9]),
        ("block5_pool", [4, 512, 4, 4]),
    ] {
        let end = layer_index(name).unwrap() + 1;
        let y = base.net.forward_layers(x.clone(), 0..end);
        assert_eq!(y.dims(), shape, "{name} shape");
        let error = relative_error(&tensor_to_vec(y).unwrap(), &golden[name].data);
        assert!(error < 1e-4, "{name}: relative error {error:e} ≥ 1e-4");
    }
}

/// bf16 is a trade: outputs within bf16 rounding of PyTorch's f32 ones, and visibly not
/// the f32 computation (so the option really changes what runs).
#[test]
fn bf16_conv_base_stays_within_bf16_rounding_of_pytorch() {
    let (golden, _) = read_f32_safetensors(&require("fixtures/vgg16-golden.safetensors")).unwrap();
    let base = ConvBase::load(&standin_weights(), None, &Device::libtorch())
        .unwrap()
        .with_precision(Precision::Bf16)
        .unwrap();
    let input = &golden["input"];
    let x = nchw_to_tensor(
        &input.data,
        input.shape.clone().try_into().unwrap(),
        &base.device,
    );
    let y = base.inference.forward(x);
    assert_eq!(
        y.dtype(),
        burn::tensor::DType::F32,
        "outputs come back as f32"
    );
    let error = relative_error(&tensor_to_vec(y).unwrap(), &golden["block5_pool"].data);
    eprintln!("bf16 block5_pool relative error {error:e}");
    assert!(
        error < 1e-2,
        "bf16 block5_pool: relative error {error:e} ≥ 1e-2"
    );
    assert!(
        error > 1e-4,
        "bf16 gave f32-exact outputs ({error:e}): bf16 did not run"
    );
}

#[test]
fn features_command_reproduces_pytorch() {
    let fixture = require("fixtures/vgg16-golden.safetensors");
    let out = tempfile::tempdir().unwrap();
    let out_file = out.path().join("features.safetensors");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_vggserve"))
        .args([
            "features",
            "--device",
            "cpu",
            // The golden comparison is of f32 (auto could pick bf16 on some machines).
            "--conv-precision",
            "f32",
            "--also",
            "block4_pool",
            "--tensor",
        ])
        .arg(&fixture)
        .arg("--weights")
        .arg(standin_weights())
        .arg("--out")
        .arg(&out_file)
        .args(["--batch-size", "3"]) // uneven batches must not change the result
        .status()
        .unwrap();
    assert!(status.success());
    let (ours, _) = read_f32_safetensors(&out_file).unwrap();
    let (golden, _) = read_f32_safetensors(&fixture).unwrap();
    for name in ["block4_pool", "block5_pool"] {
        assert_eq!(ours[name].shape, golden[name].shape, "{name} shape");
        let error = relative_error(&ours[name].data, &golden[name].data);
        assert!(error < 1e-4, "{name}: relative error {error:e}");
    }
}

#[test]
fn a_model_saved_with_its_base_and_reloaded_still_matches_pytorch() {
    use vggserve::model::head::HeadConfig;
    use vggserve::model::saved::{load_model, save_model, ModelConfig};
    use vggserve::model::Classifier;

    let (golden, _) = read_f32_safetensors(&require("fixtures/vgg16-golden.safetensors")).unwrap();
    let device = Device::libtorch();
    let base = ConvBase::load(&standin_weights(), None, &device).unwrap();
    let head = HeadConfig::new(512 * 4 * 4).with_dropout(0.0);
    let model = Classifier {
        base: base.net.clone(),
        head: head.init(&device),
    };
    let config = ModelConfig {
        recipe: "fine_tuned".into(),
        head,
        classes: vec!["cats".into(), "dogs".into()],
        image_size: 150,
        preprocessing: base.preprocessing,
        weights_sha256: base.weights_sha256.clone(),
        includes_base: true,
    };
    let dir = tempfile::tempdir().unwrap();
    let (artifact, sha) = save_model(dir.path(), uuid::Uuid::new_v4(), &model, &config).unwrap();
    let loaded = load_model(dir.path(), &artifact, &sha, &config, &base).unwrap();
    let input = &golden["input"];
    let x = nchw_to_tensor(
        &input.data,
        input.shape.clone().try_into().unwrap(),
        &device,
    );
    let y = tensor_to_vec(loaded.base.forward(x)).unwrap();
    let error = relative_error(&y, &golden["block5_pool"].data);
    assert!(error < 1e-4, "reloaded base: relative error {error:e}");
}

/// int8 is a trade too: the conv base quantised (calibrated on 32 training photos, none of
/// them the golden ones) stays within quantisation error of PyTorch's f32 block5_pool,
/// and is visibly not the f32 computation.
#[test]
fn int8_conv_base_stays_within_quantisation_error_of_pytorch() {
    let (golden, _) = read_f32_safetensors(&require("fixtures/vgg16-golden.safetensors")).unwrap();
    let train = require("datasets/cats_and_dogs_small/train");
    let spec = vggserve::data::decode::ImageSpec::default();
    let photos: Vec<Vec<u8>> = ["cats/cat", "dogs/dog"]
        .iter()
        .flat_map(|prefix| (0..16).map(move |i| format!("{prefix}.{}.jpg", 100 + i * 37)))
        .map(|file| {
            let bytes = std::fs::read(train.join(file)).unwrap();
            vggserve::data::decode::load_image(&bytes, &spec).unwrap()
        })
        .collect();
    let base = ConvBase::load(&standin_weights(), None, &Device::libtorch())
        .unwrap()
        .with_precision(Precision::Int8)
        .unwrap()
        .calibrated_on(&photos, spec.size as usize)
        .unwrap();
    let calibration = &base.int8.as_ref().unwrap().calibration;
    assert_eq!(calibration.images, 32);
    assert_eq!(calibration.convs.len(), 13);
    let input = &golden["input"];
    let shape: [usize; 4] = input.shape.clone().try_into().unwrap();
    let int8 = base.int8.as_ref().unwrap();
    let x = nchw_to_tensor(&input.data, shape, &base.device);
    let y = int8.forward_first(x, 18).unwrap();
    assert_eq!(y.dims(), [4, 512, 4, 4]);
    let ours = tensor_to_vec(y).unwrap();
    let theirs = &golden["block5_pool"].data;
    let error = relative_error(&ours, theirs);
    let l2 = {
        let (num, den) = ours
            .iter()
            .zip(theirs)
            .fold((0f64, 0f64), |(n, d), (a, b)| {
                let (a, b) = (f64::from(*a), f64::from(*b));
                (n + (a - b).powi(2), d + b * b)
            });
        (num / den).sqrt()
    };
    eprintln!("int8 block5_pool: max error {error:e} of the largest value, relative L2 {l2:e}");
    assert!(
        error < 0.05,
        "int8 block5_pool: relative error {error:e} ≥ 5%"
    );
    assert!(l2 < 0.08, "int8 block5_pool: relative L2 error {l2:e} ≥ 8%");
    assert!(
        error > 1e-3,
        "int8 gave f32-exact outputs ({error:e}): int8 did not run"
    );
}

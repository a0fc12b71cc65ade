//! Taking a model elsewhere and seeing why: a model trained through the API, exported as
//! ONNX, answers in onnxruntime what `/predict` answers (within 1e-4), binary and 5-class;
//! exported as safetensors, it loads into torchvision's VGG16 in PyTorch, whose Grad-CAM
//! equals `?explain=gradcam`'s (within 1e-3); imported back it predicts bit for bit the
//! same (`import.rs`). The Python side is `tests/export/*.py`, run from the test venv on the
//! pixels the service itself decoded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use vggserve::data::decode::{decode_rgb, resize_rgb, ImageSpec, DEFAULT_MAX_PIXELS};

use crate::helpers::{link_dataset, sorted_entries, spawn_app, Api, TestApp};

const LIMIT: Duration = Duration::from_secs(600);
const SIZE: u32 = 150;

/// Extract features of `dataset` and train a head on them for two epochs: the model id.
pub(crate) async fn trained(app: &TestApp, dataset: &str) -> String {
    let extract = app
        .queue(json!({"kind": "extract_features", "dataset": dataset}))
        .await;
    assert_eq!(app.wait_for(&extract, LIMIT).await["status"], "succeeded");
    let train = app
        .queue(json!({"kind": "train", "dataset": dataset, "features": extract, "epochs": 2}))
        .await;
    let job = app.wait_for(&train, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    job["model_id"].as_str().unwrap().to_owned()
}

/// `count` test photos of the dataset, spread over its classes.
pub(crate) fn photos(app: &TestApp, dataset: &str, count: usize) -> Vec<PathBuf> {
    let root = app.root.path().join("datasets").join(dataset).join("test");
    let mut per_class: Vec<Vec<PathBuf>> = sorted_entries(&root)
        .iter()
        .map(|dir| sorted_entries(dir))
        .collect();
    let mut chosen = Vec::new();
    while chosen.len() < count {
        for files in &mut per_class {
            if chosen.len() < count && !files.is_empty() {
                chosen.push(files.remove(0));
            }
        }
    }
    chosen
}

/// The photos as the service feeds them to the model (its own decoder, default resize),
/// concatenated HWC RGB, in a file for the Python checkers.
fn pixels_file(photos: &[PathBuf], out: &Path) -> PathBuf {
    let spec = ImageSpec {
        size: SIZE,
        max_pixels: DEFAULT_MAX_PIXELS,
        ..Default::default()
    };
    let bytes: Vec<u8> = photos
        .iter()
        .flat_map(|p| {
            resize_rgb(
                &decode_rgb(&std::fs::read(p).unwrap(), spec.max_pixels).unwrap(),
                &spec,
            )
        })
        .collect();
    let path = out.join("pixels.u8");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `/v1/predict` on the photos (multipart, in order): the predictions.
pub(crate) async fn predict(api: &Api, query: &str, photos: &[PathBuf]) -> Vec<Value> {
    let mut form = reqwest::multipart::Form::new();
    for photo in photos {
        let part = reqwest::multipart::Part::bytes(std::fs::read(photo).unwrap())
            .file_name(photo.file_name().unwrap().to_string_lossy().into_owned());
        form = form.part("image", part);
    }
    let response = api.predict_multipart(query, form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["predictions"].as_array().unwrap().clone()
}

/// Download an export: the file's path, and the response's ETag.
pub(crate) async fn export(api: &Api, model: &str, format: &str, out: &Path) -> (PathBuf, String) {
    let url = format!("{}/v1/models/{model}/export?format={format}", api.url);
    let response = api.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let headers = response.headers().clone();
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.contains(&format!("vggserve-{model}.{format}")),
        "{disposition}"
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let path = out.join(format!("model.{format}"));
    std::fs::write(&path, response.bytes().await.unwrap()).unwrap();
    // The tag is the file's SHA-256, and asking again with it is a 304.
    let sha = vggserve::model::saved::file_sha256(&path).unwrap();
    assert_eq!(etag, format!("\"{sha}\""));
    let again = api
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    (path, etag)
}

/// Run a checker in `tests/export/` with the test venv's Python: its JSON answer.
fn python(script: &str, args: &[&str]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/export").join(script))
        .args(args)
        .output()
        .expect("the test venv's python (make venv)");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A prediction's probabilities in the model's class order.
fn scores(prediction: &Value, classes: &[String]) -> Vec<f64> {
    classes
        .iter()
        .map(|c| prediction["scores"][c].as_f64().unwrap())
        .collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn numbers(value: &Value) -> Vec<f64> {
    match value {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

/// ONNX in onnxruntime on 8 photos, then PyTorch's Grad-CAM on 4 (the predicted class,
/// then another one asked for by name), each beside the service's own answers.
async fn agrees_elsewhere(app: &TestApp, dataset: &str, model: &str) {
    let out = tempfile::tempdir().unwrap();
    let photos = photos(app, dataset, 8);
    let pixels = pixels_file(&photos, out.path());
    let pixels = pixels.to_str().unwrap();
    let (_, record) = app.get_json(&format!("/v1/models/{model}")).await;
    let classes: Vec<String> = serde_json::from_value(record["classes"].clone()).unwrap();
    let served = predict(app, &format!("?model={model}"), &photos).await;

    let (onnx, _) = export(app, model, "onnx", out.path()).await;
    let answer = python(
        "onnx_probabilities.py",
        &[
            onnx.to_str().unwrap(),
            pixels,
            "--count",
            "8",
            "--size",
            "150",
        ],
    );
    assert_eq!(answer["metadata"]["classes"], json!(classes).to_string());
    for (i, row) in answer["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let diff = max_diff(&numbers(row), &scores(&served[i], &classes));
        assert!(diff < 1e-4, "photo {i}: onnxruntime differs by {diff}");
    }

    let (weights, _) = export(app, model, "safetensors", out.path()).await;
    let weights = weights.to_str().unwrap();
    let four = &photos[..4];
    let pixels4 = pixels_file(four, &folder(out.path().join("four")));
    let pixels4 = pixels4.to_str().unwrap();
    let explained = predict(app, &format!("?model={model}&explain=gradcam"), four).await;
    let reference = python(
        "torch_gradcam.py",
        &[weights, pixels4, "--count", "4", "--size", "150"],
    );
    // Class 0 asked for by name: for the binary model that is always the −z score.
    let other = &classes[0];
    let explained_other = predict(
        app,
        &format!("?model={model}&explain=gradcam&class={other}"),
        four,
    )
    .await;
    let reference_other = python(
        "torch_gradcam.py",
        &[
            weights,
            pixels4,
            "--count",
            "4",
            "--size",
            "150",
            "--targets",
            "0",
        ],
    );
    for (served, reference) in [
        (&explained, &reference),
        (&explained_other, &reference_other),
    ] {
        for (i, prediction) in served.iter().enumerate() {
            let explanation = &prediction["explanation"];
            let target = reference["targets"][i].as_u64().unwrap() as usize;
            assert_eq!(explanation["class"], classes[target], "photo {i}");
            let diff = max_diff(
                &numbers(&explanation["grid"]),
                &numbers(&reference["heatmaps"][i]),
            );
            assert!(
                diff < 1e-3,
                "photo {i}: Grad-CAM differs from PyTorch's by {diff}"
            );
            let probs = max_diff(
                &scores(prediction, &classes),
                &numbers(&reference["probabilities"][i]),
            );
            assert!(
                probs < 1e-4,
                "photo {i}: PyTorch's probabilities differ by {probs}"
            );
        }
    }
}

pub(crate) fn folder(path: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&path).unwrap();
    path
}

#[tokio::test]
async fn a_binary_model_runs_the_same_in_onnxruntime_and_pytorch() {
    let app = spawn_app().await;
    let model = trained(&app, "tiny").await;
    agrees_elsewhere(&app, "tiny", &model).await;
}

#[tokio::test]
async fn a_five_class_model_runs_the_same_in_onnxruntime_and_pytorch() {
    let app = spawn_app().await;
    let classes = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
    let splits = [("train", 4), ("validation", 2), ("test", 2)];
    link_dataset(
        &app.root.path().join("datasets"),
        "flowers5",
        "flowers_small",
        &classes,
        &splits,
    );
    let model = trained(&app, "flowers5").await;
    agrees_elsewhere(&app, "flowers5", &model).await;
}

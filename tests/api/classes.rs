//! More than two classes: a softmax head of N units in recipe 1 and in end-to-end training,
//! predictions with every class's probability and `?top_k=`, and evaluations with a
//! confusion matrix, per-class figures and the most confidently wrong photos.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{link_dataset, spawn_app};

const LIMIT: Duration = Duration::from_secs(600);

/// Per split: photos of each class.
const SMALL: [(&str, usize); 3] = [("train", 6), ("validation", 3), ("test", 3)];

fn assert_evaluation(evaluation: &Value, classes: &[&str], images: u64) {
    let matrix = evaluation["confusion"].as_array().unwrap();
    assert_eq!(matrix.len(), classes.len(), "{evaluation}");
    let cells: Vec<u64> = matrix
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .collect();
    assert_eq!(cells.len(), classes.len() * classes.len());
    assert_eq!(
        cells.iter().sum::<u64>(),
        images,
        "the matrix counts every photo once"
    );
    let diagonal: u64 = (0..classes.len())
        .map(|i| cells[i * classes.len() + i])
        .sum();
    let acc = evaluation["acc"].as_f64().unwrap();
    assert!(
        (acc - diagonal as f64 / images as f64).abs() < 1e-9,
        "{evaluation}"
    );
    assert_eq!(evaluation["classes"], json!(classes));
    let per_class = evaluation["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), classes.len());
    for (i, figures) in per_class.iter().enumerate() {
        let support: u64 = (0..classes.len())
            .map(|j| cells[i * classes.len() + j])
            .sum();
        assert_eq!(figures["support"], support, "{figures}");
    }
    // Every confidently wrong photo really is wrong, and they come most confident first.
    let wrong = evaluation["most_confident_wrong"].as_array().unwrap();
    assert_eq!(wrong.len() as u64, (images - diagonal).min(12));
    for pair in wrong.windows(2) {
        assert!(pair[0]["probability"].as_f64() >= pair[1]["probability"].as_f64());
    }
    for photo in wrong {
        assert_ne!(photo["true"], photo["predicted"], "{photo}");
    }
}

#[tokio::test]
async fn three_flowers_through_recipe_1_predict_and_evaluate() {
    let app = spawn_app().await;
    let classes = ["daisy", "roses", "tulips"];
    let datasets = app.root.path().join("datasets");
    link_dataset(&datasets, "flowers3", "flowers_small", &classes, &SMALL);

    let extract = app
        .queue(json!({"kind": "extract_features", "dataset": "flowers3"}))
        .await;
    assert_eq!(app.wait_for(&extract, LIMIT).await["status"], "succeeded");
    let train = app
        .queue(json!({"kind": "train", "dataset": "flowers3", "features": extract, "epochs": 3}))
        .await;
    let job = app.wait_for(&train, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["epochs"].as_array().unwrap().len(), 3);
    assert_evaluation(&job["result"]["test"], &classes, 9);
    let model = job["model_id"].as_str().unwrap().to_owned();
    let (_, record) = app.get_json(&format!("/v1/models/{model}")).await;
    assert_eq!(record["classes"], json!(classes));
    assert_eq!(record["config"]["head"]["outputs"], 3);

    // Every class's probability; the label is the most probable; top_k ranks them.
    let photo = std::fs::read(
        datasets
            .join("flowers3/test/roses")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    let response = app
        .predict_jpeg(&format!("/v1/predict?model={model}&top_k=2"), photo)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let prediction = &body["predictions"][0];
    let scores = prediction["scores"].as_object().unwrap();
    assert_eq!(scores.len(), 3, "{prediction}");
    let total: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-5, "{prediction}");
    let best = scores
        .iter()
        .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
        .unwrap();
    assert_eq!(prediction["label"], best.0.as_str());
    assert_eq!(prediction["probability"].as_f64(), best.1.as_f64());
    let top = prediction["top"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(top[0]["label"], prediction["label"]);
    assert!(top[0]["probability"].as_f64() >= top[1]["probability"].as_f64());
    let response = app
        .predict_jpeg(&format!("/v1/predict?model={model}&top_k=0"), vec![0xff])
        .await;
    assert_eq!(response.status(), 400);

    // Evaluate on validation: the same shape of report.
    let evaluate = app
        .queue(json!({"kind": "evaluate", "dataset": "flowers3", "model": model, "split": "validation"}))
        .await;
    let job = app.wait_for(&evaluate, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["images"], 9);
    assert_evaluation(&job["result"], &classes, 9);
    for photo in job["result"]["most_confident_wrong"].as_array().unwrap() {
        let file = photo["file"].as_str().unwrap();
        assert!(file.starts_with("validation/"), "{file}");
        assert!(file.starts_with(&format!("validation/{}/", photo["true"].as_str().unwrap())));
    }

    // Thumbnails of the dataset's own photos, by the name evaluations give them; nothing else.
    let first = datasets
        .join("flowers3/validation/daisy")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let file = format!("validation/daisy/{}", first.file_name().to_str().unwrap());
    let url = |file: &str| {
        format!(
            "{}/v1/datasets/flowers3/thumbnail?file={file}&size=96",
            app.url
        )
    };
    let response = app.client.get(url(&file)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let thumbnail = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(thumbnail.width().max(thumbnail.height()), 96);
    for (file, status) in [
        ("../../server.log", 404),
        ("validation/daisy/nope.jpg", 404),
    ] {
        let response = app.client.get(url(file)).send().await.unwrap();
        assert_eq!(response.status(), status, "{file}");
    }
}

#[tokio::test]
async fn five_flowers_train_end_to_end_with_a_softmax_head() {
    let app = spawn_app().await;
    let classes = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
    let datasets = app.root.path().join("datasets");
    link_dataset(
        &datasets,
        "flowers5",
        "flowers_small",
        &classes,
        &[("train", 4), ("validation", 2), ("test", 2)],
    );
    let train = app
        .queue(json!({"kind": "train", "dataset": "flowers5", "augment": true, "epochs": 1,
                      "steps_per_epoch": 2, "validation_steps": 1, "batch_size": 5, "image_size": 64}))
        .await;
    let job = app.wait_for(&train, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let epoch = &job["epochs"][0];
    // Categorical cross-entropy starts near ln 5 for five classes, far from BCE's ln 2.
    assert!(epoch["loss"].as_f64().unwrap() > 1.0, "{epoch}");
    assert_evaluation(&job["result"]["test"], &classes, 10);
    let (_, record) = app
        .get_json(&format!("/v1/models/{}", job["model_id"].as_str().unwrap()))
        .await;
    assert_eq!(record["config"]["head"]["outputs"], 5);
}

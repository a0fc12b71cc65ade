//! Each job kind runs to `succeeded` through the API, SSE delivers its epochs live, on
//! replay and after `Last-Event-ID`, and the trained models answer `/predict`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{ids_of, spawn_app, spawn_app_with};

const LIMIT: Duration = Duration::from_secs(600);

#[tokio::test]
async fn features_recipe_streams_epochs_and_serves_predictions() {
    let app = spawn_app().await;
    let extract = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    let job = app.wait_for(&extract, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["splits"]["train"]["images"], 20);
    assert_eq!(
        job["result"]["splits"]["train"]["shape"],
        json!([20, 512, 4, 4])
    );
    assert_eq!(
        job["progress"],
        json!({"done": 40, "total": 40, "unit": "images"})
    );

    // Subscribe before the job runs: epochs 1..=N must arrive live and in order.
    let train = app
        .queue(json!({"kind": "train", "dataset": "tiny", "features": extract, "epochs": 4, "seed": 7}))
        .await;
    let live = app.events(&train, None).await;
    let epochs: Vec<i64> = live
        .iter()
        .filter(|(_, e, _)| e == "epoch")
        .map(|(_, _, d)| d["epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3, 4]);
    let statuses: Vec<&str> = live
        .iter()
        .filter(|(_, e, _)| e == "status")
        .map(|(_, _, d)| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["queued", "running", "succeeded"]);
    let epoch = &live.iter().find(|(_, e, _)| e == "epoch").unwrap().2;
    for key in ["loss", "acc", "val_loss", "val_acc", "seconds"] {
        assert!(epoch[key].is_number(), "epoch lacks {key}: {epoch}");
    }

    // A late client gets the same recorded events; Last-Event-ID resumes after one.
    let replay = app.events(&train, None).await;
    assert_eq!(ids_of(&replay, "epoch"), ids_of(&live, "epoch"));
    let first_epoch_id = ids_of(&live, "epoch")[0].to_string();
    let resumed = app.events(&train, Some(&first_epoch_id)).await;
    assert_eq!(
        ids_of(&resumed, "epoch"),
        ids_of(&live, "epoch")[1..].to_vec()
    );
    assert!(resumed
        .iter()
        .all(|(id, _, _)| id.parse::<i64>().unwrap() >= first_epoch_id.parse::<i64>().unwrap()));

    let job = app.job(&train).await;
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["epochs"].as_array().unwrap().len(), 4);
    assert!(
        job["result"]["test"]["acc"].is_number(),
        "training evaluates on test: {job}"
    );
    let model = job["model_id"].as_str().unwrap().to_string();
    let (status, record) = app.get_json(&format!("/v1/models/{model}")).await;
    assert_eq!(status, 200);
    assert_eq!(record["recipe"], "features");
    assert_eq!(record["classes"], json!(["cats", "dogs"]));
    assert_eq!(record["source_job"], train.as_str());

    // Same seed, same data: the same curve.
    let again = app
        .queue(json!({"kind": "train", "dataset": "tiny", "features": extract, "epochs": 4, "seed": 7}))
        .await;
    let again = app.wait_for(&again, LIMIT).await;
    let losses = |job: &Value| {
        job["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loss"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&again), losses(&app.job(&train).await));

    // Predict: one and several images (multipart, in order), and a raw body, on both routes.
    let cat = app.photo("test", "cats", 0);
    let dog = app.photo("test", "dogs", 0);
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(std::fs::read(&cat).unwrap()).file_name("cat.jpg"),
        )
        .part(
            "image",
            reqwest::multipart::Part::bytes(std::fs::read(&dog).unwrap()).file_name("dog.jpg"),
        );
    let response = app
        .predict_multipart(&format!("?model={model}"), form)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], model.as_str());
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    for p in predictions {
        let label = p["label"].as_str().unwrap();
        assert!(label == "cats" || label == "dogs");
        let (c, d) = (
            p["scores"]["cats"].as_f64().unwrap(),
            p["scores"]["dogs"].as_f64().unwrap(),
        );
        assert!((c + d - 1.0).abs() < 1e-5);
        assert!((p["probability"].as_f64().unwrap() - c.max(d)).abs() < 1e-6);
    }
    let raw = app
        .predict_jpeg("/predict", std::fs::read(&dog).unwrap())
        .await;
    assert_eq!(raw.status(), 200);
    let raw: Value = raw.json().await.unwrap();
    assert_eq!(raw["predictions"].as_array().unwrap().len(), 1);
    // The raw body and the second multipart part are the same photo: the same answer.
    // (Batches of 1 and 2 may differ in the last float bits, not more.)
    let dogs = |p: &Value| p["scores"]["dogs"].as_f64().unwrap();
    assert!((dogs(&raw["predictions"][0]) - dogs(&predictions[1])).abs() < 1e-5);

    // Evaluate the model on the test split.
    let evaluate = app
        .queue(json!({"kind": "evaluate", "dataset": "tiny", "model": model}))
        .await;
    let job = app.wait_for(&evaluate, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["images"], 10);
    // The same model on the same split as training's own test evaluation: the same figures,
    // and an accuracy that is a whole number of the 10 photos.
    let (_, record) = app.get_json(&format!("/v1/models/{model}")).await;
    let acc = job["result"]["acc"].as_f64().unwrap();
    assert!(
        (acc - record["test_metrics"]["acc"].as_f64().unwrap()).abs() < 1e-9,
        "{job} {record}"
    );
    assert!(((acc * 10.0).round() - acc * 10.0).abs() < 1e-9, "{acc}");

    // Models: default, list, delete.
    let second = again["model_id"].as_str().unwrap();
    let response = app
        .client
        .put(format!("{}/v1/models/{model}/default", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(models.as_array().unwrap().len(), 2);
    let default: Vec<&Value> = models
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["is_default"] == true)
        .collect();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0]["id"], model.as_str());
    let response = app
        .client
        .delete(format!("{}/v1/models/{second}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_json(&format!("/v1/models/{second}")).await.0, 404);
    assert!(!app.root.path().join("data/models").join(second).exists());
}

#[tokio::test]
async fn augmented_training_then_fine_tuning_moves_only_block5() {
    let app = spawn_app().await;
    let small = json!({"epochs": 2, "steps_per_epoch": 2, "validation_steps": 1, "batch_size": 4});
    let mut body = json!({"kind": "train", "dataset": "tiny", "augment": true});
    body.as_object_mut()
        .unwrap()
        .extend(small.as_object().unwrap().clone());
    let train = app.queue(body).await;
    let job = app.wait_for(&train, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["epochs"].as_array().unwrap().len(), 2);
    let model = job["model_id"].as_str().unwrap().to_string();

    let mut body = json!({"kind": "fine_tune", "dataset": "tiny", "from_model": model});
    body.as_object_mut()
        .unwrap()
        .extend(small.as_object().unwrap().clone());
    let tune = app.queue(body).await;
    let events = app.events(&tune, None).await;
    assert_eq!(ids_of(&events, "epoch").len(), 2);
    let job = app.job(&tune).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["params"]["unfreeze_from"], "block5_conv1");
    let tuned = job["model_id"].as_str().unwrap();
    let (_, record) = app.get_json(&format!("/v1/models/{tuned}")).await;
    assert_eq!(record["recipe"], "fine_tuned");
    assert_eq!(record["config"]["includes_base"], true);

    // In the saved model, blocks 1–4 are the pretrained weights bit for bit; block 5 moved.
    let artifact = app
        .root
        .path()
        .join("data/models")
        .join(tuned)
        .join("model.safetensors");
    let (saved, _) = vggserve::tensor_io::read_f32_safetensors(&artifact).unwrap();
    let (pretrained, _) =
        vggserve::tensor_io::read_f32_safetensors(&crate::shared::standin_weights()).unwrap();
    for (conv, spec) in vggserve::model::layers::convs().enumerate() {
        let ours = &saved[&format!("base.convs.{conv}.weight")];
        let original = &pretrained[&format!("features.{}.weight", spec.torch_index)];
        assert_eq!(ours.shape, original.shape);
        if conv < 10 {
            assert!(ours.data == original.data, "frozen conv {conv} changed");
        } else {
            assert!(
                ours.data != original.data,
                "trainable conv {conv} did not move"
            );
        }
    }

    // Without augmentation the frozen layers run once, and training uses their outputs.
    let mut body =
        json!({"kind": "fine_tune", "dataset": "tiny", "from_model": model, "augment": false});
    body.as_object_mut()
        .unwrap()
        .extend(small.as_object().unwrap().clone());
    let fast = app.queue(body).await;
    let events = app.events(&fast, None).await;
    assert!(
        events
            .iter()
            .any(|(_, e, d)| e == "progress" && d["unit"] == "frozen layers run once"),
        "the fast path reports its one pass over the frozen layers"
    );
    let job = app.job(&fast).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["params"]["augment"], false);
    assert_eq!(job["epochs"].as_array().unwrap().len(), 2);

    // The fine-tuned model predicts.
    let cat = std::fs::read(app.photo("test", "cats", 1)).unwrap();
    let response = app
        .predict_jpeg(&format!("/v1/predict?model={tuned}"), cat)
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_second_extraction_reuses_cached_features() {
    let app = spawn_app().await;
    let first = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    let first = app.wait_for(&first, LIMIT).await;
    assert_eq!(
        first["result"]["cache"],
        json!({"hits": 0, "shared_hits": 0, "computed": 40})
    );
    let (status, stats) = app.get_json("/v1/cache").await;
    assert_eq!(status, 200);
    assert_eq!(stats["entries"], 40);
    assert_eq!(stats["bytes"], 40 * 512 * 4 * 4 * 4);

    let second = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    let second_job = app.wait_for(&second, LIMIT).await;
    assert_eq!(
        second_job["result"]["cache"],
        json!({"hits": 40, "shared_hits": 0, "computed": 0})
    );
    // Same features, bit for bit, whether computed or cached.
    for split in ["train", "validation", "test"] {
        let read = |job: &str| {
            let path = app
                .root
                .path()
                .join("data/features")
                .join(job)
                .join(format!("{split}.safetensors"));
            vggserve::tensor_io::read_f32_safetensors(&path).unwrap().0
        };
        let (a, b) = (read(first["id"].as_str().unwrap()), read(&second));
        assert!(
            a["features"].data == b["features"].data,
            "{split} features differ"
        );
        assert!(a["labels"].data == b["labels"].data);
    }
    // Another size is another cache entry; clearing empties it.
    let other = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny", "image_size": 64}))
        .await;
    assert_eq!(
        app.wait_for(&other, LIMIT).await["result"]["cache"]["computed"],
        40
    );
    let response = app
        .client
        .delete(format!("{}/v1/cache", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.get_json("/v1/cache").await.1["entries"], 0);
}

/// bf16 and int8 features: close to f32's (bf16 rounding, int8 quantisation through 13
/// layers) but not the same; a model trains on them and predicts. int8 is calibrated on the
/// job's training photos, names its features by that calibration, and runs recipe 2's
/// frozen layers too.
#[tokio::test]
async fn reduced_precisions_extract_close_features_train_and_predict() {
    let read_train_features = |app: &crate::helpers::TestApp, job: &str| {
        let path = app
            .root
            .path()
            .join("data/features")
            .join(job)
            .join("train.safetensors");
        vggserve::tensor_io::read_f32_safetensors(&path).unwrap().0["features"]
            .data
            .clone()
    };
    async fn extract(app: &crate::helpers::TestApp) -> (String, Value) {
        let job = app
            .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
            .await;
        let done = app.wait_for(&job, LIMIT).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        (job, done)
    }
    let f32_app = spawn_app_with(&["--conv-precision", "f32"]).await;
    let (job, done) = extract(&f32_app).await;
    assert_eq!(done["result"]["conv_precision"], "f32");
    let f32s = read_train_features(&f32_app, &job);
    drop(f32_app);
    for (precision, tolerance) in [("bf16", 2e-2), ("int8", 5e-2)] {
        let app = spawn_app_with(&["--conv-precision", precision]).await;
        let (job, done) = extract(&app).await;
        let ours = read_train_features(&app, &job);
        let max_abs = f32s.iter().fold(0f32, |m, v| m.max(v.abs()));
        let max_err = f32s
            .iter()
            .zip(&ours)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            max_err > 0.0,
            "{precision} gave f32's features exactly: it did not run"
        );
        assert!(
            max_err / max_abs < tolerance,
            "{precision} error {max_err} of max {max_abs}"
        );
        let tag = done["result"]["conv_precision"]
            .as_str()
            .unwrap()
            .to_owned();
        if precision == "int8" {
            assert!(tag.starts_with("int8-") && tag.len() > 5, "{tag}");
            // The same photos calibrate to the same ranges: a second extraction is all
            // cache hits.
            let (_, again) = extract(&app).await;
            assert_eq!(again["result"]["conv_precision"], tag.as_str());
            assert_eq!(again["result"]["cache"]["computed"], 0, "{again}");
            // Recipe 2 runs its frozen layers in int8 too.
            let end_to_end = app
                .queue(json!({"kind": "train", "dataset": "tiny", "augment": true,
                    "epochs": 1, "steps_per_epoch": 1, "validation_steps": 1}))
                .await;
            let trained = app.wait_for(&end_to_end, LIMIT).await;
            assert_eq!(trained["status"], "succeeded", "{trained}");
        } else {
            assert_eq!(tag, precision);
        }
        let train = app
            .queue(json!({"kind": "train", "dataset": "tiny", "features": job, "epochs": 2}))
            .await;
        assert_eq!(app.wait_for(&train, LIMIT).await["status"], "succeeded");
        let response = app
            .predict_jpeg(
                "/v1/predict",
                std::fs::read(app.photo("test", "dogs", 0)).unwrap(),
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        // A whole answer: the label is the class with the larger score, `probability` is
        // that score, and the scores sum to one.
        let prediction = &body["predictions"][0];
        let label = prediction["label"].as_str().unwrap();
        let score = |class: &str| prediction["scores"][class].as_f64().unwrap();
        let other = if label == "cats" { "dogs" } else { "cats" };
        assert!(score(label) >= score(other), "{prediction}");
        assert!((prediction["probability"].as_f64().unwrap() - score(label)).abs() < 1e-6);
        assert!(
            (score("cats") + score("dogs") - 1.0).abs() < 1e-6,
            "{prediction}"
        );
    }
}

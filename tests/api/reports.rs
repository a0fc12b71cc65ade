//! Dataset reports over HTTP: `GET /v1/datasets/{name}`, and training refused (422, before
//! any compute) on a dataset with the same photo in two splits unless `allow_leaks`.

use std::path::Path;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

#[tokio::test]
async fn a_dataset_is_shown_with_its_report_and_the_report_is_cached() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/v1/datasets/tiny").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "tiny");
    // The summary as the list shows it…
    assert_eq!(body["splits"]["train"]["images"], 20);
    assert_eq!(body["splits"]["train"]["classes"], json!(["cats", "dogs"]));
    // …a few photos of each class, which the thumbnail route serves…
    let samples = body["samples"]["train"]["dogs"].as_array().unwrap();
    assert_eq!(samples.len(), 4, "{body}");
    let first = app.photo("train", "dogs", 0);
    assert_eq!(
        samples[0],
        format!(
            "train/dogs/{}",
            first.file_name().unwrap().to_str().unwrap()
        )
    );
    let url = format!(
        "{}/v1/datasets/tiny/thumbnail?file={}",
        app.url,
        samples[0].as_str().unwrap()
    );
    assert_eq!(app.client.get(url).send().await.unwrap().status(), 200);
    // …and the report.
    let report = &body["report"];
    assert_eq!(report["splits"]["train"]["classes"]["cats"]["images"], 10);
    assert_eq!(report["splits"]["test"]["images"], 10);
    assert_eq!(report["splits"]["train"]["imbalance"], 1.0);
    assert_eq!(report["unreadable"], json!([]));
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(report["image_size"]["max_width"].as_u64().unwrap() > 100);
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("too few to train on"), "{warnings}");

    // Cached by content under the data dir, and the same report the second time.
    let key = report["key"].as_str().unwrap();
    let cached = app
        .root
        .path()
        .join(format!("data/reports/tiny/{key}.json"));
    assert!(cached.is_file(), "{}", cached.display());
    let (_, again) = app.get_json("/v1/datasets/tiny").await;
    assert_eq!(again["report"], *report);

    for (path, status) in [
        ("/v1/datasets/nope", 404),
        ("/v1/datasets/a%20b", 400),
        ("/v1/datasets/.hidden", 400),
    ] {
        let (got, body) = app.get_json(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["field"], "name", "{body}");
    }
}

/// A copy of `tiny` (symlinks to the same photos) named `leaky`, with the first training
/// cat also in test/; returns the two relative paths.
fn plant_leak(app: &TestApp) -> (String, String) {
    let datasets = app.root.path().join("datasets");
    for entry in walk(&datasets.join("tiny")) {
        let relative = entry.strip_prefix(datasets.join("tiny")).unwrap();
        let target = datasets.join("leaky").join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(std::fs::read_link(&entry).unwrap(), target).unwrap();
    }
    let photo = app.photo("train", "cats", 0);
    let name = photo.file_name().unwrap().to_str().unwrap().to_owned();
    std::os::unix::fs::symlink(
        std::fs::read_link(&photo).unwrap(),
        datasets.join("leaky/test/cats/leaked.jpg"),
    )
    .unwrap();
    (format!("train/cats/{name}"), "test/cats/leaked.jpg".into())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn training_on_a_leaky_dataset_is_refused_unless_allowed() {
    let app = spawn_app().await;
    let (train_file, test_file) = plant_leak(&app);
    let train = json!({"kind": "train", "dataset": "leaky", "augment": true, "epochs": 1,
        "steps_per_epoch": 1, "validation_steps": 1, "batch_size": 2, "image_size": 32});

    let response = app.post_job(train.clone()).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], "dataset", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{train_file} = {test_file}")) && error.contains("allow_leaks"),
        "{error}"
    );
    // Refused before anything was queued.
    let (_, jobs) = app.get_json("/v1/jobs").await;
    assert_eq!(jobs, json!([]));
    // The report says the same.
    let (_, detail) = app.get_json("/v1/datasets/leaky").await;
    assert_eq!(
        detail["report"]["cross_split_duplicates"],
        json!([{"a": train_file, "b": test_file, "distance": 0}])
    );

    // Asked for: accepted, and stored with the job.
    let mut allowed = train.clone();
    allowed["allow_leaks"] = json!(true);
    let id = app.queue(allowed).await;
    assert_eq!(app.job(&id).await["params"]["allow_leaks"], true);
    // Extracting features (and evaluating) is never refused for it.
    let extract = app
        .queue(json!({"kind": "extract_features", "dataset": "leaky", "image_size": 32}))
        .await;
    for job in [&id, &extract] {
        app.client
            .post(format!("{}/v1/jobs/{job}/cancel", app.url))
            .send()
            .await
            .unwrap();
    }
}

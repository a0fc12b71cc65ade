//! The best epoch, not the last: a run with patience stops once its validation loss has not
//! improved for that many epochs, every epoch names the best so far, and the registered
//! model is the best epoch's (re-evaluating it on the validation split reproduces that
//! epoch's figures); `restore_best: false` keeps the seed's behaviour, the last epoch.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

const LIMIT: Duration = Duration::from_secs(600);

fn epochs(job: &Value) -> Vec<Value> {
    job["epochs"].as_array().unwrap().clone()
}

/// The first epoch with the lowest validation loss among `epochs`.
fn lowest_loss(epochs: &[Value]) -> i64 {
    let mut best = (0, f64::INFINITY);
    for e in epochs {
        let loss = e["val_loss"].as_f64().unwrap();
        if loss < best.1 {
            best = (e["epoch"].as_i64().unwrap(), loss);
        }
    }
    best.0
}

/// Evaluate `model` (a model's or a training job's id) on the validation split.
async fn validation_of(app: &TestApp, model: &str) -> Value {
    let evaluate = app
        .queue(
            json!({"kind": "evaluate", "dataset": "tiny", "model": model, "split": "validation"}),
        )
        .await;
    let job = app.wait_for(&evaluate, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    job["result"].clone()
}

/// The registered model scores on the validation split what epoch `n` scored.
async fn reproduces_epoch(app: &TestApp, job: &Value, n: i64) {
    let epoch = &epochs(job)[n as usize - 1];
    let result = validation_of(app, job["id"].as_str().unwrap()).await;
    assert_eq!(result["acc"], epoch["val_acc"], "{result} vs {epoch}");
    let (loss, val_loss) = (
        result["loss"].as_f64().unwrap(),
        epoch["val_loss"].as_f64().unwrap(),
    );
    assert!((loss - val_loss).abs() < 1e-4, "{loss} vs {val_loss}");
}

#[tokio::test]
async fn patience_stops_the_run_and_the_best_epoch_is_registered() {
    let app = spawn_app().await;
    let extract = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny", "image_size": 64}))
        .await;
    assert_eq!(app.wait_for(&extract, LIMIT).await["status"], "succeeded");
    // A step size large enough to overfit 20 photos: the validation loss soon turns up.
    let run = json!({"kind": "train", "dataset": "tiny", "features": extract, "epochs": 60,
                     "learning_rate": 0.01, "seed": 7, "early_stopping_patience": 3});
    let train = app.queue(run.clone()).await;
    let job = app.wait_for(&train, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let training = &job["result"]["training"];
    let ran = epochs(&job);
    let best = training["best_epoch"].as_i64().unwrap();
    assert_eq!(training["stopped"], "early_stopped", "{training}");
    assert_eq!(
        ran.len() as i64,
        best + 3,
        "three epochs without improvement"
    );
    assert_eq!(best, lowest_loss(&ran));
    for (i, epoch) in ran.iter().enumerate() {
        assert_eq!(
            epoch["best_epoch"],
            json!(lowest_loss(&ran[..=i])),
            "{epoch}"
        );
    }
    assert_eq!(
        (
            training["registered_epoch"].as_i64(),
            training["epochs_run"].as_i64()
        ),
        (Some(best), Some(best + 3))
    );
    let model = job["model_id"].as_str().unwrap();
    let (_, record) = app.get_json(&format!("/v1/models/{model}")).await;
    assert_eq!(record["metrics"]["epoch"], best, "{record}");
    assert_eq!(record["metrics"]["training"], *training);
    reproduces_epoch(&app, &job, best).await;

    // The seed's behaviour: the last epoch's weights, whatever the best was.
    let mut last = run;
    last["restore_best"] = json!(false);
    last["early_stopping_patience"] = json!(0);
    last["epochs"] = json!(best + 3);
    let job = app.wait_for(&app.queue(last).await, LIMIT).await;
    let training = &job["result"]["training"];
    assert_eq!(
        (
            training["stopped"].as_str(),
            training["best_epoch"].as_i64()
        ),
        (Some("completed"), Some(best))
    );
    assert_eq!(training["registered_epoch"], best + 3);
    reproduces_epoch(&app, &job, best + 3).await;
}

#[tokio::test]
async fn a_cancelled_run_says_what_it_had_done_and_registers_nothing() {
    let app = spawn_app().await;
    let extract = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny", "image_size": 64}))
        .await;
    assert_eq!(app.wait_for(&extract, LIMIT).await["status"], "succeeded");
    let long = json!({"kind": "train", "dataset": "tiny", "features": extract, "epochs": 1000});
    let train = app.queue(long).await;
    app.wait_until(&train, LIMIT, |j| {
        j["epochs"].as_array().is_some_and(|e| e.len() >= 3)
    })
    .await;
    let (status, _) = app
        .post_json(&format!("/v1/jobs/{train}/cancel"), json!({}))
        .await;
    assert_eq!(status, 202);
    let job = app.wait_for(&train, LIMIT).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    let training = &job["result"]["training"];
    let ran = epochs(&job);
    assert_eq!(training["stopped"], "cancelled", "{job}");
    assert_eq!(training["epochs_run"], json!(ran.len()));
    assert_eq!(training["best_epoch"], json!(lowest_loss(&ran)));
    assert!(
        training["registered_epoch"].is_null() && job["model_id"].is_null(),
        "{job}"
    );
}

#[tokio::test]
async fn end_to_end_training_registers_its_best_epoch() {
    let app = spawn_app().await;
    let run = json!({"kind": "train", "dataset": "tiny", "augment": true, "epochs": 3,
                     "steps_per_epoch": 2, "validation_steps": 3, "batch_size": 4,
                     "image_size": 64, "learning_rate": 0.001, "monitor": "val_loss"});
    let job = app.wait_for(&app.queue(run).await, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let training = &job["result"]["training"];
    let best = lowest_loss(&epochs(&job));
    assert_eq!(
        (
            training["best_epoch"].as_i64(),
            training["registered_epoch"].as_i64()
        ),
        (Some(best), Some(best))
    );
    assert_eq!(training["monitor"], "val_loss");
    reproduces_epoch(&app, &job, best).await;
}

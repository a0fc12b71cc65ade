//! Cancellation (queued and running), and restarts: after a `kill -9`, queued jobs still
//! run, and the job that was running is settled (never left `running`), its epochs intact.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::spawn_app;

const LIMIT: Duration = Duration::from_secs(600);

/// A training job long enough to be caught running (stopped by the test).
fn long_job() -> Value {
    json!({"kind": "train", "dataset": "tiny", "augment": true, "epochs": 200, "steps_per_epoch": 3,
           "validation_steps": 1, "batch_size": 2})
}

#[tokio::test]
async fn cancel_stops_queued_and_running_jobs() {
    let app = spawn_app().await;
    let running = app.queue(long_job()).await;
    let queued = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    app.wait_until(&running, LIMIT, |j| {
        j["status"] == "running" && j["progress"]["unit"] == "steps"
    })
    .await;

    // Queued: cancelled at once, never started.
    let response = app
        .client
        .post(format!("{}/v1/jobs/{queued}/cancel", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let job = app.job(&queued).await;
    assert_eq!(job["status"], "cancelled");
    assert!(job["started_at"].is_null());

    // Running: stops within a batch, keeps what it recorded, registers no model.
    let response = app
        .client
        .post(format!("{}/v1/jobs/{running}/cancel", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job = app.wait_for(&running, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "cancelled");
    assert!(job.get("model_id").is_none(), "{job}");
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(models, json!([]));
    let events = app.events(&running, None).await;
    assert_eq!(events.last().unwrap().2["status"], "cancelled");

    // Cancelling again is a conflict; the queue keeps working.
    let response = app
        .client
        .post(format!("{}/v1/jobs/{running}/cancel", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let next = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    assert_eq!(app.wait_for(&next, LIMIT).await["status"], "succeeded");
}

#[tokio::test]
async fn after_kill_a_training_job_resumes_from_its_checkpoint_and_queued_jobs_run() {
    let mut app = spawn_app().await;
    let running = app
        .queue(
            json!({"kind": "train", "dataset": "tiny", "augment": true, "epochs": 3,
                      "steps_per_epoch": 6, "validation_steps": 1, "batch_size": 2}),
        )
        .await;
    let queued = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    // Kill it mid-training, after its first recorded epoch (and so its first checkpoint).
    app.wait_until(&running, LIMIT, |j| {
        j["epochs"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    app.crash_and_restart();

    let job = app.wait_for(&running, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    // Every epoch exactly once, in order, across the kill.
    let epochs: Vec<i64> = job["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3]);
    assert!(job["model_id"].is_string(), "{job}");
    // The best epoch is watched across the kill (the checkpoint kept it): the registered
    // one is the lowest validation loss of all three epochs, before the kill or after.
    let losses: Vec<f64> = job["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .collect();
    let lowest = losses.iter().cloned().fold(f64::INFINITY, f64::min);
    let best = losses.iter().position(|&l| l == lowest).unwrap() as i64 + 1;
    let training = &job["result"]["training"];
    assert_eq!(training["best_epoch"], best, "{training}");
    assert_eq!(training["registered_epoch"], best, "{training}");
    let events = app.events(&running, None).await;
    assert!(
        events
            .iter()
            .any(|(_, e, d)| e == "status" && d["resumed"] == true),
        "a resume is announced"
    );
    assert_eq!(crate::helpers::ids_of(&events, "epoch").len(), 3);
    // Removed by the worker just after it records the job's end.
    let checkpoint = app.root.path().join("data/checkpoints").join(&running);
    let started = std::time::Instant::now();
    while checkpoint.exists() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!checkpoint.exists(), "checkpoint removed at the end");

    let job = app.wait_for(&queued, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, jobs) = app.get_json("/v1/jobs?status=running").await;
    assert_eq!(jobs, json!([]));
}

#[tokio::test]
async fn after_kill_a_job_without_checkpoint_fails_with_the_reason_and_keeps_its_epochs() {
    let mut app = spawn_app().await;
    let extract = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    app.wait_for(&extract, LIMIT).await;
    // The dense head on features keeps no checkpoint (a whole run takes seconds).
    let train = app
        .queue(json!({"kind": "train", "dataset": "tiny", "features": extract, "epochs": 1000}))
        .await;
    let before = app
        .wait_until(&train, LIMIT, |j| {
            j["epochs"].as_array().is_some_and(|e| e.len() >= 2)
        })
        .await;
    app.crash_and_restart();
    let job = app.wait_for(&train, LIMIT).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("interrupted"),
        "{job}"
    );
    let epochs: Vec<i64> = job["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_i64().unwrap())
        .collect();
    assert!(epochs.len() >= before["epochs"].as_array().unwrap().len());
    assert_eq!(epochs, (1..=epochs.len() as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_job_killed_before_its_first_epoch_runs_again_after_restart() {
    let mut app = spawn_app().await;
    let job = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny", "batch_size": 1}))
        .await;
    app.wait_until(&job, LIMIT, |j| j["status"] == "running")
        .await;
    app.crash_and_restart();
    let done = app.wait_for(&job, LIMIT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["splits"]["train"]["images"], 20);
}

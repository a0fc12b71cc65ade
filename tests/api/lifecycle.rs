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
async fn restart_after_kill_runs_queued_jobs_and_settles_the_running_one() {
    let mut app = spawn_app().await;
    let running = app.queue(long_job()).await;
    let queued = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny"}))
        .await;
    // Kill it mid-training, after at least one recorded epoch.
    let before = app
        .wait_until(&running, LIMIT, |j| {
            j["epochs"].as_array().is_some_and(|e| !e.is_empty())
        })
        .await;
    app.crash_and_restart();

    let job = app.wait_for(&running, LIMIT).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("interrupted"),
        "{job}"
    );
    // Every epoch recorded before the kill is still there, once.
    let epochs: Vec<i64> = job["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_i64().unwrap())
        .collect();
    assert!(epochs.len() >= before["epochs"].as_array().unwrap().len());
    assert_eq!(epochs, (1..=epochs.len() as i64).collect::<Vec<_>>());

    let job = app.wait_for(&queued, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, jobs) = app.get_json("/v1/jobs?status=running").await;
    assert_eq!(jobs, json!([]));
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

//! Job chains through the API: each of the seed's recipes queued with one request runs to
//! evaluated models, its stream relaying every step in order; a job may name one that has
//! not finished and waits for it; a failing or cancelled dependency fails what waits on
//! it, with the reason, and nothing else; a waiting job survives kill -9; cycles and
//! unknown ids are refused.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

const LIMIT: Duration = Duration::from_secs(900);

/// Small enough for two CPU cores, every recipe's steps still run for real.
fn small(recipe: u8) -> Value {
    let augmented = json!({"epochs": 1, "steps_per_epoch": 2, "validation_steps": 1,
                           "batch_size": 4, "image_size": 64});
    match recipe {
        1 => json!({"extract": {"image_size": 64}, "train": {"epochs": 3}}),
        2 => json!({"train": augmented}),
        _ => json!({"train": augmented, "fine_tune": augmented}),
    }
}

async fn post_recipe(app: &TestApp, recipe: u8) -> Value {
    let body = json!({"recipe": recipe, "dataset": "tiny", "overrides": small(recipe)});
    let (status, pipeline) = app.post_json("/v1/pipelines", body).await;
    assert_eq!(status, 202, "{pipeline}");
    pipeline
}

fn steps(pipeline: &Value) -> Vec<(String, String)> {
    pipeline["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["step"].as_str().unwrap().into(),
                j["id"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_recipe_in_one_request_ends_in_evaluated_models() {
    let app = spawn_app().await;
    let mut queued = Vec::new();
    for recipe in [1, 2, 3] {
        queued.push(post_recipe(&app, recipe).await);
    }
    let names: Vec<Vec<String>> = queued
        .iter()
        .map(|p| steps(p).into_iter().map(|(name, _)| name).collect())
        .collect();
    assert_eq!(names[0], ["extract", "train", "evaluate"]);
    assert_eq!(names[1], ["train", "evaluate"]);
    assert_eq!(
        names[2],
        ["train", "evaluate", "fine_tune", "evaluate_fine_tuned"]
    );
    // Only each chain's first step can run now; the rest wait on it.
    for pipeline in &queued {
        for job in &pipeline["jobs"].as_array().unwrap()[1..] {
            assert_eq!(job["status"], "waiting", "{job}");
            assert_eq!(job["depends_on"].as_array().unwrap().len(), 1, "{job}");
        }
    }

    // Recipe 3's own stream: every step's events in order, each naming its step, to the end.
    let id = queued[2]["id"].as_str().unwrap();
    let events = app
        .stream(&format!("/v1/pipelines/{id}/events"), None)
        .await;
    let ids: Vec<i64> = events
        .iter()
        .map(|(id, _, _)| id.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "{ids:?}");
    let status_of = |step: &str, status: &str| {
        events
            .iter()
            .position(|(_, kind, d)| kind == "status" && d["step"] == step && d["status"] == status)
            .unwrap_or_else(|| panic!("no {status} of {step} in {events:?}"))
    };
    for (before, after) in [
        ("train", "evaluate"),
        ("train", "fine_tune"),
        ("fine_tune", "evaluate_fine_tuned"),
    ] {
        assert!(status_of(before, "succeeded") < status_of(after, "running"));
    }
    assert!(events
        .iter()
        .any(|(_, kind, d)| kind == "epoch" && d["step"] == "fine_tune"));

    for pipeline in &queued {
        let id = pipeline["id"].as_str().unwrap();
        let (_, done) = app.get_json(&format!("/v1/pipelines/{id}")).await;
        let done = if done["status"] == "succeeded" {
            done
        } else {
            wait_pipeline(&app, id).await
        };
        assert_eq!(done["status"], "succeeded", "{done}");
        let jobs = done["jobs"].as_array().unwrap();
        for job in jobs {
            assert_eq!(job["status"], "succeeded", "{job}");
        }
        // Each evaluation ran on the model its training step registered.
        for (i, job) in jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j["kind"] == "evaluate")
        {
            assert_eq!(job["params"]["model"], jobs[i - 1]["model_id"], "{done}");
            assert_eq!(job["params"]["split"], "test");
            assert!(job["result"]["acc"].is_number(), "{job}");
        }
    }
    let recipe3 = app.get_json(&format!("/v1/pipelines/{id}")).await.1;
    let jobs = recipe3["jobs"].as_array().unwrap();
    assert_eq!(jobs[2]["params"]["from_model"], jobs[0]["model_id"]);
    assert_eq!(jobs[2]["params"]["unfreeze_from"], "block5_conv1");
    let model = jobs[2]["model_id"].as_str().unwrap();
    let photo = std::fs::read(app.photo("test", "dogs", 0)).unwrap();
    let response = app
        .predict_jpeg(&format!("/v1/predict?model={model}"), photo)
        .await;
    assert_eq!(response.status(), 200);
}

async fn wait_pipeline(app: &TestApp, id: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (_, pipeline) = app.get_json(&format!("/v1/pipelines/{id}")).await;
        if ["succeeded", "failed", "cancelled"].contains(&pipeline["status"].as_str().unwrap_or(""))
        {
            return pipeline;
        }
        assert!(
            started.elapsed() < LIMIT,
            "pipeline {id} never ended: {pipeline}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A dataset whose every image is unreadable: it passes the checks made before queueing,
/// and its features job fails when it runs.
fn make_junk_dataset(app: &TestApp) {
    for split in ["train", "validation", "test"] {
        for class in ["cats", "dogs"] {
            let dir = app
                .root
                .path()
                .join("datasets/junk")
                .join(split)
                .join(class);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("a.jpg"), format!("not a photo: {split} {class}")).unwrap();
        }
    }
}

#[tokio::test]
async fn a_failing_step_fails_the_chain_below_it_and_bad_references_are_refused() {
    let app = spawn_app().await;
    make_junk_dataset(&app);
    let body =
        json!({"recipe": 1, "dataset": "junk", "overrides": {"train": {"allow_leaks": true}}});
    let (status, pipeline) = app.post_json("/v1/pipelines", body).await;
    assert_eq!(status, 202, "{pipeline}");
    let [(_, extract), (_, train), (_, evaluate)] = <[_; 3]>::try_from(steps(&pipeline)).unwrap();
    let id = pipeline["id"].as_str().unwrap();
    let events = app
        .stream(&format!("/v1/pipelines/{id}/events"), None)
        .await;
    let done = app.get_json(&format!("/v1/pipelines/{id}")).await.1;
    assert_eq!(done["status"], "failed", "{done}");

    let extract_job = app.job(&extract).await;
    assert!(extract_job["error"]
        .as_str()
        .unwrap()
        .contains("no readable images"));
    let train_job = app.job(&train).await;
    assert_eq!(train_job["status"], "failed");
    let reason = train_job["error"].as_str().unwrap();
    assert!(
        reason.contains(&extract) && reason.contains("no readable images"),
        "{reason}"
    );
    let evaluate_job = app.job(&evaluate).await;
    assert_eq!(evaluate_job["status"], "failed");
    assert!(evaluate_job["error"].as_str().unwrap().contains(&train));
    assert!(
        evaluate_job["started_at"].is_null(),
        "it never ran: {evaluate_job}"
    );
    let failed: Vec<&str> = events
        .iter()
        .filter(|(_, kind, d)| kind == "status" && d["status"] == "failed")
        .map(|(_, _, d)| d["step"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["extract", "train", "evaluate"]);

    // Nothing can wait on a job that failed.
    let late =
        json!({"kind": "train", "dataset": "junk", "features": extract, "allow_leaks": true});
    let (status, error) = app.post_json("/v1/jobs", late).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (409, Some("features")),
        "{error}"
    );
    // Unknown ids: 404 naming the field.
    let unknown = uuid::Uuid::new_v4();
    let body = json!({"kind": "evaluate", "dataset": "tiny", "model": unknown});
    let (status, error) = app.post_json("/v1/jobs", body).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (404, Some("model")),
        "{error}"
    );
    let body = json!({"steps": [{"name": "score", "kind": "evaluate", "dataset": "tiny", "model": unknown}]});
    let (status, error) = app.post_json("/v1/pipelines", body).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (404, Some("steps.score.model")),
        "{error}"
    );
    // A cycle: 400, and nothing queued.
    let cycle = json!({"steps": [
        {"name": "a", "kind": "fine_tune", "dataset": "tiny", "from_model": "b"},
        {"name": "b", "kind": "fine_tune", "dataset": "tiny", "from_model": "a"},
    ]});
    let before = app.get_json("/v1/jobs").await.1.as_array().unwrap().len();
    let (status, error) = app.post_json("/v1/pipelines", cycle).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("steps")),
        "{error}"
    );
    assert!(
        error["error"].as_str().unwrap().contains("cycle"),
        "{error}"
    );
    // A later step that cannot run refuses the whole pipeline: its first step is not queued.
    let body = json!({"recipe": 1, "dataset": "tiny", "overrides": {"train": {"epochs": 0}}});
    let (status, error) = app.post_json("/v1/pipelines", body).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("overrides.train.epochs")),
        "{error}"
    );
    assert_eq!(
        app.get_json("/v1/jobs").await.1.as_array().unwrap().len(),
        before
    );
}

#[tokio::test]
async fn cancelling_fails_only_what_waits_and_a_waiting_job_survives_kill_9() {
    let mut app = spawn_app().await;
    // kill -9 while a job waits on a running one: after restart both run to the end.
    let slow = json!({"kind": "extract_features", "dataset": "tiny", "batch_size": 1});
    let extract = app.queue(slow).await;
    let train = app
        .queue(json!({"kind": "train", "dataset": "tiny", "features": extract, "epochs": 2}))
        .await;
    let job = app.job(&train).await;
    assert_eq!(
        (job["status"].as_str(), &job["depends_on"]),
        (Some("waiting"), &json!([extract]))
    );
    app.wait_until(&extract, LIMIT, |j| j["status"] == "running")
        .await;
    app.crash_and_restart();
    assert_eq!(app.job(&train).await["status"], "waiting");
    assert_eq!(app.wait_for(&extract, LIMIT).await["status"], "succeeded");
    let trained = app.wait_for(&train, LIMIT).await;
    assert_eq!(trained["status"], "succeeded", "{trained}");
    assert_eq!(trained["epochs"].as_array().unwrap().len(), 2);

    // A long training on those features, and a chain waiting on it.
    let long = json!({"kind": "train", "dataset": "tiny", "features": extract, "epochs": 1000});
    let running = app.queue(long).await;
    let fine_tune = app
        .queue(json!({"kind": "fine_tune", "dataset": "tiny", "from_model": running, "augment": false}))
        .await;
    let evaluate = app
        .queue(json!({"kind": "evaluate", "dataset": "tiny", "model": fine_tune}))
        .await;
    let direct = app
        .queue(json!({"kind": "evaluate", "dataset": "tiny", "model": running}))
        .await;
    let other = app
        .queue(json!({"kind": "extract_features", "dataset": "tiny", "image_size": 48}))
        .await;

    // Cancel the waiting middle: what it waits on runs on, what waits on it fails.
    let (status, cancelled) = app
        .post_json(&format!("/v1/jobs/{fine_tune}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled"))
    );
    let evaluated = app.job(&evaluate).await;
    assert_eq!(evaluated["status"], "failed");
    let reason = evaluated["error"].as_str().unwrap();
    assert!(
        reason.contains(&fine_tune) && reason.ends_with("was cancelled"),
        "{reason}"
    );
    assert_eq!(app.job(&direct).await["status"], "waiting");

    // Cancel the running dependency: what waits on it fails; the unrelated job runs on.
    app.wait_until(&running, LIMIT, |j| j["status"] == "running")
        .await;
    let (status, _) = app
        .post_json(&format!("/v1/jobs/{running}/cancel"), json!({}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(app.wait_for(&running, LIMIT).await["status"], "cancelled");
    let failed = app.wait_for(&direct, LIMIT).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains(&running),
        "{failed}"
    );
    assert_eq!(app.wait_for(&other, LIMIT).await["status"], "succeeded");
}

//! Liveness, readiness and the API document.

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_readiness_and_openapi_answer() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["model"]["preprocessing"], "rgb01");
    assert_eq!(body["model"]["weights_sha256"].as_str().unwrap().len(), 64);
    let (status, body) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    // Every operation of the hand-written document it replaced is still described.
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/v1/datasets", "get"),
        ("/v1/cache", "get"),
        ("/v1/cache", "delete"),
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/defaults", "get"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}/cancel", "post"),
        ("/v1/jobs/{id}/events", "get"),
        ("/v1/models", "get"),
        ("/v1/models/{id}", "get"),
        ("/v1/models/{id}", "delete"),
        ("/v1/models/{id}/default", "put"),
        ("/v1/predict", "post"),
        ("/predict", "post"),
    ] {
        assert!(
            body["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
    // The ranges the server enforces are the ones its document states.
    let (_, defaults) = app.get_json("/v1/jobs/defaults").await;
    let train = &body["components"]["schemas"]["TrainRequest"]["properties"];
    for field in ["epochs", "batch_size", "image_size", "steps_per_epoch"] {
        assert_eq!(
            train[field]["maximum"].as_f64(),
            defaults["limits"][field]["maximum"].as_f64(),
            "{field}"
        );
    }
    assert_eq!(defaults["defaults"]["train_augmented"]["epochs"], 30);
    let (status, body) = app.get_json("/v1/datasets").await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["name"], "tiny");
    assert_eq!(
        body[0]["splits"]["train"]["classes"],
        serde_json::json!(["cats", "dogs"])
    );
    assert_eq!(body[0]["splits"]["train"]["images"], 20);
}

/// `--conv-precision auto`: /readyz says what was measured and chosen, the choice follows
/// from the measurement (bf16 or int8 only when within their tolerance of f32's features and
/// faster),
/// and a restart on the same data dir reuses it rather than measuring again.
#[tokio::test]
async fn auto_precision_is_measured_once_and_reported() {
    let mut app = spawn_app_with(&["--conv-precision", "auto"]).await;
    let (_, ready) = app.get_json("/readyz").await;
    let choice = ready["model"]["conv_precision_choice"].clone();
    assert_eq!(choice["cached"], false, "{choice}");
    assert_eq!(ready["model"]["conv_precision"], choice["chosen"]);
    let rate = |p: &str| choice["rates"][p].as_f64().unwrap();
    let error = |p: &str| choice["errors"][p].as_f64().unwrap();
    assert!(
        rate("f32") > 0.0 && rate("bf16") > 0.0 && rate("int8") > 0.0,
        "{choice}"
    );
    assert_eq!(error("f32"), 0.0);
    // bf16 rounding and int8 quantisation move the features a little, never by nothing or
    // by a lot.
    assert!(error("bf16") > 0.0 && error("bf16") < 0.02, "{choice}");
    assert!(error("int8") > 0.0 && error("int8") < 0.05, "{choice}");
    // The fastest of those at least 5% faster than f32, else f32.
    let winner = ["bf16", "int8"]
        .into_iter()
        .filter(|p| rate(p) >= 1.05 * rate("f32"))
        .max_by(|a, b| rate(a).total_cmp(&rate(b)))
        .unwrap_or("f32");
    assert_eq!(choice["chosen"], winner, "{choice}");
    let key = choice["key"].as_str().unwrap();
    assert!(
        key.starts_with("cpu ") && key.contains("| libtorch "),
        "{key}"
    );
    assert!(
        !key.contains("libtorch unknown"),
        "the build records LibTorch's version: {key}"
    );

    app.crash_and_restart();
    let (_, again) = app.get_json("/readyz").await;
    let kept = &again["model"]["conv_precision_choice"];
    assert_eq!(kept["cached"], true, "{kept}");
    assert_eq!(
        (&kept["chosen"], &kept["rates"]),
        (&choice["chosen"], &choice["rates"])
    );
    let files = std::fs::read_dir(app.root.path().join("data/precision"))
        .unwrap()
        .count();
    assert_eq!(files, 1);
}

//! Liveness, readiness and the API document.

use crate::helpers::spawn_app;

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

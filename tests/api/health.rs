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
    assert!(body["paths"]["/v1/jobs"]["post"].is_object());
    let (status, body) = app.get_json("/v1/datasets").await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["name"], "tiny");
    assert_eq!(
        body[0]["splits"]["train"]["classes"],
        serde_json::json!(["cats", "dogs"])
    );
    assert_eq!(body[0]["splits"]["train"]["images"], 20);
}

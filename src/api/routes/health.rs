//! `GET /healthz` (the process is up) and `GET /readyz` (weights loaded, store and artifact
//! store usable).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::api::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to serve: the weights are loaded (before the server binds) and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready, with the loaded base's description", body = Object),
        (status = 503, description = "The store does not answer", body = Object),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if let Err(error) = state.artifacts.ping().await {
        tracing::error!(
            error = format!("{error:#}"),
            "readiness: artifact store unusable"
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "artifacts": "unavailable"})),
        );
    }
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": "ok", "model": *state.model_info})),
        ),
        Err(error) => {
            tracing::error!(%error, "readiness: database unusable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not ready", "database": "unavailable"})),
            )
        }
    }
}

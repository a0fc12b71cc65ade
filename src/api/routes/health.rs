//! `GET /healthz` (the process is up) and `GET /readyz` (weights loaded, database usable).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::api::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    // Weights are loaded before the server binds; the database is checked live.
    match sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&state.pool)
        .await
    {
        Ok(_) => (
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

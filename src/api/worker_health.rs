//! The only HTTP a `vggserve worker` serves, on its own port: `/healthz` (up), `/readyz`
//! (the store answers; which worker this is and what it takes) and `/metrics` (its job and
//! epoch durations). No job, model or dataset route: those are the API replicas'.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};

use crate::store::SharedStore;

#[derive(Clone)]
struct WorkerState {
    store: SharedStore,
    metrics: PrometheusHandle,
    /// Who this worker is (owner, kinds, lease) and the loaded base, for `/readyz`.
    info: Arc<Value>,
}

pub fn router(store: SharedStore, metrics: PrometheusHandle, info: Value) -> Router {
    let state = WorkerState {
        store,
        metrics,
        info: Arc::new(info),
    };
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render))
        .with_state(state)
}

async fn readyz(State(state): State<WorkerState>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": "ok", "worker": *state.info})),
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

async fn render(State(state): State<WorkerState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}

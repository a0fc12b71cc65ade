//! The HTTP layer: routes, errors and shared state. It never touches tensors: it validates,
//! talks to the store, and hands work to the worker (jobs) or the predictor (inference).

pub mod error;
pub mod routes;
pub mod state;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route, with the layers that bound and trace requests.
pub fn build_router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_mb * 1024 * 1024;
    let static_dir = state.static_dir.clone();
    let api = Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/openapi.json", get(routes::openapi::openapi))
        .route("/v1/datasets", get(routes::datasets::list))
        .route(
            "/v1/cache",
            get(routes::cache::stats).delete(routes::cache::clear),
        )
        .route(
            "/v1/jobs",
            post(routes::jobs::create).get(routes::jobs::list),
        )
        .route("/v1/jobs/{id}", get(routes::jobs::get))
        .route("/v1/jobs/{id}/cancel", post(routes::jobs::cancel))
        .route("/v1/jobs/{id}/events", get(routes::events::stream))
        .route("/v1/models", get(routes::models::list))
        .route(
            "/v1/models/{id}",
            get(routes::models::get).delete(routes::models::delete),
        )
        .route("/v1/models/{id}/default", put(routes::models::set_default))
        // The design card names `/predict`; `/v1/predict` is the versioned twin.
        .route("/v1/predict", post(routes::predict::predict))
        .route("/predict", post(routes::predict::predict))
        .fallback(routes::not_found);
    Router::new()
        .merge(api)
        .fallback_service(ServeDir::new(static_dir).fallback(axum::routing::any(routes::not_found)))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(120),
        ))
        .with_state(state)
}

//! The HTTP layer: routes, errors, authentication, metrics and shared state. It never
//! touches tensors: it validates, talks to the store, and hands work to the worker (jobs)
//! or the predictor (inference).

pub mod auth;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod state;
pub mod timeout;
pub mod upload;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware;
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::configuration::ApiToken;
pub use error::ApiError;
pub use state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route, with the layers that bound, authenticate and trace requests.
pub fn build_router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_mb * 1024 * 1024;
    let deadline = Duration::from_secs(state.settings.request_timeout_secs);
    let static_dir = state.static_dir.clone();
    // Open whatever the token: probes, scrapers and the API document need no credentials.
    let open = Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/openapi.json", get(routes::openapi::openapi))
        .route("/metrics", get(metrics::render));
    let api = Router::new()
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
        .route("/v1/models", get(routes::models::list))
        .route(
            "/v1/models/{id}",
            get(routes::models::get).delete(routes::models::delete),
        )
        .route("/v1/models/{id}/default", put(routes::models::set_default));
    // Apart because it alone also takes the token as `?access_token=` (EventSource).
    let events = Router::new().route("/v1/jobs/{id}/events", get(routes::events::stream));
    // The design card names `/predict`; `/v1/predict` is the versioned twin.
    let predict = Router::new()
        .route("/v1/predict", post(routes::predict::predict))
        .route("/predict", post(routes::predict::predict));
    let token = state.settings.api_token.as_ref().map(ApiToken::expose);
    let (api, events, predict) = match token {
        None => (api, events, predict),
        Some(token) => {
            // `route_layer`: only matched routes are guarded, so an unknown path is still
            // the static fallback's 404, and the static dashboard (the fallback) stays open.
            let guard = |router: Router<AppState>, check: auth::TokenCheck| {
                router.route_layer(middleware::from_fn_with_state(check, auth::require_token))
            };
            let header = auth::TokenCheck::header_only(token);
            let predict = if state.settings.open_predict {
                predict
            } else {
                guard(predict, header.clone())
            };
            (
                guard(api, header),
                guard(events, auth::TokenCheck::header_or_query(token)),
                predict,
            )
        }
    };
    Router::new()
        .merge(open)
        .merge(api)
        .merge(events)
        .merge(predict)
        .fallback_service(ServeDir::new(static_dir).fallback(axum::routing::any(routes::not_found)))
        // Inside the metrics layer, so that timed-out requests are counted as 408s.
        .layer(middleware::from_fn_with_state(deadline, timeout::limit))
        // After the routes and the fallback, so it wraps them all (and sees `MatchedPath`).
        .layer(middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The URI as logged never carries an `access_token`.
                let uri = auth::redacted_uri(request.uri());
                tracing::info_span!("request", method = %request.method(), uri = %uri, request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

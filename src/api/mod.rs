//! The HTTP layer: routes, errors, authentication, metrics and shared state. It never
//! touches tensors: it validates, talks to the store, and hands work to the worker (jobs)
//! or the predictor (inference). The API document is generated with the router.

pub mod auth;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod routes;
pub mod sse_limits;
pub mod state;
pub mod timeout;
pub mod upload;
pub mod worker_health;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware;
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::configuration::ApiToken;
pub use error::{ApiError, ErrorBody};
pub use state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route, with the layers that bound, authenticate and trace requests.
pub fn build_router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_mb * 1024 * 1024;
    let deadline = Duration::from_secs(state.settings.request_timeout_secs);
    let static_dir = state.static_dir.clone();
    let (router, document) = routes_and_document(state.settings.max_dataset_mb * 1024 * 1024);
    let document = std::sync::Arc::new(document);
    let (open, api, events, predict) = router;
    // Open whatever the token: probes, scrapers and the API document need no credentials.
    let open = open
        .route(
            "/openapi.json",
            get(move || async move { Json(document.as_ref().clone()) }),
        )
        .route("/metrics", get(metrics::render));
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
            })
            // One line per answered request (status, latency), in the request's span.
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// The router's four groups (open, API, events, predict), each guarded its own way in
/// [`build_router`], and the API document generated from their handlers. Dataset uploads
/// get their own body limit, `max_dataset_bytes`, in place of the router's.
type Groups = (
    Router<AppState>,
    Router<AppState>,
    Router<AppState>,
    Router<AppState>,
);

pub fn routes_and_document(max_dataset_bytes: usize) -> (Groups, utoipa::openapi::OpenApi) {
    use routes::{
        cache, dataset_report, datasets, events, health, jobs, model_export, model_import, models,
        pipelines, predict, thumbnails,
    };
    let (open, mut document) = OpenApiRouter::with_openapi(routes::openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .split_for_parts();
    let (api, api_doc) = OpenApiRouter::new()
        .routes(
            routes!(datasets::list, datasets::create)
                .layer(DefaultBodyLimit::max(max_dataset_bytes)),
        )
        .routes(routes!(dataset_report::get, datasets::delete))
        .routes(routes!(thumbnails::thumbnail))
        .routes(routes!(cache::stats, cache::clear))
        .routes(routes!(jobs::create, jobs::list))
        .routes(routes!(jobs::defaults))
        .routes(routes!(jobs::get))
        .routes(routes!(jobs::cancel))
        .routes(routes!(pipelines::create, pipelines::list))
        .routes(routes!(pipelines::get))
        // A model file is as large as a dataset may be.
        .routes(
            routes!(models::list, model_import::import)
                .layer(DefaultBodyLimit::max(max_dataset_bytes)),
        )
        .routes(routes!(model_export::export))
        .routes(routes!(models::get, models::delete))
        .routes(routes!(models::set_default))
        .split_for_parts();
    // Apart because it alone also takes the token as `?access_token=` (EventSource).
    let (events, events_doc) = OpenApiRouter::new()
        .routes(routes!(events::stream))
        .routes(routes!(pipelines::stream))
        .split_for_parts();
    // The design card names `/predict`; `/v1/predict` is the versioned twin.
    let (predict, predict_doc) = OpenApiRouter::new()
        .routes(routes!(predict::predict))
        .route("/predict", post(predict::predict))
        .split_for_parts();
    for part in [api_doc, events_doc, predict_doc] {
        document.merge(part);
    }
    routes::openapi::complete(&mut document);
    ((open, api, events, predict), document)
}

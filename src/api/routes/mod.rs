//! One file per endpoint group.

pub mod cache;
pub mod dataset_checks;
pub mod dataset_report;
pub mod datasets;
pub mod events;
pub mod explain;
pub mod health;
pub mod jobs;
pub mod model_export;
pub mod model_import;
pub mod models;
pub mod openapi;
pub mod pipelines;
pub mod predict;
pub mod references;
pub mod thumbnails;

use super::ApiError;

/// JSON 404 for unknown routes, so clients always get the same error shape.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

//! `/v1/cache`: how much the feature cache holds (`GET`), and emptying it (`DELETE`).

use axum::extract::State;
use axum::Json;

use crate::api::{ApiError, AppState};
use crate::train::feature_cache::{self, CacheStats};

pub async fn stats(State(state): State<AppState>) -> Result<Json<CacheStats>, ApiError> {
    let dir = state.settings.data_dir.clone();
    let stats = tokio::task::spawn_blocking(move || feature_cache::stats(&dir))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(stats))
}

/// Entries being written by a running job may survive; they are complete and valid.
pub async fn clear(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let dir = state.settings.data_dir.clone();
    let removed = tokio::task::spawn_blocking(move || feature_cache::clear(&dir))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({"removed": removed})))
}

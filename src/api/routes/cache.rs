//! `/v1/cache`: how much the feature cache holds (`GET`), and emptying it (`DELETE`).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::{ApiError, AppState};
use crate::train::feature_cache::{self, CacheStats};

/// Entries and bytes in the feature cache.
#[utoipa::path(get, path = "/v1/cache", tag = "cache",
    responses((status = 200, description = "Cache size", body = CacheStats)))]
pub async fn stats(State(state): State<AppState>) -> Result<Json<CacheStats>, ApiError> {
    let dir = state.settings.storage.data_dir.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || feature_cache::stats(&dir)).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Cleared {
    /// What was removed.
    removed: CacheStats,
}

/// Empty the feature cache. Entries a running job is writing may survive; they are valid.
#[utoipa::path(delete, path = "/v1/cache", tag = "cache",
    responses((status = 200, description = "Emptied", body = Cleared)))]
#[tracing::instrument(skip_all)]
pub async fn clear(State(state): State<AppState>) -> Result<Json<Cleared>, ApiError> {
    let dir = state.settings.storage.data_dir.clone();
    let removed = tokio::task::spawn_blocking(move || feature_cache::clear(&dir)).await??;
    Ok(Json(Cleared { removed }))
}

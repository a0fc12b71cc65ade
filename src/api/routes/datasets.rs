//! `GET /v1/datasets`: the datasets found under the datasets dir, with splits and classes.

use axum::extract::State;
use axum::Json;

use crate::api::{ApiError, AppState};
use crate::data::dataset::{self, Dataset};

/// Datasets under the datasets dir: their splits, classes and image counts.
#[utoipa::path(get, path = "/v1/datasets", tag = "datasets",
    responses((status = 200, description = "Datasets, by name", body = Vec<Dataset>)))]
#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Dataset>>, ApiError> {
    let dir = state.settings.datasets_dir.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || dataset::list(&dir)).await?,
    ))
}

//! `GET /v1/datasets`: the datasets found under the datasets dir, with splits and classes.

use axum::extract::State;
use axum::Json;

use crate::api::{ApiError, AppState};
use crate::data::dataset::{self, Dataset};

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Dataset>>, ApiError> {
    let dir = state.settings.datasets_dir.clone();
    let datasets = tokio::task::spawn_blocking(move || dataset::list(&dir))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(datasets))
}

//! `/v1/models`: list, show, mark default, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::api::{ApiError, AppState};
use crate::store::{models, ModelRecord};

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ModelRecord>>, ApiError> {
    Ok(Json(models::list(&state.pool).await?))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelRecord>, ApiError> {
    let id = ApiError::parse_id(&id, "model")?;
    models::get(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field("id"))
}

pub async fn set_default(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelRecord>, ApiError> {
    let id = ApiError::parse_id(&id, "model")?;
    if !models::set_default(&state.pool, id).await? {
        return Err(ApiError::not_found(format!("model {id} not found")).field("id"));
    }
    get(State(state), Path(id.to_string())).await
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ApiError::parse_id(&id, "model")?;
    let model = models::delete(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field("id"))?;
    // The record is gone first: nothing can load the files while they are removed.
    if let Some(dir) = state.settings.data_dir.join(&model.artifact).parent() {
        if let Err(error) = tokio::fs::remove_dir_all(dir).await {
            tracing::warn!(%error, dir = %dir.display(), "could not remove model files");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

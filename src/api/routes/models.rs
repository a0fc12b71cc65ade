//! `/v1/models`: list, show, mark default, delete (import and export have their own files).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::api::extract::PathId;
use crate::api::{ApiError, AppState, ErrorBody};
use crate::domain::ModelRecord;

/// Trained models, newest first.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, description = "Models, newest first", body = Vec<ModelRecord>)))]
#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ModelRecord>>, ApiError> {
    Ok(Json(state.store.models().await?))
}

/// One model.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "models",
    params(("id" = uuid::Uuid, Path, description = "Model id")),
    responses(
        (status = 200, description = "The model", body = ModelRecord),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(model = %id))]
pub async fn get(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<ModelRecord>, ApiError> {
    found(state.store.model(id).await?, id)
}

fn found(model: Option<ModelRecord>, id: uuid::Uuid) -> Result<Json<ModelRecord>, ApiError> {
    model
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field("id"))
}

/// Make a model the one `/predict` uses without `?model=`.
#[utoipa::path(put, path = "/v1/models/{id}/default", tag = "models",
    params(("id" = uuid::Uuid, Path, description = "Model id")),
    responses(
        (status = 200, description = "The model, now default", body = ModelRecord),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(model = %id))]
pub async fn set_default(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<ModelRecord>, ApiError> {
    if !state.store.set_default_model(id).await? {
        return Err(ApiError::not_found(format!("model {id} not found")).field("id"));
    }
    found(state.store.model(id).await?, id)
}

/// Delete a model and its files.
#[utoipa::path(delete, path = "/v1/models/{id}", tag = "models",
    params(("id" = uuid::Uuid, Path, description = "Model id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(model = %id))]
pub async fn delete(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    let model = state
        .store
        .delete_model(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field("id"))?;
    // The record is gone first: nothing can load the files while they are removed.
    if let Some(dir) = state
        .settings
        .storage
        .data_dir
        .join(&model.artifact)
        .parent()
    {
        if let Err(error) = tokio::fs::remove_dir_all(dir).await {
            tracing::warn!(%error, dir = %dir.display(), "could not remove model files");
        }
    }
    let exports = state
        .settings
        .storage
        .data_dir
        .join(super::model_export::exports_folder(id));
    if exports.exists() {
        if let Err(error) = tokio::fs::remove_dir_all(&exports).await {
            tracing::warn!(%error, "could not remove the model's exports");
        }
    }
    let folder = crate::model::saved::model_folder(id);
    if let Err(error) = state.artifacts.remove(&folder).await {
        tracing::warn!(%error, "could not remove the model's published files");
    }
    Ok(StatusCode::NO_CONTENT)
}

//! `GET /v1/datasets/{name}/thumbnail?file=…`: a small JPEG of one photo of a dataset, for
//! the dashboard (class previews, misclassified photos). Only the dataset's own photos.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::extract::QueryParams;
use crate::api::{ApiError, AppState, ErrorBody};
use crate::data::dataset::DatasetError;
use crate::data::thumbnail::{render, ThumbnailError};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailQuery {
    /// The photo, relative to the dataset's folder (`test/cats/cat.1500.jpg`), as
    /// evaluations name it.
    file: String,
    /// Largest side in pixels (16 to 512; default 160).
    #[param(minimum = 16, maximum = 512)]
    size: Option<u32>,
}

/// A JPEG preview of one of a dataset's photos.
#[utoipa::path(get, path = "/v1/datasets/{name}/thumbnail", tag = "datasets",
    params(("name" = String, Path, description = "Dataset name"), ThumbnailQuery),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg", body = Vec<u8>),
        (status = 400, description = "Bad dataset name, size or query", body = ErrorBody),
        (status = 404, description = "No such dataset, or not one of its photos", body = ErrorBody),
        (status = 503, description = "The database or artifact store holding an uploaded dataset does not answer", body = ErrorBody),
        (status = 422, description = "The photo cannot be read", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(dataset = %name))]
pub async fn thumbnail(
    State(state): State<AppState>,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<ThumbnailQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let dir = state
        .catalog
        .folder(&name)
        .await
        .map_err(ApiError::unavailable)?;
    let max_pixels = state.settings.max_pixels;
    let size = query.size.unwrap_or(160);
    let file = query.file;
    let jpeg = tokio::task::spawn_blocking(move || render(&dir, &name, &file, size, max_pixels))
        .await?
        .map_err(|error| match error {
            ThumbnailError::Dataset(DatasetError::NotFound(_)) => {
                ApiError::not_found(error.to_string()).field("name")
            }
            ThumbnailError::Dataset(DatasetError::Io { .. }) | ThumbnailError::Encode(_) => {
                ApiError::internal(error)
            }
            ThumbnailError::Dataset(_) => ApiError::bad_request(error.to_string()).field("name"),
            ThumbnailError::NotInDataset { .. } => {
                ApiError::not_found(error.to_string()).field("file")
            }
            ThumbnailError::Size(_) => ApiError::bad_request(error.to_string()).field("size"),
            ThumbnailError::Unreadable { .. } | ThumbnailError::Decode { .. } => {
                ApiError::unprocessable(error.to_string()).field("file")
            }
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        jpeg,
    ))
}

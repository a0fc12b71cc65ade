//! `GET /v1/models/{id}/export?format=onnx|safetensors`: a trained model as a file other
//! tools run (docs/EXPORT.md). Each export is built once per model file and format, kept
//! under `exports/<model>/` beside its SHA-256 (the `ETag`), and streamed from disk;
//! `If-None-Match` with that tag is a 304. Deleting the model deletes its exports.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::{PathId, QueryParams};
use crate::api::{ApiError, AppState, ErrorBody};
use crate::domain::ModelRecord;
use crate::model::onnx::to_onnx;
use crate::model::portable::{ExportError, Portable, FORMAT_VERSION};
use crate::model::saved::file_sha256;
use crate::model::{ModelConfig, WeightSet};

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, strum::Display, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ExportFormat {
    /// The whole classifier as an ONNX graph (opset 17), probabilities out.
    Onnx,
    /// Conv base in torchvision's names plus the head, with the metadata.
    Safetensors,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `onnx` or `safetensors`.
    #[param(value_type = ExportFormat, inline)]
    format: String,
}

/// Download a model as ONNX or safetensors.
#[utoipa::path(get, path = "/v1/models/{id}/export", tag = "models",
    params(("id" = uuid::Uuid, Path, description = "Model id"), ExportQuery),
    responses(
        (status = 200, description = "The model file, streamed", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("ETag" = String, description = "SHA-256 of the file"),
                    ("Content-Disposition" = String, description = "attachment; filename=…"))),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 400, description = "Unknown format, or the id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 409, description = "The model was trained on other base weights than this server's", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(model = %id))]
pub async fn export(
    State(state): State<AppState>,
    PathId(id): PathId,
    QueryParams(query): QueryParams<ExportQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format: ExportFormat = query.format.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "format {:?} is not onnx or safetensors",
            query.format
        ))
        .field("format")
    })?;
    let model = state
        .store
        .model(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field("id"))?;
    let folder = crate::model::saved::model_folder(id);
    let _held = state
        .artifacts
        .fetch_model(&folder)
        .await?
        .ok_or_else(|| anyhow::anyhow!("model {id} is registered but its files are missing"))?;
    let data_dir = state.settings.storage.data_dir.clone();
    let weights = state.settings.base.weights.clone();
    let (path, sha) =
        tokio::task::spawn_blocking(move || exported(&data_dir, &weights, &model, format))
            .await?
            .map_err(|e| match e {
                ExportError::OtherBase { .. } => ApiError::conflict(e.to_string()).field("id"),
                ExportError::Read(e) => ApiError::internal(format!("{e:#}")),
            })?;
    let etag = HeaderValue::from_str(&format!("\"{sha}\"")).map_err(ApiError::internal)?;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        // Weak comparison, as If-None-Match asks: `W/"…"` matches the same tag.
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    let length = file.metadata().await.map_err(ApiError::internal)?.len();
    let name = format!("vggserve-{id}.{format}");
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(length)),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                .map_err(ApiError::internal)?,
        ),
        (header::ETAG, etag),
    ];
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((headers, body).into_response())
}

/// Where a model's exports are kept, relative to the data dir.
pub fn exports_folder(id: uuid::Uuid) -> PathBuf {
    PathBuf::from("exports").join(id.to_string())
}

/// The export file (built now unless kept from before) and its SHA-256.
fn exported(
    data_dir: &Path,
    weights: &Path,
    model: &ModelRecord,
    format: ExportFormat,
) -> Result<(PathBuf, String), ExportError> {
    // Named by the model file's hash: a model never changes, but this keeps a stale
    // export from being served if one ever did.
    let stem = format!(
        "{}-v{FORMAT_VERSION}",
        &model.artifact_sha256.get(..16).unwrap_or("0")
    );
    let dir = data_dir.join(exports_folder(model.id));
    let path = dir.join(format!("{stem}.{format}"));
    let sha_path = dir.join(format!("{stem}.{format}.sha256"));
    if let (true, Ok(sha)) = (path.exists(), std::fs::read_to_string(&sha_path)) {
        return Ok((path, sha));
    }
    let config: ModelConfig = serde_json::from_value(model.config.clone())
        .map_err(|e| anyhow::anyhow!("model {} has an unreadable config: {e}", model.id))?;
    // Only a model whose base was not trained needs the server's base weights.
    let base = if config.includes_base {
        None
    } else {
        Some(WeightSet::load(weights, None).map_err(anyhow::Error::from)?)
    };
    let portable = Portable::from_saved(
        model,
        &config,
        &data_dir.join(&model.artifact),
        base.as_ref(),
    )?;
    std::fs::create_dir_all(&dir).map_err(anyhow::Error::from)?;
    match format {
        ExportFormat::Safetensors => portable.write_safetensors(&path)?,
        ExportFormat::Onnx => write_atomically(&path, &to_onnx(&portable)?)?,
    }
    let sha = file_sha256(&path)?;
    write_atomically(&sha_path, sha.as_bytes())?;
    Ok((path, sha))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no folder", path.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}

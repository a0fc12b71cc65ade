//! `POST /v1/models`: register a model exported as safetensors by this or another vggserve
//! (docs/EXPORT.md), so a model can move between deployments. The file is checked tensor
//! by tensor before anything is written; its files are written and published before the
//! record is inserted, and removed again if that fails, so nothing half-imported remains.
//! A conv base equal to this server's is not stored again: the model keeps only its head,
//! as a model trained here would.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use uuid::Uuid;

use crate::api::{ApiError, AppState, ErrorBody};
use crate::domain::ModelRecord;
use crate::model::portable::Portable;
use crate::model::saved::model_folder;
use crate::model::WeightSet;

static IMPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Register a model from a vggserve safetensors export (the raw file as the body).
#[utoipa::path(post, path = "/v1/models", tag = "models",
    request_body(description = "A file from GET /v1/models/{id}/export?format=safetensors",
        content((Vec<u8> = "application/octet-stream"))),
    responses(
        (status = 201, description = "Registered", body = ModelRecord),
        (status = 400, description = "An empty body", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Sent as a form rather than the raw file", body = ErrorBody),
        (status = 422, description = "Not a vggserve model file, or its tensors, shapes or metadata do not fit", body = ErrorBody),
        (status = 429, description = "Another import is in progress", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    // One import at a time: each holds its file and its tensors in memory.
    let _importing = IMPORTS
        .try_acquire()
        .map_err(|_| ApiError::too_many("another model is being imported; try again shortly"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("multipart/") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the .safetensors file itself as the body (Content-Type: application/octet-stream)",
        )
        .field("body"));
    }
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()).field("body"))?;
    if body.is_empty() {
        return Err(
            ApiError::bad_request("the body is empty: send a .safetensors export").field("body"),
        );
    }
    let id = Uuid::new_v4();
    let data_dir = state.settings.storage.data_dir.clone();
    let weights = state.settings.base.weights.clone();
    let saved = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let portable = Portable::parse(&body)
            .map_err(|e| ApiError::unprocessable(e.to_string()).field("body"))?;
        let base = WeightSet::load(&weights, None).map_err(ApiError::internal)?;
        let mut config = portable.config.clone();
        if portable.base_equals(&base) {
            config.includes_base = false;
            config.weights_sha256 = base.sha256.clone();
        }
        let (artifact, sha) = portable
            .save(&data_dir, id, &config)
            .inspect_err(|_| remove_local(&data_dir, id))
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
        let file_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        Ok((portable, config, artifact, sha, file_sha))
    })
    .await??;
    let (portable, config, artifact, artifact_sha256, file_sha) = saved;
    let mut params = match portable.json("params") {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    params.insert(
        "imported".into(),
        serde_json::json!({
            "model": portable.metadata.get("model_id"),
            "source_job": portable.metadata.get("source_job"),
            "producer": portable.metadata.get("producer"),
            "sha256": file_sha,
        }),
    );
    let record = ModelRecord {
        id,
        recipe: config.recipe.clone(),
        dataset: portable
            .metadata
            .get("dataset")
            .cloned()
            .unwrap_or_default(),
        classes: config.classes.clone(),
        params: params.into(),
        metrics: Some(portable.json("metrics"))
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({})),
        test_metrics: Some(portable.json("test_metrics")).filter(serde_json::Value::is_object),
        source_job: Uuid::nil(),
        created_at: String::new(),
        artifact,
        artifact_sha256,
        config: serde_json::to_value(&config).map_err(ApiError::internal)?,
        is_default: false,
    };
    let folder = model_folder(id);
    let registered = async {
        state.artifacts.publish(&folder).await?;
        state.artifacts.published_model(&folder);
        state.store.insert_model(&record).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = registered {
        remove_local(&state.settings.storage.data_dir, id);
        if let Err(e) = state.artifacts.remove(&folder).await {
            tracing::warn!(error = %e, "could not remove an import's published files");
        }
        return Err(ApiError::internal(format!("{error:#}")));
    }
    let stored = state.store.model(id).await?.unwrap_or(record);
    tracing::info!(model = %id, classes = stored.classes.len(), "model imported");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/models/{id}"))],
        Json(stored),
    ))
}

fn remove_local(data_dir: &std::path::Path, id: Uuid) {
    let dir = data_dir.join(model_folder(id));
    if dir.exists() {
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(%error, dir = %dir.display(), "could not remove an import's files");
        }
    }
}

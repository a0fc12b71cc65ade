//! `/v1/jobs`: queue a job (validated against datasets, jobs and models before it is
//! accepted), list, show, cancel.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{ApiError, AppState};
use crate::data::dataset::{Dataset, DatasetError};
use crate::jobs::spec::{JobKind, JobParams, JobRequest};
use crate::jobs::JobEvent;
use crate::store::jobs::{self as job_store, CancelOutcome, JobStoreError};
use crate::store::{models, Job, JobStatus};
use crate::train::artifacts::ModelConfig;

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the job as JSON (Content-Type: application/json)",
        ));
    }
    let request: JobRequest = serde_json::from_slice(&body).map_err(json_error)?;
    let params = request
        .resolve()
        .map_err(|e| ApiError::unprocessable(e.message).field(e.field))?;
    validate_references(&state, &params).await?;
    let id = Uuid::new_v4();
    let params_json = serde_json::to_value(&params).map_err(ApiError::internal)?;
    let max_queued = i64::from(state.settings.max_queued_jobs);
    let job = job_store::insert(
        &state.pool,
        id,
        params.kind.as_str(),
        Some(&params.dataset),
        &params_json,
        max_queued,
    )
    .await
    .map_err(|e| match e {
        JobStoreError::QueueFull(n) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("the job queue is full ({n} jobs waiting); try again later"),
        ),
        JobStoreError::Database(e) => ApiError::internal(e),
    })?;
    state.worker.notify();
    if let Some(event) = crate::store::events::events_after(&state.pool, id, 0)
        .await?
        .into_iter()
        .next()
    {
        state.hub.publish(JobEvent::from(event));
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/jobs/{id}"))],
        Json(job),
    ))
}

/// serde's message names the problem; pull out the field it concerns when it says.
fn json_error(error: serde_json::Error) -> ApiError {
    let message = error.to_string();
    let field = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| {
            message
                .split_once(prefix)
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(f, _)| f.to_owned())
        })
        .or_else(|| {
            (message.contains("variant") || message.contains("`kind`")).then(|| "kind".to_owned())
        });
    let error = ApiError::bad_request(format!("invalid job: {message}"));
    match field {
        Some(field) => error.field(field),
        None => error,
    }
}

fn dataset_error(error: DatasetError) -> ApiError {
    match error {
        DatasetError::NotFound(_) => ApiError::not_found(error.to_string()).field("dataset"),
        DatasetError::InvalidName(_) | DatasetError::Escapes(_) => {
            ApiError::bad_request(error.to_string()).field("dataset")
        }
        DatasetError::Io { .. } => ApiError::internal(error),
        _ => ApiError::unprocessable(error.to_string()).field("dataset"),
    }
}

/// Everything a job refers to must exist and fit now, so a job that is accepted can run.
async fn validate_references(state: &AppState, params: &JobParams) -> Result<(), ApiError> {
    let dir = state.settings.datasets_dir.clone();
    let name = params.dataset.clone();
    let dataset = tokio::task::spawn_blocking(move || Dataset::open(&dir, &name))
        .await
        .map_err(ApiError::internal)?
        .map_err(dataset_error)?;
    match params.kind {
        JobKind::ExtractFeatures => {
            if dataset.splits.values().all(|s| s.samples.is_empty()) {
                return Err(ApiError::unprocessable(format!(
                    "dataset {:?} has no images in train/, validation/ or test/",
                    dataset.name
                ))
                .field("dataset"));
            }
        }
        JobKind::Train | JobKind::FineTune => {
            for split in ["train", "validation"] {
                dataset.split(split).map_err(dataset_error)?;
            }
            if dataset.classes().len() != 2 {
                return Err(ApiError::unprocessable(format!(
                    "the recipes train a binary classifier: dataset {:?} has {} classes {:?}",
                    dataset.name,
                    dataset.classes().len(),
                    dataset.classes()
                ))
                .field("dataset"));
            }
        }
        JobKind::Evaluate => {
            dataset
                .split(params.split.as_deref().unwrap_or("test"))
                .map_err(dataset_error)?;
        }
    }
    if let Some(features) = params.features {
        let job = job_store::get(&state.pool, features)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("features job {features} not found")).field("features")
            })?;
        if job.kind != JobKind::ExtractFeatures.as_str() {
            return Err(ApiError::unprocessable(format!(
                "job {features} is a {} job, not extract_features",
                job.kind
            ))
            .field("features"));
        }
        if job.status != JobStatus::Succeeded {
            return Err(ApiError::conflict(format!(
                "features job {features} is {}, not succeeded",
                job.status.as_str()
            ))
            .field("features"));
        }
        if job.dataset.as_deref() != Some(params.dataset.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "features job {features} was run on dataset {:?}",
                job.dataset.unwrap_or_default()
            ))
            .field("features"));
        }
    }
    for (field, id) in [("from_model", params.from_model), ("model", params.model)] {
        let Some(id) = id else { continue };
        let model = models::get(&state.pool, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field(field))?;
        let config: ModelConfig =
            serde_json::from_value(model.config).map_err(ApiError::internal)?;
        if params.kind == JobKind::FineTune && config.image_size != params.image_size {
            return Err(ApiError::unprocessable(format!(
                "model {id} takes {0}×{0} images; image_size {1} does not fit its head",
                config.image_size, params.image_size
            ))
            .field("image_size"));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Job>>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status must be queued, running, succeeded, failed or cancelled, got {s:?}"
            ))
            .field("status")
        })?),
    };
    Ok(Json(job_store::list(&state.pool, status).await?))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let id = ApiError::parse_id(&id, "job")?;
    job_store::get(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")).field("id"))
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = ApiError::parse_id(&id, "job")?;
    let status = match job_store::request_cancel(&state.pool, id).await? {
        CancelOutcome::NotFound => {
            return Err(ApiError::not_found(format!("job {id} not found")).field("id"))
        }
        CancelOutcome::AlreadyFinished(status) => {
            return Err(ApiError::conflict(format!(
                "job {id} already ended ({})",
                status.as_str()
            )))
        }
        CancelOutcome::Cancelled(event) => {
            state.hub.publish(event.into());
            StatusCode::OK
        }
        CancelOutcome::Requested => {
            state.worker.cancel(id);
            StatusCode::ACCEPTED
        }
    };
    let job = job_store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("job vanished"))?;
    Ok((status, Json(job)))
}

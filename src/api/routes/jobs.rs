//! `/v1/jobs`: queue a job (validated against datasets, jobs and models before it is
//! accepted), list, show, cancel, and the defaults every kind's parameters take.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::{PathId, QueryParams};
use crate::api::{ApiError, AppState, ErrorBody};
use crate::data::dataset::{Dataset, DatasetError};
use crate::data::report;
use crate::domain::{Job, JobKind, JobStatus};
use crate::jobs::spec::{JobDefaults, JobParams, JobRequest, TrainParams};
use crate::model::ModelConfig;
use crate::store::{CancelOutcome, NewJob, StoreError};
use crate::train::recipes::CLASSES;

/// Queue a job. Every optional parameter defaults to the seed's value.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    request_body = JobRequest,
    responses(
        (status = 202, description = "Queued", body = Job, headers(("location" = String, description = "The job's URL"))),
        (status = 400, description = "Malformed JSON, unknown field or kind", body = ErrorBody),
        (status = 404, description = "The dataset, features job or model does not exist", body = ErrorBody),
        (status = 503, description = "The database or artifact store holding an uploaded dataset does not answer", body = ErrorBody),
        (status = 409, description = "The features job has not succeeded", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A parameter is out of range or does not fit the data, or (train, fine_tune) the dataset's report finds the same photo in two splits or a class without images, and the job does not set allow_leaks", body = ErrorBody),
        (status = 429, description = "The queue is full", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
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
    let job = NewJob {
        id: uuid::Uuid::new_v4(),
        kind: params.kind(),
        dataset: params.dataset().to_owned(),
        params: serde_json::to_value(&params)?,
    };
    let max_queued = i64::from(state.settings.max_queued_jobs);
    let (job, _) = state
        .store
        .insert_job(&job, max_queued)
        .await
        .map_err(|e| match e {
            StoreError::QueueFull(n) => ApiError::too_many(format!(
                "the job queue is full ({n} jobs waiting); try again later"
            )),
            other => ApiError::from(other),
        })?;
    tracing::info!(job = %job.id, kind = %job.kind, "job queued");
    if let Some(worker) = &state.worker {
        worker.notify();
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/jobs/{}", job.id))],
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

/// Everything a job refers to must exist and fit now, so a job that is accepted can run;
/// and a training job's dataset must pass its report (`data::report`) unless it says
/// `allow_leaks`.
async fn validate_references(state: &AppState, params: &JobParams) -> Result<(), ApiError> {
    let name = params.dataset().to_owned();
    let dir = state
        .catalog
        .folder(&name)
        .await
        .map_err(ApiError::unavailable)?;
    let dataset = tokio::task::spawn_blocking(move || Dataset::index(&dir, &name))
        .await?
        .map_err(dataset_error)?;
    let check_report = params.allow_leaks() == Some(false);
    if let Err(error) = dataset.check_classes() {
        // A split without one of the classes: the report names it in its own words.
        if check_report {
            refuse_leaks(state, &dataset).await?;
        }
        return Err(dataset_error(error));
    }
    match params {
        JobParams::ExtractFeatures(_) => {
            if dataset.splits.values().all(|s| s.samples.is_empty()) {
                return Err(ApiError::unprocessable(format!(
                    "dataset {:?} has no images in train/, validation/ or test/",
                    dataset.name
                ))
                .field("dataset"));
            }
        }
        JobParams::Train(_) | JobParams::FineTune(_) => {
            for split in ["train", "validation"] {
                dataset.split(split).map_err(dataset_error)?;
            }
            let classes = dataset.classes();
            if !CLASSES.contains(&classes.len()) {
                return Err(ApiError::unprocessable(format!(
                    "a classifier needs {} to {} classes: dataset {:?} has {} {:?}",
                    CLASSES.start(),
                    CLASSES.end(),
                    dataset.name,
                    classes.len(),
                    classes
                ))
                .field("dataset"));
            }
        }
        JobParams::Evaluate(c) => {
            dataset.split(&c.split).map_err(dataset_error)?;
        }
    }
    let references = match params {
        JobParams::Train(TrainParams::OnFeatures(c)) => {
            check_features_job(state, c.features, &c.dataset).await
        }
        JobParams::FineTune(c) => {
            let config = model_config(state, c.from_model, "from_model").await?;
            if config.image_size != c.image_size {
                return Err(ApiError::unprocessable(format!(
                    "model {} takes {1}×{1} images; image_size {2} does not fit its head",
                    c.from_model, config.image_size, c.image_size
                ))
                .field("image_size"));
            }
            Ok(())
        }
        JobParams::Evaluate(c) => model_config(state, c.model, "model").await.map(|_| ()),
        _ => Ok(()),
    };
    references?;
    // Last: the first report of a dataset reads every image.
    if check_report {
        refuse_leaks(state, &dataset).await?;
    }
    Ok(())
}

/// 422 naming what the dataset's report found that blocks training (the same photo in two
/// splits, a class without images), before any compute.
async fn refuse_leaks(state: &AppState, dataset: &Dataset) -> Result<(), ApiError> {
    let data_dir = state.settings.storage.data_dir.clone();
    let max_pixels = state.settings.max_pixels;
    let name = dataset.name.clone();
    let dataset = dataset.clone();
    let report =
        tokio::task::spawn_blocking(move || report::cached(&dataset, &data_dir, max_pixels))
            .await?
            .report;
    if !report.blocks_training() {
        return Ok(());
    }
    Err(ApiError::unprocessable(format!(
        "dataset {name:?} is not safe to train on: {}. Fix the dataset (GET /v1/datasets/{name} \
         has the full report), or send \"allow_leaks\": true to train anyway",
        report.errors.join("; "),
    ))
    .field("dataset"))
}

async fn check_features_job(
    state: &AppState,
    features: uuid::Uuid,
    dataset: &str,
) -> Result<(), ApiError> {
    let job = state.store.job(features).await?.ok_or_else(|| {
        ApiError::not_found(format!("features job {features} not found")).field("features")
    })?;
    if job.kind != JobKind::ExtractFeatures {
        return Err(ApiError::unprocessable(format!(
            "job {features} is a {} job, not extract_features",
            job.kind
        ))
        .field("features"));
    }
    if job.status != JobStatus::Succeeded {
        return Err(ApiError::conflict(format!(
            "features job {features} is {}, not succeeded",
            job.status
        ))
        .field("features"));
    }
    if job.dataset.as_deref() != Some(dataset) {
        return Err(ApiError::unprocessable(format!(
            "features job {features} was run on dataset {:?}",
            job.dataset.unwrap_or_default()
        ))
        .field("features"));
    }
    Ok(())
}

async fn model_config(
    state: &AppState,
    id: uuid::Uuid,
    field: &str,
) -> Result<ModelConfig, ApiError> {
    let model = state
        .store
        .model(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field(field))?;
    Ok(serde_json::from_value(model.config)?)
}

#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this status.
    #[param(value_type = Option<JobStatus>)]
    status: Option<String>,
}

/// Jobs, newest first (at most 500), with their epochs.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "Jobs, newest first", body = Vec<Job>),
        (status = 400, description = "Unknown status or query parameter", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Vec<Job>>, ApiError> {
    let status = query
        .status
        .map(|s| {
            s.parse::<JobStatus>().map_err(|_| {
                ApiError::bad_request(format!(
                    "status must be queued, running, succeeded, failed or cancelled, got {s:?}"
                ))
                .field("status")
            })
        })
        .transpose()?;
    Ok(Json(state.store.jobs(status).await?))
}

/// One job, with its epochs, progress and result.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(job = %id))]
pub async fn get(State(state): State<AppState>, PathId(id): PathId) -> Result<Json<Job>, ApiError> {
    state
        .store
        .job(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")).field("id"))
}

/// Cancel a job: a queued one at once (200), a running one within a batch (202).
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled (it was queued)", body = Job),
        (status = 202, description = "Cancel requested (it is running)", body = Job),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job already ended", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(job = %id))]
pub async fn cancel(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    let status = match state.store.request_cancel(id).await? {
        CancelOutcome::NotFound => {
            return Err(ApiError::not_found(format!("job {id} not found")).field("id"))
        }
        CancelOutcome::AlreadyFinished(status) => {
            return Err(ApiError::conflict(format!(
                "job {id} already ended ({status})"
            )))
        }
        CancelOutcome::Cancelled(_) => StatusCode::OK,
        CancelOutcome::Requested => {
            // Here at once if this process runs it; elsewhere with the worker's next
            // heartbeat or progress report, which read the flag back.
            if let Some(worker) = &state.worker {
                worker.cancel(id);
            }
            StatusCode::ACCEPTED
        }
    };
    let job = state
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")).field("id"))?;
    Ok((status, Json(job)))
}

/// The default of every optional job parameter, by recipe, and the accepted ranges.
#[utoipa::path(
    get,
    path = "/v1/jobs/defaults",
    tag = "jobs",
    responses((status = 200, description = "Defaults and limits", body = JobDefaults))
)]
pub async fn defaults() -> Json<JobDefaults> {
    Json(JobDefaults::get())
}

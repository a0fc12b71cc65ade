//! `/v1/jobs`: queue a job (checked against datasets, jobs and models before it is
//! accepted: `references`; it waits for the jobs it names that have not finished), list,
//! show, cancel, and the defaults every kind's parameters take.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::references::{self, Planned};
use crate::api::extract::{PathId, QueryParams};
use crate::api::{ApiError, AppState, ErrorBody};
use crate::domain::{Job, JobStatus};
use crate::jobs::spec::{field_of, JobDefaults, JobRequest};
use crate::store::{CancelOutcome, NewJob, StoreError};

/// Queue a job. Every optional parameter defaults to the seed's value. `features`,
/// `from_model` and `model` may name a job that has not finished (for the last two, a
/// `train` or `fine_tune` job: the model it will register): the job is accepted as
/// `waiting`, with `depends_on`, and is queued when they have all succeeded (failed, with
/// the reason, if one fails or is cancelled).
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    request_body = JobRequest,
    responses(
        (status = 202, description = "Queued, or waiting on the jobs it names", body = Job, headers(("location" = String, description = "The job's URL"))),
        (status = 400, description = "Malformed JSON, unknown field or kind", body = ErrorBody),
        (status = 404, description = "The dataset, features job, or model (or job) does not exist", body = ErrorBody),
        (status = 503, description = "The database or artifact store holding an uploaded dataset does not answer", body = ErrorBody),
        (status = 409, description = "A job it names failed or was cancelled", body = ErrorBody),
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
    require_json(&headers)?;
    let request: JobRequest = serde_json::from_slice(&body).map_err(json_error)?;
    let mut params = request
        .resolve()
        .map_err(|e| ApiError::unprocessable(e.message).field(e.field))?;
    let depends_on = references::check(&state, &mut params, &Planned::new()).await?;
    let job = NewJob {
        id: uuid::Uuid::new_v4(),
        kind: params.kind(),
        dataset: params.dataset().to_owned(),
        params: serde_json::to_value(&params)?,
        depends_on,
        step: None,
    };
    let max_queued = i64::from(state.settings.max_queued_jobs);
    let (job, _) = state
        .store
        .insert_job(&job, max_queued)
        .await
        .map_err(queue_error)?;
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

/// 415 unless the body is declared JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "send the request as JSON (Content-Type: application/json)",
    ))
}

/// serde's message names the problem, and often the field it concerns.
fn json_error(error: serde_json::Error) -> ApiError {
    let field = field_of(&error);
    let error = ApiError::bad_request(format!("invalid job: {error}"));
    match field {
        Some(field) => error.field(field),
        None => error,
    }
}

/// The store's refusals of a new job, in the API's words.
pub fn queue_error(error: StoreError) -> ApiError {
    match error {
        StoreError::QueueFull(n) => ApiError::too_many(format!(
            "the job queue is full ({n} jobs waiting); try again later"
        )),
        StoreError::DependencyEnded { field, reason, .. } => {
            ApiError::conflict(reason).field(field)
        }
        other => ApiError::from(other),
    }
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
                    "status must be waiting, queued, running, succeeded, failed or cancelled, \
                     got {s:?}"
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

/// Cancel a job: a waiting or queued one at once (200), a running one within a batch
/// (202). The jobs it waits on are left alone; the jobs waiting on it fail.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled (it was waiting or queued)", body = Job),
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

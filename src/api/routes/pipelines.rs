//! `/v1/pipelines`: queue a chain of jobs with one request (one of the seed's recipes, or
//! the user's own steps: `jobs::pipeline`), each step checked as `POST /v1/jobs` checks a
//! job and all queued together or none; show and list pipelines with their jobs; and one
//! event stream relaying every step's events in order, each naming its step.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::Stream;

use super::events::{open_stream, Subject};
use super::jobs::{queue_error, require_json};
use super::references::{self, Planned};
use crate::api::extract::PathId;
use crate::api::{ApiError, AppState, ErrorBody};
use crate::domain::Pipeline;
use crate::jobs::pipeline::{plan, PipelineRequest};
use crate::jobs::spec::field_of;
use crate::store::{NewJob, NewPipeline, StoreError};

/// Queue a chain of jobs: `{"recipe": 1|2|3, "dataset": …, "overrides": {step: {…}}}`, or
/// `{"steps": [{"name": …, "kind": …, …}, …]}` whose `features`, `from_model` and `model`
/// may name other steps. Each step waits for the steps it names; all are queued or none.
#[utoipa::path(
    post,
    path = "/v1/pipelines",
    tag = "pipelines",
    request_body = PipelineRequest,
    responses(
        (status = 202, description = "Queued: the pipeline with every step's job", body = Pipeline, headers(("location" = String, description = "The pipeline's URL"))),
        (status = 400, description = "Malformed JSON, unknown field, no such recipe or step, or steps that wait on each other in a cycle", body = ErrorBody),
        (status = 404, description = "A dataset, job or model a step names does not exist", body = ErrorBody),
        (status = 409, description = "A job a step names failed or was cancelled", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A step's parameter is out of range or does not fit its data", body = ErrorBody),
        (status = 429, description = "The queue has no room for every step", body = ErrorBody),
        (status = 503, description = "The database or artifact store does not answer", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    require_json(&headers)?;
    let request: PipelineRequest = serde_json::from_slice(&body).map_err(|e| {
        let error = ApiError::bad_request(format!("invalid pipeline: {e}"));
        match field_of(&e).filter(|f| f != "kind") {
            Some(field) => error.field(field),
            None => error,
        }
    })?;
    let (recipe, steps) =
        plan(request).map_err(|e| ApiError::bad_request(e.message).field(e.field))?;
    let mut planned = Planned::new();
    let mut jobs = Vec::with_capacity(steps.len());
    for step in steps {
        let in_step = |error: ApiError| {
            let path = step_path(recipe, &step.name);
            let field = match error.field.clone() {
                Some(field) => format!("{path}.{field}"),
                None => path,
            };
            let message = format!("step {:?}: {}", step.name, error.message);
            ApiError::new(error.status, message).field(field)
        };
        let mut params = step
            .request
            .resolve()
            .map_err(|e| in_step(ApiError::unprocessable(e.message).field(e.field)))?;
        let depends_on = references::check(&state, &mut params, &planned)
            .await
            .map_err(in_step)?;
        jobs.push(NewJob {
            id: step.id,
            kind: params.kind(),
            dataset: params.dataset().to_owned(),
            params: serde_json::to_value(&params)?,
            depends_on,
            step: Some(step.name),
        });
        planned.insert(step.id, params);
    }
    let pipeline = NewPipeline {
        id: uuid::Uuid::new_v4(),
        recipe: recipe.map(i64::from),
    };
    let max_queued = i64::from(state.settings.max_queued_jobs);
    let inserted = state
        .store
        .insert_jobs(&jobs, Some(&pipeline), max_queued)
        .await;
    inserted.map_err(|error| match error {
        // A job a step names ended between the checks above and the insert.
        StoreError::DependencyEnded { job, field, reason } => {
            let step = jobs
                .iter()
                .find(|j| j.id == job)
                .and_then(|j| j.step.clone());
            let step = step.unwrap_or_default();
            ApiError::conflict(format!("step {step:?}: {reason}"))
                .field(format!("{}.{field}", step_path(recipe, &step)))
        }
        other => queue_error(other),
    })?;
    tracing::info!(pipeline = %pipeline.id, steps = jobs.len(), "pipeline queued");
    if let Some(worker) = &state.worker {
        worker.notify();
    }
    let pipeline = found(&state, pipeline.id).await?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/pipelines/{}", pipeline.id))],
        Json(pipeline),
    ))
}

/// Where a step's parameters are in the request: under `overrides` for a recipe's step,
/// else in `steps`.
fn step_path(recipe: Option<u8>, step: &str) -> String {
    match recipe {
        Some(_) => format!("overrides.{step}"),
        None => format!("steps.{step}"),
    }
}

async fn found(state: &AppState, id: uuid::Uuid) -> Result<Pipeline, ApiError> {
    state
        .store
        .pipeline(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pipeline {id} not found")).field("id"))
}

/// Pipelines, newest first (at most 100), with their jobs.
#[utoipa::path(
    get,
    path = "/v1/pipelines",
    tag = "pipelines",
    responses((status = 200, description = "Pipelines, newest first", body = Vec<Pipeline>))
)]
#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Pipeline>>, ApiError> {
    Ok(Json(state.store.pipelines().await?))
}

/// One pipeline, with where it stands and its jobs.
#[utoipa::path(
    get,
    path = "/v1/pipelines/{id}",
    tag = "pipelines",
    params(("id" = uuid::Uuid, Path, description = "Pipeline id")),
    responses(
        (status = 200, description = "The pipeline", body = Pipeline),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such pipeline", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(pipeline = %id))]
pub async fn get(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<Pipeline>, ApiError> {
    Ok(Json(found(&state, id).await?))
}

/// Server-sent events of every step, in the order they were recorded: `status`, `epoch`
/// and `progress` as a job's stream has them, each with `step` and `job` added. It ends
/// after every step's final status.
#[utoipa::path(
    get,
    path = "/v1/pipelines/{id}/events",
    tag = "pipelines",
    params(
        ("id" = uuid::Uuid, Path, description = "Pipeline id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
        ("access_token" = Option<String>, Query, description = "The API token, for EventSource clients that cannot send headers"),
    ),
    responses(
        (status = 200, description = "An event stream that ends after every step's final status", content_type = "text/event-stream", body = super::events::SseEvent),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such pipeline", body = ErrorBody),
        (status = 429, description = "Too many live streams on this pipeline", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(pipeline = %id))]
pub async fn stream(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let pipeline = found(&state, id).await?;
    open_stream(state, id, Subject::pipeline(&pipeline), &headers)
}

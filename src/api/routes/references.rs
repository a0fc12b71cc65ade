//! What a job may refer to, checked before it is queued: its dataset (`dataset_checks`);
//! `features` must name an `extract_features` job on the same dataset, and
//! `from_model`/`model` a model, or a `train`/`fine_tune` job whose model it will be. A named job that has not
//! finished (or a pipeline's earlier step) becomes a [`Dependency`]: the new job waits
//! for it. One that failed or was cancelled never will register anything: 409.

use std::collections::HashMap;

use uuid::Uuid;

use super::dataset_checks;
use crate::api::{ApiError, AppState};
use crate::domain::{Job, JobKind, JobStatus};
use crate::jobs::spec::{JobParams, TrainParams};
use crate::model::ModelConfig;
use crate::store::Dependency;

/// Jobs queued together with the one being checked (a pipeline's other steps), by the
/// ids they will have: they can be named before they exist.
pub type Planned = HashMap<Uuid, JobParams>;

/// What an id in a job's parameters names.
enum Named {
    Planned(JobParams),
    Job(Box<Job>),
    Nothing,
}

/// Check everything `params` refers to. Returns the jobs it must wait for; a model
/// parameter naming a job that has already registered its model is set to that model.
pub async fn check(
    state: &AppState,
    params: &mut JobParams,
    planned: &Planned,
) -> Result<Vec<Dependency>, ApiError> {
    let dataset = dataset_checks::check(state, params).await?;
    let mut depends_on = Vec::new();
    match params {
        JobParams::Train(TrainParams::OnFeatures(c)) => {
            let field = "features";
            if let Some(job) = check_features(state, planned, c.features, &c.dataset).await? {
                depends_on.push(dependency(job, field, false));
            }
        }
        JobParams::FineTune(c) => {
            let (model, size, pending) =
                model_named(state, planned, c.from_model, "from_model").await?;
            if size != c.image_size {
                return Err(ApiError::unprocessable(format!(
                    "model {} takes {1}×{1} images; image_size {2} does not fit its head",
                    c.from_model, size, c.image_size
                ))
                .field("image_size"));
            }
            match pending {
                true => depends_on.push(dependency(c.from_model, "from_model", true)),
                false => c.from_model = model,
            }
        }
        JobParams::Evaluate(c) => {
            let (model, _, pending) = model_named(state, planned, c.model, "model").await?;
            match pending {
                true => depends_on.push(dependency(c.model, "model", true)),
                false => c.model = model,
            }
        }
        _ => {}
    }
    // Last: the first report of a dataset reads every image.
    if params.allow_leaks() == Some(false) {
        dataset_checks::refuse_leaks(state, &dataset).await?;
    }
    Ok(depends_on)
}

fn dependency(job: Uuid, field: &str, takes_model: bool) -> Dependency {
    Dependency {
        job,
        field: field.into(),
        takes_model,
    }
}

async fn lookup(state: &AppState, planned: &Planned, id: Uuid) -> Result<Named, ApiError> {
    if let Some(params) = planned.get(&id) {
        return Ok(Named::Planned(params.clone()));
    }
    Ok(match state.store.job(id).await? {
        Some(job) => Named::Job(Box::new(job)),
        None => Named::Nothing,
    })
}

/// 409 for a job that ended without succeeding: what waits on it could never run.
fn never_finishes(job: &Job, field: &str) -> Option<ApiError> {
    matches!(job.status, JobStatus::Failed | JobStatus::Cancelled).then(|| {
        ApiError::conflict(format!(
            "{} job {} {}; nothing can wait on it",
            job.kind, job.id, job.status
        ))
        .field(field)
    })
}

/// An `extract_features` job on `dataset`: `Some(id)` when it has yet to succeed.
async fn check_features(
    state: &AppState,
    planned: &Planned,
    features: Uuid,
    dataset: &str,
) -> Result<Option<Uuid>, ApiError> {
    let (kind, on, pending) = match lookup(state, planned, features).await? {
        Named::Planned(p) => (p.kind(), p.dataset().to_owned(), true),
        Named::Job(job) => {
            if let Some(error) = never_finishes(&job, "features") {
                return Err(error);
            }
            let on = job.dataset.clone().unwrap_or_default();
            (job.kind, on, job.status != JobStatus::Succeeded)
        }
        Named::Nothing => {
            return Err(
                ApiError::not_found(format!("features job {features} not found")).field("features"),
            )
        }
    };
    if kind != JobKind::ExtractFeatures {
        return Err(ApiError::unprocessable(format!(
            "job {features} is a {kind} job, not extract_features"
        ))
        .field("features"));
    }
    if on != dataset {
        return Err(ApiError::unprocessable(format!(
            "features job {features} was run on dataset {on:?}"
        ))
        .field("features"));
    }
    Ok(pending.then_some(features))
}

/// The model `id` names (a model, or a training job's): its id, the image size it takes,
/// and whether it is still to be registered (then `id` is the job's).
async fn model_named(
    state: &AppState,
    planned: &Planned,
    id: Uuid,
    field: &str,
) -> Result<(Uuid, u32, bool), ApiError> {
    if let Some(model) = state.store.model(id).await? {
        let config: ModelConfig = serde_json::from_value(model.config)?;
        return Ok((id, config.image_size, false));
    }
    let params = match lookup(state, planned, id).await? {
        Named::Planned(params) => params,
        Named::Job(job) => {
            if let Some(error) = never_finishes(&job, field) {
                return Err(error);
            }
            let params: JobParams = serde_json::from_value(job.params.clone())?;
            if job.status == JobStatus::Succeeded {
                let model = job.model_id.ok_or_else(|| {
                    ApiError::conflict(format!("job {id} registered no model")).field(field)
                })?;
                let config = state.store.model(model).await?.ok_or_else(|| {
                    ApiError::not_found(format!("model {model} of job {id} was deleted"))
                        .field(field)
                })?;
                let config: ModelConfig = serde_json::from_value(config.config)?;
                return Ok((model, config.image_size, false));
            }
            params
        }
        Named::Nothing => {
            return Err(ApiError::not_found(format!("no model or job {id}")).field(field))
        }
    };
    let size = match &params {
        JobParams::Train(TrainParams::Augmented(c)) => c.image_size,
        JobParams::FineTune(c) => c.image_size,
        JobParams::Train(TrainParams::OnFeatures(c)) => {
            features_image_size(state, planned, c.features).await?
        }
        other => {
            return Err(ApiError::unprocessable(format!(
                "job {id} is a {} job; it registers no model",
                other.kind()
            ))
            .field(field))
        }
    };
    Ok((id, size, true))
}

/// The image size an `extract_features` job (planned or stored) runs at.
async fn features_image_size(
    state: &AppState,
    planned: &Planned,
    features: Uuid,
) -> Result<u32, ApiError> {
    let params = match lookup(state, planned, features).await? {
        Named::Planned(params) => params,
        Named::Job(job) => serde_json::from_value(job.params.clone())?,
        Named::Nothing => {
            return Err(ApiError::internal(format!(
                "features job {features} vanished"
            )))
        }
    };
    match params {
        JobParams::ExtractFeatures(c) => Ok(c.image_size),
        other => Err(ApiError::internal(format!(
            "job {features} is a {} job, not extract_features",
            other.kind()
        ))),
    }
}

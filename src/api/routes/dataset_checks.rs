//! A job's dataset, checked before the job is queued: it must exist and have what the
//! kind needs (splits, 2 to 100 classes, images), and a training job's must pass its
//! report (no photo in two splits, no class without images) unless it says `allow_leaks`.

use crate::api::{ApiError, AppState};
use crate::data::dataset::{Dataset, DatasetError};
use crate::data::report;
use crate::jobs::spec::JobParams;
use crate::train::recipes::CLASSES;

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

/// The dataset exists and has what the kind needs.
pub async fn check(state: &AppState, params: &JobParams) -> Result<Dataset, ApiError> {
    let name = params.dataset().to_owned();
    let dir = state
        .catalog
        .folder(&name)
        .await
        .map_err(ApiError::unavailable)?;
    let dataset = tokio::task::spawn_blocking(move || Dataset::index(&dir, &name))
        .await?
        .map_err(dataset_error)?;
    if let Err(error) = dataset.check_classes() {
        // A split without one of the classes: the report names it in its own words.
        if params.allow_leaks() == Some(false) {
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
    Ok(dataset)
}

/// 422 naming what the dataset's report found that blocks training (the same photo in two
/// splits, a class without images), before any compute.
pub async fn refuse_leaks(state: &AppState, dataset: &Dataset) -> Result<(), ApiError> {
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

//! `GET /v1/datasets/{name}`: one dataset with its report (duplicates, unreadable files,
//! balance: `data::report`). Listing, uploading and deleting are in `datasets`.

use std::collections::BTreeMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::{ApiError, AppState, ErrorBody};
use crate::data::dataset::{Dataset, DatasetError, Split};
use crate::data::report::{self, DatasetReport};

/// One dataset as the list shows it, with its report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatasetDetail {
    pub name: String,
    pub splits: BTreeMap<String, Split>,
    /// A few photos of each class, by split then class (the first ones by name), as paths
    /// relative to the dataset's folder: what `GET /v1/datasets/{name}/thumbnail` takes.
    pub samples: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// What the checks before training found: `errors` block training.
    pub report: DatasetReport,
}

/// How many photos of each class `samples` names.
const SAMPLES_PER_CLASS: usize = 4;

/// The first photos of each class of each split, relative to the dataset's folder.
fn samples(dataset: &Dataset) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (split, data) in &dataset.splits {
        let by_class = out.entry(split.clone()).or_default();
        for sample in &data.samples {
            let files = by_class
                .entry(data.classes[sample.label].clone())
                .or_default();
            if files.len() < SAMPLES_PER_CLASS {
                let relative = sample
                    .path
                    .strip_prefix(&dataset.root)
                    .unwrap_or(&sample.path);
                files.push(relative.display().to_string());
            }
        }
    }
    out
}

/// One dataset and its report: images per split and class, unreadable files, duplicates
/// within and across splits, near-duplicates across splits, imbalance, image sizes. The
/// first request after the files change reads every image (seconds to minutes); later ones
/// read the cached report.
#[utoipa::path(get, path = "/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "The dataset's folder name")),
    responses(
        (status = 200, description = "The dataset and its report", body = DatasetDetail),
        (status = 400, description = "Not a valid dataset name", body = ErrorBody),
        (status = 404, description = "No such dataset", body = ErrorBody),
        (status = 503, description = "The database or artifact store holding an uploaded dataset does not answer", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn get(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<DatasetDetail>, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::bad_request(e.body_text()).field("name"))?;
    let datasets_dir = state
        .catalog
        .folder(&name)
        .await
        .map_err(ApiError::unavailable)?;
    let data_dir = state.settings.storage.data_dir.clone();
    let max_pixels = state.settings.max_pixels;
    let detail = tokio::task::spawn_blocking(move || {
        // Not `open`: a split missing a class is the report's to explain, not a 422.
        let dataset = Dataset::index(&datasets_dir, &name)?;
        if dataset.splits.is_empty() {
            return Err(DatasetError::NotFound(name));
        }
        let report = report::cached(&dataset, &data_dir, max_pixels).report;
        Ok(DatasetDetail {
            samples: samples(&dataset),
            name: dataset.name,
            splits: dataset.splits,
            report,
        })
    })
    .await?
    .map_err(|error| match error {
        DatasetError::InvalidName(_) | DatasetError::Escapes(_) => {
            ApiError::bad_request(error.to_string()).field("name")
        }
        DatasetError::NotFound(_) => ApiError::not_found(error.to_string()).field("name"),
        other => ApiError::internal(other),
    })?;
    Ok(Json(detail))
}

//! `/v1/datasets`: list the datasets, create one from an upload (an archive body or
//! multipart image parts, streamed to disk, extracted and published by `data::archive` and
//! `data::import`, then made known to every machine by `data::catalog`), and delete one no
//! job is using.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::QueryParams;
use crate::api::{ApiError, AppState, ErrorBody};
use crate::data::archive::{self, ArchiveError, ArchiveKind, Limits, Skipped, Staging};
use crate::data::catalog::DatasetSummary;
use crate::data::dataset::{self, DatasetError, Split};
use crate::data::import::{self, ImportError, Incoming, SplitRule};
use crate::data::report;

/// Every dataset: uploaded ones and the folders of the datasets dir, with their splits,
/// classes and image counts.
#[utoipa::path(get, path = "/v1/datasets", tag = "datasets",
    responses((status = 200, description = "Datasets, by name", body = Vec<DatasetSummary>)))]
#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<DatasetSummary>>, ApiError> {
    Ok(Json(state.catalog.list().await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// The new dataset's name: letters, digits, '-', '_', '.', not starting with '.'.
    name: String,
    /// For a `<class>/<image>` upload: the share of each class for validation, in [0, 1).
    validation_fraction: Option<f64>,
    /// For a `<class>/<image>` upload: the share of each class for test, in [0, 1).
    test_fraction: Option<f64>,
    /// Seed of the split (default 0): the same files and seed give the same split.
    seed: Option<u64>,
}

/// The new dataset as `GET /v1/datasets` lists it, and the entries left out of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetCreated {
    pub name: String,
    pub splits: std::collections::BTreeMap<String, Split>,
    pub skipped: Vec<Skipped>,
}

/// Multipart form of `POST /v1/datasets`: one `image` part per file, its filename
/// `<class>/<file>` or `<split>/<class>/<file>`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DatasetForm {
    #[schema(value_type = Vec<String>, format = Binary)]
    image: Vec<Vec<u8>>,
}

/// Create a dataset from one archive (zip, tar, tar.gz) or multipart `image` parts.
///
/// Layouts: `<split>/<class>/<image>` (splits train, validation, test), or `<class>/<image>`
/// with `validation_fraction`/`test_fraction`: per class, ⌊n·fraction⌋ images chosen by the
/// seed go to validation and test, the rest to train. One top folder wrapping everything is
/// stripped. Dotfiles, `__MACOSX/` and non-images are skipped and listed.
#[utoipa::path(
    post,
    path = "/v1/datasets",
    tag = "datasets",
    params(CreateQuery),
    request_body(content(
        (Vec<u8> = "application/zip"),
        (Vec<u8> = "application/x-tar"),
        (Vec<u8> = "application/gzip"),
        (Vec<u8> = "application/octet-stream"),
        (DatasetForm = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Created", body = DatasetCreated),
        (status = 400, description = "Invalid name, class, query or body", body = ErrorBody),
        (status = 409, description = "A dataset of that name exists", body = ErrorBody),
        (status = 413, description = "Over the body, file-count or expanded-size limit, or a zip bomb", body = ErrorBody),
        (status = 415, description = "Not an archive nor multipart", body = ErrorBody),
        (status = 422, description = "An unsafe, duplicate or oversized entry; a corrupt archive; no recognisable layout; fractions that do not fit", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(dataset = %query.name))]
pub async fn create(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<CreateQuery>,
    request: Request,
) -> Result<(StatusCode, Json<DatasetCreated>), ApiError> {
    let settings = state.settings.clone();
    let max_body = (settings.max_dataset_mb as u64) * 1024 * 1024;
    let limits = Limits {
        max_bytes: settings
            .max_dataset_expanded_mb
            .map_or(max_body.saturating_mul(4), |mb| mb * 1024 * 1024),
        max_files: settings.max_dataset_files,
        max_pixels: settings.max_pixels,
    };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let multipart = content_type.starts_with("multipart/form-data");
    let refuse = |e| import_error(e, if multipart { "image" } else { "archive" });
    let rule = SplitRule::new(query.validation_fraction, query.test_fraction, query.seed)
        .map_err(refuse)?;
    let catalog = state.catalog.clone();
    catalog.check_available(&query.name).await.map_err(refuse)?;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body) {
        return Err(too_large(max_body));
    }
    let incoming = Arc::new(Incoming::new(catalog.uploads_dir())?);
    // Set when this future is dropped (client gone, deadline): blocking work still running
    // for it stops, and the guard in `incoming` removes what it wrote.
    let _cancel = CancelOnDrop(incoming.cancelled.clone());
    let staged = if multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?;
        let mut staging = Staging::new(&incoming.raw(), limits, incoming.cancelled.clone())?;
        let mut received = 0u64;
        while let Some(field) = form.next_field().await.map_err(multipart_error)? {
            if field.name() != Some("image") {
                continue;
            }
            let name = field.file_name().map(str::to_owned).ok_or_else(|| {
                ApiError::bad_request("each image part needs a filename <class>/<file>")
                    .field("image")
            })?;
            let chunks = field.map(|c| c.map_err(multipart_error));
            received += save(chunks, incoming.body(), max_body - received.min(max_body)).await?;
            let part = incoming.clone();
            staging = tokio::task::spawn_blocking(move || {
                let mut file = std::fs::File::open(part.body())?;
                staging.add_file(&name, &mut file).map(|()| staging)
            })
            .await?
            .map_err(|e| refuse(e.into()))?;
        }
        staging.finish()
    } else {
        let chunks = request.into_body().into_data_stream().map(|c| {
            c.map_err(|e| ApiError::bad_request(format!("reading the upload failed: {e}")))
        });
        save(chunks, incoming.body(), max_body).await?;
        let kind = match ArchiveKind::from_content_type(&content_type) {
            Some(kind) => kind,
            None => sniff(incoming.body()).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send a zip, tar or tar.gz body, or multipart/form-data `image` parts",
                )
                .field("archive")
            })?,
        };
        let upload = incoming.clone();
        tokio::task::spawn_blocking(move || {
            let mut staging = Staging::new(&upload.raw(), limits, upload.cancelled.clone())?;
            archive::extract(upload.body(), kind, &mut staging).map(|()| staging.finish())
        })
        .await?
        .map_err(|e| refuse(e.into()))?
    };
    let name = query.name.clone();
    // Dropped unregistered (a refusal, the request gone), it removes what it holds.
    let mut placement = catalog.place()?;
    let parent = placement.parent.clone();
    let imported = tokio::task::spawn_blocking(move || {
        import::publish(&parent, &incoming, staged, &name, rule)
    })
    .await?
    .map_err(refuse)?;
    catalog
        .register(&mut placement, &imported.dataset)
        .await
        .map_err(refuse)?;
    tracing::info!(
        images = imported
            .dataset
            .splits
            .values()
            .map(|s| s.samples.len())
            .sum::<usize>(),
        skipped = imported.skipped.len(),
        "dataset created"
    );
    // The report is computed now, in the background, so that it is ready (cached) when the
    // user or a training job asks for it.
    let (dataset, data_dir) = (
        imported.dataset.clone(),
        state.settings.storage.data_dir.clone(),
    );
    let max_pixels = state.settings.max_pixels;
    tokio::task::spawn_blocking(move || report::cached(&dataset, &data_dir, max_pixels));
    Ok((
        StatusCode::CREATED,
        Json(DatasetCreated {
            name: imported.dataset.name,
            splits: imported.dataset.splits,
            skipped: imported.skipped,
        }),
    ))
}

/// Delete a dataset (an uploaded one everywhere; else its folder or symlink in the datasets
/// dir), unless a waiting, queued or running job uses it.
#[utoipa::path(
    delete,
    path = "/v1/datasets/{name}",
    tag = "datasets",
    params(("name" = String, Path, description = "Dataset name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 404, description = "No such dataset", body = ErrorBody),
        (status = 409, description = "A waiting, queued or running job uses it", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn delete(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::bad_request(e.body_text()).field("name"))?;
    dataset::validate_name(&name)
        .map_err(|e| ApiError::bad_request(e.to_string()).field("name"))?;
    let active = state.store.active_jobs_on(&name).await?;
    if !active.is_empty() {
        let ids: Vec<String> = active.iter().map(ToString::to_string).collect();
        return Err(ApiError::conflict(format!(
            "dataset {name:?} is used by waiting, queued or running jobs: {}",
            ids.join(", ")
        ))
        .field("name"));
    }
    state
        .catalog
        .remove(&name)
        .await
        .map_err(|e| import_error(e, "name"))?;
    tracing::info!(dataset = %name, "dataset deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the flag when dropped: the request's future is gone.
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "dataset upload over the limit of {} MiB",
            limit / (1024 * 1024)
        ),
    )
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.body_text())
    } else {
        ApiError::bad_request(format!("malformed multipart body: {e}"))
    }
}

/// Stream `chunks` into a new file at `path`, at most `limit` bytes (413 beyond).
async fn save(
    chunks: impl Stream<Item = Result<axum::body::Bytes, ApiError>>,
    path: &std::path::Path,
    limit: u64,
) -> Result<u64, ApiError> {
    let mut chunks = std::pin::pin!(chunks);
    let mut file = tokio::fs::File::create(path).await?;
    let mut total = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(total)
}

async fn sniff(path: &std::path::Path) -> Result<Option<ArchiveKind>, ApiError> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::with_capacity(512);
    tokio::fs::File::open(path)
        .await?
        .take(512)
        .read_to_end(&mut head)
        .await?;
    Ok(ArchiveKind::sniff(&head))
}

/// Each refusal's status; `field` names where the upload came from (`archive`, `image`).
fn import_error(error: ImportError, field: &'static str) -> ApiError {
    let message = error.to_string();
    let with =
        |status: StatusCode, field: &str| ApiError::new(status, message.clone()).field(field);
    match error {
        ImportError::Dataset(DatasetError::InvalidName(_)) => with(StatusCode::BAD_REQUEST, "name"),
        ImportError::Dataset(DatasetError::InvalidClass(_)) => {
            with(StatusCode::BAD_REQUEST, "class")
        }
        ImportError::Dataset(DatasetError::NotFound(_)) => with(StatusCode::NOT_FOUND, "name"),
        ImportError::Dataset(DatasetError::Io { .. }) | ImportError::Io(_) => {
            ApiError::internal(message)
        }
        ImportError::Dataset(_) | ImportError::NoImages | ImportError::Layout(_) => {
            with(StatusCode::UNPROCESSABLE_ENTITY, field)
        }
        ImportError::Exists(_) => with(StatusCode::CONFLICT, "name"),
        ImportError::Fraction { field, .. } => with(StatusCode::UNPROCESSABLE_ENTITY, field),
        ImportError::FractionsWithSplits | ImportError::NoFractions => {
            with(StatusCode::UNPROCESSABLE_ENTITY, "validation_fraction")
        }
        ImportError::TooFew { split, .. } => with(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{split}_fraction").as_str(),
        ),
        ImportError::Archive(archive) => match archive {
            ArchiveError::Io(_) => ApiError::internal(message),
            ArchiveError::UnknownFormat => with(StatusCode::UNSUPPORTED_MEDIA_TYPE, field),
            ArchiveError::TooManyFiles(_) | ArchiveError::TooLarge(_) | ArchiveError::Ratio(_) => {
                with(StatusCode::PAYLOAD_TOO_LARGE, field)
            }
            ArchiveError::Cancelled => with(StatusCode::BAD_REQUEST, field),
            _ => with(StatusCode::UNPROCESSABLE_ENTITY, field),
        },
    }
}

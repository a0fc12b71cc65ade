//! `POST /v1/predict` (and `/predict`): classify uploaded photos with a trained model.
//! Accepts `multipart/form-data` with one or more `image` parts, or a raw `image/*` body.
//! Admission is bounded by a semaphore (429 beyond); decoding runs on blocking threads;
//! the forward pass runs on the predictor thread, batched with concurrent requests.

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::upload::{read_images, UploadLimits};
use crate::api::{ApiError, AppState};
use crate::data::decode::{load_image, DecodeError, ImageSpec};
use crate::store::{models, ModelRecord};
use crate::train::artifacts::ModelConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictQuery {
    model: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Prediction {
    label: String,
    probability: f32,
    scores: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct PredictResponse {
    model: uuid::Uuid,
    predictions: Vec<Prediction>,
}

pub async fn predict(
    State(state): State<AppState>,
    Query(query): Query<PredictQuery>,
    request: Request,
) -> Result<Json<PredictResponse>, ApiError> {
    let _permit = state
        .predict_permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many predictions in flight; try again shortly",
            )
        })?;
    // Admitted requests only: a 429 is counted by the HTTP metrics, not as a latency.
    let started = std::time::Instant::now();
    // Read (and bound) the upload first: an oversized body is 413 whatever the model.
    let uploads = read_images(UploadLimits::from(&*state.settings), request).await?;
    let model = resolve_model(&state, query.model.as_deref()).await?;
    let config: ModelConfig =
        serde_json::from_value(model.config.clone()).map_err(ApiError::internal)?;
    let spec = ImageSpec {
        size: config.image_size,
        filter: state.settings.resize,
        max_pixels: state.settings.max_pixels,
    };
    let images = tokio::task::spawn_blocking(move || {
        uploads
            .iter()
            .enumerate()
            .map(|(i, (name, bytes))| {
                load_image(bytes, &spec).map_err(|e| decode_error(i, name, e))
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await
    .map_err(ApiError::internal)??;
    let probabilities = state
        .predictor
        .predict(model.clone(), images)
        .await
        .map_err(ApiError::internal)?;
    let classes = &model.classes;
    let predictions = probabilities
        .into_iter()
        .map(|p| {
            let positive = p >= 0.5;
            let mut scores = Map::new();
            scores.insert(classes[0].clone(), Value::from(1.0 - p));
            scores.insert(classes[1].clone(), Value::from(p));
            Prediction {
                label: classes[usize::from(positive)].clone(),
                probability: if positive { p } else { 1.0 - p },
                scores,
            }
        })
        .collect();
    metrics::histogram!("predict_latency_seconds").record(started.elapsed().as_secs_f64());
    Ok(Json(PredictResponse {
        model: model.id,
        predictions,
    }))
}

async fn resolve_model(state: &AppState, requested: Option<&str>) -> Result<ModelRecord, ApiError> {
    match requested {
        Some(text) => {
            let id = uuid::Uuid::parse_str(text).map_err(|_| {
                ApiError::bad_request(format!("model id {text:?} is not a UUID")).field("model")
            })?;
            models::get(&state.pool, id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field("model"))
        }
        None => models::default_model(&state.pool).await?.ok_or_else(|| {
            ApiError::not_found("no trained model yet: train one first (POST /v1/jobs)")
                .field("model")
        }),
    }
}

fn decode_error(index: usize, name: &str, error: DecodeError) -> ApiError {
    let status = if error.is_unprocessable() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    };
    ApiError::new(status, format!("image {} ({name}): {error}", index + 1)).field("image")
}

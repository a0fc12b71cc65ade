//! `POST /v1/predict` (and `/predict`): classify uploaded photos with a trained model.
//! Accepts `multipart/form-data` with one or more `image` parts, or a raw `image/*` body.
//! Admission is bounded by a semaphore (429 beyond); decoding runs on blocking threads;
//! the forward pass runs on the predictor thread, batched with concurrent requests. The
//! document describes `/predict` as a copy of `/v1/predict` (`openapi::complete`).
//! `?explain=gradcam` adds a heatmap to each prediction (see `explain.rs`); explanations
//! take the same permits.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::explain::{self, ExplainMethod, Explanation, OverlayFormat, Wanted, OVERLAY_SIDE};
use crate::api::extract::QueryParams;
use crate::api::upload::{read_images, UploadLimits};
use crate::api::{ApiError, AppState, ErrorBody};
use crate::data::decode::{decode_rgb, resize_rgb, DecodeError, ImageSpec, ResizeFilter};
use crate::domain::ModelRecord;
use crate::model::ModelConfig;
use crate::predict::PredictError;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PredictQuery {
    /// The model to use (default: the one marked default, else the newest).
    #[param(value_type = Option<uuid::Uuid>)]
    model: Option<String>,
    /// Also list the `top_k` most probable classes, most probable first.
    #[param(minimum = 1)]
    top_k: Option<usize>,
    /// Explain each prediction: `gradcam` adds a heatmap of where the model looked.
    #[param(value_type = Option<ExplainMethod>, inline)]
    explain: Option<String>,
    /// With `explain`: the class to explain (default: the predicted one).
    class: Option<String>,
    /// With `explain`: `png` adds the photo with the heatmap blended over it.
    #[param(value_type = Option<OverlayFormat>, inline)]
    overlay: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Prediction {
    /// The most probable class.
    label: String,
    /// Its probability.
    probability: f64,
    /// Every class's probability, by name.
    #[schema(value_type = Object)]
    scores: serde_json::Map<String, serde_json::Value>,
    /// With `?top_k=`: the k most probable classes, most probable first.
    #[serde(skip_serializing_if = "Option::is_none")]
    top: Option<Vec<Ranked>>,
    /// With `?explain=`: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<Explanation>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ranked {
    label: String,
    probability: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PredictResponse {
    model: uuid::Uuid,
    /// One per image, in request order.
    predictions: Vec<Prediction>,
}

/// Classify photos: `image` parts of a multipart form, or one raw image body.
#[utoipa::path(
    post,
    path = "/v1/predict",
    tag = "predict",
    params(PredictQuery),
    request_body(
        description = "multipart/form-data with one or more `image` parts, or one raw image body",
        content(
            (Vec<u8> = "multipart/form-data"),
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "application/octet-stream"),
        )
    ),
    responses(
        (status = 200, description = "One prediction per image", body = PredictResponse),
        (status = 400, description = "Malformed body or query, or no image", body = ErrorBody),
        (status = 404, description = "No such model, or no model trained yet", body = ErrorBody),
        (status = 408, description = "The upload did not complete in time", body = ErrorBody),
        (status = 413, description = "Body or image count over the limit", body = ErrorBody),
        (status = 415, description = "Not an image, or not multipart", body = ErrorBody),
        (status = 422, description = "A corrupt or oversized image", body = ErrorBody),
        (status = 429, description = "Too many predictions in flight", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn predict(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<PredictQuery>,
    request: Request,
) -> Result<Json<PredictResponse>, ApiError> {
    let _permit = state
        .predict_permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::too_many("too many predictions in flight; try again shortly"))?;
    // Admitted requests only: a 429 is counted by the HTTP metrics, not as a latency.
    let started = std::time::Instant::now();
    // Read (and bound) the upload first: an oversized body is 413 whatever the model.
    if query.top_k == Some(0) {
        return Err(ApiError::bad_request("top_k must be at least 1").field("top_k"));
    }
    let uploads = read_images(UploadLimits::from(&*state.settings), request).await?;
    let model = resolve_model(&state, query.model.as_deref()).await?;
    // Trained by a worker elsewhere: its files come from the artifact store, once.
    let folder = crate::model::saved::model_folder(model.id);
    // Held until the prediction is made: the predictor may load it from disk.
    let _held = state.artifacts.fetch_model(&folder).await?.ok_or_else(|| {
        anyhow::anyhow!("model {} is registered but its files are missing", model.id)
    })?;
    let config: ModelConfig = serde_json::from_value(model.config.clone())?;
    let wanted = explain::wanted(
        query.explain.as_deref(),
        query.class.as_deref(),
        query.overlay.as_deref(),
        &model.classes,
    )?;
    let spec = ImageSpec {
        size: config.image_size,
        filter: state.settings.base.resize,
        max_pixels: state.settings.max_pixels,
    };
    let photo_side = OVERLAY_SIDE.max(config.image_size);
    let with_photos = wanted.is_some_and(|w| w.overlay);
    let decoded = tokio::task::spawn_blocking(move || {
        uploads
            .iter()
            .enumerate()
            .map(|(i, (name, bytes))| {
                let image =
                    decode_rgb(bytes, spec.max_pixels).map_err(|e| decode_error(i, name, e))?;
                // The overlay is drawn on a larger, smoother copy than the model sees.
                let photo = with_photos.then(|| {
                    let display = ImageSpec {
                        size: photo_side,
                        filter: ResizeFilter::Bilinear,
                        ..spec
                    };
                    resize_rgb(&image, &display)
                });
                Ok((resize_rgb(&image, &spec), photo))
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    let (images, photos): (Vec<_>, Vec<_>) = decoded.into_iter().unzip();
    let busy = |e: PredictError| match e {
        PredictError::Busy => ApiError::too_many(e.to_string()),
        other => ApiError::internal(other),
    };
    let predictions = match wanted {
        None => {
            let probabilities = state
                .predictor
                .predict(model.clone(), images)
                .await
                .map_err(busy)?;
            probabilities
                .iter()
                .map(|row| prediction(&model.classes, row, query.top_k))
                .collect()
        }
        Some(Wanted { class, .. }) => {
            let targets = vec![class; images.len()];
            let maps = state
                .predictor
                .explain(model.clone(), images, targets)
                .await
                .map_err(busy)?;
            let classes = model.classes.clone();
            let top_k = query.top_k;
            tokio::task::spawn_blocking(move || {
                maps.iter()
                    .zip(&photos)
                    .map(|(map, photo)| {
                        let mut answer = prediction(&classes, &map.probabilities, top_k);
                        let photo = photo.as_deref().map(|p| (p, photo_side));
                        answer.explanation = Some(explain::explanation(map, &classes, photo)?);
                        Ok(answer)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .await??
        }
    };
    // Explanations apart: they would skew the predictions' latency.
    let histogram = match wanted {
        None => "predict_latency_seconds",
        Some(_) => "explain_latency_seconds",
    };
    metrics::histogram!(histogram).record(started.elapsed().as_secs_f64());
    Ok(Json(PredictResponse {
        model: model.id,
        predictions,
    }))
}

/// One image's answer from its class probabilities (in the model's class order).
fn prediction(classes: &[String], probabilities: &[f32], top_k: Option<usize>) -> Prediction {
    // f64 throughout, so that `probability` and `scores` print the same number.
    let mut ranked: Vec<(usize, f64)> = probabilities
        .iter()
        .map(|&p| f64::from(p))
        .enumerate()
        .collect();
    // Most probable first; ties keep the class order.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best, probability) = ranked[0];
    let scores = classes
        .iter()
        .zip(probabilities)
        .map(|(class, &p)| (class.clone(), f64::from(p).into()))
        .collect();
    let top = top_k.map(|k| {
        ranked
            .iter()
            .take(k)
            .map(|&(c, probability)| Ranked {
                label: classes[c].clone(),
                probability,
            })
            .collect()
    });
    Prediction {
        label: classes[best].clone(),
        probability,
        scores,
        top,
        explanation: None,
    }
}

async fn resolve_model(state: &AppState, requested: Option<&str>) -> Result<ModelRecord, ApiError> {
    let requested = requested
        .map(|text| {
            uuid::Uuid::parse_str(text).map_err(|_| {
                ApiError::bad_request(format!("model id {text:?} is not a UUID")).field("model")
            })
        })
        .transpose()?;
    match requested {
        Some(id) => state
            .store
            .model(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("model {id} not found")).field("model")),
        None => state.store.default_model().await?.ok_or_else(|| {
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

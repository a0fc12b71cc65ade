//! What a user may ask for: the body of `POST /v1/jobs`, by `kind`. Every optional field
//! is `None` when not sent and takes its recipe's default when resolved (`spec`); these
//! types are also the request schemas of the API document.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::train::best::Monitor;

/// The request body, by `kind`. Unknown fields are refused, so a typo never silently
/// means "default"; every optional field defaults to the seed's value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobRequest {
    ExtractFeatures(ExtractRequest),
    Train(TrainRequest),
    FineTune(FineTuneRequest),
    Evaluate(EvaluateRequest),
}

/// Recipe 1, step 1: conv-base features of every split, once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractRequest {
    pub dataset: String,
    pub image_size: Option<u32>,
    pub batch_size: Option<u32>,
}

/// Recipe 1, step 2 (`features`) or recipe 2 (`augment: true`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    pub dataset: String,
    /// An `extract_features` job on the same dataset: train the dense head on its features.
    pub features: Option<Uuid>,
    /// `true`: train end to end through the frozen base with live augmentation.
    pub augment: Option<bool>,
    pub epochs: Option<u32>,
    pub batch_size: Option<u32>,
    pub learning_rate: Option<f64>,
    pub seed: Option<u64>,
    /// Augmented training only.
    pub steps_per_epoch: Option<u32>,
    /// Augmented training only.
    pub validation_steps: Option<u32>,
    /// Augmented training only (features carry their own).
    pub image_size: Option<u32>,
    /// `true`: train even when the dataset report finds a photo in two splits (identical
    /// files) or a class without images; otherwise such a job is refused (422).
    pub allow_leaks: Option<bool>,
    /// The validation figure that picks the best epoch: `val_loss` (lowest, the default)
    /// or `val_acc` (highest).
    pub monitor: Option<Monitor>,
    /// `true` (the default): register the best epoch's weights; `false`: the last epoch's,
    /// as the seed does.
    pub restore_best: Option<bool>,
    /// Stop after this many epochs in a row without improving `monitor` (default 0: never).
    pub early_stopping_patience: Option<u32>,
}

/// Recipe 3: fine-tune the top of the conv base together with a trained model's head.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FineTuneRequest {
    pub dataset: String,
    pub from_model: Uuid,
    /// A conv layer (`block1_conv1` … `block5_conv3`): it and every later one are trained.
    pub unfreeze_from: Option<String>,
    /// Live augmentation (default); `false` runs the frozen layers once, much faster.
    pub augment: Option<bool>,
    pub epochs: Option<u32>,
    pub batch_size: Option<u32>,
    pub learning_rate: Option<f64>,
    pub seed: Option<u64>,
    pub steps_per_epoch: Option<u32>,
    pub validation_steps: Option<u32>,
    pub image_size: Option<u32>,
    /// `true`: train even when the dataset report finds a photo in two splits (identical
    /// files) or a class without images; otherwise such a job is refused (422).
    pub allow_leaks: Option<bool>,
    /// The validation figure that picks the best epoch: `val_loss` (lowest, the default)
    /// or `val_acc` (highest).
    pub monitor: Option<Monitor>,
    /// `true` (the default): register the best epoch's weights; `false`: the last epoch's,
    /// as the seed does.
    pub restore_best: Option<bool>,
    /// Stop after this many epochs in a row without improving `monitor` (default 0: never).
    pub early_stopping_patience: Option<u32>,
}

/// Loss and accuracy of a trained model on one split.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    pub dataset: String,
    pub model: Uuid,
    /// `train`, `validation` or `test`.
    pub split: Option<String>,
    pub batch_size: Option<u32>,
}

/// The request field a deserialization error concerns, when serde's message names one
/// (an unknown or missing field, or an unknown `kind`).
pub fn field_of(error: &serde_json::Error) -> Option<String> {
    let message = error.to_string();
    ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| {
            message
                .split_once(prefix)
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(f, _)| f.to_owned())
        })
        .or_else(|| {
            (message.contains("variant") || message.contains("`kind`")).then(|| "kind".to_owned())
        })
}

//! What a job runs with ([`JobParams`]): one resolved, non-optional parameter type per kind,
//! owned by its recipe, whose defaults are declared once there (burn `Config`). Resolving
//! a [`JobRequest`] lays its fields over those defaults and checks every range against
//! [`LIMITS`], which are declared here once.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

pub use super::request::{
    field_of, EvaluateRequest, ExtractRequest, FineTuneRequest, JobRequest, TrainRequest,
};

use crate::data::dataset::SPLITS;
use crate::domain::JobKind;
use crate::model::layers::conv_layer_index;
use crate::train::recipes::{
    EndToEndConfig, EvaluateConfig, ExtractConfig, FineTuneConfig, HeadTrainingConfig,
};

/// The resolved parameters a job runs with, stored with it and shown back to the user.
/// Read back through [`stored::with_defaults`]: a parameter added after a job was stored
/// takes its recipe's default (burn's `Config` deserializer requires every field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "Value")]
pub enum JobParams {
    ExtractFeatures(ExtractConfig),
    Train(TrainParams),
    FineTune(FineTuneConfig),
    Evaluate(EvaluateConfig),
}

impl TryFrom<Value> for JobParams {
    type Error = serde_json::Error;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        serde_json::from_value::<stored::Stored>(stored::with_defaults(value)).map(Into::into)
    }
}

/// Stored parameters as written by any version: the same shape as [`JobParams`], with the
/// fields added since filled in from the recipes' defaults.
mod stored {
    use serde::Deserialize;
    use serde_json::Value;
    use uuid::Uuid;

    use super::as_json::Json;
    use super::*;

    #[derive(Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    pub enum Stored {
        ExtractFeatures(ExtractConfig),
        Train(TrainParams),
        FineTune(FineTuneConfig),
        Evaluate(EvaluateConfig),
    }

    impl From<Stored> for JobParams {
        fn from(stored: Stored) -> Self {
            match stored {
                Stored::ExtractFeatures(c) => Self::ExtractFeatures(c),
                Stored::Train(c) => Self::Train(c),
                Stored::FineTune(c) => Self::FineTune(c),
                Stored::Evaluate(c) => Self::Evaluate(c),
            }
        }
    }

    /// Every optional parameter the stored object lacks, at its recipe's default. The
    /// required ones (which `new` fills with placeholders) are never made up.
    pub fn with_defaults(mut value: Value) -> Value {
        let Some(fields) = value.as_object_mut() else {
            return value;
        };
        let nil = Uuid::nil();
        let kind = fields
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let defaults = match (kind, fields.contains_key("features")) {
            ("extract_features", _) => ExtractConfig::new(String::new()).json(),
            ("train", true) => HeadTrainingConfig::new(String::new(), nil).json(),
            ("train", false) => EndToEndConfig::new(String::new()).json(),
            ("fine_tune", _) => FineTuneConfig::new(String::new(), nil).json(),
            ("evaluate", _) => EvaluateConfig::new(String::new(), nil).json(),
            _ => return value,
        };
        for (name, default) in defaults {
            if !REQUIRED.contains(&name.as_str()) {
                fields.entry(name).or_insert(default);
            }
        }
        value
    }
}

/// The fields a request must give (per kind); everything else has a default.
const REQUIRED: [&str; 4] = ["dataset", "features", "from_model", "model"];

/// The two recipes behind `kind: "train"`, told apart by `features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TrainParams {
    OnFeatures(HeadTrainingConfig),
    Augmented(EndToEndConfig),
}

impl JobParams {
    pub fn kind(&self) -> JobKind {
        match self {
            Self::ExtractFeatures(_) => JobKind::ExtractFeatures,
            Self::Train(_) => JobKind::Train,
            Self::FineTune(_) => JobKind::FineTune,
            Self::Evaluate(_) => JobKind::Evaluate,
        }
    }

    /// Whether a training job may run on a dataset whose report has errors (`None`: the
    /// kind does not train, and is never refused for them).
    pub fn allow_leaks(&self) -> Option<bool> {
        match self {
            Self::Train(TrainParams::OnFeatures(c)) => Some(c.allow_leaks),
            Self::Train(TrainParams::Augmented(c)) => Some(c.allow_leaks),
            Self::FineTune(c) => Some(c.allow_leaks),
            Self::ExtractFeatures(_) | Self::Evaluate(_) => None,
        }
    }

    pub fn dataset(&self) -> &str {
        match self {
            Self::ExtractFeatures(c) => &c.dataset,
            Self::Train(TrainParams::OnFeatures(c)) => &c.dataset,
            Self::Train(TrainParams::Augmented(c)) => &c.dataset,
            Self::FineTune(c) => &c.dataset,
            Self::Evaluate(c) => &c.dataset,
        }
    }
}

/// A parameter that is out of range or does not apply, with the field it concerns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidParam {
    pub field: &'static str,
    pub message: String,
}

impl InvalidParam {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The accepted range of a numeric parameter, wherever it appears.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Limit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive_minimum: Option<f64>,
    pub maximum: f64,
}

const fn between(minimum: f64, maximum: f64) -> Limit {
    Limit {
        minimum: Some(minimum),
        exclusive_minimum: None,
        maximum,
    }
}

/// Every range, declared once: checked here, served to the dashboard and written into the
/// API document.
pub const LIMITS: [(&str, Limit); 7] = [
    ("image_size", between(32.0, 512.0)),
    ("batch_size", between(1.0, 256.0)),
    ("epochs", between(1.0, 1000.0)),
    ("steps_per_epoch", between(1.0, 100_000.0)),
    ("validation_steps", between(1.0, 100_000.0)),
    ("early_stopping_patience", between(0.0, 1000.0)),
    (
        "learning_rate",
        Limit {
            minimum: None,
            exclusive_minimum: Some(0.0),
            maximum: 1.0,
        },
    ),
];

impl Limit {
    fn check(&self, field: &'static str, value: f64) -> Result<(), InvalidParam> {
        let low_ok = self.minimum.is_none_or(|m| value >= m)
            && self.exclusive_minimum.is_none_or(|m| value > m);
        if value.is_finite() && low_ok && value <= self.maximum {
            return Ok(());
        }
        let message = match (self.minimum, self.exclusive_minimum) {
            (Some(min), _) => format!(
                "{field} must be between {min} and {}, got {value}",
                self.maximum
            ),
            (None, Some(min)) => {
                format!("{field} must be in ({min}, {}], got {value}", self.maximum)
            }
            (None, None) => format!("{field} must be at most {}, got {value}", self.maximum),
        };
        Err(InvalidParam::new(field, message))
    }
}

/// Check every limited field present in a resolved parameter set.
fn check_limits(fields: &Map<String, Value>) -> Result<(), InvalidParam> {
    for (field, limit) in &LIMITS {
        if let Some(value) = fields.get(*field).and_then(Value::as_f64) {
            limit.check(field, value)?;
        }
    }
    Ok(())
}

/// Lay the fields a request set over a config's defaults. Every request field must be a
/// field of the config (a unit test holds each kind to that), so nothing is dropped.
fn overlay<C>(defaults: C, request: &impl Serialize) -> Result<C, InvalidParam>
where
    C: Serialize + for<'de> Deserialize<'de>,
{
    let internal = |e: serde_json::Error| InvalidParam::new("kind", format!("internal: {e}"));
    let Value::Object(mut fields) = serde_json::to_value(defaults).map_err(internal)? else {
        return Err(InvalidParam::new(
            "kind",
            "internal: a config is not an object",
        ));
    };
    let Value::Object(given) = serde_json::to_value(request).map_err(internal)? else {
        return Err(InvalidParam::new(
            "kind",
            "internal: a request is not an object",
        ));
    };
    for (name, value) in given {
        if value.is_null() {
            continue;
        }
        if !fields.contains_key(&name) {
            return Err(InvalidParam::new(
                "kind",
                format!("internal: no parameter {name}"),
            ));
        }
        fields.insert(name, value);
    }
    check_limits(&fields)?;
    serde_json::from_value(Value::Object(fields)).map_err(internal)
}

impl JobRequest {
    /// Fill in the seed's defaults and check every range.
    pub fn resolve(&self) -> Result<JobParams, InvalidParam> {
        Ok(match self {
            Self::ExtractFeatures(r) => {
                JobParams::ExtractFeatures(overlay(ExtractConfig::new(r.dataset.clone()), r)?)
            }
            Self::Train(r) => JobParams::Train(resolve_train(r)?),
            Self::FineTune(r) => {
                let defaults = FineTuneConfig::new(r.dataset.clone(), r.from_model);
                let params: FineTuneConfig = overlay(defaults, r)?;
                if conv_layer_index(&params.unfreeze_from).is_none() {
                    return Err(InvalidParam::new(
                        "unfreeze_from",
                        format!(
                            "unfreeze_from must name a conv layer (block1_conv1 … block5_conv3), got {:?}",
                            params.unfreeze_from
                        ),
                    ));
                }
                JobParams::FineTune(params)
            }
            Self::Evaluate(r) => {
                let defaults = EvaluateConfig::new(r.dataset.clone(), r.model);
                let params: EvaluateConfig = overlay(defaults, r)?;
                if !SPLITS.contains(&params.split.as_str()) {
                    return Err(InvalidParam::new(
                        "split",
                        format!(
                            "split must be train, validation or test, got {:?}",
                            params.split
                        ),
                    ));
                }
                JobParams::Evaluate(params)
            }
        })
    }
}

fn resolve_train(r: &TrainRequest) -> Result<TrainParams, InvalidParam> {
    let augment = r.augment.unwrap_or(false);
    match (r.features, augment) {
        (Some(features), false) => {
            for (field, set) in [
                ("steps_per_epoch", r.steps_per_epoch.is_some()),
                ("validation_steps", r.validation_steps.is_some()),
            ] {
                if set {
                    return Err(InvalidParam::new(field, format!("{field} applies only to augmented training (one epoch is one pass over the cached features)")));
                }
            }
            if r.image_size.is_some() {
                return Err(InvalidParam::new(
                    "image_size",
                    "image_size comes from the features job when training on features",
                ));
            }
            // `augment: false` is the only value that fits here, and it says nothing more.
            let request = TrainRequest {
                augment: None,
                ..r.clone()
            };
            let defaults = HeadTrainingConfig::new(r.dataset.clone(), features);
            Ok(TrainParams::OnFeatures(overlay(defaults, &request)?))
        }
        (None, true) => Ok(TrainParams::Augmented(overlay(
            EndToEndConfig::new(r.dataset.clone()),
            r,
        )?)),
        _ => Err(InvalidParam::new(
            "features",
            "train needs either \"features\" (an extract_features job id) or \"augment\": true",
        )),
    }
}

/// The defaults of every kind's optional parameters (`GET /v1/jobs/defaults`), read off the
/// recipes' own configs so that nothing repeats them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobDefaults {
    /// By recipe: `extract_features`, `train_on_features`, `train_augmented`, `fine_tune`,
    /// `evaluate`; each maps parameter names to default values.
    #[schema(value_type = Object)]
    pub defaults: Map<String, Value>,
    /// The accepted range of each numeric parameter.
    #[schema(value_type = Object)]
    pub limits: Map<String, Value>,
}

impl JobDefaults {
    pub fn get() -> Self {
        // Required fields are not defaults, and `augment: true` is how a request asks for
        // recipe 2 rather than a setting of it: both are left out.
        let optional = |config: &dyn as_json::Json, drop: &[&str]| {
            let mut fields = config.json();
            for name in REQUIRED.iter().chain(drop) {
                fields.remove(*name);
            }
            Value::Object(fields)
        };
        let nil = Uuid::nil();
        let defaults = [
            (
                "extract_features",
                optional(&ExtractConfig::new(String::new()), &[]),
            ),
            (
                "train_on_features",
                optional(&HeadTrainingConfig::new(String::new(), nil), &[]),
            ),
            (
                "train_augmented",
                optional(&EndToEndConfig::new(String::new()), &["augment"]),
            ),
            (
                "fine_tune",
                optional(&FineTuneConfig::new(String::new(), nil), &[]),
            ),
            (
                "evaluate",
                optional(&EvaluateConfig::new(String::new(), nil), &[]),
            ),
        ];
        let limits = LIMITS
            .iter()
            .map(|(name, limit)| (name.to_string(), serde_json::json!(limit)));
        Self {
            defaults: defaults
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            limits: limits.collect(),
        }
    }
}

/// Any config as a JSON object, behind an object-safe trait (so one closure takes them all).
mod as_json {
    pub trait Json {
        fn json(&self) -> serde_json::Map<String, serde_json::Value>;
    }

    impl<C: serde::Serialize> Json for C {
        fn json(&self) -> serde_json::Map<String, serde_json::Value> {
            match serde_json::to_value(self) {
                Ok(serde_json::Value::Object(fields)) => fields,
                _ => serde_json::Map::new(),
            }
        }
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;

//! What a user may ask for (`POST /v1/jobs`), and the fully resolved parameters a job runs
//! with: every hyper-parameter defaults to the seed's value and is range-checked here.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::layers::{layer_index, LayerKind, LAYERS};

/// The request body. Unknown fields are refused, so a typo never silently means "default".
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRequest {
    ExtractFeatures {
        dataset: String,
        image_size: Option<u32>,
        batch_size: Option<u32>,
    },
    Train {
        dataset: String,
        features: Option<Uuid>,
        augment: Option<bool>,
        epochs: Option<u32>,
        batch_size: Option<u32>,
        learning_rate: Option<f64>,
        seed: Option<u64>,
        steps_per_epoch: Option<u32>,
        validation_steps: Option<u32>,
        image_size: Option<u32>,
    },
    FineTune {
        dataset: String,
        from_model: Uuid,
        unfreeze_from: Option<String>,
        /// Live augmentation (the seed's); `false` runs the frozen layers once and trains on
        /// their outputs, which is much faster.
        augment: Option<bool>,
        epochs: Option<u32>,
        batch_size: Option<u32>,
        learning_rate: Option<f64>,
        seed: Option<u64>,
        steps_per_epoch: Option<u32>,
        validation_steps: Option<u32>,
        image_size: Option<u32>,
    },
    Evaluate {
        dataset: String,
        model: Uuid,
        split: Option<String>,
        batch_size: Option<u32>,
    },
}

/// Options shared by the training kinds (inlined in each variant of the request because
/// serde cannot refuse unknown fields through `flatten`).
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub epochs: Option<u32>,
    pub batch_size: Option<u32>,
    pub learning_rate: Option<f64>,
    pub seed: Option<u64>,
    pub steps_per_epoch: Option<u32>,
    pub validation_steps: Option<u32>,
    pub image_size: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    ExtractFeatures,
    Train,
    FineTune,
    Evaluate,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExtractFeatures => "extract_features",
            Self::Train => "train",
            Self::FineTune => "fine_tune",
            Self::Evaluate => "evaluate",
        }
    }
}

/// Resolved parameters, stored with the job (JSON) and shown back to the user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobParams {
    pub kind: JobKind,
    pub dataset: String,
    pub image_size: u32,
    pub batch_size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augment: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps_per_epoch: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_steps: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_model: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfreeze_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

/// A parameter that is out of range, with the field it concerns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidParam {
    pub field: &'static str,
    pub message: String,
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &'static str,
    value: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, InvalidParam> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(InvalidParam {
            field,
            message: format!("{field} must be between {min} and {max}, got {value}"),
        });
    }
    Ok(value)
}

fn resolve_image_size(value: Option<u32>) -> Result<u32, InvalidParam> {
    range("image_size", value, 150, 32, 512)
}

fn learning_rate(value: Option<f64>, default: f64) -> Result<f64, InvalidParam> {
    let lr = value.unwrap_or(default);
    if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
        return Err(InvalidParam {
            field: "learning_rate",
            message: format!("learning_rate must be in (0, 1], got {lr}"),
        });
    }
    Ok(lr)
}

impl JobRequest {
    pub fn dataset(&self) -> &str {
        match self {
            Self::ExtractFeatures { dataset, .. }
            | Self::Train { dataset, .. }
            | Self::FineTune { dataset, .. }
            | Self::Evaluate { dataset, .. } => dataset,
        }
    }

    /// The options shared by the training kinds (all unset for the other kinds).
    fn common(&self) -> Common {
        match self {
            Self::Train {
                epochs,
                batch_size,
                learning_rate,
                seed,
                steps_per_epoch,
                validation_steps,
                image_size,
                ..
            }
            | Self::FineTune {
                epochs,
                batch_size,
                learning_rate,
                seed,
                steps_per_epoch,
                validation_steps,
                image_size,
                ..
            } => Common {
                epochs: *epochs,
                batch_size: *batch_size,
                learning_rate: *learning_rate,
                seed: *seed,
                steps_per_epoch: *steps_per_epoch,
                validation_steps: *validation_steps,
                image_size: *image_size,
            },
            Self::ExtractFeatures { .. } | Self::Evaluate { .. } => Common::default(),
        }
    }

    /// Fill in the seed's defaults and check every range.
    pub fn resolve(&self) -> Result<JobParams, InvalidParam> {
        let blank = |kind, dataset: &str| JobParams {
            kind,
            dataset: dataset.to_owned(),
            image_size: 150,
            batch_size: 20,
            epochs: None,
            learning_rate: None,
            seed: None,
            augment: None,
            steps_per_epoch: None,
            validation_steps: None,
            features: None,
            from_model: None,
            unfreeze_from: None,
            model: None,
            split: None,
        };
        match self {
            Self::ExtractFeatures {
                dataset,
                image_size: size,
                batch_size,
            } => Ok(JobParams {
                image_size: resolve_image_size(*size)?,
                batch_size: range("batch_size", *batch_size, 20, 1, 256)?,
                ..blank(JobKind::ExtractFeatures, dataset)
            }),
            Self::Train {
                dataset,
                features,
                augment,
                ..
            } => {
                let common = self.common();
                let augment = augment.unwrap_or(false);
                if augment == features.is_some() {
                    return Err(InvalidParam {
                        field: "features",
                        message: "train needs either \"features\" (an extract_features job id) or \"augment\": true".into(),
                    });
                }
                let mut params =
                    resolve_training(blank(JobKind::Train, dataset), &common, 30, 2e-5, augment)?;
                params.features = *features;
                params.augment = Some(augment);
                Ok(params)
            }
            Self::FineTune {
                dataset,
                from_model,
                unfreeze_from,
                augment,
                ..
            } => {
                let common = self.common();
                let layer = unfreeze_from
                    .clone()
                    .unwrap_or_else(|| "block5_conv1".into());
                match layer_index(&layer).map(|i| LAYERS[i].kind) {
                    Some(LayerKind::Conv { .. }) => {}
                    _ => {
                        return Err(InvalidParam {
                            field: "unfreeze_from",
                            message: format!("unfreeze_from must name a conv layer (block1_conv1 … block5_conv3), got {layer:?}"),
                        })
                    }
                }
                let mut params =
                    resolve_training(blank(JobKind::FineTune, dataset), &common, 100, 1e-5, true)?;
                params.from_model = Some(*from_model);
                params.unfreeze_from = Some(layer);
                params.augment = Some(augment.unwrap_or(true));
                Ok(params)
            }
            Self::Evaluate {
                dataset,
                model,
                split,
                batch_size,
            } => {
                let split = split.clone().unwrap_or_else(|| "test".into());
                if !crate::data::dataset::SPLITS.contains(&split.as_str()) {
                    return Err(InvalidParam {
                        field: "split",
                        message: format!("split must be train, validation or test, got {split:?}"),
                    });
                }
                Ok(JobParams {
                    batch_size: range("batch_size", *batch_size, 20, 1, 256)?,
                    model: Some(*model),
                    split: Some(split),
                    ..blank(JobKind::Evaluate, dataset)
                })
            }
        }
    }
}

fn resolve_training(
    mut params: JobParams,
    common: &Common,
    epochs: u32,
    lr: f64,
    augment: bool,
) -> Result<JobParams, InvalidParam> {
    params.epochs = Some(range("epochs", common.epochs, epochs, 1, 1000)?);
    params.batch_size = range("batch_size", common.batch_size, 20, 1, 256)?;
    params.learning_rate = Some(learning_rate(common.learning_rate, lr)?);
    params.seed = Some(common.seed.unwrap_or(1337));
    params.image_size = resolve_image_size(common.image_size)?;
    if augment {
        params.steps_per_epoch = Some(range(
            "steps_per_epoch",
            common.steps_per_epoch,
            100,
            1,
            100_000,
        )?);
        params.validation_steps = Some(range(
            "validation_steps",
            common.validation_steps,
            50,
            1,
            100_000,
        )?);
    } else {
        for (field, value) in [
            ("steps_per_epoch", common.steps_per_epoch),
            ("validation_steps", common.validation_steps),
        ] {
            if value.is_some() {
                return Err(InvalidParam {
                    field,
                    message: format!("{field} applies only to augmented training (one epoch is one pass over the cached features)"),
                });
            }
        }
        if common.image_size.is_some() {
            return Err(InvalidParam {
                field: "image_size",
                message: "image_size comes from the features job when training on features".into(),
            });
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<JobRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_are_the_seeds() {
        let id = Uuid::new_v4();
        let p = parse(&format!(
            r#"{{"kind":"train","dataset":"d","features":"{id}"}}"#
        ))
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(
            (p.epochs, p.batch_size, p.learning_rate),
            (Some(30), 20, Some(2e-5))
        );
        let p = parse(&format!(
            r#"{{"kind":"fine_tune","dataset":"d","from_model":"{id}"}}"#
        ))
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(p.epochs, Some(100));
        assert_eq!(p.learning_rate, Some(1e-5));
        assert_eq!(p.unfreeze_from.as_deref(), Some("block5_conv1"));
        assert_eq!(
            (p.steps_per_epoch, p.validation_steps),
            (Some(100), Some(50))
        );
    }

    #[test]
    fn refuses_unknown_fields_kinds_and_bad_ranges() {
        assert!(parse(r#"{"kind":"train","dataset":"d","augment":true,"epochz":3}"#).is_err());
        assert!(parse(r#"{"kind":"dance","dataset":"d"}"#).is_err());
        let bad = parse(r#"{"kind":"train","dataset":"d","augment":true,"epochs":0}"#)
            .unwrap()
            .resolve()
            .unwrap_err();
        assert_eq!(bad.field, "epochs");
        let bad = parse(r#"{"kind":"train","dataset":"d","augment":true,"learning_rate":-1}"#)
            .unwrap()
            .resolve()
            .unwrap_err();
        assert_eq!(bad.field, "learning_rate");
        let bad = parse(r#"{"kind":"train","dataset":"d"}"#)
            .unwrap()
            .resolve()
            .unwrap_err();
        assert_eq!(bad.field, "features");
    }
}

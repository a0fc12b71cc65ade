//! The explanation side of `/v1/predict`: `?explain=gradcam` (with `&class=` to explain a
//! class other than the predicted one, and `&overlay=png` for the heatmap drawn over the
//! photo). The heatmaps are the predictor's (`model::gradcam`); this file reads the query,
//! and turns a heatmap into its JSON.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ApiError;
use crate::model::gradcam::{Heatmap, LAYER};
use crate::model::overlay::overlay_png;

/// Side of the overlay PNG, in pixels (the model's input size when that is larger).
pub const OVERLAY_SIDE: u32 = 320;

/// How to explain a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ExplainMethod {
    /// Grad-CAM on block5_conv3.
    Gradcam,
}

/// How to draw the heatmap over the photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OverlayFormat {
    Png,
}

/// Why the model chose (or would choose) a class for one photo.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    /// `gradcam`.
    method: &'static str,
    /// The layer whose activations are weighed: `block5_conv3`.
    layer: &'static str,
    /// The class explained.
    class: String,
    /// The heatmap, rows top to bottom, values in [0, 1] (9 × 9 for 150-pixel models).
    grid: Vec<Vec<f32>>,
    /// With `overlay=png`: the photo with the heatmap blended over it, base64 PNG.
    #[serde(skip_serializing_if = "Option::is_none")]
    overlay_png_base64: Option<String>,
}

/// What a predict request asked to have explained.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// The class index to explain for every photo (`None`: each photo's predicted class).
    pub class: Option<usize>,
    pub overlay: bool,
}

/// The explanation the query asks for, if any, checked against the model's classes.
pub fn wanted(
    explain: Option<&str>,
    class: Option<&str>,
    overlay: Option<&str>,
    classes: &[String],
) -> Result<Option<Wanted>, ApiError> {
    let explain: Option<ExplainMethod> = parsed(explain, "explain", "a method (gradcam)")?;
    let overlay: Option<OverlayFormat> = parsed(overlay, "overlay", "a format (png)")?;
    let Some(ExplainMethod::Gradcam) = explain else {
        let alone = [("class", class.is_some()), ("overlay", overlay.is_some())];
        if let Some((field, _)) = alone.iter().find(|(_, given)| *given) {
            return Err(
                ApiError::bad_request(format!("{field} needs explain=gradcam")).field(*field),
            );
        }
        return Ok(None);
    };
    let class = class
        .map(|name| {
            classes.iter().position(|c| c == name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "class {name:?} is not one of the model's: {}",
                    classes.join(", ")
                ))
                .field("class")
            })
        })
        .transpose()?;
    Ok(Some(Wanted {
        class,
        overlay: overlay.is_some(),
    }))
}

/// A query value as `T`, or a 400 naming `field`.
fn parsed<T: std::str::FromStr>(
    text: Option<&str>,
    field: &'static str,
    what: &str,
) -> Result<Option<T>, ApiError> {
    text.map(|text| {
        text.parse::<T>().map_err(|_| {
            ApiError::bad_request(format!("{field} {text:?} is not {what}")).field(field)
        })
    })
    .transpose()
}

/// A heatmap's JSON; `photo` (HWC RGB, `side × side`) is drawn under it when given.
pub fn explanation(
    map: &Heatmap,
    classes: &[String],
    photo: Option<(&[u8], u32)>,
) -> anyhow::Result<Explanation> {
    let [_, cols] = map.side;
    let overlay_png_base64 = photo
        .map(|(pixels, side)| overlay_png(pixels, side, map))
        .transpose()?
        .map(|png| base64::engine::general_purpose::STANDARD.encode(png));
    Ok(Explanation {
        method: "gradcam",
        layer: LAYER,
        class: classes[map.class].clone(),
        grid: map.values.chunks(cols).map(<[f32]>::to_vec).collect(),
        overlay_png_base64,
    })
}

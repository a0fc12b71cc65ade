//! Reading uploaded images out of a request: `multipart/form-data` with `image` parts, or
//! one raw `image/*` body. Bounded before anything is buffered: a declared length over the
//! limit is 413 without reading the body, and so are too many parts. Separate from the
//! predict route so that the fuzz target (fuzz/) drives exactly this code.

use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};

use super::ApiError;
use crate::configuration::Settings;

/// What an upload may weigh.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_body_bytes: usize,
    pub max_images: usize,
}

impl From<&Settings> for UploadLimits {
    fn from(settings: &Settings) -> Self {
        Self {
            max_body_bytes: settings.max_body_mb * 1024 * 1024,
            max_images: settings.max_images_per_request,
        }
    }
}

/// The uploaded images with a name for error messages, in request order.
pub async fn read_images(
    limits: UploadLimits,
    request: Request,
) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let limit = limits.max_body_bytes;
    let max_images = limits.max_images;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body over the limit of {} MiB",
                limit as f64 / (1024.0 * 1024.0)
            ),
        )
    };
    if let Some(length) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if length > limit {
            return Err(too_large());
        }
    }
    if content_type.starts_with("image/") || content_type == "application/octet-stream" {
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| too_large())?;
        return Ok(vec![("body".into(), bytes.to_vec())]);
    }
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send images as multipart/form-data `image` parts, or one raw image/* body",
        ));
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?;
    let mut images = Vec::new();
    let mut too_many = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "malformed multipart body: {e}"
                )))
            }
        };
        if field.name() != Some("image") {
            continue;
        }
        if images.len() == max_images {
            too_many = true;
        }
        if too_many {
            // Read the rest (bounded by the body limit) before answering, so that a client
            // still sending gets the 413 rather than a connection reset mid-upload.
            drain(field).await.map_err(|e| body_error(e, too_large))?;
            continue;
        }
        let name = field.file_name().unwrap_or("unnamed").to_owned();
        let bytes = field.bytes().await.map_err(|e| body_error(e, too_large))?;
        images.push((name, bytes.to_vec()));
    }
    if too_many {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("too many images: at most {max_images} per request"),
        )
        .field("image"));
    }
    if images.is_empty() {
        return Err(ApiError::bad_request("no `image` part in the multipart body").field("image"));
    }
    Ok(images)
}

/// Read a part to its end, keeping nothing.
async fn drain(mut field: axum::extract::multipart::Field<'_>) -> Result<(), MultipartError> {
    while field.chunk().await?.is_some() {}
    Ok(())
}

/// A part that could not be read: over the body limit (413), else malformed (400).
fn body_error(error: MultipartError, too_large: impl Fn() -> ApiError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request(format!("malformed multipart body: {error}"))
    }
}

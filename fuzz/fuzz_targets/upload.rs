//! Fuzz target over the upload path of `/predict`: the request body as a client sends it
//! (multipart, or a raw image body) → `read_images` → bounded decode + resize →
//! preprocessing into network inputs. No model: everything before the forward pass.
//!
//! Input: first byte picks the content type, the rest is the body. Must hold for any input:
//! no panic, errors are 4xx, at most `max_images` images, every image the right size and
//! every preprocessed value finite.

#![no_main]

use std::cell::RefCell;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use libfuzzer_sys::fuzz_target;
use vggserve::api::upload::{read_images, UploadLimits};
use vggserve::data::decode::{load_image, ImageSpec, ResizeFilter};
use vggserve::model::Preprocessing;

const BOUNDARY: &str = "vggfuzz";
const LIMITS: UploadLimits = UploadLimits {
    max_body_bytes: 1 << 20,
    max_images: 4,
};

thread_local! {
    static RUNTIME: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread().build().unwrap(),
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let multipart = format!("multipart/form-data; boundary={BOUNDARY}");
    let content_type = match selector % 4 {
        0 | 1 => multipart.as_str(),
        2 => "image/jpeg",
        _ => "application/octet-stream",
    };
    let request = Request::builder()
        .method("POST")
        .uri("/v1/predict")
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, body.len())
        .body(Body::from(body.to_vec()))
        .unwrap();
    let uploads = match RUNTIME.with(|rt| rt.borrow().block_on(read_images(LIMITS, request))) {
        Ok(uploads) => uploads,
        Err(error) => {
            assert!(error.status.is_client_error(), "{error:?}");
            return;
        }
    };
    assert!(!uploads.is_empty() && uploads.len() <= LIMITS.max_images);
    let spec = ImageSpec {
        size: 32,
        filter: if selector & 0x80 == 0 {
            ResizeFilter::Nearest
        } else {
            ResizeFilter::Bilinear
        },
        max_pixels: 1 << 20,
    };
    for (_, bytes) in uploads {
        let Ok(rgb) = load_image(&bytes, &spec) else {
            continue;
        };
        assert_eq!(rgb.len(), 32 * 32 * 3);
        for preprocessing in [
            Preprocessing::Rgb01,
            Preprocessing::Caffe,
            Preprocessing::Torch,
        ] {
            let mut inputs = Vec::new();
            preprocessing.extend_hwc(&rgb, &mut inputs);
            assert_eq!(inputs.len(), rgb.len());
            assert!(inputs.iter().all(|v| v.is_finite()));
        }
    }
});

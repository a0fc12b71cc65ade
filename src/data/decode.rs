//! Decoding untrusted image bytes into the model's input size.
//!
//! Bounded before it allocates: the header's declared dimensions are checked against a
//! pixel limit first, and `image`'s own allocation limit backs that up. EXIF orientation
//! is applied (phones store portraits rotated), then RGB, then a resize to a square.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use serde::{Deserialize, Serialize};

/// How images are resized to the model's input. `Nearest` is what Keras's `load_img`
/// (and so the seed) does; `Bilinear` is smoother for downscaling large photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResizeFilter {
    #[default]
    Nearest,
    Bilinear,
}

/// Default upper bound on declared width × height (40 megapixels).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// What the decoder accepts and what it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSpec {
    /// Output side in pixels (square).
    pub size: u32,
    pub filter: ResizeFilter,
    /// Refuse images whose header declares more pixels than this.
    pub max_pixels: u64,
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            size: 150,
            filter: ResizeFilter::Nearest,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("not an image in a supported format (JPEG, PNG, WebP, GIF, BMP)")]
    UnsupportedFormat,
    #[error("image declares {width}x{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
}

impl DecodeError {
    /// Whether the bytes are an image we could not read (422) rather than not an image (415).
    pub fn is_unprocessable(&self) -> bool {
        matches!(self, Self::TooManyPixels { .. } | Self::Corrupt(_))
    }
}

/// Decode to an upright RGB image, refusing oversized ones before decoding pixels.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(DecodeError::UnsupportedFormat);
    }
    let mut limits = image::Limits::default();
    // 4 bytes per pixel (RGBA) plus headroom for the decoder's own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    reader.limits(limits);
    // The JPEG decoder pads a truncated scan with grey instead of failing; a JPEG whose
    // end-of-image marker is missing is cut short, and must not be classified as if whole.
    if reader.format() == Some(image::ImageFormat::Jpeg)
        && !bytes.windows(2).any(|w| w == [0xFF, 0xD9])
    {
        return Err(DecodeError::Corrupt(
            "truncated JPEG (no end-of-image marker)".into(),
        ));
    }
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image.into_rgb8())
}

/// The dimensions an image file declares in its header, refused over `max_pixels`; no
/// pixel is decoded (checks uploaded datasets before they are accepted).
pub fn check_declared_size(
    path: &std::path::Path,
    max_pixels: u64,
) -> Result<(u32, u32), DecodeError> {
    let mut reader = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(DecodeError::UnsupportedFormat);
    }
    // Only the header is read: the allocation limit (sized for decoding) would refuse a
    // large declared image as "over the memory limit" before its size could be named.
    reader.no_limits();
    let (width, height) = reader.into_dimensions().map_err(classify)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }
    Ok((width, height))
}

fn classify(error: image::ImageError) -> DecodeError {
    match error {
        image::ImageError::Unsupported(_) => DecodeError::UnsupportedFormat,
        image::ImageError::Limits(e) => DecodeError::Corrupt(format!("over the memory limit: {e}")),
        other => DecodeError::Corrupt(other.to_string()),
    }
}

/// Resize to `spec.size` square (aspect not kept, as Keras's `target_size`) → HWC RGB bytes.
pub fn resize_rgb(image: &RgbImage, spec: &ImageSpec) -> Vec<u8> {
    let filter = match spec.filter {
        ResizeFilter::Nearest => image::imageops::FilterType::Nearest,
        ResizeFilter::Bilinear => image::imageops::FilterType::Triangle,
    };
    if image.width() == spec.size && image.height() == spec.size {
        return image.as_raw().clone();
    }
    image::imageops::resize(image, spec.size, spec.size, filter).into_raw()
}

/// Decode and resize in one step: the HWC RGB bytes of a `size × size` image.
pub fn load_image(bytes: &[u8], spec: &ImageSpec) -> Result<Vec<u8>, DecodeError> {
    Ok(resize_rgb(&decode_rgb(bytes, spec.max_pixels)?, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_and_resizes_to_square() {
        let spec = ImageSpec {
            size: 10,
            ..Default::default()
        };
        let out = load_image(&png(40, 20), &spec).unwrap();
        assert_eq!(out.len(), 10 * 10 * 3);
    }

    #[test]
    fn declared_size_is_read_from_the_header_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        std::fs::write(&path, png(30, 20)).unwrap();
        assert_eq!(check_declared_size(&path, 600), Ok((30, 20)));
        assert_eq!(
            check_declared_size(&path, 599),
            Err(DecodeError::TooManyPixels {
                width: 30,
                height: 20,
                limit: 599
            })
        );
    }

    #[test]
    fn refuses_bad_bytes_with_distinct_errors() {
        assert_eq!(decode_rgb(&[], 100), Err(DecodeError::Empty));
        assert_eq!(
            decode_rgb(b"hello, not an image", 100),
            Err(DecodeError::UnsupportedFormat)
        );
        let mut jpeg = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::new(32, 32))
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        assert!(decode_rgb(&jpeg, 10_000).is_ok());
        assert!(matches!(
            decode_rgb(&jpeg[..jpeg.len() - 10], 10_000),
            Err(DecodeError::Corrupt(_))
        ));
        let bytes = png(20, 20);
        assert!(matches!(
            decode_rgb(&bytes[..bytes.len() / 2], 1000),
            Err(DecodeError::Corrupt(_))
        ));
        assert_eq!(
            decode_rgb(&bytes, 100),
            Err(DecodeError::TooManyPixels {
                width: 20,
                height: 20,
                limit: 100
            })
        );
    }
}

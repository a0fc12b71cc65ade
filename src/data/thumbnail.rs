//! Small JPEG previews of a dataset's photos (the dashboard's thumbnails of classes and of
//! misclassified photos). Only a photo the dataset itself indexes can be named: the request
//! gives a path relative to the dataset's folder, and it must be one of its samples, so no
//! path can reach anything else on the machine.

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};

use super::dataset::{Dataset, DatasetError};
use super::decode::{decode_rgb, DecodeError};

/// Largest thumbnail side in pixels.
pub const MAX_SIDE: u32 = 512;

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("{file:?} is not a photo of dataset {dataset:?}")]
    NotInDataset { dataset: String, file: String },
    #[error("size must be between 16 and {MAX_SIDE}, got {0}")]
    Size(u32),
    #[error("cannot read {file:?}: {source}")]
    Unreadable {
        file: String,
        source: std::io::Error,
    },
    #[error("{file:?}: {source}")]
    Decode { file: String, source: DecodeError },
    #[error("encoding the thumbnail: {0}")]
    Encode(#[from] image::ImageError),
}

/// A JPEG of at most `size` pixels a side of the photo `file` (relative to the dataset's
/// folder, as evaluations name it) of dataset `name`.
pub fn render(
    datasets_dir: &Path,
    name: &str,
    file: &str,
    size: u32,
    max_pixels: u64,
) -> Result<Vec<u8>, ThumbnailError> {
    if !(16..=MAX_SIDE).contains(&size) {
        return Err(ThumbnailError::Size(size));
    }
    let dataset = Dataset::open(datasets_dir, name)?;
    let wanted = dataset.root.join(file);
    let known = dataset
        .splits
        .values()
        .flat_map(|split| &split.samples)
        .any(|sample| sample.path == wanted);
    // `wanted` is compared with the indexed paths as given: `..` or an absolute path can
    // never equal one of them, since they are the folder's own entries.
    if !known || Path::new(file).is_absolute() || file.split('/').any(|c| c == ".." || c.is_empty())
    {
        return Err(ThumbnailError::NotInDataset {
            dataset: name.to_owned(),
            file: file.to_owned(),
        });
    }
    let bytes = std::fs::read(&wanted).map_err(|source| ThumbnailError::Unreadable {
        file: file.to_owned(),
        source,
    })?;
    let rgb = decode_rgb(&bytes, max_pixels).map_err(|source| ThumbnailError::Decode {
        file: file.to_owned(),
        source,
    })?;
    let thumbnail = DynamicImage::ImageRgb8(rgb).resize(size, size, FilterType::Triangle);
    let mut out = Vec::new();
    thumbnail
        .into_rgb8()
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo_dataset() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("pets/train/cats");
        std::fs::create_dir_all(&class).unwrap();
        let image = image::RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 9]));
        image.save(class.join("a.png")).unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"not yours").unwrap();
        dir
    }

    #[test]
    fn serves_only_the_datasets_own_photos_scaled_down() {
        let dir = photo_dataset();
        let jpeg = render(dir.path(), "pets", "train/cats/a.png", 64, 1 << 20).unwrap();
        let thumbnail = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((thumbnail.width(), thumbnail.height()), (64, 43));
        for file in [
            "../secret.txt",
            "train/cats/../../../secret.txt",
            "/etc/passwd",
            "train/cats/b.png",
            "train//cats/a.png",
        ] {
            assert!(
                matches!(
                    render(dir.path(), "pets", file, 64, 1 << 20),
                    Err(ThumbnailError::NotInDataset { .. })
                ),
                "{file}"
            );
        }
        assert!(matches!(
            render(dir.path(), "pets", "train/cats/a.png", 4, 1 << 20),
            Err(ThumbnailError::Size(4))
        ));
        assert!(matches!(
            render(dir.path(), "../x", "a.png", 64, 1 << 20),
            Err(ThumbnailError::Dataset(_))
        ));
    }
}

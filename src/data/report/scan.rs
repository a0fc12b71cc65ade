//! Reading a dataset for its report: the class folders and image files on disk, and what
//! is kept of each file after reading it once (SHA-256 of the bytes, decoded size, and a
//! 64-bit difference hash), never its pixels.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use image::RgbImage;
use sha2::{Digest, Sha256};

use crate::data::dataset::{Dataset, SPLITS};
use crate::data::decode::decode_rgb;

/// One image file of the dataset, as the report sees it.
#[derive(Debug, Clone)]
pub(super) struct File {
    pub(super) split: usize,
    pub(super) class: String,
    /// Relative to the dataset root, with `/`.
    pub(super) relative: String,
    pub(super) path: PathBuf,
}

/// What is kept of a file after reading it: hashes and size, never pixels.
#[derive(Debug, Clone)]
pub(super) struct Facts {
    pub(super) sha256: Option<[u8; 32]>,
    pub(super) decoded: Result<Decoded, String>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Decoded {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) dhash: u64,
}

/// The class folders of each split present on disk (empty ones included, which the
/// dataset index leaves out) and every image file, in split order.
pub(super) fn files_of(dataset: &Dataset) -> (BTreeMap<usize, BTreeSet<String>>, Vec<File>) {
    let mut folders: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    for (index, split) in SPLITS.iter().enumerate() {
        let dir = dataset.root.join(split);
        let mut classes = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            classes.extend(
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.')),
            );
        }
        let Some(data) = dataset.splits.get(*split) else {
            if dir.is_dir() {
                folders.insert(index, classes);
            }
            continue;
        };
        classes.extend(data.classes.iter().cloned());
        folders.insert(index, classes);
        for sample in &data.samples {
            let class = data.classes[sample.label].clone();
            let name = sample
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(File {
                split: index,
                relative: format!("{split}/{class}/{name}"),
                class,
                path: sample.path.clone(),
            });
        }
    }
    (folders, files)
}

pub(super) fn examine(path: &Path, max_pixels: u64) -> Facts {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Facts {
                sha256: None,
                decoded: Err(format!("cannot read the file: {e}")),
            }
        }
    };
    let sha256 = Some(Sha256::digest(&bytes).into());
    let decoded = decode_rgb(&bytes, max_pixels)
        .map(|image| Decoded {
            width: image.width(),
            height: image.height(),
            dhash: dhash(&image),
        })
        .map_err(|e| e.to_string());
    Facts { sha256, decoded }
}

/// 64-bit difference hash: grayscale 9×8, one bit per horizontally adjacent pair (set when
/// the left pixel is brighter). Insensitive to scale, compression and small colour shifts.
pub fn dhash(image: &RgbImage) -> u64 {
    let small = if image.width() >= 9 && image.height() >= 8 {
        // Box averaging (every source pixel counts once): fast and right for downscaling.
        image::imageops::thumbnail(image, 9, 8)
    } else {
        image::imageops::resize(image, 9, 8, image::imageops::FilterType::Triangle)
    };
    let luma = |x: u32, y: u32| {
        let [r, g, b] = small.get_pixel(x, y).0;
        299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)
    };
    let mut bits = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            bits = (bits << 1) | u64::from(luma(x, y) > luma(x + 1, y));
        }
    }
    bits
}

//! Checks of a dataset before training: a [`DatasetReport`].
//!
//! Every image file is read once (on rayon's threads, one file per thread at a time: only
//! hashes and sizes are kept, never the images): its bytes are hashed (SHA-256), it is
//! decoded with [`decode_rgb`](crate::data::decode::decode_rgb) under the pixel limit, and
//! a 64-bit difference hash (dHash) is taken of the decoded image. From those the report
//! finds:
//!
//! - images per split and class, and unreadable or truncated files (skipped by training);
//! - exact duplicates (same bytes) within a split (a warning) and across splits (an error:
//!   a photo in both train and test inflates the test score), every cross-split pair named;
//! - near-duplicates across splits: dHash Hamming distance ≤ [`NEAR_DUPLICATE_MAX_DISTANCE`]
//!   (the same photo resized or re-encoded; a warning);
//! - class imbalance (largest / smallest class per split), the image size range, classes
//!   with too few images, and empty classes (an error).
//!
//! `errors` are what blocks training (a `train` or `fine_tune` job is refused unless it says
//! `allow_leaks`); `warnings` are worth reading first. Reports are cached by content under
//! `<data_dir>/reports/<dataset>/<key>.json` ([`cached`]); the key hashes every file's
//! relative path, size and modification time, so a changed file gives a new report.
//!
//! No HTTP and no store here: the API and the upload path call [`cached`].
//!
//! Parts: `scan` lists the files and reads each one once ([`dhash`] among what it keeps),
//! `cache` keys and stores reports ([`cached`]), `findings` turns the facts into a report,
//! and `words` phrases its warnings and errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dataset::Dataset;

mod cache;
mod findings;
mod scan;
mod words;

pub use cache::{cache_dir, cached, content_key, Cached};
pub use scan::dhash;

use cache::key_of;
use findings::build;
use scan::files_of;

/// Bumped whenever what a report contains or how it is computed changes: it is part of the
/// cache key, so older cached reports are recomputed.
pub const REPORT_VERSION: u32 = 1;

/// Two images from different splits whose dHashes differ in at most this many of 64 bits
/// are reported as near-duplicates. Measured (docs/BENCHMARKS.md, "Dataset reports"; the
/// ignored test `dhash_threshold_experiment`) on the train splits only of both shared
/// datasets, 2,400 photos: a copy resized by 10% and re-encoded as JPEG at quality 60 lies
/// at distance 0–5 from its original (2,395 of 2,400 within 4); of 2.08 million pairs of
/// different files, 1 lies within 6 (at 0: most likely the same photo saved twice), 2
/// within 7, 8 within 8 and 3,603 within 16. 6 keeps every modified copy with a bit to
/// spare and flags about one unrelated pair in two million.
pub const NEAR_DUPLICATE_MAX_DISTANCE: u32 = 6;

/// A class with fewer training images than this is flagged as too few to train on: with
/// the default batch of 20, fewer than one batch per class, and a 2-million-parameter head
/// (recipe 1) or a fine-tuned conv block (recipe 3) memorises that many photos in a few
/// epochs rather than learning the class.
pub const MIN_TRAIN_IMAGES_PER_CLASS: u64 = 20;

/// A class with fewer validation or test images than this is flagged as too few to measure
/// on: with 5 images one photo moves the class's accuracy by 20 points.
pub const MIN_EVAL_IMAGES_PER_CLASS: u64 = 5;

/// Largest / smallest class above this is flagged: at 1.5 a model that always answers the
/// larger class already scores 60% accuracy on two classes, and the recipes' loss is
/// unweighted.
pub const IMBALANCE_WARNING_RATIO: f64 = 1.5;

/// What a report found, in numbers, lists and words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatasetReport {
    /// The content key the report was computed for (SHA-256 over every file's relative
    /// path, size and modification time, and the report's settings).
    pub key: String,
    /// By split: image counts per class, unreadable files, imbalance and sizes.
    pub splits: BTreeMap<String, SplitReport>,
    /// The size range of every readable image (before resizing), when there is one.
    pub image_size: Option<SizeRange>,
    /// Files that cannot be read or decoded (training skips them).
    pub unreadable: Vec<UnreadableFile>,
    /// Sets of files with identical bytes (2 or more), in any splits.
    pub duplicate_groups: Vec<DuplicateGroup>,
    /// Every pair of identical files in two different splits.
    pub cross_split_duplicates: Vec<FilePair>,
    /// Pairs of near-identical images (by perceptual hash) in two different splits that are
    /// not identical files.
    pub near_duplicates: Vec<FilePair>,
    /// Splits in which a class has no readable image.
    pub empty_classes: Vec<EmptyClass>,
    /// The thresholds the findings were made with.
    pub thresholds: Thresholds,
    /// Findings worth reading before training, in plain words.
    pub warnings: Vec<String>,
    /// What blocks training, in plain words: a train or fine_tune job on this dataset is
    /// refused unless it sets `allow_leaks`.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SplitReport {
    /// Image files in the split.
    pub images: u64,
    /// Of them, files that cannot be read.
    pub unreadable: u64,
    /// By class (every class folder of any split).
    pub classes: BTreeMap<String, ClassCount>,
    /// Readable images of the largest class / of the smallest; absent when a class has none.
    pub imbalance: Option<f64>,
    pub image_size: Option<SizeRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClassCount {
    pub images: u64,
    pub unreadable: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SizeRange {
    pub min_width: u32,
    pub max_width: u32,
    pub min_height: u32,
    pub max_height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnreadableFile {
    /// Relative to the dataset folder, e.g. `train/cats/cat.1.jpg`.
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DuplicateGroup {
    /// SHA-256 of the files' bytes, hex.
    pub sha256: String,
    /// Relative paths, sorted by split (train, validation, test) then path.
    pub files: Vec<String>,
}

/// Two files in different splits: `a` in the earlier split (train, validation, test).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FilePair {
    pub a: String,
    pub b: String,
    /// dHash Hamming distance (0–64); 0 for identical files.
    pub distance: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmptyClass {
    pub split: String,
    pub class: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Thresholds {
    pub near_duplicate_max_distance: u32,
    pub min_train_images_per_class: u64,
    pub min_eval_images_per_class: u64,
    pub imbalance_warning_ratio: f64,
    pub max_pixels: u64,
}

impl Thresholds {
    fn new(max_pixels: u64) -> Self {
        Self {
            near_duplicate_max_distance: NEAR_DUPLICATE_MAX_DISTANCE,
            min_train_images_per_class: MIN_TRAIN_IMAGES_PER_CLASS,
            min_eval_images_per_class: MIN_EVAL_IMAGES_PER_CLASS,
            imbalance_warning_ratio: IMBALANCE_WARNING_RATIO,
            max_pixels,
        }
    }
}

impl DatasetReport {
    /// Whether training on the dataset is refused (without `allow_leaks`).
    pub fn blocks_training(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// Compute the report without any cache.
pub fn compute(dataset: &Dataset, max_pixels: u64) -> DatasetReport {
    let (folders, files) = files_of(dataset);
    let key = key_of(&folders, &files, max_pixels);
    build(&folders, &files, key, max_pixels)
}

#[cfg(test)]
mod tests;

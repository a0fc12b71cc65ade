//! Checks of a dataset before training: a [`DatasetReport`].
//!
//! Every image file is read once (on rayon's threads, one file per thread at a time: only
//! hashes and sizes are kept, never the images): its bytes are hashed (SHA-256), it is
//! decoded with [`decode_rgb`] under the pixel limit, and a 64-bit difference hash (dHash)
//! is taken of the decoded image. From those the report finds:
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::dataset::{Dataset, SPLITS};
use super::decode::decode_rgb;

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

/// How many files or pairs a warning or error names before it says "and N more" (the
/// report's lists name them all).
const NAMED_IN_MESSAGES: usize = 20;

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

/// One image file of the dataset, as the report sees it.
#[derive(Debug, Clone)]
struct File {
    split: usize,
    class: String,
    /// Relative to the dataset root, with `/`.
    relative: String,
    path: PathBuf,
}

/// What is kept of a file after reading it: hashes and size, never pixels.
#[derive(Debug, Clone)]
struct Facts {
    sha256: Option<[u8; 32]>,
    decoded: Result<Decoded, String>,
}

#[derive(Debug, Clone, Copy)]
struct Decoded {
    width: u32,
    height: u32,
    dhash: u64,
}

/// The class folders of each split present on disk (empty ones included, which the
/// dataset index leaves out) and every image file, in split order.
fn files_of(dataset: &Dataset) -> (BTreeMap<usize, BTreeSet<String>>, Vec<File>) {
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

/// The cache key: SHA-256 over the report's version and settings, the class folders, and
/// every file's relative path, size and modification time (ns), sorted. Cheap: metadata
/// only. Symlinked files count as their targets.
pub fn content_key(dataset: &Dataset, max_pixels: u64) -> String {
    let (folders, files) = files_of(dataset);
    key_of(&folders, &files, max_pixels)
}

fn key_of(folders: &BTreeMap<usize, BTreeSet<String>>, files: &[File], max_pixels: u64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "vggserve dataset report v{REPORT_VERSION}\nmax_pixels {max_pixels}\nnear {NEAR_DUPLICATE_MAX_DISTANCE}\n"
    ));
    for (split, classes) in folders {
        for class in classes {
            hasher.update(format!("dir {}/{class}\n", SPLITS[*split]));
        }
    }
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| match std::fs::metadata(&f.path) {
            Ok(meta) => {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("file {}\0{}\0{mtime}\n", f.relative, meta.len())
            }
            Err(e) => format!("file {}\0error {}\n", f.relative, e.kind()),
        })
        .collect();
    lines.sort();
    for line in lines {
        hasher.update(line);
    }
    hex::encode(hasher.finalize())
}

/// A report, and whether it was read from the cache.
#[derive(Debug, Clone)]
pub struct Cached {
    pub report: DatasetReport,
    pub hit: bool,
}

/// The folder holding a dataset's cached reports.
pub fn cache_dir(data_dir: &Path, dataset: &str) -> PathBuf {
    data_dir.join("reports").join(dataset)
}

/// The report for the dataset's current content: read from `<data_dir>/reports/<name>/`
/// when one was computed for the same key, else computed and written there (atomically;
/// earlier reports of the dataset are removed). A cache that cannot be read or written is
/// logged and skipped, never an error.
pub fn cached(dataset: &Dataset, data_dir: &Path, max_pixels: u64) -> Cached {
    let (folders, files) = files_of(dataset);
    let key = key_of(&folders, &files, max_pixels);
    let dir = cache_dir(data_dir, &dataset.name);
    let path = dir.join(format!("{key}.json"));
    if let Ok(text) = std::fs::read(&path) {
        match serde_json::from_slice::<DatasetReport>(&text) {
            Ok(report) if report.key == key => return Cached { report, hit: true },
            _ => tracing::warn!(path = %path.display(), "ignoring an unreadable cached report"),
        }
    }
    let report = build(&folders, &files, key, max_pixels);
    if let Err(error) = store(&dir, &path, &report) {
        tracing::warn!(%error, dir = %dir.display(), "could not cache the dataset report");
    }
    Cached { report, hit: false }
}

fn store(dir: &Path, path: &Path, report: &DatasetReport) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(&serde_json::to_vec_pretty(report)?)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    // Only the current report is kept.
    for entry in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        let other = entry.path();
        if other != path && other.extension().is_some_and(|e| e == "json") {
            let _ = std::fs::remove_file(other);
        }
    }
    Ok(())
}

/// Compute the report without any cache.
pub fn compute(dataset: &Dataset, max_pixels: u64) -> DatasetReport {
    let (folders, files) = files_of(dataset);
    let key = key_of(&folders, &files, max_pixels);
    build(&folders, &files, key, max_pixels)
}

fn examine(path: &Path, max_pixels: u64) -> Facts {
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

fn build(
    folders: &BTreeMap<usize, BTreeSet<String>>,
    files: &[File],
    key: String,
    max_pixels: u64,
) -> DatasetReport {
    let facts: Vec<Facts> = files
        .par_iter()
        .map(|f| examine(&f.path, max_pixels))
        .collect();
    let all_classes: BTreeSet<String> = folders.values().flatten().cloned().collect();

    // Counts, sizes and unreadable files.
    let mut splits: BTreeMap<usize, SplitReport> = folders
        .keys()
        .map(|&split| {
            let classes = all_classes
                .iter()
                .map(|c| {
                    let zero = ClassCount {
                        images: 0,
                        unreadable: 0,
                    };
                    (c.clone(), zero)
                })
                .collect();
            let report = SplitReport {
                images: 0,
                unreadable: 0,
                classes,
                imbalance: None,
                image_size: None,
            };
            (split, report)
        })
        .collect();
    let mut unreadable = Vec::new();
    let mut overall: Option<SizeRange> = None;
    for (file, fact) in files.iter().zip(&facts) {
        let Some(split) = splits.get_mut(&file.split) else {
            continue;
        };
        split.images += 1;
        let count = split
            .classes
            .entry(file.class.clone())
            .or_insert(ClassCount {
                images: 0,
                unreadable: 0,
            });
        count.images += 1;
        match &fact.decoded {
            Ok(d) => {
                grow(&mut split.image_size, d.width, d.height);
                grow(&mut overall, d.width, d.height);
            }
            Err(reason) => {
                split.unreadable += 1;
                count.unreadable += 1;
                unreadable.push(UnreadableFile {
                    file: file.relative.clone(),
                    reason: reason.clone(),
                });
            }
        }
    }
    let mut empty_classes = Vec::new();
    for (&split, report) in &mut splits {
        let readable: Vec<u64> = report
            .classes
            .values()
            .map(|c| c.images - c.unreadable)
            .collect();
        let (largest, smallest) = (
            readable.iter().copied().max().unwrap_or(0),
            readable.iter().copied().min().unwrap_or(0),
        );
        if smallest > 0 {
            report.imbalance = Some(largest as f64 / smallest as f64);
        }
        // A split without a single image is one finding (below), not one per class.
        if largest > 0 {
            for (class, count) in &report.classes {
                if count.images == count.unreadable {
                    empty_classes.push(EmptyClass {
                        split: SPLITS[split].to_owned(),
                        class: class.clone(),
                    });
                }
            }
        }
    }

    // Exact duplicates: only readable images count (training skips the others).
    let mut by_hash: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    for (i, fact) in facts.iter().enumerate() {
        if let (Some(sha), Ok(_)) = (fact.sha256, &fact.decoded) {
            by_hash.entry(sha).or_default().push(i);
        }
    }
    let mut groups: Vec<(String, Vec<usize>)> = by_hash
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(sha, members)| (hex::encode(sha), members))
        .collect();
    // Files are in split order already; sort groups by their first file.
    groups.sort_by_key(|(_, members)| members[0]);
    let mut cross_split = Vec::new();
    let mut within_split: Vec<Vec<usize>> = Vec::new();
    for (_, members) in &groups {
        for (n, &i) in members.iter().enumerate() {
            for &j in &members[n + 1..] {
                if files[i].split != files[j].split {
                    cross_split.push(pair(files, i, j, 0));
                }
            }
        }
        for split in folders.keys() {
            let here: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| files[i].split == *split)
                .collect();
            if here.len() > 1 {
                within_split.push(here);
            }
        }
    }
    let duplicate_groups = groups
        .iter()
        .map(|(sha, members)| DuplicateGroup {
            sha256: sha.clone(),
            files: members.iter().map(|&i| files[i].relative.clone()).collect(),
        })
        .collect();

    // Near-duplicates across splits: every pair of readable images in two splits within
    // the distance, except identical files (already reported).
    let hashed: Vec<(usize, u64)> = facts
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.decoded.as_ref().ok().map(|d| (i, d.dhash)))
        .collect();
    let mut near: Vec<(usize, usize, u32)> = hashed
        .par_iter()
        .enumerate()
        .flat_map_iter(|(n, &(i, hash_i))| {
            hashed[n + 1..].iter().filter_map(move |&(j, hash_j)| {
                let distance = (hash_i ^ hash_j).count_ones();
                (distance <= NEAR_DUPLICATE_MAX_DISTANCE && files[i].split != files[j].split)
                    .then_some((i, j, distance))
            })
        })
        .filter(|&(i, j, _)| facts[i].sha256 != facts[j].sha256)
        .collect();
    near.sort_unstable();
    let near_duplicates: Vec<FilePair> = near
        .into_iter()
        .map(|(i, j, distance)| pair(files, i, j, distance))
        .collect();

    let mut report = DatasetReport {
        key,
        splits: splits
            .into_iter()
            .map(|(split, report)| (SPLITS[split].to_owned(), report))
            .collect(),
        image_size: overall,
        unreadable,
        duplicate_groups,
        cross_split_duplicates: cross_split,
        near_duplicates,
        empty_classes,
        thresholds: Thresholds::new(max_pixels),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let within: Vec<Vec<&File>> = within_split
        .iter()
        .map(|group| group.iter().map(|&i| &files[i]).collect())
        .collect();
    words(&mut report, &within);
    report
}

fn grow(range: &mut Option<SizeRange>, width: u32, height: u32) {
    let r = range.get_or_insert(SizeRange {
        min_width: width,
        max_width: width,
        min_height: height,
        max_height: height,
    });
    r.min_width = r.min_width.min(width);
    r.max_width = r.max_width.max(width);
    r.min_height = r.min_height.min(height);
    r.max_height = r.max_height.max(height);
}

fn pair(files: &[File], i: usize, j: usize, distance: u32) -> FilePair {
    let (i, j) = if (files[i].split, &files[i].relative) <= (files[j].split, &files[j].relative) {
        (i, j)
    } else {
        (j, i)
    };
    FilePair {
        a: files[i].relative.clone(),
        b: files[j].relative.clone(),
        distance,
    }
}

/// The first [`NAMED_IN_MESSAGES`] items joined, and how many more there are.
fn named(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let mut text = items
        .iter()
        .take(NAMED_IN_MESSAGES)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > NAMED_IN_MESSAGES {
        text.push_str(&format!(
            "; and {} more (the report lists them all)",
            items.len() - NAMED_IN_MESSAGES
        ));
    }
    text
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The findings in words: `errors` block training, `warnings` do not.
fn words(report: &mut DatasetReport, within_split: &[Vec<&File>]) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if !report.cross_split_duplicates.is_empty() {
        errors.push(format!(
            "{} in two splits (identical bytes): a photo in both train and validation or test \
             inflates the score measured on it; remove one copy of each: {}",
            plural(
                report.cross_split_duplicates.len(),
                "file is duplicated",
                "files are duplicated"
            ),
            named(
                report
                    .cross_split_duplicates
                    .iter()
                    .map(|p| format!("{} = {}", p.a, p.b))
            )
        ));
    }
    for empty in &report.empty_classes {
        errors.push(format!(
            "class {:?} has no readable images in {}/ (every split needs every class)",
            empty.class, empty.split
        ));
    }
    for (split, data) in &report.splits {
        if data.images == data.unreadable {
            warnings.push(format!("{split}/ has no readable images"));
        }
    }
    if !report.unreadable.is_empty() {
        warnings.push(format!(
            "{} cannot be read and will be skipped: {}",
            plural(report.unreadable.len(), "file", "files"),
            named(
                report
                    .unreadable
                    .iter()
                    .map(|u| format!("{} ({})", u.file, u.reason))
            )
        ));
    }
    if !within_split.is_empty() {
        warnings.push(format!(
            "{} of identical files within a split (the same photo counted twice): {}",
            plural(within_split.len(), "set", "sets"),
            named(within_split.iter().map(|group| {
                let names: Vec<&str> = group.iter().map(|f| f.relative.as_str()).collect();
                let classes: BTreeSet<&str> = group.iter().map(|f| f.class.as_str()).collect();
                let labels = if classes.len() > 1 {
                    " (labelled as different classes)"
                } else {
                    ""
                };
                format!("{}{labels}", names.join(" = "))
            }))
        ));
    }
    if !report.near_duplicates.is_empty() {
        warnings.push(format!(
            "{} of near-identical photos in two splits (perceptual hash within {} of 64 bits: \
             likely the same photo resized or re-encoded), which would inflate the score \
             measured on them: {}",
            plural(report.near_duplicates.len(), "pair", "pairs"),
            NEAR_DUPLICATE_MAX_DISTANCE,
            named(
                report
                    .near_duplicates
                    .iter()
                    .map(|p| format!("{} ~ {} (distance {})", p.a, p.b, p.distance))
            )
        ));
    }
    for (split, data) in &report.splits {
        let readable = |c: &ClassCount| c.images - c.unreadable;
        if let Some(ratio) = data.imbalance {
            if ratio > IMBALANCE_WARNING_RATIO {
                let counts: Vec<String> = data
                    .classes
                    .iter()
                    .map(|(class, c)| format!("{} {class}", readable(c)))
                    .collect();
                warnings.push(format!(
                    "{split}/ is imbalanced: {} (largest/smallest {ratio:.1}); accuracy alone \
                     will flatter a model that favours the larger class",
                    counts.join(", ")
                ));
            }
        }
        let (minimum, purpose) = if split == "train" {
            (MIN_TRAIN_IMAGES_PER_CLASS, "to train on")
        } else {
            (MIN_EVAL_IMAGES_PER_CLASS, "to measure on")
        };
        for (class, count) in &data.classes {
            let n = readable(count);
            if n > 0 && n < minimum {
                warnings.push(format!(
                    "class {class:?} has only {n} readable images in {split}/: too few {purpose} \
                     (fewer than {minimum})"
                ));
            }
        }
    }
    report.errors = errors;
    report.warnings = warnings;
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;

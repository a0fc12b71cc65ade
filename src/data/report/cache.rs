//! The report cache: a content key over the dataset's metadata (cheap: no file is read),
//! and one report per dataset under `<data_dir>/reports/<dataset>/<key>.json`, written
//! atomically; a cache that cannot be read or written is skipped, never an error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::findings::build;
use super::scan::{files_of, File};
use super::{DatasetReport, NEAR_DUPLICATE_MAX_DISTANCE, REPORT_VERSION};
use crate::data::dataset::{Dataset, SPLITS};

/// The cache key: SHA-256 over the report's version and settings, the class folders, and
/// every file's relative path, size and modification time (ns), sorted. Cheap: metadata
/// only. Symlinked files count as their targets.
pub fn content_key(dataset: &Dataset, max_pixels: u64) -> String {
    let (folders, files) = files_of(dataset);
    key_of(&folders, &files, max_pixels)
}

pub(super) fn key_of(
    folders: &BTreeMap<usize, BTreeSet<String>>,
    files: &[File],
    max_pixels: u64,
) -> String {
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

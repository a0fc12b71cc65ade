//! Cache of conv-base outputs per image, so re-running `extract_features` over the same
//! photos (or another dataset sharing them) skips the network.
//!
//! Key: SHA-256 of the file's bytes + the weights' SHA-256 + preprocessing + precision (for
//! int8, with a hash of its calibrated ranges) + image size + resize filter — everything the output depends on. One file per image under
//! `<data>/cache/features/<config>/<ab>/<hash>.f32`: raw little-endian floats, written to
//! a temp file and renamed, and checked for length on read (a bad entry is a miss). With a
//! shared artifact store, entries are shared between machines by that same relative path.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::data::decode::ImageSpec;

#[derive(Debug, Clone)]
pub struct FeatureCache {
    data_dir: PathBuf,
    /// `cache/features/<config>`, relative to the data dir.
    dir: PathBuf,
    /// Floats per entry (C·H·W of the base's output).
    width: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CacheStats {
    pub entries: u64,
    pub bytes: u64,
}

pub fn cache_root(data_dir: &Path) -> PathBuf {
    data_dir.join(ROOT)
}

const ROOT: &str = "cache/features";

impl FeatureCache {
    pub fn new(
        data_dir: &Path,
        weights_sha256: &str,
        preprocessing: &str,
        precision: &str,
        spec: &ImageSpec,
        width: usize,
    ) -> Self {
        let config = format!(
            "{}-{preprocessing}-{precision}-{}-{:?}",
            weights_sha256.get(..16).unwrap_or(weights_sha256),
            spec.size,
            spec.filter
        )
        .to_ascii_lowercase();
        Self {
            data_dir: data_dir.to_owned(),
            dir: Path::new(ROOT).join(config),
            width,
        }
    }

    /// The content key of an image file's bytes.
    pub fn key(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// The entry's file, relative to the data dir (as other machines share it).
    pub fn relative(&self, key: &str) -> String {
        let file = self.dir.join(&key[..2]).join(format!("{key}.f32"));
        file.to_string_lossy().into_owned()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.data_dir.join(self.relative(key))
    }

    /// The cached features for `key`, if present and whole.
    pub fn get(&self, key: &str) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        if bytes.len() != self.width * 4 {
            return None;
        }
        Some(crate::tensor_io::f32s_from_le_bytes(&bytes))
    }

    /// Store features for `key` (atomically; errors only cost a future miss). Answers
    /// whether the entry was written.
    pub fn put(&self, key: &str, features: &[f32]) -> bool {
        let path = self.path(key);
        let result = (|| -> std::io::Result<()> {
            let dir = path.parent().expect("cache path has a parent");
            std::fs::create_dir_all(dir)?;
            let tmp = tempfile::NamedTempFile::new_in(dir)?;
            let bytes: Vec<u8> = features.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(tmp.path(), bytes)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        if let Err(error) = &result {
            tracing::warn!(%error, path = %path.display(), "could not write a feature-cache entry");
        }
        result.is_ok()
    }
}

/// Entries and bytes under the cache root.
pub fn stats(data_dir: &Path) -> CacheStats {
    let mut stats = CacheStats {
        entries: 0,
        bytes: 0,
    };
    let mut stack = vec![cache_root(data_dir)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if entry.path().extension().is_some_and(|e| e == "f32") {
                stats.entries += 1;
                stats.bytes += meta.len();
            }
        }
    }
    stats
}

/// Remove every entry; returns what was removed.
pub fn clear(data_dir: &Path) -> std::io::Result<CacheStats> {
    let before = stats(data_dir);
    match std::fs::remove_dir_all(cache_root(data_dir)) {
        Ok(()) => Ok(before),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(before),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_are_keyed_by_config_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ImageSpec::default();
        let new = |preprocessing, precision| {
            FeatureCache::new(
                dir.path(),
                "abcdef0123456789ff",
                preprocessing,
                precision,
                &spec,
                3,
            )
        };
        let cache = new("rgb01", "f32");
        let other = new("caffe", "f32");
        let bf16 = new("rgb01", "bf16");
        let int8 = new("rgb01", "int8-0a1b2c3d4e5f");
        let key = FeatureCache::key(b"photo bytes");
        assert_eq!(cache.get(&key), None);
        assert!(cache.put(&key, &[1.0, -2.5, 3.0]));
        assert_eq!(cache.get(&key), Some(vec![1.0, -2.5, 3.0]));
        assert_eq!(
            other.get(&key),
            None,
            "another preprocessing is another entry"
        );
        assert_eq!(bf16.get(&key), None, "another precision is another entry");
        assert_eq!(int8.get(&key), None, "so are int8 features");
        assert_eq!(
            stats(dir.path()),
            CacheStats {
                entries: 1,
                bytes: 12
            }
        );
        assert_eq!(clear(dir.path()).unwrap().entries, 1);
        assert_eq!(stats(dir.path()).entries, 0);
        assert_eq!(cache.get(&key), None);
    }
}

//! How many model folders a machine keeps: with a shared store every model is there, so
//! the copies an API replica fetches to predict, or a worker trains or fine-tunes from, are
//! a cache, bounded by `--local-models` (the most recent kept). Without a store the data
//! dir is the only copy and nothing is removed.

use std::path::PathBuf;

use super::Artifacts;

/// Model folders a machine keeps by default when the store has them all.
pub const DEFAULT_LOCAL_MODELS: u32 = 16;

impl Artifacts {
    /// Keep at most `n` model folders on this machine (see [`Artifacts::trim_models`]).
    pub fn keeping_models(mut self, n: usize) -> Self {
        self.local_models = n.max(1);
        self
    }

    /// After the model folder `rel` (`models/<id>`) was fetched or written here: keep the
    /// most recent `--local-models` model folders on this machine, `rel` among them, and
    /// remove the others (the store keeps every one; they are fetched again when needed).
    /// Nothing without a store, where the data dir is the only copy. Answers how many went.
    pub fn trim_models(&self, rel: &str) -> std::io::Result<usize> {
        if self.remote.is_none() {
            return Ok(0);
        }
        let keep = self.data_dir.join(rel);
        let Some(parent) = keep.parent() else {
            return Ok(0);
        };
        let mut folders: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(parent)?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter(|e| e.path() != keep)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        folders.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        let mut removed = 0;
        for (_, folder) in folders.iter().skip(self.local_models.saturating_sub(1)) {
            match std::fs::remove_dir_all(folder) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => removed += 1,
            }
        }
        Ok(removed)
    }
}

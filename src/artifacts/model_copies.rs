//! How many model folders a machine keeps: with a shared store, the copies an API replica
//! fetches to predict, or a worker fetches to fine-tune or evaluate, and the models a
//! worker trained once they are published, are a cache bounded by `--local-models`. A
//! folder may go only if it carries the `.in-store` mark (written when it was fetched, or
//! published from here; its time is its last use) and nothing here holds a [`Pin`] on it:
//! a model being loaded, or written and not yet published, stays, and so does every model
//! of a data dir that predates the store. Without a store nothing is ever removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::Artifacts;

pub const DEFAULT_LOCAL_MODELS: u32 = 16;

/// The mark of a model folder whose files are in the store.
const IN_STORE: &str = ".in-store";

/// A model folder on its way out is renamed to this prefix first.
const TRASH: &str = ".trash-";

/// A use younger than this is not written down again (a busy model is not touched on
/// every request).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

type Pins = Arc<Mutex<HashMap<String, usize>>>;

/// Holds a model folder on this machine while it lives.
pub struct Pin {
    pins: Pins,
    rel: String,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = pins.get_mut(&self.rel) {
            *count -= 1;
            if *count == 0 {
                pins.remove(&self.rel);
            }
        }
    }
}

impl Artifacts {
    /// Keep at most `n` model folders on this machine (see the module's note).
    pub fn keeping_models(mut self, n: usize) -> Self {
        self.local_models = n.max(1);
        self
    }

    /// Hold the model folder `rel` here until the guard drops.
    pub fn pin(&self, rel: &str) -> Pin {
        let mut pins = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        *pins.entry(rel.to_owned()).or_default() += 1;
        Pin {
            pins: self.pinned.clone(),
            rel: rel.to_owned(),
        }
    }

    /// The model folder `rel` (`models/<id>`), here or fetched from the store, held while
    /// the guard lives; `None` if the store lacks it too. Older copies beyond
    /// `--local-models` go (a failure to remove one is logged: it costs disk, not the call).
    pub async fn fetch_model(&self, rel: &str) -> anyhow::Result<Option<Pin>> {
        let pin = self.pin(rel);
        let was_here = self.data_dir.join(rel).exists();
        if !self.fetch(rel).await? {
            return Ok(None);
        }
        if self.remote.is_some() {
            let mark = self.data_dir.join(rel).join(IN_STORE);
            if !was_here || mark.exists() {
                self.mark_used(&mark);
                self.trim_logged(rel);
            }
        }
        Ok(Some(pin))
    }

    /// The model folder `rel`, written here, is now in the store: it may go like a fetched
    /// one, later.
    pub fn published_model(&self, rel: &str) {
        if self.remote.is_some() {
            self.mark_used(&self.data_dir.join(rel).join(IN_STORE));
            self.trim_logged(rel);
        }
    }

    fn mark_used(&self, mark: &Path) {
        let recent = std::fs::metadata(mark)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < TOUCH_EVERY));
        if !recent {
            if let Err(error) = std::fs::write(mark, b"") {
                tracing::warn!(%error, mark = %mark.display(), "cannot mark a model copy");
            }
        }
    }

    fn trim_logged(&self, rel: &str) {
        if let Err(error) = self.trim_models(rel) {
            tracing::warn!(%error, "cannot remove older local model copies");
        }
    }

    /// Remove the least recently used marked, unpinned model folders beside `rel` beyond
    /// `--local-models` (counting `rel`); answers how many went. The choice and a rename
    /// out of the way happen under the pins' lock, so a folder pinned a moment later is
    /// either kept or already gone (and fetched again by whoever pinned it); the deleting
    /// happens on a thread of its own.
    pub(super) fn trim_models(&self, rel: &str) -> std::io::Result<usize> {
        let keep = self.data_dir.join(rel);
        let Some(parent) = keep.parent() else {
            return Ok(0);
        };
        let mut folders: Vec<(SystemTime, PathBuf)> = Vec::new();
        let mut trash: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(parent)?.flatten() {
            let (path, name) = (entry.path(), entry.file_name());
            if name.to_string_lossy().starts_with(TRASH) {
                trash.push(path); // left by a process that died while deleting
            } else if path != keep && !name.to_string_lossy().starts_with('.') {
                if let Ok(used) = std::fs::metadata(path.join(IN_STORE)).and_then(|m| m.modified())
                {
                    folders.push((used, path));
                }
            }
        }
        folders.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
        let removed = {
            let pins = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
            let pinned = |path: &Path| pins.keys().any(|p| self.data_dir.join(p) == path);
            let mut removed = 0;
            for (_, folder) in folders.iter().skip(self.local_models.saturating_sub(1)) {
                if pinned(folder) {
                    continue;
                }
                let out = parent.join(format!("{TRASH}{}", uuid::Uuid::new_v4().simple()));
                match std::fs::rename(folder, &out) {
                    Ok(()) => trash.push(out),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                removed += 1;
            }
            removed
        };
        if !trash.is_empty() {
            std::thread::spawn(move || {
                for folder in trash {
                    let _ = std::fs::remove_dir_all(folder);
                }
            });
        }
        Ok(removed)
    }
}

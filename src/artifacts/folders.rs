//! Artifact folders moved whole: publishing uploads every file of one, several at a time,
//! the JSON that marks it complete last, each streamed (in parts when large); fetching
//! downloads one, streamed too, into a temporary folder beside its place and renames it
//! in, so a half-fetched artifact is never seen. A fetch
//! runs in a task of its own, one per folder at a time: a request that gives up does not
//! waste the download, and fifty thumbnails of a dataset this machine lacks wait for one
//! download instead of starting fifty.
//!
//! Object keys percent-encode what object storage does not take in a name (`#`, `[`, `~`,
//! …); fetched names are decoded back, and a decoded name that is not one plain path
//! segment is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::ObjectMeta;
use tokio::io::AsyncWriteExt;

use super::{Artifacts, Remote, CONCURRENT};

/// Files up to this size go up in one PUT; larger ones in parts of this size.
pub(super) const PART: usize = 8 * 1024 * 1024;

impl Artifacts {
    /// Upload every file of the artifact folder `rel` (a missing folder is an error).
    pub async fn publish(&self, rel: &str) -> anyhow::Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let root = self.data_dir.join(rel);
        let files = files_under(&root).with_context(|| format!("reading {}", root.display()))?;
        anyhow::ensure!(!files.is_empty(), "artifact {} is empty", root.display());
        // The JSON that says a folder is complete (a checkpoint's `checkpoint.json`, a
        // model's `config.json`) goes last: a reader never finds it beside older weights.
        let (last, first): (Vec<PathBuf>, Vec<PathBuf>) = files
            .into_iter()
            .partition(|f| f.extension().is_some_and(|e| e == "json"));
        for batch in [first, last] {
            futures::stream::iter(batch)
                .map(|file| self.upload(remote, file))
                .buffer_unordered(CONCURRENT)
                .try_collect::<Vec<()>>()
                .await?;
        }
        Ok(())
    }

    /// Stream one file up: one PUT when it is small, a multipart upload beyond `PART`
    /// (a checkpoint of the whole classifier is tens of MB), so memory stays bounded.
    async fn upload(&self, remote: &Remote, file: PathBuf) -> anyhow::Result<()> {
        let relative = file
            .strip_prefix(&self.data_dir)?
            .to_string_lossy()
            .into_owned();
        let mut source = tokio::fs::File::open(&file)
            .await
            .with_context(|| format!("reading {}", file.display()))?;
        let key = remote.key(&relative);
        let context = || format!("uploading {relative} to {}", remote.url);
        // At most two parts of a file in flight: 16 files at once stay within ~400 MiB.
        let mut sink =
            BufWriter::with_capacity(remote.store.clone(), key, PART).with_max_concurrency(2);
        if let Err(error) = tokio::io::copy(&mut source, &mut sink).await {
            let _ = sink.abort().await;
            return Err(error).with_context(context);
        }
        // Completes the PUT, or the multipart upload (which aborts itself if that fails).
        sink.shutdown().await.with_context(context)?;
        Ok(())
    }

    /// Make the artifact folder `rel` present locally, downloading it if it is not;
    /// answers whether it is there now (false: the store has no such artifact either).
    pub async fn fetch(&self, rel: &str) -> anyhow::Result<bool> {
        let local = self.data_dir.join(rel);
        if local.exists() {
            return Ok(true);
        }
        let Some(remote) = &self.remote else {
            return Ok(false);
        };
        let flights = self.fetching.clone();
        let lock = flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(rel.to_owned())
            .or_default()
            .clone();
        let (remote, key) = (remote.clone(), rel.to_owned());
        let task = tokio::spawn(async move {
            let _one_at_a_time = lock.lock().await;
            let fetched = match local.exists() {
                true => Ok(true),
                false => download(&remote, &key, &local).await,
            };
            // Done (or failed) while holding the lock: the next caller starts afresh.
            let mut flights = flights.lock().unwrap_or_else(|e| e.into_inner());
            if flights.get(&key).is_some_and(|l| Arc::ptr_eq(l, &lock)) {
                flights.remove(&key);
            }
            fetched
        });
        task.await?
    }
}

impl Artifacts {
    /// Remove what fetches left when their process died (`.fetching-*` folders beside the
    /// artifacts): called at start-up, before this process fetches anything. Answers how
    /// many went.
    pub fn clear_interrupted_fetches(&self) -> usize {
        let mut removed = 0;
        let mut parents = vec![(self.data_dir.clone(), 0)];
        while let Some((dir, depth)) = parents.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if !kind.is_dir() {
                    continue;
                }
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".fetching-")
                {
                    removed += usize::from(std::fs::remove_dir_all(entry.path()).is_ok());
                } else if depth < 2 {
                    parents.push((entry.path(), depth + 1));
                }
            }
        }
        removed
    }
}

/// Download the folder `rel` of the store to `local`, through a temporary folder.
async fn download(remote: &Remote, rel: &str, local: &Path) -> anyhow::Result<bool> {
    let base = remote.key(rel);
    let objects: Vec<ObjectMeta> = remote
        .store
        .list(Some(&base))
        .try_collect()
        .await
        .with_context(|| format!("listing {rel} in {}", remote.url))?;
    if objects.is_empty() {
        return Ok(false);
    }
    let parent = local.parent().context("an artifact has a parent folder")?;
    tokio::fs::create_dir_all(parent).await?;
    let staging = tempfile::Builder::new()
        .prefix(".fetching-")
        .tempdir_in(parent)?;
    let root = staging.path().to_owned();
    futures::stream::iter(objects)
        .map(|object| {
            let root = &root;
            let base = &base;
            async move {
                let mut target = root.clone();
                for part in object
                    .location
                    .prefix_match(base)
                    .context("a listed object is under its prefix")?
                {
                    target.push(decoded(part.as_ref())?);
                }
                // Never recreate the temporary folder if it was removed meanwhile.
                anyhow::ensure!(root.is_dir(), "{} vanished while fetching", root.display());
                if let Some(dir) = target.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                let mut chunks = remote.store.get(&object.location).await?.into_stream();
                let mut file = tokio::fs::File::create(&target).await?;
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk.with_context(|| {
                        format!("downloading {} from {}", object.location, remote.url)
                    })?;
                    file.write_all(&chunk).await?;
                }
                file.flush().await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENT)
        .try_collect::<Vec<()>>()
        .await?;
    match std::fs::rename(&root, local) {
        Ok(()) => {
            let _ = staging.keep();
            Ok(true)
        }
        // Placed meanwhile by another process sharing this data dir: theirs is as good.
        Err(_) if local.is_dir() => Ok(true),
        Err(error) => Err(error).with_context(|| format!("placing {}", local.display())),
    }
}

/// A name as it was published: the key's part percent-decoded, and one plain path segment.
pub(super) fn decoded(part: &str) -> anyhow::Result<String> {
    let name = percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .with_context(|| format!("object name {part:?} is not UTF-8"))?
        .into_owned();
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    anyhow::ensure!(plain, "object name {part:?} is not one plain path segment");
    Ok(name)
}

/// Every regular file under `root` (or `root` itself if it is one).
fn files_under(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    if root.is_file() {
        return Ok(vec![root.to_owned()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    Ok(files)
}

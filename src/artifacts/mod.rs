//! Where job artifacts live beyond this process: models, checkpoints and extracted
//! features are written under the data dir, the local working copy, and, when
//! `--artifacts-url` names another store (`s3://bucket/prefix` for S3-compatible object
//! storage, or `file:///path` for a shared folder), published there so that a worker or
//! API replica on any machine can fetch them. Without it the data dir is the store and
//! publishing and fetching do nothing. One interface for both kinds of store: the
//! `object_store` crate's (`AmazonS3`, `LocalFileSystem`).
//!
//! An artifact is a folder under the data dir named by its relative path (`models/<id>`,
//! `checkpoints/<job>/attempt-<n>`, `features/<job>`). Publishing uploads every file in it;
//! fetching downloads the folder into a temporary one beside it and renames it into place,
//! so a half-fetched artifact is never seen. Artifacts are immutable once published, except
//! a checkpoint attempt's, which its own (fenced) worker overwrites epoch after epoch.
//! Entries of the feature cache are single files, shared one by one and best effort
//! (`publish_files`, `fetch_files`): a miss costs a forward pass, not a wrong answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload};

mod cache_entries;
mod model_copies;

pub use model_copies::DEFAULT_LOCAL_MODELS;

pub type SharedArtifacts = Arc<Artifacts>;

pub struct Artifacts {
    data_dir: PathBuf,
    remote: Option<Remote>,
    /// Model folders kept on this machine when the store has them all.
    local_models: usize,
}

struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: Key,
    /// What the URL named, for messages (never credentials: they come from `AWS_*`).
    url: String,
}

impl Artifacts {
    /// Artifacts kept only under `data_dir`.
    pub fn local(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            remote: None,
            local_models: DEFAULT_LOCAL_MODELS as usize,
        }
    }

    /// The store `url` names (`s3://bucket[/prefix]` with the standard `AWS_*` variables,
    /// `AWS_ENDPOINT_URL` for S3-compatible servers; or `file:///path`), with `data_dir` as
    /// the local working copy. `None`: the data dir alone.
    pub fn open(url: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        let Some(url) = url else {
            return Ok(Self::local(data_dir));
        };
        let (store, prefix): (Arc<dyn ObjectStore>, &str) =
            if let Some(rest) = url.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                anyhow::ensure!(
                    !bucket.is_empty(),
                    "--artifacts-url {url:?} names no bucket"
                );
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint);
                }
                let store = builder
                    .build()
                    .with_context(|| format!("configuring --artifacts-url {url}"))?;
                (Arc::new(store), prefix)
            } else if let Some(path) = url.strip_prefix("file://") {
                std::fs::create_dir_all(path).with_context(|| format!("creating {path}"))?;
                let store = LocalFileSystem::new_with_prefix(path)
                    .with_context(|| format!("opening --artifacts-url {url}"))?;
                (Arc::new(store), "")
            } else {
                anyhow::bail!("--artifacts-url must start with s3:// or file://, got {url:?}");
            };
        Ok(Self {
            data_dir: data_dir.to_owned(),
            remote: Some(Remote {
                store,
                prefix: Key::from(prefix.trim_matches('/')),
                url: url.to_owned(),
            }),
            local_models: DEFAULT_LOCAL_MODELS as usize,
        })
    }

    /// Whether artifacts go beyond the data dir (then the store's copy is the reference).
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Whether the store answers (readiness); always with the data dir alone.
    pub async fn ping(&self) -> anyhow::Result<()> {
        if let Some(remote) = &self.remote {
            remote
                .store
                .list_with_delimiter(Some(&remote.prefix))
                .await
                .with_context(|| format!("listing {}", remote.url))?;
        }
        Ok(())
    }

    /// Upload every file of the artifact folder `rel` (a missing folder is an error).
    pub async fn publish(&self, rel: &str) -> anyhow::Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let root = self.data_dir.join(rel);
        let mut files =
            files_under(&root).with_context(|| format!("reading {}", root.display()))?;
        anyhow::ensure!(!files.is_empty(), "artifact {} is empty", root.display());
        // The JSON that says a folder is complete (a checkpoint's `checkpoint.json`, a
        // model's `config.json`) goes last: a reader never finds it beside older weights.
        files.sort_by_key(|f| f.extension().is_some_and(|e| e == "json"));
        for file in files {
            let relative = file
                .strip_prefix(&self.data_dir)?
                .to_string_lossy()
                .into_owned();
            let bytes = tokio::fs::read(&file)
                .await
                .with_context(|| format!("reading {}", file.display()))?;
            remote
                .store
                .put(&remote.key(&relative), PutPayload::from(bytes))
                .await
                .with_context(|| format!("uploading {relative} to {}", remote.url))?;
        }
        Ok(())
    }

    /// Make the artifact folder `rel` present locally, downloading it if it is not;
    /// answers whether it is there now (false: the store has no such artifact either).
    pub async fn fetch(&self, rel: &str) -> anyhow::Result<bool> {
        let local = self.data_dir.join(rel);
        if local.is_dir() || local.is_file() {
            return Ok(true);
        }
        let Some(remote) = &self.remote else {
            return Ok(false);
        };
        let objects: Vec<_> = remote
            .store
            .list(Some(&remote.key(rel)))
            .try_collect()
            .await
            .with_context(|| format!("listing {rel} in {}", remote.url))?;
        if objects.is_empty() {
            return Ok(false);
        }
        let parent = local.parent().context("an artifact has a parent folder")?;
        std::fs::create_dir_all(parent)?;
        let staging = tempfile::Builder::new()
            .prefix(".fetching-")
            .tempdir_in(parent)?;
        let base = remote.key(rel);
        for object in objects {
            let inner: Vec<_> = object
                .location
                .prefix_match(&base)
                .context("a listed object is under its prefix")?
                .map(|part| part.as_ref().to_owned())
                .collect();
            let target = inner
                .iter()
                .fold(staging.path().to_owned(), |p, s| p.join(s));
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let bytes = remote
                .store
                .get(&object.location)
                .await?
                .bytes()
                .await
                .with_context(|| format!("downloading {} from {}", object.location, remote.url))?;
            tokio::fs::write(&target, &bytes).await?;
        }
        match std::fs::rename(staging.path(), &local) {
            Ok(()) => {
                let _ = staging.keep();
                Ok(true)
            }
            // Fetched meanwhile by another task of this process: theirs is as good.
            Err(_) if local.is_dir() => Ok(true),
            Err(error) => Err(error).with_context(|| format!("placing {}", local.display())),
        }
    }

    /// Whether the artifact exists locally or in the store.
    pub async fn exists(&self, rel: &str) -> anyhow::Result<bool> {
        if self.data_dir.join(rel).exists() {
            return Ok(true);
        }
        let Some(remote) = &self.remote else {
            return Ok(false);
        };
        let first = remote.store.list(Some(&remote.key(rel))).try_next().await?;
        Ok(first.is_some())
    }

    /// The artifact folders directly under `rel` in the store (`models` → model ids), each
    /// with its newest file's time. Empty without a store.
    pub async fn folders(&self, rel: &str) -> anyhow::Result<Vec<(String, DateTime<Utc>)>> {
        let Some(remote) = &self.remote else {
            return Ok(Vec::new());
        };
        let base = remote.key(rel);
        let objects: Vec<_> = remote.store.list(Some(&base)).try_collect().await?;
        let mut folders: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        for object in objects {
            let Some(name) = object
                .location
                .prefix_match(&base)
                .and_then(|mut p| p.next())
            else {
                continue;
            };
            let newest = folders
                .entry(name.as_ref().to_owned())
                .or_insert(object.last_modified);
            *newest = (*newest).max(object.last_modified);
        }
        Ok(folders.into_iter().collect())
    }

    /// Delete the artifact from the store (the caller removes the local copy).
    pub async fn remove(&self, rel: &str) -> anyhow::Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let objects: Vec<_> = remote
            .store
            .list(Some(&remote.key(rel)))
            .try_collect()
            .await?;
        for object in objects {
            remote.store.delete(&object.location).await?;
        }
        Ok(())
    }
}

impl Remote {
    fn key(&self, rel: &str) -> Key {
        let mut parts: Vec<String> = self.prefix.parts().map(|p| p.as_ref().to_owned()).collect();
        parts.extend(rel.split('/').filter(|s| !s.is_empty()).map(str::to_owned));
        Key::from_iter(parts)
    }
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

#[cfg(test)]
mod tests;

//! Where job artifacts live beyond this process: models, checkpoints and extracted
//! features are written under the data dir, the local working copy, and, when
//! `--artifacts-url` names another store (`s3://bucket/prefix` for S3-compatible object
//! storage, or `file:///path` for a shared folder), published there so that a worker or
//! API replica on any machine can fetch them. Without it the data dir is the store and
//! publishing and fetching do nothing. One interface for both kinds of store: the
//! `object_store` crate's (`AmazonS3`, `LocalFileSystem`).
//!
//! An artifact is a folder under the data dir named by its relative path (`models/<id>`,
//! `checkpoints/<job>/attempt-<n>`, `features/<job>`, `dataset-versions/<version>`):
//! published and fetched whole (`folders`). Artifacts are immutable once published, except
//! a checkpoint attempt's, which its own (fenced) worker overwrites epoch after epoch.
//! Entries of the feature cache are single files, shared one by one and best effort
//! (`cache_entries`): a miss costs a forward pass, not a wrong answer. Copies of models
//! fetched from the store are a bounded cache (`model_copies`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::ObjectStore;

mod cache_entries;
mod folders;
mod model_copies;

pub use model_copies::DEFAULT_LOCAL_MODELS;

pub type SharedArtifacts = Arc<Artifacts>;

/// Files moved at once, up or down.
const CONCURRENT: usize = 16;

pub struct Artifacts {
    data_dir: PathBuf,
    remote: Option<Remote>,
    /// Model folders kept on this machine when the store has them all.
    local_models: usize,
    /// Folders being fetched, one lock each: a second request for one waits for the first
    /// download instead of starting its own.
    fetching: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Model folders in use here (being loaded, or written and not yet published): never
    /// removed to bound the copies.
    pinned: Arc<Mutex<HashMap<String, usize>>>,
}

#[derive(Clone)]
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
            fetching: Arc::default(),
            pinned: Arc::default(),
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
            remote: Some(Remote {
                store,
                prefix: Key::from(prefix.trim_matches('/')),
                url: url.to_owned(),
            }),
            ..Self::local(data_dir)
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
            let name = match folders::decoded(name.as_ref()) {
                Ok(name) => name,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "skipping an object");
                    continue;
                }
            };
            let newest = folders.entry(name).or_insert(object.last_modified);
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

#[cfg(test)]
mod tests;

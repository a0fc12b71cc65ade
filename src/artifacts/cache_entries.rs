//! Entries of the feature cache, shared between machines one file at a time and best
//! effort: a machine that computed an entry offers it, one about to compute looks for it
//! first. Unlike artifact folders, an entry the store lacks is no error, only a miss.

use std::path::Path;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;

use super::{Artifacts, CONCURRENT};

impl Artifacts {
    /// Download those of `files` (paths relative to the data dir) that this machine lacks
    /// and the store has, several at a time; answers how many came. For entries of a
    /// shared cache: a file the store does not have is no error.
    pub async fn fetch_files(&self, files: &[String]) -> anyhow::Result<usize> {
        let Some(remote) = &self.remote else {
            return Ok(0);
        };
        let missing = files.iter().filter(|f| !self.data_dir.join(f).exists());
        let fetched: Vec<bool> = futures::stream::iter(missing)
            .map(|rel| async move {
                let bytes = match remote.store.get(&remote.key(rel)).await {
                    Ok(found) => found.bytes().await?,
                    Err(object_store::Error::NotFound { .. }) => return Ok(false),
                    Err(error) => return Err(error.into()),
                };
                write_atomically(&self.data_dir.join(rel), &bytes).await?;
                anyhow::Ok(true)
            })
            .buffer_unordered(CONCURRENT)
            .try_collect()
            .await
            .with_context(|| format!("fetching cache entries from {}", remote.url))?;
        Ok(fetched.into_iter().filter(|&came| came).count())
    }

    /// Upload `files` (paths relative to the data dir), several at a time.
    pub async fn publish_files(&self, files: &[String]) -> anyhow::Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        futures::stream::iter(files)
            .map(|rel| async move {
                let bytes = tokio::fs::read(self.data_dir.join(rel)).await?;
                remote
                    .store
                    .put(&remote.key(rel), PutPayload::from(bytes))
                    .await?;
                anyhow::Ok(())
            })
            .buffer_unordered(CONCURRENT)
            .try_collect::<Vec<()>>()
            .await
            .with_context(|| format!("sharing cache entries through {}", remote.url))?;
        Ok(())
    }
}

/// Write `bytes` to `path` through a temporary file beside it, so that no reader sees a
/// part of it.
async fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a file has a parent folder")?;
    tokio::fs::create_dir_all(dir).await?;
    let part = dir.join(format!(".{}.part", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&part, bytes).await?;
    if let Err(error) = tokio::fs::rename(&part, path).await {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(error.into());
    }
    Ok(())
}

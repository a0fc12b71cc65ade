//! Which folder holds a dataset on this machine, and where an uploaded one goes.
//!
//! Without a shared artifact store every dataset is a folder of the datasets dir, as it has
//! always been. With one (`--artifacts-url`), a dataset uploaded over HTTP must reach every
//! worker and replica: its files are published to the store under
//! `dataset-versions/<version>/<name>/`, then registered in the database (name → version,
//! splits' classes and counts), and any machine that needs them fetches that version once
//! into `<data-dir>/dataset-versions/<version>/<name>/`. A registered name wins over a
//! folder of the same name in the datasets dir (which shows again once the upload is
//! deleted); an upload refuses a name taken either way. Deleting a
//! registered dataset removes its record first (so every machine stops finding it at
//! once), then its files; a later upload of the same name is a new version, so no machine
//! serves the old files. What a crash leaves (files published, never registered; copies of
//! deleted versions) is removed by [`Catalog::sweep`] after a grace period.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::dataset::{self, Dataset};
use super::import::{self, ImportError};
use crate::artifacts::SharedArtifacts;
use crate::domain::DatasetRecord;
use crate::store::{SharedStore, StoreError};

pub type SharedCatalog = Arc<Catalog>;

/// Why a registered dataset's folder is not here.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The database or the artifact store did not answer: worth trying again.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The record or the stored files are not what they should be: an operator's problem.
    #[error("{0}")]
    Broken(String),
}

/// Where registered datasets' versions live, in the store and in the data dir; not
/// `datasets`, so that no one's `--datasets-dir` can be this folder by accident.
const VERSIONS: &str = "dataset-versions";

/// The artifact folder of a registered dataset's files, relative to the data dir.
fn version_folder(version: Uuid) -> String {
    format!("{VERSIONS}/{version}")
}

/// One split as `GET /v1/datasets` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SplitSummary {
    pub classes: Vec<String>,
    pub images: u64,
}

/// A dataset as `GET /v1/datasets` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetSummary {
    pub name: String,
    pub splits: BTreeMap<String, SplitSummary>,
}

impl From<&Dataset> for DatasetSummary {
    fn from(dataset: &Dataset) -> Self {
        let splits = dataset
            .splits
            .iter()
            .map(|(name, split)| {
                let summary = SplitSummary {
                    classes: split.classes.clone(),
                    images: split.samples.len() as u64,
                };
                (name.clone(), summary)
            })
            .collect();
        Self {
            name: dataset.name.clone(),
            splits,
        }
    }
}

/// Where an upload is published: the folder to rename it into, and the version it will be
/// registered as (`None`: the datasets dir, nothing to register). Dropped unregistered, it
/// removes the version's folder and whatever was published into it.
#[derive(Debug)]
pub struct Placement {
    pub parent: PathBuf,
    version: Option<Uuid>,
    registered: bool,
}

impl Drop for Placement {
    fn drop(&mut self) {
        if self.version.is_some() && !self.registered {
            let _ = std::fs::remove_dir_all(&self.parent);
        }
    }
}

pub struct Catalog {
    datasets_dir: PathBuf,
    /// `<data-dir>/dataset-versions`: with a shared store, uploads are staged here and
    /// registered datasets are kept here by version.
    versions_dir: PathBuf,
    store: SharedStore,
    artifacts: SharedArtifacts,
}

impl Catalog {
    pub fn new(
        datasets_dir: &Path,
        data_dir: &Path,
        store: SharedStore,
        artifacts: SharedArtifacts,
    ) -> Self {
        Self {
            datasets_dir: datasets_dir.to_owned(),
            versions_dir: data_dir.join(VERSIONS),
            store,
            artifacts,
        }
    }

    /// Whether uploads are published to a shared store (else they stay in the datasets dir).
    fn shared(&self) -> bool {
        self.artifacts.is_remote()
    }

    /// The folder that holds dataset `name` here (pass it to `Dataset::open`/`index` with
    /// the name): the local copy of its registered version, fetched now if this machine has
    /// none, else the datasets dir (which may not have it either: `Dataset` says so).
    pub async fn folder(&self, name: &str) -> Result<PathBuf, FolderError> {
        if !self.shared() || dataset::validate_name(name).is_err() {
            return Ok(self.datasets_dir.clone());
        }
        let record = match self.store.dataset(name).await {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(self.datasets_dir.clone()),
            Err(error) if error.is_transient() => {
                return Err(FolderError::Unavailable(format!(
                    "reading dataset {name:?}: {error}"
                )))
            }
            Err(error) => return Err(FolderError::Broken(format!("dataset {name:?}: {error}"))),
        };
        let folder = version_folder(record.version);
        match self.artifacts.fetch(&folder).await {
            Ok(true) => Ok(self.versions_dir.join(record.version.to_string())),
            Ok(false) => Err(FolderError::Broken(format!(
                "dataset {name:?} is registered but its files are missing from the artifact store"
            ))),
            Err(error) => Err(FolderError::Unavailable(format!(
                "fetching dataset {name:?}: {error:#}"
            ))),
        }
    }

    /// Every dataset: the registered ones (from their records, nothing downloaded) and the
    /// folders of the datasets dir that no registered one shadows. By name.
    pub async fn list(&self) -> anyhow::Result<Vec<DatasetSummary>> {
        let dir = self.datasets_dir.clone();
        let local = tokio::task::spawn_blocking(move || dataset::list(&dir)).await?;
        let mut all: BTreeMap<String, DatasetSummary> = local
            .iter()
            .map(|d| (d.name.clone(), DatasetSummary::from(d)))
            .collect();
        if self.shared() {
            for record in self.store.datasets().await? {
                let splits = serde_json::from_value(record.splits).map_err(|e| {
                    StoreError::corrupt(format!("dataset {:?} splits", record.name), e)
                })?;
                let name = record.name;
                all.insert(name.clone(), DatasetSummary { name, splits });
            }
        }
        Ok(all.into_values().collect())
    }

    /// The name is valid and no dataset has it (checked before an upload is read, and again
    /// when it is published or registered).
    pub async fn check_available(&self, name: &str) -> Result<(), ImportError> {
        import::check_available(&self.datasets_dir, name)?;
        if self.shared() && self.store.dataset(name).await.map_err(io)?.is_some() {
            return Err(ImportError::Exists(name.to_owned()));
        }
        Ok(())
    }

    /// The folder under which uploads keep their temporary files (on the filesystem of
    /// [`Catalog::place`]'s folders, so that publishing is a rename).
    pub fn uploads_dir(&self) -> &Path {
        if self.shared() {
            &self.versions_dir
        } else {
            &self.datasets_dir
        }
    }

    /// Where the next upload is published (the folder exists).
    pub fn place(&self) -> std::io::Result<Placement> {
        let (parent, version) = match self.shared() {
            false => (self.datasets_dir.clone(), None),
            true => {
                let version = Uuid::new_v4();
                (self.versions_dir.join(version.to_string()), Some(version))
            }
        };
        let placement = Placement {
            parent,
            version,
            registered: false,
        };
        std::fs::create_dir_all(&placement.parent)?;
        Ok(placement)
    }

    /// Make a dataset published at `placement` known to every machine: upload its files,
    /// then register it. On failure (the name was taken meanwhile by another replica, the
    /// store is down) nothing of it is left in the store, nor here once `placement` drops.
    pub async fn register(
        &self,
        placement: &mut Placement,
        dataset: &Dataset,
    ) -> Result<(), ImportError> {
        let Some(version) = placement.version else {
            return Ok(());
        };
        let record = DatasetRecord {
            name: dataset.name.clone(),
            version,
            splits: serde_json::to_value(&dataset.splits).map_err(io)?,
            created_at: String::new(),
        };
        let folder = version_folder(version);
        self.artifacts.publish(&folder).await.map_err(io)?;
        match self.store.insert_dataset(&record).await {
            Ok(()) => {
                placement.registered = true;
                Ok(())
            }
            Err(StoreError::Taken(name)) => {
                // Another replica's upload of the name won: this version's files go.
                if let Err(error) = self.artifacts.remove(&folder).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "cannot remove a refused upload"
                    );
                }
                Err(ImportError::Exists(name))
            }
            Err(error) => {
                // The insert may have committed with its answer lost: the record says.
                if let Ok(Some(found)) = self.store.dataset(&record.name).await {
                    if found.version == version {
                        placement.registered = true;
                        return Ok(());
                    }
                }
                // Else its files stay for the sweep: removing them could race a commit.
                Err(io(error))
            }
        }
    }

    /// Delete dataset `name`: a registered one everywhere (record, stored files, this
    /// machine's copy), else its folder in the datasets dir.
    pub async fn remove(&self, name: &str) -> Result<(), ImportError> {
        dataset::validate_name(name)?;
        let record = match self.shared() {
            true => self.store.delete_dataset(name).await.map_err(io)?,
            false => None,
        };
        let Some(record) = record else {
            let dir = self.datasets_dir.clone();
            let name = name.to_owned();
            return tokio::task::spawn_blocking(move || import::remove(&dir, &name))
                .await
                .map_err(io)?;
        };
        // Gone for every machine with the record: the delete has happened, whatever follows.
        // Files left by an error here are the sweep's.
        if let Err(error) = self.artifacts.remove(&version_folder(record.version)).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot remove a deleted dataset's files"
            );
        }
        let local = self.versions_dir.join(record.version.to_string());
        if let Err(error) = tokio::fs::remove_dir_all(&local).await {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(%error, "cannot remove this machine's copy of a deleted dataset");
            }
        }
        Ok(())
    }

    /// Remove dataset versions that no record names and that are older than `grace` (an
    /// upload may be about to register its own): from the store, and this machine's
    /// copies. Returns how many folders went.
    pub async fn sweep(&self, grace: Duration) -> anyhow::Result<usize> {
        if !self.shared() {
            return Ok(0);
        }
        let registered: HashSet<Uuid> = self
            .store
            .datasets()
            .await?
            .iter()
            .map(|d| d.version)
            .collect();
        let known = |name: &str| Uuid::parse_str(name).is_ok_and(|v| registered.contains(&v));
        let cutoff = chrono::Utc::now() - grace;
        let mut removed = 0;
        for (name, newest) in self.artifacts.folders(VERSIONS).await? {
            if !known(&name) && newest <= cutoff {
                tracing::warn!(version = %name, "removing an unregistered dataset from the store");
                self.artifacts.remove(&format!("{VERSIONS}/{name}")).await?;
                removed += 1;
            }
        }
        let Ok(entries) = std::fs::read_dir(&self.versions_dir) else {
            return Ok(removed);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let modified = entry.metadata().and_then(|m| m.modified());
            let old = modified.is_ok_and(|t| chrono::DateTime::<chrono::Utc>::from(t) <= cutoff);
            // A version no record names (a download under way is `.fetching-*`, not one).
            if Uuid::parse_str(&name).is_ok() && !known(&name) && old {
                tokio::fs::remove_dir_all(entry.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn io(error: impl std::fmt::Display) -> ImportError {
    ImportError::Io(std::io::Error::other(error.to_string()))
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;

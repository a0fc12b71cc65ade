//! Orphaned files in the artifact store: a worker publishes a model's files before its
//! job's end registers the model (so a registered model always has its files); a worker that
//! dies, or loses its lease, in between leaves files no record points to. Uploaded datasets
//! are the same (`data::catalog`). Every process with a shared store sweeps them now and
//! then, sparing folders younger than a grace period (their writer may be about to register
//! them).

use std::collections::HashSet;
use std::time::Duration;

use uuid::Uuid;

use crate::artifacts::SharedArtifacts;
use crate::data::catalog::SharedCatalog;
use crate::store::SharedStore;

/// Time a published model has to be registered before it counts as an orphan.
pub const GRACE: Duration = Duration::from_secs(3600);

/// Remove model folders of the artifact store that no model record names and that are
/// older than `grace`; returns how many.
pub async fn orphan_models(
    store: &SharedStore,
    artifacts: &SharedArtifacts,
    grace: Duration,
) -> anyhow::Result<usize> {
    let folders = artifacts.folders("models").await?;
    if folders.is_empty() {
        return Ok(0);
    }
    let registered: HashSet<Uuid> = store.models().await?.iter().map(|m| m.id).collect();
    let cutoff = chrono::Utc::now() - grace;
    let mut removed = 0;
    for (name, newest) in folders {
        let known = Uuid::parse_str(&name).is_ok_and(|id| registered.contains(&id));
        if known || newest > cutoff {
            continue;
        }
        tracing::warn!(folder = %name, "removing an orphaned model from the artifact store");
        artifacts.remove(&format!("models/{name}")).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Sweep models and datasets every `every`, for the life of the process.
pub fn spawn(
    store: SharedStore,
    artifacts: SharedArtifacts,
    catalog: SharedCatalog,
    every: Duration,
) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = orphan_models(&store, &artifacts, GRACE).await {
                tracing::warn!(error = format!("{error:#}"), "cannot sweep orphaned models");
            }
            if let Err(error) = catalog.sweep(GRACE).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot sweep orphaned datasets"
                );
            }
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::artifacts::Artifacts;
    use crate::domain::ModelRecord;
    use crate::model::saved::model_folder;
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn only_unregistered_models_past_the_grace_period_are_removed() {
        let (shared, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let url = format!("file://{}", shared.path().display());
        let artifacts: SharedArtifacts =
            Arc::new(Artifacts::open(Some(&url), data.path()).unwrap());
        let store: SharedStore = Arc::new(
            SqliteStore::open(&data.path().join("vggserve.db"))
                .await
                .unwrap(),
        );
        let (kept, orphan) = (Uuid::new_v4(), Uuid::new_v4());
        for id in [kept, orphan] {
            let dir = data.path().join(model_folder(id));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("model.safetensors"), b"w").unwrap();
            artifacts.publish(&model_folder(id)).await.unwrap();
        }
        let record = ModelRecord {
            id: kept,
            recipe: "features".into(),
            dataset: "d".into(),
            classes: vec!["a".into(), "b".into()],
            params: serde_json::json!({}),
            metrics: serde_json::json!({}),
            test_metrics: None,
            source_job: Uuid::new_v4(),
            created_at: String::new(),
            artifact: format!("{}/model.safetensors", model_folder(kept)),
            artifact_sha256: "00".into(),
            config: serde_json::json!({}),
            is_default: false,
        };
        store.insert_model(&record).await.unwrap();
        // Within the grace period nothing goes, registered or not.
        assert_eq!(orphan_models(&store, &artifacts, GRACE).await.unwrap(), 0);
        assert_eq!(
            orphan_models(&store, &artifacts, Duration::ZERO)
                .await
                .unwrap(),
            1
        );
        let left: Vec<String> = artifacts
            .folders("models")
            .await
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(left, [kept.to_string()]);
    }
}

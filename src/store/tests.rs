//! The SQLite store against a real database file in a temporary directory.

use serde_json::json;
use uuid::Uuid;

use super::*;

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, store)
}

fn new_job(kind: JobKind) -> NewJob {
    NewJob {
        id: Uuid::new_v4(),
        kind,
        dataset: "d".into(),
        params: json!({"kind": kind.as_str(), "dataset": "d"}),
    }
}

fn epoch(n: i64) -> EpochMetrics {
    EpochMetrics {
        epoch: n,
        loss: 1.0 / n as f64,
        acc: 0.5,
        val_loss: Some(0.7),
        val_acc: None,
        seconds: 1.5,
    }
}

#[tokio::test]
async fn the_queue_is_fifo_bounded_and_records_each_transition() {
    let (_dir, store) = open().await;
    let first = new_job(JobKind::ExtractFeatures);
    let second = new_job(JobKind::Train);
    let (job, queued) = store.insert_job(&first, 2).await.unwrap();
    assert_eq!(
        (job.status, job.kind),
        (JobStatus::Queued, JobKind::ExtractFeatures)
    );
    store.insert_job(&second, 2).await.unwrap();
    assert!(matches!(
        store.insert_job(&new_job(JobKind::Train), 2).await,
        Err(StoreError::QueueFull(2))
    ));
    assert_eq!(store.queued_count().await.unwrap(), 2);

    let (claimed, running) = store.claim_next().await.unwrap().unwrap();
    assert_eq!((claimed.id, claimed.status), (first.id, JobStatus::Running));
    assert!(claimed.started_at.is_some());
    store.record_epoch(first.id, &epoch(1)).await.unwrap();
    store.record_epoch(first.id, &epoch(2)).await.unwrap();
    // An epoch is recorded once: the same epoch again is refused.
    assert!(store.record_epoch(first.id, &epoch(2)).await.is_err());
    let outcome = Outcome {
        result: Some(json!({"ok": true})),
        ..Default::default()
    };
    let done = store
        .finish_job(first.id, JobStatus::Succeeded, &outcome)
        .await
        .unwrap();

    let events = store.events_after(first.id, 0).await.unwrap();
    let kinds: Vec<(&str, serde_json::Value)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.data["status"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("status", json!("queued")),
            ("status", json!("running")),
            ("epoch", json!(null)),
            ("epoch", json!(null)),
            ("status", json!("succeeded")),
        ]
    );
    assert_eq!(events[0].id, queued.id);
    assert_eq!(events[1].id, running.id);
    assert_eq!(events.last().unwrap().id, done.id);
    assert_eq!(
        store
            .events_after(first.id, running.id)
            .await
            .unwrap()
            .len(),
        3
    );

    let job = store.job(first.id).await.unwrap().unwrap();
    assert_eq!(job.epochs, vec![epoch(1), epoch(2)]);
    assert_eq!(job.result, Some(json!({"ok": true})));
    // The next claim is the second job; then the queue is empty.
    assert_eq!(store.claim_next().await.unwrap().unwrap().0.id, second.id);
    assert!(store.claim_next().await.unwrap().is_none());
}

#[tokio::test]
async fn listing_brings_each_job_its_own_epochs() {
    let (_dir, store) = open().await;
    let mut ids = Vec::new();
    for epochs in [3, 0, 2] {
        let job = new_job(JobKind::Train);
        store.insert_job(&job, 10).await.unwrap();
        store.claim_next().await.unwrap();
        for n in 1..=epochs {
            store.record_epoch(job.id, &epoch(n)).await.unwrap();
        }
        ids.push((job.id, epochs as usize));
    }
    let listed = store.jobs(None).await.unwrap();
    // Newest first.
    let got: Vec<(Uuid, usize)> = listed.iter().map(|j| (j.id, j.epochs.len())).collect();
    ids.reverse();
    assert_eq!(got, ids);
    assert_eq!(store.jobs(Some(JobStatus::Queued)).await.unwrap().len(), 0);
    assert_eq!(store.interrupted().await.unwrap().len(), 3);
}

#[tokio::test]
async fn cancelling_a_running_job_is_read_back_with_its_progress() {
    let (_dir, store) = open().await;
    let queued = new_job(JobKind::Train);
    let running = new_job(JobKind::Train);
    store.insert_job(&running, 10).await.unwrap();
    store.insert_job(&queued, 10).await.unwrap();
    store.claim_next().await.unwrap();
    let progress = Progress {
        done: 1,
        total: 10,
        unit: "steps".into(),
    };
    assert!(!store.set_progress(running.id, &progress).await.unwrap());
    assert!(matches!(
        store.request_cancel(running.id).await.unwrap(),
        CancelOutcome::Requested
    ));
    assert!(store.set_progress(running.id, &progress).await.unwrap());
    assert!(matches!(
        store.request_cancel(queued.id).await.unwrap(),
        CancelOutcome::Cancelled(_)
    ));
    assert!(matches!(
        store.request_cancel(queued.id).await.unwrap(),
        CancelOutcome::AlreadyFinished(JobStatus::Cancelled)
    ));
    assert!(matches!(
        store.request_cancel(Uuid::new_v4()).await.unwrap(),
        CancelOutcome::NotFound
    ));
    // A restart puts the running job back in the queue, in front.
    store.requeue_for_resume(running.id).await.unwrap();
    assert_eq!(store.claim_next().await.unwrap().unwrap().0.id, running.id);
}

fn model(id: Uuid, created_at: &str) -> ModelRecord {
    ModelRecord {
        id,
        recipe: "features".into(),
        dataset: "d".into(),
        classes: vec!["cats".into(), "dogs".into()],
        params: json!({}),
        metrics: json!({"val_acc": 0.9}),
        test_metrics: None,
        source_job: Uuid::new_v4(),
        created_at: created_at.into(),
        artifact: format!("models/{id}/model.safetensors"),
        artifact_sha256: "ab".into(),
        config: json!({"image_size": 150}),
        is_default: false,
    }
}

#[tokio::test]
async fn the_default_model_is_the_marked_one_else_the_newest() {
    let (_dir, store) = open().await;
    let (old, new) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(store.default_model().await.unwrap().is_none());
    store
        .insert_model(&model(old, "2026-01-01T00:00:00.000Z"))
        .await
        .unwrap();
    store
        .insert_model(&model(new, "2026-02-01T00:00:00.000Z"))
        .await
        .unwrap();
    assert_eq!(store.default_model().await.unwrap().unwrap().id, new);
    assert!(store.set_default_model(old).await.unwrap());
    assert!(!store.set_default_model(Uuid::new_v4()).await.unwrap());
    let default = store.default_model().await.unwrap().unwrap();
    assert_eq!((default.id, default.is_default), (old, true));
    let listed: Vec<Uuid> = store.models().await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(listed, [new, old]);
    assert_eq!(store.delete_model(old).await.unwrap().unwrap().id, old);
    assert!(store.delete_model(old).await.unwrap().is_none());
    assert_eq!(store.default_model().await.unwrap().unwrap().id, new);
}

#[tokio::test]
async fn unreadable_rows_are_errors_not_defaults() {
    let (dir, store) = open().await;
    let id = Uuid::new_v4();
    store.insert_model(&model(id, "")).await.unwrap();
    let raw = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("vggserve.db").display()
    ))
    .await
    .unwrap();
    for classes in ["not json", "[\"only-one\"]"] {
        sqlx::query("UPDATE models SET classes = ? WHERE id = ?")
            .bind(classes)
            .bind(id.to_string())
            .execute(&raw)
            .await
            .unwrap();
        let error = store.model(id).await.unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { what, .. } if what.contains("classes")),
            "{error}"
        );
    }
    let job = new_job(JobKind::Train);
    store.insert_job(&job, 10).await.unwrap();
    sqlx::query("UPDATE jobs SET kind = 'dance' WHERE id = ?")
        .bind(job.id.to_string())
        .execute(&raw)
        .await
        .unwrap();
    let error = store.job(job.id).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { what, .. } if what.contains("kind")),
        "{error}"
    );
}

#[tokio::test]
async fn active_jobs_on_a_dataset_are_the_queued_and_running_ones() {
    let (_dir, store) = open().await;
    let on = |dataset: &str| NewJob {
        dataset: dataset.into(),
        ..new_job(JobKind::ExtractFeatures)
    };
    let (running, queued, finished, other) = (on("d"), on("d"), on("d"), on("e"));
    for job in [&finished, &running, &queued, &other] {
        store.insert_job(job, 10).await.unwrap();
    }
    store.claim_next().await.unwrap();
    store
        .finish_job(finished.id, JobStatus::Failed, &Outcome::default())
        .await
        .unwrap();
    store.claim_next().await.unwrap();
    assert_eq!(
        store.active_jobs_on("d").await.unwrap(),
        vec![running.id, queued.id]
    );
    assert_eq!(store.active_jobs_on("e").await.unwrap(), vec![other.id]);
    assert!(store.active_jobs_on("none").await.unwrap().is_empty());
    store.request_cancel(queued.id).await.unwrap();
    assert_eq!(store.active_jobs_on("d").await.unwrap(), vec![running.id]);
}

//! Both stores against real databases: SQLite in a temporary file, PostgreSQL in a fresh
//! database on the server `VGGSERVE_TEST_POSTGRES_URL` names (`make test` starts one with
//! tests/services/with_postgres.sh; without it, and without `VGGSERVE_REQUIRE_POSTGRES`, the
//! PostgreSQL half is skipped with a note). Every contract test runs on each.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::*;

pub(super) async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("vggserve.db"))
        .await
        .unwrap();
    (dir, store)
}

#[path = "../../tests/common/postgres.rs"]
mod postgres_server;

pub(super) async fn postgres_database() -> Option<String> {
    postgres_server::fresh_database("t").await
}

/// Each backend: the SQLite store, and the PostgreSQL one when a server is given.
pub(super) async fn stores() -> Vec<(Option<tempfile::TempDir>, SharedStore)> {
    let (dir, sqlite) = open().await;
    let mut all: Vec<(Option<tempfile::TempDir>, SharedStore)> =
        vec![(Some(dir), Arc::new(sqlite))];
    if let Some(url) = postgres_database().await {
        all.push((None, Arc::new(PostgresStore::connect(&url).await.unwrap())));
    }
    all
}

const LEASE: Duration = Duration::from_secs(60);

pub(super) fn worker(owner: &str) -> ClaimSpec {
    ClaimSpec {
        owner: owner.into(),
        kinds: Vec::new(),
        lease: LEASE,
    }
}

pub(super) async fn claim(store: &SharedStore) -> Option<(Job, Lease, StoredEvent)> {
    store.claim_next(&worker("w")).await.unwrap()
}

pub(super) fn new_job(kind: JobKind) -> NewJob {
    NewJob {
        id: Uuid::new_v4(),
        kind,
        dataset: "d".into(),
        params: json!({"kind": kind.as_str(), "dataset": "d"}),
        depends_on: Vec::new(),
        step: None,
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
        best_epoch: Some(1),
    }
}

#[tokio::test]
async fn the_queue_is_fifo_bounded_and_records_each_transition() {
    for (_dir, store) in stores().await {
        the_queue_is_fifo_bounded_and_records_each_transition_on(store).await;
    }
}

async fn the_queue_is_fifo_bounded_and_records_each_transition_on(store: SharedStore) {
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

    let (claimed, lease, running) = claim(&store).await.unwrap();
    assert_eq!((claimed.id, claimed.status), (first.id, JobStatus::Running));
    assert!(claimed.started_at.is_some());
    assert_eq!(
        (lease.owner.as_str(), lease.attempt, claimed.attempts),
        ("w", 1, 1)
    );
    store.record_epoch(&lease, &epoch(1)).await.unwrap();
    store.record_epoch(&lease, &epoch(2)).await.unwrap();
    // An epoch is recorded once: the same epoch with other metrics is refused; the very
    // same write again (a retry whose first answer was lost) gets the recorded event back.
    let other = EpochMetrics {
        loss: 0.123,
        ..epoch(2)
    };
    assert!(store.record_epoch(&lease, &other).await.is_err());
    let again = store.record_epoch(&lease, &epoch(2)).await.unwrap();
    assert_eq!(again.data, serde_json::to_value(epoch(2)).unwrap());
    let outcome = Outcome {
        result: Some(json!({"ok": true})),
        ..Default::default()
    };
    let done = store
        .finish_job(&lease, JobStatus::Succeeded, &outcome, None)
        .await
        .unwrap();

    let events = store.events_after(&[first.id], 0).await.unwrap();
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
            .events_after(&[first.id], running.id)
            .await
            .unwrap()
            .len(),
        3
    );

    let job = store.job(first.id).await.unwrap().unwrap();
    assert_eq!(job.epochs, vec![epoch(1), epoch(2)]);
    assert_eq!(job.result, Some(json!({"ok": true})));
    // The next claim is the second job; then the queue is empty.
    assert_eq!(claim(&store).await.unwrap().0.id, second.id);
    assert!(claim(&store).await.is_none());
}

#[tokio::test]
async fn the_queue_bound_holds_when_many_insert_at_once() {
    for (_dir, store) in stores().await {
        // Concurrent inserts over the pool's connections, as replicas make them.
        let inserts = (0..12).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_job(&new_job(JobKind::Train), 5).await })
        });
        let mut accepted = 0;
        for insert in inserts.collect::<Vec<_>>() {
            match insert.await.unwrap() {
                Ok(_) => accepted += 1,
                Err(StoreError::QueueFull(_)) => {}
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(accepted, 5);
        assert_eq!(store.queued_count().await.unwrap(), 5);
    }
}

#[tokio::test]
async fn listing_brings_each_job_its_own_epochs() {
    for (_dir, store) in stores().await {
        listing_brings_each_job_its_own_epochs_on(store).await;
    }
}

async fn listing_brings_each_job_its_own_epochs_on(store: SharedStore) {
    let mut ids = Vec::new();
    for epochs in [3, 0, 2] {
        let job = new_job(JobKind::Train);
        store.insert_job(&job, 10).await.unwrap();
        let (_, lease, _) = claim(&store).await.unwrap();
        for n in 1..=epochs {
            store.record_epoch(&lease, &epoch(n)).await.unwrap();
        }
        ids.push((job.id, epochs as usize));
    }
    let listed = store.jobs(None).await.unwrap();
    // Newest first.
    let got: Vec<(Uuid, usize)> = listed.iter().map(|j| (j.id, j.epochs.len())).collect();
    ids.reverse();
    assert_eq!(got, ids);
    assert_eq!(store.jobs(Some(JobStatus::Queued)).await.unwrap().len(), 0);
    assert_eq!(store.jobs(Some(JobStatus::Running)).await.unwrap().len(), 3);
    // Their leases hold: none is expired.
    assert!(store.expired().await.unwrap().is_empty());
}

#[tokio::test]
async fn cancelling_a_running_job_is_read_back_with_its_progress() {
    for (_dir, store) in stores().await {
        cancelling_a_running_job_is_read_back_with_its_progress_on(store).await;
    }
}

async fn cancelling_a_running_job_is_read_back_with_its_progress_on(store: SharedStore) {
    let queued = new_job(JobKind::Train);
    let running = new_job(JobKind::Train);
    store.insert_job(&running, 10).await.unwrap();
    store.insert_job(&queued, 10).await.unwrap();
    let (_, lease, _) = claim(&store).await.unwrap();
    let progress = Progress {
        done: 1,
        total: 10,
        unit: "steps".into(),
    };
    assert!(!store.set_progress(&lease, &progress).await.unwrap());
    assert!(!store.heartbeat(&lease, LEASE).await.unwrap());
    assert!(matches!(
        store.request_cancel(running.id).await.unwrap(),
        CancelOutcome::Requested
    ));
    assert!(store.set_progress(&lease, &progress).await.unwrap());
    assert!(store.heartbeat(&lease, LEASE).await.unwrap());
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
    // Given back at shutdown with its cancel requested, the job is cancelled, not resumed.
    let released = store.release(&lease).await.unwrap();
    assert_eq!(released.data, json!({"status": "cancelled"}));
    assert!(claim(&store).await.is_none());

    // Given back at shutdown, a job is back in the queue, in front; the next claim has a
    // number of its own, and the given-back one is not counted as a lost worker's.
    let (first, second) = (new_job(JobKind::Train), new_job(JobKind::Train));
    store.insert_job(&first, 10).await.unwrap();
    store.insert_job(&second, 10).await.unwrap();
    let (_, lease, _) = claim(&store).await.unwrap();
    let released = store.release(&lease).await.unwrap();
    assert_eq!(released.data, json!({"status": "queued", "resumed": true}));
    let (again, lease, _) = claim(&store).await.unwrap();
    assert_eq!(
        (again.id, lease.attempt, again.attempts, again.releases),
        (first.id, 2, 2, 1)
    );
}

pub(super) fn model(id: Uuid, created_at: &str) -> ModelRecord {
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
    for (_dir, store) in stores().await {
        the_default_model_is_the_marked_one_else_the_newest_on(store).await;
    }
}

async fn the_default_model_is_the_marked_one_else_the_newest_on(store: SharedStore) {
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
async fn a_dataset_name_is_registered_once_until_deleted() {
    for (_dir, store) in stores().await {
        a_dataset_name_is_registered_once_until_deleted_on(store).await;
    }
}

async fn a_dataset_name_is_registered_once_until_deleted_on(store: SharedStore) {
    let record = |name: &str| DatasetRecord {
        name: name.into(),
        version: Uuid::new_v4(),
        splits: json!({"train": {"classes": ["a", "b"], "images": 4}}),
        created_at: String::new(),
    };
    let (pets, birds) = (record("pets"), record("birds"));
    assert!(store.dataset("pets").await.unwrap().is_none());
    store.insert_dataset(&pets).await.unwrap();
    store.insert_dataset(&birds).await.unwrap();
    let again = store.insert_dataset(&record("pets")).await;
    assert!(
        matches!(&again, Err(StoreError::Taken(n)) if n == "pets"),
        "{again:?}"
    );
    let found = store.dataset("pets").await.unwrap().unwrap();
    assert_eq!((found.version, &found.splits), (pets.version, &pets.splits));
    assert!(!found.created_at.is_empty());
    let names: Vec<String> = store
        .datasets()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["birds", "pets"]);
    let deleted = store.delete_dataset("pets").await.unwrap().unwrap();
    assert_eq!(deleted.version, pets.version);
    assert!(store.delete_dataset("pets").await.unwrap().is_none());
    // Free again: a new upload of the name is a new version.
    store.insert_dataset(&record("pets")).await.unwrap();
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
    for (_dir, store) in stores().await {
        active_jobs_on_a_dataset_are_the_queued_and_running_ones_on(store).await;
    }
}

async fn active_jobs_on_a_dataset_are_the_queued_and_running_ones_on(store: SharedStore) {
    let on = |dataset: &str| NewJob {
        dataset: dataset.into(),
        ..new_job(JobKind::ExtractFeatures)
    };
    let (running, queued, finished, other) = (on("d"), on("d"), on("d"), on("e"));
    for job in [&finished, &running, &queued, &other] {
        store.insert_job(job, 10).await.unwrap();
    }
    let (_, lease, _) = claim(&store).await.unwrap();
    store
        .finish_job(&lease, JobStatus::Failed, &Outcome::default(), None)
        .await
        .unwrap();
    claim(&store).await.unwrap();
    assert_eq!(
        store.active_jobs_on("d").await.unwrap(),
        vec![running.id, queued.id]
    );
    assert_eq!(store.active_jobs_on("e").await.unwrap(), vec![other.id]);
    assert!(store.active_jobs_on("none").await.unwrap().is_empty());
    store.request_cancel(queued.id).await.unwrap();
    assert_eq!(store.active_jobs_on("d").await.unwrap(), vec![running.id]);
}

#[tokio::test]
async fn a_lost_lease_passes_the_job_on_and_fences_the_old_holder() {
    for (_dir, store) in stores().await {
        a_lost_lease_passes_the_job_on_and_fences_the_old_holder_on(store).await;
    }
}

async fn a_lost_lease_passes_the_job_on_and_fences_the_old_holder_on(store: SharedStore) {
    let job = new_job(JobKind::Train);
    store.insert_job(&job, 10).await.unwrap();
    let short = ClaimSpec {
        lease: Duration::from_millis(300),
        ..worker("a")
    };
    let (_, old, _) = store.claim_next(&short).await.unwrap().unwrap();
    store.record_epoch(&old, &epoch(1)).await.unwrap();
    // Worker a freezes: no heartbeat, the lease expires.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let expired = store.expired().await.unwrap();
    assert_eq!(expired.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);
    let event = store
        .settle_expired(job.id, 1, &Settle::Requeue)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.data["resumed"], json!(true));
    // Settled once: a second settler finds nothing to do.
    assert!(store
        .settle_expired(job.id, 1, &Settle::Requeue)
        .await
        .unwrap()
        .is_none());
    let (resumed, new, _) = store.claim_next(&worker("b")).await.unwrap().unwrap();
    assert_eq!(
        (resumed.attempts, new.attempt, resumed.epochs.len()),
        (2, 2, 1)
    );
    // A settler that looked at the first claim cannot settle the second.
    let stale = Settle::Fail("stale".into());
    assert!(store
        .settle_expired(job.id, 1, &stale)
        .await
        .unwrap()
        .is_none());
    // Worker a wakes up: every write it tries is refused, and nothing of it is recorded.
    let lost =
        |r: Result<_, StoreError>| matches!(r, Err(StoreError::LeaseLost(id)) if id == job.id);
    assert!(lost(store.record_epoch(&old, &epoch(2)).await.map(|_| ())));
    assert!(lost(store.heartbeat(&old, LEASE).await.map(|_| ())));
    let progress = Progress::default();
    assert!(lost(store.set_progress(&old, &progress).await.map(|_| ())));
    let model = model(Uuid::new_v4(), "");
    let nothing = Outcome::default();
    let finish = store.finish_job(&old, JobStatus::Succeeded, &nothing, Some(&model));
    assert!(lost(finish.await.map(|_| ())));
    assert!(lost(store.release(&old).await.map(|_| ())));
    assert!(store.model(model.id).await.unwrap().is_none());
    // Worker b goes on from epoch 2 and finishes, registering its model with the end.
    store.record_epoch(&new, &epoch(2)).await.unwrap();
    let outcome = Outcome {
        model_id: Some(model.id),
        ..Default::default()
    };
    store
        .finish_job(&new, JobStatus::Succeeded, &outcome, Some(&model))
        .await
        .unwrap();
    let done = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(done.epochs, vec![epoch(1), epoch(2)]);
    assert_eq!(
        (done.status, done.model_id),
        (JobStatus::Succeeded, Some(model.id))
    );
    assert_eq!(
        store.model(model.id).await.unwrap().unwrap().source_job,
        model.source_job
    );
}

#[tokio::test]
async fn a_lost_job_can_be_failed_with_its_reason_and_kinds_filter_claims() {
    for (_dir, store) in stores().await {
        a_lost_job_can_be_failed_with_its_reason_and_kinds_filter_claims_on(store).await;
    }
}

async fn a_lost_job_can_be_failed_with_its_reason_and_kinds_filter_claims_on(store: SharedStore) {
    let train = new_job(JobKind::Train);
    let evaluate = new_job(JobKind::Evaluate);
    store.insert_job(&train, 10).await.unwrap();
    store.insert_job(&evaluate, 10).await.unwrap();
    // A CPU worker that only evaluates skips the older training job.
    let cpu = ClaimSpec {
        kinds: vec![JobKind::Evaluate, JobKind::ExtractFeatures],
        lease: Duration::from_millis(200),
        ..worker("cpu")
    };
    let (claimed, _, _) = store.claim_next(&cpu).await.unwrap().unwrap();
    assert_eq!(claimed.id, evaluate.id);
    assert!(store.claim_next(&cpu).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reason = Settle::Fail("lost too often".into());
    let event = store
        .settle_expired(evaluate.id, 1, &reason)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event.data,
        json!({"status": "failed", "error": "lost too often"})
    );
    let failed = store.job(evaluate.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (JobStatus::Failed, Some("lost too often"))
    );
    assert_eq!(claim(&store).await.unwrap().0.id, train.id);
}

/// Notices reach subscribers of another handle on the same database, as they reach
/// another process: each recorded event by id, and progress.
#[tokio::test]
async fn notices_reach_every_handle_on_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vggserve.db");
    let mut pairs: Vec<(SharedStore, SharedStore)> = vec![(
        Arc::new(SqliteStore::open(&path).await.unwrap()),
        Arc::new(SqliteStore::open(&path).await.unwrap()),
    )];
    if let Some(url) = postgres_database().await {
        pairs.push((
            Arc::new(PostgresStore::connect(&url).await.unwrap()),
            Arc::new(PostgresStore::connect(&url).await.unwrap()),
        ));
    }
    for (writer, reader) in pairs {
        let mut notices = reader.subscribe();
        // Let the reader's watcher start (it learns the newest id first).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let job = new_job(JobKind::Train);
        let (_, queued) = writer.insert_job(&job, 10).await.unwrap();
        let (_, lease, running) = writer.claim_next(&worker("w")).await.unwrap().unwrap();
        let progress = Progress {
            done: 3,
            total: 9,
            unit: "steps".into(),
        };
        writer.set_progress(&lease, &progress).await.unwrap();
        let epoch = writer.record_epoch(&lease, &epoch(1)).await.unwrap();
        let mut recorded = Vec::new();
        let mut progressed = false;
        while recorded.len() < 3 || !progressed {
            let next = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await;
            match next.expect("a notice within 5 s").unwrap() {
                Notice::Recorded { job_id, id } => {
                    assert_eq!(job_id, job.id);
                    recorded.push(id);
                }
                Notice::Progress {
                    job_id,
                    progress: p,
                } => {
                    assert_eq!((job_id, &p), (job.id, &progress));
                    progressed = true;
                }
            }
        }
        assert_eq!(recorded, [queued.id, running.id, epoch.id]);
    }
}

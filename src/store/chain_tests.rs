//! Job chains on both stores: a job waiting on others is claimable only once they have all
//! succeeded, then runs with the models they registered; a dependency that fails or is
//! cancelled fails everything down the chain, with the reason; cancelling a waiting job
//! leaves its dependencies alone; a pipeline's jobs are queued together or not at all.

use serde_json::json;
use uuid::Uuid;

use super::tests::{claim, model, new_job, open, postgres_database, stores};
use super::*;

fn waiting_on(job: &NewJob, field: &str, takes_model: bool, kind: JobKind) -> NewJob {
    NewJob {
        depends_on: vec![Dependency {
            job: job.id,
            field: field.into(),
            takes_model,
        }],
        params: json!({"kind": kind.as_str(), "dataset": "d", field: job.id}),
        ..new_job(kind)
    }
}

async fn status(store: &SharedStore, id: Uuid) -> (JobStatus, Option<String>) {
    let job = store.job(id).await.unwrap().unwrap();
    (job.status, job.error)
}

async fn statuses(store: &SharedStore, id: Uuid) -> Vec<String> {
    let events = store.events_after(&[id], 0).await.unwrap();
    events
        .iter()
        .map(|e| e.data["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_waiting_job_runs_once_its_dependency_succeeds_with_the_model_filled_in() {
    for (_dir, store) in stores().await {
        let train = new_job(JobKind::Train);
        let fine_tune = waiting_on(&train, "from_model", true, JobKind::FineTune);
        store.insert_job(&train, 10).await.unwrap();
        let (waiting, event) = store.insert_job(&fine_tune, 10).await.unwrap();
        assert_eq!(waiting.status, JobStatus::Waiting);
        assert_eq!(waiting.depends_on, vec![train.id]);
        assert_eq!(
            event.data,
            json!({"status": "waiting", "depends_on": [train.id]})
        );

        let (job, lease, _) = claim(&store).await.unwrap();
        assert_eq!(job.id, train.id);
        assert!(
            claim(&store).await.is_none(),
            "a waiting job is not claimable"
        );
        let trained = model(Uuid::new_v4(), "2026-11-29T00:00:00Z");
        let outcome = Outcome {
            model_id: Some(trained.id),
            ..Default::default()
        };
        let ended = store
            .finish_job(&lease, JobStatus::Succeeded, &outcome, Some(&trained))
            .await
            .unwrap();

        let promoted = store.job(fine_tune.id).await.unwrap().unwrap();
        assert_eq!(promoted.status, JobStatus::Queued);
        assert_eq!(promoted.params["from_model"], json!(trained.id));
        assert_eq!(promoted.depends_on, vec![train.id]);
        let events = store.events_after(&[fine_tune.id], ended.id).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, json!({"status": "queued"}));
        let (job, _, _) = claim(&store).await.unwrap();
        assert_eq!(job.id, fine_tune.id);

        // Named after it succeeded: queued at once, its model filled in.
        let evaluate = waiting_on(&train, "model", true, JobKind::Evaluate);
        let (queued, _) = store.insert_job(&evaluate, 10).await.unwrap();
        assert_eq!(queued.status, JobStatus::Queued);
        assert_eq!(queued.params["model"], json!(trained.id));
    }
}

#[tokio::test]
async fn a_failed_dependency_fails_the_whole_chain_below_it_with_the_reason() {
    for (_dir, store) in stores().await {
        let extract = new_job(JobKind::ExtractFeatures);
        let train = waiting_on(&extract, "features", false, JobKind::Train);
        let evaluate = waiting_on(&train, "model", true, JobKind::Evaluate);
        let other = new_job(JobKind::ExtractFeatures);
        for job in [&extract, &train, &evaluate, &other] {
            store.insert_job(job, 10).await.unwrap();
        }
        let (_, lease, _) = claim(&store).await.unwrap();
        let outcome = Outcome {
            error: Some("split test/ is unreadable".into()),
            ..Default::default()
        };
        store
            .finish_job(&lease, JobStatus::Failed, &outcome, None)
            .await
            .unwrap();

        let (status_of_train, error) = status(&store, train.id).await;
        let error = error.unwrap();
        assert_eq!(status_of_train, JobStatus::Failed);
        assert!(error.contains(&extract.id.to_string()), "{error}");
        assert!(
            error.contains("features") && error.contains("unreadable"),
            "{error}"
        );
        let (status_of_evaluate, error) = status(&store, evaluate.id).await;
        assert_eq!(status_of_evaluate, JobStatus::Failed);
        assert!(error.unwrap().contains(&train.id.to_string()));
        assert_eq!(statuses(&store, evaluate.id).await, ["waiting", "failed"]);
        assert_eq!(status(&store, other.id).await.0, JobStatus::Queued);

        // Nothing can wait on a job that failed.
        let late = waiting_on(&extract, "features", false, JobKind::Train);
        let refused = store.insert_job(&late, 10).await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::DependencyEnded { field, job, .. }
                if field == "features" && *job == late.id),
            "{refused}"
        );
        assert!(store.job(late.id).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn cancelling_spares_dependencies_and_fails_dependents() {
    for (_dir, store) in stores().await {
        let train = new_job(JobKind::Train);
        let fine_tune = waiting_on(&train, "from_model", true, JobKind::FineTune);
        let evaluate = waiting_on(&fine_tune, "model", true, JobKind::Evaluate);
        for job in [&train, &fine_tune, &evaluate] {
            store.insert_job(job, 10).await.unwrap();
        }
        // A waiting job cancelled: what it waits on runs on, what waits on it fails.
        let cancelled = store.request_cancel(fine_tune.id).await.unwrap();
        assert!(
            matches!(cancelled, CancelOutcome::Cancelled(_)),
            "{cancelled:?}"
        );
        assert_eq!(status(&store, train.id).await.0, JobStatus::Queued);
        let (evaluate_status, error) = status(&store, evaluate.id).await;
        assert_eq!(evaluate_status, JobStatus::Failed);
        assert!(error.unwrap().ends_with("was cancelled"));

        // A running dependency cancelled: its waiting dependent fails, nothing else moves.
        let second = waiting_on(&train, "model", true, JobKind::Evaluate);
        store.insert_job(&second, 10).await.unwrap();
        let (_, lease, _) = claim(&store).await.unwrap();
        assert!(matches!(
            store.request_cancel(train.id).await.unwrap(),
            CancelOutcome::Requested
        ));
        store
            .finish_job(&lease, JobStatus::Cancelled, &Outcome::default(), None)
            .await
            .unwrap();
        let (second_status, error) = status(&store, second.id).await;
        assert_eq!(second_status, JobStatus::Failed);
        assert!(error.unwrap().contains(&train.id.to_string()));
    }
}

#[tokio::test]
async fn a_pipeline_is_queued_whole_or_not_at_all() {
    for (_dir, store) in stores().await {
        let extract = NewJob {
            step: Some("extract".into()),
            ..new_job(JobKind::ExtractFeatures)
        };
        let train = NewJob {
            step: Some("train".into()),
            ..waiting_on(&extract, "features", false, JobKind::Train)
        };
        let pipeline = NewPipeline {
            id: Uuid::new_v4(),
            recipe: Some(1),
        };
        let jobs = [extract.clone(), train.clone()];
        let full = store
            .insert_jobs(&jobs, Some(&pipeline), 1)
            .await
            .unwrap_err();
        assert!(matches!(full, StoreError::QueueFull(0)), "{full}");
        assert!(store.pipeline(pipeline.id).await.unwrap().is_none());
        assert!(store.job(extract.id).await.unwrap().is_none());

        store.insert_jobs(&jobs, Some(&pipeline), 2).await.unwrap();
        let found = store.pipeline(pipeline.id).await.unwrap().unwrap();
        assert_eq!((found.recipe, found.status), (Some(1), JobStatus::Queued));
        let steps: Vec<_> = found.jobs.iter().map(|j| j.step.as_deref()).collect();
        assert_eq!(steps, [Some("extract"), Some("train")]);
        assert_eq!(found.jobs[1].pipeline, Some(pipeline.id));
        let listed = store.pipelines().await.unwrap();
        assert_eq!(
            listed.iter().map(|p| p.id).collect::<Vec<_>>(),
            [pipeline.id]
        );
        let events = store
            .events_after(&[extract.id, train.id], 0)
            .await
            .unwrap();
        let order: Vec<_> = events.iter().map(|e| (e.job_id, e.id)).collect();
        assert_eq!(order.len(), 2);
        assert!(order[0].1 < order[1].1 && order[0].0 == extract.id);
    }
}

/// Jobs that a version before chains left waiting (it ended their dependency without
/// settling them) are settled by `settle_waiting`: queued, or failed down the chain.
async fn stranded_jobs_are_settled_on(store: SharedStore, force: impl AsyncFn(Uuid, JobStatus)) {
    let extract = new_job(JobKind::ExtractFeatures);
    let train = waiting_on(&extract, "features", false, JobKind::Train);
    let doomed = new_job(JobKind::ExtractFeatures);
    let after = waiting_on(&doomed, "features", false, JobKind::Train);
    let last = waiting_on(&after, "model", true, JobKind::Evaluate);
    for job in [&extract, &train, &doomed, &after, &last] {
        store.insert_job(job, 10).await.unwrap();
    }
    assert_eq!(
        store.settle_waiting().await.unwrap(),
        0,
        "nothing is stranded yet"
    );
    force(extract.id, JobStatus::Succeeded).await;
    force(doomed.id, JobStatus::Cancelled).await;
    assert_eq!(store.settle_waiting().await.unwrap(), 3);
    assert_eq!(status(&store, train.id).await.0, JobStatus::Queued);
    assert_eq!(status(&store, after.id).await.0, JobStatus::Failed);
    let (last_status, error) = status(&store, last.id).await;
    assert_eq!(last_status, JobStatus::Failed);
    assert!(error.unwrap().contains(&after.id.to_string()));
    assert_eq!(store.settle_waiting().await.unwrap(), 0);
}

#[tokio::test]
async fn jobs_left_waiting_on_ended_dependencies_are_settled() {
    let (_dir, sqlite) = open().await;
    let sqlite = Arc::new(sqlite);
    let forced = sqlite.clone();
    stranded_jobs_are_settled_on(sqlite, async |id, status| {
        forced.force_status(id, status).await
    })
    .await;
    if let Some(url) = postgres_database().await {
        let postgres = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let forced = postgres.clone();
        let force = async |id, status| forced.force_status(id, status).await;
        stranded_jobs_are_settled_on(postgres, force).await;
    }
}

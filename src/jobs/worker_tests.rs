//! The worker's loop with a stand-in runner, over a real store: FIFO order, each way a job
//! can end, a model registered, a cancel read back from the store, shutdown joining.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::{Job, JobStatus, ModelRecord};
use crate::jobs::reporter::JobReporter;
use crate::model::head::HeadConfig;
use crate::model::{ModelConfig, Preprocessing};
use crate::store::{NewJob, SqliteStore};
use crate::train::Reporter;
use crate::train::{recipes, TrainError};

/// Runs each job as its params' `behaviour` says, and remembers the order.
struct FakeRunner {
    ran: Arc<Mutex<Vec<Uuid>>>,
    registered: Arc<Mutex<Vec<Uuid>>>,
}

impl JobRunner for FakeRunner {
    fn run(
        &mut self,
        job: &Job,
        reporter: &mut JobReporter,
    ) -> Result<recipes::Outcome, TrainError> {
        self.ran.lock().unwrap().push(job.id);
        let outcome = |model| recipes::Outcome {
            result: json!({"ran": job.id}),
            model,
        };
        match job.params["behaviour"].as_str().unwrap() {
            "two_epochs" => {
                for epoch in 1..=2 {
                    reporter
                        .epoch(&crate::domain::EpochMetrics {
                            epoch,
                            loss: 0.5,
                            acc: 0.75,
                            val_loss: None,
                            val_acc: None,
                            seconds: 0.1,
                            best_epoch: None,
                        })
                        .map_err(TrainError::Other)?;
                }
                Ok(outcome(None))
            }
            "model" => Ok(outcome(Some(recipes::TrainedModel {
                id: Uuid::new_v4(),
                config: ModelConfig {
                    recipe: "features".into(),
                    head: HeadConfig::new(8),
                    classes: vec!["a".into(), "b".into()],
                    image_size: 32,
                    preprocessing: Preprocessing::Rgb01,
                    weights_sha256: "00".into(),
                    includes_base: false,
                },
                artifact: "models/x/model.safetensors".into(),
                artifact_sha256: "00".into(),
                metrics: json!({}),
                test_metrics: None,
            }))),
            "invalid" => Err(TrainError::Invalid("the data does not fit".into())),
            "panic" => panic!("boom"),
            "until_cancelled" => {
                let started = Instant::now();
                while !reporter.cancelled() {
                    assert!(
                        started.elapsed() < Duration::from_secs(20),
                        "never cancelled"
                    );
                    std::thread::sleep(Duration::from_millis(300));
                    reporter.progress(1, 10, "steps");
                }
                Err(TrainError::Cancelled(None))
            }
            other => panic!("unknown behaviour {other}"),
        }
    }

    fn record(&mut self, job: &Job, model: recipes::TrainedModel) -> anyhow::Result<ModelRecord> {
        self.registered.lock().unwrap().push(model.id);
        Ok(ModelRecord {
            id: model.id,
            recipe: model.config.recipe.clone(),
            dataset: "d".into(),
            classes: model.config.classes.clone(),
            params: job.params.clone(),
            metrics: model.metrics,
            test_metrics: None,
            source_job: job.id,
            created_at: String::new(),
            artifact: model.artifact,
            artifact_sha256: model.artifact_sha256,
            config: serde_json::to_value(&model.config)?,
            is_default: false,
        })
    }

    fn can_resume(&self, _job: &Job) -> bool {
        false
    }

    fn discard(&mut self, _model: &ModelRecord) {}

    fn cleanup(&mut self, _job: &Job) {}
}

async fn wait_until_ended(store: &SharedStore, id: Uuid) -> Job {
    let started = Instant::now();
    loop {
        let job = store.job(id).await.unwrap().unwrap();
        if job.status.is_terminal() {
            return job;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_jobs_in_order_and_records_how_each_ended() {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(&dir.path().join("vggserve.db"))
            .await
            .unwrap(),
    );
    let mut ids = Vec::new();
    for behaviour in ["two_epochs", "model", "invalid", "panic", "until_cancelled"] {
        let job = NewJob {
            id: Uuid::new_v4(),
            kind: crate::domain::JobKind::Train,
            dataset: "d".into(),
            params: json!({"behaviour": behaviour}),
            depends_on: Vec::new(),
            step: None,
        };
        store.insert_job(&job, 10).await.unwrap();
        ids.push(job.id);
    }
    let ran = Arc::new(Mutex::new(Vec::new()));
    let registered = Arc::new(Mutex::new(Vec::new()));
    let runner = FakeRunner {
        ran: ran.clone(),
        registered: registered.clone(),
    };
    let config = WorkerConfig::new("test", Vec::new(), Duration::from_secs(30), 3);
    let worker = Worker::spawn(store.clone(), config, runner, Handle::current()).unwrap();
    worker.handle().notify();

    let job = wait_until_ended(&store, ids[0]).await;
    assert_eq!((job.status, job.epochs.len()), (JobStatus::Succeeded, 2));
    assert_eq!(job.result, Some(json!({"ran": ids[0]})));
    let job = wait_until_ended(&store, ids[1]).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.model_id, registered.lock().unwrap().first().copied());
    // Registered with the job's end.
    assert!(store.model(job.model_id.unwrap()).await.unwrap().is_some());
    let job = wait_until_ended(&store, ids[2]).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.as_deref(), Some("the data does not fit"));
    let job = wait_until_ended(&store, ids[3]).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.as_deref(), Some("internal error: boom"));

    // The last job runs until a cancel reaches it through the store, as from any process.
    let started = Instant::now();
    while store.job(ids[4]).await.unwrap().unwrap().status != JobStatus::Running {
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        store.request_cancel(ids[4]).await.unwrap(),
        crate::store::CancelOutcome::Requested
    ));
    let job = wait_until_ended(&store, ids[4]).await;
    assert_eq!(job.status, JobStatus::Cancelled);

    assert_eq!(*ran.lock().unwrap(), ids);
    // Shutdown joins the thread (the test would hang otherwise).
    tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
}

//! Scale-out with real processes on one PostgreSQL database (a fresh one on the server
//! `VGGSERVE_TEST_POSTGRES_URL` names; `make test` starts it) and one data folder: API
//! replicas (`serve --no-worker`) take requests, `vggserve worker` processes run the jobs.
//! Jobs posted to either replica run exactly once, spread over the workers; SSE on one
//! replica follows a job posted to the other, live and resumed; a worker killed mid-epoch
//! or frozen past its lease loses no epoch and records nothing twice; a model trained
//! through one replica predicts on the other, and deleting it on one is seen by both; a
//! PostgreSQL restart mid-run shows in `/readyz` while it lasts and loses nothing; with an
//! S3 bucket, a dataset uploaded to one replica trains on workers that never had its files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::datasets::zip_of;
use crate::helpers::{ids_of, link_dataset, spawn_logged, Api};
use crate::shared::standin_weights;

const LIMIT: Duration = Duration::from_secs(600);

/// One vggserve process; killed when dropped, its log tail printed if a test failed.
struct Node {
    name: String,
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- {} log (last lines) ---", self.name);
            for line in log.lines().rev().take(25).collect::<Vec<_>>().iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    root: tempfile::TempDir,
    database_url: String,
    /// With an artifact store, each process has a data dir of its own, as on machines of
    /// their own; without, they share one.
    artifacts_url: Option<String>,
    replicas: Vec<Node>,
    workers: Vec<Node>,
}

impl Cluster {
    async fn start(replicas: usize, workers: usize) -> Option<Self> {
        let mut cluster = Self::empty(None).await?;
        for n in 1..=replicas {
            cluster.add_replica(&format!("api{n}"));
        }
        for n in 1..=workers {
            cluster.add_worker(&format!("w{n}"), &[]);
        }
        Some(cluster)
    }

    async fn empty(artifacts_url: Option<String>) -> Option<Self> {
        let database_url = crate::postgres::fresh_database("scale").await?;
        let root = tempfile::tempdir().unwrap();
        let datasets = root.path().join("datasets");
        let mini = [("train", 4), ("validation", 2), ("test", 2)];
        link_dataset(
            &datasets,
            "mini",
            "cats_and_dogs_small",
            &["cats", "dogs"],
            &mini,
        );
        Some(Self {
            root,
            database_url,
            artifacts_url,
            replicas: Vec::new(),
            workers: Vec::new(),
        })
    }

    /// `vggserve <role...>` as node `name` of this cluster.
    fn command(&self, name: &str, role: &[&str]) -> Command {
        let root = self.root.path();
        let data = match &self.artifacts_url {
            Some(_) => root.join(format!("{name}-data")),
            None => root.join("data"),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_vggserve"));
        command
            .args(role)
            .args(["--device", "cpu", "--database-url", &self.database_url])
            .args(["--conv-precision", "f32"])
            .arg("--data-dir")
            .arg(data)
            .arg("--datasets-dir")
            .arg(root.join("datasets"))
            .arg("--weights")
            .arg(standin_weights())
            .env("VGGSERVE_LEASE_SECONDS", "3")
            .env_remove("VGGSERVE_API_TOKEN");
        if let Some(url) = &self.artifacts_url {
            command.args(["--artifacts-url", url]);
        }
        command
    }

    fn add_replica(&mut self, name: &str) {
        let role = ["serve", "--addr", "127.0.0.1:0", "--no-worker"];
        let node = self.spawn(name, self.command(name, &role), "listening on ");
        self.replicas.push(node);
    }

    fn spawn(&self, name: &str, command: Command, marker: &str) -> Node {
        let log = self.root.path().join(format!("{name}.log"));
        let (child, url) = spawn_logged(command, &log, marker);
        Node {
            name: name.into(),
            child,
            url,
            log,
        }
    }

    fn add_worker(&mut self, name: &str, extra: &[&str]) {
        let role = [
            "worker",
            "--health-addr",
            "127.0.0.1:0",
            "--worker-name",
            name,
        ];
        let mut command = self.command(name, &role);
        command.args(extra);
        let node = self.spawn(name, command, "worker health on ");
        self.workers.push(node);
    }

    fn api(&self, replica: usize) -> Api {
        Api {
            url: self.replicas[replica].url.clone(),
            client: reqwest::Client::new(),
        }
    }

    /// The worker node whose name the owner in a `running` event starts with.
    fn worker_index(&self, owner: &str) -> usize {
        let name = owner.split('/').next().unwrap();
        self.workers.iter().position(|w| w.name == name).unwrap()
    }
}

/// The `worker` of each `running` status event, in order.
fn runners(events: &[(String, String, Value)]) -> Vec<String> {
    events
        .iter()
        .filter(|(_, e, d)| e == "status" && d["status"] == "running")
        .map(|(_, _, d)| d["worker"].as_str().unwrap().to_owned())
        .collect()
}

fn epochs_of(job: &Value) -> Vec<i64> {
    job["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_posted_to_either_replica_run_once_each_spread_over_the_workers() {
    let Some(cluster) = Cluster::start(2, 2).await else {
        return;
    };
    let (a, b) = (cluster.api(0), cluster.api(1));
    let mut ids = Vec::new();
    for n in 0..8 {
        let api = if n % 2 == 0 { &a } else { &b };
        ids.push(
            api.queue(json!({"kind": "extract_features", "dataset": "mini"}))
                .await,
        );
    }
    let mut ran_on = BTreeSet::new();
    for (n, id) in ids.iter().enumerate() {
        // Each replica sees every job, whichever took the request.
        let job = [&a, &b][n % 2].wait_for(id, LIMIT).await;
        assert_eq!(
            (job["status"].as_str(), job["attempts"].as_i64()),
            (Some("succeeded"), Some(1)),
            "{job}"
        );
        let events = b.events(id, None).await;
        let runs = runners(&events);
        assert_eq!(runs.len(), 1, "{events:?}");
        ran_on.insert(runs[0].split('/').next().unwrap().to_owned());
    }
    assert_eq!(ran_on, BTreeSet::from(["w1".to_owned(), "w2".to_owned()]));
    let (_, listed) = a.get_json("/v1/jobs?status=succeeded").await;
    assert_eq!(listed.as_array().unwrap().len(), 8);

    // A whole recipe posted to A waits and runs across the workers; B relays every step.
    let recipe = json!({"recipe": 1, "dataset": "mini", "overrides": {"train": {"epochs": 2}}});
    let (status, pipeline) = a.post_json("/v1/pipelines", recipe).await;
    assert_eq!(status, 202, "{pipeline}");
    let id = pipeline["id"].as_str().unwrap();
    let events = b.stream(&format!("/v1/pipelines/{id}/events"), None).await;
    let succeeded: Vec<&str> = events
        .iter()
        .filter(|(_, kind, d)| kind == "status" && d["status"] == "succeeded")
        .map(|(_, _, d)| d["step"].as_str().unwrap())
        .collect();
    assert_eq!(succeeded, ["extract", "train", "evaluate"], "{events:?}");
    let (_, done) = a.get_json(&format!("/v1/pipelines/{id}")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["jobs"][2]["params"]["model"],
        done["jobs"][1]["model_id"]
    );

    // A cancel sent to replica B reaches the worker running a job posted to A.
    let long = a
        .queue(
            json!({"kind": "train", "dataset": "mini", "augment": true, "epochs": 100,
                      "steps_per_epoch": 4, "validation_steps": 1, "batch_size": 2}),
        )
        .await;
    a.wait_until(&long, LIMIT, |j| j["progress"]["unit"] == "steps")
        .await;
    let sent = Instant::now();
    let response = b
        .client
        .post(format!("{}/v1/jobs/{long}/cancel", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job = a.wait_for(&long, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    eprintln!("cancel through the other replica took {:?}", sent.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_loses_no_epoch_and_a_model_moves_between_replicas() {
    let Some(mut cluster) = Cluster::start(2, 2).await else {
        return;
    };
    let (a, b) = (cluster.api(0), cluster.api(1));
    let train = json!({"kind": "train", "dataset": "mini", "augment": true, "epochs": 4,
                       "steps_per_epoch": 4, "validation_steps": 1, "batch_size": 2});

    // 1. kill -9 the worker running a job after its first epoch.
    let id = a.queue(train.clone()).await;
    // Replica B follows it live from the start.
    let live = {
        let b = cluster.api(1);
        let id = id.clone();
        tokio::spawn(async move { b.events(&id, None).await })
    };
    a.wait_until(&id, LIMIT, |j| !epochs_of(j).is_empty()).await;
    let first_run = runners(&b.events_until_running(&id).await).remove(0);
    let victim = cluster.worker_index(&first_run);
    let killed_at = Instant::now();
    let node = &mut cluster.workers[victim];
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    let job = b.wait_for(&id, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(epochs_of(&job), [1, 2, 3, 4]);
    assert_eq!(job["attempts"], 2);
    let events = live.await.unwrap();
    let runs = runners(&events);
    assert_eq!(runs.len(), 2, "{events:?}");
    assert_ne!(runs[0], runs[1]);
    assert!(events
        .iter()
        .any(|(_, e, d)| e == "status" && d["resumed"] == true));
    // Live on B: every epoch once, in order, and event ids increasing without repeats.
    let epochs: Vec<i64> = events
        .iter()
        .filter(|(_, e, _)| e == "epoch")
        .map(|(_, _, d)| d["epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4]);
    let recorded: Vec<i64> = events
        .iter()
        .filter(|(_, e, _)| e != "progress")
        .map(|(i, _, _)| i.parse().unwrap())
        .collect();
    assert!(recorded.windows(2).all(|w| w[0] < w[1]), "{recorded:?}");
    // Resumed on replica A after the second epoch: exactly the rest.
    let second = ids_of(&events, "epoch")[1].to_string();
    let rest = a.events(&id, Some(&second)).await;
    let rest_epochs: Vec<i64> = rest
        .iter()
        .filter(|(_, e, _)| e == "epoch")
        .map(|(_, _, d)| d["epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(rest_epochs, [3, 4]);
    eprintln!("failover: killed to succeeded in {:?}", killed_at.elapsed());

    // 2. Freeze (SIGSTOP) the worker running a job past its lease: the job passes on, and
    // when the frozen worker wakes its writes are refused.
    cluster.add_worker("w3", &[]);
    let id = b.queue(train.clone()).await;
    b.wait_until(&id, LIMIT, |j| !epochs_of(j).is_empty()).await;
    let frozen_owner = runners(&b.events_until_running(&id).await).remove(0);
    let frozen = cluster.workers[cluster.worker_index(&frozen_owner)]
        .child
        .id();
    signal(frozen, "STOP");
    b.wait_until(&id, LIMIT, |j| j["attempts"] == 2).await;
    signal(frozen, "CONT");
    let job = b.wait_for(&id, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(epochs_of(&job), [1, 2, 3, 4]);
    let frozen_log = &cluster.workers[cluster.worker_index(&frozen_owner)].log;
    wait_for_line(frozen_log, "lease lost").await;

    // 3. The model trained through A predicts on B; deleted on A, B answers 404.
    let model = job["model_id"].as_str().unwrap().to_owned();
    let photo = std::fs::read(first_photo(cluster.root.path())).unwrap();
    let predicted = b
        .predict_jpeg(&format!("/v1/predict?model={model}"), photo.clone())
        .await;
    assert_eq!(predicted.status(), 200, "{:?}", predicted.text().await);
    delete_model(&a, &model).await;
    let gone = b
        .predict_jpeg(&format!("/v1/predict?model={model}"), photo)
        .await;
    assert_eq!(gone.status(), 404);
}

async fn delete_model(api: &Api, model: &str) {
    let url = format!("{}/v1/models/{model}", api.url);
    let deleted = api.client.delete(url).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Wait until the log at `path` has a line containing `text`.
async fn wait_for_line(path: &Path, text: &str) {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.lines().any(|l| l.contains(text)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no '{text}' in {path:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn first_photo(root: &Path) -> PathBuf {
    let dir = root.join("datasets/mini/test/cats");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.remove(0)
}

impl Api {
    /// The recorded events of a job so far (a stream read until its first `running`
    /// status, then dropped).
    async fn events_until_running(&self, id: &str) -> Vec<(String, String, Value)> {
        let (_, job) = self.get_json(&format!("/v1/jobs/{id}")).await;
        assert_ne!(job["status"], "queued");
        let mut response = self
            .client
            .get(format!("{}/v1/jobs/{id}/events", self.url))
            .send()
            .await
            .unwrap();
        let mut body = String::new();
        while !body.contains("\"running\"") {
            let chunk = tokio::time::timeout(Duration::from_secs(30), response.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
        crate::helpers::parse_sse(&body[..body.rfind("\n\n").unwrap_or(body.len())])
    }
}

/// `pg_ctl` on the test server, as its owner (the postgres user when run as root).
fn pg_ctl(args: &[&str]) {
    let bin = std::env::var("VGGSERVE_TEST_PG_BIN").unwrap();
    let data = std::env::var("VGGSERVE_TEST_PG_DATA").unwrap();
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    let mut command = if String::from_utf8_lossy(&uid).trim() == "0" {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(format!("{bin}/pg_ctl"));
        c
    } else {
        Command::new(format!("{bin}/pg_ctl"))
    };
    let status = command
        .args(["-D", &data, "-w"])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_nothing_and_readiness_shows_it() {
    let Some(cluster) = Cluster::start(1, 1).await else {
        return;
    };
    let api = cluster.api(0);
    let worker_ready = format!("{}/readyz", cluster.workers[0].url);
    let id = api
        .queue(
            json!({"kind": "train", "dataset": "mini", "augment": true, "epochs": 4,
                      "steps_per_epoch": 4, "validation_steps": 1, "batch_size": 2}),
        )
        .await;
    api.wait_until(&id, LIMIT, |j| !epochs_of(j).is_empty())
        .await;

    pg_ctl(&["-m", "fast", "stop"]);
    // While it is down, both processes say they are not ready (and keep running).
    let (status, body) = api.get_json("/readyz").await;
    assert_eq!(
        (status, body["database"].as_str()),
        (503, Some("unavailable"))
    );
    let worker = api.client.get(&worker_ready).send().await.unwrap();
    assert_eq!(worker.status(), 503);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let opts = std::env::var("VGGSERVE_TEST_PG_OPTS").unwrap();
    let log = std::env::var("VGGSERVE_TEST_PG_LOG").unwrap();
    pg_ctl(&["-o", &opts, "-l", &log, "start"]);

    let job = api.wait_for(&id, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(epochs_of(&job), [1, 2, 3, 4]);
    let (status, _) = api.get_json("/readyz").await;
    assert_eq!(status, 200);
    let worker = api.client.get(&worker_ready).send().await.unwrap();
    assert_eq!(worker.status(), 200);
    // Every event once: the live stream after the outage and the record agree.
    let events = api.events(&id, None).await;
    let epochs: Vec<i64> = events
        .iter()
        .filter(|(_, e, _)| e == "epoch")
        .map(|(_, _, d)| d["epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4]);
}

/// Each process with a data dir of its own, as on machines of their own, sharing only the
/// database and an S3 bucket (the test SeaweedFS; skipped with a note without one). The
/// dataset is uploaded to one replica; the workers and the other replica fetch it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_move_between_machines_through_object_storage() {
    let Ok(bucket) = std::env::var("VGGSERVE_TEST_S3_BUCKET") else {
        assert!(
            std::env::var_os("VGGSERVE_REQUIRE_S3").is_none(),
            "VGGSERVE_REQUIRE_S3 is set but VGGSERVE_TEST_S3_BUCKET is not"
        );
        eprintln!("no VGGSERVE_TEST_S3_BUCKET: skipping the object-storage test");
        return;
    };
    let url = format!("s3://{bucket}/scale-{}", uuid::Uuid::new_v4().simple());
    let Some(mut cluster) = Cluster::empty(Some(url)).await else {
        return;
    };
    cluster.add_replica("api1");
    cluster.add_replica("api2");
    // A CPU worker for extraction, another for training: the features cross machines.
    cluster.add_worker("w1", &["--kinds", "extract_features"]);
    cluster.add_worker("w2", &["--kinds", "train,fine_tune,evaluate"]);
    let (a, b) = (cluster.api(0), cluster.api(1));

    // Uploaded through A, listed by B as its folder twin is, its report computed on B.
    let zip = zip_of(&files_of(&cluster.root.path().join("datasets/mini")));
    let created = a
        .client
        .post(format!("{}/v1/datasets?name=uploaded", a.url))
        .header("content-type", "application/zip")
        .body(zip.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let (_, listed) = b.get_json("/v1/datasets").await;
    let splits_of = |name: &str| {
        let all = listed.as_array().unwrap();
        all.iter()
            .find(|d| d["name"] == name)
            .map(|d| d["splits"].clone())
    };
    assert_eq!(splits_of("uploaded"), splits_of("mini"), "{listed}");
    let (status, detail) = b.get_json("/v1/datasets/uploaded").await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["report"]["errors"], json!([]), "{detail}");
    // The name is taken for every replica.
    let again = b
        .client
        .post(format!("{}/v1/datasets?name=uploaded", b.url))
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    let features = a
        .queue(json!({"kind": "extract_features", "dataset": "uploaded"}))
        .await;
    let job = a.wait_for(&features, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let images = job["result"]["cache"]["computed"].clone();
    assert!(images.as_u64().unwrap() > 0, "{job}");
    // w1 read its own copy, fetched from the bucket; no shared folder ever had it.
    let copies = std::fs::read_dir(cluster.root.path().join("w1-data/dataset-versions")).unwrap();
    let fetched = copies
        .flatten()
        .any(|e| e.path().join("uploaded/train").is_dir());
    assert!(fetched);
    assert!(!cluster.root.path().join("datasets/uploaded").exists());
    let train = a
        .queue(json!({"kind": "train", "dataset": "uploaded", "features": features, "epochs": 3}))
        .await;
    let job = a.wait_for(&train, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let events = b.events(&features, None).await;
    assert!(runners(&events)[0].starts_with("w1/"), "{events:?}");
    let events = b.events(&train, None).await;
    assert!(runners(&events)[0].starts_with("w2/"), "{events:?}");

    // Replica B, which has never seen the model's files, predicts with it.
    let model = job["model_id"].as_str().unwrap().to_owned();
    let photo = std::fs::read(first_photo(cluster.root.path())).unwrap();
    let path = format!("/v1/predict?model={model}");
    let predicted = b.predict_jpeg(&path, photo.clone()).await;
    assert_eq!(predicted.status(), 200, "{:?}", predicted.text().await);

    // A training run whose worker dies resumes on another machine from the checkpoint it
    // published.
    let id = b
        .queue(
            json!({"kind": "train", "dataset": "uploaded", "augment": true, "epochs": 3,
                      "steps_per_epoch": 4, "validation_steps": 1, "batch_size": 2}),
        )
        .await;
    b.wait_until(&id, LIMIT, |j| !epochs_of(j).is_empty()).await;
    let node = &mut cluster.workers[1];
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    cluster.add_worker("w3", &["--kinds", "train"]);
    let job = a.wait_for(&id, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(epochs_of(&job), [1, 2, 3]);
    wait_for_line(&cluster.workers[2].log, "resuming from checkpoint").await;

    // Another machine extracting the same photos finds every feature w1 shared.
    let node = &mut cluster.workers[0];
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    cluster.add_worker("w4", &["--kinds", "extract_features"]);
    let again = b
        .queue(json!({"kind": "extract_features", "dataset": "uploaded"}))
        .await;
    let job = b.wait_for(&again, LIMIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let cache = &job["result"]["cache"];
    assert_eq!(
        (&cache["shared_hits"], &cache["computed"]),
        (&images, &json!(0)),
        "{job}"
    );

    // Deleted through A: B answers 404.
    delete_model(&a, &model).await;
    assert_eq!(b.predict_jpeg(&path, photo).await.status(), 404);

    // The dataset deleted through B is gone for A (which uploaded it) at once.
    let deleted = b
        .client
        .delete(format!("{}/v1/datasets/uploaded", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(a.get_json("/v1/datasets/uploaded").await.0, 404);
    let refused = a
        .post_job(json!({"kind": "extract_features", "dataset": "uploaded"}))
        .await;
    assert_eq!(refused.status(), 404);
    let (_, listed) = a.get_json("/v1/datasets").await;
    assert!(!listed.to_string().contains("uploaded"), "{listed}");
}

/// Every file under `dir` (symlinks followed) as (`<split>/<class>/<file>`, bytes).
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for split in ["train", "validation", "test"] {
        for class in ["cats", "dogs"] {
            let folder = dir.join(split).join(class);
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap();
                files.push((
                    format!("{split}/{class}/{name}"),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    files
}

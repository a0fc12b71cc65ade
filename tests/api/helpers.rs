//! `spawn_app()`: a real `vggserve serve` process on port 0 with a fresh data dir, the
//! stand-in weights and a small dataset of shared photos; plus an SSE reader and helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::shared::{require, standin_weights};

/// A running server's API, as a client sees it.
pub struct Api {
    pub url: String,
    pub client: reqwest::Client,
}

pub struct TestApp {
    pub api: Api,
    pub root: tempfile::TempDir,
    child: Child,
    extra_args: Vec<String>,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Per class: how many photos each split of the `tiny` dataset gets.
const TINY: [(&str, usize); 3] = [("train", 10), ("validation", 5), ("test", 5)];

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra_args: &[&str]) -> TestApp {
    let root = tempfile::tempdir().unwrap();
    make_tiny_dataset(&root.path().join("datasets"));
    let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
    let (child, url) = start_server(root.path(), &extra_args);
    TestApp {
        api: Api {
            url,
            client: reqwest::Client::new(),
        },
        root,
        child,
        extra_args,
    }
}

/// Symlink the first photos of each class of the shared dataset into `<dir>/tiny`.
pub fn make_tiny_dataset(datasets: &Path) {
    link_dataset(
        datasets,
        "tiny",
        "cats_and_dogs_small",
        &["cats", "dogs"],
        &TINY,
    );
}

/// Symlink the first `count` photos (sorted by name) of each of `classes`, per split, of
/// the shared dataset `source` into `<datasets>/<name>`.
pub fn link_dataset(
    datasets: &Path,
    name: &str,
    source: &str,
    classes: &[&str],
    splits: &[(&str, usize)],
) {
    let source = require(&format!("datasets/{source}"));
    for &(split, count) in splits {
        for class in classes {
            let dir = datasets.join(name).join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for file in sorted_entries(&source.join(split).join(class))
                .into_iter()
                .take(count)
            {
                std::os::unix::fs::symlink(&file, dir.join(file.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// The entries of a folder, sorted by name.
pub fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

/// `vggserve serve` on `addr` over `root`'s data and datasets, the stand-in weights and the
/// repository's static/, with no auth settings inherited from the environment.
pub fn serve_command(
    root: &Path,
    addr: &str,
    extra_args: &[impl AsRef<std::ffi::OsStr>],
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vggserve"));
    command
        .arg("serve")
        .args(["--addr", addr, "--device", "cpu"])
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--datasets-dir")
        .arg(root.join("datasets"))
        .arg("--weights")
        .arg(standin_weights())
        .args(extra_args)
        .env(
            "VGGSERVE_STATIC_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("static"),
        )
        // After a kill -9 the job resumes when its lease expires: 3 s keeps restarts quick.
        .env("VGGSERVE_LEASE_SECONDS", "3")
        // f32 unless a test asks otherwise: tests compare numbers with PyTorch's and across
        // runs, which `auto` (the default) would make depend on the machine.
        .env("VGGSERVE_CONV_PRECISION", "f32")
        .env_remove("VGGSERVE_API_TOKEN")
        .env_remove("VGGSERVE_INSECURE_NO_AUTH");
    command
}

fn start_server(root: &Path, extra_args: &[String]) -> (Child, String) {
    let command = serve_command(root, "127.0.0.1:0", extra_args);
    spawn_logged(command, &root.join("server.log"), "listening on ")
}

/// Spawn a vggserve process, wait for the log line with `marker` followed by its URL, and
/// keep draining its log into `log_path` (shown when a test fails) so it never blocks on
/// a full pipe. Returns the process and the URL.
pub fn spawn_logged(mut command: Command, log_path: &Path, marker: &str) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning vggserve");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("vggserve exited before listening")
            .unwrap();
        if let Some((_, rest)) = line.split_once(marker) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let log_path = log_path.to_owned();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        for line in lines.map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
        }
    });
    (child, url)
}

impl TestApp {
    /// Kill the process at once (SIGKILL: no clean-up) and start a new one on the same data.
    pub fn crash_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let (child, url) = start_server(self.root.path(), &self.extra_args);
        self.child = child;
        self.api.url = url;
    }

    pub fn photo(&self, split: &str, class: &str, index: usize) -> PathBuf {
        let dir = self
            .root
            .path()
            .join("datasets/tiny")
            .join(split)
            .join(class);
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files[index].clone()
    }
}

impl Api {
    pub async fn post_job(&self, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/jobs", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POST `bytes` as a raw `image/jpeg` body to `path` (with any query).
    pub async fn predict_jpeg(&self, path: &str, bytes: Vec<u8>) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .header("content-type", "image/jpeg")
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// POST a multipart form to `/v1/predict{query}` (query: "" or "?model=...").
    pub async fn predict_multipart(
        &self,
        query: &str,
        form: reqwest::multipart::Form,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/predict{query}", self.url))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Queue a job that must be accepted; returns its id.
    pub async fn queue(&self, body: Value) -> String {
        let response = self.post_job(body).await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// POST `body` as JSON to `path`: the status and the JSON answer.
    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn job(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/jobs/{id}")).await.1
    }

    /// Poll until the job reaches a terminal status (or fail after `limit`).
    pub async fn wait_for(&self, id: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let job = self.job(id).await;
            if matches!(
                job["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return job;
            }
            assert!(
                started.elapsed() < limit,
                "job {id} still {} after {limit:?}",
                job["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll until `predicate(job)` holds.
    pub async fn wait_until(
        &self,
        id: &str,
        limit: Duration,
        predicate: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let job = self.job(id).await;
            if predicate(&job) {
                return job;
            }
            assert!(
                started.elapsed() < limit,
                "job {id} never reached the state: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Read a job's SSE stream to its end: (id, event, data) triples.
    pub async fn events(
        &self,
        id: &str,
        last_event_id: Option<&str>,
    ) -> Vec<(String, String, Value)> {
        self.stream(&format!("/v1/jobs/{id}/events"), last_event_id)
            .await
    }

    /// Read the SSE stream at `path` to its end: (id, event, data) triples.
    pub async fn stream(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Vec<(String, String, Value)> {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(last) = last_event_id {
            request = request.header("Last-Event-ID", last);
        }
        let response = tokio::time::timeout(Duration::from_secs(600), request.send())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let body = tokio::time::timeout(Duration::from_secs(600), response.text())
            .await
            .expect("SSE stream did not end")
            .unwrap();
        parse_sse(&body)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- server log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn parse_sse(body: &str) -> Vec<(String, String, Value)> {
    body.split("\n\n")
        .filter_map(|frame| {
            let (mut id, mut event, mut data) =
                (String::new(), String::from("message"), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            (!data.is_empty()).then(|| (id, event, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

pub fn ids_of(events: &[(String, String, Value)], kind: &str) -> Vec<i64> {
    events
        .iter()
        .filter(|(_, e, _)| e == kind)
        .map(|(id, _, _)| id.parse().unwrap())
        .collect()
}

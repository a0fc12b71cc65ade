//! Settings, from flags or `VGGSERVE_*` environment variables: [`BaseArgs`] (the conv base:
//! weights, device, preprocessing, precision, resizing), shared by every command that loads
//! it; [`StorageArgs`] (data dir, datasets dir, database) and [`WorkerArgs`] (who a worker
//! is and which jobs it takes), shared by `serve` and `worker`; [`Settings`] of `vggserve
//! serve` and [`WorkerSettings`] of `vggserve worker`, which flatten them in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::data::decode::{ResizeFilter, DEFAULT_MAX_PIXELS};
use crate::domain::JobKind;
use crate::jobs::WorkerConfig;
use crate::model::precision::ConvPrecision;
use crate::model::{ConvBase, Precision, Preprocessing};

/// Where state lives: the same flags for `serve` and `worker`.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Where artifacts (features, models, checkpoints, the feature cache) live, and the
    /// SQLite database by default. Processes sharing a database share this folder too,
    /// unless --artifacts-url names a store: then it is this machine's copies.
    #[arg(long, env = "VGGSERVE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Folder of datasets in flow_from_directory layout: <name>/<split>/<class>/<image>.
    #[arg(long, env = "VGGSERVE_DATASETS_DIR", default_value = "./datasets")]
    pub datasets_dir: PathBuf,
    /// The job queue, events and model registry: sqlite://PATH (default
    /// sqlite://<data-dir>/vggserve.db) or postgres://USER:PASSWORD@HOST:PORT/DB, which
    /// API replicas and workers on several machines share.
    #[arg(long, env = "VGGSERVE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where models, checkpoints, extracted features, feature-cache entries and uploaded
    /// datasets are published for processes on other machines: s3://BUCKET[/PREFIX] (credentials and region from the standard
    /// AWS_* variables, AWS_ENDPOINT_URL for S3-compatible servers) or file:///SHARED/PATH.
    /// Unset: the data dir alone.
    #[arg(long, env = "VGGSERVE_ARTIFACTS_URL")]
    pub artifacts_url: Option<String>,
    /// With --artifacts-url: how many models this machine keeps copies of (the most
    /// recently fetched or trained); an older one is fetched again when it is needed.
    #[arg(long, env = "VGGSERVE_LOCAL_MODELS", default_value_t = crate::artifacts::DEFAULT_LOCAL_MODELS,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub local_models: u32,
}

impl StorageArgs {
    /// The artifact store `--artifacts-url` names, over the data dir.
    pub fn artifacts(&self) -> anyhow::Result<crate::artifacts::SharedArtifacts> {
        let artifacts =
            crate::artifacts::Artifacts::open(self.artifacts_url.as_deref(), &self.data_dir)?
                .keeping_models(self.local_models as usize);
        Ok(std::sync::Arc::new(artifacts))
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("vggserve.db").display()))
    }
}

/// Who a worker is and which jobs it takes.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// This worker's name in leases, events and logs (a random suffix keeps processes with
    /// one name apart). Default: the host name.
    #[arg(long, env = "VGGSERVE_WORKER_NAME")]
    pub worker_name: Option<String>,
    /// Only these job kinds, comma-separated (e.g. evaluate,extract_features for a CPU
    /// worker beside GPU workers that train). Default: every kind.
    #[arg(long, env = "VGGSERVE_KINDS", value_delimiter = ',')]
    pub kinds: Vec<JobKind>,
    /// Seconds a worker holds a job without a heartbeat (heartbeats come every third of
    /// it). A lost worker's job resumes elsewhere after at most this long.
    #[arg(long, env = "VGGSERVE_LEASE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_seconds: u64,
    /// Times a job may be claimed before a lost worker fails it instead of requeueing it.
    #[arg(long, env = "VGGSERVE_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(i64).range(1..=100))]
    pub max_attempts: i64,
}

impl WorkerArgs {
    pub fn config(&self) -> WorkerConfig {
        let name = self.worker_name.clone().unwrap_or_else(host_name);
        WorkerConfig::new(
            &name,
            self.kinds.clone(),
            Duration::from_secs(self.lease_seconds),
            self.max_attempts,
        )
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vggserve".into())
}

/// `vggserve worker`: claims and runs jobs; no public API, only health and metrics.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerSettings {
    /// Address of /healthz, /readyz and /metrics (port 0 picks a free port; it is logged).
    #[arg(long, env = "VGGSERVE_HEALTH_ADDR", default_value = "127.0.0.1:9090")]
    pub health_addr: SocketAddr,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub base: BaseArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[arg(long, env = "VGGSERVE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Refuse images whose header declares more pixels than this.
    #[arg(long, env = "VGGSERVE_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// The conv base and how images reach it: the same flags for `serve`, `features`, `bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BaseArgs {
    /// Conv-base weights: .safetensors (torchvision names), .pth (torchvision) or .h5 (Keras).
    #[arg(
        long,
        env = "VGGSERVE_WEIGHTS",
        default_value = "weights/vgg16.safetensors"
    )]
    pub weights: PathBuf,
    /// cpu, cuda or cuda:N (default: CUDA when available, else CPU).
    #[arg(long, env = "VGGSERVE_DEVICE")]
    pub device: Option<String>,
    /// Override the preprocessing the weights file declares.
    #[arg(long, env = "VGGSERVE_PREPROCESSING")]
    pub preprocessing: Option<Preprocessing>,
    /// Number format of frozen conv-base passes (features, predictions, the frozen layers
    /// in training): f32 matches PyTorch; bf16 is about 2× faster on some CPUs with AVX-512
    /// BF16 and several times slower on others; int8 quantises the frozen layers of training
    /// jobs, calibrated on each job's training photos (predictions stay f32); auto (the
    /// default) measures them all at start-up and keeps another than f32 only where it is
    /// faster and its features stay within tolerance of f32's (the measurement is kept in
    /// the data dir).
    #[arg(long, env = "VGGSERVE_CONV_PRECISION", default_value = "auto")]
    pub conv_precision: ConvPrecision,
    /// Resize filter for incoming images.
    #[arg(long, env = "VGGSERVE_RESIZE", default_value = "nearest")]
    pub resize: ResizeFilter,
}

impl BaseArgs {
    /// Load the weights onto the chosen device, in the chosen precision (`auto`: measured
    /// now, or as measured before and kept under `measurements`).
    pub fn load(&self, measurements: Option<&Path>) -> anyhow::Result<ConvBase> {
        let device = crate::device::parse(self.device.as_deref())?;
        let base = ConvBase::load(&self.weights, self.preprocessing, &device)?;
        Ok(match self.conv_precision {
            ConvPrecision::F32 => base.with_precision(Precision::F32)?,
            ConvPrecision::Bf16 => base.with_precision(Precision::Bf16)?,
            ConvPrecision::Int8 => base.with_precision(Precision::Int8)?,
            ConvPrecision::Auto => {
                let (base, choice) = crate::model::autotune::choose(base, measurements)?;
                tracing::info!(
                    chosen = %choice.chosen,
                    rates = ?choice.rates,
                    errors = ?choice.errors,
                    cached = choice.cached,
                    "conv precision chosen by measurement"
                );
                base.with_choice(choice)
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address to listen on (port 0 picks a free port; the chosen one is logged).
    #[arg(long, env = "VGGSERVE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub base: BaseArgs,
    /// Run no worker here: an API replica that only queues jobs (workers are separate
    /// `vggserve worker` processes on the same database); /predict is still served.
    #[arg(long, env = "VGGSERVE_NO_WORKER")]
    pub no_worker: bool,
    #[command(flatten)]
    pub worker: WorkerArgs,
    #[arg(long, env = "VGGSERVE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Jobs waiting in the queue before POST /v1/jobs answers 429.
    #[arg(long, env = "VGGSERVE_MAX_QUEUED_JOBS", default_value_t = 32)]
    pub max_queued_jobs: u32,
    /// Largest request body accepted, in MiB (413 beyond).
    #[arg(long, env = "VGGSERVE_MAX_BODY_MB", default_value_t = 32)]
    pub max_body_mb: usize,
    /// Largest dataset upload (POST /v1/datasets), in MiB (413 beyond).
    #[arg(long, env = "VGGSERVE_MAX_DATASET_MB", default_value_t = 2048)]
    pub max_dataset_mb: usize,
    /// Most bytes a dataset upload may expand to, in MiB (default: 4 × --max-dataset-mb).
    #[arg(long, env = "VGGSERVE_MAX_DATASET_EXPANDED_MB")]
    pub max_dataset_expanded_mb: Option<u64>,
    /// Most entries (files, folders) in one dataset upload.
    #[arg(long, env = "VGGSERVE_MAX_DATASET_FILES", default_value_t = 100_000)]
    pub max_dataset_files: usize,
    /// Most images in one /predict request.
    #[arg(long, env = "VGGSERVE_MAX_IMAGES", default_value_t = 32)]
    pub max_images_per_request: usize,
    /// Refuse images whose header declares more pixels than this.
    #[arg(long, env = "VGGSERVE_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// /predict requests admitted at once (429 beyond).
    #[arg(long, env = "VGGSERVE_MAX_CONCURRENT_PREDICTS", default_value_t = 64)]
    pub max_concurrent_predicts: usize,
    /// Seconds a request may take to be answered (uploads included) before a 408.
    #[arg(long, env = "VGGSERVE_REQUEST_TIMEOUT_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Dynamic batching: most images per forward pass in /predict.
    #[arg(long, env = "VGGSERVE_PREDICT_MAX_BATCH", default_value_t = 32)]
    pub predict_max_batch: usize,
    /// Dynamic batching: longest wait for more requests before a forward pass, in ms.
    #[arg(long, env = "VGGSERVE_PREDICT_MAX_WAIT_MS", default_value_t = 5)]
    pub predict_max_wait_ms: u64,
    /// Live SSE streams (GET /v1/jobs/{id}/events) one job may have at once (429 beyond).
    #[arg(long, env = "VGGSERVE_MAX_SSE_SUBSCRIBERS_PER_JOB", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sse_subscribers_per_job: u32,
    /// Bearer token every API route requires (all but /healthz, /readyz, /metrics,
    /// /openapi.json and the dashboard's static files). Unset: no authentication.
    #[arg(long, env = "VGGSERVE_API_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub api_token: Option<ApiToken>,
    /// With --api-token: leave /predict and /v1/predict open to anyone.
    #[arg(long, env = "VGGSERVE_OPEN_PREDICT")]
    pub open_predict: bool,
    /// Allow serving on a non-loopback address without --api-token.
    #[arg(long, env = "VGGSERVE_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

/// The API token. Its `Debug` hides the value, so printing the settings never leaks it.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// An empty or blank token would make "authenticated" mean nothing; refuse it at parse time.
fn parse_token(text: &str) -> Result<ApiToken, String> {
    if text.trim().is_empty() {
        Err("the API token must not be empty".into())
    } else {
        Ok(ApiToken(text.to_owned()))
    }
}

impl Settings {
    /// Refuse to expose an unauthenticated API beyond this machine by accident: without a
    /// token, a non-loopback address needs an explicit `--insecure-no-auth`.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if self.api_token.is_none() && !self.addr.ip().is_loopback() && !self.insecure_no_auth {
            anyhow::bail!(
                "refusing to serve without authentication on non-loopback address {}: \
                 set --api-token (VGGSERVE_API_TOKEN), or pass --insecure-no-auth to allow it",
                self.addr
            );
        }
        Ok(())
    }
}

//! Settings of `vggserve serve`, from flags or `VGGSERVE_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::data::decode::{ResizeFilter, DEFAULT_MAX_PIXELS};
use crate::model::Preprocessing;

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
    /// Where the database and artifacts (features, models, checkpoints) live.
    #[arg(long, env = "VGGSERVE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Folder of datasets in flow_from_directory layout: <name>/<split>/<class>/<image>.
    #[arg(long, env = "VGGSERVE_DATASETS_DIR", default_value = "./datasets")]
    pub datasets_dir: PathBuf,
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
    /// Resize filter for incoming images.
    #[arg(long, env = "VGGSERVE_RESIZE", default_value = "nearest")]
    pub resize: ResizeFilter,
    #[arg(long, env = "VGGSERVE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Jobs waiting in the queue before POST /v1/jobs answers 429.
    #[arg(long, env = "VGGSERVE_MAX_QUEUED_JOBS", default_value_t = 32)]
    pub max_queued_jobs: u32,
    /// Largest request body accepted, in MiB (413 beyond).
    #[arg(long, env = "VGGSERVE_MAX_BODY_MB", default_value_t = 32)]
    pub max_body_mb: usize,
    /// Most images in one /predict request.
    #[arg(long, env = "VGGSERVE_MAX_IMAGES", default_value_t = 32)]
    pub max_images_per_request: usize,
    /// Refuse images whose header declares more pixels than this.
    #[arg(long, env = "VGGSERVE_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// /predict requests admitted at once (429 beyond).
    #[arg(long, env = "VGGSERVE_MAX_CONCURRENT_PREDICTS", default_value_t = 64)]
    pub max_concurrent_predicts: usize,
    /// Dynamic batching: most images per forward pass in /predict.
    #[arg(long, env = "VGGSERVE_PREDICT_MAX_BATCH", default_value_t = 32)]
    pub predict_max_batch: usize,
    /// Dynamic batching: longest wait for more requests before a forward pass, in ms.
    #[arg(long, env = "VGGSERVE_PREDICT_MAX_WAIT_MS", default_value_t = 5)]
    pub predict_max_wait_ms: u64,
}

impl Settings {
    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.data_dir.join("vggserve.db").display())
    }
}

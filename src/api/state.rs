//! What every handler can reach: one `AppState`, cloned into each request.

use std::path::PathBuf;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use super::sse_limits::SubscriberLimits;
use crate::artifacts::SharedArtifacts;
use crate::configuration::Settings;
use crate::data::catalog::SharedCatalog;
use crate::jobs::WorkerHandle;
use crate::predict::PredictorHandle;
use crate::store::SharedStore;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: SharedStore,
    /// Models, checkpoints and features, beyond this machine when `--artifacts-url` says.
    pub artifacts: SharedArtifacts,
    /// Where each dataset is on this machine; uploads made known to every machine.
    pub catalog: SharedCatalog,
    /// The worker in this process; `None` on an API replica (`serve --no-worker`), whose
    /// jobs are claimed by worker processes through the store.
    pub worker: Option<WorkerHandle>,
    pub predictor: PredictorHandle,
    /// Admission control for /predict: a request without a permit gets 429 at once.
    pub predict_permits: Arc<Semaphore>,
    /// Live SSE streams per job, bounded by `--max-sse-subscribers-per-job`.
    pub sse_subscribers: SubscriberLimits,
    pub static_dir: PathBuf,
    /// What /readyz reports about the loaded base.
    pub model_info: Arc<serde_json::Value>,
    /// Renders the process-wide Prometheus recorder for /metrics.
    pub metrics: PrometheusHandle,
}

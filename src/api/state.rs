//! What every handler can reach.

use std::path::PathBuf;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::SqlitePool;
use tokio::sync::Semaphore;

use crate::api::routes::events::SubscriberLimits;
use crate::configuration::Settings;
use crate::jobs::{EventHub, WorkerHandle};
use crate::predict::Predictor;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: SqlitePool,
    pub hub: EventHub,
    pub worker: WorkerHandle,
    pub predictor: Predictor,
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

//! Wiring: load the weights, open the store, settle interrupted jobs, start the worker and
//! predictor threads, bind, serve until SIGINT/SIGTERM, then stop both threads cleanly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api::{build_router, AppState};
use crate::configuration::Settings;
use crate::jobs::runner::{recover_interrupted, RecipeRunner};
use crate::jobs::{EventHub, Worker};
use crate::predict::{Predictor, PredictorConfig};
use crate::store::{SharedStore, SqliteStore};

pub fn run_blocking(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    })
}

/// A bound, ready server: its listener, its state and the two threads it owns.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: Worker,
    predictor: Predictor,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Before anything slow (weights, database): a refused configuration fails at once.
        settings.check_exposure()?;
        if settings.api_token.is_some() {
            tracing::info!(open_predict = settings.open_predict, "API token required");
        } else if !settings.addr.ip().is_loopback() {
            tracing::warn!(addr = %settings.addr, "serving WITHOUT authentication (--insecure-no-auth)");
        }
        // A missing or malformed weights file stops start-up with a message naming it.
        let base_args = settings.base.clone();
        let base = tokio::task::spawn_blocking(move || base_args.load()).await??;
        let device = crate::device::describe(&base.device);
        tracing::info!(
            weights = %settings.base.weights.display(),
            sha256 = %base.weights_sha256,
            preprocessing = %base.preprocessing,
            precision = %base.precision,
            device = %device,
            "conv base loaded"
        );
        let metrics = crate::api::metrics::install()?;
        crate::api::metrics::spawn_upkeep(metrics.clone());
        let store: SharedStore = Arc::new(SqliteStore::open(&settings.data_dir).await?);
        recover_interrupted(&store, &settings.data_dir).await?;
        // Uploads a previous process was receiving when it died left their files behind.
        match crate::data::import::sweep_incoming(&settings.datasets_dir) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(entries = n, "removed the leftovers of interrupted uploads"),
            Err(error) => tracing::warn!(%error, "cannot clear interrupted uploads"),
        }
        let hub = EventHub::new(1024);
        let runner = RecipeRunner {
            store: store.clone(),
            runtime: tokio::runtime::Handle::current(),
            base: base.clone(),
            data_dir: settings.data_dir.clone(),
            datasets_dir: settings.datasets_dir.clone(),
            resize: settings.base.resize,
            max_pixels: settings.max_pixels,
        };
        let worker = Worker::spawn(
            store.clone(),
            hub.clone(),
            runner,
            tokio::runtime::Handle::current(),
        )?;
        let predictor = Predictor::spawn(PredictorConfig {
            base: base.clone(),
            data_dir: settings.data_dir.clone(),
            max_batch: settings.predict_max_batch,
            max_wait: Duration::from_millis(settings.predict_max_wait_ms),
            queue: settings.max_concurrent_predicts,
        })?;
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("binding {}", settings.addr))?;
        let model_info = json!({
            "weights": settings.base.weights,
            "weights_sha256": base.weights_sha256,
            "preprocessing": base.preprocessing,
            "conv_precision": base.precision,
            "device": device,
        });
        let state = AppState {
            predict_permits: Arc::new(Semaphore::new(settings.max_concurrent_predicts)),
            sse_subscribers: Default::default(),
            static_dir: std::env::var_os("VGGSERVE_STATIC_DIR")
                .map(Into::into)
                .unwrap_or_else(|| "static".into()),
            settings: Arc::new(settings),
            store,
            hub,
            worker: worker.handle(),
            predictor: predictor.handle(),
            model_info: Arc::new(model_info),
            metrics,
        };
        Ok(Self {
            listener,
            state,
            worker,
            predictor,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        // Tests and scripts read this line to find the port when binding port 0.
        tracing::info!("listening on http://{addr}");
        let router = build_router(self.state);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving HTTP")?;
        tracing::info!("shutting down: stopping the worker after its current batch");
        let (worker, predictor) = (self.worker, self.predictor);
        tokio::task::spawn_blocking(move || {
            worker.shutdown();
            predictor.shutdown();
        })
        .await?;
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

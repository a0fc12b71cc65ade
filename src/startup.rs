//! Wiring: load the weights, open the store, start the worker (unless this is an API
//! replica) and predictor threads, bind, serve until SIGINT/SIGTERM, then stop both threads
//! cleanly. [`run_worker_blocking`] wires `vggserve worker`: the worker thread and its
//! health port, no public API.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api::{build_router, AppState};
use crate::artifacts::SharedArtifacts;
use crate::configuration::{BaseArgs, Settings, StorageArgs, WorkerSettings};
use crate::data::catalog::{Catalog, SharedCatalog};
use crate::jobs::runner::RecipeRunner;
use crate::jobs::{Worker, WorkerConfig};
use crate::model::ConvBase;
use crate::predict::{Predictor, PredictorConfig};
use crate::store::SharedStore;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run_blocking(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_format);
    runtime()?.block_on(async {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    })
}

/// A bound, ready server: its listener, its state and the threads it owns.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: Option<Worker>,
    predictor: Predictor,
}

/// Load the conv base (a missing or malformed weights file stops start-up naming it).
/// The conv base; `--conv-precision auto` keeps its measurement under
/// `<data-dir>/precision/`.
async fn load_base(args: &BaseArgs, data_dir: &std::path::Path) -> anyhow::Result<ConvBase> {
    let base_args = args.clone();
    let measurements = data_dir.join("precision");
    let base = tokio::task::spawn_blocking(move || base_args.load(Some(&measurements))).await??;
    tracing::info!(
        weights = %args.weights.display(),
        sha256 = %base.weights_sha256,
        preprocessing = %base.preprocessing,
        precision = %base.precision,
        device = %crate::device::describe(&base.device),
        "conv base loaded"
    );
    Ok(base)
}

/// The store, the artifact store and the dataset catalog over both, as every role opens
/// them.
struct Storage {
    store: SharedStore,
    artifacts: SharedArtifacts,
    catalog: SharedCatalog,
}

impl Storage {
    /// Open all three; the sweep of what crashes leave in a shared artifact store starts
    /// with them.
    async fn open(args: &StorageArgs) -> anyhow::Result<Self> {
        let store = crate::store::open(&args.database_url()).await?;
        let artifacts = args.artifacts()?;
        let catalog = Arc::new(Catalog::new(
            &args.datasets_dir,
            &args.data_dir,
            store.clone(),
            artifacts.clone(),
        ));
        if artifacts.is_remote() {
            match artifacts.clear_interrupted_fetches() {
                0 => {}
                n => tracing::warn!(folders = n, "removed the leftovers of interrupted fetches"),
            }
            let every = Duration::from_secs(1800);
            crate::jobs::sweep::spawn(store.clone(), artifacts.clone(), catalog.clone(), every);
        }
        Ok(Self {
            store,
            artifacts,
            catalog,
        })
    }

    /// Start the worker thread over this storage.
    fn spawn_worker(
        &self,
        base: &ConvBase,
        args: &StorageArgs,
        config: WorkerConfig,
        resize: crate::data::decode::ResizeFilter,
        max_pixels: u64,
    ) -> anyhow::Result<Worker> {
        let runner = RecipeRunner {
            store: self.store.clone(),
            runtime: tokio::runtime::Handle::current(),
            base: base.clone(),
            artifacts: self.artifacts.clone(),
            data_dir: args.data_dir.clone(),
            catalog: self.catalog.clone(),
            resize,
            max_pixels,
        };
        Ok(Worker::spawn(
            self.store.clone(),
            config,
            runner,
            tokio::runtime::Handle::current(),
        )?)
    }
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
        let base = load_base(&settings.base, &settings.storage.data_dir).await?;
        let device = crate::device::describe(&base.device);
        let metrics = crate::api::metrics::install()?;
        crate::api::metrics::spawn_upkeep(metrics.clone());
        let storage = Storage::open(&settings.storage).await?;
        // Uploads a previous process was receiving when it died left their files behind.
        match crate::data::import::sweep_incoming(storage.catalog.uploads_dir()) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(entries = n, "removed the leftovers of interrupted uploads"),
            Err(error) => tracing::warn!(%error, "cannot clear interrupted uploads"),
        }
        let worker = match settings.no_worker {
            true => {
                tracing::info!("API replica: jobs are queued for worker processes");
                None
            }
            false => Some(storage.spawn_worker(
                &base,
                &settings.storage,
                settings.worker.config(),
                settings.base.resize,
                settings.max_pixels,
            )?),
        };
        let predictor = Predictor::spawn(PredictorConfig {
            base: base.clone(),
            data_dir: settings.storage.data_dir.clone(),
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
            // With `auto`: the rates and feature errors measured, and whether kept from before.
            "conv_precision_choice": base.precision_choice,
            "device": device,
        });
        let state = AppState {
            predict_permits: Arc::new(Semaphore::new(settings.max_concurrent_predicts)),
            sse_subscribers: Default::default(),
            static_dir: std::env::var_os("VGGSERVE_STATIC_DIR")
                .map(Into::into)
                .unwrap_or_else(|| "static".into()),
            settings: Arc::new(settings),
            store: storage.store,
            artifacts: storage.artifacts,
            catalog: storage.catalog,
            worker: worker.as_ref().map(Worker::handle),
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
            if let Some(worker) = worker {
                worker.shutdown();
            }
            predictor.shutdown();
        })
        .await?;
        Ok(())
    }
}

/// `vggserve worker`: claim and run jobs from the store until SIGINT/SIGTERM, serving only
/// `/healthz`, `/readyz` and `/metrics` on `--health-addr`.
pub fn run_worker_blocking(settings: WorkerSettings) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_format);
    runtime()?.block_on(async {
        let base = load_base(&settings.base, &settings.storage.data_dir).await?;
        let metrics = crate::api::metrics::install()?;
        crate::api::metrics::spawn_upkeep(metrics.clone());
        let storage = Storage::open(&settings.storage).await?;
        let config = settings.worker.config();
        let info = json!({
            "owner": config.owner,
            "kinds": config.kinds,
            "lease_seconds": settings.worker.lease_seconds,
            "weights_sha256": base.weights_sha256,
            "device": crate::device::describe(&base.device),
        });
        let worker = storage.spawn_worker(
            &base,
            &settings.storage,
            config,
            settings.base.resize,
            settings.max_pixels,
        )?;
        let listener = TcpListener::bind(settings.health_addr)
            .await
            .with_context(|| format!("binding {}", settings.health_addr))?;
        tracing::info!("worker health on http://{}", listener.local_addr()?);
        let router = crate::api::worker_health::router(storage.store, metrics, info);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving health")?;
        tracing::info!("shutting down: stopping the worker after its current batch");
        tokio::task::spawn_blocking(move || worker.shutdown()).await?;
        Ok(())
    })
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

//! Prometheus metrics: the process-wide recorder, the middleware that counts and times every
//! HTTP request by route template, and `GET /metrics` (text exposition format).
//!
//! Everything else records through the `metrics` facade (`predict_latency_seconds` in the
//! predict route, `job_duration_seconds` and `epoch_seconds` in the worker); without an
//! installed recorder those calls are no-ops, so library code never depends on this module.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::api::AppState;

/// Upper bounds for every `*_seconds` histogram: from a fast API call (ms) to a long
/// training job (an hour and more falls in +Inf).
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The global recorder can be set once per process; `OnceLock` makes a second
/// `Application::build` (tests, embedding) reuse it instead of failing.
static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Install the Prometheus recorder (first call) and return the handle that renders it.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                // Buckets make these true Prometheus histograms (aggregatable across
                // instances) rather than the exporter's default summaries.
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| format!("installing the metrics recorder: {e}"))?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (for SSE: until the stream starts), by route template"
    );
    describe_histogram!(
        "predict_latency_seconds",
        Unit::Seconds,
        "Successful /predict requests: from admission to the predictions (read, decode, forward)"
    );
    describe_gauge!(
        "jobs_queued",
        "Jobs waiting in the queue (read at scrape time)"
    );
    describe_histogram!(
        "job_duration_seconds",
        Unit::Seconds,
        "Wall time of finished jobs, by kind and final status"
    );
    describe_histogram!(
        "epoch_seconds",
        Unit::Seconds,
        "Wall time of one training epoch"
    );
}

/// Histograms buffer samples until drained; without a scrape they would grow without
/// bound, so drain them periodically (the exporter leaves that to its user).
pub fn spawn_upkeep(handle: PrometheusHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

/// Middleware (`from_fn`, via `Router::layer` so it sees the matched route): count and
/// time each request. Labels use the route template (`/v1/jobs/{id}`), never the raw
/// URI, so ids and scanners' random paths cannot blow up the number of series.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("static", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Standard methods by name; any extension method is one label, for the same reason.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// `GET /metrics`: the Prometheus text format. The queue length is read from the database
/// here, at scrape time, so it is exact whoever changed the queue.
pub async fn render(State(state): State<AppState>) -> Response {
    match state.store.queued_count().await {
        Ok(queued) => metrics::gauge!("jobs_queued").set(queued as f64),
        // Still answer: the other series are worth having while the database is down.
        Err(error) => tracing::warn!(%error, "metrics: cannot count queued jobs"),
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

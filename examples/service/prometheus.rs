//! `GET /metrics`: what keel's primitives count (keel's `metrics` feature), in Prometheus's
//! text format. keel records through the `metrics` facade; this service installs
//! metrics-exporter-prometheus as the process's recorder, before it builds the primitives
//! (each registers its handles when it is built, with the recorder installed then).

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::app::App;
use crate::error::StartError;

/// The process's Prometheus recorder, installed on the first call. Every service the
/// process builds (the tests start several) records into it; their series are told apart
/// by the primitives' names, and counters only grow.
pub(crate) fn recorder() -> Result<&'static PrometheusHandle, StartError> {
    static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    RECORDER
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| StartError::Metrics(e.clone()))
}

/// `GET /metrics` (outside the limiter and the shedder, as a scrape must not be refused).
///
/// keel batches its busiest counters (the breaker's calls, the limiter's decisions, the
/// shedder's and the cache's requests) and hands them to the recorder at least once a
/// second; publishing them first makes each scrape include every request answered before.
pub(crate) async fn render(State(app): State<App>) -> impl IntoResponse {
    app.breaker.publish_metrics();
    app.limiter.publish_metrics();
    app.shedder.publish_metrics();
    app.users.publish_metrics();
    let body = match recorder() {
        Ok(handle) => {
            // Histograms' summaries are kept up to date by this upkeep (no background task).
            handle.run_upkeep();
            handle.render()
        }
        Err(e) => format!("# no recorder: {e}\n"),
    };
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

//! `--metrics ADDR`: keel's counters for the protected run on `http://ADDR/metrics`, in
//! Prometheus's text format, while the demo runs (and after, until Ctrl-C). keel records
//! through the `metrics` facade; this installs metrics-exporter-prometheus as the recorder
//! (before the primitives are built: each registers its handles when built) and serves it
//! from a thread and runtime of its own, so it works with either clock.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the recorder and serves it on `addr`; returns once the listener is bound.
pub(crate) fn serve(addr: SocketAddr) -> Result<JoinHandle<()>, Box<dyn std::error::Error>> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
    let app = Router::new().route("/metrics", get(move || render(handle.clone())));
    Ok(std::thread::spawn(move || {
        if let Err(e) = runtime.block_on(async { axum::serve(listener, app).await }) {
            eprintln!("overload: /metrics stopped: {e}");
        }
    }))
}

async fn render(handle: PrometheusHandle) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    handle.run_upkeep();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}

use std::io;
use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};

use super::{Health, Metrics};

/// Content type of the text prometheus-client writes (OpenMetrics 1.0).
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum MetricsServerError {
    #[error("cannot listen on {listen} for /metrics: {source}; choose another address with metrics.listen (ADJOIN__METRICS__LISTEN)")]
    Bind {
        listen: SocketAddr,
        source: io::Error,
    },
}

/// The running `/metrics`, `/healthz` and `/readyz` server.
pub struct MetricsServer {
    local_addr: SocketAddr,
    handle: ServerHandle,
}

impl MetricsServer {
    /// Binds `listen` and serves in the background on the current actix system.
    /// Port 0 picks a free port; [`MetricsServer::local_addr`] tells which.
    pub fn start(
        listen: SocketAddr,
        metrics: Metrics,
        health: Health,
    ) -> Result<Self, MetricsServerError> {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(metrics.clone()))
                .app_data(web::Data::new(health.clone()))
                .route("/metrics", web::get().to(serve_metrics))
                .route("/healthz", web::get().to(serve_healthz))
                .route("/readyz", web::get().to(serve_readyz))
        })
        // One worker is plenty for scrapes and probes, and keeps threads for the pipeline.
        .workers(1)
        // The service owns shutdown; the endpoint must stay up while it drains.
        .disable_signals()
        .shutdown_timeout(1)
        .bind(listen)
        .map_err(|source| MetricsServerError::Bind { listen, source })?;
        let local_addr = server.addrs().first().copied().unwrap_or(listen);
        let running = server.run();
        let handle = running.handle();
        actix_rt::spawn(running);
        tracing::info!(%local_addr, "serving /metrics, /healthz and /readyz");
        Ok(Self { local_addr, handle })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

async fn serve_metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(OPENMETRICS_CONTENT_TYPE)
        .body(metrics.encode())
}

async fn serve_healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn serve_readyz(health: web::Data<Health>) -> HttpResponse {
    let report = health.report();
    if report.ready {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(format!(
                "not ready: waiting for {}\n",
                report.waiting_for.join(", ")
            ))
    }
}

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
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `listen` and serves from a thread of its own, with its own actix
    /// system. Port 0 picks a free port; [`MetricsServer::local_addr`] tells which.
    ///
    /// Not on the caller's system: a service's start-up (creating topics, running
    /// migrations, waiting for a broker that is down) blocks its thread, and an
    /// actix server spawned there would not accept until it was polled, so
    /// liveness probes would hang exactly when they matter.
    pub fn start(
        listen: SocketAddr,
        metrics: Metrics,
        health: Health,
    ) -> Result<Self, MetricsServerError> {
        let (started, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("metrics-http".to_owned())
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(web::Data::new(metrics.clone()))
                            .app_data(web::Data::new(health.clone()))
                            .route("/metrics", web::get().to(serve_metrics))
                            .route("/healthz", web::get().to(serve_healthz))
                            .route("/readyz", web::get().to(serve_readyz))
                    })
                    // One worker is plenty for scrapes and probes, and keeps threads
                    // for the pipeline.
                    .workers(1)
                    // The service owns shutdown; the endpoint must stay up while it drains.
                    .disable_signals()
                    .shutdown_timeout(1)
                    .bind(listen);
                    let server = match server {
                        Ok(server) => server,
                        Err(source) => {
                            let _ = started.send(Err(MetricsServerError::Bind { listen, source }));
                            return;
                        }
                    };
                    let local_addr = server.addrs().first().copied().unwrap_or(listen);
                    let running = server.run();
                    let _ = started.send(Ok((local_addr, running.handle())));
                    if let Err(error) = running.await {
                        tracing::error!(%error, "the metrics server stopped");
                    }
                });
            })
            .map_err(|source| MetricsServerError::Bind { listen, source })?;
        let (local_addr, handle) = receiver.recv().unwrap_or_else(|_| {
            Err(MetricsServerError::Bind {
                listen,
                source: io::Error::other("the metrics server thread ended before binding"),
            })
        })?;
        tracing::info!(%local_addr, "serving /metrics, /healthz and /readyz");
        Ok(Self {
            local_addr,
            handle,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(thread) = self.thread.take() {
            // The server future has returned, so the thread is ending.
            let _ = thread.join();
        }
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

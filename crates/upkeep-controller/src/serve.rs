//! The controller's plain-HTTP endpoints: `/metrics`, `/healthz`, `/readyz`, and the routes
//! the binary adds ([`ExtraRoute`]: `/calendar.ics`).
//!
//! Why it is shaped this way:
//! - hyper 1 directly (already in the workspace) instead of a web framework: three GET routes do
//!   not need a router, and the binary stays small.
//! - `/healthz` answers 200 while the process serves at all (the kubelet restarts it otherwise).
//!   `/readyz` answers 200 when the API server is reachable (a `/version` request under a short
//!   timeout) and, when this process leads, its controllers are running. A follower is ready:
//!   it is a healthy standby, and marking it unready would only hide it from rollouts.
//! - [`Health`] is a pair of atomics the leader elector flips, so probes never wait on a lock.
//! - Shutdown stops accepting connections; an open probe connection ends with the runtime.
//! - [`ExtraRoute`]s are how a higher crate serves more on the same port without this crate
//!   knowing what (the `upkeep` binary's calendar feed depends on crates above this one): an
//!   exact path and a handler given the query string. Built-in paths win.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::metrics::{self, Metrics};
use crate::shutdown::Shutdown;

/// How long `/readyz` waits for the API server.
const API_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` reports on, set by the leader elector.
#[derive(Debug, Default)]
pub struct Health {
    leader: AtomicBool,
    controllers_running: AtomicBool,
}

impl Health {
    /// Not leading, nothing running.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
    }

    pub fn set_controllers_running(&self, running: bool) {
        self.controllers_running.store(running, Ordering::SeqCst);
    }

    pub fn leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    pub fn controllers_running(&self) -> bool {
        self.controllers_running.load(Ordering::SeqCst)
    }

    /// Why this process is not ready, judging by leadership alone; `None` when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        (self.leader() && !self.controllers_running())
            .then_some("leading, but the controllers are not running")
    }
}

/// The answer of an [`ExtraRoute`].
pub type RouteFuture = std::pin::Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;

/// A GET route served next to the built-in ones: `path` exactly, answered by `handler` with the
/// request's query string (`None` without one).
#[derive(Clone)]
pub struct ExtraRoute {
    pub path: &'static str,
    pub handler: Arc<dyn Fn(Option<String>) -> RouteFuture + Send + Sync>,
}

impl std::fmt::Debug for ExtraRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraRoute")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

pub use http::StatusCode;

/// An answer of `content_type` (for [`ExtraRoute`] handlers).
pub fn body(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// What the server reads.
#[derive(Clone)]
pub struct Endpoints {
    pub metrics: Metrics,
    pub health: Arc<Health>,
    /// For the API server probe of `/readyz`.
    pub client: kube::Client,
    /// Routes the binary adds (e.g. `/calendar.ics`).
    pub extra: Vec<ExtraRoute>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

/// Serves the endpoints on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, endpoints: Endpoints, shutdown: Shutdown) {
    let endpoints = Arc::new(endpoints);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.wait() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a metrics connection");
                    continue;
                }
            },
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let endpoints = endpoints.clone();
                async move { Ok::<_, Infallible>(respond(&endpoints, &request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, %peer, "metrics connection");
            }
        });
    }
}

/// Binds `addr` (e.g. `0.0.0.0:8080`, or port 0 in tests).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

async fn respond(endpoints: &Endpoints, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match request.uri().path() {
        "/metrics" => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, metrics::CONTENT_TYPE)
            .body(Full::new(Bytes::from(endpoints.metrics.encode())))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "encoding\n")),
        "/healthz" | "/livez" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            if let Some(reason) = endpoints.health.not_ready_reason() {
                return text(StatusCode::SERVICE_UNAVAILABLE, &format!("{reason}\n"));
            }
            match tokio::time::timeout(API_PROBE_TIMEOUT, endpoints.client.apiserver_version())
                .await
            {
                Ok(Ok(_)) => text(StatusCode::OK, "ok\n"),
                Ok(Err(error)) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the API server is not reachable: {error}\n"),
                ),
                Err(_) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the API server did not answer within {API_PROBE_TIMEOUT:?}\n"),
                ),
            }
        }
        path => {
            if let Some(route) = endpoints.extra.iter().find(|r| r.path == path) {
                return (route.handler)(request.uri().query().map(str::to_owned)).await;
            }
            let mut known = String::from("/metrics, /healthz, /readyz");
            for r in &endpoints.extra {
                known.push_str(", ");
                known.push_str(r.path);
            }
            text(StatusCode::NOT_FOUND, &format!("not found: try {known}\n"))
        }
    }
}

/// A plain-text answer (for [`ExtraRoute`] handlers too).
pub fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_by_leadership() {
        let cases = [
            (false, false, true, "a follower is a ready standby"),
            (true, true, true, "a leader with running controllers"),
            (
                true,
                false,
                false,
                "a leader whose controllers are not running",
            ),
            (
                false,
                true,
                true,
                "stopping controllers after losing the Lease",
            ),
        ];
        for (leader, running, ready, why) in cases {
            let health = Health::new();
            health.set_leader(leader);
            health.set_controllers_running(running);
            assert_eq!(health.not_ready_reason().is_none(), ready, "{why}");
        }
    }
}

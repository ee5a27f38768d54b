//! A small HTTP/1 server on its own thread and Tokio runtime, used by the token server and the
//! fault proxy. Its own runtime lets one server outlive the `#[tokio::test]` runtime that
//! created it; dropping the handle stops the accept loop and drops the runtime, which cancels
//! every connection task (including deliberately stalled ones).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::TestEnvError;

pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;
pub(crate) type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture + Send + Sync>;

/// Binds a free port on 127.0.0.1.
pub(crate) fn bind_free() -> Result<std::net::TcpListener, TestEnvError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| TestEnvError::io("binding a free port on 127.0.0.1", e))
}

/// A running background server; dropping it stops the server.
pub(crate) struct Background {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Background {
    pub(crate) fn spawn(
        name: &str,
        listener: std::net::TcpListener,
        handler: Handler,
    ) -> Result<Self, TestEnvError> {
        let addr = listener
            .local_addr()
            .map_err(|e| TestEnvError::io("reading a listener address", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| TestEnvError::io("making a listener non-blocking", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestEnvError::io(format!("building the {name} runtime"), e))?;
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("testenv-{name}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            _ = &mut rx => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let handler = handler.clone();
                                tokio::spawn(async move {
                                    let service = service_fn(move |req| {
                                        let fut = handler(req);
                                        async move { Ok::<_, Infallible>(fut.await) }
                                    });
                                    // A client hanging up mid-request is normal in fault tests.
                                    let _ = http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                });
                            }
                        }
                    }
                });
                // Dropping the runtime here cancels every connection task.
                drop(runtime);
            })
            .map_err(|e| TestEnvError::io(format!("spawning the {name} thread"), e))?;
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A response with a body and a content type.
pub(crate) fn respond(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

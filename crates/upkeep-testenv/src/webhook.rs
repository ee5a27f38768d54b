//! A webhook SINK: our own tiny HTTP receiver that records every POST, for tests of
//! announcement notifications. It is not a stand-in for a product — a webhook receiver is
//! whatever the user points upkeep at, and all upkeep promises is "POST this JSON".
//!
//! It runs like the other helper servers (own thread and Tokio runtime, 127.0.0.1, stopped on
//! drop). A test can make it answer with another status ([`Sink::respond_with`]) to check how a
//! client reports a refusing receiver.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::BodyExt as _;
use serde_json::Value;

use crate::TestEnvError;
use crate::background::{Background, bind_free, respond};

/// One request the sink received.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRequest {
    pub method: String,
    /// Path and query, e.g. `/hook?team=a`.
    pub path: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
    /// The raw body.
    pub raw: String,
}

/// A running webhook sink; dropping it stops the server.
pub struct Sink {
    server: Background,
    requests: Arc<Mutex<Vec<SinkRequest>>>,
    status: Arc<AtomicU16>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Starts a sink on a free 127.0.0.1 port; it answers `200 {}` to everything.
    pub fn start() -> Result<Self, TestEnvError> {
        let requests: Arc<Mutex<Vec<SinkRequest>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (log, answer) = (requests.clone(), status.clone());
        let server = Background::spawn(
            "webhook-sink",
            bind_free()?,
            Arc::new(move |req: hyper::Request<hyper::body::Incoming>| {
                let (log, answer) = (log.clone(), answer.clone());
                Box::pin(async move {
                    let header = |name: http::HeaderName| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let content_type = header(http::header::CONTENT_TYPE);
                    let authorization = header(http::header::AUTHORIZATION);
                    let method = req.method().to_string();
                    let path = req
                        .uri()
                        .path_and_query()
                        .map_or_else(|| "/".to_owned(), ToString::to_string);
                    let bytes = req
                        .into_body()
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes)
                        .unwrap_or_default();
                    let raw = String::from_utf8_lossy(&bytes).into_owned();
                    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(SinkRequest {
                            method,
                            path,
                            content_type,
                            authorization,
                            body,
                            raw,
                        });
                    respond(answer.load(Ordering::SeqCst), "application/json", "{}")
                })
            }),
        )?;
        Ok(Self {
            server,
            requests,
            status,
        })
    }

    /// `http://127.0.0.1:PORT/hook` — any path works; this one reads well in tests.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.server.addr())
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<SinkRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The JSON bodies of every POST received so far, in order.
    pub fn bodies(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .map(|r| r.body)
            .collect()
    }

    /// Answers every later request with `status` (and `{}`).
    pub fn respond_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

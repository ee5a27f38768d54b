//! The registry push-notification endpoint: `POST /hook/<sender>` (and
//! `/hook/dockerhub/<token>`), answered with `202 {"events":N,"matched":M}`.
//!
//! Why it is shaped so:
//! - It only moves bytes: payload shapes, authentication and matching are pure functions in
//!   [`upkeep_registry::notification`]; what a push triggers is the caller's [`OnPush`]
//!   (the controller and `upkeep run` wire it to their scans). So this module is the same for
//!   both shapes and testable over real HTTP without a cluster.
//! - hyper 1 directly, like [`crate::serve`]: five POST routes need no framework.
//! - Cheap refusals come first, so an anonymous flood costs little: rate limit (429 +
//!   `Retry-After`, a token bucket per client IP and one for everybody; logged at debug level
//!   only), unknown path (404), wrong method (405), declared size (413), content type (415). Then the body is read under a size
//!   cap and a timeout (413/408), authenticated before anything parses it (401), parsed (400)
//!   and handed to [`OnPush`] (202). Header reads have their own timeout (idle keep-alive
//!   connections included) and at most `max_connections` are served at once, so slow clients
//!   cannot hold the receiver.
//! - One log line per request: sender, status, events, matched, client IP. Never the path
//!   (the Docker Hub token is in it), headers or body.
//! - Shutdown stops accepting and aborts the connections in flight.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use upkeep_registry::notification::{self, NotificationError, Pushed, Sender};

use crate::shutdown::StopSignal;

/// Called with the pushes of one accepted notification; returns how many sources matched.
/// It runs on the request's task, so it should only hand the work on (e.g. to a channel).
pub type OnPush = Arc<dyn Fn(&[Pushed]) -> usize + Send + Sync>;

/// A token bucket: `per_second` tokens flow in, at most `burst` are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// How the receiver authenticates, limits and times out.
#[derive(Clone)]
pub struct ReceiverSettings {
    secret: Arc<[u8]>,
    /// Largest body accepted (default 1 MiB).
    pub max_body: usize,
    /// Per client IP (default 50/s, burst 200).
    pub per_client: RateLimit,
    /// For all clients together (default 200/s, burst 500).
    pub global: RateLimit,
    /// Time to send the request headers (default 10 s).
    pub header_timeout: Duration,
    /// Time to send the body (default 10 s).
    pub body_timeout: Duration,
    /// Connections served at once (default 256); more wait to be accepted.
    pub max_connections: usize,
}

impl std::fmt::Debug for ReceiverSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverSettings")
            .field("secret", &"<redacted>")
            .field("max_body", &self.max_body)
            .field("per_client", &self.per_client)
            .field("global", &self.global)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// A receiver secret that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("reading the receiver secret file {}: {source}", path.display())]
    ReadSecret {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the receiver secret {origin} is {problem}")]
    BadSecret { origin: String, problem: String },
}

impl ReceiverSettings {
    /// Shortest secret accepted, in bytes.
    pub const MIN_SECRET_LEN: usize = 16;
    /// Default body limit.
    pub const MAX_BODY: usize = 1 << 20;
    /// Default per-client limit. A registry is one client that sends about five
    /// notifications per chart pushed (blobs, then the manifest) unless told to ignore blob
    /// events, and a release pipeline pushes dozens of charts at once: 40 such pushes pass.
    pub const PER_CLIENT: RateLimit = RateLimit {
        per_second: 50.0,
        burst: 200.0,
    };
    /// Default global limit.
    pub const GLOBAL: RateLimit = RateLimit {
        per_second: 200.0,
        burst: 500.0,
    };

    /// Settings with defaults around `secret`; `origin` names it in errors (e.g. a file).
    pub fn new(secret: impl Into<Vec<u8>>, origin: &str) -> Result<Self, ReceiverError> {
        let secret: Vec<u8> = secret.into();
        let bad = |problem: String| ReceiverError::BadSecret {
            origin: origin.to_owned(),
            problem,
        };
        if secret.is_empty() {
            return Err(bad("empty".to_owned()));
        }
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(bad(format!(
                "{} bytes long; use at least {} (e.g. `openssl rand -hex 32`)",
                secret.len(),
                Self::MIN_SECRET_LEN
            )));
        }
        Ok(Self {
            secret: secret.into(),
            max_body: Self::MAX_BODY,
            per_client: Self::PER_CLIENT,
            global: Self::GLOBAL,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 256,
        })
    }

    /// Reads the secret from `path`, without one trailing newline (`\n` or `\r\n`).
    pub fn from_secret_file(path: &Path) -> Result<Self, ReceiverError> {
        let mut bytes = std::fs::read(path).map_err(|source| ReceiverError::ReadSecret {
            path: path.to_owned(),
            source,
        })?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        Self::new(bytes, &format!("file {}", path.display()))
    }

    /// The Docker Hub route for this secret, `/hook/dockerhub/<sha256 hex of the secret>`.
    /// It contains a credential: show it to the operator once, never log it.
    pub fn dockerhub_path(&self) -> String {
        format!("/hook/dockerhub/{}", notification::path_token(&self.secret))
    }
}

/// Serves the receiver on `listener` until `stop` resolves.
pub async fn serve_receiver(
    listener: TcpListener,
    settings: ReceiverSettings,
    on_push: OnPush,
    stop: StopSignal,
) {
    let state = Arc::new(State {
        limiter: Mutex::new(Limiter::new(
            settings.per_client,
            settings.global,
            Instant::now(),
        )),
        settings,
        on_push,
    });
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(state.settings.max_connections.max(1)));
    tokio::pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut stop => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // e.g. out of file descriptors: wait instead of spinning.
                    tracing::warn!(%error, "accepting a receiver connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        connections.spawn(async move {
            let _slot = slot;
            let header_timeout = state.settings.header_timeout;
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, peer, request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, client = %peer.ip(), "receiver connection");
            }
        });
    }
    connections.shutdown().await;
}

struct State {
    settings: ReceiverSettings,
    on_push: OnPush,
    limiter: Mutex<Limiter>,
}

/// What one request came to, for the log line and the answer.
struct Outcome {
    status: StatusCode,
    body: String,
    events: usize,
    matched: usize,
    retry_after: Option<u64>,
    allow_post: bool,
}

impl Outcome {
    fn error(status: StatusCode, reason: &str) -> Self {
        Self {
            status,
            body: serde_json::json!({ "error": reason }).to_string(),
            events: 0,
            matched: 0,
            retry_after: None,
            allow_post: false,
        }
    }
}

async fn handle(
    state: &State,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let route = Sender::from_path(request.uri().path())
        .map(|(sender, token)| (sender, token.map(str::to_owned)));
    let sender = route.as_ref().map_or("-", |(s, _)| s.name());
    let limited = state
        .limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .check(peer.ip(), Instant::now());
    let outcome = match (limited, route) {
        (Err(wait), _) => {
            let mut outcome = Outcome::error(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            outcome.retry_after =
                Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
            // A flood is refused without a log line per request at the default level.
            tracing::debug!(sender, status = 429, client = %peer.ip(), "registry notification");
            return respond(outcome);
        }
        (Ok(()), None) => Outcome::error(
            StatusCode::NOT_FOUND,
            "unknown path: use POST /hook/<sender>",
        ),
        (Ok(()), Some((sender, token))) => accept(state, sender, token.as_deref(), request).await,
    };
    tracing::info!(
        sender,
        status = outcome.status.as_u16(),
        events = outcome.events,
        matched = outcome.matched,
        client = %peer.ip(),
        "registry notification"
    );
    respond(outcome)
}

async fn accept(
    state: &State,
    sender: Sender,
    token: Option<&str>,
    request: Request<Incoming>,
) -> Outcome {
    if request.method() != Method::POST {
        let mut outcome = Outcome::error(StatusCode::METHOD_NOT_ALLOWED, "only POST");
        outcome.allow_post = true;
        return outcome;
    }
    if let Some(outcome) = check_headers(&state.settings, sender, request.headers()) {
        return outcome;
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(&state.settings, body).await {
        Ok(body) => body,
        Err(outcome) => return outcome,
    };
    let checked =
        notification::authenticate(sender, &state.settings.secret, &parts.headers, token, &body)
            .and_then(|()| notification::parse(sender, &parts.headers, &body));
    match checked {
        Ok(pushed) => {
            let matched = if pushed.is_empty() {
                0
            } else {
                (state.on_push)(&pushed)
            };
            Outcome {
                status: StatusCode::ACCEPTED,
                body: serde_json::json!({ "events": pushed.len(), "matched": matched }).to_string(),
                events: pushed.len(),
                matched,
                retry_after: None,
                allow_post: false,
            }
        }
        Err(error @ NotificationError::Unauthenticated { .. }) => {
            Outcome::error(StatusCode::UNAUTHORIZED, &error.to_string())
        }
        Err(error) => Outcome::error(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

/// 413 for a declared length over the limit, 415 for a content type that is not JSON (GitHub
/// may also send a form).
fn check_headers(
    settings: &ReceiverSettings,
    sender: Sender,
    headers: &http::HeaderMap,
) -> Option<Outcome> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_body as u64) {
        return Some(too_large(settings));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or(""));
    let github_form = sender == Sender::GitHub && notification::is_form(headers);
    if !github_form && content_type.is_some_and(|t| !t.to_ascii_lowercase().contains("json")) {
        return Some(Outcome::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON: set the webhook's content type to application/json",
        ));
    }
    None
}

fn too_large(settings: &ReceiverSettings) -> Outcome {
    Outcome::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is larger than {} bytes", settings.max_body),
    )
}

async fn read_body(settings: &ReceiverSettings, body: Incoming) -> Result<Bytes, Outcome> {
    let limited = Limited::new(body, settings.max_body);
    match tokio::time::timeout(settings.body_timeout, limited.collect()).await {
        Err(_) => Err(Outcome::error(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive in time",
        )),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(too_large(settings))
        }
        Ok(Err(_)) => Err(Outcome::error(
            StatusCode::BAD_REQUEST,
            "reading the body failed",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn respond(outcome: Outcome) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(outcome.body)));
    *response.status_mut() = outcome.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = outcome.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if outcome.allow_post {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    if !outcome.status.is_success() {
        // The body may not have been read; do not try to reuse the connection.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Client buckets kept at most; beyond it, full (idle) buckets are dropped.
const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Self {
        Self {
            tokens: limit.burst,
            last: now,
        }
    }

    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.burst);
        self.last = now;
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        self.refill(limit, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(
                missing / limit.per_second.max(f64::MIN_POSITIVE),
            ))
        }
    }
}

/// Token buckets per client IP and for everybody.
struct Limiter {
    per_client: RateLimit,
    global_limit: RateLimit,
    global: Bucket,
    clients: HashMap<IpAddr, Bucket>,
}

impl Limiter {
    fn new(per_client: RateLimit, global: RateLimit, now: Instant) -> Self {
        Self {
            per_client,
            global_limit: global,
            global: Bucket::full(global, now),
            clients: HashMap::new(),
        }
    }

    fn check(&mut self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&client) {
            let limit = self.per_client;
            self.clients.retain(|_, b| {
                b.refill(limit, now);
                b.tokens < limit.burst
            });
        }
        let limit = self.per_client;
        self.clients
            .entry(client)
            .or_insert_with(|| Bucket::full(limit, now))
            .take(limit, now)?;
        self.global.take(self.global_limit, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_buckets() {
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3.0,
        };
        let start = Instant::now();
        let later = start + Duration::from_millis(500);
        let mut limiter = Limiter::new(
            limit,
            RateLimit {
                per_second: 1.0,
                burst: 5.0,
            },
            start,
        );
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for i in 0..3 {
            assert!(
                limiter.check(a, start).is_ok(),
                "burst of 3: request {i} passes"
            );
        }
        let wait = limiter
            .check(a, start)
            .expect_err("the 4th at once is limited");
        assert_eq!(
            wait,
            Duration::from_millis(500),
            "one token flows in per 1/2 s"
        );
        assert!(
            limiter.check(a, later).is_ok(),
            "after the wait a token is there"
        );
        assert!(
            limiter.check(b, later).is_ok(),
            "another client has its own bucket"
        );
        assert!(
            limiter.check(b, later).is_err(),
            "the global bucket (burst 5, 1/s) is spent although b has tokens left"
        );
    }

    #[test]
    fn secrets_are_checked() {
        let cases: [(&[u8], bool, &str); 4] = [
            (b"", false, "empty"),
            (b"short", false, "shorter than 16 bytes"),
            (b"0123456789abcdef", true, "exactly 16 bytes"),
            (b"a much longer secret value here", true, "long"),
        ];
        for (secret, ok, why) in cases {
            let result = ReceiverSettings::new(secret, "test");
            assert_eq!(result.is_ok(), ok, "{why}");
            if let Err(error) = result {
                assert!(
                    error.to_string().contains("test"),
                    "names its origin: {why}"
                );
            }
        }
    }

    #[test]
    fn secret_file_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            ("0123456789abcdef\n", Some(16), "one newline trimmed"),
            ("0123456789abcdef\r\n", Some(16), "CRLF trimmed"),
            ("0123456789abcdef\n\n", Some(17), "only one newline trimmed"),
            ("\n", None, "a newline alone is empty"),
            (
                "0123456789abcde\n",
                None,
                "15 bytes after trimming is too short",
            ),
        ];
        for (i, (content, len, why)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("secret-{i}"));
            std::fs::write(&path, content).expect("write");
            match (ReceiverSettings::from_secret_file(&path), len) {
                (Ok(s), Some(len)) => assert_eq!(s.secret.len(), len, "{why}"),
                (Err(e), None) => assert!(
                    e.to_string().contains(&path.display().to_string()),
                    "names the file: {why}"
                ),
                (result, _) => panic!("{why}: {result:?}"),
            }
        }
        let missing = dir.path().join("missing");
        let error = ReceiverSettings::from_secret_file(&missing).expect_err("missing file");
        assert!(error.to_string().contains("missing"), "{error}");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let settings = ReceiverSettings::new("super-secret-value-123", "test").expect("ok");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }
}

//! HTTP transport shared by all sources: retries, rate limits, auth challenges, size caps.
//!
//! One [`Client`] is shared by every source in a scan, so that the per-host semaphore bounds
//! the connections to each registry no matter how many repositories live there, bearer tokens
//! are reused across repositories with the same scope, and one `reqwest` client (connection
//! pool) exists per TLS configuration rather than per source. Bodies are read as streams and
//! abandoned as soon as they pass their cap, so a hostile or broken server cannot make us
//! buffer more than the cap. Time is read from the clock here (this is the I/O edge); the
//! pure parts (`Retry-After`, backoff) take `now`/randomness as parameters for tests.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, Method, StatusCode};
use tokio::sync::{OnceCell, Semaphore};
use upkeep_core::redact::{excerpt_with, redact};
use url::Url;

use crate::auth::{BasicAuth, Credentials, Secret, parse_www_authenticate};
use crate::error::RegistryError;

/// Installs rustls' ring provider as the process default (once; an already installed provider
/// is kept).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Settings shared by every request made through one [`Client`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Requests in flight per host (`host:port`), across all sources. Default 6.
    pub per_host_concurrency: usize,
    /// Attempts per request, including the first, for 5xx, 429, timeouts and connection
    /// errors. Default 4.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt, with full jitter. Default 250 ms.
    pub backoff_base: Duration,
    /// Largest backoff. Default 8 s.
    pub backoff_max: Duration,
    /// Largest `Retry-After` honoured; a longer one ends in `RateLimited`. Default 60 s.
    pub retry_after_cap: Duration,
    /// TCP/TLS connect timeout. Default 10 s.
    pub connect_timeout: Duration,
    /// How long a `docker-credential-*` helper may run. Default 10 s.
    pub credential_helper_timeout: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            per_host_concurrency: 6,
            max_attempts: 4,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            retry_after_cap: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            credential_helper_timeout: Duration::from_secs(10),
            user_agent: concat!("upkeep/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Shared HTTP machinery: connection pools, per-host limits, token cache.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// (host, scope, credential fingerprint).
type TokenKey = (String, String, u64);

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// (host, scope, credential fingerprint) → token and expiry.
    tokens: Mutex<HashMap<TokenKey, (Secret, Instant)>>,
    pools: Mutex<HashMap<Option<Vec<u8>>, reqwest::Client>>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new(ClientConfig::default())
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Self {
        install_crypto_provider();
        Client {
            inner: Arc::new(Inner {
                config,
                hosts: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                pools: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The `reqwest` client for a CA bundle (PEM), built once and shared.
    pub(crate) fn pool(&self, ca_pem: Option<&[u8]>) -> Result<reqwest::Client, RegistryError> {
        let key = ca_pem.map(<[u8]>::to_vec);
        let mut pools = lock(&self.inner.pools);
        if let Some(c) = pools.get(&key) {
            return Ok(c.clone());
        }
        let cfg = &self.inner.config;
        let mut b = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .connect_timeout(cfg.connect_timeout)
            .pool_max_idle_per_host(cfg.per_host_concurrency.max(1));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                RegistryError::InvalidOption {
                    option: "CA bundle".to_owned(),
                    detail: format!("not a PEM certificate bundle: {e}"),
                }
            })?;
            if certs.is_empty() {
                return Err(RegistryError::InvalidOption {
                    option: "CA bundle".to_owned(),
                    detail: "no PEM certificate found".to_owned(),
                });
            }
            b = b.tls_certs_merge(certs);
        }
        let client = b.build().map_err(|e| RegistryError::InvalidOption {
            option: "HTTP client".to_owned(),
            detail: error_chain(&e),
        })?;
        pools.insert(key, client.clone());
        Ok(client)
    }

    fn host_semaphore(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = lock(&self.inner.hosts);
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.inner.config.per_host_concurrency.max(1),
                ))
            })
            .clone()
    }

    /// How many requests to `host` may start right now (for tests and metrics).
    pub fn available_permits(&self, host: &str) -> usize {
        self.host_semaphore(host).available_permits()
    }

    fn cached_token(&self, host: &str, scope: &str, who: u64) -> Option<Secret> {
        let tokens = lock(&self.inner.tokens);
        tokens
            .get(&(host.to_owned(), scope.to_owned(), who))
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(t, _)| t.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Per-source connection settings.
pub(crate) struct Endpoint {
    pub(crate) client: Client,
    pub(crate) http: reqwest::Client,
    pub(crate) credentials: Credentials,
    pub(crate) resolved: OnceCell<Option<BasicAuth>>,
    pub(crate) request_timeout: Duration,
    pub(crate) insecure: bool,
}

/// A successful response.
pub(crate) struct Fetched {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

enum Auth {
    None,
    Basic(BasicAuth),
    Bearer(Secret),
}

struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// `host[:port]` of a URL, as used for limits, caches and messages.
pub(crate) fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// `GET <url>` without userinfo and with secret query parameters redacted (a Helm
/// repository URL may carry `?token=`).
pub(crate) fn describe(url: &Url) -> String {
    describe_as(&Method::GET, url)
}

/// [`describe`] for another method (`HEAD` of a manifest).
pub(crate) fn describe_as(method: &Method, url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    format!("{method} {}", redact(u.as_str()))
}

impl Endpoint {
    async fn basic(&self, host: &str) -> Result<Option<BasicAuth>, RegistryError> {
        let timeout = self.client.inner.config.credential_helper_timeout;
        self.resolved
            .get_or_try_init(|| self.credentials.resolve(host, timeout))
            .await
            .cloned()
    }

    /// GET `url` with auth challenges handled, retries, the size cap and status mapping.
    /// `scope` is the bearer scope to ask for when the challenge names none.
    pub(crate) async fn get(
        &self,
        url: &Url,
        accept: &str,
        cap: u64,
        scope: Option<&str>,
    ) -> Result<Fetched, RegistryError> {
        self.request(&Method::GET, url, accept, cap, scope).await
    }

    /// [`Endpoint::get`] with another method (`HEAD`: the body is empty).
    pub(crate) async fn request(
        &self,
        method: &Method,
        url: &Url,
        accept: &str,
        cap: u64,
        scope: Option<&str>,
    ) -> Result<Fetched, RegistryError> {
        let host = host_of(url);
        let scope_key = scope.unwrap_or("");
        // Tokens are cached per identity: an anonymous source must not reuse a token that
        // was issued to credentials.
        let who = fingerprint(self.basic(&host).await?.as_ref());
        let mut auth = match self.client.cached_token(&host, scope_key, who) {
            Some(t) => Auth::Bearer(t),
            None => Auth::None,
        };
        let mut challenged = false;
        loop {
            let raw = self.send(method, url, accept, cap, &auth).await?;
            if raw.status == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                let challenges: Vec<_> = raw
                    .headers
                    .get_all(http::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(parse_www_authenticate)
                    .collect();
                if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
                    let realm = b
                        .param("realm")
                        .ok_or_else(|| RegistryError::InvalidResponse {
                            server: host.clone(),
                            request: describe_as(method, url),
                            detail: "Bearer challenge without realm".to_owned(),
                        })?;
                    let want_scope = b.param("scope").or(scope);
                    let token = self
                        .fetch_token(url, realm, b.param("service"), want_scope)
                        .await?;
                    lock(&self.client.inner.tokens).insert(
                        (host.clone(), scope_key.to_owned(), who),
                        (token.0.clone(), token.1),
                    );
                    auth = Auth::Bearer(token.0);
                    continue;
                }
                if let Some(creds) = self.basic(&host).await? {
                    // `Basic` challenge, or none at all: try the credentials we have.
                    auth = Auth::Basic(creds);
                    continue;
                }
            }
            let basic = self.basic(&host).await?;
            let known = [
                basic.as_ref().map_or("", |b| b.password.expose()),
                match &auth {
                    Auth::Bearer(t) => t.expose(),
                    _ => "",
                },
            ];
            return map_status(method, url, raw, &known);
        }
    }

    async fn fetch_token(
        &self,
        for_url: &Url,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<(Secret, Instant), RegistryError> {
        let server = host_of(for_url);
        let mut realm_url = Url::parse(realm).map_err(|e| RegistryError::InvalidResponse {
            server: server.clone(),
            request: describe(for_url),
            detail: format!("Bearer realm `{realm}` is not a URL: {e}"),
        })?;
        if realm_url.scheme() != "https" && !(realm_url.scheme() == "http" && self.insecure) {
            return Err(RegistryError::InvalidResponse {
                server,
                request: describe(for_url),
                detail: format!(
                    "Bearer realm `{realm}` is not HTTPS; credentials are only sent in plain text when the source is insecure"
                ),
            });
        }
        {
            let mut q = realm_url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if let Some(s) = scope {
                q.append_pair("scope", s);
            }
        }
        let realm_host = host_of(&realm_url);
        // Credentials are those of the registry host, as Docker does.
        let auth = match self.basic(&server).await? {
            Some(b) => Auth::Basic(b),
            None => Auth::None,
        };
        let raw = self
            .send(&Method::GET, &realm_url, "application/json", 1 << 20, &auth)
            .await?;
        let known = [match &auth {
            Auth::Basic(b) => b.password.expose(),
            _ => "",
        }];
        let fetched = map_status(&Method::GET, &realm_url, raw, &known)?;
        let t: TokenResponse =
            serde_json::from_slice(&fetched.body).map_err(|e| RegistryError::InvalidResponse {
                server: realm_host.clone(),
                request: describe(&realm_url),
                // the body may contain a token: report only where parsing failed
                detail: format!(
                    "token response is not JSON {{\"token\": …}} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        let token = t
            .token
            .filter(|s| !s.is_empty())
            .or(t.access_token.filter(|s| !s.is_empty()))
            .ok_or_else(|| RegistryError::InvalidResponse {
                server: realm_host,
                request: describe(&realm_url),
                detail: "token response has neither `token` nor `access_token`".to_owned(),
            })?;
        // Spec default lifetime is 60 s; renew 10 s early.
        let life = Duration::from_secs(t.expires_in.unwrap_or(60).max(10) - 5);
        Ok((Secret::new(token), Instant::now() + life))
    }

    /// One logical request: permits, attempts, backoff. Returns the final raw answer for
    /// non-retryable statuses; errors for exhausted retries.
    async fn send(
        &self,
        method: &Method,
        url: &Url,
        accept: &str,
        cap: u64,
        auth: &Auth,
    ) -> Result<Raw, RegistryError> {
        let cfg = &self.client.inner.config;
        let host = host_of(url);
        let sem = self.client.host_semaphore(&host);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt >= cfg.max_attempts.max(1);
            let outcome = {
                let _permit = sem.acquire().await.map_err(|_| RegistryError::Connect {
                    server: host.clone(),
                    request: describe_as(method, url),
                    detail: "client is shutting down".to_owned(),
                })?;
                tokio::time::timeout(
                    self.request_timeout,
                    self.once(method, url, accept, cap, auth),
                )
                .await
            };
            let wait = match outcome {
                Err(_) => {
                    let e = RegistryError::Timeout {
                        server: host.clone(),
                        request: describe_as(method, url),
                        after: self.request_timeout,
                    };
                    if last {
                        return Err(e);
                    }
                    tracing::debug!(%host, attempt, "request timed out; retrying");
                    backoff(cfg, attempt, random_u64())
                }
                Ok(Err(Attempt::Fatal(e))) => return Err(e),
                Ok(Err(Attempt::Retry(e))) => {
                    if last {
                        return Err(e);
                    }
                    tracing::debug!(%host, attempt, kind = e.kind(), "transient failure; retrying");
                    backoff(cfg, attempt, random_u64())
                }
                Ok(Ok(raw)) if raw.status == StatusCode::TOO_MANY_REQUESTS => {
                    let after = raw
                        .headers
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
                    let too_long = after.is_some_and(|a| a > cfg.retry_after_cap);
                    if last || too_long {
                        return Err(RegistryError::RateLimited {
                            server: host,
                            request: describe_as(method, url),
                            retry_after: after,
                        });
                    }
                    tracing::debug!(%host, attempt, ?after, "rate limited; waiting");
                    after.unwrap_or_else(|| backoff(cfg, attempt, random_u64()))
                }
                Ok(Ok(raw)) if raw.status.is_server_error() && !last => {
                    tracing::debug!(%host, attempt, status = raw.status.as_u16(), "server error; retrying");
                    backoff(cfg, attempt, random_u64())
                }
                Ok(Ok(raw)) => return Ok(raw),
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn once(
        &self,
        method: &Method,
        url: &Url,
        accept: &str,
        cap: u64,
        auth: &Auth,
    ) -> Result<Raw, Attempt> {
        let host = host_of(url);
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header(http::header::ACCEPT, accept);
        match auth {
            Auth::None => {}
            Auth::Basic(b) => req = req.basic_auth(&b.username, Some(b.password.expose())),
            Auth::Bearer(t) => req = req.bearer_auth(t.expose()),
        }
        let resp = req
            .send()
            .await
            .map_err(|e| classify(&host, method, url, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        // Error bodies are only read for their message: a small cap is enough.
        let cap = if status.is_success() {
            cap
        } else {
            cap.min(64 << 10)
        };
        if resp.content_length().is_some_and(|n| n > cap) {
            if !status.is_success() {
                return Ok(Raw {
                    status,
                    headers,
                    body: Bytes::new(),
                });
            }
            return Err(Attempt::Fatal(too_large(&host, method, url, cap)));
        }
        let mut buf: Vec<u8> = Vec::with_capacity(
            usize::try_from(resp.content_length().unwrap_or(0).min(cap)).unwrap_or(0),
        );
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Attempt::Retry(RegistryError::InvalidResponse {
                    server: host.clone(),
                    request: describe_as(method, url),
                    detail: format!("the response body ended early: {}", error_chain(&e)),
                })
            })?;
            if (buf.len() + chunk.len()) as u64 > cap {
                if !status.is_success() {
                    break;
                }
                return Err(Attempt::Fatal(too_large(&host, method, url, cap)));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Raw {
            status,
            headers,
            body: Bytes::from(buf),
        })
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

enum Attempt {
    Retry(RegistryError),
    Fatal(RegistryError),
}

fn too_large(host: &str, method: &Method, url: &Url, cap: u64) -> RegistryError {
    RegistryError::TooLarge {
        server: host.to_owned(),
        request: describe_as(method, url),
        limit: cap,
        unit: "bytes",
    }
}

/// Maps a `reqwest` send error to a typed error; connection problems are retryable, TLS
/// problems are not (a bad certificate does not heal by retrying).
fn classify(host: &str, method: &Method, url: &Url, e: &reqwest::Error) -> Attempt {
    let detail = error_chain(e);
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut tls = false;
    while let Some(s) = src {
        if s.downcast_ref::<rustls::Error>().is_some() {
            tls = true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
        {
            tls = true;
        }
        src = s.source();
    }
    let lower = detail.to_ascii_lowercase();
    // A plain-HTTP server answering a TLS ClientHello shows up as a corrupt TLS record.
    let plain_http_answer =
        lower.contains("corrupt message") || lower.contains("invalidcontenttype");
    if tls || plain_http_answer || lower.contains("certificate") || lower.contains("handshake") {
        return Attempt::Fatal(RegistryError::Tls {
            server: host.to_owned(),
            request: describe_as(method, url),
            detail,
        });
    }
    if e.is_timeout() {
        return Attempt::Retry(RegistryError::Timeout {
            server: host.to_owned(),
            request: describe_as(method, url),
            after: Duration::ZERO,
        });
    }
    Attempt::Retry(RegistryError::Connect {
        server: host.to_owned(),
        request: describe_as(method, url),
        detail,
    })
}

/// `outer: inner: innermost`, skipping repeats (reqwest repeats the URL we already name),
/// redacted (reqwest quotes the URL, which may carry `?token=`).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        src = s.source();
    }
    redact(&parts.join(": ")).into_owned()
}

/// The answer, or the error its status means. `known` are the secrets sent with the request:
/// a server may echo them in its error body.
fn map_status(
    method: &Method,
    url: &Url,
    raw: Raw,
    known: &[&str],
) -> Result<Fetched, RegistryError> {
    let server = host_of(url);
    let request = describe_as(method, url);
    if raw.status.is_success() {
        return Ok(Fetched {
            headers: raw.headers,
            body: raw.body,
        });
    }
    let detail = error_message(&raw.body, known);
    Err(match raw.status {
        StatusCode::UNAUTHORIZED => RegistryError::Unauthorized {
            server,
            request,
            detail,
        },
        StatusCode::FORBIDDEN => RegistryError::Forbidden {
            server,
            request,
            detail,
        },
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            server,
            request,
            detail,
        },
        StatusCode::TOO_MANY_REQUESTS => RegistryError::RateLimited {
            server,
            request,
            retry_after: None,
        },
        s => RegistryError::Status {
            server,
            request,
            status: s.as_u16(),
            detail,
        },
    })
}

/// The registry's own words from an error body (`{"errors":[{"code","message"}]}`), as a
/// bounded, sanitised excerpt with credentials (and the `known` secrets) redacted.
pub(crate) fn error_message(body: &[u8], known: &[&str]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Errors>(body) {
        Ok(e) => e
            .errors
            .iter()
            .map(|i| match (i.code.is_empty(), i.message.is_empty()) {
                (false, false) => format!("{}: {}", i.code, i.message),
                (false, true) => i.code.clone(),
                _ => i.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::new(),
    };
    excerpt_with(text.as_bytes(), ERROR_EXCERPT_CHARS, known)
}

/// How much of a server's error message an error quotes.
const ERROR_EXCERPT_CHARS: usize = 300;

/// Parses `Retry-After`: delay-seconds or an HTTP-date (relative to `now`). Past dates mean 0.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    let d = at.duration_since(now);
    Some(Duration::try_from(d).unwrap_or(Duration::ZERO))
}

/// Exponential backoff with full jitter: a random delay in `[0, min(max, base·2^(n-1))]`,
/// never below 1 ms (so retries never spin).
pub fn backoff(cfg: &ClientConfig, attempt: u32, random: u64) -> Duration {
    let exp = cfg
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(cfg.backoff_max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    let pick = if nanos == 0 { 0 } else { random % (nanos + 1) };
    Duration::from_nanos(pick).max(Duration::from_millis(1))
}

/// A process-local fingerprint of an identity (never stored or shown).
fn fingerprint(creds: Option<&BasicAuth>) -> u64 {
    use std::hash::{BuildHasherDefault, DefaultHasher};
    match creds {
        None => 0,
        Some(b) => BuildHasherDefault::<DefaultHasher>::default()
            .hash_one((&b.username, b.password.expose()))
            .max(1),
    }
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

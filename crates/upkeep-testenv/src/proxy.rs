//! A fault-injecting HTTP proxy in front of a real registry. Plain HTTP on the front, any
//! registry (HTTP or HTTPS with a given CA) behind. Faults apply to tag listings
//! (`GET /v2/<name>/tags/list`) only, so auth, manifests and blobs keep working and a test can
//! push through the proxy — except the manifest faults ([`Fault::NoManifestDigest`],
//! [`Fault::ForgedManifestDigest`]), which touch manifest requests only.
//!
//! Distribution 2.8 ignores `n` and `last` on tag listings and returns tags unsorted, so the
//! proxy pages listings itself as the distribution spec describes (lexical order, `last`
//! exclusive, at most `n`, `Link: <…?n=N&last=X>; rel="next"` while more remain). Pagination
//! tests therefore go through a proxy, with `Fault::None` for the well-behaved case.
//!
//! How that `Link` is written is a separate setting, [`LinkStyle`], because registries differ
//! there independently of any fault: relative (distribution 3, the default), absolute on the
//! proxy's own origin, absent (the client must continue with `last=` while pages are full), or
//! pointing at another host. Combined with [`Fault::CapPageSize`] this reproduces the
//! registries that cap `n`. Only the paging is the proxy's; every tag comes from the real
//! registry behind it.
//!
//! Every request is logged (method, path+query, status) so tests can
//! assert retry counts and pagination. The fault can be changed while the proxy runs.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use reqwest::Url;

use crate::TestEnvError;
use crate::background::{Background, BoxFuture, bind_free, respond};

/// What the proxy does to tag listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// The first `times` tag listings get `500`, later ones pass.
    ServerError { times: u32 },
    /// The first `times` tag listings get `429` with `Retry-After: retry_after_secs`.
    RateLimited { times: u32, retry_after_secs: u64 },
    /// Tag listing bodies are cut in half (Content-Length matches the cut body).
    TruncatedJson,
    /// Tag listings are accepted and never answered; only a client timeout ends them.
    Stall,
    /// Every tag listing carries `Link: <same path and query>; rel="next"`.
    LinkLoop,
    /// `n` is forced to `min(n, cap)` (and to `cap` when absent), like registries that cap.
    CapPageSize(u32),
    /// `n` is dropped from tag listings, like registries that ignore it.
    IgnorePageSize,
    /// Tag listings that carry an `Authorization` header are refused with `403` and an error
    /// body that quotes the header verbatim (servers that echo the request in their errors
    /// exist); listings without one go to the registry, which challenges as it is configured.
    EchoAuthorization,
    /// Manifests (`/v2/<name>/manifests/<ref>`): `HEAD` is refused with `405`, and `GET`
    /// answers come without `Docker-Content-Digest`, like registries that send neither (the
    /// digest is then the SHA-256 of the manifest).
    NoManifestDigest,
    /// Manifests: `Docker-Content-Digest` is replaced by this value (a registry that lies, or
    /// a broken one), on `HEAD` and `GET`.
    ForgedManifestDigest(String),
}

/// How the proxy's own tag-list pagination points to the next page (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LinkStyle {
    /// `Link: </v2/<name>/tags/list?n=N&last=X>; rel="next"` (distribution 3, Harbor).
    #[default]
    Relative,
    /// `Link: <http://127.0.0.1:PORT/v2/…>; rel="next"` on the proxy's own origin.
    Absolute,
    /// No `Link` header at all: pages are still cut at `n`, and a client must ask again with
    /// `last=` (the last tag it got) while pages come back full.
    None,
    /// `Link: <http://HOST/v2/…>; rel="next"` with another host (`HOST` as given, e.g.
    /// `elsewhere.invalid`), which a client must refuse to follow with its credentials.
    OtherHost(String),
}

/// One request the proxy (or another test server) saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// Path and query as the client sent them.
    pub path: String,
    /// Status the proxy answered with; `0` for a request that was never answered (`Stall`).
    pub status: u16,
}

impl RequestRecord {
    /// Whether this was a tag listing.
    pub fn is_tags_list(&self) -> bool {
        is_tags_list(self.path.split('?').next().unwrap_or(""))
    }
}

struct State {
    upstream: Url,
    front: String,
    client: reqwest::Client,
    /// The fault and how many tag listings it has hit.
    fault: Mutex<(Fault, u32)>,
    link_style: Mutex<LinkStyle>,
    log: Mutex<Vec<RequestRecord>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running proxy; dropping it stops it (stalled requests are dropped with it).
pub struct FaultProxy {
    base_url: String,
    state: Arc<State>,
    _server: Background,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("base_url", &self.base_url)
            .field("upstream", &self.state.upstream.as_str())
            .finish_non_exhaustive()
    }
}

fn is_tags_list(path: &str) -> bool {
    path.starts_with("/v2/") && path.ends_with("/tags/list")
}

fn is_manifest(path: &str) -> bool {
    path.starts_with("/v2/") && path.contains("/manifests/")
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream_base_url` (e.g. [`crate::Registry::base_url`]).
    ///
    /// # Panics
    /// When the URL is not an http(s) URL or no local port can be bound; use
    /// [`FaultProxy::try_start`] to get an error instead.
    pub fn start(upstream_base_url: &str, fault: Fault) -> Self {
        Self::try_start(upstream_base_url, None, fault)
            .unwrap_or_else(|e| panic!("starting the fault proxy: {e}"))
    }

    /// Starts a proxy in front of `registry`, trusting its CA when it has one.
    ///
    /// # Panics
    /// As [`FaultProxy::start`].
    pub fn for_registry(registry: &crate::Registry, fault: Fault) -> Self {
        Self::try_start(registry.base_url(), registry.ca_pem_path(), fault)
            .unwrap_or_else(|e| panic!("starting the fault proxy: {e}"))
    }

    /// Starts a proxy in front of `upstream_base_url`, trusting `ca_pem_path` for HTTPS.
    pub fn try_start(
        upstream_base_url: &str,
        ca_pem_path: Option<&Path>,
        fault: Fault,
    ) -> Result<Self, TestEnvError> {
        let upstream = Url::parse(upstream_base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| TestEnvError::invalid("upstream base URL", upstream_base_url))?;
        let listener = bind_free()?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestEnvError::io("reading the proxy address", e))?;
        let base_url = format!("http://{addr}");
        let state = Arc::new(State {
            upstream,
            front: base_url.clone(),
            client: crate::http_client(ca_pem_path, Duration::from_secs(60))?,
            fault: Mutex::new((fault, 0)),
            link_style: Mutex::new(LinkStyle::default()),
            log: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let handler = Arc::new(move |req: Request<Incoming>| -> BoxFuture {
            let state = handler_state.clone();
            Box::pin(async move { state.handle(req).await })
        });
        let server = Background::spawn("fault-proxy", listener, handler)?;
        Ok(Self {
            base_url,
            state,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        self.base_url.trim_start_matches("http://")
    }

    /// Replaces the fault; its hit counter starts again at zero.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.state.fault) = (fault, 0);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        lock(&self.state.fault).0.clone()
    }

    /// Sets how pages of tag listings point to the next one (default [`LinkStyle::Relative`]).
    pub fn set_link_style(&self, style: LinkStyle) {
        *lock(&self.state.link_style) = style;
    }

    /// The link style in force.
    pub fn link_style(&self) -> LinkStyle {
        lock(&self.state.link_style).clone()
    }

    /// Every request seen so far, in arrival order of their answers (stalled ones when they
    /// arrived).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state.log).clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.state.log).clear();
    }
}

enum Action {
    Answer(u16, Vec<(&'static str, String)>, String),
    Stall,
    Forward {
        query: Option<String>,
        truncate: bool,
        link_loop: bool,
    },
}

impl State {
    fn decide(&self, path: &str, query: Option<&str>) -> Action {
        let forward = |query: Option<String>| Action::Forward {
            query,
            truncate: false,
            link_loop: false,
        };
        if !is_tags_list(path) {
            return forward(query.map(str::to_owned));
        }
        let mut guard = lock(&self.fault);
        let (fault, hits) = &mut *guard;
        match fault {
            // EchoAuthorization is answered in `handle`, which sees the headers; a listing
            // without an Authorization header passes through.
            Fault::None
            | Fault::EchoAuthorization
            | Fault::NoManifestDigest
            | Fault::ForgedManifestDigest(_) => forward(query.map(str::to_owned)),
            Fault::ServerError { times } if *hits < *times => {
                *hits += 1;
                Action::Answer(
                    500,
                    Vec::new(),
                    r#"{"errors":[{"code":"UNKNOWN","message":"injected server error"}]}"#
                        .to_owned(),
                )
            }
            Fault::RateLimited {
                times,
                retry_after_secs,
            } if *hits < *times => {
                *hits += 1;
                Action::Answer(
                    429,
                    vec![("retry-after", retry_after_secs.to_string())],
                    r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected rate limit"}]}"#
                        .to_owned(),
                )
            }
            Fault::ServerError { .. } | Fault::RateLimited { .. } => {
                forward(query.map(str::to_owned))
            }
            Fault::TruncatedJson => Action::Forward {
                query: query.map(str::to_owned),
                truncate: true,
                link_loop: false,
            },
            Fault::Stall => Action::Stall,
            Fault::LinkLoop => Action::Forward {
                query: query.map(str::to_owned),
                truncate: false,
                link_loop: true,
            },
            Fault::CapPageSize(cap) => {
                let cap = u64::from(*cap);
                let mut pairs = split_query(query);
                match pairs.iter_mut().find(|(k, _)| k == "n") {
                    Some((_, n)) => {
                        let asked = n.parse::<u64>().unwrap_or(cap);
                        *n = asked.min(cap).to_string();
                    }
                    None => pairs.push(("n".to_owned(), cap.to_string())),
                }
                forward(Some(join_query(&pairs)))
            }
            Fault::IgnorePageSize => {
                let pairs: Vec<_> = split_query(query)
                    .into_iter()
                    .filter(|(k, _)| k != "n")
                    .collect();
                forward((!pairs.is_empty()).then(|| join_query(&pairs)))
            }
        }
    }

    fn fault(&self) -> Fault {
        lock(&self.fault).0.clone()
    }

    fn record(&self, method: &str, path: String, status: u16) {
        lock(&self.log).push(RequestRecord {
            method: method.to_owned(),
            path,
            status,
        });
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().map(str::to_owned);
        let path_and_query = req
            .uri()
            .path_and_query()
            .map_or_else(|| path.clone(), ToString::to_string);
        let echoed = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|_| is_tags_list(&path) && self.fault() == Fault::EchoAuthorization);
        if let Some(header) = echoed {
            let body = serde_json::json!({"errors": [{
                "code": "DENIED",
                "message": format!("requested access to the resource is denied; request had Authorization: {header}"),
            }]});
            self.record(method.as_str(), path_and_query, 403);
            return respond(403, "application/json", body.to_string());
        }
        let manifest_fault = Some(self.fault()).filter(|f| {
            is_manifest(&path)
                && matches!(f, Fault::NoManifestDigest | Fault::ForgedManifestDigest(_))
        });
        if manifest_fault == Some(Fault::NoManifestDigest) && method == http::Method::HEAD {
            self.record(method.as_str(), path_and_query, 405);
            return respond(
                405,
                "application/json",
                r#"{"errors":[{"code":"UNSUPPORTED","message":"HEAD is not supported"}]}"#
                    .to_owned(),
            );
        }
        let (status, response) = match self.decide(&path, query.as_deref()) {
            Action::Answer(status, headers, body) => {
                let mut response = respond(status, "application/json", body);
                for (name, value) in headers {
                    if let Ok(value) = http::HeaderValue::from_str(&value) {
                        response.headers_mut().insert(name, value);
                    }
                }
                (status, response)
            }
            Action::Stall => {
                self.record(method.as_str(), path_and_query, 0);
                std::future::pending::<()>().await;
                unreachable!("a pending future never completes")
            }
            Action::Forward {
                query,
                truncate,
                link_loop,
            } => {
                let tags = is_tags_list(&path);
                // Distribution 2.8 ignores `n`/`last`: fetch the whole list and page it here.
                let upstream_query = if tags { None } else { query.clone() };
                match self.forward(req, &path, upstream_query.as_deref()).await {
                    Ok(mut response) => {
                        if tags && response.status() == http::StatusCode::OK {
                            let next = NextPage {
                                style: &lock(&self.link_style).clone(),
                                front: &self.front,
                                path: &path,
                            };
                            paginate(&mut response, &next, query.as_deref());
                        }
                        if truncate {
                            let cut = response.body().len() / 2;
                            let cut_body = response.body().slice(..cut);
                            *response.body_mut() = cut_body;
                        }
                        if link_loop
                            && let Ok(value) = http::HeaderValue::from_str(&format!(
                                "<{path_and_query}>; rel=\"next\""
                            ))
                        {
                            response.headers_mut().insert(http::header::LINK, value);
                        }
                        match &manifest_fault {
                            Some(Fault::NoManifestDigest) => {
                                response.headers_mut().remove("docker-content-digest");
                            }
                            Some(Fault::ForgedManifestDigest(forged)) => {
                                if let Ok(value) = http::HeaderValue::from_str(forged) {
                                    response
                                        .headers_mut()
                                        .insert("docker-content-digest", value);
                                }
                            }
                            _ => {}
                        }
                        (response.status().as_u16(), response.map(Full::new))
                    }
                    Err(message) => (502, respond(502, "text/plain", message)),
                }
            }
        };
        self.record(method.as_str(), path_and_query, status);
        response
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        path: &str,
        query: Option<&str>,
    ) -> Result<Response<Bytes>, String> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading the request body: {e}"))?
            .to_bytes();
        let mut url = self.upstream.clone();
        url.set_path(path);
        url.set_query(query);
        let mut request = self.client.request(parts.method.clone(), url);
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name.as_str())
                && name != http::header::HOST
                && name != http::header::CONTENT_LENGTH
            {
                request = request.header(name, value);
            }
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let upstream = request
            .send()
            .await
            .map_err(|e| format!("forwarding to the registry: {e}"))?;
        let status = upstream.status();
        let headers = upstream.headers().clone();
        let body = upstream
            .bytes()
            .await
            .map_err(|e| format!("reading the registry's answer: {e}"))?;
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let origin = self.upstream.origin().ascii_serialization();
        for (name, value) in &headers {
            if is_hop_by_hop(name.as_str()) || name == http::header::CONTENT_LENGTH {
                continue;
            }
            let value = if (name == http::header::LINK || name == http::header::LOCATION)
                && let Ok(text) = value.to_str()
                && text.contains(&origin)
            {
                http::HeaderValue::from_str(&text.replace(&origin, &self.front))
                    .unwrap_or_else(|_| value.clone())
            } else {
                value.clone()
            };
            response.headers_mut().append(name, value);
        }
        Ok(response)
    }
}

/// Where the next page lives and how to say so.
struct NextPage<'a> {
    style: &'a LinkStyle,
    /// `http://127.0.0.1:PORT` of the proxy.
    front: &'a str,
    /// `/v2/<name>/tags/list`.
    path: &'a str,
}

impl NextPage<'_> {
    fn link(&self, n: usize, last: &str) -> Option<String> {
        let target = format!("{}?n={n}&last={last}", self.path);
        let url = match self.style {
            LinkStyle::Relative => target,
            LinkStyle::Absolute => format!("{}{target}", self.front),
            LinkStyle::None => return None,
            LinkStyle::OtherHost(host) => format!("http://{host}{target}"),
        };
        Some(format!("<{url}>; rel=\"next\""))
    }
}

/// Pages a full tag list the way the distribution spec describes (lexical order, `last`
/// exclusive, at most `n`, `Link` to the next page when more remain, written as `next.style`
/// says).
fn paginate(response: &mut Response<Bytes>, next: &NextPage<'_>, query: Option<&str>) {
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(response.body()) else {
        return;
    };
    let Some(all) = json["tags"].as_array() else {
        return;
    };
    let mut tags: Vec<String> = all
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    tags.sort();
    let pairs = split_query(query);
    let n = pairs
        .iter()
        .find(|(k, _)| k == "n")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let last = pairs
        .iter()
        .find(|(k, _)| k == "last")
        .map(|(_, v)| v.clone());
    if let Some(last) = &last {
        tags.retain(|t| t > last);
    }
    let mut link = None;
    if let Some(n) = n
        && tags.len() > n
    {
        tags.truncate(n);
        if let Some(last_of_page) = tags.last() {
            link = next.link(n, last_of_page);
        }
    }
    json["tags"] = serde_json::json!(tags);
    *response.body_mut() = Bytes::from(json.to_string());
    response.headers_mut().remove(http::header::LINK);
    if let Some(link) = link
        && let Ok(value) = http::HeaderValue::from_str(&link)
    {
        response.headers_mut().insert(http::header::LINK, value);
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
    )
}

fn split_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn join_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_rewrites() {
        let state = State {
            upstream: Url::parse("http://127.0.0.1:1").unwrap(),
            front: "http://127.0.0.1:2".to_owned(),
            client: crate::http_client(None, Duration::from_secs(1)).unwrap(),
            fault: Mutex::new((Fault::None, 0)),
            link_style: Mutex::new(LinkStyle::default()),
            log: Mutex::new(Vec::new()),
        };
        let cases = [
            (
                Fault::CapPageSize(50),
                Some("n=1000&last=a"),
                Some("n=50&last=a"),
                "a larger n is capped",
            ),
            (
                Fault::CapPageSize(50),
                Some("n=10"),
                Some("n=10"),
                "a smaller n is kept",
            ),
            (
                Fault::CapPageSize(50),
                None,
                Some("n=50"),
                "a missing n becomes the cap",
            ),
            (
                Fault::IgnorePageSize,
                Some("n=10&last=b"),
                Some("last=b"),
                "n is dropped, last kept",
            ),
            (
                Fault::IgnorePageSize,
                Some("n=10"),
                None,
                "nothing left means no query",
            ),
        ];
        for (fault, query, want, reason) in cases {
            *lock(&state.fault) = (fault.clone(), 0);
            match state.decide("/v2/a/b/tags/list", query) {
                Action::Forward { query, .. } => {
                    assert_eq!(query.as_deref(), want, "{fault:?} {query:?}: {reason}");
                }
                _ => panic!("{fault:?}: {reason}: expected a forward"),
            }
        }
        *lock(&state.fault) = (Fault::CapPageSize(1), 0);
        assert!(
            matches!(state.decide("/v2/a/manifests/1", Some("n=5")), Action::Forward { query: Some(q), .. } if q == "n=5"),
            "faults touch tag listings only"
        );
    }

    #[test]
    fn pages_and_links() {
        let full = r#"{"name":"p/app","tags":["c","a","e","b","d"]}"#;
        let cases = [
            (
                LinkStyle::Relative,
                Some("n=2"),
                "[\"a\",\"b\"]",
                Some("</v2/p/app/tags/list?n=2&last=b>; rel=\"next\""),
                "relative Link, sorted first page",
            ),
            (
                LinkStyle::Absolute,
                Some("n=2&last=b"),
                "[\"c\",\"d\"]",
                Some("<http://127.0.0.1:2/v2/p/app/tags/list?n=2&last=d>; rel=\"next\""),
                "absolute Link on the proxy's origin, last exclusive",
            ),
            (
                LinkStyle::None,
                Some("n=2"),
                "[\"a\",\"b\"]",
                None,
                "full page but no Link",
            ),
            (
                LinkStyle::OtherHost("elsewhere.invalid".to_owned()),
                Some("n=3"),
                "[\"a\",\"b\",\"c\"]",
                Some("<http://elsewhere.invalid/v2/p/app/tags/list?n=3&last=c>; rel=\"next\""),
                "Link to another host",
            ),
            (
                LinkStyle::Relative,
                Some("n=2&last=d"),
                "[\"e\"]",
                None,
                "last page: no Link",
            ),
            (
                LinkStyle::Relative,
                None,
                "[\"a\",\"b\",\"c\",\"d\",\"e\"]",
                None,
                "no n: everything, no Link",
            ),
        ];
        for (style, query, want_tags, want_link, reason) in cases {
            let mut response = Response::new(Bytes::from(full));
            let next = NextPage {
                style: &style,
                front: "http://127.0.0.1:2",
                path: "/v2/p/app/tags/list",
            };
            paginate(&mut response, &next, query);
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body["tags"].to_string(), want_tags, "{reason}");
            let link = response
                .headers()
                .get(http::header::LINK)
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(link.as_deref(), want_link, "{reason}");
        }
    }
}

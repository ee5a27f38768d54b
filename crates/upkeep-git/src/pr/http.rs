//! The HTTP plumbing every provider shares: one reqwest client per call with timeouts and a
//! User-Agent, the provider's auth header (marked sensitive), JSON in and out, and the mapping
//! of statuses to [`PrError`] variants.
//!
//! Redirects are not followed: a forge's header-based token (`PRIVATE-TOKEN`) would travel
//! along with them, and a moved repository is a configuration to fix rather than to chase.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use upkeep_core::redact::{excerpt_with, redact_known};

use super::{PrError, PrTarget, ProviderKind, PullRequest, Token};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a server's error body an error quotes.
const EXCERPT_CHARS: usize = 200;

/// A configured API client for one target.
pub(super) struct Api {
    client: reqwest::Client,
    base: url::Url,
    server: String,
    kind: ProviderKind,
    headers: HeaderMap,
    token: Token,
}

impl Api {
    pub(super) fn new(target: &PrTarget) -> Result<Self, PrError> {
        // An error means a provider is already installed, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("upkeep/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &target.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| PrError::InvalidCa {
                    message: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(PrError::InvalidCa {
                    message: "no certificate found".to_owned(),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| PrError::Client {
            what: "building the HTTP client".to_owned(),
            message: e.to_string(),
        })?;
        let secret = target.token.secret();
        let (name, value) = match target.kind {
            ProviderKind::Github => (reqwest::header::AUTHORIZATION, format!("Bearer {secret}")),
            ProviderKind::Gitlab => (HeaderName::from_static("private-token"), secret.to_owned()),
            ProviderKind::Gitea => (reqwest::header::AUTHORIZATION, format!("token {secret}")),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| PrError::InvalidToken)?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(name, value);
        let accept = match target.kind {
            ProviderKind::Github => "application/vnd.github+json",
            ProviderKind::Gitlab | ProviderKind::Gitea => "application/json",
        };
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static(accept));
        if target.kind == ProviderKind::Github {
            headers.insert(
                HeaderName::from_static("x-github-api-version"),
                HeaderValue::from_static("2022-11-28"),
            );
        }
        Ok(Self {
            client,
            base: target.api_base.clone(),
            server: server_of(&target.api_base),
            kind: target.kind,
            headers,
            token: target.token.clone(),
        })
    }

    pub(super) fn server(&self) -> &str {
        &self.server
    }

    /// The base URL with `segments` appended (each percent-encoded as ONE segment, so a GitLab
    /// project path `a/b/c` becomes `a%2Fb%2Fc`) and `query` added.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> url::Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The last step every provider takes the same way: with an open pull request
    /// (`update`: the method its API updates with, its number, the body), sends the body to
    /// `collection/number`; without one, opens one by `POST`ing `create` to `collection`.
    /// `answer` reads the number and the page URL from the provider's answer.
    pub(super) async fn update_or_open<T: DeserializeOwned>(
        &self,
        collection: &[&str],
        update: Option<(Method, u64, &serde_json::Value)>,
        create: &serde_json::Value,
        answer: fn(T) -> (u64, String),
    ) -> Result<PullRequest, PrError> {
        if let Some((method, number, body)) = update {
            let index = number.to_string();
            let mut path = collection.to_vec();
            path.push(&index);
            let updated: T = self.call(method, &path, &[], Some(body)).await?;
            Ok(PullRequest {
                number,
                url: answer(updated).1,
                created: false,
            })
        } else {
            let created: T = self
                .call(Method::POST, collection, &[], Some(create))
                .await?;
            let (number, url) = answer(created);
            Ok(PullRequest {
                number,
                url,
                created: true,
            })
        }
    }

    /// Sends one request and decodes a successful JSON answer into `T`.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, PrError> {
        let url = self.url(segments, query);
        let path = url.path().to_owned();
        let mut request = self
            .client
            .request(method.clone(), url)
            .headers(self.headers.clone());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let connect_error = |e: &reqwest::Error| PrError::Connect {
            server: self.server.clone(),
            method: method.to_string(),
            path: path.clone(),
            message: self.redact(&describe(e)),
        };
        let response = request.send().await.map_err(|e| connect_error(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| connect_error(&e))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| PrError::BadResponse {
                server: self.server.clone(),
                method: method.to_string(),
                path: path.clone(),
                message: self.redact(&format!("{e}; body starts: {}", self.excerpt(&bytes))),
            });
        }
        Err(self.status_error(&method, &path, status, &headers, &bytes))
    }

    fn status_error(
        &self,
        method: &Method,
        path: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> PrError {
        let server = self.server.clone();
        let method = method.to_string();
        let path = path.to_owned();
        let excerpt = self.excerpt(body);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let retry_after_secs = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let exhausted = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
        let secondary = self.kind == ProviderKind::Github
            && excerpt.to_ascii_lowercase().contains("rate limit");
        match status {
            429 => PrError::RateLimited {
                server,
                method,
                path,
                status,
                retry_after_secs,
                excerpt,
            },
            403 if exhausted || secondary => PrError::RateLimited {
                server,
                method,
                path,
                status,
                retry_after_secs,
                excerpt,
            },
            401 | 403 => PrError::Unauthorized {
                server,
                method,
                path,
                status,
                excerpt,
            },
            404 => PrError::NotFound {
                server,
                method,
                path,
                excerpt,
            },
            _ => PrError::Http {
                server,
                method,
                path,
                status,
                excerpt,
            },
        }
    }

    /// `text` with every occurrence of the token replaced (servers sometimes echo headers),
    /// and any other credential [`upkeep_core::redact`] recognises.
    pub(super) fn redact(&self, text: &str) -> String {
        redact_known(text, &[self.token.secret()]).into_owned()
    }

    /// The first characters of a body for an error message: one line, the token and other
    /// credentials replaced *before* the cut (so no prefix of a secret survives it).
    fn excerpt(&self, body: &[u8]) -> String {
        let text = excerpt_with(body, EXCERPT_CHARS, &[self.token.secret()]);
        if text.is_empty() {
            "(empty body)".to_owned()
        } else {
            text
        }
    }
}

/// `host:port` of a URL, for errors.
fn server_of(url: &url::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "-".to_owned(),
    }
}

/// A reqwest error and its causes on one line, without the URL (the caller names the request).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!(
            "timed out (connect {} s, whole request {} s)",
            CONNECT_TIMEOUT.as_secs(),
            REQUEST_TIMEOUT.as_secs()
        );
    }
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "pr-token-123-never-shown";

    fn api() -> Api {
        Api::new(&PrTarget {
            kind: ProviderKind::Gitea,
            api_base: url::Url::parse("http://127.0.0.1:1/api/v1").expect("url"),
            repository: "o/r".to_owned(),
            token: TOKEN.into(),
            ca_pem: None,
        })
        .expect("api")
    }

    #[test]
    fn excerpts_are_short_on_one_line_and_never_show_the_token() {
        let api = api();
        let long = "x".repeat(500);
        let straddling = format!("{}{TOKEN}", "y".repeat(EXCERPT_CHARS - 5));
        let cases = [
            (
                "{\"message\":\n  \"Bad\"}".to_owned(),
                "{\"message\": \"Bad\"}".to_owned(),
                "newlines collapse",
            ),
            (
                String::new(),
                "(empty body)".to_owned(),
                "an empty body still says something",
            ),
            (
                format!("{{\"message\":\"you sent Authorization: token {TOKEN}\"}}"),
                "{\"message\":\"you sent Authorization: token <redacted>\"}".to_owned(),
                "an echoed header",
            ),
            (
                format!("bad token {TOKEN} and {}", &TOKEN[..10]),
                format!("bad token <redacted> and {}", &TOKEN[..10]),
                "the exact token goes, text around it stays",
            ),
            (
                straddling,
                format!("{}<reda\u{2026}", "y".repeat(EXCERPT_CHARS - 5)),
                "a token across the cut: replaced before cutting, no prefix of it is shown",
            ),
        ];
        for (input, want, reason) in cases {
            assert_eq!(api.excerpt(input.as_bytes()), want, "{reason}");
        }
        let cut = api.excerpt(long.as_bytes());
        assert_eq!(
            cut.chars().count(),
            EXCERPT_CHARS + 1,
            "a long body is cut and marked with an ellipsis"
        );
    }
}

//! Talking to Alertmanager (silences for clusters being upgraded) and to announcement webhooks.
//!
//! Why it is shaped this way:
//! - Alertmanager's v2 HTTP API is small and stable (`POST /api/v2/silences`,
//!   `GET /api/v2/silences`, `DELETE /api/v2/silence/{id}`), so this is a thin client on the
//!   workspace's reqwest/rustls stack rather than a generated one.
//! - A controller may restart between "silence created" and "status recorded". [`Alertmanager::find`]
//!   therefore recognises a silence we made earlier by its `createdBy` and its exact matcher set,
//!   and [`Alertmanager::ensure_silence`] reuses it, so a restart never stacks a second silence.
//! - Expiring is idempotent: a silence that is gone (404) or already expired counts as done,
//!   because the caller's goal ("no silence left") holds either way.
//! - Credentials may come in the URL (`https://user:pass@am.example/`) or as a bearer token.
//!   They are taken out of the URL before any request is built, sent only as an
//!   `Authorization` header, and never appear in errors or `Debug` output: every error names the
//!   server by its credential-free URL and the request (`POST /api/v2/silences`), and bodies
//!   quoted from a server are cut short and scrubbed of the secrets.
//! - Every request has a bounded timeout (connect 5 s, whole request 5 s for webhooks and 10 s
//!   for Alertmanager), so a hanging receiver cannot hold a reconcile.
//! - reqwest is built without a crypto provider (see the workspace) and panics when none is
//!   installed; building a client here installs rustls' ring provider first if the process has
//!   none yet (the binary installs the same one at start), so a missing provider is never a
//!   panic.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

/// How long one Alertmanager request may take.
const ALERTMANAGER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one webhook notification may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a server's answer an error quotes.
const BODY_QUOTE_LIMIT: usize = 400;
use upkeep_core::redact::{REDACTED, excerpt_with, redact, redact_known};

/// What went wrong talking to Alertmanager or a webhook. Messages name the server (without
/// credentials) and the request; they never contain a password or token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsError {
    /// The configured URL is not usable.
    #[error("invalid {what} URL {url:?}: {reason}")]
    InvalidUrl {
        what: &'static str,
        /// The URL with any credentials replaced by `<redacted>`.
        url: String,
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client for {server}: {reason}")]
    Client { server: String, reason: String },
    /// The request could not be sent or its answer not read (connection refused, timeout, …).
    #[error("{request} on {server} failed: {reason}")]
    Request {
        server: String,
        request: String,
        reason: String,
        timeout: bool,
        connect: bool,
    },
    /// The server answered with an error status.
    #[error("{request} on {server}: HTTP {status}: {body}")]
    Status {
        server: String,
        request: String,
        status: u16,
        /// The start of the answer's body, scrubbed of credentials.
        body: String,
    },
    /// The server's answer was not what its API promises.
    #[error("{request} on {server}: unexpected answer: {reason}")]
    Decode {
        server: String,
        request: String,
        reason: String,
    },
    /// An argument cannot make a valid request.
    #[error("{request} on {server}: {reason}")]
    InvalidRequest {
        server: String,
        request: String,
        reason: String,
    },
}

impl AlertsError {
    /// A suggested fix, where one is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::InvalidUrl { .. } => Some(
                "use an absolute http:// or https:// URL such as http://alertmanager:9093 (credentials may go in the URL as user:password@)".to_owned(),
            ),
            Self::Client { .. } => Some(
                "install a rustls crypto provider before building clients (the upkeep binary installs ring)".to_owned(),
            ),
            Self::Request { server, timeout, connect, .. } => Some(if *connect {
                format!("nothing answered at {server}: check the URL, that the server runs, and network policies")
            } else if *timeout {
                format!("{server} did not answer in time: check its health and load")
            } else {
                format!("check that {server} is reachable and speaks HTTP(S)")
            }),
            Self::Status { status: 401 | 403, .. } => Some(
                "check the credentials: basic auth in the URL (user:password@) or the bearer token".to_owned(),
            ),
            Self::Status { status: 400 | 422, request, .. }
            | Self::InvalidRequest { request, .. }
                if request.starts_with("POST /api/v2/silences") =>
            {
                Some("the silence was refused: matchers need a label name and value, and endsAt must be in the future".to_owned())
            }
            Self::Status { status: 404, .. } => Some(
                "check the URL's path: Alertmanager's API lives under /api/v2 (keep any --web.route-prefix in the URL)".to_owned(),
            ),
            Self::Status { .. } | Self::InvalidRequest { .. } | Self::Decode { .. } => None,
        }
    }
}

/// How requests authenticate. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Default)]
enum Auth {
    #[default]
    None,
    Basic {
        user: String,
        password: Option<String>,
    },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { user, .. } => write!(f, "Basic({user}:{REDACTED})"),
            Self::Bearer(_) => write!(f, "Bearer({REDACTED})"),
        }
    }
}

impl Auth {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::None => request,
            Self::Basic { user, password } => request.basic_auth(user, password.as_deref()),
            Self::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// The secret sent with each request, if any.
    fn secret(&self) -> &str {
        match self {
            Self::None => "",
            Self::Basic {
                password: Some(password),
                ..
            } => password,
            // `http://TOKEN@host`: the user name is the credential.
            Self::Basic {
                user,
                password: None,
            } => user,
            Self::Bearer(token) => token.as_str(),
        }
    }

    /// Replaces the secret in `text` (a server's answer may echo it), and any other
    /// credential [`upkeep_core::redact`] recognises.
    fn scrub(&self, text: &str) -> String {
        redact_known(text, &[self.secret()]).into_owned()
    }
}

/// A URL split into its credential-free form and the credentials it carried.
fn split_credentials(what: &'static str, raw: &str) -> Result<(url::Url, Auth), AlertsError> {
    let mut url = url::Url::parse(raw).map_err(|e| AlertsError::InvalidUrl {
        what,
        url: redact(raw).into_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AlertsError::InvalidUrl {
            what,
            url: redact(url.as_str()).into_owned(),
            reason: format!("scheme {:?} is not http or https", url.scheme()),
        });
    }
    let auth = if url.username().is_empty() && url.password().is_none() {
        Auth::None
    } else {
        // Userinfo is percent-encoded (not form-encoded: `+` stays `+`).
        Auth::Basic {
            user: percent_decode(url.username()),
            password: url.password().map(percent_decode),
        }
    };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    Ok((url, auth))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn build_client(server: &str, timeout: Duration) -> Result<reqwest::Client, AlertsError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: then a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AlertsError::Client {
            server: server.to_owned(),
            reason: error_chain(&e.without_url()),
        })
}

/// The error and its sources on one line (reqwest's own message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// A server's answer for an error: bounded, one line, the secret and other credentials
/// replaced before the cut.
fn quote_body(auth: &Auth, body: &str) -> String {
    excerpt_with(body.as_bytes(), BODY_QUOTE_LIMIT, &[auth.secret()])
}

/// One HTTP exchange: sends, reads the body, maps failures to [`AlertsError`] naming
/// `server` and `request`.
async fn exchange(
    auth: &Auth,
    server: &str,
    request: &str,
    builder: reqwest::RequestBuilder,
) -> Result<(u16, String), AlertsError> {
    let transport = |e: reqwest::Error| AlertsError::Request {
        server: server.to_owned(),
        request: request.to_owned(),
        timeout: e.is_timeout(),
        connect: e.is_connect(),
        reason: auth.scrub(&error_chain(&e.without_url())),
    };
    let response = auth.apply(builder).send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(transport)?;
    Ok((status, body))
}

/// One label matcher of a silence as Alertmanager returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    /// Absent on old Alertmanagers, where every matcher is an equality.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as Alertmanager lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: String,
    /// `active`, `pending` or `expired`.
    pub state: String,
    pub created_by: String,
    pub comment: String,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub matchers: Vec<SilenceMatcher>,
}

impl Silence {
    /// Active now or starting later (not expired).
    pub fn is_live(&self) -> bool {
        matches!(self.state.as_str(), "active" | "pending")
    }

    /// Whether this silence's matchers are exactly the equality matchers `matchers` (in any
    /// order).
    pub fn has_exactly(&self, matchers: &[(&str, &str)]) -> bool {
        if self.matchers.iter().any(|m| m.is_regex || !m.is_equal) {
            return false;
        }
        let mut ours: Vec<(&str, &str)> = matchers.to_vec();
        ours.sort_unstable();
        ours.dedup();
        let mut theirs: Vec<(&str, &str)> = self
            .matchers
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str()))
            .collect();
        theirs.sort_unstable();
        theirs.dedup();
        ours == theirs
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSilence {
    id: String,
    #[serde(default)]
    status: Option<RawStatus>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default)]
    matchers: Vec<SilenceMatcher>,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    state: String,
}

impl From<RawSilence> for Silence {
    fn from(raw: RawSilence) -> Self {
        Self {
            id: raw.id,
            state: raw.status.map(|s| s.state).unwrap_or_default(),
            created_by: raw.created_by,
            comment: raw.comment,
            starts_at: raw.starts_at.and_then(|t| t.parse().ok()),
            ends_at: raw.ends_at.and_then(|t| t.parse().ok()),
            matchers: raw.matchers,
        }
    }
}

/// A client for one Alertmanager (its v2 API).
#[derive(Debug, Clone)]
pub struct Alertmanager {
    /// Credential-free base URL, without a trailing slash.
    base: String,
    auth: Auth,
    client: reqwest::Client,
}

impl Alertmanager {
    /// A client for the Alertmanager at `base_url` (e.g. `http://alertmanager:9093`, keep any
    /// route prefix). Basic-auth credentials in the URL are used as such and removed from it.
    pub fn new(base_url: &str) -> Result<Self, AlertsError> {
        let (url, auth) = split_credentials("Alertmanager", base_url)?;
        let base = url.as_str().trim_end_matches('/').to_owned();
        let client = build_client(&base, ALERTMANAGER_TIMEOUT)?;
        Ok(Self { base, auth, client })
    }

    /// Authenticates with `Authorization: Bearer <token>` instead of URL credentials.
    #[must_use]
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Bearer(token.into());
        self
    }

    /// The base URL, without credentials.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(
        &self,
        request: &str,
        builder: reqwest::RequestBuilder,
    ) -> Result<(u16, String), AlertsError> {
        exchange(&self.auth, &self.base, request, builder).await
    }

    fn status_error(&self, request: &str, status: u16, body: &str) -> AlertsError {
        AlertsError::Status {
            server: self.base.clone(),
            request: request.to_owned(),
            status,
            body: quote_body(&self.auth, body),
        }
    }

    /// Creates a silence for exactly `matchers` (label equality) from now until `ends_at`, and
    /// returns its id.
    pub async fn silence_cluster(
        &self,
        matchers: &[(&str, &str)],
        created_by: &str,
        comment: &str,
        ends_at: Timestamp,
    ) -> Result<String, AlertsError> {
        self.post_silence(None, matchers, created_by, comment, ends_at)
            .await
    }

    /// Reuses the live silence [`find`](Self::find) returns for `matchers` and `created_by`
    /// (extending it when it ends before `ends_at`), or creates one. Returns the id in force:
    /// Alertmanager may replace an extended silence by a new one with a new id (and expire the
    /// old), so record the returned id.
    pub async fn ensure_silence(
        &self,
        matchers: &[(&str, &str)],
        created_by: &str,
        comment: &str,
        ends_at: Timestamp,
    ) -> Result<String, AlertsError> {
        match self.find(matchers, created_by).await? {
            Some(existing) if existing.ends_at.is_some_and(|end| end >= ends_at) => Ok(existing.id),
            Some(existing) => {
                self.post_silence(Some(&existing.id), matchers, created_by, comment, ends_at)
                    .await
            }
            None => {
                self.post_silence(None, matchers, created_by, comment, ends_at)
                    .await
            }
        }
    }

    async fn post_silence(
        &self,
        id: Option<&str>,
        matchers: &[(&str, &str)],
        created_by: &str,
        comment: &str,
        ends_at: Timestamp,
    ) -> Result<String, AlertsError> {
        const REQUEST: &str = "POST /api/v2/silences";
        let invalid = |reason: String| AlertsError::InvalidRequest {
            server: self.base.clone(),
            request: REQUEST.to_owned(),
            reason,
        };
        if matchers.is_empty() {
            return Err(invalid(
                "a silence needs at least one matcher (an empty one would mute everything)"
                    .to_owned(),
            ));
        }
        if let Some((name, value)) = matchers
            .iter()
            .find(|(name, value)| name.is_empty() || value.is_empty())
        {
            return Err(invalid(format!(
                "matcher {name:?}={value:?} needs a label name and a non-empty value"
            )));
        }
        let now = Timestamp::now();
        if ends_at <= now {
            return Err(invalid(format!(
                "endsAt {ends_at} is not in the future (now {now})"
            )));
        }
        let mut body = json!({
            "matchers": matchers
                .iter()
                .map(|(name, value)| json!({
                    "name": name, "value": value, "isRegex": false, "isEqual": true,
                }))
                .collect::<Vec<_>>(),
            "startsAt": now.to_string(),
            "endsAt": ends_at.to_string(),
            "createdBy": created_by,
            "comment": comment,
        });
        if let Some(id) = id {
            body["id"] = json!(id);
        }
        let (status, text) = self
            .call(
                REQUEST,
                self.client
                    .post(self.endpoint("/api/v2/silences"))
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string()),
            )
            .await?;
        if !(200..300).contains(&status) {
            return Err(self.status_error(REQUEST, status, &text));
        }
        let answer: Value = serde_json::from_str(&text).map_err(|e| AlertsError::Decode {
            server: self.base.clone(),
            request: REQUEST.to_owned(),
            reason: format!("{e}: {}", quote_body(&self.auth, &text)),
        })?;
        answer
            .get("silenceID")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| AlertsError::Decode {
                server: self.base.clone(),
                request: REQUEST.to_owned(),
                reason: format!("no silenceID in {}", quote_body(&self.auth, &text)),
            })
    }

    /// Every silence Alertmanager knows (including expired ones it still keeps).
    pub async fn silences(&self) -> Result<Vec<Silence>, AlertsError> {
        const REQUEST: &str = "GET /api/v2/silences";
        let (status, text) = self
            .call(REQUEST, self.client.get(self.endpoint("/api/v2/silences")))
            .await?;
        if !(200..300).contains(&status) {
            return Err(self.status_error(REQUEST, status, &text));
        }
        let raw: Vec<RawSilence> =
            serde_json::from_str(&text).map_err(|e| AlertsError::Decode {
                server: self.base.clone(),
                request: REQUEST.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(raw.into_iter().map(Silence::from).collect())
    }

    /// The live (active or pending) silence created by `created_by` with exactly `matchers`;
    /// when there are several, the one ending last.
    pub async fn find(
        &self,
        matchers: &[(&str, &str)],
        created_by: &str,
    ) -> Result<Option<Silence>, AlertsError> {
        Ok(self
            .silences()
            .await?
            .into_iter()
            .filter(|s| s.is_live() && s.created_by == created_by && s.has_exactly(matchers))
            .max_by(|a, b| a.ends_at.cmp(&b.ends_at).then_with(|| a.id.cmp(&b.id))))
    }

    /// Expires the silence `id`. A silence that is unknown (404) or already expired is fine.
    pub async fn expire(&self, id: &str) -> Result<(), AlertsError> {
        let request = format!("DELETE /api/v2/silence/{id}");
        if id.is_empty() || id.contains(['/', '?', '#']) {
            return Err(AlertsError::InvalidRequest {
                server: self.base.clone(),
                request,
                reason: format!("{id:?} is not a silence id"),
            });
        }
        let (status, text) = self
            .call(
                &request,
                self.client
                    .delete(self.endpoint(&format!("/api/v2/silence/{id}"))),
            )
            .await?;
        if (200..300).contains(&status) || status == 404 {
            return Ok(());
        }
        // Alertmanager answers an expired silence with an error ("already expired"); make sure
        // that is what happened before calling it done.
        if text.contains("already expired")
            || text.contains("not found")
            || self.is_expired(id).await?
        {
            return Ok(());
        }
        Err(self.status_error(&request, status, &text))
    }

    async fn is_expired(&self, id: &str) -> Result<bool, AlertsError> {
        let request = format!("GET /api/v2/silence/{id}");
        let (status, text) = self
            .call(
                &request,
                self.client
                    .get(self.endpoint(&format!("/api/v2/silence/{id}"))),
            )
            .await?;
        if status == 404 {
            return Ok(true);
        }
        if !(200..300).contains(&status) {
            return Err(self.status_error(&request, status, &text));
        }
        let raw: RawSilence = serde_json::from_str(&text).map_err(|e| AlertsError::Decode {
            server: self.base.clone(),
            request: request.clone(),
            reason: e.to_string(),
        })?;
        Ok(!Silence::from(raw).is_live())
    }
}

/// Posts JSON announcements to webhook receivers (Slack-compatible or any JSON endpoint).
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    bearer: Option<String>,
}

impl Webhook {
    /// A notifier whose requests time out after 5 seconds.
    pub fn new() -> Result<Self, AlertsError> {
        Ok(Self {
            client: build_client("webhooks", WEBHOOK_TIMEOUT)?,
            bearer: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every notification (URL credentials, if any,
    /// are replaced by it).
    #[must_use]
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// POSTs `body` as JSON to `url`; any 2xx answer is success. Basic-auth credentials in the
    /// URL are sent as a header and never appear in errors.
    pub async fn notify(&self, url: &str, body: &Value) -> Result<(), AlertsError> {
        const REQUEST: &str = "POST webhook";
        let (target, url_auth) = split_credentials("webhook", url)?;
        // Keep the query (some receivers carry a routing key there) but not in errors.
        let mut with_query = target.clone();
        if let Ok(original) = url::Url::parse(url) {
            with_query.set_query(original.query());
        }
        let auth = match &self.bearer {
            Some(token) => Auth::Bearer(token.clone()),
            None => url_auth,
        };
        let server = target.to_string();
        let (status, text) = exchange(
            &auth,
            &server,
            REQUEST,
            self.client
                .post(with_query.as_str())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_string()),
        )
        .await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(AlertsError::Status {
                server,
                request: REQUEST.to_owned(),
                status,
                body: quote_body(&auth, &text),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        let cases = [
            (
                "http://127.0.0.1:9093/",
                "http://127.0.0.1:9093",
                "None",
                "a plain URL keeps everything but the trailing slash",
            ),
            (
                "https://am:s3cr%40t@am.example/prefix/",
                "https://am.example/prefix",
                "Basic(am:<redacted>)",
                "userinfo becomes basic auth (percent-decoded) and leaves the URL",
            ),
            (
                "http://tok@am.example:9093?x=1#frag",
                "http://am.example:9093",
                "Basic(tok:<redacted>)",
                "a user without password still authenticates; query and fragment are dropped",
            ),
        ];
        for (input, base, auth, reason) in cases {
            let am = Alertmanager::new(input).expect(reason);
            assert_eq!(am.url(), base, "{reason}");
            assert_eq!(format!("{:?}", am.auth), auth, "{reason}");
            assert!(!format!("{am:?}").contains("s3cr"), "{reason}: Debug leaks");
        }
    }

    #[test]
    fn bad_urls_are_errors_without_secrets() {
        let cases = [
            ("ftp://am.example", "scheme", "only HTTP(S) speaks the API"),
            ("not a url", "relative URL", "a bare word is not a URL"),
            (
                "http://user:hunter2@[::1",
                "invalid IPv6",
                "a broken URL is reported without its password",
            ),
        ];
        for (input, fragment, reason) in cases {
            let err = Alertmanager::new(input).expect_err(reason);
            let text = err.to_string();
            assert!(text.contains(fragment), "{reason}: {text}");
            assert!(!text.contains("hunter2"), "{reason}: leaks {text}");
            assert!(err.hint().is_some(), "{reason}");
        }
    }

    #[test]
    fn scrub_and_quote() {
        let auth = Auth::Bearer("tok-123".to_owned());
        let cases = [
            (
                "bad token tok-123",
                "bad token <redacted>",
                "an echoed token is removed",
            ),
            ("  plain  ", "plain", "whitespace is trimmed"),
        ];
        for (input, expected, reason) in cases {
            assert_eq!(quote_body(&auth, input), expected, "{reason}");
        }
        let long = "x".repeat(BODY_QUOTE_LIMIT + 10);
        assert_eq!(
            quote_body(&Auth::None, &long).chars().count(),
            BODY_QUOTE_LIMIT + 1,
            "long bodies are cut with an ellipsis"
        );
    }

    #[test]
    fn exact_matcher_sets() {
        let silence = |m: &[(&str, &str, bool)]| Silence {
            id: "id".to_owned(),
            state: "active".to_owned(),
            created_by: "upkeep".to_owned(),
            comment: String::new(),
            starts_at: None,
            ends_at: None,
            matchers: m
                .iter()
                .map(|(n, v, regex)| SilenceMatcher {
                    name: (*n).to_owned(),
                    value: (*v).to_owned(),
                    is_regex: *regex,
                    is_equal: true,
                })
                .collect(),
        };
        let cases = [
            (
                silence(&[("cluster", "a", false), ("ns", "x", false)]),
                vec![("ns", "x"), ("cluster", "a")],
                true,
                "order does not matter",
            ),
            (
                silence(&[("cluster", "a", false)]),
                vec![("cluster", "a"), ("ns", "x")],
                false,
                "a broader silence is not ours",
            ),
            (
                silence(&[("cluster", "a", true)]),
                vec![("cluster", "a")],
                false,
                "a regex matcher is not the equality we create",
            ),
        ];
        for (s, ours, expected, reason) in cases {
            assert_eq!(s.has_exactly(&ours), expected, "{reason}");
        }
    }
}

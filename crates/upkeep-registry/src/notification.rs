//! Registry push notifications: who may send one ([`authenticate`]), what it says ([`parse`])
//! and which ChartSource it concerns ([`matches`]). Pure functions, no I/O: the HTTP endpoint
//! lives in the controller crate and only moves bytes to and from here.
//!
//! Why it is shaped so:
//! - Five senders, five payload shapes, one result: a list of [`Pushed`] (registry host,
//!   repository, tag, digest). Everything after that — which sources to scan — is the same for
//!   every sender, so the shapes stop here.
//! - A body is first parsed as untyped JSON (serde_json's nesting limit guards deep input) and
//!   then walked field by field, so an error names the field (`events[0].target.repository`)
//!   and the expected type, never the value that was sent.
//! - A valid payload that is not a manifest push (a pull, a blob upload, a deletion, a ping) is
//!   not an error: it yields no events. A body that is not the sender's shape is an error.
//! - Authentication happens before parsing and compares in constant time (ring's HMAC
//!   verification; a token is compared by verifying its HMAC under the secret, so neither the
//!   content nor the length leaks through timing). Errors say what was missing or wrong, never
//!   what was sent.
//! - Docker Hub can neither sign nor send headers, so its token is a URL path segment:
//!   lowercase hex SHA-256 of the secret ([`path_token`]). The secret itself (also GitHub's HMAC
//!   key) never appears in a URL.

use ring::hmac;
use serde_json::{Map, Value};

use crate::auth::normalize_host;
use crate::location::Location;

/// One manifest pushed to a registry, as a notification reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `host[:port]` clients use to reach the registry (lower case); `None` when the sender
    /// did not say (such a push matches sources by repository alone).
    pub registry: Option<String>,
    /// The repository path without the host, e.g. `charts/app` or `library/nginx`.
    pub repository: String,
    /// The tag, when the push named one.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:…`), when the sender gave it.
    pub digest: Option<String>,
}

/// Who sent a notification; each has its own payload shape and authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// CNCF distribution (`registry:2`, Debian `docker-registry`), `notifications.endpoints`.
    Distribution,
    /// Harbor project webhooks (default JSON or CloudEvents).
    Harbor,
    /// GitHub `package` / `registry_package` webhooks (ghcr.io).
    GitHub,
    /// Azure Container Registry webhooks.
    Acr,
    /// Docker Hub repository webhooks.
    DockerHub,
}

impl Sender {
    /// Every sender, for tables and help texts.
    pub const ALL: [Self; 5] = [
        Self::Distribution,
        Self::Harbor,
        Self::GitHub,
        Self::Acr,
        Self::DockerHub,
    ];

    /// The name used in URL paths, logs and metrics: `distribution`, `harbor`, `github`,
    /// `acr`, `dockerhub`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Distribution => "distribution",
            Self::Harbor => "harbor",
            Self::GitHub => "github",
            Self::Acr => "acr",
            Self::DockerHub => "dockerhub",
        }
    }

    /// The sender named `name` (as in [`Sender::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The sender and path token of a receiver path: `/hook/<name>` for every sender but
    /// Docker Hub, `/hook/dockerhub/<token>` for Docker Hub. `None` for any other path.
    pub fn from_path(path: &str) -> Option<(Self, Option<&str>)> {
        let rest = path.strip_prefix("/hook/")?;
        match rest.split_once('/') {
            None => Self::from_name(rest)
                .filter(|s| *s != Self::DockerHub)
                .map(|s| (s, None)),
            Some(("dockerhub", token)) if !token.is_empty() && !token.contains('/') => {
                Some((Self::DockerHub, Some(token)))
            }
            Some(_) => None,
        }
    }
}

impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a notification was refused. Messages name the sender and field, never a secret or a
/// value from the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// Missing or wrong credentials (HTTP 401).
    #[error("{sender}: not authenticated: {reason}")]
    Unauthenticated {
        sender: Sender,
        reason: &'static str,
    },
    /// The body is not the sender's payload shape (HTTP 400).
    #[error("{sender}: malformed notification: `{field}` {detail}")]
    Malformed {
        sender: Sender,
        field: String,
        detail: String,
    },
    /// A well-formed request for an event kind the receiver does not handle (HTTP 400).
    #[error("{sender}: unsupported event `{event}`")]
    Unsupported { sender: Sender, event: String },
}

impl NotificationError {
    fn malformed(sender: Sender, field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Malformed {
            sender,
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// The Docker Hub path token for `secret`: lowercase hex SHA-256 (what
/// `printf %s "$SECRET" | sha256sum` prints).
pub fn path_token(secret: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret).as_ref())
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the signature header value GitHub sends (and the
/// generic `X-Signature` one).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex(hmac::sign(&key, body).as_ref()))
}

/// Checks the request's credentials for `sender`:
/// - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`;
/// - distribution and ACR: `Authorization: Bearer <secret>`, or a generic
///   `X-Signature: sha256=<hex HMAC-SHA256(secret, body)>`;
/// - Harbor: `Authorization: <secret>` or `Authorization: Bearer <secret>` (Harbor sends its
///   configured auth header verbatim);
/// - Docker Hub: `path_token` equal to [`path_token`]`(secret)`.
pub fn authenticate(
    sender: Sender,
    secret: &[u8],
    headers: &http::HeaderMap,
    path_token: Option<&str>,
    body: &[u8],
) -> Result<(), NotificationError> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let refuse = |reason| Err(NotificationError::Unauthenticated { sender, reason });
    if secret.is_empty() {
        return refuse("the receiver has no secret");
    }
    let token_ok =
        |given: &[u8]| hmac::verify(&key, given, hmac::sign(&key, secret).as_ref()).is_ok();
    match sender {
        Sender::GitHub => match header(headers, "x-hub-signature-256") {
            None => refuse("no X-Hub-Signature-256 header (set the webhook's secret)"),
            Some(value) => check_signature(&key, value, body).or_else(&refuse),
        },
        Sender::Distribution | Sender::Acr => {
            if let Some(value) = header(headers, "x-signature") {
                return check_signature(&key, value, body).or_else(&refuse);
            }
            match header(headers, "authorization") {
                None => refuse("no Authorization header"),
                Some(value) => match strip_bearer(value) {
                    Some(token) if token_ok(token.as_bytes()) => Ok(()),
                    Some(_) => refuse("wrong bearer token"),
                    None => refuse("Authorization is not `Bearer <token>`"),
                },
            }
        }
        Sender::Harbor => match header(headers, "authorization") {
            None => refuse("no Authorization header (set the webhook's auth header)"),
            Some(value) => {
                let bare = value.trim();
                let ok = token_ok(bare.as_bytes())
                    || strip_bearer(bare).is_some_and(|t| token_ok(t.as_bytes()));
                if ok {
                    Ok(())
                } else {
                    refuse("wrong auth header")
                }
            }
        },
        Sender::DockerHub => {
            let expected = crate::notification::path_token(secret);
            match path_token {
                None => refuse("no token in the URL path (/hook/dockerhub/<token>)"),
                Some(given) => {
                    let digest = hmac::sign(&key, expected.as_bytes());
                    if hmac::verify(&key, given.as_bytes(), digest.as_ref()).is_ok() {
                        Ok(())
                    } else {
                        refuse("wrong token in the URL path")
                    }
                }
            }
        }
    }
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn check_signature(key: &hmac::Key, value: &str, body: &[u8]) -> Result<(), &'static str> {
    let hex_part = value
        .trim()
        .strip_prefix("sha256=")
        .ok_or("the signature is not `sha256=<hex>`")?;
    let tag = unhex(hex_part).ok_or("the signature is not `sha256=<hex>`")?;
    hmac::verify(key, body, &tag).map_err(|_| "the signature does not match the body")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The pushes a notification reports. A valid payload without manifest pushes (pulls, blob
/// uploads, deletions, pings) gives an empty list; a body that is not `sender`'s shape is
/// [`NotificationError::Malformed`]. GitHub needs the `X-GitHub-Event` header; its body may
/// be JSON or a form whose `payload` field is the JSON ([`is_form`]).
pub fn parse(
    sender: Sender,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Vec<Pushed>, NotificationError> {
    let form;
    let json = if sender == Sender::GitHub && is_form(headers) {
        form = url::form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value.into_owned())
            .ok_or_else(|| {
                NotificationError::malformed(sender, "payload", "form field is missing")
            })?;
        form.as_bytes()
    } else {
        body
    };
    let value: Value = serde_json::from_slice(json).map_err(|e| {
        let detail = if e.is_syntax() || e.is_eof() || e.is_io() {
            format!("is not JSON (line {}, column {})", e.line(), e.column())
        } else {
            "is not JSON".to_owned()
        };
        NotificationError::malformed(sender, "body", detail)
    })?;
    let w = Walk { sender };
    match sender {
        Sender::Distribution => w.distribution(&value),
        Sender::Acr => w.acr(&value),
        Sender::Harbor => w.harbor(&value),
        Sender::GitHub => w.github(header(headers, "x-github-event"), &value),
        Sender::DockerHub => w.dockerhub(&value),
    }
}

/// Whether the body is a form (`application/x-www-form-urlencoded`), which GitHub sends when
/// a webhook's content type is left at its default: the JSON is then the `payload` field.
pub fn is_form(headers: &http::HeaderMap) -> bool {
    header(headers, "content-type").is_some_and(|t| {
        t.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// Manifest media types (Docker and OCI); a distribution push of anything else is a blob.
const MANIFEST_TYPES: [&str; 5] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// Field access that reports the sender and field path on failure.
struct Walk {
    sender: Sender,
}

impl Walk {
    fn bad(&self, field: &str, detail: &str) -> NotificationError {
        NotificationError::malformed(self.sender, field, detail)
    }

    fn object<'v>(
        &self,
        v: &'v Value,
        field: &str,
    ) -> Result<&'v Map<String, Value>, NotificationError> {
        let name = if field.is_empty() { "body" } else { field };
        v.as_object()
            .ok_or_else(|| self.bad(name, "must be an object"))
    }

    fn get<'v>(
        &self,
        v: &'v Value,
        field: &str,
        key: &str,
    ) -> Result<&'v Value, NotificationError> {
        let path = join(field, key);
        self.object(v, field)?
            .get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| self.bad(&path, "is missing"))
    }

    fn string<'v>(
        &self,
        v: &'v Value,
        field: &str,
        key: &str,
    ) -> Result<&'v str, NotificationError> {
        self.get(v, field, key)?
            .as_str()
            .ok_or_else(|| self.bad(&join(field, key), "must be a string"))
    }

    /// A string field that may be absent (or null); present with another type is an error.
    fn opt_string<'v>(
        &self,
        v: &'v Value,
        field: &str,
        key: &str,
    ) -> Result<Option<&'v str>, NotificationError> {
        match self.object(v, field)?.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.bad(&join(field, key), "must be a string")),
        }
    }

    fn pushed(
        &self,
        field: &str,
        registry: Option<&str>,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Pushed, NotificationError> {
        let registry = registry
            .filter(|r| !r.is_empty())
            .map(|r| {
                valid_host(r).ok_or_else(|| {
                    self.bad(&join(field, "registry"), "is not a registry host[:port]")
                })
            })
            .transpose()?;
        if !valid_repository(repository) {
            return Err(self.bad(
                &join(field, "repository"),
                "is not a repository path (lower-case a-z, 0-9, `._-/`)",
            ));
        }
        let tag = tag.filter(|t| !t.is_empty());
        if tag.is_some_and(|t| !valid_tag(t)) {
            return Err(self.bad(
                &join(field, "tag"),
                "is not a tag (A-Z, a-z, 0-9, `_.-`, at most 128)",
            ));
        }
        let digest = digest.filter(|d| !d.is_empty());
        if digest.is_some_and(|d| !valid_digest(d)) {
            return Err(self.bad(&join(field, "digest"), "is not a digest (`algorithm:hex`)"));
        }
        Ok(Pushed {
            registry,
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// `{"events": [{action, target {mediaType, digest, repository, url, tag}, request {host}}]}`.
    fn distribution(&self, v: &Value) -> Result<Vec<Pushed>, NotificationError> {
        let events = self
            .get(v, "", "events")?
            .as_array()
            .ok_or_else(|| self.bad("events", "must be an array"))?;
        let mut out = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let field = format!("events[{i}]");
            if let Some(p) = self.registry_event(event, &field, false)? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// One distribution-style event (distribution's envelope entries and ACR's bodies).
    fn registry_event(
        &self,
        event: &Value,
        field: &str,
        acr: bool,
    ) -> Result<Option<Pushed>, NotificationError> {
        let action = self.string(event, field, "action")?;
        let chart_push = acr && action == "chart_push";
        if action != "push" && !chart_push {
            return Ok(None);
        }
        let target_field = join(field, "target");
        let target = self.get(event, field, "target")?;
        let repository = self.string(target, &target_field, "repository")?;
        let mut tag = self.opt_string(target, &target_field, "tag")?;
        let media_type = self
            .opt_string(target, &target_field, "mediaType")?
            .unwrap_or("");
        let url = self.opt_string(target, &target_field, "url")?.unwrap_or("");
        let is_manifest = chart_push
            || (!url.contains("/blobs/")
                && (tag.is_some_and(|t| !t.is_empty())
                    || url.contains("/manifests/")
                    || MANIFEST_TYPES.contains(&media_type)));
        if !is_manifest {
            return Ok(None);
        }
        if chart_push {
            // Legacy ACR Helm repositories: `version` is the chart version plus `.tgz`.
            tag = self
                .opt_string(target, &target_field, "version")?
                .map(|v| v.strip_suffix(".tgz").unwrap_or(v));
        }
        let digest = self.opt_string(target, &target_field, "digest")?;
        let host = match event.get("request") {
            None | Some(Value::Null) => None,
            Some(request) => self.opt_string(request, &join(field, "request"), "host")?,
        };
        self.pushed(field, host, repository, tag, digest).map(Some)
    }

    /// One event object per request: `{action, target, request}`; `push` and `chart_push`.
    fn acr(&self, v: &Value) -> Result<Vec<Pushed>, NotificationError> {
        Ok(self.registry_event(v, "", true)?.into_iter().collect())
    }

    /// Default: `{type: PUSH_ARTIFACT, event_data {resources[] {digest, tag, resource_url},
    /// repository {repo_full_name}}}`; CloudEvents: `{specversion, type: harbor.artifact.pushed,
    /// data {resources, repository}}`.
    fn harbor(&self, v: &Value) -> Result<Vec<Pushed>, NotificationError> {
        let cloud = self.object(v, "")?.contains_key("specversion");
        let kind = self.string(v, "", "type")?;
        let (push, data_key) = if cloud {
            (kind == "harbor.artifact.pushed", "data")
        } else {
            (kind == "PUSH_ARTIFACT", "event_data")
        };
        if !push {
            return Ok(Vec::new());
        }
        let data = self.get(v, "", data_key)?;
        let repo = self.get(data, data_key, "repository")?;
        let repo_field = join(data_key, "repository");
        let repository = self.string(repo, &repo_field, "repo_full_name")?;
        let resources_field = join(data_key, "resources");
        let resources = self
            .get(data, data_key, "resources")?
            .as_array()
            .ok_or_else(|| self.bad(&resources_field, "must be an array"))?;
        let mut out = Vec::new();
        for (i, resource) in resources.iter().enumerate() {
            let field = format!("{resources_field}[{i}]");
            let url = self.string(resource, &field, "resource_url")?;
            let host = url.split_once('/').map(|(h, _)| h);
            // Harbor puts the digest in `tag` when the push named none.
            let tag = self
                .opt_string(resource, &field, "tag")?
                .filter(|t| !t.contains(':'));
            let digest = self.opt_string(resource, &field, "digest")?;
            out.push(self.pushed(&field, host, repository, tag, digest)?);
        }
        Ok(out)
    }

    /// `X-GitHub-Event: package` (`package.package_version`) or `registry_package`
    /// (`registry_package.package_version`), action `published`/`updated`, container packages.
    fn github(&self, event: Option<&str>, v: &Value) -> Result<Vec<Pushed>, NotificationError> {
        let event = event.ok_or_else(|| self.bad("X-GitHub-Event", "header is missing"))?;
        let key = match event {
            "ping" => return Ok(Vec::new()),
            "package" | "registry_package" => event,
            other => {
                return Err(NotificationError::Unsupported {
                    sender: self.sender,
                    event: other.chars().take(64).collect(),
                });
            }
        };
        let action = self.string(v, "", "action")?;
        if action != "published" && action != "updated" {
            return Ok(Vec::new());
        }
        let package = self.get(v, "", key)?;
        let kind = self.string(package, key, "package_type")?;
        if !["container", "docker"]
            .iter()
            .any(|k| kind.eq_ignore_ascii_case(k))
        {
            return Ok(Vec::new());
        }
        let version_field = join(key, "package_version");
        let version = self.get(package, key, "package_version")?;
        let (host, repository) = self.github_location(package, key, version, &version_field)?;
        let meta_field = join(&version_field, "container_metadata");
        let (tag, mut digest) = match version.get("container_metadata") {
            None | Some(Value::Null) => (None, None),
            Some(meta) => match meta.get("tag") {
                None | Some(Value::Null) => (None, None),
                Some(tag) => {
                    let f = join(&meta_field, "tag");
                    (
                        self.opt_string(tag, &f, "name")?,
                        self.opt_string(tag, &f, "digest")?,
                    )
                }
            },
        };
        if digest.is_none_or(str::is_empty) {
            digest = self
                .opt_string(version, &version_field, "version")?
                .filter(|d| d.starts_with("sha256:"));
        }
        let pushed = self.pushed(key, Some(&host), &repository, tag, digest)?;
        Ok(vec![pushed])
    }

    /// Host and repository from `package_url` (`ghcr.io/owner/name:tag`), or else from
    /// `registry.url` (`https://ghcr.io/owner`) and the package name.
    fn github_location(
        &self,
        package: &Value,
        key: &str,
        version: &Value,
        version_field: &str,
    ) -> Result<(String, String), NotificationError> {
        let from_url = self
            .opt_string(version, version_field, "package_url")?
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        let full = if let Some(url) = from_url {
            url
        } else {
            let registry = self.get(package, key, "registry")?;
            let base = self.string(registry, &join(key, "registry"), "url")?;
            let name = self.string(package, key, "name")?;
            format!("{}/{name}", base.trim_end_matches('/'))
        };
        let full = full.to_ascii_lowercase();
        let full = full
            .strip_prefix("https://")
            .or_else(|| full.strip_prefix("http://"))
            .unwrap_or(&full);
        let (host, path) = full.split_once('/').ok_or_else(|| {
            self.bad(
                &join(version_field, "package_url"),
                "has no repository path",
            )
        })?;
        let path = path.split('@').next().unwrap_or(path);
        let path = match path.rsplit_once('/') {
            Some((head, last)) => format!("{head}/{}", last.split(':').next().unwrap_or(last)),
            None => path.split(':').next().unwrap_or(path).to_owned(),
        };
        Ok((host.to_owned(), path))
    }

    /// `{push_data {tag}, repository {repo_name}}`; a one-segment name is `library/<name>`.
    fn dockerhub(&self, v: &Value) -> Result<Vec<Pushed>, NotificationError> {
        let push = self.get(v, "", "push_data")?;
        let tag = self.string(push, "push_data", "tag")?;
        let repo = self.get(v, "", "repository")?;
        let name = self
            .string(repo, "repository", "repo_name")?
            .to_ascii_lowercase();
        let name = if name.contains('/') {
            name
        } else {
            format!("library/{name}")
        };
        Ok(vec![self.pushed(
            "",
            Some("docker.io"),
            &name,
            Some(tag),
            None,
        )?])
    }
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_owned()
    } else {
        format!("{field}.{key}")
    }
}

fn valid_host(host: &str) -> Option<String> {
    let ok = host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then(|| host.to_ascii_lowercase())
}

fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|seg| {
            !seg.is_empty()
                && seg.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
}

fn valid_tag(tag: &str) -> bool {
    tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_digest(digest: &str) -> bool {
    digest.len() <= 200
        && digest.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && !hex.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'_' | b'-'))
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// Whether a ChartSource URL names the pushed repository: only `oci://host[:port]/path`
/// sources can (a Helm HTTP repository or an OCI layout directory is never a push target; a
/// URL with a tag or digest is not a valid source). Hosts compare case-insensitively with
/// `docker.io`, `index.docker.io` and `registry-1.docker.io` as one host, on which a
/// one-segment repository means `library/<name>`. A push without a registry host matches by
/// repository alone.
pub fn matches(source_url: &str, pushed: &Pushed) -> bool {
    let Ok(Location::Oci { host, repository }) = Location::parse(source_url, None, false) else {
        return false;
    };
    let source_host = normalize_host(&host);
    if let Some(registry) = &pushed.registry
        && normalize_host(registry) != source_host
    {
        return false;
    }
    let hub = |r: &str, host: &str| {
        if host == "docker.io" && !r.contains('/') {
            format!("library/{r}")
        } else {
            r.to_owned()
        }
    };
    let pushed_host = pushed
        .registry
        .as_deref()
        .map_or(source_host.clone(), normalize_host);
    hub(&repository, &source_host) == hub(&pushed.repository, &pushed_host)
}

#[cfg(test)]
#[path = "notification_tests.rs"]
mod tests;

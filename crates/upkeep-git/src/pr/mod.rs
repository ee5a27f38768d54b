//! Pull requests for upgrade branches: open one per automation and branch on GitHub, GitLab or
//! Gitea, and on later runs update that same one instead of opening another.
//!
//! Why it is shaped this way:
//! - One entry point, [`ensure_pull_request`], that is idempotent: it looks for an OPEN pull
//!   request from `head` into `base` first and updates it (title, body, labels added, never
//!   removed), and only creates one when none is open. A closed or merged one is left alone, so
//!   the next upgrade after a merge gets a fresh pull request.
//! - One file per provider (`github.rs`, `gitlab.rs`, `gitea.rs`) speaking that provider's
//!   public REST API shapes; the shared HTTP plumbing (`http.rs`) owns timeouts, headers, the
//!   mapping of statuses to [`PrError`] variants and the redaction of the token.
//! - Blocking, like the rest of this crate: it builds a small current-thread Tokio runtime per
//!   call and drives the async reqwest client on it, so callers run it on a plain thread.
//! - The token is a [`Token`] whose `Debug` is redacted and which has no `Display`; it travels
//!   only in a header marked sensitive, and server error bodies are scrubbed of it before they
//!   are quoted in an error.
//! - [`api_base_for`] derives the API base from the Git remote the automation already has, so a
//!   configuration names the provider kind and nothing else.

mod error;
mod gitea;
mod github;
mod gitlab;
mod http;

use std::fmt;
use std::str::FromStr;

pub use error::PrError;

/// Which forge's API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Github,
    Gitlab,
    Gitea,
}

impl ProviderKind {
    /// All kinds, for tables and loops.
    pub const ALL: [Self; 3] = [Self::Github, Self::Gitlab, Self::Gitea];

    /// The lower-case name used in configuration (`github`, `gitlab`, `gitea`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Gitea => "gitea",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = PrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "github" => Ok(Self::Github),
            "gitlab" => Ok(Self::Gitlab),
            "gitea" | "forgejo" => Ok(Self::Gitea),
            _ => Err(PrError::UnknownProvider {
                name: text.to_owned(),
            }),
        }
    }
}

/// An API access token. `Debug` prints `<redacted>`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for Token {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<&str> for Token {
    fn from(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Where pull requests go.
#[derive(Clone)]
pub struct PrTarget {
    pub kind: ProviderKind,
    /// `https://api.github.com`, `https://gitlab.example/api/v4`, `https://gitea.example/api/v1`.
    pub api_base: url::Url,
    /// `owner/name`; on GitLab the full project path (`group/sub/name`).
    pub repository: String,
    pub token: Token,
    /// Extra CA certificate(s), PEM, for self-hosted instances.
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for PrTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrTarget")
            .field("kind", &self.kind)
            .field("api_base", &self.api_base.as_str())
            .field("repository", &self.repository)
            .field("token", &self.token)
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// What the pull request should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRequest {
    /// The branch to merge into.
    pub base: String,
    /// The upgrade branch (in the same repository).
    pub head: String,
    pub title: String,
    pub body: String,
    /// Labels to make sure are on it (added, never removed).
    pub labels: Vec<String>,
}

/// The pull request that is now open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// GitHub/Gitea number, GitLab `iid`.
    pub number: u64,
    /// The page a person opens (`html_url` / `web_url`).
    pub url: String,
    /// `true` when this call opened it, `false` when it updated an open one.
    pub created: bool,
}

/// Opens a pull request from `request.head` into `request.base`, or updates the open one.
///
/// Blocking: call it from a plain thread (or `spawn_blocking`), not from inside an async task.
pub fn ensure_pull_request(target: &PrTarget, request: &PrRequest) -> Result<PullRequest, PrError> {
    let labels = normalized_labels(target.kind, &request.labels)?;
    for (field, value) in [("base", &request.base), ("head", &request.head)] {
        if value.trim().is_empty() {
            return Err(PrError::InvalidRequest {
                field,
                value: value.clone(),
                reason: "must not be empty".to_owned(),
            });
        }
    }
    if request.title.trim().is_empty() {
        return Err(PrError::InvalidRequest {
            field: "title",
            value: request.title.clone(),
            reason: "must not be empty".to_owned(),
        });
    }
    let request = PrRequest {
        labels,
        ..request.clone()
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        // Blocking on a runtime from inside another one would panic; say so instead.
        return Err(PrError::Client {
            what: "ensure_pull_request".to_owned(),
            message:
                "called from inside an async runtime; run it on a plain thread or in spawn_blocking"
                    .to_owned(),
        });
    }
    let api = http::Api::new(target)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PrError::Client {
            what: "starting the HTTP runtime".to_owned(),
            message: e.to_string(),
        })?;
    runtime.block_on(async {
        match target.kind {
            ProviderKind::Github => github::ensure(&api, &target.repository, &request).await,
            ProviderKind::Gitlab => gitlab::ensure(&api, &target.repository, &request).await,
            ProviderKind::Gitea => gitea::ensure(&api, &target.repository, &request).await,
        }
    })
}

/// Trims, drops empty and duplicate labels (first occurrence wins) and refuses what a provider
/// cannot carry.
fn normalized_labels(kind: ProviderKind, labels: &[String]) -> Result<Vec<String>, PrError> {
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for label in labels {
        let label = label.trim();
        if label.is_empty() || out.iter().any(|l| l == label) {
            continue;
        }
        if kind == ProviderKind::Gitlab && label.contains(',') {
            return Err(PrError::InvalidRequest {
                field: "labels",
                value: label.to_owned(),
                reason: "GitLab takes labels as a comma-separated list, so a label cannot contain a comma".to_owned(),
            });
        }
        out.push(label.to_owned());
    }
    Ok(out)
}

/// `owner` and `name` of a two-part repository path.
pub(crate) fn owner_and_name(repository: &str) -> Result<(&str, &str), PrError> {
    match repository.split('/').collect::<Vec<_>>().as_slice() {
        [owner, name] if !owner.is_empty() && !name.is_empty() => Ok((owner, name)),
        _ => Err(PrError::InvalidRequest {
            field: "repository",
            value: repository.to_owned(),
            reason: "must be `owner/name`".to_owned(),
        }),
    }
}

/// Derives the API base URL and the repository path from a Git remote URL.
///
/// `https://`/`http://` remotes keep their scheme and port; `ssh://` and scp-like
/// `git@host:path` remotes become `https://host` (the SSH port says nothing about the web one).
/// GitHub on `github.com` → `https://api.github.com`, other hosts are GitHub Enterprise
/// (`/api/v3`); GitLab → `/api/v4` with the full project path (subgroups allowed); Gitea →
/// `/api/v1`, where path segments before `owner/name` are taken as the sub-path Gitea is
/// served under.
pub fn api_base_for(kind: ProviderKind, git_url: &str) -> Result<(url::Url, String), PrError> {
    let invalid = |reason: &str| PrError::InvalidUrl {
        url: upkeep_core::redact::redact(git_url).into_owned(),
        reason: reason.to_owned(),
    };
    let text = git_url.trim();
    let (scheme, host, port, path) = if let Some((scheme, _)) = text.split_once("://") {
        let parsed = url::Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?
            .to_owned();
        match scheme.to_ascii_lowercase().as_str() {
            "https" | "http" => (
                parsed.scheme().to_owned(),
                host,
                parsed.port(),
                parsed.path().to_owned(),
            ),
            "ssh" | "git+ssh" | "ssh+git" => {
                ("https".to_owned(), host, None, parsed.path().to_owned())
            }
            _ => {
                return Err(invalid(
                    "unsupported scheme (use https://, http://, ssh:// or git@host:path)",
                ));
            }
        }
    } else {
        // scp-like: [user@]host:path — the colon must come before any slash.
        let (before, path) = text
            .split_once(':')
            .ok_or_else(|| invalid("neither a URL nor `git@host:path`"))?;
        if before.contains('/') {
            return Err(invalid("neither a URL nor `git@host:path`"));
        }
        let host = before.rsplit_once('@').map_or(before, |(_, host)| host);
        if host.is_empty() || host.contains(|c: char| c.is_whitespace()) {
            return Err(invalid("no host"));
        }
        ("https".to_owned(), host.to_owned(), None, path.to_owned())
    };
    let trimmed = path.trim_matches('/');
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    let segments: Vec<&str> = trimmed.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(invalid(
            "the repository path is empty or has empty, `.` or `..` segments",
        ));
    }
    let origin = match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    let (base, repository) = match kind {
        ProviderKind::Github => {
            if segments.len() != 2 {
                return Err(invalid("a GitHub repository path is `owner/name`"));
            }
            let base = if host.eq_ignore_ascii_case("github.com")
                || host.eq_ignore_ascii_case("www.github.com")
            {
                "https://api.github.com".to_owned()
            } else {
                format!("{origin}/api/v3")
            };
            (base, segments.join("/"))
        }
        ProviderKind::Gitlab => {
            if segments.len() < 2 {
                return Err(invalid("a GitLab project path is `group[/subgroup…]/name`"));
            }
            (format!("{origin}/api/v4"), segments.join("/"))
        }
        ProviderKind::Gitea => {
            if segments.len() < 2 {
                return Err(invalid("a Gitea repository path is `owner/name`"));
            }
            let split = segments.len() - 2;
            let prefix: String = segments[..split].iter().flat_map(|s| ["/", s]).collect();
            (
                format!("{origin}{prefix}/api/v1"),
                segments[split..].join("/"),
            )
        }
    };
    let base = url::Url::parse(&base).map_err(|e| invalid(&e.to_string()))?;
    Ok((base, repository))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_and_deduplicated() {
        /// (provider, labels given, labels sent or refused, reason)
        type Case = (
            ProviderKind,
            &'static [&'static str],
            Result<&'static [&'static str], ()>,
            &'static str,
        );
        let cases: [Case; 3] = [
            (
                ProviderKind::Github,
                &[" a ", "b", "a", ""],
                Ok(&["a", "b"]),
                "duplicates and blanks would make a provider add a label twice or fail",
            ),
            (
                ProviderKind::Gitlab,
                &["x,y"],
                Err(()),
                "GitLab would read one label with a comma as two",
            ),
            (
                ProviderKind::Gitea,
                &["x,y"],
                Ok(&["x,y"]),
                "Gitea sends label ids, so a comma is fine there",
            ),
        ];
        for (kind, input, want, reason) in cases {
            let input: Vec<String> = input.iter().map(|s| (*s).to_owned()).collect();
            let got = normalized_labels(kind, &input).map_err(|_| ());
            let want = want.map(|w| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            assert_eq!(got, want, "{kind} {input:?}: {reason}");
        }
    }

    #[test]
    fn provider_kinds_parse_from_configuration_names() {
        let cases = [
            ("github", Some(ProviderKind::Github), "the documented name"),
            ("GitLab", Some(ProviderKind::Gitlab), "case does not matter"),
            (
                "forgejo",
                Some(ProviderKind::Gitea),
                "Forgejo speaks Gitea's API",
            ),
            ("bitbucket", None, "not supported: an error, not a guess"),
        ];
        for (input, want, reason) in cases {
            assert_eq!(
                input.parse::<ProviderKind>().ok(),
                want,
                "{input}: {reason}"
            );
        }
    }
}

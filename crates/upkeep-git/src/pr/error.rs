//! Errors of the pull-request providers. Variant names are stable (see [`PrError::label`]) so
//! they can be used as metric labels; messages name the server (`host:port`) and the request
//! (method and path) and quote a short excerpt of the server's answer, scrubbed of the token.
//! No variant ever holds the token; every text field is also redacted when shown
//! ([`upkeep_core::redact`]).

use upkeep_core::redact::redact as r;

/// Everything that can go wrong while opening or updating a pull request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrError {
    /// A Git remote URL that cannot be turned into an API base.
    #[error("cannot derive a pull-request API from `{}`: {}", r(url), r(reason))]
    InvalidUrl { url: String, reason: String },
    /// A provider name that is not one of `github`, `gitlab`, `gitea`.
    #[error("unknown pull-request provider `{}`", r(name))]
    UnknownProvider { name: String },
    /// A field of the request that cannot be sent.
    #[error("invalid pull request {} `{}`: {}", r(field), r(value), r(reason))]
    InvalidRequest {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// The token contains characters an HTTP header cannot carry (the token is not shown).
    #[error("the API token cannot be sent in an HTTP header (it contains control characters)")]
    InvalidToken,
    /// The extra CA certificate could not be read.
    #[error("invalid CA certificate PEM: {}", r(message))]
    InvalidCa { message: String },
    /// The HTTP client or its runtime could not be built.
    #[error("{}: {}", r(what), r(message))]
    Client { what: String, message: String },
    /// 401, or 403 without a rate limit: the token is wrong or lacks a scope.
    #[error(
        "{} refused the token for {} {} (HTTP {status}): {}",
        r(server),
        r(method),
        r(path),
        r(excerpt)
    )]
    Unauthorized {
        server: String,
        method: String,
        path: String,
        status: u16,
        excerpt: String,
    },
    /// 404: the repository (or pull request) does not exist or the token cannot see it.
    #[error(
        "{} answered {} {} with HTTP 404 (not found): {}",
        r(server),
        r(method),
        r(path),
        r(excerpt)
    )]
    NotFound {
        server: String,
        method: String,
        path: String,
        excerpt: String,
    },
    /// 429, or GitHub's 403 with `x-ratelimit-remaining: 0` or a secondary rate limit.
    #[error("{} rate-limited {} {} (HTTP {status}{}): {}", r(server), r(method), r(path), retry_text(*retry_after_secs), r(excerpt))]
    RateLimited {
        server: String,
        method: String,
        path: String,
        status: u16,
        retry_after_secs: Option<u64>,
        excerpt: String,
    },
    /// Any other status that is not a success.
    #[error(
        "{} answered {} {} with HTTP {status}: {}",
        r(server),
        r(method),
        r(path),
        r(excerpt)
    )]
    Http {
        server: String,
        method: String,
        path: String,
        status: u16,
        excerpt: String,
    },
    /// The request did not get an answer: connection refused, TLS failure, timeout, …
    #[error("{} {} to {} failed: {}", r(method), r(path), r(server), r(message))]
    Connect {
        server: String,
        method: String,
        path: String,
        message: String,
    },
    /// A success status with a body that is not what the API documents.
    #[error(
        "{} answered {} {} with an unexpected body: {}",
        r(server),
        r(method),
        r(path),
        r(message)
    )]
    BadResponse {
        server: String,
        method: String,
        path: String,
        message: String,
    },
    /// A label that does not exist in the repository (Gitea takes labels by id).
    #[error(
        "label `{}` does not exist in {} on {}",
        r(label),
        r(repository),
        r(server)
    )]
    UnknownLabel {
        server: String,
        repository: String,
        label: String,
    },
}

fn retry_text(retry_after_secs: Option<u64>) -> String {
    retry_after_secs.map_or_else(String::new, |s| format!(", retry after {s} s"))
}

impl PrError {
    /// The variant name, stable across releases: use it as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "InvalidUrl",
            Self::UnknownProvider { .. } => "UnknownProvider",
            Self::InvalidRequest { .. } => "InvalidRequest",
            Self::InvalidToken => "InvalidToken",
            Self::InvalidCa { .. } => "InvalidCa",
            Self::Client { .. } => "Client",
            Self::Unauthorized { .. } => "Unauthorized",
            Self::NotFound { .. } => "NotFound",
            Self::RateLimited { .. } => "RateLimited",
            Self::Http { .. } => "Http",
            Self::Connect { .. } => "Connect",
            Self::BadResponse { .. } => "BadResponse",
            Self::UnknownLabel { .. } => "UnknownLabel",
        }
    }

    /// A suggested fix, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::InvalidUrl { .. } => Some(
                "use the repository's clone URL: https://host/owner/name(.git), ssh://git@host/owner/name.git or git@host:owner/name.git",
            ),
            Self::UnknownProvider { .. } => Some("use one of: github, gitlab, gitea"),
            Self::InvalidToken => {
                Some("copy the token again without line breaks or other control characters")
            }
            Self::InvalidCa { .. } => Some("give the CA as PEM (-----BEGIN CERTIFICATE-----)"),
            Self::Unauthorized { .. } => Some(
                "check the token and its scopes: GitHub needs `Pull requests: write` (fine-grained) or `repo` (classic), GitLab the `api` scope with Developer role, Gitea `write:repository` and `write:issue`",
            ),
            Self::NotFound { .. } => Some(
                "check the repository path and the API base; forges answer 404 when the token cannot see a private repository",
            ),
            Self::RateLimited { .. } => {
                Some("wait for the rate limit to reset; the next run retries")
            }
            Self::Connect { .. } => Some(
                "check that the API host is reachable from here and, for a self-hosted instance, that its CA is configured",
            ),
            Self::BadResponse { .. } => Some(
                "check that the API base points at the provider's REST API (GitHub Enterprise /api/v3, GitLab /api/v4, Gitea /api/v1)",
            ),
            Self::UnknownLabel { .. } => Some(
                "create the label in the repository (Gitea: Issues → Labels) or remove it from the pull-request settings",
            ),
            Self::InvalidRequest { .. } | Self::Client { .. } | Self::Http { .. } => None,
        }
    }
}

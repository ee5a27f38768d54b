//! Errors of upkeep-git: stable variant names, messages that name what is wrong and the
//! offending text, and a [`GitError::hint`] where a fix can be suggested.
//!
//! No variant carries a credential: HTTP failures name the server (`host:port`), never the
//! `Authorization` header, and URLs with embedded user info are refused up front.

/// Everything that can go wrong in upkeep-git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("invalid remote URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("refusing plain http:// remote `{url}`")]
    InsecureHttp { url: String },
    #[error("{server} refused the credentials (HTTP 401)")]
    Unauthorized { server: String },
    #[error("{url} answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("{url} is not a smart-HTTP Git server (content type `{content_type}`)")]
    NotSmartHttp { url: String, content_type: String },
    #[error("HTTP request to {server} failed: {message}")]
    Http { server: String, message: String },
    #[error("invalid CA certificate PEM: {message}")]
    InvalidCa { message: String },
    #[error("{what}: {message}")]
    Git { what: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("path `{path}` is outside the repository: {reason}")]
    PathEscapes { path: String, reason: String },
    #[error("invalid branch name `{branch}`")]
    InvalidBranch { branch: String },
    #[error("remote branch `origin/{branch}` not found")]
    BranchNotFound { branch: String },
    #[error("push to `{branch}` still rejected after {attempts} attempt(s): {reason}")]
    PushRetriesExhausted {
        branch: String,
        attempts: u32,
        reason: String,
    },
    #[error("{dir} is a clone of `{found}`, not of `{expected}`")]
    RemoteMismatch {
        dir: String,
        expected: String,
        found: String,
    },
}

impl GitError {
    /// A suggested fix, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::InvalidUrl { .. } => Some(
                "use file://, https:// (or http:// with insecure allowed); put credentials in the Auth, not in the URL",
            ),
            Self::InsecureHttp { .. } => {
                Some("use https://, or allow insecure http explicitly for this repository")
            }
            Self::Unauthorized { .. } => Some(
                "check the user name and password or token; a token needs read (and, to push, write) access to the repository",
            ),
            Self::NotSmartHttp { .. } => {
                Some("point the URL at the repository itself (the path that serves info/refs)")
            }
            Self::InvalidCa { .. } => Some("give the CA as PEM (-----BEGIN CERTIFICATE-----)"),
            Self::PathEscapes { .. } => Some(
                "write only relative paths inside the repository, without `..`, `.git` or symlinks leading out",
            ),
            Self::BranchNotFound { .. } => Some("check the branch name, or fetch first"),
            Self::PushRetriesExhausted { .. } => Some(
                "another writer keeps moving the branch, or a server hook refuses the push; the next run tries again",
            ),
            Self::RemoteMismatch { .. } => {
                Some("use another directory, or remove the existing clone")
            }
            _ => None,
        }
    }

    pub(crate) fn git(what: impl Into<String>, error: &git2::Error) -> Self {
        Self::Git {
            what: what.into(),
            message: error.message().to_owned(),
        }
    }
}

//! Errors of upkeep-git: stable variant names, messages that name what is wrong and the
//! offending text, and a [`GitError::hint`] where a fix can be suggested.
//!
//! No variant carries a credential: HTTP failures name the server (`host:port`), never the
//! `Authorization` header, and URLs with embedded user info are refused up front. As a second
//! line, every text field goes through [`upkeep_core::redact::redact`] when the error is shown
//! (a remote URL with `?token=`, an existing clone's remote with a password, a libgit2 message
//! quoting a URL). SSH failures
//! carry the last lines of `ssh`'s own stderr (which names key *files*, never key contents),
//! because "Permission denied (publickey)" or "Host key verification failed" is exactly what
//! the operator needs to read. The hint is a `String` so it can spell out the concrete fix
//! (e.g. the `ssh-keyscan` command for this host, port and known_hosts file).

use upkeep_core::redact::redact as r;

/// Everything that can go wrong in upkeep-git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("invalid remote URL `{}`: {}", r(url), r(reason))]
    InvalidUrl { url: String, reason: String },
    #[error("refusing plain http:// remote `{}`", r(url))]
    InsecureHttp { url: String },
    /// The server refused the credentials: HTTP 401, or ssh's "Permission denied".
    #[error("{} refused the credentials ({})", r(server), r(detail))]
    Unauthorized { server: String, detail: String },
    #[error("{} answered HTTP {status}", r(url))]
    HttpStatus { url: String, status: u16 },
    #[error(
        "{} is not a smart-HTTP Git server (content type `{}`)",
        r(url),
        r(content_type)
    )]
    NotSmartHttp { url: String, content_type: String },
    #[error("HTTP request to {} failed: {}", r(server), r(message))]
    Http { server: String, message: String },
    /// The TLS handshake failed, typically because the server's certificate is not trusted.
    #[error("TLS connection to {} failed: {}", r(server), r(message))]
    Tls { server: String, message: String },
    #[error("invalid CA certificate PEM: {}", r(message))]
    InvalidCa { message: String },
    /// ssh could not verify the server's host key against the known_hosts file.
    #[error(
        "host key of {}:{port} not verified (known hosts: {}): {}",
        r(host),
        r(known_hosts),
        r(message)
    )]
    HostKey {
        host: String,
        port: u16,
        known_hosts: String,
        message: String,
    },
    /// The SSH private key file is missing, unreadable or refused by ssh.
    #[error("SSH key file `{}`: {}", r(path), r(message))]
    SshKey { path: String, message: String },
    /// The `ssh` client is not installed (or the configured program does not exist).
    #[error(
        "`{}` not found: SSH remotes run the system OpenSSH client",
        r(program)
    )]
    SshNotFound { program: String },
    /// ssh or the remote git command failed for another reason.
    #[error("ssh to {} failed: {}", r(server), r(message))]
    Ssh { server: String, message: String },
    #[error("{}: {}", r(what), r(message))]
    Git { what: String, message: String },
    #[error("{}: {}", r(what), r(&source.to_string()))]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("path `{}` is outside the repository: {}", r(path), r(reason))]
    PathEscapes { path: String, reason: String },
    #[error("invalid branch name `{}`", r(branch))]
    InvalidBranch { branch: String },
    #[error("remote branch `origin/{}` not found", r(branch))]
    BranchNotFound { branch: String },
    #[error(
        "push to `{}` still rejected after {attempts} attempt(s): {}",
        r(branch),
        r(reason)
    )]
    PushRetriesExhausted {
        branch: String,
        attempts: u32,
        reason: String,
    },
    /// Another upkeep holds the work tree's lock.
    #[error(
        "another upkeep is working on this checkout ({}); gave up after {waited:?} (lock {})",
        r(holder),
        r(path)
    )]
    Locked {
        path: String,
        holder: String,
        waited: std::time::Duration,
    },
    /// The branch moved between planning and the commit (someone committed meanwhile).
    #[error(
        "{reference} moved from {expected} to {found} while upkeep was committing; nothing was changed"
    )]
    RefMoved {
        reference: String,
        expected: String,
        found: String,
    },
    /// A file to commit changed on disk after it was planned.
    #[error(
        "{} changed on disk after it was planned; nothing was changed",
        r(path)
    )]
    FileChanged { path: String },
    #[error("{} is a clone of `{}`, not of `{}`", r(dir), r(found), r(expected))]
    RemoteMismatch {
        dir: String,
        expected: String,
        found: String,
    },
}

impl GitError {
    /// A suggested fix, when there is one.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            Self::InvalidUrl { .. } => {
                "use file://, https:// (or http:// with insecure allowed), ssh://[user@]host[:port]/path or user@host:path; put passwords in the Auth, not in the URL"
            }
            Self::InsecureHttp { .. } => {
                "use https://, or allow insecure http explicitly for this repository"
            }
            Self::Unauthorized { .. } => {
                "HTTP: check the user name and password or token (it needs read and, to push, write access); SSH: check the key file and that its public key is authorized for this user on the server (with write access to push)"
            }
            Self::NotSmartHttp { .. } => {
                "point the URL at the repository itself (the path that serves info/refs)"
            }
            Self::Tls { .. } => {
                "if the server's certificate is signed by a private CA, give that CA as PEM (Auth::with_ca_pem, the repository's CA setting); otherwise check the host name and the server's certificate"
            }
            Self::InvalidCa { .. } => "give the CA as PEM (-----BEGIN CERTIFICATE-----)",
            Self::HostKey {
                host,
                port,
                known_hosts,
                ..
            } => {
                return Some(format!(
                    "add the server's host key to the known_hosts file, after comparing its fingerprint with the one the server's admin publishes: `ssh-keyscan -p {port} {host} >> {known_hosts}`; a key that changed unexpectedly may be an attack"
                ));
            }
            Self::SshKey { .. } => {
                "give the path of an existing, passphrase-less private key file readable only by this user (chmod 600)"
            }
            Self::SshNotFound { .. } => {
                "install the OpenSSH client (Debian/Ubuntu: `apt-get install openssh-client`)"
            }
            Self::Ssh { .. } => {
                "read ssh's message above: check the host, port and repository path (absolute on the server)"
            }
            Self::PathEscapes { .. } => {
                "write only relative paths inside the repository, without `..`, `.git` or symlinks leading out"
            }
            Self::BranchNotFound { .. } => "check the branch name, or fetch first",
            Self::PushRetriesExhausted { .. } => {
                "another writer keeps moving the branch, or a server hook refuses the push; the next run tries again"
            }
            Self::RemoteMismatch { .. } => "use another directory, or remove the existing clone",
            Self::Locked { .. } => {
                "wait for the other run to finish (the lock is freed when it exits, even if it is killed)"
            }
            Self::RefMoved { .. } | Self::FileChanged { .. } => {
                "run again: upkeep plans on what the checkout holds now"
            }
            _ => return None,
        };
        Some(text.to_owned())
    }

    pub(crate) fn git(what: impl Into<String>, error: &git2::Error) -> Self {
        Self::Git {
            what: what.into(),
            message: error.message().to_owned(),
        }
    }
}

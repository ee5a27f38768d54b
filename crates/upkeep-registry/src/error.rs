//! Typed errors for tag discovery.
//!
//! Variant names are stable: they become status condition reasons and metric labels, so they
//! are never renamed. Every network variant names the server and the request (method and URL).
//! Messages from servers are kept short (a bounded excerpt) and never include response bodies
//! of token endpoints. Every text field is passed through [`upkeep_core::redact::redact`] when
//! the error is displayed, whoever built it: a location from a manifest may carry userinfo or a
//! `?token=`, a server may echo the `Authorization` header, a library's error chain may quote
//! the URL.

use std::path::PathBuf;
use std::time::Duration;

use upkeep_core::redact::redact as r;

/// Everything that can go wrong while discovering tags.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// 401: no or wrong credentials.
    #[error(
        "{}: {} answered 401 Unauthorized{}",
        r(request),
        r(server),
        suffix(detail)
    )]
    Unauthorized {
        server: String,
        request: String,
        detail: String,
    },
    /// 403: credentials accepted but not allowed to read this repository.
    #[error(
        "{}: {} answered 403 Forbidden{}",
        r(request),
        r(server),
        suffix(detail)
    )]
    Forbidden {
        server: String,
        request: String,
        detail: String,
    },
    /// 404: repository, chart, tag or index not found.
    #[error(
        "{}: {} answered 404 Not Found{}",
        r(request),
        r(server),
        suffix(detail)
    )]
    NotFound {
        server: String,
        request: String,
        detail: String,
    },
    /// 429 after the last retry.
    #[error("{}: {} rate-limited the request (429) and retries are exhausted{}", r(request), r(server), retry_suffix(*retry_after))]
    RateLimited {
        server: String,
        request: String,
        retry_after: Option<Duration>,
    },
    /// A request, or the whole listing, took longer than allowed.
    #[error("{}: {} did not answer within {}", r(request), r(server), fmt_duration(*after))]
    Timeout {
        server: String,
        request: String,
        after: Duration,
    },
    /// The connection could not be made (DNS, refused, reset).
    #[error("{}: cannot connect to {}: {}", r(request), r(server), r(detail))]
    Connect {
        server: String,
        request: String,
        detail: String,
    },
    /// TLS handshake or certificate verification failed.
    #[error("{}: TLS with {} failed: {}", r(request), r(server), r(detail))]
    Tls {
        server: String,
        request: String,
        detail: String,
    },
    /// Any other unexpected HTTP status (5xx after the last retry, 400, …).
    #[error(
        "{}: {} answered HTTP {status}{}",
        r(request),
        r(server),
        suffix(detail)
    )]
    Status {
        server: String,
        request: String,
        status: u16,
        detail: String,
    },
    /// The server answered, but the answer makes no sense (bad JSON/YAML, pagination loop, …).
    #[error("{}: invalid response from {}: {}", r(request), r(server), r(detail))]
    InvalidResponse {
        server: String,
        request: String,
        detail: String,
    },
    /// A response (or the tag list as a whole) exceeded its size cap.
    #[error(
        "{}: response from {} exceeds the limit of {limit} {unit}",
        r(request),
        r(server)
    )]
    TooLarge {
        server: String,
        request: String,
        limit: u64,
        unit: &'static str,
    },
    /// The source location cannot be understood or is not allowed.
    #[error("invalid source location `{}`: {}", r(location), r(detail))]
    InvalidLocation { location: String, detail: String },
    /// An option (exclusion regex, CA bundle, …) is invalid.
    #[error("invalid option {}: {}", r(option), r(detail))]
    InvalidOption { option: String, detail: String },
    /// Docker's `config.json` could not be read or parsed.
    #[error("credentials file {}: {}", r(path), r(detail))]
    Credentials { path: String, detail: String },
    /// A `docker-credential-<helper>` failed.
    #[error(
        "credential helper `docker-credential-{}` for {}: {}",
        r(helper),
        r(server),
        r(detail)
    )]
    CredentialHelper {
        helper: String,
        server: String,
        detail: String,
    },
    /// Reading a local file (OCI layout, CA bundle) failed.
    #[error("{}: {}", r(&path.display().to_string()), r(detail))]
    Io { path: PathBuf, detail: String },
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {}", r(detail))
    }
}

fn retry_suffix(after: Option<Duration>) -> String {
    match after {
        Some(d) => format!(" (server asked to wait {})", fmt_duration(d)),
        None => String::new(),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl RegistryError {
    /// The stable name of the variant (for status conditions and metric labels).
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::Unauthorized { .. } => "Unauthorized",
            RegistryError::Forbidden { .. } => "Forbidden",
            RegistryError::NotFound { .. } => "NotFound",
            RegistryError::RateLimited { .. } => "RateLimited",
            RegistryError::Timeout { .. } => "Timeout",
            RegistryError::Connect { .. } => "Connect",
            RegistryError::Tls { .. } => "Tls",
            RegistryError::Status { .. } => "Status",
            RegistryError::InvalidResponse { .. } => "InvalidResponse",
            RegistryError::TooLarge { .. } => "TooLarge",
            RegistryError::InvalidLocation { .. } => "InvalidLocation",
            RegistryError::InvalidOption { .. } => "InvalidOption",
            RegistryError::Credentials { .. } => "Credentials",
            RegistryError::CredentialHelper { .. } => "CredentialHelper",
            RegistryError::Io { .. } => "Io",
        }
    }

    /// Whether retrying later may help (transient) as opposed to a spec or credential problem.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::RateLimited { .. }
            | RegistryError::Timeout { .. }
            | RegistryError::Connect { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// A suggestion for fixing the problem, where one exists.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            RegistryError::Unauthorized { server, .. } => format!(
                "check the credentials for {server} (secretRef / Docker config.json `auths`, or `docker login {server}`)"
            ),
            RegistryError::Forbidden { .. } => {
                "the credentials were accepted but lack pull access to this repository".to_owned()
            }
            RegistryError::NotFound { .. } => {
                "check the repository path, chart name and registry host in the source URL"
                    .to_owned()
            }
            RegistryError::RateLimited { .. } => {
                "the registry limits requests; scan less often (a longer interval) or authenticate for a higher limit"
                    .to_owned()
            }
            RegistryError::Timeout { .. } => {
                "the registry is slow or unreachable; raise the source's `timeout` or try again later"
                    .to_owned()
            }
            RegistryError::Connect { server, .. } => {
                format!("check that {server} is reachable from here (DNS, firewall, proxy)")
            }
            RegistryError::Tls { detail, .. }
                if detail.contains("corrupt message") || detail.contains("InvalidContentType") =>
            {
                "the server does not speak TLS: if it is a plain-HTTP registry, set `insecure: true` (or pass --insecure)"
                    .to_owned()
            }
            RegistryError::Tls { .. } => {
                "if the registry uses a private CA, give its certificate (certSecretRef / --ca-file); use `insecure` only for plain-HTTP registries"
                    .to_owned()
            }
            RegistryError::Status { status, .. } if *status >= 500 => {
                "the registry failed; try again later".to_owned()
            }
            RegistryError::TooLarge { .. } => {
                "the response is larger than allowed; raise the size limit if this is expected"
                    .to_owned()
            }
            RegistryError::InvalidLocation { detail, .. } if detail.contains("credentials") => {
                "remove the user and password from the URL and give them as registry credentials: a Docker config.json (`--docker-config`, or `docker login HOST`), or in the cluster a `kubernetes.io/dockerconfigjson` Secret named by the ChartSource's `spec.secretRef`"
                    .to_owned()
            }
            RegistryError::InvalidLocation { detail, .. } if detail.contains("plain HTTP") => {
                "set `insecure: true` (or pass --insecure) to allow plain HTTP".to_owned()
            }
            RegistryError::InvalidLocation { .. } => {
                "use oci://host[:port]/path/chart, https://host/path with a chart name, or oci-layout:<dir>"
                    .to_owned()
            }
            RegistryError::InvalidOption { option, .. } if option.contains("exclusion") => {
                "exclusion entries are regular expressions, e.g. `^.*\\.sig$`".to_owned()
            }
            RegistryError::CredentialHelper { helper, detail, .. }
                if detail.contains("not found") =>
            {
                format!("install `docker-credential-{helper}` on PATH, or remove it from config.json")
            }
            RegistryError::Credentials { .. } => {
                "the file must be Docker's config.json: {\"auths\": {\"host\": {\"auth\": \"base64(user:password)\"}}}"
                    .to_owned()
            }
            _ => return None,
        })
    }
}

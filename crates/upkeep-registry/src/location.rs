//! Source locations: the three URL forms a ChartSource may use.
//!
//! Parsed by hand rather than with `url::Url` for `oci://` because OCI references are not
//! URLs (no query, no userinfo, repository paths must be lower case) and a clear message for
//! `oci://host/chart:1.0` (a tag where a repository belongs) is worth more than a generic one.
//!
//! Credentials in a location (`oci://user:pass@host/…`, `https://user:pass@…`) are refused
//! with a hint to move them into a Docker config or the ChartSource's `secretRef`, and never
//! printed: the location in the error is redacted. A `?token=` in a Helm repository URL is
//! kept (some repositories authenticate that way) and redacted wherever the URL is shown.

use std::path::PathBuf;

use upkeep_core::redact::redact;
use url::Url;

use crate::error::RegistryError;

/// Where tags come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `oci://host[:port]/path/chart`.
    Oci {
        /// `host[:port]`.
        host: String,
        /// Repository path, e.g. `charts/podinfo`.
        repository: String,
    },
    /// A Helm HTTP repository (`https://…`, or `http://…` when insecure) and a chart name.
    Helm { url: Url, chart: String },
    /// An OCI image-layout directory (`oci-layout:<dir>`).
    Layout { dir: PathBuf },
}

impl Location {
    /// Parses a source URL. `chart` is required for Helm repositories and optional for
    /// layouts (it then filters `ref.name`s of the form `chart:tag`); it is an error for OCI.
    pub fn parse(
        location: &str,
        chart: Option<&str>,
        insecure: bool,
    ) -> Result<Self, RegistryError> {
        let bad = |detail: String| RegistryError::InvalidLocation {
            location: redact(location).into_owned(),
            detail: redact(&detail).into_owned(),
        };
        let with_credentials = || {
            RegistryError::InvalidLocation {
            location: without_userinfo(location),
            detail: "credentials in the URL are refused (they would end up in logs and status); use a Docker config / secretRef".to_owned(),
        }
        };
        let chart = chart.map(str::trim).filter(|c| !c.is_empty());
        let loc = location.trim();
        if let Some(rest) = loc.strip_prefix("oci://") {
            let (host, repo) = rest
                .split_once('/')
                .ok_or_else(|| bad("no repository path after the host".to_owned()))?;
            let repo = repo.trim_end_matches('/');
            // `user:pa/ss@host`: a raw `/` in the password makes the "host" `user:pa`.
            let odd_port = host
                .split_once(':')
                .is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit()));
            if host.contains('@') || (odd_port && repo.contains('@')) {
                return Err(with_credentials());
            }
            if host.is_empty() || host.contains(['?', '#', ' ']) {
                return Err(bad(format!("`{host}` is not a registry host")));
            }
            if repo.is_empty() {
                return Err(bad("no repository path after the host".to_owned()));
            }
            if let Some(i) = repo.find(['@', ':']) {
                return Err(bad(format!(
                    "`{}` looks like a tag or digest; give the repository only (tags are listed)",
                    &repo[i..]
                )));
            }
            if let Some(seg) = repo.split('/').find(|s| {
                s.is_empty()
                    || !s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            }) {
                return Err(bad(format!(
                    "repository path segment `{seg}` must be lower-case letters, digits, `.`, `_` or `-`"
                )));
            }
            if let Some(c) = chart
                && !repo.ends_with(c)
            {
                return Err(bad(format!(
                    "chart `{c}` is set, but OCI sources name the chart in the path; use oci://{host}/{repo}/{c}"
                )));
            }
            return Ok(Location::Oci {
                host: host.to_ascii_lowercase(),
                repository: repo.to_owned(),
            });
        }
        if let Some(rest) = loc.strip_prefix("oci-layout:") {
            let dir = rest.strip_prefix("//").unwrap_or(rest);
            if dir.is_empty() {
                return Err(bad("oci-layout: needs a directory".to_owned()));
            }
            return Ok(Location::Layout {
                dir: PathBuf::from(dir),
            });
        }
        if loc.starts_with("https://") || loc.starts_with("http://") {
            let url = Url::parse(loc).map_err(|e| {
                if loc
                    .split(['/', '?', '#'])
                    .nth(2)
                    .is_some_and(|a| a.contains('@'))
                {
                    with_credentials()
                } else {
                    bad(format!("not a URL: {e}"))
                }
            })?;
            if url.scheme() == "http" && !insecure {
                return Err(bad(
                    "plain HTTP is refused unless the source is insecure".to_owned()
                ));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(with_credentials());
            }
            let chart = chart.ok_or_else(|| {
                bad("a Helm repository needs a chart name (spec.chart / --chart)".to_owned())
            })?;
            return Ok(Location::Helm {
                url,
                chart: chart.to_owned(),
            });
        }
        Err(bad(
            "unknown scheme; expected oci://, https:// or oci-layout:".to_owned(),
        ))
    }
}

/// `location` with everything between `://` and the `@` that ends the userinfo replaced, for a
/// location known to carry credentials: the userinfo ends at the last `@` before the first `/`
/// that follows the first `@`, so a password with a raw `/`, `@` or space goes whole.
fn without_userinfo(location: &str) -> String {
    let (scheme, rest) = location
        .trim()
        .split_once("://")
        .unwrap_or(("", location.trim()));
    let Some(first) = rest.find('@') else {
        return redact(location).into_owned();
    };
    let slash = rest[first..].find('/').map_or(rest.len(), |i| first + i);
    let at = rest[..slash].rfind('@').unwrap_or(first);
    redact(&format!(
        "{scheme}://{}@{}",
        upkeep_core::redact::REDACTED,
        &rest[at + 1..]
    ))
    .into_owned()
}

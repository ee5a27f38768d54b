//! One interface over the three kinds of source, and OCI tag pagination.
//!
//! We talk the distribution API directly (not `oci-client`) because listing needs control
//! that client does not give: following `Link` headers (relative or absolute) and falling
//! back to `last=`, detecting pagination loops, caps on pages and tags, 429/`Retry-After`,
//! streaming size caps, and a per-host connection bound shared by many repositories.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use regex::Regex;
use serde::Deserialize;
use tokio::sync::OnceCell;
use upkeep_core::redact::redact;
use url::Url;

use crate::auth::Credentials;
use crate::error::RegistryError;
use crate::helm;
use crate::layout;
use crate::location::Location;
use crate::transport::{Client, Endpoint, describe, host_of};

/// The most tags (OCI) or versions of a chart (Helm index) a listing accepts by default
/// ([`SourceOptions::max_tags`]): far above any real repository, low enough that a hostile one
/// cannot make a scan hold an unbounded list.
pub const MAX_TAGS: usize = 1_000_000;

/// A CA bundle for registries with a private CA.
#[derive(Clone, Debug)]
pub enum CaBundle {
    Pem(Vec<u8>),
    File(PathBuf),
}

/// Size caps, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct SizeLimits {
    /// One `tags/list` page. Default 32 MiB.
    pub tags_page: u64,
    /// A Helm `index.yaml`. Default 128 MiB.
    pub index: u64,
    /// A manifest, OCI layout `index.json` or manifest blob. Default 4 MiB.
    pub manifest: u64,
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits {
            tags_page: 32 << 20,
            index: 128 << 20,
            manifest: 4 << 20,
        }
    }
}

/// Per-source options (the ChartSource spec's knobs).
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// Allow plain HTTP (`oci://` is then spoken over `http://`; `http://` Helm URLs allowed).
    pub insecure: bool,
    pub ca: Option<CaBundle>,
    /// One request, including reading its body. Default 30 s.
    pub request_timeout: Duration,
    /// The whole `list_tags` call, retries included. Default 120 s.
    pub timeout: Duration,
    /// Tags matching any of these are dropped. Default `^.*\.sig$`.
    pub exclusions: Vec<String>,
    /// `n` for `tags/list`; `None` lets the registry choose. Default 1000.
    pub page_size: Option<u32>,
    /// Most pages followed. Default 10,000.
    pub max_pages: usize,
    /// Most tags accepted (before exclusions), and most versions of a chart read from a Helm
    /// index. Default [`MAX_TAGS`] (1,000,000).
    pub max_tags: usize,
    pub limits: SizeLimits,
    /// Relative `oci-layout:` directories are resolved against this.
    pub base_dir: Option<PathBuf>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            insecure: false,
            ca: None,
            request_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(120),
            exclusions: vec![r"^.*\.sig$".to_owned()],
            page_size: Some(1000),
            max_pages: 10_000,
            max_tags: MAX_TAGS,
            limits: SizeLimits::default(),
            base_dir: None,
        }
    }
}

/// A tag and, when the source told us cheaply, when it was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub created: Option<Timestamp>,
}

/// The result of listing a source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagList {
    /// Tags after exclusions, in the source's order, without duplicates.
    pub tags: Vec<Tag>,
    /// How many tags the exclusion list removed.
    pub excluded: usize,
    /// Requests (pages) it took; 0 for OCI layouts.
    pub pages: usize,
}

impl TagList {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(|t| t.name.as_str())
    }
}

enum Kind {
    Oci {
        ep: Endpoint,
        base: Url,
        repository: String,
    },
    Helm {
        ep: Endpoint,
        index: Url,
        chart: String,
    },
    Layout {
        dir: PathBuf,
        chart: Option<String>,
    },
}

/// A configured source of tags.
pub struct Source {
    key: String,
    kind: Kind,
    exclusions: Vec<Regex>,
    options: SourceOptions,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// Builds a source from its settings. `chart` is required for Helm repositories and
    /// optional for layouts.
    pub fn new(
        client: &Client,
        location: &str,
        chart: Option<&str>,
        options: SourceOptions,
        credentials: &Credentials,
    ) -> Result<Self, RegistryError> {
        let loc = Location::parse(location, chart, options.insecure)?;
        let exclusions = options
            .exclusions
            .iter()
            .map(|p| {
                Regex::new(p).map_err(|e| RegistryError::InvalidOption {
                    option: format!("exclusion `{p}`"),
                    detail: e.to_string().lines().last().unwrap_or("").trim().to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let endpoint = |client: &Client| -> Result<Endpoint, RegistryError> {
            let ca = match &options.ca {
                None => None,
                Some(CaBundle::Pem(p)) => Some(p.clone()),
                Some(CaBundle::File(f)) => {
                    Some(std::fs::read(f).map_err(|e| RegistryError::Io {
                        path: f.clone(),
                        detail: format!("cannot read CA bundle: {e}"),
                    })?)
                }
            };
            Ok(Endpoint {
                client: client.clone(),
                http: client.pool(ca.as_deref())?,
                credentials: credentials.clone(),
                resolved: OnceCell::new(),
                request_timeout: options.request_timeout,
                insecure: options.insecure,
            })
        };
        let (key, kind) = match loc {
            Location::Oci { host, repository } => {
                let scheme = if options.insecure { "http" } else { "https" };
                // Docker Hub's API lives on another host than its name (as Docker resolves it).
                let api_host = match host.as_str() {
                    "docker.io" | "index.docker.io" => "registry-1.docker.io",
                    h => h,
                };
                let base = Url::parse(&format!("{scheme}://{api_host}/")).map_err(|e| {
                    RegistryError::InvalidLocation {
                        location: redact(location).into_owned(),
                        detail: format!("`{host}` is not a valid host: {e}"),
                    }
                })?;
                (
                    format!("oci://{host}/{repository}"),
                    Kind::Oci {
                        ep: endpoint(client)?,
                        base,
                        repository,
                    },
                )
            }
            Location::Helm { url, chart } => {
                let index = if url.path().to_ascii_lowercase().ends_with(".yaml") {
                    url.clone()
                } else {
                    let mut u = url.clone();
                    let path = format!("{}/index.yaml", u.path().trim_end_matches('/'));
                    u.set_path(&path);
                    u
                };
                (
                    // The key names the source in messages and in the first-seen store: a
                    // `?token=` in the URL must not end up there.
                    format!("{}#{chart}", redact(url.as_str().trim_end_matches('/'))),
                    Kind::Helm {
                        ep: endpoint(client)?,
                        index,
                        chart,
                    },
                )
            }
            Location::Layout { dir } => {
                let dir = match &options.base_dir {
                    Some(b) if dir.is_relative() => b.join(dir),
                    _ => dir,
                };
                (
                    format!("oci-layout:{}", dir.display()),
                    Kind::Layout {
                        dir,
                        chart: chart.map(str::to_owned),
                    },
                )
            }
        };
        Ok(Source {
            key,
            kind,
            exclusions,
            options,
        })
    }

    /// A stable key for first-seen records: `oci://host/repo`, `<helm url>#<chart>`,
    /// `oci-layout:<dir>`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// `host[:port]` for network sources.
    pub fn host(&self) -> Option<String> {
        match &self.kind {
            Kind::Oci { base, .. } => Some(host_of(base)),
            Kind::Helm { index, .. } => Some(host_of(index)),
            Kind::Layout { .. } => None,
        }
    }

    pub fn options(&self) -> &SourceOptions {
        &self.options
    }

    /// Lists all tags, within the overall timeout ([`SourceOptions::timeout`]): requests,
    /// retries, reading bodies and parsing a Helm index all end at it.
    pub async fn list_tags(&self) -> Result<TagList, RegistryError> {
        let deadline = Instant::now() + self.options.timeout;
        let fut = async {
            match &self.kind {
                Kind::Oci {
                    ep,
                    base,
                    repository,
                } => self.list_oci(ep, base, repository).await,
                Kind::Helm { ep, index, chart } => self.list_helm(ep, index, chart, deadline).await,
                Kind::Layout { dir, chart } => {
                    let dir = dir.clone();
                    let chart = chart.clone();
                    let cap = self.options.limits.manifest;
                    let entries = tokio::task::spawn_blocking(move || {
                        layout::list(&dir, chart.as_deref(), cap)
                    })
                    .await
                    .map_err(|e| RegistryError::Io {
                        path: PathBuf::from(&self.key),
                        detail: format!("reading the layout failed: {e}"),
                    })??;
                    let mut list = TagList::default();
                    self.collect(&mut list, entries);
                    Ok(list)
                }
            }
        };
        match tokio::time::timeout_at(deadline.into(), fut).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> RegistryError {
        RegistryError::Timeout {
            server: self.host().unwrap_or_else(|| self.key.clone()),
            request: format!("list tags of {}", self.key),
            after: self.options.timeout,
        }
    }

    fn excluded(&self, tag: &str) -> bool {
        self.exclusions.iter().any(|r| r.is_match(tag))
    }

    fn collect(&self, list: &mut TagList, entries: Vec<(String, Option<Timestamp>)>) {
        let mut seen = HashSet::with_capacity(entries.len());
        for (name, created) in entries {
            if self.excluded(&name) {
                list.excluded += 1;
            } else if seen.insert(hash_str(&name)) {
                list.tags.push(Tag { name, created });
            }
        }
    }

    async fn list_helm(
        &self,
        ep: &Endpoint,
        index: &Url,
        chart: &str,
        deadline: Instant,
    ) -> Result<TagList, RegistryError> {
        let fetched = ep
            .get(
                index,
                "application/x-yaml, text/yaml, */*",
                self.options.limits.index,
                None,
            )
            .await?;
        // Parsing a large index takes a while: off the async threads, and within the same
        // deadline as the whole listing (the parser stops at it, so no thread is left behind
        // when the listing times out).
        let limits = helm::IndexLimits {
            max_versions: self.options.max_tags,
            deadline: Some(deadline),
        };
        let body = fetched.body;
        let name = chart.to_owned();
        let parsed =
            tokio::task::spawn_blocking(move || helm::parse_index_with(&body, &name, &limits))
                .await
                .map_err(|e| RegistryError::InvalidResponse {
                    server: host_of(index),
                    request: describe(index),
                    detail: format!("reading index.yaml failed: {e}"),
                })?;
        let entries = parsed
            .map_err(|e| match e {
                helm::IndexError::TooManyVersions { limit } => RegistryError::TooLarge {
                    server: host_of(index),
                    request: describe(index),
                    limit: limit as u64,
                    unit: "versions of the chart",
                },
                helm::IndexError::Deadline => self.timed_out(),
                e => RegistryError::InvalidResponse {
                    server: host_of(index),
                    request: describe(index),
                    detail: format!("index.yaml: {e}"),
                },
            })?
            .ok_or_else(|| RegistryError::NotFound {
                server: host_of(index),
                request: describe(index),
                detail: format!("chart `{chart}` is not in the index"),
            })?;
        let mut list = TagList {
            pages: 1,
            ..TagList::default()
        };
        self.collect(
            &mut list,
            entries
                .into_iter()
                .map(|e| (e.version, e.created))
                .collect(),
        );
        Ok(list)
    }

    async fn list_oci(
        &self,
        ep: &Endpoint,
        base: &Url,
        repository: &str,
    ) -> Result<TagList, RegistryError> {
        let scope = format!("repository:{repository}:pull");
        let tags_url = |last: Option<&str>| -> Url {
            let mut u = base.clone();
            u.set_path(&format!("/v2/{repository}/tags/list"));
            {
                let mut q = u.query_pairs_mut();
                if let Some(n) = self.options.page_size {
                    q.append_pair("n", &n.to_string());
                }
                if let Some(l) = last {
                    q.append_pair("last", l);
                }
            }
            if u.query() == Some("") {
                u.set_query(None);
            }
            u
        };
        let mut url = tags_url(None);
        let mut visited: HashSet<String> = HashSet::new();
        visited.insert(url.to_string());
        let mut all: Vec<String> = Vec::new();
        // Hashes of tags seen so far: pages may overlap, and a registry that ignores `last=`
        // answers the same page again, which ends the listing rather than looping.
        let mut seen_tags: HashSet<u64> = HashSet::new();
        let mut by_last = false;
        // A registry that paginates with `Link` omits it on the last page: once one was seen,
        // a page without it is the end (no `last=` probe, which would cost a request).
        let mut links_seen = false;
        let mut pages = 0usize;
        loop {
            pages += 1;
            if pages > self.options.max_pages {
                return Err(RegistryError::TooLarge {
                    server: host_of(base),
                    request: describe(&url),
                    limit: self.options.max_pages as u64,
                    unit: "pages",
                });
            }
            let fetched = ep
                .get(
                    &url,
                    "application/json",
                    self.options.limits.tags_page,
                    Some(&scope),
                )
                .await?;
            let page: TagsPage = serde_json::from_slice(&fetched.body).map_err(|e| {
                RegistryError::InvalidResponse {
                    server: host_of(&url),
                    request: describe(&url),
                    detail: format!("tags/list is not JSON {{\"tags\": [...]}}: {e}"),
                }
            })?;
            let got = page.tags.unwrap_or_default();
            if got.is_empty() {
                break;
            }
            let count = got.len();
            if all.len() + count > self.options.max_tags {
                return Err(RegistryError::TooLarge {
                    server: host_of(base),
                    request: describe(&url),
                    limit: self.options.max_tags as u64,
                    unit: "tags",
                });
            }
            let last_tag = got.last().cloned().unwrap_or_default();
            let before = all.len();
            all.extend(got.into_iter().filter(|t| seen_tags.insert(hash_str(t))));
            if by_last && all.len() == before {
                break;
            }
            let link = fetched
                .headers
                .get_all(http::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(parse_link_next);
            let next = match link {
                Some(l) => {
                    let next = url.join(&l).map_err(|e| RegistryError::InvalidResponse {
                        server: host_of(&url),
                        request: describe(&url),
                        detail: format!("Link `{l}` is not a URL: {e}"),
                    })?;
                    if next.scheme() != base.scheme() || host_of(&next) != host_of(base) {
                        return Err(RegistryError::InvalidResponse {
                            server: host_of(&url),
                            request: describe(&url),
                            detail: format!(
                                "Link `{l}` points to another host; refusing to follow it"
                            ),
                        });
                    }
                    by_last = false;
                    links_seen = true;
                    next
                }
                // No Link: a full page may mean the registry paginates without telling.
                None if !links_seen
                    && self.options.page_size.is_some_and(|n| n as usize == count) =>
                {
                    by_last = true;
                    tags_url(Some(&last_tag))
                }
                None => break,
            };
            if !visited.insert(next.to_string()) {
                return Err(RegistryError::InvalidResponse {
                    server: host_of(&url),
                    request: describe(&url),
                    detail: format!("pagination loop: {next} was already requested"),
                });
            }
            url = next;
        }
        let mut list = TagList {
            pages,
            ..TagList::default()
        };
        self.collect(&mut list, all.into_iter().map(|t| (t, None)).collect());
        Ok(list)
    }

    /// The image name Flux's `:name` setter writes for this source: `host/repository` of an
    /// `oci://` location, as written there (`docker.io` is not expanded to the API host);
    /// `None` for Helm repositories and OCI layout directories, which have no image name.
    pub fn image_name(&self) -> Option<String> {
        match &self.kind {
            Kind::Oci { .. } => self.key.strip_prefix("oci://").map(str::to_owned),
            _ => None,
        }
    }

    /// The manifest digest of `tag` (`sha256:…`), as Flux reflects it:
    ///
    /// - OCI registries: `HEAD /v2/<repository>/manifests/<tag>` accepting OCI and Docker
    ///   manifests and indexes ([`MANIFEST_ACCEPT`]); the `Docker-Content-Digest` header. When
    ///   the registry sends none (or refuses `HEAD`), the manifest is fetched and its SHA-256 is
    ///   the digest, as the distribution spec defines it.
    /// - OCI layouts: the digest of the tag's descriptor in `index.json`.
    /// - Helm repositories: `Ok(None)` (charts there have no manifest).
    ///
    /// `Ok(None)` also when a layout has no such tag. A digest that is not `sha256:<64 hex>`
    /// (or `sha512:<128 hex>`) is an [`RegistryError::InvalidResponse`], never passed on.
    pub async fn digest_for(&self, tag: &str) -> Result<Option<String>, RegistryError> {
        let deadline = Instant::now() + self.options.timeout;
        let fut = async {
            match &self.kind {
                Kind::Oci {
                    ep,
                    base,
                    repository,
                } => self.oci_digest(ep, base, repository, tag).await.map(Some),
                Kind::Helm { .. } => Ok(None),
                Kind::Layout { dir, chart } => {
                    let dir = dir.clone();
                    let chart = chart.clone();
                    let tag = tag.to_owned();
                    let cap = self.options.limits.manifest;
                    tokio::task::spawn_blocking(move || {
                        layout::digest(&dir, chart.as_deref(), &tag, cap)
                    })
                    .await
                    .map_err(|e| RegistryError::Io {
                        path: PathBuf::from(&self.key),
                        detail: format!("reading the layout failed: {e}"),
                    })?
                }
            }
        };
        match tokio::time::timeout_at(deadline.into(), fut).await {
            Ok(r) => r,
            Err(_) => Err(RegistryError::Timeout {
                server: self.host().unwrap_or_else(|| self.key.clone()),
                request: format!("manifest digest of {}:{tag}", self.key),
                after: self.options.timeout,
            }),
        }
    }

    async fn oci_digest(
        &self,
        ep: &Endpoint,
        base: &Url,
        repository: &str,
        tag: &str,
    ) -> Result<String, RegistryError> {
        let mut url = base.clone();
        url.set_path(&format!("/v2/{repository}/manifests/{tag}"));
        let scope = format!("repository:{repository}:pull");
        let cap = self.options.limits.manifest;
        let checked = |digest: &str, how: &str| {
            if is_digest(digest) {
                Ok(digest.to_owned())
            } else {
                Err(RegistryError::InvalidResponse {
                    server: host_of(&url),
                    request: describe(&url),
                    detail: format!(
                        "{how} is not a sha256/sha512 digest: `{}`",
                        upkeep_core::redact::excerpt_with(digest.as_bytes(), 80, &[])
                    ),
                })
            }
        };
        let head = ep
            .request(
                &http::Method::HEAD,
                &url,
                MANIFEST_ACCEPT,
                cap,
                Some(&scope),
            )
            .await;
        match head {
            Ok(fetched) => {
                if let Some(d) = fetched
                    .headers
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                {
                    return checked(d, "Docker-Content-Digest");
                }
            }
            // Some registries refuse HEAD; the GET below answers for them.
            Err(RegistryError::Status { status: 405, .. }) => {}
            Err(e) => return Err(e),
        }
        let fetched = ep.get(&url, MANIFEST_ACCEPT, cap, Some(&scope)).await?;
        let computed = sha256_of(&fetched.body);
        checked(&computed, "the manifest's SHA-256")
    }

    /// For OCI registries: fetches the manifest of `tag` and returns its
    /// `org.opencontainers.image.created` annotation. `Ok(None)` for other kinds (their
    /// listing already carries `created`) and for manifests without the annotation.
    pub async fn created_for(&self, tag: &str) -> Result<Option<Timestamp>, RegistryError> {
        let Kind::Oci {
            ep,
            base,
            repository,
        } = &self.kind
        else {
            return Ok(None);
        };
        let mut url = base.clone();
        url.set_path(&format!("/v2/{repository}/manifests/{tag}"));
        let fetched = ep
            .get(
                &url,
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json",
                self.options.limits.manifest,
                Some(&format!("repository:{repository}:pull")),
            )
            .await?;
        let m: layout::Annotated =
            serde_json::from_slice(&fetched.body).map_err(|e| RegistryError::InvalidResponse {
                server: host_of(&url),
                request: describe(&url),
                detail: format!("manifest is not JSON: {e}"),
            })?;
        Ok(m.annotations
            .get(layout::CREATED)
            .and_then(|c| c.parse().ok()))
    }
}

/// The media types a manifest request accepts: OCI and Docker, manifests and indexes. The
/// digest of a tag is the digest of what the registry serves for these (Flux asks with the same
/// set through go-containerregistry), so a multi-platform image's digest is its index's.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// Whether `s` is a content digest upkeep writes into files: `sha256:` and 64 lowercase hex
/// digits, or `sha512:` and 128. Anything else from a registry or a layout is refused rather
/// than written.
pub fn is_digest(s: &str) -> bool {
    let hex_of = |h: &str, n: usize| {
        h.len() == n
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match s.split_once(':') {
        Some(("sha256", h)) => hex_of(h, 64),
        Some(("sha512", h)) => hex_of(h, 128),
        _ => false,
    }
}

/// `sha256:<hex>` of `bytes`.
fn sha256_of(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in d.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

fn hash_str(s: &str) -> u64 {
    use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(s)
}

/// The target of the `rel="next"` link in a `Link` header value (RFC 8288), if any.
pub fn parse_link_next(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        // params run until the next link, which starts with `<` after a comma
        let params_end = after.find('<').unwrap_or(after.len());
        let params = &after[..params_end];
        let is_next = params.split(';').any(|p| {
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_end_matches(',')
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim().to_owned());
        }
        rest = &after[params_end..];
    }
}

//! `ChartSource`: where versions come from.
//!
//! The three URL forms share one field, as Flux's `HelmRepository`/`OCIRepository` URLs do,
//! so the kind of source is read from the scheme and validated into a [`ChartLocation`] at the
//! boundary; the registry adapters never see an unchecked string.

use std::path::PathBuf;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::common::{self, LocalRef};

fn default_interval() -> String {
    "10m".to_owned()
}

fn default_exclusion_list() -> Vec<String> {
    vec![r"^.*\.sig$".to_owned()]
}

/// Where versions of one chart come from.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "ChartSource",
    doc = "Where versions come from: an OCI repository, a Helm HTTP repository or an OCI layout directory.",
    namespaced,
    status = "ChartSourceStatus",
    shortname = "cs",
    category = "upkeep",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Tags","type":"integer","jsonPath":".status.lastScan.tagCount"}"#,
    printcolumn = r#"{"name":"Last Scan","type":"date","jsonPath":".status.lastScan.time"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartSourceSpec {
    /// `oci://host/path/chart`, `https://…` (a Helm repository; needs `chart`) or
    /// `oci-layout:./dir`.
    pub url: String,
    /// The chart name in a Helm HTTP repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// How often to scan, Go duration (default `10m`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// How long a whole scan may take: requests, retries, reading and parsing (default `2m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// A `kubernetes.io/dockerconfigjson` Secret (standalone: Docker's `config.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
    /// A Secret holding a CA bundle to trust for the source's TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalRef>,
    /// Allow plain HTTP.
    #[serde(default)]
    pub insecure: bool,
    /// Tags matching any of these regexes are ignored (default: signatures, `^.*\.sig$`).
    #[serde(default = "default_exclusion_list")]
    pub exclusion_list: Vec<String>,
    /// Stop scanning until set back to false.
    #[serde(default)]
    pub suspend: bool,
}

/// What the last scans found.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChartSourceStatus {
    /// The last successful scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan: Option<LastScan>,
    /// `Ready`, `Reconciling`, `Stalled`, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastScan {
    /// When the scan finished.
    pub time: Time,
    /// How many tags the source listed (after `exclusionList`).
    pub tag_count: u64,
    /// The newest few tags found (policies read all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latest_tags: Vec<String>,
}

/// A validated source location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartLocation {
    /// `oci://host/path/chart` → `host` and `path/chart`.
    Oci { host: String, repository: String },
    /// A Helm HTTP repository (`index.yaml` under `url`) and a chart in it.
    Https { url: String, chart: String },
    /// An OCI image-layout directory, relative to the manifest's directory when relative.
    OciLayout { dir: PathBuf },
}

/// A validated `ChartSource` spec.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub location: ChartLocation,
    pub interval: SignedDuration,
    pub timeout: Option<SignedDuration>,
    pub insecure: bool,
    pub exclusions: Vec<regex::Regex>,
}

impl ChartSourceSpec {
    fn location(&self, errors: &mut Vec<FieldError>) -> Option<ChartLocation> {
        let url = self.url.trim();
        if let Some(rest) = url.strip_prefix("oci://") {
            let (host, repository) = rest.split_once('/').unwrap_or((rest, ""));
            if host.is_empty() || repository.trim_matches('/').is_empty() {
                errors.push(
                    FieldError::new(
                        "spec.url",
                        format!("OCI URL {url:?} needs a host and a repository path"),
                    )
                    .with_hint(Some("e.g. oci://ghcr.io/org/charts/mychart")),
                );
                return None;
            }
            if self.chart.is_some() {
                errors.push(
                    FieldError::new(
                        "spec.chart",
                        "chart is only used with https:// Helm repositories",
                    )
                    .with_hint(Some("put the chart name at the end of the oci:// URL")),
                );
            }
            return Some(ChartLocation::Oci {
                host: host.to_owned(),
                repository: repository.trim_end_matches('/').to_owned(),
            });
        }
        if url.starts_with("https://") || url.starts_with("http://") {
            if url.starts_with("http://") && !self.insecure {
                errors.push(
                    FieldError::new(
                        "spec.url",
                        format!("plain HTTP URL {url:?} without insecure: true"),
                    )
                    .with_hint(Some(
                        "use https://, or set insecure: true for a test registry",
                    )),
                );
            }
            return match self.chart.as_deref().map(str::trim) {
                Some(chart) if !chart.is_empty() => Some(ChartLocation::Https {
                    url: url.to_owned(),
                    chart: chart.to_owned(),
                }),
                _ => {
                    errors.push(
                        FieldError::new("spec.chart", "a Helm HTTP repository needs a chart name")
                            .with_hint(Some("add spec.chart: <name of the chart in index.yaml>")),
                    );
                    None
                }
            };
        }
        if let Some(dir) = url.strip_prefix("oci-layout:") {
            if dir.is_empty() {
                errors.push(
                    FieldError::new("spec.url", "oci-layout: needs a directory")
                        .with_hint(Some("e.g. oci-layout:./charts/mychart")),
                );
                return None;
            }
            return Some(ChartLocation::OciLayout {
                dir: PathBuf::from(dir),
            });
        }
        errors.push(
            FieldError::new("spec.url", format!("unsupported URL {url:?}")).with_hint(Some(
                "use oci://host/path/chart, https://… with spec.chart, or oci-layout:./dir",
            )),
        );
        None
    }
}

impl ChartSource {
    /// Validates the spec into [`SourceSettings`].
    pub fn to_core(&self) -> Result<SourceSettings, Vec<FieldError>> {
        let mut errors = Vec::new();
        common::check_name(&self.metadata, &mut errors);
        let spec = &self.spec;
        let location = spec.location(&mut errors);
        let interval = common::duration("spec.interval", &spec.interval, &mut errors);
        let timeout = common::opt_duration("spec.timeout", spec.timeout.as_deref(), &mut errors);
        let exclusions: Vec<_> = spec
            .exclusion_list
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                common::regex(&format!("spec.exclusionList[{i}]"), p, false, &mut errors)
            })
            .collect();
        match (location, interval) {
            (Some(location), Some(interval)) if errors.is_empty() => Ok(SourceSettings {
                location,
                interval,
                timeout,
                insecure: spec.insecure,
                exclusions,
            }),
            _ => Err(errors),
        }
    }
}

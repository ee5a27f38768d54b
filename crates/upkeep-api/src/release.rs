//! Giant Swarm `Release` objects (cluster-scoped `releases.release.giantswarm.io/v1alpha1`),
//! read leniently, and what a `releaseRef` naming one resolves to.
//!
//! Why it is shaped this way:
//! - upkeep does not own the kind, so a Release is read from a JSON value by hand: only
//!   `metadata.name`, `spec.state`, `spec.components[]`, `spec.date` and `spec.endOfLifeDate`
//!   are looked at, every other field is ignored, and a field of an unexpected shape is left
//!   out rather than failing the read (the name is the only thing a Release must have).
//! - The target version is the Release's **name**, as Giant Swarm names them: `v20.1.0` for
//!   the older releases (no provider) and `<provider>-<version>` (`aws-29.5.0`,
//!   `cloud-director-29.0.0`) for Cluster API ones. The version is written without the `v`,
//!   as the cluster's `release.giantswarm.io/version` label holds it.
//! - [`resolve`] is pure: the shells (controller: a GET of the cluster-scoped object; CLI: a
//!   Release manifest in the repository) find the object, and the decision — which states
//!   may be upgraded to — is made here, once, for both.
//!
//! States, as a Giant Swarm customer reads them (Giant Swarm's docs, "Workload cluster
//! releases"): `active` is a release to use; `preview` is a pre-release offered to customers
//! for testing, and a ClusterUpgrade names one Release explicitly, so naming a preview release
//! is taken as asking for it (it is used); `deprecated` has been replaced by a newer release
//! (existing clusters may stay on it, but nothing is upgraded *to* it) and `wip` is not
//! released yet: both are refused with the reason, and the campaign keeps waiting (a `wip`
//! release may become `active`). A Release that is missing (or whose kind is not installed)
//! waits with the reason.

use std::path::{Path, PathBuf};

use serde_json::Value;
use upkeep_core::version::Version;

/// The API group of Giant Swarm's `Release`.
pub const GROUP: &str = "release.giantswarm.io";
/// The version of Giant Swarm's `Release` upkeep reads.
pub const VERSION: &str = "v1alpha1";
/// `release.giantswarm.io/v1alpha1`.
pub const API_VERSION: &str = "release.giantswarm.io/v1alpha1";
/// The apiVersion the design notes' (RFC's) example gives a `Release` reference; accepted as
/// written and meaning the same kind.
pub const RFC_API_VERSION: &str = "application.giantswarm.io/v1alpha1";
/// The kind.
pub const KIND: &str = "Release";
/// The resource (plural) name.
pub const PLURAL: &str = "releases";

/// A Release's name read as Giant Swarm names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseName {
    /// `aws` of `aws-29.5.0`; `None` for `v20.1.0`.
    pub provider: Option<String>,
    /// The version as written to a cluster: without `v` (`29.5.0`, `20.1.0`, `30.0.0-alpha.1`).
    pub version: String,
}

/// Reads a Release name: `v<semver>` or `<semver>` (no provider), or `<provider>-<semver>`
/// where the provider is lowercase letters, digits and dashes (`cloud-director-29.0.0`). The
/// version is split off at the first dash after which a whole SemVer version follows, so
/// prerelease versions (`aws-30.0.0-alpha.1`) keep their dashes. `None` when it is neither.
pub fn parse_name(name: &str) -> Option<ReleaseName> {
    let name = name.trim();
    let plain = |s: &str| -> Option<String> {
        let bare = s.strip_prefix('v').unwrap_or(s);
        (bare.starts_with(|c: char| c.is_ascii_digit()) && Version::parse(bare).is_some())
            .then(|| bare.to_owned())
    };
    if let Some(version) = plain(name) {
        return Some(ReleaseName {
            provider: None,
            version,
        });
    }
    for (i, _) in name.match_indices('-') {
        let (provider, rest) = (&name[..i], &name[i + 1..]);
        let valid_provider = provider.starts_with(|c: char| c.is_ascii_lowercase())
            && provider
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !provider.ends_with('-');
        if !valid_provider {
            return None;
        }
        if let Some(version) = plain(rest) {
            return Some(ReleaseName {
                provider: Some(provider.to_owned()),
                version,
            });
        }
    }
    None
}

/// One `spec.components[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub version: String,
}

/// What upkeep reads of a Release.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    pub name: String,
    /// `spec.state`: `active`, `deprecated`, `wip` or `preview`.
    pub state: Option<String>,
    pub components: Vec<Component>,
    /// `spec.date`, as written.
    pub date: Option<String>,
    /// `spec.endOfLifeDate`, as written.
    pub end_of_life_date: Option<String>,
}

impl Release {
    /// Reads a Release from its JSON form (a `DynamicObject` serialised, or a manifest read as
    /// a value), leniently (see the module docs). `None` without a `metadata.name`.
    pub fn from_value(value: &Value) -> Option<Release> {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(ToOwned::to_owned)
        };
        let name = text(value.pointer("/metadata/name"))?;
        let spec = value.get("spec");
        let at = |k: &str| text(spec.and_then(|s| s.get(k)));
        let components = spec
            .and_then(|s| s.get("components"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|c| {
                        Some(Component {
                            name: text(c.get("name"))?,
                            version: text(c.get("version"))?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Release {
            name,
            state: at("state"),
            components,
            date: at("date"),
            end_of_life_date: at("endOfLifeDate"),
        })
    }

    /// The version of component `name` (`kubernetes`, `cluster-aws`), if listed.
    pub fn component(&self, name: &str) -> Option<&str> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.version.as_str())
    }
}

/// What a `releaseRef` resolves to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Upgrade to `version` (as written to a cluster); only clusters of `provider` when the
    /// release has one.
    Ready {
        version: String,
        provider: Option<String>,
    },
    /// The release exists and must not be upgraded to (deprecated, work in progress).
    Refused(String),
    /// The release is not known (yet): the campaign waits.
    Missing(String),
}

impl Resolution {
    /// The reason nothing can start, when not [`Resolution::Ready`].
    pub fn reason(&self) -> Option<&str> {
        match self {
            Resolution::Ready { .. } => None,
            Resolution::Refused(r) | Resolution::Missing(r) => Some(r),
        }
    }

    /// The version, when [`Resolution::Ready`].
    pub fn version(&self) -> Option<&str> {
        match self {
            Resolution::Ready { version, .. } => Some(version),
            _ => None,
        }
    }

    /// The provider, when [`Resolution::Ready`] for one.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Resolution::Ready { provider, .. } => provider.as_deref(),
            _ => None,
        }
    }

    /// A VersionPolicy's `latestVersion` (`None`: the policy has not allowed one yet, or is
    /// missing; `why` says which).
    pub fn of_policy(latest: Option<&str>, why: impl FnOnce() -> String) -> Resolution {
        match latest.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => Resolution::Ready {
                version: v.to_owned(),
                provider: None,
            },
            None => Resolution::Missing(why()),
        }
    }
}

/// What the Release named `name` resolves to, given the object found (`None`: not found).
pub fn resolve(name: &str, release: Option<&Release>) -> Resolution {
    let Some(release) = release else {
        return Resolution::Missing(format!(
            "Release {name} ({API_VERSION}, cluster-scoped) not found"
        ));
    };
    let Some(parsed) = parse_name(&release.name) else {
        return Resolution::Refused(format!(
            "Release name {:?} is not v<version> or <provider>-<version>",
            release.name
        ));
    };
    match release.state.as_deref().map(str::trim) {
        Some("active" | "preview") => Resolution::Ready {
            version: parsed.version,
            provider: parsed.provider,
        },
        Some("deprecated") => Resolution::Refused(format!(
            "Release {} is deprecated (spec.state): nothing is upgraded to a deprecated release; name a newer one",
            release.name
        )),
        Some("wip") => Resolution::Refused(format!(
            "Release {} is work in progress (spec.state wip): not released yet",
            release.name
        )),
        Some(other) => Resolution::Refused(format!(
            "Release {} has spec.state {other:?}, not active or preview",
            release.name
        )),
        None => Resolution::Refused(format!(
            "Release {} has no spec.state; only active and preview releases are upgraded to",
            release.name
        )),
    }
}

/// The provider a Cluster's `spec.infrastructureRef.kind` names, in Giant Swarm's release
/// names; `None` for a kind upkeep does not know.
pub fn provider_from_infrastructure_kind(kind: &str) -> Option<&'static str> {
    Some(match kind.trim() {
        "AWSCluster" => "aws",
        "AWSManagedCluster" | "AWSManagedControlPlane" => "eks",
        "AzureCluster" => "azure",
        "VSphereCluster" => "vsphere",
        "VCDCluster" => "cloud-director",
        _ => return None,
    })
}

/// The provider of a cluster App's chart (`spec.name`): `cluster-aws` → `aws`,
/// `cluster-cloud-director` → `cloud-director`; `None` for a chart not named `cluster-<provider>`.
pub fn provider_from_chart(chart: &str) -> Option<&str> {
    let provider = chart.trim().strip_prefix("cluster-")?;
    (provider.starts_with(|c: char| c.is_ascii_lowercase())
        && provider
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    .then_some(provider)
}

/// Every Giant Swarm Release manifest under `dir` (`kind: Release`, `apiVersion:
/// release.giantswarm.io/*`, or the RFC's `application.giantswarm.io/v1alpha1`), with the file
/// it is in. Files are found by the repository walk (symlinks stay inside); a file that does
/// not mention the group is not parsed, and a document that does not read is left out (the
/// Release is then missing, and its campaign says so).
pub fn releases_in(dir: &Path) -> Vec<(PathBuf, Release)> {
    let mut out = Vec::new();
    let files = if dir.is_dir() {
        crate::walk::walk(dir, "")
            .files
            .into_iter()
            .map(|f| f.path)
            .collect()
    } else {
        vec![dir.to_path_buf()]
    };
    for path in files {
        let Ok(text) = crate::walk::read_text(&path) else {
            continue;
        };
        if !(text.contains(GROUP) || text.contains(RFC_API_VERSION)) {
            continue;
        }
        let Ok(docs) = crate::yaml::from_str_multiple::<Value>(&text) else {
            continue;
        };
        for doc in docs {
            let is_release = doc.get("kind").and_then(Value::as_str) == Some(KIND)
                && doc
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(is_release_api_version);
            if is_release && let Some(r) = Release::from_value(&doc) {
                out.push((path.clone(), r));
            }
        }
    }
    out
}

/// Whether `api_version` names Giant Swarm's Release kind: `release.giantswarm.io/<any>`, or
/// the RFC's `application.giantswarm.io/v1alpha1`.
pub fn is_release_api_version(api_version: &str) -> bool {
    let v = api_version.trim();
    v == RFC_API_VERSION
        || v.split_once('/')
            .is_some_and(|(g, ver)| g == GROUP && !ver.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn release_names() {
        let cases = [
            (
                "v20.1.0",
                Some((None, "20.1.0")),
                "older release: v and no provider",
            ),
            (
                "aws-29.5.0",
                Some((Some("aws"), "29.5.0")),
                "Cluster API release",
            ),
            (
                "cloud-director-29.0.0",
                Some((Some("cloud-director"), "29.0.0")),
                "a provider with a dash",
            ),
            (
                "aws-30.0.0-alpha.1",
                Some((Some("aws"), "30.0.0-alpha.1")),
                "a prerelease keeps its dashes",
            ),
            (
                "v1.20.0-rc.1",
                Some((None, "1.20.0-rc.1")),
                "an old-style prerelease",
            ),
            ("29.5.0", Some((None, "29.5.0")), "a bare version"),
            ("v1.20.0", Some((None, "1.20.0")), "the RFC's example"),
            ("aws", None, "no version"),
            ("aws-latest", None, "not a version"),
            ("AWS-29.5.0", None, "providers are lowercase"),
            ("-29.5.0", None, "an empty provider"),
            ("aws--29.5.0", None, "a provider ending in a dash"),
            ("aws-29.5", None, "not a whole SemVer version"),
            ("", None, "empty"),
        ];
        for (name, want, why) in cases {
            let got = parse_name(name);
            let got = got
                .as_ref()
                .map(|n| (n.provider.as_deref(), n.version.as_str()));
            assert_eq!(got, want, "{why}: {name:?}");
        }
    }

    #[test]
    fn a_release_is_read_leniently() {
        let object = json!({
            "apiVersion": "release.giantswarm.io/v1alpha1", "kind": "Release",
            "metadata": {"name": "aws-29.5.0", "annotations": {"giantswarm.io/docs": "x"}},
            "spec": {
                "state": "active", "date": "2024-10-01T12:00:00Z", "endOfLifeDate": "2025-10-01T00:00:00Z",
                "components": [
                    {"name": "cluster-aws", "version": "2.4.0", "catalog": "cluster"},
                    {"name": "kubernetes", "version": "1.29.9"},
                    {"name": 7, "version": "broken"},
                    "not an object"
                ],
                "apps": [{"name": "cilium", "version": "0.25.1"}],
                "notice": "ignored"
            },
            "status": {"ready": true, "inUse": false}
        });
        let r = Release::from_value(&object).expect("a release");
        assert_eq!(r.name, "aws-29.5.0");
        assert_eq!(r.state.as_deref(), Some("active"));
        assert_eq!(r.component("kubernetes"), Some("1.29.9"));
        assert_eq!(r.component("cluster-aws"), Some("2.4.0"));
        assert_eq!(
            r.components.len(),
            2,
            "entries of another shape are left out"
        );
        assert_eq!(r.date.as_deref(), Some("2024-10-01T12:00:00Z"));
        assert_eq!(r.end_of_life_date.as_deref(), Some("2025-10-01T00:00:00Z"));
        let cases = [
            (json!({"metadata": {}}), false, "no name: not a release"),
            (json!({"metadata": {"name": "v1.0.0"}}), true, "no spec"),
            (
                json!({"metadata": {"name": "v1.0.0"}, "spec": {"state": 3, "components": {}}}),
                true,
                "fields of other shapes",
            ),
        ];
        for (value, some, why) in cases {
            assert_eq!(Release::from_value(&value).is_some(), some, "{why}");
        }
    }

    fn release(name: &str, state: Option<&str>) -> Release {
        Release {
            name: name.to_owned(),
            state: state.map(ToOwned::to_owned),
            ..Release::default()
        }
    }

    #[test]
    fn resolution() {
        let ready = |v: &str, p: Option<&str>| Resolution::Ready {
            version: v.to_owned(),
            provider: p.map(ToOwned::to_owned),
        };
        let cases = [
            (
                Some(release("aws-29.5.0", Some("active"))),
                Ok(ready("29.5.0", Some("aws"))),
                "active: its version, for its provider",
            ),
            (
                Some(release("v20.1.0", Some("active"))),
                Ok(ready("20.1.0", None)),
                "an old release has no provider",
            ),
            (
                Some(release("aws-30.0.0-beta.1", Some("preview"))),
                Ok(ready("30.0.0-beta.1", Some("aws"))),
                "preview: named explicitly, so it is used",
            ),
            (
                Some(release("aws-29.0.0", Some("deprecated"))),
                Err(("Refused", "is deprecated")),
                "deprecated is refused",
            ),
            (
                Some(release("aws-31.0.0", Some("wip"))),
                Err(("Refused", "work in progress")),
                "wip is refused",
            ),
            (
                Some(release("aws-31.0.0", Some("retired"))),
                Err(("Refused", "\"retired\"")),
                "an unknown state is refused, naming it",
            ),
            (
                Some(release("aws-31.0.0", None)),
                Err(("Refused", "no spec.state")),
                "no state is refused",
            ),
            (
                Some(release("latest", Some("active"))),
                Err(("Refused", "not v<version>")),
                "a name that is no release name",
            ),
            (None, Err(("Missing", "not found")), "missing: waits"),
        ];
        for (found, want, why) in cases {
            let got = resolve("aws-29.5.0", found.as_ref());
            match want {
                Ok(r) => assert_eq!(got, r, "{why}"),
                Err((kind, text)) => {
                    let (k, reason) = match &got {
                        Resolution::Refused(r) => ("Refused", r),
                        Resolution::Missing(r) => ("Missing", r),
                        Resolution::Ready { .. } => panic!("{why}: {got:?}"),
                    };
                    assert_eq!(k, kind, "{why}");
                    assert!(reason.contains(text), "{why}: {reason}");
                }
            }
        }
    }

    #[test]
    fn providers() {
        let kinds = [
            ("AWSCluster", Some("aws"), "CAPA"),
            ("AWSManagedCluster", Some("eks"), "EKS"),
            ("AzureCluster", Some("azure"), "CAPZ"),
            ("VSphereCluster", Some("vsphere"), "CAPV"),
            ("VCDCluster", Some("cloud-director"), "CAPVCD"),
            ("DockerCluster", None, "a kind upkeep does not know"),
            ("", None, "empty"),
        ];
        for (kind, want, why) in kinds {
            assert_eq!(provider_from_infrastructure_kind(kind), want, "{why}");
        }
        let charts = [
            ("cluster-aws", Some("aws"), "the AWS chart"),
            ("cluster-cloud-director", Some("cloud-director"), "a dash"),
            ("cluster-vsphere", Some("vsphere"), "vSphere"),
            ("cluster", None, "no provider"),
            ("cluster-", None, "an empty provider"),
            ("default-apps-aws", None, "not a cluster chart"),
            ("cluster-AWS", None, "not lowercase"),
        ];
        for (chart, want, why) in charts {
            assert_eq!(provider_from_chart(chart), want, "{why}");
        }
    }

    #[test]
    fn release_manifests_in_a_repository() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        write(
            "releases/aws.yaml",
            "apiVersion: release.giantswarm.io/v1alpha1\nkind: Release\nmetadata: {name: aws-29.5.0}\nspec: {state: active}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: release.giantswarm.io}\n",
        );
        write(
            "rfc.yaml",
            "apiVersion: application.giantswarm.io/v1alpha1\nkind: Release\nmetadata: {name: v1.20.0}\nspec: {state: wip}\n",
        );
        write(
            "app.yaml",
            "apiVersion: application.giantswarm.io/v1alpha1\nkind: App\nmetadata: {name: c}\n",
        );
        write(
            "broken.yaml",
            "apiVersion: release.giantswarm.io/v1alpha1\nkind: [\n",
        );
        let mut found: Vec<(String, Option<String>)> = releases_in(dir.path())
            .into_iter()
            .map(|(_, r)| (r.name, r.state))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("aws-29.5.0".to_owned(), Some("active".to_owned())),
                ("v1.20.0".to_owned(), Some("wip".to_owned())),
            ],
            "Releases only, in both apiVersions; other kinds and broken files left out"
        );
    }
}

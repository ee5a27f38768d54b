//! Flux image automation objects read as upkeep's own: `ImageRepository` → [`ChartSource`],
//! `ImagePolicy` → [`VersionPolicy`] (`image.toolkit.fluxcd.io`, `v1beta2` and `v1`).
//!
//! Why it is shaped this way:
//!
//! - **Lenient types, strict values.** Flux adds fields between releases and a repository set
//!   up for Flux must keep loading, so these types ignore unknown fields (unlike upkeep's kinds,
//!   which deny them). Values that upkeep *uses* are checked exactly as for upkeep kinds: each
//!   object is turned into the upkeep object it stands for and that object's own `to_core` runs;
//!   the [`FieldError`] paths it reports are then renamed to the Flux fields they came from
//!   (`spec.sourceRef` → `spec.imageRepositoryRef`, `spec.url` → `spec.image`). No check is
//!   written twice.
//! - **One type for both versions.** `v1beta2` and `v1` differ only in fields that are
//!   optional (`v1` `ImagePolicy` adds `digestReflectionPolicy`, read as the VersionPolicy's
//!   field of that name, and `interval`, not used), so one lenient struct reads both; the
//!   version is kept in the [`Origin`].
//! - **The image name verbatim.** Flux's setters write an `ImageRepository`'s `spec.image` as
//!   the user wrote it (`nginx`, not `docker.io/library/nginx`); the converted ChartSource's
//!   URL is the resolved `oci://` location, so the name is kept in [`IMAGE_ANNOTATION`] and
//!   read back by [`ChartSource::image_name`].
//! - **Origin as annotations.** Converted objects land in the existing
//!   [`Resource::ChartSource`](crate::Resource)/[`Resource::VersionPolicy`](crate::Resource)
//!   variants so every command works unchanged. Where they came from, and which Flux settings
//!   upkeep does not act on (cloud `provider`, `serviceAccountName`, `accessFrom`,
//!   `proxySecretRef`, an `ImagePolicy`'s `suspend`), is written into the converted object's
//!   annotations [`ORIGIN_ANNOTATION`] and [`NOTES_ANNOTATION`] and read back by
//!   [`Resource::origin`](crate::Resource::origin). Annotations survive serialisation, so a
//!   converted object printed or stored still says what it was.
//! - **Flux's defaults, applied here.** Manifests read from Git were never defaulted by an API
//!   server, so Flux's own defaults are applied: `exclusionList` empty → `^.*\.sig$`, `timeout`
//!   unset → `interval` (at least 1s), policy `order` unset → `asc`.
//! - **Image names as Docker resolves them.** `spec.image` is a repository name without scheme
//!   or tag; a first component with a `.` or `:` or `localhost` is a registry host, anything
//!   else is on Docker Hub (`nginx` → `oci://docker.io/library/nginx`).

use std::collections::BTreeMap;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use upkeep_core::version::Policy;

use crate::chart_source::ChartSourceSpec;
use crate::version_policy::{
    DigestReflectionPolicy, FilterTags, OrderPolicy, PolicyChoice, SemverPolicy, SortOrder,
    VersionPolicySpec,
};
use crate::{
    ChartSource, FieldError, LocalRef, NamespacedRef, Resource, SourceSettings, VersionPolicy,
};

/// The API group of Flux's image automation kinds.
pub const GROUP: &str = "image.toolkit.fluxcd.io";
/// The versions of [`GROUP`] read as upkeep kinds.
pub const VERSIONS: [&str; 2] = ["v1beta2", "v1"];
/// The kinds of [`GROUP`] read as upkeep sources and policies. `ImageUpdateAutomation` is read
/// as an `AppUpgradeAutomation` by [`crate::flux_automation`]; other kinds load as
/// [`Resource::Other`].
pub const KINDS: [&str; 2] = ["ImageRepository", "ImagePolicy"];

/// The upkeep kind a Flux image kind is read as.
pub fn upkeep_kind(kind: &str) -> &'static str {
    match kind {
        "ImageRepository" => "ChartSource",
        _ => "VersionPolicy",
    }
}

/// Annotation on a converted object: `<apiVersion>/<kind>` of the Flux object it was read from.
pub const ORIGIN_ANNOTATION: &str = "upkeep.dev/origin";
/// Annotation on a ChartSource converted from an `ImageRepository`: its `spec.image`, verbatim
/// (trimmed), which is what Flux's `ns:name` and `:name` setters write.
pub const IMAGE_ANNOTATION: &str = "upkeep.dev/origin-image";
/// Annotation on a converted object: Flux settings accepted but not acted on, `; `-separated.
pub const NOTES_ANNOTATION: &str = "upkeep.dev/origin-notes";

/// Flux's default `exclusionList` (applied when the list is missing or empty, as Flux does).
pub const DEFAULT_EXCLUSION: &str = r"^.*\.sig$";

/// Where a loaded resource came from when it was not written as an upkeep kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// e.g. `image.toolkit.fluxcd.io/v1`.
    pub api_version: String,
    /// e.g. `ImageRepository`.
    pub kind: String,
    /// Settings of the original object that upkeep accepted but does not act on.
    pub notes: Vec<String>,
}

impl Origin {
    fn from_meta(meta: &ObjectMeta) -> Option<Origin> {
        let annotations = meta.annotations.as_ref()?;
        let (api_version, kind) = annotations.get(ORIGIN_ANNOTATION)?.rsplit_once('/')?;
        let notes = annotations
            .get(NOTES_ANNOTATION)
            .map(|n| {
                n.split("; ")
                    .filter(|s| !s.is_empty())
                    .map(ToOwned::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Some(Origin {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            notes,
        })
    }

    /// True for an `ImagePolicy` with `suspend: true`: Flux would not move its tag, and upkeep
    /// callers should hold it too.
    pub fn suspended(&self) -> bool {
        self.notes.iter().any(|n| n.starts_with("suspend"))
    }
}

impl Resource {
    /// Where the resource came from when it was read from a Flux object; `None` for upkeep's
    /// own kinds and everything else. Read from [`ORIGIN_ANNOTATION`], so an upkeep object
    /// that sets that annotation by hand claims a Flux origin too (it changes no behaviour).
    pub fn origin(&self) -> Option<Origin> {
        match self {
            Resource::ChartSource { object, .. } => Origin::from_meta(&object.metadata),
            Resource::VersionPolicy { object, .. } => Origin::from_meta(&object.metadata),
            Resource::AppUpgradeAutomation(object) => Origin::from_meta(&object.metadata),
            _ => None,
        }
    }
}

impl ChartSource {
    /// The image name Flux's `ns:name` and `:name` setters write for this source: an
    /// `ImageRepository`'s `spec.image` verbatim ([`IMAGE_ANNOTATION`]), else `host/path` of
    /// an `oci://host/path` URL; `None` for Helm repositories and OCI layout directories.
    pub fn image_name(&self) -> Option<String> {
        if let Some(image) = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(IMAGE_ANNOTATION))
            .filter(|i| !i.is_empty())
        {
            return Some(image.clone());
        }
        self.spec
            .url
            .trim()
            .strip_prefix("oci://")
            .map(|rest| rest.trim_end_matches('/').to_owned())
            .filter(|rest| !rest.is_empty())
    }
}

/// True when the object was converted from one of Flux's image automation kinds (its
/// [`ORIGIN_ANNOTATION`] names [`GROUP`]).
pub fn from_flux(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(ORIGIN_ANNOTATION))
        .is_some_and(|o| o.starts_with(GROUP))
}

/// `meta.LocalObjectReference`, read leniently.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FluxLocalRef {
    pub name: String,
}

/// `meta.NamespacedObjectReference`, read leniently.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FluxNamespacedRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A Flux `ImageRepository` (`v1beta2` or `v1`). Unknown fields are ignored.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImageRepository {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: ImageRepositorySpec,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImageRepositorySpec {
    /// A repository name without scheme or tag: `ghcr.io/org/app`, `nginx`.
    pub image: String,
    pub interval: String,
    /// Defaults to `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<FluxLocalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<FluxLocalRef>,
    /// Not acted on (noted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<FluxLocalRef>,
    /// Not acted on (noted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default)]
    pub suspend: bool,
    /// Cross-namespace ACL; not acted on (noted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_list: Option<Vec<String>>,
    /// `generic` (default), `aws`, `azure`, `gcp`; only `generic` is acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default)]
    pub insecure: bool,
}

/// A Flux `ImagePolicy` (`v1beta2` or `v1`). Unknown fields are ignored.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicy {
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub spec: ImagePolicySpec,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicySpec {
    pub image_repository_ref: FluxNamespacedRef,
    pub policy: FluxPolicyChoice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_tags: Option<FluxTagFilter>,
    /// `v1`: `Never` (default), `IfNotPresent`, `Always`; read as the VersionPolicy's field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_reflection_policy: Option<DigestReflectionPolicy>,
    /// `v1`: digest refresh interval; accepted, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Noted, and reported by [`Origin::suspended`].
    #[serde(default)]
    pub suspend: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct FluxPolicyChoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<FluxSemver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<FluxOrder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<FluxOrder>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct FluxSemver {
    pub range: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct FluxOrder {
    #[serde(default)]
    pub order: SortOrder,
}

/// Both fields are optional in Flux.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct FluxTagFilter {
    #[serde(default)]
    pub pattern: String,
    #[serde(default)]
    pub extract: String,
}

/// Turns a Flux `spec.image` into an upkeep `oci://host/repository` URL, as Docker resolves
/// names: `nginx` → `oci://docker.io/library/nginx`, `org/app` → `oci://docker.io/org/app`,
/// `ghcr.io/org/app` → `oci://ghcr.io/org/app`, `localhost:5000/app` kept as is.
pub fn image_url(image: &str) -> Result<String, FieldError> {
    const PATH: &str = "spec.image";
    let image = image.trim();
    let err =
        |message: String, hint: &str| Err(FieldError::new(PATH, message).with_hint(Some(hint)));
    if image.is_empty() {
        return err(
            "empty image".to_owned(),
            "give the image repository, e.g. ghcr.io/org/app",
        );
    }
    if let Some((scheme, _)) = image.split_once("://") {
        return err(
            format!("image {image:?} must not have a scheme ({scheme}://)"),
            "write the repository without a scheme, e.g. ghcr.io/org/app",
        );
    }
    if image.contains('@') {
        return err(
            format!("image {image:?} must not contain a digest"),
            "remove @sha256:…; the ImagePolicy chooses the tag",
        );
    }
    let (first, rest) = match image.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (image, None),
    };
    let is_host = rest.is_some() && (first.contains(['.', ':']) || first == "localhost");
    let (host, repository) = match (is_host, rest) {
        (true, Some(r)) => (first, r.to_owned()),
        _ => ("docker.io", image.to_owned()),
    };
    let host = if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    };
    if repository
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
    {
        return err(
            format!("image {image:?} must not contain a tag"),
            "remove the :tag; the ImagePolicy chooses the tag",
        );
    }
    if repository.split('/').any(str::is_empty) {
        return err(
            format!("image {image:?} has an empty path component"),
            "e.g. ghcr.io/org/app",
        );
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return err(
            format!("image {image:?}: repository names must be lowercase"),
            "registries only accept lowercase repository names",
        );
    }
    let repository = if host == "docker.io" && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    Ok(format!("oci://{host}/{repository}"))
}

/// Renames a path reported by an upkeep kind's validation to the Flux field it came from.
fn rename(mut e: FieldError, renames: &[(&str, &str)]) -> FieldError {
    for (upkeep, flux) in renames {
        if let Some(rest) = e.path.strip_prefix(upkeep)
            && (rest.is_empty() || rest.starts_with(['.', '[']))
        {
            e.path = format!("{flux}{rest}");
            break;
        }
    }
    e
}

fn with_origin(meta: &ObjectMeta, api_version: &str, kind: &str, notes: &[String]) -> ObjectMeta {
    let mut meta = meta.clone();
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(
        ORIGIN_ANNOTATION.to_owned(),
        format!("{api_version}/{kind}"),
    );
    if notes.is_empty() {
        annotations.remove(NOTES_ANNOTATION);
    } else {
        annotations.insert(NOTES_ANNOTATION.to_owned(), notes.join("; "));
    }
    meta
}

fn local_ref(r: Option<&FluxLocalRef>) -> Option<LocalRef> {
    r.map(|r| LocalRef {
        name: r.name.clone(),
    })
}

impl ImageRepository {
    /// Settings upkeep accepts but does not act on, one note each.
    pub fn notes(&self) -> Vec<String> {
        let s = &self.spec;
        let mut notes = Vec::new();
        if let Some(p) = s
            .provider
            .as_deref()
            .filter(|p| !p.is_empty() && *p != "generic")
        {
            notes.push(format!(
                "provider: {p} ignored (upkeep uses secretRef or Docker's config.json)"
            ));
        }
        if s.service_account_name
            .as_deref()
            .is_some_and(|n| !n.is_empty())
        {
            notes.push("serviceAccountName ignored (use secretRef)".to_owned());
        }
        if s.access_from.is_some() {
            notes.push("accessFrom ignored (upkeep does not restrict references)".to_owned());
        }
        if s.proxy_secret_ref.is_some() {
            notes.push("proxySecretRef ignored (use the process's proxy settings)".to_owned());
        }
        notes
    }

    /// The `ChartSource` this object stands for and its validated settings. Errors name Flux
    /// fields (`spec.image`, `spec.interval`, `spec.exclusionList[0]`, …).
    pub fn to_core(
        &self,
        api_version: &str,
    ) -> Result<(ChartSource, SourceSettings), Vec<FieldError>> {
        let s = &self.spec;
        let mut errors = Vec::new();
        let url = image_url(&s.image).unwrap_or_else(|e| {
            errors.push(e);
            // Still validate everything else; the URL error is already reported.
            String::new()
        });
        let exclusion_list = match &s.exclusion_list {
            Some(list) if !list.is_empty() => list.clone(),
            _ => vec![DEFAULT_EXCLUSION.to_owned()],
        };
        let mut object = ChartSource::new(
            self.metadata.name.as_deref().unwrap_or_default(),
            ChartSourceSpec {
                url,
                chart: None,
                interval: s.interval.clone(),
                timeout: s.timeout.clone(),
                secret_ref: local_ref(s.secret_ref.as_ref()),
                cert_secret_ref: local_ref(s.cert_secret_ref.as_ref()),
                insecure: s.insecure,
                exclusion_list,
                suspend: s.suspend,
            },
        );
        object.metadata = with_origin(
            &self.metadata,
            api_version,
            "ImageRepository",
            &self.notes(),
        );
        object
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(IMAGE_ANNOTATION.to_owned(), s.image.trim().to_owned());
        let image_failed = !errors.is_empty();
        match object.to_core() {
            Ok(mut settings) if errors.is_empty() => {
                if s.timeout.is_none() {
                    settings.timeout = Some(settings.interval);
                    object.spec.timeout = Some(s.interval.clone());
                }
                settings.timeout = settings
                    .timeout
                    .map(|t| t.max(SignedDuration::from_secs(1)));
                Ok((object, settings))
            }
            Ok(_) => Err(errors),
            Err(found) => {
                errors.extend(
                    found
                        .into_iter()
                        .filter(|e| !(image_failed && e.path == "spec.url"))
                        .map(|e| {
                            rename(
                                e,
                                &[("spec.url", "spec.image"), ("spec.chart", "spec.image")],
                            )
                        }),
                );
                Err(errors)
            }
        }
    }
}

impl ImagePolicy {
    /// Settings upkeep accepts but does not act on, one note each.
    pub fn notes(&self) -> Vec<String> {
        let s = &self.spec;
        let mut notes = Vec::new();
        if s.suspend {
            notes.push("suspend: true (Flux holds this policy's tag)".to_owned());
        }
        notes
    }

    /// The `VersionPolicy` this object stands for and its core policy. Errors name Flux
    /// fields (`spec.imageRepositoryRef.name`, `spec.policy.semver.range`, …).
    pub fn to_core(&self, api_version: &str) -> Result<(VersionPolicy, Policy), Vec<FieldError>> {
        let s = &self.spec;
        let order = |o: &FluxOrder| OrderPolicy { order: o.order };
        let filter_tags = s
            .filter_tags
            .as_ref()
            .filter(|f| !(f.pattern.is_empty() && f.extract.is_empty()))
            .map(|f| FilterTags {
                pattern: f.pattern.clone(),
                extract: Some(f.extract.clone()).filter(|e| !e.is_empty()),
            });
        let mut object = VersionPolicy::new(
            self.metadata.name.as_deref().unwrap_or_default(),
            VersionPolicySpec {
                source_ref: NamespacedRef {
                    name: s.image_repository_ref.name.clone(),
                    namespace: s.image_repository_ref.namespace.clone(),
                },
                policy: PolicyChoice {
                    semver: s.policy.semver.as_ref().map(|v| SemverPolicy {
                        range: v.range.clone(),
                    }),
                    alphabetical: s.policy.alphabetical.as_ref().map(order),
                    numerical: s.policy.numerical.as_ref().map(order),
                },
                filter_tags,
                minimum_release_age: None,
                pin: None,
                digest_reflection_policy: s.digest_reflection_policy,
            },
        );
        object.metadata = with_origin(&self.metadata, api_version, "ImagePolicy", &self.notes());
        match object.to_core() {
            Ok(policy) => Ok((object, policy)),
            Err(errors) => Err(errors
                .into_iter()
                .map(|mut e| {
                    if e.path.starts_with("spec.sourceRef") {
                        e.message = e.message.replace("ChartSource", "ImageRepository");
                    }
                    rename(e, &[("spec.sourceRef", "spec.imageRepositoryRef")])
                })
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_become_oci_urls() {
        // (image, expected URL or error piece, reason)
        let cases: &[(&str, Result<&str, &str>, &str)] = &[
            (
                "ghcr.io/org/app",
                Ok("oci://ghcr.io/org/app"),
                "a host with a dot is kept",
            ),
            (
                "nginx",
                Ok("oci://docker.io/library/nginx"),
                "a bare name is a Docker Hub official image",
            ),
            (
                "org/app",
                Ok("oci://docker.io/org/app"),
                "no host-like first component: Docker Hub",
            ),
            (
                "docker.io/nginx",
                Ok("oci://docker.io/library/nginx"),
                "Docker Hub single names get library/",
            ),
            (
                "index.docker.io/org/app",
                Ok("oci://docker.io/org/app"),
                "index.docker.io is docker.io",
            ),
            (
                "localhost/app",
                Ok("oci://localhost/app"),
                "localhost is a host without a dot",
            ),
            (
                "127.0.0.1:5000/a/b/c",
                Ok("oci://127.0.0.1:5000/a/b/c"),
                "host:port and deep paths",
            ),
            (
                "  ghcr.io/org/app ",
                Ok("oci://ghcr.io/org/app"),
                "surrounding blanks are ignored",
            ),
            ("", Err("empty image"), "empty is reported"),
            (
                "oci://ghcr.io/org/app",
                Err("must not have a scheme"),
                "Flux images carry no scheme",
            ),
            (
                "ghcr.io/org/app:1.0",
                Err("must not contain a tag"),
                "the policy picks the tag",
            ),
            (
                "nginx:1.25",
                Err("must not contain a tag"),
                "tag on a bare name",
            ),
            (
                "ghcr.io/org/app@sha256:abc",
                Err("must not contain a digest"),
                "digests are not repositories",
            ),
            ("ghcr.io//app", Err("empty path component"), "double slash"),
            (
                "ghcr.io/Org/App",
                Err("lowercase"),
                "registries reject uppercase repositories",
            ),
        ];
        for &(image, want, reason) in cases {
            match (image_url(image), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{image:?}: {reason}"),
                (Err(e), Err(piece)) => {
                    assert_eq!(e.path, "spec.image", "{image:?}: {reason}");
                    assert!(
                        e.message.contains(piece),
                        "{image:?}: {reason}: {}",
                        e.message
                    );
                    assert!(
                        e.hint.is_some(),
                        "{image:?}: {reason}: every image error has a hint"
                    );
                }
                (got, want) => panic!("{image:?}: {reason}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn renames_only_whole_segments() {
        let renames = [("spec.sourceRef", "spec.imageRepositoryRef")];
        // (path, expected, reason)
        let cases = [
            (
                "spec.sourceRef.name",
                "spec.imageRepositoryRef.name",
                "a child field is renamed",
            ),
            (
                "spec.sourceRef",
                "spec.imageRepositoryRef",
                "the field itself is renamed",
            ),
            (
                "spec.sourceRefs",
                "spec.sourceRefs",
                "a longer name is another field",
            ),
            ("spec.policy", "spec.policy", "other paths are kept"),
        ];
        for (path, want, reason) in cases {
            assert_eq!(
                rename(FieldError::new(path, "m"), &renames).path,
                want,
                "{reason}"
            );
        }
    }
}

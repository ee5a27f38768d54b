//! `VersionPolicy`: which version is allowed.
//!
//! `policy` has Flux `ImagePolicy`'s shape (one of `semver`, `alphabetical`, `numerical`) so
//! existing policies port by changing the kind. It is three optional fields rather than a serde
//! enum so that "two kinds given" is a validation error that names both, not a parse error.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use upkeep_core::version::{Constraints, FilterError, Order, Policy, PolicyKind, TagFilter};

use crate::FieldError;
use crate::common::{self, NamespacedRef};

/// Which tags of a ChartSource count and how they are ordered.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "VersionPolicy",
    doc = "Which version of a ChartSource is allowed.",
    namespaced,
    status = "VersionPolicyStatus",
    shortname = "vp",
    category = "upkeep",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.sourceRef.name"}"#,
    printcolumn = r#"{"name":"Latest","type":"string","jsonPath":".status.latestVersion"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionPolicySpec {
    /// The `ChartSource` whose tags this policy chooses from.
    pub source_ref: NamespacedRef,
    /// How versions are ordered: exactly one of `semver`, `alphabetical`, `numerical`.
    pub policy: PolicyChoice,
    /// Only tags matching `pattern` count; the order is on the `extract`ed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_tags: Option<FilterTags>,
    /// A version must have been seen at least this long (`72h`, `3d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_release_age: Option<String>,
    /// Hold at exactly this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// Whether the manifest digest of the selected tag is looked up, for the markers that write
    /// it (Flux's `ns:name` setter writes `image:tag@digest`, `:digest` the digest alone), as
    /// Flux `ImagePolicy`'s field of the same name: `Never` (default), `IfNotPresent` (looked
    /// up when the selected tag or image changes, else the digest known is kept), `Always`
    /// (looked up on every decision, so a moved tag is noticed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_reflection_policy: Option<DigestReflectionPolicy>,
}

/// When the digest of the selected tag is looked up (Flux `ImagePolicy`
/// `spec.digestReflectionPolicy`, same values and default).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DigestReflectionPolicy {
    /// No digest: `ns:name` markers get `image:tag`, `:digest` markers are held.
    #[default]
    Never,
    /// Looked up when the tag or image changed or none is known yet; else the known one is kept.
    IfNotPresent,
    /// Looked up every time the policy decides.
    Always,
}

impl DigestReflectionPolicy {
    /// The Flux spelling, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestReflectionPolicy::Never => "Never",
            DigestReflectionPolicy::IfNotPresent => "IfNotPresent",
            DigestReflectionPolicy::Always => "Always",
        }
    }

    /// Whether a digest must be looked up now: `known` is the digest remembered for the same
    /// image and tag (`None` when there is none, or it was for another tag or image).
    pub fn must_fetch(self, known: Option<&str>) -> bool {
        match self {
            DigestReflectionPolicy::Never => false,
            DigestReflectionPolicy::IfNotPresent => known.is_none(),
            DigestReflectionPolicy::Always => true,
        }
    }
}

/// Exactly one of the three.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyChoice {
    /// The highest version in a SemVer range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemverPolicy>,
    /// The last tag in alphabetical order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<OrderPolicy>,
    /// The last tag in numerical order (tags are numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<OrderPolicy>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SemverPolicy {
    /// A Masterminds/semver constraint such as `>=1.2 <2`.
    pub range: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderPolicy {
    /// `asc` (default): the highest wins; `desc`: the lowest wins.
    #[serde(default)]
    pub order: SortOrder,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

impl From<SortOrder> for Order {
    fn from(o: SortOrder) -> Order {
        match o {
            SortOrder::Asc => Order::Asc,
            SortOrder::Desc => Order::Desc,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterTags {
    /// A regex (Rust/RE2 syntax) a tag must match, with named groups for `extract`.
    pub pattern: String,
    /// `$name`/`${name}` of named groups; empty means the whole tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
}

/// The version the policy allows and the one before.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionPolicyStatus {
    /// The version the policy allows now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<String>,
    /// The version allowed before `latestVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// The image name of `latestVersion` (the ImageRepository's `spec.image`, or `host/path` of
    /// an `oci://` ChartSource), when the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_image: Option<String>,
    /// The manifest digest of `latestImage:latestVersion`, when `digestReflectionPolicy` asks
    /// for it (kept across decisions under `IfNotPresent` while the tag and image stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_digest: Option<String>,
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled`, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl VersionPolicySpec {
    fn kind(&self, errors: &mut Vec<FieldError>) -> Option<PolicyKind> {
        let p = &self.policy;
        let given: Vec<&str> = [
            p.semver.as_ref().map(|_| "semver"),
            p.alphabetical.as_ref().map(|_| "alphabetical"),
            p.numerical.as_ref().map(|_| "numerical"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() != 1 {
            let message = if given.is_empty() {
                "no policy kind given".to_owned()
            } else {
                format!("more than one policy kind given: {}", given.join(", "))
            };
            errors.push(FieldError::new("spec.policy", message).with_hint(Some(
                "give exactly one of semver.range, alphabetical.order, numerical.order",
            )));
            return None;
        }
        if let Some(semver) = &p.semver {
            return match Constraints::parse(&semver.range) {
                Ok(c) => Some(PolicyKind::SemverRange(c)),
                Err(e) => {
                    errors.push(
                        FieldError::new("spec.policy.semver.range", e.to_string()).with_hint(
                            e.hint().or_else(|| {
                                Some(
                                "a Masterminds/semver range such as \">=1.2.0 <2.0.0\" or \"~1.4\""
                                    .to_owned(),
                            )
                            }),
                        ),
                    );
                    None
                }
            };
        }
        if let Some(a) = &p.alphabetical {
            return Some(PolicyKind::Alphabetical(a.order.into()));
        }
        p.numerical
            .as_ref()
            .map(|n| PolicyKind::Numerical(n.order.into()))
    }
}

fn filter_error(e: &FilterError) -> FieldError {
    match e {
        FilterError::MissingGroup { groups, .. } => {
            let hint = if groups.is_empty() {
                "the pattern has no groups; add one, e.g. (?P<ts>[0-9]+), or remove extract"
                    .to_owned()
            } else {
                format!("the pattern's groups: {}", groups.join(", "))
            };
            FieldError::new("spec.filterTags.extract", e.to_string()).with_hint(Some(hint))
        }
        FilterError::InvalidPattern { .. } => {
            FieldError::new("spec.filterTags.pattern", e.to_string()).with_hint(Some(
                "a regex with named groups, e.g. ^main-[a-f0-9]+-(?P<ts>[0-9]+), and extract: $ts",
            ))
        }
    }
}

impl VersionPolicy {
    /// Validates the spec into a core [`Policy`].
    pub fn to_core(&self) -> Result<Policy, Vec<FieldError>> {
        let mut errors = Vec::new();
        common::check_name(&self.metadata, &mut errors);
        let spec = &self.spec;
        if spec.source_ref.name.trim().is_empty() {
            errors.push(FieldError::new(
                "spec.sourceRef.name",
                "empty ChartSource name",
            ));
        }
        let kind = spec.kind(&mut errors);
        let filter = spec.filter_tags.as_ref().and_then(|f| {
            let extract = f.extract.as_deref().filter(|e| !e.is_empty());
            match TagFilter::new(&f.pattern, extract) {
                Ok(filter) => Some(filter),
                Err(e) => {
                    errors.push(filter_error(&e));
                    None
                }
            }
        });
        let minimum_release_age = common::opt_duration(
            "spec.minimumReleaseAge",
            spec.minimum_release_age.as_deref(),
            &mut errors,
        );
        if let Some(pin) = &spec.pin
            && pin.trim().is_empty()
        {
            errors.push(
                FieldError::new("spec.pin", "empty pin")
                    .with_hint(Some("remove pin, or give the exact tag")),
            );
        }
        match kind {
            Some(kind) if errors.is_empty() => Ok(Policy {
                kind,
                filter,
                minimum_release_age,
                pin: spec.pin.clone(),
            }),
            _ => Err(errors),
        }
    }
}

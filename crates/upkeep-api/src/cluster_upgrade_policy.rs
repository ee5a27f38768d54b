//! `ClusterUpgradePolicy`: the scheduler that turns a newly allowed release into
//! `ClusterUpgrade` objects.
//!
//! It reuses `ClusterUpgrade`'s matcher type and checks, so a matcher means the same thing in
//! a hand-written upgrade and a generated one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::cluster_upgrade::{
    ClusterGitOps, ClusterMatcher, Trigger, check_matchers, check_trigger, check_unique_names,
    zero_concurrency,
};
use crate::common::{self, LocalRef};

/// The release policy to follow and the upgrades to create for each new release.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "ClusterUpgradePolicy",
    doc = "Creates ClusterUpgrades when a newly allowed release appears.",
    namespaced,
    status = "ClusterUpgradePolicyStatus",
    shortname = "cup",
    category = "upkeep",
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policyRef.name"}"#,
    printcolumn = r#"{"name":"Last Created","type":"string","jsonPath":".status.lastCreated"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterUpgradePolicySpec {
    /// A `VersionPolicy` over the cluster release chart.
    pub policy_ref: LocalRef,
    /// The clusters it governs: those any matcher selects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<ClusterMatcher>,
    /// The stages of every upgrade created, in order (e.g. dev → staging → prod).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<PolicyStage>,
    /// `Automatic` (default: upgrades start on their own) or `Manual` (created suspended).
    #[serde(default)]
    pub approval: Approval,
    /// A MaintenanceSchedule in the same namespace, copied into every upgrade created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_schedule_ref: Option<LocalRef>,
    /// `Direct` (default) or `GitOps`, copied into every upgrade created.
    #[serde(default)]
    pub trigger: Trigger,
    /// The repository for `trigger: GitOps`, copied into every upgrade created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ops: Option<ClusterGitOps>,
    /// Where the new version is written, copied into every upgrade created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_place: Option<crate::version_place::VersionPlaceSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyStage {
    /// The stage's name (unique).
    pub name: String,
    /// The clusters in this stage: those any matcher selects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<ClusterMatcher>,
    /// Wait this long after the stage succeeded before the next starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<String>,
    /// At most this many of the stage's clusters upgrading at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// Whether generated upgrades start on their own (`Automatic`) or are created suspended
/// (`Manual`) until someone unsuspends them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Approval {
    #[default]
    Automatic,
    Manual,
}

/// What the policy created last.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterUpgradePolicyStatus {
    /// `Ready`, `Reconciling`, `Stalled`, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Name of the last `ClusterUpgrade` created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_created: Option<String>,
    /// The release the last `ClusterUpgrade` was created for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_version: Option<String>,
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl ClusterUpgradePolicy {
    /// Validates the spec.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        common::check_name(&self.metadata, &mut errors);
        let spec = &self.spec;
        if spec.policy_ref.name.trim().is_empty() {
            errors.push(FieldError::new(
                "spec.policyRef.name",
                "empty VersionPolicy name",
            ));
        }
        check_matchers("spec.matchers", &spec.matchers, &mut errors);
        check_unique_names(
            "spec.stages",
            spec.stages.iter().map(|s| s.name.as_str()),
            &mut errors,
        );
        for (i, s) in spec.stages.iter().enumerate() {
            check_matchers(
                &format!("spec.stages[{i}].matchers"),
                &s.matchers,
                &mut errors,
            );
            common::opt_duration(
                &format!("spec.stages[{i}].soak"),
                s.soak.as_deref(),
                &mut errors,
            );
            if s.max_concurrency == Some(0) {
                errors.push(zero_concurrency(&format!(
                    "spec.stages[{i}].maxConcurrency"
                )));
            }
        }
        check_trigger("spec", spec.trigger, spec.git_ops.as_ref(), &mut errors);
        if let Some(p) = &spec.version_place {
            p.validate_for("spec.versionPlace", spec.trigger, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

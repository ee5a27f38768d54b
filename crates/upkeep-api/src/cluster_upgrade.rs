//! `ClusterUpgrade`: one upgrade campaign over a set of clusters.
//!
//! Field names follow the design notes (`matchers`, `targetVersion`, `startTime`, the status
//! fields) so that manifests written against them load unchanged. Matchers are shared with
//! `ClusterUpgradePolicy`; a regex matcher must match the whole value, so it is compiled
//! anchored and validated here rather than surprising anyone at rollout time.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use upkeep_core::rollout::{self, Campaign, ClusterPhase, Progress, StageSpec};
use upkeep_core::selector::{Matcher, Matchers};
use upkeep_core::version::Version;

use crate::FieldError;
use crate::app_upgrade_automation::{CommitSpec, GitSpec, PullRequestStatus, PushSpec};
use crate::common::{self, LocalRef};
use crate::release::Resolution;

mod inputs;
pub(crate) use inputs::selector_error;
pub use inputs::{
    InputError, Inputs, NamedSchedule, cluster_input, current_at, governing, inputs,
    label_selector, one_cluster, overlaps, spec_message,
};

/// Selects clusters by name (no `key`) or by the value of a label (`key`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterMatcher {
    /// A name for this matcher, for messages.
    pub name: String,
    /// Label key; without it the cluster name is matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The cluster name or label value to match (a regex with `isRegex`).
    pub value: String,
    /// `value` is a regex that must match the whole name/label value.
    #[serde(default)]
    pub is_regex: bool,
}

/// Which clusters, to which release, when, and in what order.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "upkeep.dev",
    version = "v1alpha1",
    kind = "ClusterUpgrade",
    doc = "One upgrade campaign over a set of Cluster API clusters.",
    namespaced,
    status = "ClusterUpgradeStatus",
    shortname = "cu",
    category = "upkeep",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".status.toRelease","description":"The release the clusters are upgraded to: targetVersion, or what releaseRef resolved to."}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Release Ref","type":"string","jsonPath":".spec.releaseRef.name","priority":1}"#,
    printcolumn = r#"{"name":"Outcome","type":"string","jsonPath":".status.outcome","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","priority":1}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterUpgradeSpec {
    /// The clusters to upgrade: those any matcher selects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<ClusterMatcher>,
    /// The release to upgrade to; exactly one of this and `releaseRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// The release to upgrade to: a VersionPolicy's latest allowed version (the default), or
    /// a Giant Swarm `Release` (`kind: Release`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_ref: Option<ReleaseRef>,
    /// Do not start before this RFC 3339 instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// A MaintenanceSchedule in the same namespace: start clusters only in its allowed time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_schedule_ref: Option<LocalRef>,
    /// The order and pace: stages, concurrency, per-cluster timeout, what a failure does.
    /// Always stored, with its defaults, even when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub strategy: Option<Strategy>,
    /// Start only after these upgrades succeeded and soaked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<After>,
    /// How a cluster's upgrade is started: `Direct` (default: patch the Cluster in the
    /// management cluster) or `GitOps` (commit the new version to `gitOps`'s repository).
    #[serde(default)]
    pub trigger: Trigger,
    /// The repository holding the clusters' manifests; required with `trigger: GitOps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ops: Option<ClusterGitOps>,
    /// Where the current version is read and written; default: the operator's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_source: Option<VersionSource>,
    /// Where the new version is written (default `type: Auto`: found per cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_place: Option<crate::version_place::VersionPlaceSpec>,
    /// An approval gate: start no cluster while true (running ones are still watched).
    #[serde(default)]
    pub suspend: bool,
    /// Tell people before a cluster's upgrade starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<Announce>,
}

/// `releaseRef`: what the release to upgrade to is read from. `kind` absent or
/// `VersionPolicy` (apiVersion absent or `upkeep.dev/*`): the VersionPolicy's
/// `status.latestVersion`, in the upgrade's namespace. `kind: Release` (apiVersion absent,
/// `release.giantswarm.io/v1alpha1`, or the design notes' `application.giantswarm.io/v1alpha1`):
/// the cluster-scoped Giant Swarm Release of that name (`v20.1.0`, `aws-29.5.0`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseRef {
    /// `upkeep.dev/v1alpha1` (VersionPolicy) or `release.giantswarm.io/v1alpha1` (Release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `VersionPolicy` (the default) or `Release`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The VersionPolicy's or Release's name.
    pub name: String,
}

/// What a [`ReleaseRef`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseKind {
    /// An upkeep VersionPolicy in the upgrade's namespace.
    VersionPolicy,
    /// A Giant Swarm Release (cluster-scoped).
    Release,
}

impl ReleaseRef {
    /// A reference to the VersionPolicy `name`, spelled out.
    pub fn version_policy(name: impl Into<String>) -> ReleaseRef {
        ReleaseRef {
            api_version: Some(crate::API_VERSION.to_owned()),
            kind: Some("VersionPolicy".to_owned()),
            name: name.into(),
        }
    }

    /// What the reference names, or the located error (at `base`, e.g. `spec.releaseRef`).
    pub fn kind_at(&self, base: &str) -> Result<ReleaseKind, FieldError> {
        let api = self.api_version.as_deref().map(str::trim);
        match self.kind.as_deref().map(str::trim) {
            None | Some("VersionPolicy") => match api {
                None => Ok(ReleaseKind::VersionPolicy),
                Some(v) if v.strip_prefix("upkeep.dev/").is_some_and(|r| !r.is_empty()) => {
                    Ok(ReleaseKind::VersionPolicy)
                }
                Some(v) => Err(FieldError::new(
                    format!("{base}.apiVersion"),
                    format!("a VersionPolicy is not served at {v:?}"),
                )
                .with_hint(Some(
                    "use apiVersion: upkeep.dev/v1alpha1 (or leave it out); for a Giant Swarm release give kind: Release",
                ))),
            },
            Some(crate::release::KIND) => match api {
                None => Ok(ReleaseKind::Release),
                Some(v) if v == crate::release::API_VERSION || v == crate::release::RFC_API_VERSION => {
                    Ok(ReleaseKind::Release)
                }
                Some(v) => Err(FieldError::new(
                    format!("{base}.apiVersion"),
                    format!("a Release is not served at {v:?}"),
                )
                .with_hint(Some(
                    "Giant Swarm Releases are release.giantswarm.io/v1alpha1 (application.giantswarm.io/v1alpha1, as the design notes write it, is accepted too)",
                ))),
            },
            Some(other) => Err(FieldError::new(
                format!("{base}.kind"),
                format!("unknown kind {other:?}"),
            )
            .with_hint(Some(
                "kind: VersionPolicy (upkeep.dev/v1alpha1, the default) or kind: Release (release.giantswarm.io/v1alpha1)",
            ))),
        }
    }

    /// The name of the VersionPolicy this refers to, when it refers to one.
    pub fn policy_name(&self) -> Option<&str> {
        (self.kind_at("spec.releaseRef") == Ok(ReleaseKind::VersionPolicy))
            .then_some(self.name.as_str())
    }

    /// The name of the Giant Swarm Release this refers to, when it refers to one.
    pub fn release_name(&self) -> Option<&str> {
        (self.kind_at("spec.releaseRef") == Ok(ReleaseKind::Release)).then_some(self.name.as_str())
    }

    /// Checks the reference at `base`: a known kind at a known apiVersion, a name, and for a
    /// Release a name Giant Swarm gives releases.
    pub(crate) fn check(&self, base: &str, errors: &mut Vec<FieldError>) {
        let kind = match self.kind_at(base) {
            Ok(k) => k,
            Err(e) => {
                errors.push(e);
                return;
            }
        };
        if self.name.trim().is_empty() {
            errors.push(FieldError::new(format!("{base}.name"), "empty name"));
        } else if kind == ReleaseKind::Release && crate::release::parse_name(&self.name).is_none() {
            errors.push(
                FieldError::new(
                    format!("{base}.name"),
                    format!("{:?} is not a Giant Swarm release name", self.name),
                )
                .with_hint(Some(
                    "v<version> (v20.1.0) or <provider>-<version> (aws-29.5.0), as `kubectl gs get releases` lists them",
                )),
            );
        }
    }
}

/// Where `trigger: GitOps` commits: the same repository, commit and push settings as an
/// `AppUpgradeAutomation` (`git`, `commit`, `push` with `pullRequest`), and the directory
/// holding the `Cluster` manifests.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterGitOps {
    /// The repository to write to.
    pub git: GitSpec,
    /// Directory in the repository holding the Cluster manifests, relative (default: the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The commit written: author, message, signing.
    pub commit: CommitSpec,
    /// Where the commit is pushed (default: the checked-out branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
}

/// Checks a `gitOps` block at `base` (`spec.gitOps`): the repository URL, at most one ref, a
/// relative path inside the repository, an author, a usable pull-request API URL.
pub(crate) fn check_git_ops(base: &str, g: &ClusterGitOps, errors: &mut Vec<FieldError>) {
    if g.git.url.trim().is_empty() {
        errors.push(
            FieldError::new(format!("{base}.git.url"), "empty repository URL").with_hint(Some(
                "e.g. https://github.com/org/fleet.git or file:///srv/git/fleet",
            )),
        );
    }
    if g.git
        .reference
        .as_ref()
        .is_some_and(|r| r.tag.is_some() || r.commit.is_some())
    {
        errors.push(
            FieldError::new(
                format!("{base}.git.ref"),
                "a tag or commit cannot be pushed to",
            )
            .with_hint(Some("give ref.branch (the branch the manifests are on)")),
        );
    }
    if let Some(path) = &g.path {
        let p = std::path::Path::new(path);
        if p.is_absolute() {
            errors.push(
                FieldError::new(
                    format!("{base}.path"),
                    format!("path {path:?} must be relative to the repository root"),
                )
                .with_hint(Some("e.g. ./clusters/production")),
            );
        } else if p.components().any(|c| c == std::path::Component::ParentDir) {
            errors.push(
                FieldError::new(
                    format!("{base}.path"),
                    format!("path {path:?} must not contain .."),
                )
                .with_hint(Some("paths stay inside the repository")),
            );
        }
    }
    if g.commit.author.name.trim().is_empty() {
        errors.push(FieldError::new(
            format!("{base}.commit.author.name"),
            "empty author name",
        ));
    }
    if g.commit.author.email.trim().is_empty() {
        errors.push(FieldError::new(
            format!("{base}.commit.author.email"),
            "empty author email",
        ));
    }
    if let Some(url) = g
        .push
        .as_ref()
        .and_then(|p| p.pull_request.as_ref())
        .and_then(|pr| pr.api_url.as_deref())
        && !is_http_url(url)
    {
        errors.push(
            FieldError::new(
                format!("{base}.push.pullRequest.apiUrl"),
                format!("invalid API URL {url:?}"),
            )
            .with_hint(Some("an http:// or https:// URL")),
        );
    }
}

/// `trigger: GitOps` needs a `gitOps` block; one without GitOps is checked too (it is ignored).
pub(crate) fn check_trigger(
    base: &str,
    trigger: Trigger,
    git_ops: Option<&ClusterGitOps>,
    errors: &mut Vec<FieldError>,
) {
    match git_ops {
        Some(g) => check_git_ops(&format!("{base}.gitOps"), g, errors),
        None if trigger == Trigger::GitOps => errors.push(
            FieldError::new(
                format!("{base}.gitOps"),
                "trigger GitOps needs the repository holding the Cluster manifests",
            )
            .with_hint(Some(
                "add gitOps: {git: {url: …}, path: clusters/, commit: {author: {name: …, email: …}}}, or use trigger: Direct",
            )),
        ),
        None => {}
    }
}

/// Announcements: an `UpgradeAnnounced` Event (and a webhook call) this long before a cluster's
/// expected start.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Announce {
    /// How long before the expected start (`24h`, `2d`).
    pub before: String,
    /// POSTed a JSON body `{cluster, upgrade, from, to, expectedStart}` per announcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Strategy {
    /// Groups of clusters upgraded one after another, in this order; a cluster belongs to the
    /// first stage it matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    /// At most this many clusters upgrading at once (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// How long one cluster may take before it counts as failed (default `2h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = DEFAULT_TIMEOUT_TEXT))]
    pub timeout: Option<String>,
    /// What a failed cluster does to the rest: `Halt` (default: start no more clusters) or
    /// `Continue`.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stage {
    /// The stage's name (unique), shown in status.
    pub name: String,
    /// The campaign's clusters in this stage: those any matcher selects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<ClusterMatcher>,
    /// At most this many of the stage's clusters upgrading at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Wait this long after the stage succeeded before the next starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum FailurePolicy {
    #[default]
    Halt,
    Continue,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct After {
    /// A ClusterUpgrade in the same namespace.
    pub name: String,
    /// How long after it succeeded to wait (`24h`, `3d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Trigger {
    /// Patch the cluster's release label / topology version in the management cluster.
    #[default]
    Direct,
    /// Commit the new version to the GitOps repository.
    GitOps,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionSource {
    /// The `release.giantswarm.io/version` label.
    Label,
    /// `spec.topology.version`.
    Topology,
}

/// A campaign's status. Its size is bounded whatever the fleet: `clusters` holds only the
/// clusters in flight, failed or halted, and waiting or skipped ones in the room left (at most
/// [`MAX_STATUS_CLUSTERS`] in all), `counts` counts every cluster, and each cluster's upgrade
/// is a `ClusterUpgradeRecord` of its own.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterUpgradeStatus {
    /// When the campaign's first cluster was triggered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<Time>,
    /// Pending, Waiting, Running or Finished; set once the campaign was reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why the campaign is in its state (`Window`, `Suspended`, `InvalidSpec`, `Upgrading`,
    /// `PatchFailed`, `Succeeded`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Progress for people and printer columns: `3/10 succeeded` (`, 1 failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The stage running now, or the last one that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// How many selected clusters are in each state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<ClusterCounts>,
    /// Clusters in flight, failed or halted that `clusters` leaves out (it holds at most
    /// [`MAX_STATUS_CLUSTERS`]); their records hold them. Waiting and skipped clusters left
    /// out are in `counts` only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_clusters: u32,
    /// Succeeded or Failed, once the campaign is Finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// When the campaign finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The lowest version the campaign's triggered clusters were at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_release: Option<String>,
    /// The version the campaign upgrades to (`targetVersion`, or what `releaseRef` resolved to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_release: Option<String>,
    /// The clusters in flight (Triggered, Upgrading), failed or halted: failed first, then
    /// halted, upgrading, triggered, newest first within each; then waiting and skipped ones,
    /// by name, in the room left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterState>,
    /// `trigger: GitOps`: the last commit pushed for this upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_commit: Option<String>,
    /// `trigger: GitOps` with `push.pullRequest`: the pull request carrying the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestStatus>,
    /// `Ready`, `Reconciling`, `Stalled`, `SpecChangedAfterFinish` (kstatus conventions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The most entries `status.clusters` holds.
pub const MAX_STATUS_CLUSTERS: usize = 100;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many of a campaign's clusters are in each state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCounts {
    /// Every cluster the campaign selects or has touched.
    #[serde(default)]
    pub total: u32,
    /// Not started yet (window, stage, concurrency, …).
    #[serde(default)]
    pub waiting: u32,
    /// Change recorded and being made or acknowledged.
    #[serde(default)]
    pub triggered: u32,
    /// The cluster reports its upgrade in progress.
    #[serde(default)]
    pub upgrading: u32,
    /// At the target and healthy.
    #[serde(default)]
    pub succeeded: u32,
    /// Failed or timed out.
    #[serde(default)]
    pub failed: u32,
    /// Already at the target, not a version, or not in any stage.
    #[serde(default)]
    pub skipped: u32,
    /// Never started: `failurePolicy: Halt` stopped the campaign.
    #[serde(default)]
    pub halted: u32,
}

impl ClusterCounts {
    /// Counts one cluster in `state` (a `ClusterPhase` name; anything else counts in the total
    /// only).
    pub fn add(&mut self, state: &str) {
        self.total += 1;
        match state {
            "Waiting" => self.waiting += 1,
            "Triggered" => self.triggered += 1,
            "Upgrading" => self.upgrading += 1,
            "Succeeded" => self.succeeded += 1,
            "Failed" => self.failed += 1,
            "Skipped" => self.skipped += 1,
            "Halted" => self.halted += 1,
            _ => {}
        }
    }

    /// `3/10 succeeded`, with `, 1 failed` when any failed.
    pub fn progress(&self) -> String {
        if self.failed > 0 {
            format!(
                "{}/{} succeeded, {} failed",
                self.succeeded, self.total, self.failed
            )
        } else {
            format!("{}/{} succeeded", self.succeeded, self.total)
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    /// The Cluster's name (in the campaign's namespace).
    pub name: String,
    /// Waiting, Triggered, Upgrading, Succeeded, Failed, Skipped or Halted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why it waits, failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When upkeep recorded the cluster's start (before making the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<Time>,
    /// When the change was acknowledged (the patch answered 2xx, or the commit was pushed):
    /// the timeout runs from here. Unset while the change is refused or not made yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Time>,
    /// When the cluster's upgrade succeeded or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The version the cluster was at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_release: Option<String>,
    /// The version it is upgraded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_release: Option<String>,
    /// The stage the cluster belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// When the upgrade was announced for this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_at: Option<Time>,
    /// The Alertmanager silence held while the cluster upgrades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_id: Option<String>,
}

/// Checks a list of matchers at `base` (`spec.matchers`), compiling regex values anchored.
pub(crate) fn check_matchers(
    base: &str,
    matchers: &[ClusterMatcher],
    errors: &mut Vec<FieldError>,
) {
    for (i, m) in matchers.iter().enumerate() {
        if m.is_regex {
            common::regex(&format!("{base}[{i}].value"), &m.value, true, errors);
        }
        if m.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            errors.push(
                FieldError::new(format!("{base}[{i}].key"), "empty label key").with_hint(Some(
                    "remove key to match cluster names, or give a label key",
                )),
            );
        }
    }
}

/// Checks that stage names are unique, reporting each repeat at its own `name`.
pub(crate) fn check_unique_names<'a>(
    base: &str,
    names: impl Iterator<Item = &'a str>,
    errors: &mut Vec<FieldError>,
) {
    let mut seen = HashSet::new();
    for (i, name) in names.enumerate() {
        if name.trim().is_empty() {
            errors.push(FieldError::new(
                format!("{base}[{i}].name"),
                "empty stage name",
            ));
        } else if !seen.insert(name) {
            errors.push(
                FieldError::new(
                    format!("{base}[{i}].name"),
                    format!("duplicate stage name {name:?}"),
                )
                .with_hint(Some("stage names must be unique")),
            );
        }
    }
}

fn check_stages(base: &str, stages: &[Stage], errors: &mut Vec<FieldError>) {
    check_unique_names(base, stages.iter().map(|s| s.name.as_str()), errors);
    for (i, s) in stages.iter().enumerate() {
        check_matchers(&format!("{base}[{i}].matchers"), &s.matchers, errors);
        common::opt_duration(&format!("{base}[{i}].soak"), s.soak.as_deref(), errors);
        if s.max_concurrency == Some(0) {
            errors.push(zero_concurrency(&format!("{base}[{i}].maxConcurrency")));
        }
    }
}

pub(crate) fn zero_concurrency(path: &str) -> FieldError {
    FieldError::new(path, "maxConcurrency 0 would never upgrade anything")
        .with_hint(Some("use 1 or more, or remove the field for no limit"))
}

/// An absolute `http://` or `https://` URL with a host and no blanks.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty() && !r.starts_with('/') && !r.chars().any(char::is_whitespace)
    })
}

impl ClusterUpgrade {
    /// The target version, when given as `targetVersion` (and valid).
    pub fn target_version(&self) -> Option<Version> {
        self.spec
            .target_version
            .as_deref()
            .and_then(|v| Version::parse(v.trim()))
    }

    /// Validates the spec.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        common::check_name(&self.metadata, &mut errors);
        let spec = &self.spec;
        check_matchers("spec.matchers", &spec.matchers, &mut errors);
        match (&spec.target_version, &spec.release_ref) {
            (Some(_), Some(_)) => errors.push(
                FieldError::new("spec.releaseRef", "both targetVersion and releaseRef given")
                    .with_hint(Some("give exactly one of targetVersion and releaseRef")),
            ),
            (None, None) => errors.push(
                FieldError::new(
                    "spec.targetVersion",
                    "neither targetVersion nor releaseRef given",
                )
                .with_hint(Some("give exactly one of targetVersion and releaseRef")),
            ),
            (Some(v), None) => {
                if Version::parse(v.trim()).is_none() {
                    errors.push(
                        FieldError::new("spec.targetVersion", format!("invalid version {v:?}"))
                            .with_hint(Some("a SemVer version such as 30.1.2 or v30.1.2")),
                    );
                }
            }
            (None, Some(r)) => r.check("spec.releaseRef", &mut errors),
        }
        if let Some(t) = &spec.start_time
            && t.trim().parse::<jiff::Timestamp>().is_err()
        {
            errors.push(
                FieldError::new("spec.startTime", format!("invalid RFC 3339 time {t:?}"))
                    .with_hint(Some(
                        "with an offset, e.g. 2025-03-01T09:00:00Z or 2025-03-01T10:00:00+01:00",
                    )),
            );
        }
        if let Some(s) = &spec.strategy {
            check_stages("spec.strategy.stages", &s.stages, &mut errors);
            common::opt_duration("spec.strategy.timeout", s.timeout.as_deref(), &mut errors);
            if s.max_concurrency == Some(0) {
                errors.push(zero_concurrency("spec.strategy.maxConcurrency"));
            }
        }
        if let Some(a) = &spec.announce {
            common::duration("spec.announce.before", &a.before, &mut errors);
            if let Some(url) = &a.webhook_url
                && !is_http_url(url)
            {
                errors.push(
                    FieldError::new(
                        "spec.announce.webhookUrl",
                        format!("invalid webhook URL {url:?}"),
                    )
                    .with_hint(Some("an http:// or https:// URL")),
                );
            }
        }
        check_trigger("spec", spec.trigger, spec.git_ops.as_ref(), &mut errors);
        if let Some(p) = &spec.version_place {
            p.validate_for("spec.versionPlace", spec.trigger, &mut errors);
        }
        for (i, a) in spec.after.iter().enumerate() {
            if a.name.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("spec.after[{i}].name"),
                    "empty ClusterUpgrade name",
                ));
            }
            common::opt_duration(
                &format!("spec.after[{i}].soak"),
                a.soak.as_deref(),
                &mut errors,
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The per-cluster timeout when `strategy.timeout` is not given.
pub const DEFAULT_TIMEOUT: SignedDuration = SignedDuration::from_hours(2);

/// [`DEFAULT_TIMEOUT`] as the CRD's default for `strategy.timeout` writes it, so the stored
/// object shows the timeout that applies (a test checks the two agree).
pub const DEFAULT_TIMEOUT_TEXT: &str = "2h";

/// Compiles matchers the spec check accepted (a rejected one is left out, never a panic).
fn matchers(list: &[ClusterMatcher]) -> Matchers {
    Matchers(
        list.iter()
            .filter_map(|m| {
                Matcher::new(Some(m.name.clone()), m.key.clone(), &m.value, m.is_regex).ok()
            })
            .collect(),
    )
}

fn soak(value: Option<&str>) -> Option<SignedDuration> {
    value.and_then(|v| crate::duration::parse_duration(v).ok())
}

impl From<FailurePolicy> for rollout::FailurePolicy {
    fn from(p: FailurePolicy) -> Self {
        match p {
            FailurePolicy::Halt => rollout::FailurePolicy::Halt,
            FailurePolicy::Continue => rollout::FailurePolicy::Continue,
        }
    }
}

impl ClusterUpgrade {
    /// The campaign the rollout core plans, after [`ClusterUpgrade::validate`].
    ///
    /// `release` is what the `releaseRef` resolved to (`None`: not resolved yet, every cluster
    /// waits; a refused or missing release waits with its reason; a release for one provider
    /// skips the clusters of others); with `targetVersion` it is ignored. `finished` tells, for
    /// each `after` name, how that upgrade ended and when (`None`: not finished, or not found).
    pub fn to_campaign(
        &self,
        release: Option<&Resolution>,
        finished: impl Fn(&str) -> Option<(rollout::Outcome, Timestamp)>,
    ) -> Result<Campaign, Vec<FieldError>> {
        self.validate()?;
        let spec = &self.spec;
        let strategy = spec.strategy.clone().unwrap_or_default();
        let (target, no_target, provider) = if spec.target_version.is_some() {
            (self.target_version(), None, None)
        } else {
            match release {
                None => (None, None, None),
                Some(r) => match r.version() {
                    Some(v) => match Version::parse(v.trim()) {
                        Some(v) => (Some(v), None, r.provider().map(ToOwned::to_owned)),
                        None => (
                            None,
                            Some(format!("the release {v:?} is not a version")),
                            None,
                        ),
                    },
                    None => (None, r.reason().map(ToOwned::to_owned), None),
                },
            }
        };
        Ok(Campaign {
            name: self.metadata.name.clone().unwrap_or_default(),
            target,
            no_target,
            provider,
            start_time: spec
                .start_time
                .as_deref()
                .and_then(|t| t.trim().parse().ok()),
            suspended: spec.suspend,
            matchers: matchers(&spec.matchers),
            stages: strategy
                .stages
                .iter()
                .map(|s| StageSpec {
                    name: s.name.clone(),
                    matchers: matchers(&s.matchers),
                    max_concurrency: s.max_concurrency,
                    soak: soak(s.soak.as_deref()),
                })
                .collect(),
            max_concurrency: strategy.max_concurrency,
            timeout: soak(strategy.timeout.as_deref()).unwrap_or(DEFAULT_TIMEOUT),
            failure_policy: strategy.failure_policy.into(),
            after: spec
                .after
                .iter()
                .map(|a| rollout::AfterDep {
                    name: a.name.clone(),
                    soak: soak(a.soak.as_deref()),
                    finished: finished(&a.name),
                })
                .collect(),
            announce_before: spec.announce.as_ref().and_then(|a| soak(Some(&a.before))),
        })
    }
}

impl ClusterUpgradeStatus {
    /// How the campaign ended and when, once `state` is `Finished` with an outcome.
    pub fn finished(&self) -> Option<(rollout::Outcome, Timestamp)> {
        if self.state.as_deref() != Some(rollout::CampaignState::Finished.as_str()) {
            return None;
        }
        let outcome = rollout::Outcome::parse(self.outcome.as_deref()?)?;
        Some((outcome, self.finished_at.as_ref()?.0))
    }

    /// The recorded entry of `cluster`.
    pub fn cluster(&self, cluster: &str) -> Option<&ClusterState> {
        self.clusters.iter().find(|c| c.name == cluster)
    }

    /// This status with the per-cluster state of the campaign's records (`records`, one entry
    /// per cluster) merged into `clusters`: what the core reads as recorded. For a cluster in
    /// both, the entry further along (Waiting < Triggered < Upgrading < Succeeded, Failed,
    /// Skipped) wins, and a time or reason it lacks is taken from the other; on a tie the
    /// status entry wins (it holds the silence). Status entries without a record (a campaign
    /// recorded by an upkeep before records) are kept as they are.
    #[must_use]
    pub fn with_records(&self, records: &[ClusterState]) -> ClusterUpgradeStatus {
        self.clone().into_with_records(records.to_vec())
    }

    /// [`ClusterUpgradeStatus::with_records`], taking both: the controller merges every
    /// record of a campaign of thousands of clusters once per reconcile, without copies.
    #[must_use]
    pub fn into_with_records(mut self, records: Vec<ClusterState>) -> ClusterUpgradeStatus {
        if records.is_empty() {
            return self;
        }
        let at: std::collections::HashMap<String, usize> = self
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        for record in records {
            match at.get(record.name.as_str()) {
                None => self.clusters.push(record),
                Some(&i) => {
                    let entry = &mut self.clusters[i];
                    let newer = rank(record.state.as_deref()) > rank(entry.state.as_deref());
                    let silence_id = entry.silence_id.take();
                    let (mut first, second) = if newer {
                        (record, std::mem::take(entry))
                    } else {
                        (std::mem::take(entry), record)
                    };
                    first.reason = first.reason.or(second.reason);
                    first.triggered_at = first.triggered_at.or(second.triggered_at);
                    first.finished_at = first.finished_at.or(second.finished_at);
                    first.from_release = first.from_release.or(second.from_release);
                    first.to_release = first.to_release.or(second.to_release);
                    first.stage = first.stage.or(second.stage);
                    first.announced_at = first.announced_at.or(second.announced_at);
                    first.acknowledged_at = first.acknowledged_at.or(second.acknowledged_at);
                    first.silence_id = silence_id.or(first.silence_id);
                    *entry = first;
                }
            }
        }
        self
    }
}

/// How far along a recorded state is; unknown or missing is before everything.
fn rank(state: Option<&str>) -> u8 {
    match state {
        Some("Waiting" | "Halted") => 1,
        Some("Triggered") => 2,
        Some("Upgrading") => 3,
        Some("Succeeded" | "Failed" | "Skipped") => 4,
        _ => 0,
    }
}

impl ClusterState {
    /// What was recorded, as the core reads it; `None` when the state is missing or unknown
    /// (the cluster counts as never touched).
    pub fn progress(&self) -> Option<Progress> {
        let state = ClusterPhase::parse(self.state.as_deref()?)?;
        Some(Progress {
            state,
            triggered_at: self.triggered_at.as_ref().map(|t| t.0),
            acknowledged_at: self.acknowledged_at.as_ref().map(|t| t.0),
            finished_at: self.finished_at.as_ref().map(|t| t.0),
            from: self.from_release.clone(),
            reason: self.reason.clone(),
            announced_at: self.announced_at.as_ref().map(|t| t.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[allow(clippy::needless_pass_by_value)] // callers build the value inline
    fn upgrade(spec: serde_json::Value, status: Option<serde_json::Value>) -> ClusterUpgrade {
        let mut object = json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgrade",
            "metadata": {"name": "u", "namespace": "org"},
            "spec": spec,
        });
        if let Some(s) = status {
            object["status"] = s;
        }
        serde_json::from_value(object).expect("a ClusterUpgrade")
    }

    fn ready(version: &str) -> Resolution {
        Resolution::Ready {
            version: version.to_owned(),
            provider: None,
        }
    }

    #[test]
    fn announce_is_validated_at_its_fields() {
        let cases = [
            (json!({"before": "24h"}), None, "before only: valid"),
            (
                json!({"before": "1d", "webhookUrl": "https://hooks.example/x"}),
                None,
                "with a webhook",
            ),
            (
                json!({"before": "soon"}),
                Some("spec.announce.before"),
                "before must be a duration",
            ),
            (
                json!({"before": "1h", "webhookUrl": "hooks.example/x"}),
                Some("spec.announce.webhookUrl"),
                "a webhook must be an http(s) URL",
            ),
            (
                json!({"before": "1h", "webhookUrl": "https:///path"}),
                Some("spec.announce.webhookUrl"),
                "a webhook URL needs a host",
            ),
        ];
        for (announce, error, why) in cases {
            let u = upgrade(
                json!({"matchers": [{"name": "a", "value": "a"}], "targetVersion": "30.0.0",
                       "announce": announce}),
                None,
            );
            let got = u.validate().err().map(|e| e[0].path.clone());
            assert_eq!(got.as_deref(), error, "{why}");
        }
    }

    #[test]
    fn git_ops_is_validated_at_its_fields() {
        let repo = json!({"git": {"url": "https://git.example/fleet.git"},
                          "commit": {"author": {"name": "upkeep", "email": "upkeep@example.com"}}});
        let with = |patch: serde_json::Value| {
            let mut g = repo.clone();
            for (k, v) in patch.as_object().expect("an object") {
                g[k] = v.clone();
            }
            g
        };
        let cases = [
            (
                "GitOps",
                Some(repo.clone()),
                None,
                "GitOps with a repository: valid",
            ),
            (
                "GitOps",
                None,
                Some("spec.gitOps"),
                "GitOps needs the repository",
            ),
            ("Direct", None, None, "Direct needs no repository"),
            (
                "Direct",
                Some(with(json!({"git": {"url": " "}}))),
                Some("spec.gitOps.git.url"),
                "a given repository is checked even when unused",
            ),
            (
                "GitOps",
                Some(with(json!({"path": "/clusters"}))),
                Some("spec.gitOps.path"),
                "the path is relative to the repository root",
            ),
            (
                "GitOps",
                Some(with(json!({"path": "clusters/../.."}))),
                Some("spec.gitOps.path"),
                "the path stays inside the repository",
            ),
            (
                "GitOps",
                Some(with(
                    json!({"git": {"url": "https://git.example/f.git", "ref": {"tag": "v1"}}}),
                )),
                Some("spec.gitOps.git.ref"),
                "a tag cannot be pushed to",
            ),
            (
                "GitOps",
                Some(with(
                    json!({"commit": {"author": {"name": "upkeep", "email": ""}}}),
                )),
                Some("spec.gitOps.commit.author.email"),
                "commits need an author email",
            ),
            (
                "GitOps",
                Some(with(
                    json!({"push": {"branch": "upgrades", "pullRequest": {"provider": "gitea", "apiUrl": "forge"}}}),
                )),
                Some("spec.gitOps.push.pullRequest.apiUrl"),
                "the forge API must be an http(s) URL",
            ),
            (
                "GitOps",
                Some(with(
                    json!({"path": "clusters", "push": {"branch": "upgrades", "pullRequest": {"provider": "github"}}}),
                )),
                None,
                "push branch with a pull request: valid",
            ),
        ];
        for (trigger, git_ops, error, why) in cases {
            let mut spec = json!({"matchers": [{"name": "a", "value": "a"}],
                                  "targetVersion": "30.0.0", "trigger": trigger});
            if let Some(g) = git_ops {
                spec["gitOps"] = g;
            }
            let got = upgrade(spec, None).validate().err();
            let path = got.as_ref().map(|e| e[0].path.clone());
            assert_eq!(path.as_deref(), error, "{why}: {got:?}");
            if error == Some("spec.gitOps") {
                assert!(got.expect("errors")[0].hint.is_some(), "{why}: a hint");
            }
        }
    }

    #[test]
    fn conversion_to_a_campaign() {
        let u = upgrade(
            json!({
                "matchers": [{"name": "all", "value": ".*", "isRegex": true}],
                "releaseRef": {"name": "release"},
                "startTime": "2026-12-01T00:00:00Z",
                "strategy": {"stages": [{"name": "dev", "matchers": [{"name": "d", "key": "env", "value": "dev"}], "soak": "1h"}],
                             "maxConcurrency": 2, "failurePolicy": "Continue"},
                "after": [{"name": "first", "soak": "30m"}, {"name": "second"}],
                "suspend": true,
                "announce": {"before": "1d"},
            }),
            None,
        );
        let done: Timestamp = "2026-11-01T00:00:00Z".parse().expect("ts");
        let c = u
            .to_campaign(Some(&ready("31.0.0")), |n| {
                (n == "first").then_some((rollout::Outcome::Succeeded, done))
            })
            .expect("valid");
        let cases = [
            (
                c.target.map(|v| v.to_string()),
                Some("31.0.0".to_owned()),
                "releaseRef: the resolved release",
            ),
            (
                c.start_time.map(|t| t.to_string()),
                Some("2026-12-01T00:00:00Z".to_owned()),
                "start time parsed",
            ),
            (
                Some(c.timeout.to_string()),
                Some(DEFAULT_TIMEOUT.to_string()),
                "no timeout: the default 2h",
            ),
            (
                c.announce_before.map(|d| d.to_string()),
                Some(SignedDuration::from_hours(24).to_string()),
                "announce.before",
            ),
            (
                c.stages[0].soak.map(|d| d.to_string()),
                Some(SignedDuration::from_hours(1).to_string()),
                "stage soak",
            ),
            (
                c.after[0].soak.map(|d| d.to_string()),
                Some(SignedDuration::from_mins(30).to_string()),
                "after soak",
            ),
        ];
        for (got, want, why) in cases {
            assert_eq!(got, want, "{why}");
        }
        assert!(c.suspended, "suspend carried");
        assert_eq!(c.max_concurrency, Some(2));
        assert_eq!(c.failure_policy, rollout::FailurePolicy::Continue);
        assert_eq!(
            c.after[0].finished,
            Some((rollout::Outcome::Succeeded, done)),
            "a finished dependency"
        );
        assert_eq!(c.after[1].finished, None, "an unfinished dependency");

        let fixed = upgrade(
            json!({"matchers": [{"name": "a", "value": "a"}], "targetVersion": "v30.1.0",
                   "strategy": {"timeout": "45m"}}),
            None,
        );
        let c = fixed
            .to_campaign(Some(&ready("99.0.0")), |_| None)
            .expect("valid");
        assert_eq!(
            c.target,
            Version::parse("30.1.0"),
            "targetVersion wins over any release"
        );
        assert_eq!(
            c.timeout,
            SignedDuration::from_mins(45),
            "an explicit timeout"
        );
        let broken = upgrade(json!({"matchers": [{"name": "a", "value": "("}]}), None);
        assert!(
            broken.to_campaign(None, |_| None).is_err(),
            "an invalid spec is no campaign"
        );
    }

    #[test]
    fn records_merge_into_the_recorded_status() {
        let t = |s: &str| Some(Time(s.parse().expect("ts")));
        let entry = |name: &str, state: &str| ClusterState {
            name: name.into(),
            state: Some(state.into()),
            ..ClusterState::default()
        };
        let status = ClusterUpgradeStatus {
            clusters: vec![
                ClusterState {
                    silence_id: Some("s-1".into()),
                    triggered_at: t("2026-12-01T10:00:00Z"),
                    ..entry("running", "Upgrading")
                },
                entry("stale", "Triggered"),
                entry("old-only", "Succeeded"),
                ClusterState {
                    announced_at: t("2026-12-01T09:00:00Z"),
                    ..entry("announced", "Waiting")
                },
            ],
            ..ClusterUpgradeStatus::default()
        };
        let records = vec![
            ClusterState {
                acknowledged_at: t("2026-12-01T10:00:05Z"),
                ..entry("running", "Triggered")
            },
            ClusterState {
                finished_at: t("2026-12-01T11:00:00Z"),
                reason: Some("disk full".into()),
                ..entry("stale", "Failed")
            },
            entry("record-only", "Succeeded"),
            ClusterState {
                triggered_at: t("2026-12-01T09:30:00Z"),
                ..entry("announced", "Triggered")
            },
        ];
        let merged = status.with_records(&records);
        let state = |name: &str| {
            merged
                .cluster(name)
                .and_then(|c| c.state.clone())
                .unwrap_or_default()
        };
        let cases = [
            (
                "running",
                "Upgrading",
                "the status entry is further along than a stale record",
            ),
            (
                "stale",
                "Failed",
                "the record is further along than the status",
            ),
            (
                "old-only",
                "Succeeded",
                "a status entry of an upkeep before records is kept",
            ),
            (
                "record-only",
                "Succeeded",
                "a finished cluster only its record holds",
            ),
            (
                "announced",
                "Triggered",
                "a record made before the status was written",
            ),
        ];
        for (name, want, why) in cases {
            assert_eq!(state(name), want, "{why}");
        }
        let running = merged.cluster("running").expect("running");
        assert_eq!(
            running.silence_id.as_deref(),
            Some("s-1"),
            "the silence is kept"
        );
        assert!(
            running.acknowledged_at.is_some(),
            "an acknowledgement only the record holds is kept (losing it announced the trigger again)"
        );
        let announced = merged.cluster("announced").expect("announced");
        assert!(
            announced.announced_at.is_some() && announced.triggered_at.is_some(),
            "times missing on the winner come from the other: {announced:?}"
        );
        assert_eq!(
            merged.cluster("stale").and_then(|c| c.reason.as_deref()),
            Some("disk full")
        );
        assert_eq!(merged.clusters.len(), 5, "one entry per cluster");
    }

    #[test]
    fn counts_and_progress() {
        let mut counts = ClusterCounts::default();
        for state in [
            "Succeeded",
            "Succeeded",
            "Failed",
            "Waiting",
            "Halted",
            "Skipped",
        ] {
            counts.add(state);
        }
        assert_eq!(
            (
                counts.total,
                counts.succeeded,
                counts.failed,
                counts.waiting,
                counts.halted,
                counts.skipped
            ),
            (6, 2, 1, 1, 1, 1)
        );
        assert_eq!(counts.progress(), "2/6 succeeded, 1 failed");
        assert_eq!(ClusterCounts::default().progress(), "0/0 succeeded");
    }

    #[test]
    fn recorded_status_reads_back() {
        let u = upgrade(
            json!({"matchers": [], "targetVersion": "30.0.0"}),
            Some(json!({
                "state": "Finished", "outcome": "Failed", "finishedAt": "2026-11-01T00:00:00Z",
                "clusters": [
                    {"name": "a", "state": "Triggered", "triggeredAt": "2026-11-01T00:00:00Z",
                     "fromRelease": "29.0.0", "announcedAt": "2026-10-31T00:00:00Z"},
                    {"name": "b", "state": "Exploded"},
                    {"name": "c"},
                ],
            })),
        );
        let status = u.status.expect("status");
        assert_eq!(
            status.finished().map(|(o, t)| (o, t.to_string())),
            Some((rollout::Outcome::Failed, "2026-11-01T00:00:00Z".to_owned())),
            "a finished campaign's outcome and time"
        );
        let a = status
            .cluster("a")
            .and_then(ClusterState::progress)
            .expect("a");
        assert_eq!(a.state, ClusterPhase::Triggered);
        assert_eq!(a.from.as_deref(), Some("29.0.0"));
        assert!(a.announced_at.is_some() && a.triggered_at.is_some());
        assert!(
            status
                .cluster("b")
                .and_then(ClusterState::progress)
                .is_none(),
            "an unknown state is never touched"
        );
        assert!(
            status
                .cluster("c")
                .and_then(ClusterState::progress)
                .is_none(),
            "no state: never touched"
        );
        let mut running = status.clone();
        running.state = Some("Running".into());
        assert_eq!(
            running.finished(),
            None,
            "only a Finished campaign has finished"
        );
    }
}

//! The one conversion of a ClusterUpgrade, its Clusters and MaintenanceSchedules (with the
//! resolved release, the `after` outcomes and the recorded status) into the rollout core's
//! input.
//!
//! Why it lives here: the controller and every CLI command (`upgrade cluster`, `status`,
//! `plan`, `quickstart`, `run`) decide about the same objects, and two conversions drifted
//! apart before (an unreadable `upkeep.dev/freeze-until` held by one and ignored by the other;
//! schedules chosen in file order by one and by name by the other). Every choice that is not the
//! core's — which schedule governs a cluster, where the version is read, the default timeout,
//! what counts as frozen — is made once, here, and the shells only gather and act.
//!
//! An invalid spec is reported, never half-applied: [`inputs`] validates first and returns the
//! field errors; a `maintenanceScheduleRef` naming a schedule that is missing or invalid is
//! [`InputError::ScheduleNotFound`] (nothing starts until it is usable), never "no schedule".

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use upkeep_core::rollout::{self, Campaign, ClusterInput, Progress, StageSpec};
use upkeep_core::schedule::Schedule;
use upkeep_core::selector::{ClusterLabels, LabelSelector, Matcher, Matchers};
use upkeep_core::version::Version;

use super::{ClusterState, ClusterUpgrade, VersionSource, matchers};
use crate::cluster_edit::VersionPlace;
use crate::cluster_upgrade_policy::{Approval, ClusterUpgradePolicy};
use crate::release::Resolution;
pub use crate::spec_message;
use crate::{ClusterObject, FieldError, MaintenanceSchedule, namespaced_name};

/// A usable MaintenanceSchedule: its name, namespace, core schedule and cluster selector.
#[derive(Debug, Clone)]
pub struct NamedSchedule {
    pub name: String,
    pub namespace: String,
    pub schedule: Schedule,
    /// `spec.clusterSelector`; `None`: the schedule governs only upgrades that name it.
    pub selector: Option<LabelSelector>,
}

impl NamedSchedule {
    /// The schedule an object describes, or its field errors (an invalid schedule governs
    /// nothing; a `maintenanceScheduleRef` naming it is [`InputError::ScheduleNotFound`]).
    pub fn from_object(object: &MaintenanceSchedule) -> Result<NamedSchedule, Vec<FieldError>> {
        let schedule = object.to_core()?;
        NamedSchedule::with_core(object, schedule)
    }

    /// [`NamedSchedule::from_object`] when the core schedule is already made (the loader made
    /// it); the selector is still checked.
    pub fn with_core(
        object: &MaintenanceSchedule,
        schedule: Schedule,
    ) -> Result<NamedSchedule, Vec<FieldError>> {
        let selector = object
            .spec
            .cluster_selector
            .as_ref()
            .map(label_selector)
            .transpose()
            .map_err(|e| vec![selector_error(&e)])?;
        let (namespace, name) = namespaced_name(&object.metadata);
        Ok(NamedSchedule {
            name,
            namespace,
            schedule,
            selector,
        })
    }
}

/// The error of an invalid `spec.clusterSelector`.
pub(crate) fn selector_error(e: &upkeep_core::selector::SelectorError) -> FieldError {
    FieldError::new("spec.clusterSelector", e.to_string()).with_hint(Some(
        "matchExpressions operators are In, NotIn (with values), Exists, DoesNotExist (without)",
    ))
}

/// A Kubernetes label selector as the core evaluates it.
pub fn label_selector(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Result<LabelSelector, upkeep_core::selector::SelectorError> {
    LabelSelector::new(
        sel.match_labels.clone().unwrap_or_default(),
        sel.match_expressions.iter().flatten().map(|e| {
            (
                e.key.clone(),
                e.operator.clone(),
                e.values.clone().unwrap_or_default(),
            )
        }),
    )
}

/// The namespace of an object or cluster, `default` when none is given.
fn ns_of(namespace: Option<&str>) -> &str {
    namespace.filter(|n| !n.is_empty()).unwrap_or("default")
}

/// The schedule that governs `cluster`: the one in its namespace named by `preferred` (a
/// `maintenanceScheduleRef`), else the first by name in its namespace whose `clusterSelector`
/// selects it; `None` when no schedule applies.
pub fn governing<'s>(
    schedules: &'s [NamedSchedule],
    cluster: &ClusterObject,
    preferred: Option<&str>,
) -> Option<&'s NamedSchedule> {
    let ns = ns_of(cluster.namespace.as_deref());
    let in_ns = schedules.iter().filter(|s| s.namespace == ns);
    match preferred {
        Some(name) => in_ns.into_iter().find(|s| s.name == name),
        None => in_ns
            .filter(|s| {
                s.selector
                    .as_ref()
                    .is_some_and(|sel| sel.matches(&cluster.labels))
            })
            .min_by(|a, b| a.name.cmp(&b.name)),
    }
}

impl From<VersionSource> for VersionPlace {
    fn from(source: VersionSource) -> Self {
        match source {
            VersionSource::Label => VersionPlace::default(),
            VersionSource::Topology => VersionPlace::Topology,
        }
    }
}

impl ClusterUpgrade {
    /// Where this upgrade reads and writes the version: `spec.versionSource`, else `default`
    /// (the controller's `--version-source`; the CLI's is the label).
    pub fn version_source(&self, default: VersionSource) -> VersionSource {
        self.spec.version_source.unwrap_or(default)
    }

    /// The target as written (`targetVersion` trimmed, else the resolved release's version as
    /// written).
    pub fn target_text(&self, release: Option<&Resolution>) -> Option<String> {
        self.spec
            .target_version
            .as_deref()
            .map(|t| t.trim().to_owned())
            .or_else(|| {
                release
                    .and_then(Resolution::version)
                    .map(|r| r.trim().to_owned())
            })
    }

    /// Whether this upgrade is about a cluster (its matchers select it, or its status has
    /// recorded it): what the controller converts of a namespace with thousands of clusters.
    /// The matchers are compiled once, for every cluster asked about.
    pub fn concerns(&self) -> impl Fn(&str, &BTreeMap<String, String>) -> bool + '_ {
        let compiled = matchers(&self.spec.matchers);
        move |name, labels| {
            compiled.matches(ClusterLabels { name, labels })
                || self
                    .status
                    .as_ref()
                    .is_some_and(|s| s.cluster(name).is_some())
        }
    }
}

/// The value at a cluster's version place, raw. Places outside the Cluster object (the App,
/// its values, a Flux variable, a marker) are observed on the Cluster's release label, which
/// the chart sets.
pub fn current_at(cluster: &ClusterObject, place: &VersionPlace) -> Option<String> {
    match place {
        VersionPlace::Label(key) => cluster.labels.get(key).cloned(),
        VersionPlace::Topology => cluster.topology_version.clone(),
        _ => cluster
            .labels
            .get(crate::cluster::RELEASE_VERSION_LABEL)
            .cloned(),
    }
}

/// What the rollout core sees of one cluster: its version at `place`, its freeze (an
/// unreadable `freeze-until` holds it, see [`ClusterObject::rollout_freeze`]), the schedule
/// that governs it, what Cluster API reports, and what was recorded last time (`progress`).
pub fn cluster_input<'s>(
    cluster: &'s ClusterObject,
    place: &VersionPlace,
    schedule: Option<&'s NamedSchedule>,
    progress: Option<Progress>,
) -> ClusterInput<'s> {
    ClusterInput {
        name: cluster.name.clone(),
        labels: std::borrow::Cow::Borrowed(&cluster.labels),
        current: current_at(cluster, place),
        provider: cluster.provider.clone(),
        freeze: cluster.rollout_freeze(),
        schedule: schedule.map(|s| (s.name.as_str(), &s.schedule)),
        observed: cluster.status.observed(),
        progress,
        elsewhere: rollout::Elsewhere::default(),
    }
}

/// Why an upgrade has no input for the core.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// The spec is invalid: `Stalled` until it changes.
    #[error("invalid spec: {}", spec_message(.0))]
    Invalid(Vec<FieldError>),
    /// `maintenanceScheduleRef` names a schedule that is missing or invalid: nothing starts
    /// until it is usable (not `Stalled`: the schedule may appear).
    #[error(
        "MaintenanceSchedule {namespace}/{name} is missing or invalid; nothing starts until it is usable"
    )]
    ScheduleNotFound { namespace: String, name: String },
}

/// What one ClusterUpgrade is, as the rollout core reads it.
#[derive(Debug)]
pub struct Inputs<'s> {
    pub campaign: Campaign,
    /// The clusters of the upgrade's namespace it selects or has recorded, by name.
    pub clusters: Vec<ClusterInput<'s>>,
    /// Where the version is read and written.
    pub source: VersionSource,
    /// The target as written (see [`ClusterUpgrade::target_text`]).
    pub target: Option<String>,
}

/// The one conversion (see the module docs). `release` is what the `releaseRef` resolved to
/// (`None`: not resolved, every cluster waits; [`Resolution::Refused`] and
/// [`Resolution::Missing`] wait with their reason; a release for one provider skips the
/// clusters of others); `finished` tells how each `after` upgrade ended and when;
/// `default_source` is where the version is when the spec does not say.
pub fn inputs<'s>(
    upgrade: &ClusterUpgrade,
    clusters: &'s [ClusterObject],
    schedules: &'s [NamedSchedule],
    release: Option<&Resolution>,
    finished: impl Fn(&str) -> Option<(rollout::Outcome, Timestamp)>,
    default_source: VersionSource,
) -> Result<Inputs<'s>, InputError> {
    let campaign = upgrade
        .to_campaign(release, finished)
        .map_err(InputError::Invalid)?;
    let (ns, _) = namespaced_name(&upgrade.metadata);
    let preferred = upgrade
        .spec
        .maintenance_schedule_ref
        .as_ref()
        .map(|r| r.name.as_str());
    if let Some(name) = preferred
        && !schedules
            .iter()
            .any(|s| s.namespace == ns && s.name == name)
    {
        return Err(InputError::ScheduleNotFound {
            namespace: ns,
            name: name.to_owned(),
        });
    }
    // Looked up by name, not searched: a campaign may have recorded 20,000 clusters.
    let recorded: std::collections::HashMap<&str, &ClusterState> = upgrade
        .status
        .iter()
        .flat_map(|s| &s.clusters)
        .map(|c| (c.name.as_str(), c))
        .collect();
    let source = upgrade.version_source(default_source);
    let mut selected: Vec<&ClusterObject> = clusters
        .iter()
        .filter(|c| ns_of(c.namespace.as_deref()) == ns)
        .filter(|c| {
            campaign.matchers.matches(ClusterLabels {
                name: &c.name,
                labels: &c.labels,
            }) || recorded.contains_key(c.name.as_str())
        })
        .collect();
    selected.sort_by(|a, b| a.name.cmp(&b.name));
    let place = VersionPlace::from(source);
    let clusters = selected
        .into_iter()
        .map(|c| {
            let progress = recorded.get(c.name.as_str()).and_then(|s| s.progress());
            cluster_input(c, &place, governing(schedules, c, preferred), progress)
        })
        .collect();
    Ok(Inputs {
        campaign,
        clusters,
        source,
        target: upgrade.target_text(release),
    })
}

/// The order in which campaigns claim a cluster: older first (`creationTimestamp`), then by
/// name. Objects without a creation time (manifests read from a repository) sort by name.
fn age_key(u: &ClusterUpgrade) -> (Option<Timestamp>, &str) {
    (
        u.metadata.creation_timestamp.as_ref().map(|t| t.0),
        u.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Fills in what the other ClusterUpgrades of the namespace say about each cluster of
/// `inputs` ([`rollout::Elsewhere`]), so that the controller and the CLI apply one overlap rule:
///
/// - A cluster selected by two active (not Finished) campaigns runs in the older one
///   (`creationTimestamp`, then name): the other shows it `Waiting(Overlap)` naming it. The
///   older one holds the cluster until it is done with it (its entry is terminal) or finishes;
///   one that records the cluster running holds it whatever its age; one whose spec is invalid
///   or whose stages leave the cluster out holds nothing.
/// - A campaign (active or not) that recorded the cluster's upgrade as Failed is named in
///   `failed_in`, so the core does not count the cluster at that version as "already there".
///
/// `others` may include `upgrade` itself (skipped by name) and objects of other namespaces.
pub fn overlaps<'o>(
    inputs: &mut Inputs<'_>,
    upgrade: &ClusterUpgrade,
    others: impl IntoIterator<Item = &'o ClusterUpgrade>,
) {
    let (ns, name) = namespaced_name(&upgrade.metadata);
    let mine = age_key(upgrade);
    let others: Vec<(&ClusterUpgrade, Matchers, Vec<Matchers>, bool)> = others
        .into_iter()
        .filter(|o| {
            let (ons, oname) = namespaced_name(&o.metadata);
            ons == ns && oname != name
        })
        .map(|o| {
            let stages = o
                .spec
                .strategy
                .iter()
                .flat_map(|s| &s.stages)
                .map(|s| matchers(&s.matchers))
                .collect();
            let active = o.status.as_ref().and_then(|s| s.state.as_deref())
                != Some(rollout::CampaignState::Finished.as_str())
                && o.validate().is_ok();
            (o, matchers(&o.spec.matchers), stages, active)
        })
        .collect();
    if others.is_empty() {
        return;
    }
    for input in &mut inputs.clusters {
        let who = ClusterLabels {
            name: &input.name,
            labels: &input.labels,
        };
        let mut elsewhere = rollout::Elsewhere::default();
        for (o, selects, stages, active) in &others {
            let oname = o.metadata.name.clone().unwrap_or_default();
            let entry = o.status.as_ref().and_then(|s| s.cluster(&input.name));
            let phase = entry.and_then(ClusterState::progress).map(|p| p.state);
            if phase == Some(rollout::ClusterPhase::Failed) && elsewhere.failed_in.is_none() {
                let to = entry.and_then(|e| e.to_release.clone());
                elsewhere.failed_in = Some((oname.clone(), to));
            }
            if !*active || elsewhere.held_by.is_some() {
                continue;
            }
            let running = phase.is_some_and(rollout::ClusterPhase::is_running);
            let claims = age_key(o) < mine
                && !phase.is_some_and(rollout::ClusterPhase::is_terminal)
                && selects.matches(who)
                && (stages.is_empty() || stages.iter().any(|m| m.matches(who)));
            if running || claims {
                elsewhere.held_by = Some(oname);
            }
        }
        input.elsewhere = elsewhere;
    }
}

impl ClusterUpgradePolicy {
    /// The spec of the ClusterUpgrade this policy creates for `version` (`None`: the release
    /// is not known yet; the spec then names the policy's VersionPolicy as `releaseRef`, and
    /// its campaign waits for it). `Manual` approval creates it suspended.
    pub fn upgrade_spec(&self, version: Option<&str>) -> super::ClusterUpgradeSpec {
        let spec = &self.spec;
        let stages: Vec<super::Stage> = spec
            .stages
            .iter()
            .map(|s| super::Stage {
                name: s.name.clone(),
                matchers: s.matchers.clone(),
                max_concurrency: s.max_concurrency,
                soak: s.soak.clone(),
            })
            .collect();
        super::ClusterUpgradeSpec {
            matchers: spec.matchers.clone(),
            target_version: version.map(ToOwned::to_owned),
            release_ref: version
                .is_none()
                .then(|| super::ReleaseRef::version_policy(spec.policy_ref.name.clone())),
            start_time: None,
            maintenance_schedule_ref: spec.maintenance_schedule_ref.clone(),
            strategy: (!stages.is_empty()).then(|| super::Strategy {
                stages,
                ..super::Strategy::default()
            }),
            after: Vec::new(),
            trigger: spec.trigger,
            git_ops: spec.git_ops.clone(),
            version_source: None,
            version_place: spec.version_place.clone(),
            suspend: spec.approval == Approval::Manual,
            announce: None,
        }
    }

    /// The ClusterUpgrade this policy would create for `version` (named as the policy; no owner
    /// reference): what `plan` and `quickstart` plan before the controller creates it.
    pub fn upgrade(&self, version: Option<&str>) -> ClusterUpgrade {
        let mut metadata = self.metadata.clone();
        metadata.resource_version = None;
        metadata.uid = None;
        metadata.managed_fields = None;
        ClusterUpgrade {
            metadata,
            spec: self.upgrade_spec(version),
            status: None,
        }
    }
}

/// The campaign of one cluster moving to `target` (`upkeep upgrade cluster`, and kubectl-gs
/// scheduled upgrades): selected by its name exactly, no stages, `timeout` per cluster.
pub fn one_cluster(cluster: &str, target: Version, timeout: SignedDuration) -> Campaign {
    // An exact (not regex) matcher cannot fail to compile.
    let exact = Matcher::new(None, None, cluster, false);
    Campaign {
        name: format!("upgrade cluster {cluster}"),
        target: Some(target),
        no_target: None,
        provider: None,
        start_time: None,
        suspended: false,
        matchers: Matchers(exact.into_iter().collect()),
        stages: Vec::<StageSpec>::new(),
        max_concurrency: None,
        timeout,
        failure_policy: rollout::FailurePolicy::Halt,
        after: Vec::new(),
        announce_before: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[allow(clippy::needless_pass_by_value)] // callers build the value inline
    fn schedule_object(
        name: &str,
        namespace: &str,
        selector: serde_json::Value,
    ) -> MaintenanceSchedule {
        serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "MaintenanceSchedule",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"alwaysAllowed": true, "clusterSelector": selector},
        }))
        .expect("a MaintenanceSchedule")
    }

    fn cluster(namespace: Option<&str>, env: &str) -> ClusterObject {
        ClusterObject {
            name: "c".into(),
            namespace: namespace.map(Into::into),
            labels: [("env".to_owned(), env.to_owned())].into(),
            ..ClusterObject::default()
        }
    }

    #[test]
    fn the_governing_schedule() {
        let prod = json!({"matchLabels": {"env": "prod"}});
        let schedules: Vec<NamedSchedule> = [
            schedule_object("weekends", "org", prod.clone()),
            schedule_object("b-weekdays", "org", prod.clone()),
            schedule_object("a-elsewhere", "other", prod.clone()),
            schedule_object("a-default", "default", prod),
            schedule_object("nights", "org", json!({"matchLabels": {"env": "none"}})),
        ]
        .iter()
        .map(|o| NamedSchedule::from_object(o).expect("valid"))
        .collect();
        let cases = [
            (
                Some("org"),
                "prod",
                None,
                Some("b-weekdays"),
                "the first by name, not the first listed",
            ),
            (
                Some("org"),
                "dev",
                None,
                None,
                "no selector matches: no schedule",
            ),
            (
                Some("org"),
                "dev",
                Some("nights"),
                Some("nights"),
                "a reference wins over selectors",
            ),
            (
                Some("org"),
                "prod",
                Some("a-elsewhere"),
                None,
                "a reference stays in the namespace",
            ),
            (
                None,
                "prod",
                None,
                Some("a-default"),
                "no namespace is `default`",
            ),
            (
                Some("other"),
                "prod",
                None,
                Some("a-elsewhere"),
                "each namespace its own schedules",
            ),
        ];
        for (ns, env, preferred, want, why) in cases {
            let got = governing(&schedules, &cluster(ns, env), preferred).map(|s| s.name.as_str());
            assert_eq!(got, want, "{why}");
        }
    }

    #[test]
    fn an_invalid_selector_makes_the_schedule_invalid() {
        let bad = schedule_object(
            "s",
            "org",
            json!({"matchExpressions": [{"key": "env", "operator": "In"}]}),
        );
        let errors = NamedSchedule::from_object(&bad).expect_err("In without values");
        assert_eq!(errors[0].path, "spec.clusterSelector", "{errors:?}");
        assert!(
            bad.to_core().is_err(),
            "the loader and the schedule controller reject it too"
        );
    }

    #[allow(clippy::needless_pass_by_value)] // callers build the value inline
    fn upgrade(spec: serde_json::Value) -> ClusterUpgrade {
        serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgrade",
            "metadata": {"name": "u", "namespace": "org"}, "spec": spec,
        }))
        .expect("a ClusterUpgrade")
    }

    #[test]
    fn what_stops_the_conversion() {
        let schedules = vec![
            NamedSchedule::from_object(&schedule_object("s", "org", json!({}))).expect("valid"),
        ];
        let cases = [
            (
                json!({"targetVersion": "30.0.0", "maintenanceScheduleRef": {"name": "s"}}),
                None,
                "a usable reference",
            ),
            (
                json!({"targetVersion": "30.0.0", "maintenanceScheduleRef": {"name": "gone"}}),
                Some("ScheduleNotFound"),
                "a missing schedule",
            ),
            (
                json!({"targetVersion": "30.0.0", "strategy": {"timeout": "soon"}}),
                Some("Invalid"),
                "an invalid duration",
            ),
            (
                json!({"targetVersion": "30.0.0", "announce": {"before": "a while"}}),
                Some("Invalid"),
                "an invalid announce.before",
            ),
        ];
        for (spec, want, why) in cases {
            let got = inputs(
                &upgrade(spec),
                &[],
                &schedules,
                None,
                |_| None,
                VersionSource::Label,
            )
            .err()
            .map(|e| match e {
                InputError::Invalid(_) => "Invalid",
                InputError::ScheduleNotFound { .. } => "ScheduleNotFound",
            });
            assert_eq!(got, want, "{why}");
        }
        let resolved = inputs(
            &upgrade(json!({"releaseRef": {"name": "r"}, "announce": {"before": "1d"}})),
            &[],
            &schedules,
            Some(&Resolution::Ready {
                version: " 31.0.0 ".into(),
                provider: None,
            }),
            |_| None,
            VersionSource::Label,
        )
        .expect("valid");
        assert_eq!(
            resolved.campaign.target,
            Version::parse("31.0.0"),
            "the resolved release"
        );
        assert_eq!(
            resolved.target.as_deref(),
            Some("31.0.0"),
            "as written, trimmed"
        );
        assert_eq!(
            resolved.campaign.announce_before,
            Some(SignedDuration::from_hours(24)),
            "announce.before is carried"
        );
    }

    /// A ClusterUpgrade `name` created at `created`, with `state` and the recorded cluster
    /// entries `(cluster, state, toRelease)`.
    #[allow(clippy::needless_pass_by_value)] // callers build the value inline
    fn campaign_with(
        name: &str,
        created: &str,
        spec: serde_json::Value,
        state: Option<&str>,
        entries: &[(&str, &str, &str)],
    ) -> ClusterUpgrade {
        let clusters: Vec<serde_json::Value> = entries
            .iter()
            .map(|(c, s, to)| json!({"name": c, "state": s, "toRelease": to}))
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgrade",
            "metadata": {"name": name, "namespace": "org", "creationTimestamp": created},
            "spec": spec,
            "status": {"state": state, "clusters": clusters},
        }))
        .expect("a ClusterUpgrade")
    }

    /// (why, the other campaigns, held_by of `c`, failed_in of `c`)
    type OverlapCase<'a> = (
        &'a str,
        Vec<ClusterUpgrade>,
        Option<&'a str>,
        Option<(&'a str, &'a str)>,
    );

    /// Who holds a cluster and who failed on it, as [`overlaps`] works it out:
    /// (why, the other campaigns, held_by of `c`, failed_in of `c`).
    #[test]
    #[allow(clippy::too_many_lines)]
    fn overlapping_campaigns() {
        let all = json!({"matchers": [{"name": "all", "value": ".*", "isRegex": true}], "targetVersion": "30.0.0"});
        let other_cluster =
            json!({"matchers": [{"name": "d", "value": "d"}], "targetVersion": "30.0.0"});
        let staged_elsewhere = json!({"matchers": [{"name": "all", "value": ".*", "isRegex": true}], "targetVersion": "30.0.0",
            "strategy": {"stages": [{"name": "d", "matchers": [{"name": "d", "value": "d"}]}]}});
        let invalid = json!({"matchers": [{"name": "all", "value": ".*", "isRegex": true}], "targetVersion": "30.0.0",
            "strategy": {"timeout": "soon"}});
        let me = campaign_with("me", "2026-12-02T10:00:00Z", all.clone(), None, &[]);
        let older = "2026-12-01T10:00:00Z";
        let newer = "2026-12-03T10:00:00Z";
        let same = "2026-12-02T10:00:00Z";
        let cases: Vec<OverlapCase<'_>> = vec![
            ("no other campaign", vec![], None, None),
            (
                "an older active campaign selecting it holds it",
                vec![campaign_with(
                    "old",
                    older,
                    all.clone(),
                    Some("Running"),
                    &[],
                )],
                Some("old"),
                None,
            ),
            (
                "a newer one does not",
                vec![campaign_with(
                    "new",
                    newer,
                    all.clone(),
                    Some("Pending"),
                    &[],
                )],
                None,
                None,
            ),
            (
                "a newer one already running it does",
                vec![campaign_with(
                    "new",
                    newer,
                    all.clone(),
                    Some("Running"),
                    &[("c", "Upgrading", "30.0.0")],
                )],
                Some("new"),
                None,
            ),
            (
                "created in the same second: the name decides (a < me)",
                vec![campaign_with("a", same, all.clone(), None, &[])],
                Some("a"),
                None,
            ),
            (
                "created in the same second: the name decides (z > me)",
                vec![campaign_with("z", same, all.clone(), None, &[])],
                None,
                None,
            ),
            (
                "a finished older campaign holds nothing, its failure is named",
                vec![campaign_with(
                    "old",
                    older,
                    all.clone(),
                    Some("Finished"),
                    &[("c", "Failed", "30.0.0")],
                )],
                None,
                Some(("old", "30.0.0")),
            ),
            (
                "an older active campaign done with the cluster lets it go",
                vec![campaign_with(
                    "old",
                    older,
                    all.clone(),
                    Some("Running"),
                    &[("c", "Succeeded", "30.0.0")],
                )],
                None,
                None,
            ),
            (
                "an older one whose matchers leave it out",
                vec![campaign_with(
                    "old",
                    older,
                    other_cluster,
                    Some("Running"),
                    &[],
                )],
                None,
                None,
            ),
            (
                "an older one whose stages leave it out (it would skip it)",
                vec![campaign_with(
                    "old",
                    older,
                    staged_elsewhere,
                    Some("Running"),
                    &[],
                )],
                None,
                None,
            ),
            (
                "an older one with an invalid spec never runs, holds nothing",
                vec![campaign_with("old", older, invalid, None, &[])],
                None,
                None,
            ),
            (
                "itself is not another campaign",
                vec![campaign_with(
                    "me",
                    older,
                    all.clone(),
                    Some("Running"),
                    &[("c", "Failed", "30.0.0")],
                )],
                None,
                None,
            ),
        ];
        for (why, others, held, failed) in cases {
            let clusters = [ClusterObject {
                name: "c".into(),
                namespace: Some("org".into()),
                ..ClusterObject::default()
            }];
            let mut got =
                inputs(&me, &clusters, &[], None, |_| None, VersionSource::Label).expect("valid");
            overlaps(&mut got, &me, others.iter());
            let e = &got.clusters[0].elsewhere;
            assert_eq!(e.held_by.as_deref(), held, "{why}");
            assert_eq!(
                e.failed_in
                    .as_ref()
                    .map(|(u, to)| (u.as_str(), to.as_deref().unwrap_or_default())),
                failed,
                "{why}"
            );
        }
    }

    #[test]
    fn a_policy_as_the_upgrade_it_creates() {
        let policy: ClusterUpgradePolicy = serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgradePolicy",
            "metadata": {"name": "p", "namespace": "org"},
            "spec": {"policyRef": {"name": "release"}, "approval": "Manual",
                     "stages": [{"name": "dev", "soak": "1h"}]},
        }))
        .expect("a ClusterUpgradePolicy");
        let known = policy.upgrade(Some("30.0.0"));
        assert_eq!(known.spec.target_version.as_deref(), Some("30.0.0"));
        assert!(known.spec.suspend, "Manual approval creates it suspended");
        let c = known.to_campaign(None, |_| None).expect("valid");
        assert_eq!(c.stages[0].soak, Some(SignedDuration::from_hours(1)));
        assert_eq!(known.spec.version_place, None, "no place: none copied");
        let unknown = policy.upgrade(None);
        assert_eq!(
            unknown.spec.release_ref.map(|r| r.name).as_deref(),
            Some("release"),
            "no release yet: the VersionPolicy, unresolved"
        );
        let placed: ClusterUpgradePolicy = serde_json::from_value(json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgradePolicy",
            "metadata": {"name": "p", "namespace": "org"},
            "spec": {"policyRef": {"name": "release"},
                     "versionPlace": {"type": "Values", "valuesKey": "cluster.release"}},
        }))
        .expect("a ClusterUpgradePolicy");
        let created = placed.upgrade(Some("30.0.0"));
        assert_eq!(
            created.spec.version_place, placed.spec.version_place,
            "the policy's versionPlace is copied into the upgrade"
        );
        assert!(created.validate().is_ok());
    }
}

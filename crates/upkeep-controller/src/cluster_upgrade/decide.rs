//! Decide: pure. The snapshot [`super::gather`] read becomes the core's input through the one
//! conversion (`upkeep_api::cluster_upgrade::inputs`), the rollout core plans, and the status
//! to write, the Events and the next look follow from the plan. No I/O and no clock (`now` is
//! a parameter), so every decision is unit-tested without an API server, and the CLI
//! (`upkeep status`, `plan`) decides with the same [`decide`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::controller::Action;
use upkeep_api::cluster_upgrade::{
    ClusterState, ClusterUpgradeStatus, InputError, Inputs, NamedSchedule, VersionSource, inputs,
    spec_message,
};
use upkeep_api::release::Resolution;
use upkeep_api::{ClusterObject, ClusterUpgrade};
use upkeep_core::rollout::{self, CampaignState, ClusterPhase, Plan, Step};
use upkeep_core::version::Version;

use super::{MAX_WAIT, UPGRADE_ANNOUNCED, UPGRADE_FAILED, UPGRADE_SUCCEEDED, UPGRADE_TRIGGERED};
use crate::framework::conditions::{Outcome, RECONCILING, STALLED, with_outcome};
use crate::framework::until;

/// What one ClusterUpgrade's decision reads.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The Clusters of the upgrade's namespace (those it selects or has recorded suffice).
    pub clusters: Vec<ClusterObject>,
    /// The usable MaintenanceSchedules of the namespace.
    pub schedules: Vec<NamedSchedule>,
    /// What the `releaseRef` resolved to (`None`: no `releaseRef`, or not resolved yet).
    pub release: Option<Resolution>,
    /// How each `after` upgrade ended and when (`None`: not finished, or not found).
    pub finished: HashMap<String, Option<(rollout::Outcome, Timestamp)>>,
}

/// What to do about one ClusterUpgrade.
#[derive(Debug)]
pub enum Decision<'s> {
    /// The spec is invalid: `Stalled`, wait for a change.
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Something outside the spec is missing: `Ready=False`, look again later.
    NotReady {
        reason: &'static str,
        message: String,
    },
    /// The core's plan over the converted input.
    Plan(Box<Decided<'s>>),
}

/// A plan and the input it was made from.
#[derive(Debug)]
pub struct Decided<'s> {
    pub inputs: Inputs<'s>,
    pub plan: Plan,
}

/// Decides about `object` over `snapshot` at `now`; `default_source` is where the version is
/// when the spec does not say.
pub fn decide<'s>(
    object: &ClusterUpgrade,
    snapshot: &'s Snapshot,
    default_source: VersionSource,
    now: Timestamp,
) -> Decision<'s> {
    let finished = |name: &str| snapshot.finished.get(name).copied().flatten();
    match inputs(
        object,
        &snapshot.clusters,
        &snapshot.schedules,
        snapshot.release.as_ref(),
        finished,
        default_source,
    ) {
        Err(InputError::Invalid(errors)) => Decision::Stalled {
            reason: "InvalidSpec",
            message: spec_message(&errors),
        },
        Err(e @ InputError::ScheduleNotFound { .. }) => Decision::NotReady {
            reason: "ScheduleNotFound",
            message: e.to_string(),
        },
        Ok(inputs) => {
            let plan = rollout::plan(&inputs.campaign, &inputs.clusters, now);
            Decision::Plan(Box::new(Decided { inputs, plan }))
        }
    }
}

impl Decided<'_> {
    /// The clusters to move now (the core says Trigger, or Triggered and not yet showing the
    /// target: re-applied after a restart), with the target as written.
    pub fn to_move<'c>(&self, clusters: &'c [ClusterObject]) -> Vec<(&'c ClusterObject, String)> {
        let Some(target) = self.inputs.target.as_deref() else {
            return Vec::new();
        };
        self.plan
            .clusters
            .iter()
            .filter(|cp| matches!(cp.step, Step::Trigger | Step::Triggered))
            .filter_map(|cp| clusters.iter().find(|c| c.name == cp.name))
            .filter(|c| !shows(c.version_at(Some(self.inputs.source)), target))
            .map(|c| (c, target.to_owned()))
            .collect()
    }

    /// The clusters whose alerts are silenced now (starting, started or upgrading).
    pub fn running(&self) -> impl Iterator<Item = &str> {
        self.plan
            .clusters
            .iter()
            .filter(|cp| matches!(cp.step, Step::Trigger | Step::Triggered | Step::Upgrading))
            .map(|cp| cp.name.as_str())
    }

    /// Whether any cluster starts now (then status is written before anything is changed).
    pub fn starting(&self) -> bool {
        self.plan.clusters.iter().any(|cp| cp.step == Step::Trigger)
    }

    /// Waiting clusters by reason (the `upkeep_clusters_waiting` metric).
    pub fn waiting(&self) -> BTreeMap<&'static str, i64> {
        let mut waiting = BTreeMap::new();
        for cp in &self.plan.clusters {
            if let Step::Waiting { reason, .. } = &cp.step {
                *waiting.entry(reason.name()).or_default() += 1;
            }
        }
        waiting
    }
}

/// One cluster transition worth an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub reason: &'static str,
    pub warning: bool,
    pub text: String,
}

/// The requeue: soon after a conflict, every `poll` while something runs, else at the plan's
/// next check.
pub fn next_action(
    plan: &Plan,
    conflict: bool,
    now: Timestamp,
    poll: Duration,
    conflict_retry: Duration,
) -> Action {
    if conflict {
        return Action::requeue(conflict_retry);
    }
    let running = plan.clusters.iter().any(|cp| cp.step.phase().is_running());
    // The runtime's delay queue cannot hold a wait of years (a freeze until 2099): look again
    // at least daily.
    let at = plan.next_check.map(|at| until(now, at).min(MAX_WAIT));
    match (running, at) {
        (true, Some(d)) => Action::requeue(d.min(poll)),
        (true, None) => Action::requeue(poll),
        (false, Some(d)) => Action::requeue(d),
        (false, None) => Action::await_change(),
    }
}

/// Whether `current` is (a spelling of) `target`.
pub fn shows(current: Option<&str>, target: &str) -> bool {
    current.is_some_and(|c| {
        c.trim() == target
            || matches!((Version::parse(c.trim()), Version::parse(target)), (Some(a), Some(b)) if a == b)
    })
}

/// The status the plan says, keeping what only the shell knows (silence ids, announcements,
/// the GitOps commit and pull request). `announced`: the clusters whose announcement went out.
pub fn desired_status(
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    plan: &Plan,
    target: Option<&str>,
    announced: &[String],
    now: Timestamp,
) -> ClusterUpgradeStatus {
    let clusters = cluster_states(before, plan, target, announced, now);
    let triggered_at = clusters
        .iter()
        .filter_map(|c| c.triggered_at.as_ref().map(|t| t.0))
        .min()
        .map(Time);
    let from_release = clusters
        .iter()
        .filter(|c| c.triggered_at.is_some())
        .filter_map(|c| c.from_release.as_deref())
        .filter_map(|f| Version::parse(f).map(|v| (v, f)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, f)| f.to_owned());
    ClusterUpgradeStatus {
        triggered_at,
        state: Some(plan.state.as_str().to_owned()),
        outcome: plan.outcome.map(|o| o.as_str().to_owned()),
        finished_at: plan.finished_at.map(Time),
        from_release,
        to_release: target.map(ToOwned::to_owned),
        clusters,
        last_push_commit: before.last_push_commit.clone(),
        pull_request: before.pull_request.clone(),
        conditions: conditions(object, before, plan, now),
    }
}

/// Each planned cluster's entry, keeping the recorded times and silence.
fn cluster_states(
    before: &ClusterUpgradeStatus,
    plan: &Plan,
    target: Option<&str>,
    announced: &[String],
    now: Timestamp,
) -> Vec<ClusterState> {
    plan.clusters
        .iter()
        .map(|cp| {
            let old = before.cluster(&cp.name);
            let triggered_at = if cp.step == Step::Trigger {
                Some(Time(now))
            } else {
                old.and_then(|o| o.triggered_at.clone())
            };
            let announced_at = if announced.contains(&cp.name) {
                Some(Time(now))
            } else {
                old.and_then(|o| o.announced_at.clone())
            };
            ClusterState {
                name: cp.name.clone(),
                state: Some(cp.step.phase().as_str().to_owned()),
                reason: cp.step.reason(),
                triggered_at,
                finished_at: cp
                    .step
                    .finished_at()
                    .map(Time)
                    .or_else(|| old.and_then(|o| o.finished_at.clone())),
                from_release: cp.from.clone(),
                to_release: target.map(ToOwned::to_owned),
                stage: cp.stage.clone(),
                announced_at,
                silence_id: old.and_then(|o| o.silence_id.clone()),
            }
        })
        .collect()
}

/// `Ready` from the plan, and `Reconciling` while the campaign runs.
fn conditions(
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    plan: &Plan,
    now: Timestamp,
) -> Vec<Condition> {
    let (ready, reconciling) = summary(plan);
    let generation = object.metadata.generation;
    let mut conditions = with_outcome(&before.conditions, &ready, generation, now);
    if matches!(ready, Outcome::Stalled { .. }) {
        // Not ready is not stalled: the campaign is under way or waiting, or it failed.
        conditions.retain(|c| c.type_ != STALLED);
    }
    if let Some(message) = reconciling {
        let since = before
            .conditions
            .iter()
            .find(|c| c.type_ == RECONCILING && c.status == "True")
            .map_or_else(|| Time(now), |c| c.last_transition_time.clone());
        conditions.push(Condition {
            type_: RECONCILING.to_owned(),
            status: "True".to_owned(),
            reason: plan.state.as_str().to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: since,
        });
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    }
    conditions
}

/// `Ready` (and `Reconciling` while the campaign runs) from the plan. `Outcome::Stalled` here
/// only carries Ready=False; the caller drops the Stalled condition.
fn summary(plan: &Plan) -> (Outcome, Option<String>) {
    let mut message = plan.phase_counts();
    if let Some(reason) = &plan.reason {
        message = format!("{message}: {reason}");
    }
    match (plan.state, plan.outcome) {
        (CampaignState::Finished, Some(rollout::Outcome::Failed)) => {
            let failed: Vec<String> = plan
                .clusters
                .iter()
                .filter_map(|cp| match &cp.step {
                    Step::Failed { reason, .. } => Some(format!("{}: {reason}", cp.name)),
                    _ => None,
                })
                .collect();
            (
                Outcome::Stalled {
                    reason: "Failed".into(),
                    message: format!("{message}; failed: {}", failed.join("; ")),
                },
                None,
            )
        }
        (CampaignState::Finished, _) => (
            Outcome::Ready {
                reason: "Succeeded".into(),
                message,
            },
            None,
        ),
        (state, _) => (
            Outcome::Stalled {
                reason: state.as_str().into(),
                message: message.clone(),
            },
            (state == CampaignState::Running).then_some(message),
        ),
    }
}

/// Events for the transitions between the recorded status and the new one.
pub fn transitions(
    before: &ClusterUpgradeStatus,
    after: &ClusterUpgradeStatus,
    plan: &Plan,
) -> Vec<Note> {
    let mut notes = Vec::new();
    for entry in &after.clusters {
        let old = before.cluster(&entry.name);
        let was = old
            .and_then(|o| o.state.as_deref())
            .and_then(ClusterPhase::parse);
        let now = entry.state.as_deref().and_then(ClusterPhase::parse);
        let to = entry.to_release.as_deref().unwrap_or("?");
        let from = entry.from_release.as_deref().unwrap_or("?");
        if entry.announced_at.is_some() && old.and_then(|o| o.announced_at.as_ref()).is_none() {
            let expected = plan
                .clusters
                .iter()
                .find(|cp| cp.name == entry.name)
                .and_then(|cp| cp.expected_start)
                .map_or_else(|| "now".to_owned(), |t| t.to_string());
            notes.push(Note {
                reason: UPGRADE_ANNOUNCED,
                warning: false,
                text: format!(
                    "cluster {}: {from} → {to} expected to start at {expected}",
                    entry.name
                ),
            });
        }
        if now == was {
            continue;
        }
        let (reason, warning, text) = match now {
            Some(ClusterPhase::Triggered) if was.is_none_or(|w| !w.is_running()) => (
                UPGRADE_TRIGGERED,
                false,
                format!("cluster {}: {from} → {to}", entry.name),
            ),
            Some(ClusterPhase::Succeeded) => (
                UPGRADE_SUCCEEDED,
                false,
                format!("cluster {}: now at {to}", entry.name),
            ),
            Some(ClusterPhase::Failed) => (
                UPGRADE_FAILED,
                true,
                format!(
                    "cluster {}: {from} → {to} failed: {}",
                    entry.name,
                    entry.reason.as_deref().unwrap_or("unknown reason")
                ),
            ),
            _ => continue,
        };
        notes.push(Note {
            reason,
            warning,
            text,
        });
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_shows_the_target() {
        let cases = [
            (Some("30.0.0"), "30.0.0", true, "same text"),
            (
                Some("v30.0.0"),
                "30.0.0",
                true,
                "another spelling of the same version",
            ),
            (
                Some(" 30.0.0 "),
                "30.0.0",
                true,
                "blanks around a label value",
            ),
            (Some("29.9.0"), "30.0.0", false, "older"),
            (Some("31.0.0"), "30.0.0", false, "newer is not the target"),
            (None, "30.0.0", false, "no version place"),
            (
                Some("latest"),
                "latest",
                true,
                "a non-version equal as text",
            ),
        ];
        for (current, target, want, why) in cases {
            assert_eq!(shows(current, target), want, "{why}");
        }
    }

    fn entry(name: &str, state: Option<&str>, announced: bool) -> ClusterState {
        ClusterState {
            name: name.into(),
            state: state.map(Into::into),
            reason: Some("disk full".into()),
            from_release: Some("29.0.0".into()),
            to_release: Some("30.0.0".into()),
            announced_at: announced.then(|| Time("2026-11-21T10:00:00Z".parse().expect("ts"))),
            ..ClusterState::default()
        }
    }

    fn statuses(entries: Vec<ClusterState>) -> ClusterUpgradeStatus {
        ClusterUpgradeStatus {
            clusters: entries,
            ..ClusterUpgradeStatus::default()
        }
    }

    /// (state before, state after, announced now, Event reasons, why)
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        bool,
        Vec<&'a str>,
        &'a str,
    );

    #[test]
    fn events_follow_transitions() {
        let plan = Plan {
            clusters: Vec::new(),
            state: CampaignState::Running,
            outcome: None,
            finished_at: None,
            next_check: None,
            reason: None,
        };
        let cases: Vec<Case<'_>> = vec![
            (
                None,
                Some("Triggered"),
                false,
                vec![UPGRADE_TRIGGERED],
                "first trigger",
            ),
            (
                Some("Waiting"),
                Some("Triggered"),
                false,
                vec![UPGRADE_TRIGGERED],
                "from waiting",
            ),
            (
                Some("Triggered"),
                Some("Triggered"),
                false,
                vec![],
                "re-applied after a restart: no second Event",
            ),
            (
                Some("Triggered"),
                Some("Upgrading"),
                false,
                vec![],
                "upgrading is no Event",
            ),
            (
                Some("Upgrading"),
                Some("Succeeded"),
                false,
                vec![UPGRADE_SUCCEEDED],
                "success",
            ),
            (
                Some("Upgrading"),
                Some("Failed"),
                false,
                vec![UPGRADE_FAILED],
                "failure",
            ),
            (
                Some("Waiting"),
                Some("Waiting"),
                true,
                vec![UPGRADE_ANNOUNCED],
                "announced now",
            ),
            (
                None,
                Some("Triggered"),
                true,
                vec![UPGRADE_ANNOUNCED, UPGRADE_TRIGGERED],
                "announced and started at once",
            ),
            (
                Some("Succeeded"),
                Some("Succeeded"),
                false,
                vec![],
                "terminal stays quiet",
            ),
        ];
        for (was, now, announced, want, why) in cases {
            let before = statuses(vec![entry("a", was, false)]);
            let after = statuses(vec![entry("a", now, announced)]);
            let got: Vec<&str> = transitions(&before, &after, &plan)
                .iter()
                .map(|n| n.reason)
                .collect();
            assert_eq!(got, want, "{why}");
        }
        let failed = transitions(
            &statuses(vec![entry("a", Some("Upgrading"), false)]),
            &statuses(vec![entry("a", Some("Failed"), false)]),
            &plan,
        );
        assert!(
            failed[0].warning && failed[0].text.contains("disk full"),
            "a failure is a Warning naming the reason"
        );
    }

    #[allow(clippy::needless_pass_by_value)] // callers build the value inline
    fn upgrade(spec: serde_json::Value) -> ClusterUpgrade {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgrade",
            "metadata": {"name": "u", "namespace": "org", "generation": 1}, "spec": spec,
        }))
        .expect("a ClusterUpgrade")
    }

    fn snapshot() -> Snapshot {
        let cluster = |name: &str, version: &str| {
            ClusterObject::from_json(serde_json::json!({
                "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
                "metadata": {"name": name, "namespace": "org",
                             "labels": {"release.giantswarm.io/version": version}},
            }))
            .expect("a cluster")
        };
        Snapshot {
            clusters: vec![cluster("a", "29.0.0"), cluster("b", "30.0.0")],
            ..Snapshot::default()
        }
    }

    #[test]
    fn decisions_without_an_api_server() {
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().expect("now");
        let all = serde_json::json!([{"name": "all", "value": ".*", "isRegex": true}]);
        let cases = [
            (
                serde_json::json!({"matchers": all, "targetVersion": "30.0.0"}),
                "Plan a=Trigger b=Skipped",
                "a starts; b already shows the target",
            ),
            (
                serde_json::json!({"matchers": all, "targetVersion": "30.0.0", "strategy": {"timeout": "soon"}}),
                "Stalled InvalidSpec",
                "an invalid duration stalls",
            ),
            (
                serde_json::json!({"matchers": all, "targetVersion": "30.0.0", "maintenanceScheduleRef": {"name": "gone"}}),
                "NotReady ScheduleNotFound",
                "a missing schedule waits for it",
            ),
        ];
        let snapshot = snapshot();
        for (spec, want, why) in cases {
            let object = upgrade(spec);
            let got = match decide(&object, &snapshot, VersionSource::Label, now) {
                Decision::Stalled { reason, .. } => format!("Stalled {reason}"),
                Decision::NotReady { reason, .. } => format!("NotReady {reason}"),
                Decision::Plan(d) => {
                    let steps: Vec<String> = d
                        .plan
                        .clusters
                        .iter()
                        .map(|cp| {
                            let step = match &cp.step {
                                Step::Trigger => "Trigger",
                                Step::Skipped { .. } => "Skipped",
                                s => s.phase().as_str(),
                            };
                            format!("{}={step}", cp.name)
                        })
                        .collect();
                    let moved: Vec<&str> = d
                        .to_move(&snapshot.clusters)
                        .iter()
                        .map(|(c, _)| c.name.as_str())
                        .collect();
                    assert_eq!(moved, ["a"], "{why}: only a is patched");
                    let status = desired_status(
                        &object,
                        &ClusterUpgradeStatus::default(),
                        &d.plan,
                        d.inputs.target.as_deref(),
                        &[],
                        now,
                    );
                    assert_eq!(
                        status
                            .cluster("a")
                            .and_then(|c| c.triggered_at.clone())
                            .map(|t| t.0),
                        Some(now),
                        "{why}: recorded as triggered now"
                    );
                    format!("Plan {}", steps.join(" "))
                }
            };
            assert_eq!(got, want, "{why}");
        }
    }

    #[test]
    fn the_next_look() {
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().expect("now");
        let poll = Duration::from_secs(5);
        let retry = Duration::from_secs(2);
        let plan = |running: bool, next: Option<i64>| Plan {
            clusters: running
                .then(|| rollout::ClusterPlan {
                    name: "a".into(),
                    stage: None,
                    step: Step::Upgrading,
                    from: None,
                    expected_start: None,
                    announce: false,
                })
                .into_iter()
                .collect(),
            state: CampaignState::Running,
            outcome: None,
            finished_at: None,
            next_check: next.map(|s| now + jiff::SignedDuration::from_secs(s)),
            reason: None,
        };
        let cases = [
            (
                plan(false, None),
                false,
                Action::await_change(),
                "nothing to wait for",
            ),
            (
                plan(false, Some(60)),
                false,
                Action::requeue(Duration::from_secs(60)),
                "the plan's next check",
            ),
            (
                plan(true, Some(60)),
                false,
                Action::requeue(poll),
                "running: every poll",
            ),
            (
                plan(true, Some(1)),
                false,
                Action::requeue(Duration::from_secs(1)),
                "running, a sooner check",
            ),
            (
                plan(false, Some(10 * 365 * 86_400)),
                false,
                Action::requeue(MAX_WAIT),
                "years away: daily",
            ),
            (
                plan(true, None),
                true,
                Action::requeue(retry),
                "a conflict: soon",
            ),
        ];
        for (p, conflict, want, why) in cases {
            assert_eq!(next_action(&p, conflict, now, poll, retry), want, "{why}");
        }
    }
}

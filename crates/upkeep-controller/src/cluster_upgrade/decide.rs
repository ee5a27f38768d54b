//! Decide: pure. The snapshot [`super::gather`] read becomes the core's input through the one
//! conversion (`upkeep_api::cluster_upgrade::inputs`), the rollout core plans, and the status
//! to write, the Events and the next look follow from the plan. No I/O and no clock (`now` is
//! a parameter), so every decision is unit-tested without an API server, and the CLI
//! (`upkeep status`, `plan`) decides with the same [`decide`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::controller::Action;
use upkeep_api::cluster_upgrade::{
    ClusterCounts, ClusterState, ClusterUpgradeStatus, InputError, Inputs, MAX_STATUS_CLUSTERS,
    NamedSchedule, VersionSource, inputs, overlaps, spec_message,
};
use upkeep_api::release::Resolution;
use upkeep_api::{ClusterObject, ClusterUpgrade};
use upkeep_core::rollout::{self, CampaignState, ClusterPhase, Plan, Step};
use upkeep_core::version::Version;

use super::{
    MAX_WAIT, SPEC_CHANGED_AFTER_FINISH, UPGRADE_ANNOUNCED, UPGRADE_FAILED, UPGRADE_SUCCEEDED,
    UPGRADE_TRIGGERED,
};
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
    /// The other ClusterUpgrades of the namespace (the upgrade itself may be among them): a
    /// cluster two active campaigns select runs in the older one
    /// (`upkeep_api::cluster_upgrade::overlaps`).
    pub others: Vec<std::sync::Arc<ClusterUpgrade>>,
    /// The upgrade's ClusterUpgradeRecords, one entry per cluster: merged into the recorded
    /// status before the core reads it ([`ClusterUpgradeStatus::with_records`]).
    pub records: Vec<ClusterState>,
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
    // The records are the per-cluster truth; the status entries (in flight, failed, or written
    // by an upkeep before records) are merged with them.
    let merged;
    let object = if snapshot.records.is_empty() {
        object
    } else {
        let mut o = object.clone();
        o.status = Some(o.status.unwrap_or_default().with_records(&snapshot.records));
        merged = o;
        &merged
    };
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
        Ok(mut inputs) => {
            overlaps(
                &mut inputs,
                object,
                snapshot.others.iter().map(AsRef::as_ref),
            );
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
        let by_name: HashMap<&str, &ClusterObject> =
            clusters.iter().map(|c| (c.name.as_str(), c)).collect();
        self.plan
            .clusters
            .iter()
            .filter(|cp| matches!(cp.step, Step::Trigger | Step::Triggered))
            .filter_map(|cp| by_name.get(cp.name.as_str()).copied())
            .filter(|c| !shows(c.version_at(Some(self.inputs.source)), target))
            .map(|c| (c, target.to_owned()))
            .collect()
    }

    /// What carrying out the plan needs, owned (see [`Acting`]).
    pub fn into_acting(self, clusters: &[ClusterObject]) -> Acting {
        let moves = self
            .to_move(clusters)
            .into_iter()
            .map(|(c, target)| Move {
                name: c.name.clone(),
                namespace: c.namespace.clone(),
                resource_version: c.resource_version.clone(),
                target,
            })
            .collect();
        let Decided { inputs, plan } = self;
        Acting {
            plan,
            target: inputs.target,
            source: inputs.source,
            timeout: inputs.campaign.timeout,
            moves,
        }
    }
}

/// A plan and what carrying it out needs, owning it all. The decision's inputs borrow every
/// cluster of the campaign (20,000 in one campaign is a target); this keeps only the few
/// fields of the clusters to move, so the clusters can be dropped before the long part of a
/// reconcile (a record and a patch for each of thousands of clusters).
#[derive(Debug)]
pub struct Acting {
    pub plan: Plan,
    /// The target as written (see [`upkeep_api::ClusterUpgrade::target_text`]).
    pub target: Option<String>,
    /// Where the version is read and written.
    pub source: VersionSource,
    /// The campaign's timeout per cluster.
    pub timeout: jiff::SignedDuration,
    /// The clusters to move now ([`Decided::to_move`]).
    pub moves: Vec<Move>,
}

/// One cluster to move: what its change is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub name: String,
    pub namespace: Option<String>,
    /// The resourceVersion the decision was made on (the patch's precondition).
    pub resource_version: Option<String>,
    pub target: String,
}

impl Acting {
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
/// the GitOps commit and pull request), with an entry for every planned cluster: what
/// transitions, records and metrics are made from. [`bounded`] makes the status written of it.
/// `before`: the recorded status with the records merged in; `announced`: the clusters whose
/// announcement went out.
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
    let mut counts = ClusterCounts::default();
    for cp in &plan.clusters {
        counts.add(cp.step.phase().as_str());
    }
    ClusterUpgradeStatus {
        triggered_at,
        state: Some(plan.state.as_str().to_owned()),
        reason: Some(campaign_reason(plan)),
        progress: Some(counts.progress()),
        stage: stage(object, plan),
        counts: Some(counts),
        omitted_clusters: 0,
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

/// Why the campaign is in its state: the outcome once Finished, what holds the whole campaign
/// while Waiting, `Upgrading` while clusters run, else what most waiting clusters wait for
/// (`Window`, `Soak`, `Frozen`, …; `NoClusterSelected` when nothing is selected).
fn campaign_reason(plan: &Plan) -> String {
    match (plan.state, plan.outcome, &plan.reason) {
        (CampaignState::Finished, Some(outcome), _) => return outcome.as_str().to_owned(),
        (CampaignState::Waiting, _, Some(reason)) => return reason.name().to_owned(),
        _ => {}
    }
    if plan.clusters.iter().any(|cp| cp.step.phase().is_running()) {
        return "Upgrading".to_owned();
    }
    let mut waiting: BTreeMap<&'static str, usize> = BTreeMap::new();
    for cp in &plan.clusters {
        if let Step::Waiting { reason, .. } = &cp.step {
            *waiting.entry(reason.name()).or_default() += 1;
        }
    }
    // The most common reason; the first by name on a tie.
    let most = waiting
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(r, _)| (*r).to_owned());
    match most {
        Some(reason) => reason,
        None if plan.clusters.is_empty() => "NoClusterSelected".to_owned(),
        None => plan.state.as_str().to_owned(),
    }
}

/// The stage running now (the first, in spec order, with a cluster Triggered or Upgrading), or
/// the last that ran (the latest with a cluster started or finished); `None` without stages.
fn stage(object: &ClusterUpgrade, plan: &Plan) -> Option<String> {
    let stages = &object.spec.strategy.as_ref()?.stages;
    let position = |name: &str| stages.iter().position(|s| s.name == name);
    let of = |keep: fn(ClusterPhase) -> bool| {
        plan.clusters
            .iter()
            .filter(move |cp| keep(cp.step.phase()))
            .filter_map(|cp| cp.stage.as_deref())
            .filter_map(|s| position(s).map(|p| (p, s)))
    };
    of(ClusterPhase::is_running)
        .min()
        .or_else(|| {
            of(|p| p.is_running() || matches!(p, ClusterPhase::Succeeded | ClusterPhase::Failed))
                .max()
        })
        .map(|(_, s)| s.to_owned())
}

/// The status as written: `status` with `clusters` cut down to at most
/// [`MAX_STATUS_CLUSTERS`] entries — failed first (they need someone), then halted, upgrading,
/// triggered, newest first within each; waiting, then skipped clusters fill the room left (by
/// name), so a small campaign still says why each cluster waits or was skipped — the rest
/// counted in `omittedClusters`. Succeeded clusters are never listed: every cluster is in
/// `counts`, and each one the campaign touched has its record, so the size of status no longer
/// grows with the fleet.
pub fn bounded(status: &ClusterUpgradeStatus) -> ClusterUpgradeStatus {
    let rank = |c: &ClusterState| match c.state.as_deref() {
        Some("Failed") => Some(0),
        Some("Halted") => Some(1),
        Some("Upgrading") => Some(2),
        Some("Triggered") => Some(3),
        Some("Waiting") => Some(4),
        Some("Skipped") => Some(5),
        _ => None,
    };
    // By reference: only the entries kept are copied (a campaign may plan 20,000).
    let mut kept: Vec<(u8, &ClusterState)> = status
        .clusters
        .iter()
        .filter_map(|c| rank(c).map(|r| (r, c)))
        .collect();
    let when = |c: &ClusterState| {
        c.finished_at
            .as_ref()
            .or(c.triggered_at.as_ref())
            .map(|t| t.0)
    };
    kept.sort_by(|(ra, a), (rb, b)| {
        ra.cmp(rb)
            .then_with(|| when(b).cmp(&when(a)))
            .then_with(|| a.name.cmp(&b.name))
    });
    // Waiting clusters are listed only in the room left: they are not counted as omitted.
    let listed_first = kept.iter().filter(|(r, _)| *r < 4).count();
    let omitted = listed_first.saturating_sub(MAX_STATUS_CLUSTERS);
    kept.truncate(MAX_STATUS_CLUSTERS);
    let clusters = kept.into_iter().map(|(_, c)| c.clone()).collect();
    ClusterUpgradeStatus {
        triggered_at: status.triggered_at.clone(),
        state: status.state.clone(),
        reason: status.reason.clone(),
        progress: status.progress.clone(),
        stage: status.stage.clone(),
        counts: status.counts,
        omitted_clusters: u32::try_from(omitted).unwrap_or(u32::MAX),
        outcome: status.outcome.clone(),
        finished_at: status.finished_at.clone(),
        from_release: status.from_release.clone(),
        to_release: status.to_release.clone(),
        clusters,
        last_push_commit: status.last_push_commit.clone(),
        pull_request: status.pull_request.clone(),
        conditions: status.conditions.clone(),
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
    let recorded: HashMap<&str, &ClusterState> = before
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    plan.clusters
        .iter()
        .map(|cp| {
            let old = recorded.get(cp.name.as_str()).copied();
            let (triggered_at, acknowledged_at) = if cp.step == Step::Trigger {
                (Some(Time(now)), None)
            } else {
                (
                    old.and_then(|o| o.triggered_at.clone()),
                    old.and_then(|o| o.acknowledged_at.clone()),
                )
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
                acknowledged_at,
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

/// The status of a Finished campaign whose spec changed after the finish (`None`: nothing to
/// write, the generation was already seen): the conditions as they are, each at the new
/// `observedGeneration`, plus [`SPEC_CHANGED_AFTER_FINISH`] saying the edit is ignored and how
/// to retry. Nothing else changes: Finished is final.
pub fn finished_status(
    object: &ClusterUpgrade,
    before: &ClusterUpgradeStatus,
    now: Timestamp,
) -> Option<ClusterUpgradeStatus> {
    let generation = object.metadata.generation?;
    let seen = before
        .conditions
        .iter()
        .filter_map(|c| c.observed_generation)
        .max();
    if seen.is_some_and(|g| g >= generation) {
        return None;
    }
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let outcome = before.outcome.as_deref().unwrap_or("finished");
    let at = before
        .finished_at
        .as_ref()
        .map_or_else(String::new, |t| format!(" at {}", t.0));
    let message = format!(
        "the campaign finished ({outcome}){at}; spec changes after that are ignored (generation {generation}). hint: to upgrade again, create a new ClusterUpgrade (for the failed and halted clusters of {name}: matchers naming them)"
    );
    let mut conditions: Vec<Condition> = before
        .conditions
        .iter()
        .filter(|c| c.type_ != SPEC_CHANGED_AFTER_FINISH)
        .cloned()
        .map(|mut c| {
            c.observed_generation = Some(generation);
            c
        })
        .collect();
    let since = before
        .conditions
        .iter()
        .find(|c| c.type_ == SPEC_CHANGED_AFTER_FINISH && c.status == "True")
        .map_or_else(|| Time(now), |c| c.last_transition_time.clone());
    conditions.push(Condition {
        type_: SPEC_CHANGED_AFTER_FINISH.to_owned(),
        status: "True".to_owned(),
        reason: "Finished".to_owned(),
        message,
        observed_generation: Some(generation),
        last_transition_time: since,
    });
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    Some(ClusterUpgradeStatus {
        conditions,
        ..before.clone()
    })
}

/// Records which changes were acknowledged in this reconcile: `changed` were written now (the
/// patch answered 2xx, the commit was pushed or the repository already held it), so their
/// clock starts `now`; a running cluster that needed no change (`needed` does not name it: it
/// already shows the target) while none was acknowledged had its change made before a restart
/// cut the record short, and counts from its trigger, as the core's fallback does. A cluster
/// whose change failed keeps no acknowledgement: it is not started for the timeout.
pub fn acknowledge(
    wanted: &mut ClusterUpgradeStatus,
    changed: &[String],
    needed: &[String],
    now: Timestamp,
) {
    for entry in &mut wanted.clusters {
        let running = entry
            .state
            .as_deref()
            .and_then(ClusterPhase::parse)
            .is_some_and(ClusterPhase::is_running);
        if entry.acknowledged_at.is_some() || !running {
            continue;
        }
        if changed.contains(&entry.name) {
            entry.acknowledged_at = Some(Time(now));
        } else if !needed.contains(&entry.name) {
            entry.acknowledged_at = Some(entry.triggered_at.clone().unwrap_or(Time(now)));
        }
    }
}

/// The entries of `status` by cluster name (a campaign may list 20,000: looked up, not
/// searched).
pub fn index(status: &ClusterUpgradeStatus) -> HashMap<&str, &ClusterState> {
    status
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect()
}

/// Clusters named in a batched Event's note; the others are counted.
const NAMED_PER_EVENT: usize = 5;
/// The longest text of one cluster in a batched Event's note.
const TEXT_PER_CLUSTER: usize = 160;

/// One Event per reason: the note of a reason only one cluster has, as it is; the notes of
/// several (a window opening over thousands of clusters) folded into one that says how many
/// and names the first [`NAMED_PER_EVENT`] (each cluster's own record says the rest, and
/// `kubectl get clusterupgraderecords -l upkeep.dev/campaign=<campaign>` lists them). Order
/// of first appearance is kept.
pub fn batched(notes: Vec<Note>, campaign: &str) -> Vec<Note> {
    let mut groups: Vec<(&'static str, bool, Vec<String>)> = Vec::new();
    for note in notes {
        match groups
            .iter_mut()
            .find(|(r, w, _)| *r == note.reason && *w == note.warning)
        {
            Some(g) => g.2.push(note.text),
            None => groups.push((note.reason, note.warning, vec![note.text])),
        }
    }
    groups
        .into_iter()
        .map(|(reason, warning, mut texts)| {
            let text = if texts.len() == 1 {
                texts.remove(0)
            } else {
                let n = texts.len();
                let named: Vec<String> = texts
                    .iter()
                    .take(NAMED_PER_EVENT)
                    .map(|t| shorten(t, TEXT_PER_CLUSTER))
                    .collect();
                let mut text = format!("{n} clusters: {}", named.join("; "));
                if n > NAMED_PER_EVENT {
                    let _ = write!(
                        text,
                        "; and {} more (kubectl get clusterupgraderecords -l {}={campaign})",
                        n - NAMED_PER_EVENT,
                        upkeep_api::cluster_upgrade_record::CAMPAIGN_LABEL
                    );
                }
                text
            };
            Note {
                reason,
                warning,
                text,
            }
        })
        .collect()
}

/// `text` cut to at most `max` characters (an ellipsis says so).
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Events for the transitions between the recorded status and the new one. A start is an
/// Event once its change is acknowledged (not when the trigger is recorded: a refused patch is
/// no start), so a trigger resumed after a restart gets its Event when its change lands.
pub fn transitions(
    before: &ClusterUpgradeStatus,
    after: &ClusterUpgradeStatus,
    plan: &Plan,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let before = index(before);
    for entry in &after.clusters {
        let old = before.get(entry.name.as_str()).copied();
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
        if entry.acknowledged_at.is_some() && old.and_then(|o| o.acknowledged_at.as_ref()).is_none()
        {
            notes.push(Note {
                reason: UPGRADE_TRIGGERED,
                warning: false,
                text: format!("cluster {}: {from} → {to}", entry.name),
            });
        }
        if now == was {
            continue;
        }
        let (reason, warning, text) = match now {
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
        let t = || Time("2026-11-21T10:00:00Z".parse().expect("ts"));
        ClusterState {
            name: name.into(),
            state: state.map(Into::into),
            reason: Some("disk full".into()),
            from_release: Some("29.0.0".into()),
            to_release: Some("30.0.0".into()),
            announced_at: announced.then(t),
            // Started clusters had their change acknowledged, unless a case says otherwise.
            acknowledged_at: state.is_some_and(|s| s != "Waiting").then(t),
            ..ClusterState::default()
        }
    }

    fn acked(mut e: ClusterState) -> ClusterState {
        e.acknowledged_at = Some(Time("2026-11-21T10:00:00Z".parse().expect("ts")));
        e
    }

    fn unacked(mut e: ClusterState) -> ClusterState {
        e.acknowledged_at = None;
        e
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
        // The start is the acknowledgement, not the recorded trigger: (before, after, Events).
        let starts = [
            (
                entry("a", None, false),
                unacked(entry("a", Some("Triggered"), false)),
                Vec::<&str>::new(),
                "recorded, the change refused (403): no UpgradeTriggered",
            ),
            (
                unacked(entry("a", Some("Triggered"), false)),
                entry("a", Some("Triggered"), false),
                vec![UPGRADE_TRIGGERED],
                "a resumed or retried trigger whose change lands now: its one Event",
            ),
            (
                entry("a", Some("Triggered"), false),
                entry("a", Some("Triggered"), false),
                vec![],
                "acknowledged before: no second Event",
            ),
            (
                unacked(entry("a", Some("Triggered"), false)),
                entry("a", Some("Upgrading"), false),
                vec![UPGRADE_TRIGGERED],
                "acknowledged and already upgrading (a restart between change and record)",
            ),
        ];
        for (was, now, want, why) in starts {
            let got: Vec<&str> = transitions(&statuses(vec![was]), &statuses(vec![now]), &plan)
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

    #[test]
    fn events_fold_per_reason() {
        let note = |reason, warning, cluster: &str| Note {
            reason,
            warning,
            text: format!("cluster {cluster}: 29.0.0 → 30.0.0"),
        };
        let many: Vec<Note> = (0..12_000)
            .map(|i| note(UPGRADE_TRIGGERED, false, &format!("wc-{i:05}")))
            .collect();
        let long = Note {
            reason: UPGRADE_FAILED,
            warning: true,
            text: format!("cluster a: failed: {}", "x".repeat(500)),
        };
        let cases: Vec<(Vec<Note>, Vec<Note>, &str)> = vec![
            (
                vec![note(UPGRADE_TRIGGERED, false, "a")],
                vec![note(UPGRADE_TRIGGERED, false, "a")],
                "one cluster: its own note, as before",
            ),
            (
                vec![
                    note(UPGRADE_TRIGGERED, false, "a"),
                    note(UPGRADE_SUCCEEDED, false, "b"),
                    note(UPGRADE_TRIGGERED, false, "c"),
                ],
                vec![
                    Note {
                        reason: UPGRADE_TRIGGERED,
                        warning: false,
                        text: "2 clusters: cluster a: 29.0.0 → 30.0.0; cluster c: 29.0.0 → 30.0.0"
                            .into(),
                    },
                    note(UPGRADE_SUCCEEDED, false, "b"),
                ],
                "one Event per reason, in order of first appearance",
            ),
            (
                many,
                vec![Note {
                    reason: UPGRADE_TRIGGERED,
                    warning: false,
                    text: "12000 clusters: cluster wc-00000: 29.0.0 → 30.0.0; cluster wc-00001: 29.0.0 → 30.0.0; cluster wc-00002: 29.0.0 → 30.0.0; cluster wc-00003: 29.0.0 → 30.0.0; cluster wc-00004: 29.0.0 → 30.0.0; and 11995 more (kubectl get clusterupgraderecords -l upkeep.dev/campaign=to-30)".into(),
                }],
                "a window opening over 12,000 clusters: one Event, the first five named",
            ),
        ];
        for (notes, want, why) in cases {
            assert_eq!(batched(notes, "to-30"), want, "{why}");
        }
        let folded = batched(vec![long.clone(), long], "to-30");
        assert_eq!(folded.len(), 1, "warnings fold too");
        assert!(folded[0].warning, "and stay warnings");
        assert!(
            folded[0].text.chars().count() < 2 * TEXT_PER_CLUSTER + 20,
            "each cluster's text is cut: {}",
            folded[0].text
        );
    }

    #[test]
    fn what_counts_as_acknowledged() {
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().expect("now");
        let trigger = Time("2026-12-02T09:00:00Z".parse().expect("ts"));
        let running = |name: &str, state: &str| ClusterState {
            name: name.into(),
            state: Some(state.into()),
            triggered_at: Some(trigger.clone()),
            ..ClusterState::default()
        };
        let mut status = statuses(vec![
            running("patched", "Triggered"),
            running("refused", "Triggered"),
            running("shows-target", "Upgrading"),
            running("waiting", "Waiting"),
            acked(running("earlier", "Upgrading")),
        ]);
        let needed = ["patched".to_owned(), "refused".to_owned()];
        acknowledge(&mut status, &["patched".to_owned()], &needed, now);
        let cases = [
            ("patched", Some(now), "2xx now: the clock starts now"),
            ("refused", None, "a refused change is not acknowledged"),
            (
                "shows-target",
                Some(trigger.0),
                "no change needed (made before a restart): from the trigger",
            ),
            ("waiting", None, "not started"),
            (
                "earlier",
                Some("2026-11-21T10:00:00Z".parse().expect("ts")),
                "kept",
            ),
        ];
        for (name, want, why) in cases {
            let got = status
                .cluster(name)
                .and_then(|c| c.acknowledged_at.as_ref())
                .map(|t| t.0);
            assert_eq!(got, want, "{name}: {why}");
        }
    }

    #[test]
    fn a_finished_campaign_ignores_spec_changes() {
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().expect("now");
        let mut object = upgrade(serde_json::json!({"targetVersion": "30.0.0"}));
        let ready = |generation: i64| Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "Failed".into(),
            message: "1 Failed".into(),
            observed_generation: Some(generation),
            last_transition_time: Time("2026-12-01T00:00:00Z".parse().expect("ts")),
        };
        let finished = ClusterUpgradeStatus {
            state: Some("Finished".into()),
            outcome: Some("Failed".into()),
            conditions: vec![ready(1)],
            ..ClusterUpgradeStatus::default()
        };
        assert!(
            finished_status(&object, &finished, now).is_none(),
            "the generation the campaign finished on: nothing to write"
        );
        object.metadata.generation = Some(2);
        let after = finished_status(&object, &finished, now).expect("an edit after the finish");
        let changed = after
            .conditions
            .iter()
            .find(|c| c.type_ == SPEC_CHANGED_AFTER_FINISH)
            .expect("the condition");
        assert!(
            changed.message.contains("ignored")
                && changed.message.contains("create a new ClusterUpgrade")
                && changed.message.contains("Failed"),
            "{}",
            changed.message
        );
        let ready_after = after
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(
            (ready_after.reason.as_str(), ready_after.observed_generation),
            ("Failed", Some(2)),
            "Ready keeps the outcome, at the generation seen"
        );
        assert_eq!(
            (after.state.as_deref(), after.outcome.as_deref()),
            (Some("Finished"), Some("Failed")),
            "nothing else changes"
        );
        assert!(
            finished_status(&object, &after, now).is_none(),
            "once per generation"
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

    /// A campaign over 20,000 clusters: the status written stays under 64 KiB whatever the
    /// mix, keeps failed clusters first, counts every cluster, and says how many it left out.
    #[test]
    fn status_size_is_bounded_whatever_the_fleet() {
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().expect("now");
        let object = upgrade(serde_json::json!({
            "matchers": [{"name": "all", "value": ".*", "isRegex": true}],
            "targetVersion": "30.0.0",
            "strategy": {"stages": [{"name": "dev", "matchers": [{"name": "d", "key": "env", "value": "dev"}]},
                                    {"name": "prod", "matchers": [{"name": "p", "key": "env", "value": "prod"}]}]},
        }));
        let phases = [
            Step::Upgrading,
            Step::Succeeded { at: now },
            Step::Failed {
                reason: rollout::FailReason::Condition("disk full".into()),
                at: now,
            },
            Step::Triggered,
        ];
        let plan = |n: usize| Plan {
            clusters: (0..n)
                .map(|i| rollout::ClusterPlan {
                    name: format!("cluster-{i:05}"),
                    stage: Some(if i % 2 == 0 { "dev" } else { "prod" }.into()),
                    step: phases[i % phases.len()].clone(),
                    from: Some("29.0.0".into()),
                    expected_start: None,
                    announce: false,
                })
                .collect(),
            state: CampaignState::Running,
            outcome: None,
            finished_at: None,
            next_check: None,
            reason: None,
        };
        let mut sizes = Vec::new();
        for n in [10, 1_000, 20_000] {
            let p = plan(n);
            let full = desired_status(
                &object,
                &ClusterUpgradeStatus::default(),
                &p,
                Some("30.0.0"),
                &[],
                now,
            );
            assert_eq!(
                full.clusters.len(),
                n,
                "{n}: the full status has every cluster"
            );
            let written = bounded(&full);
            let size = serde_json::to_vec(&written).expect("json").len();
            sizes.push(size);
            assert!(size < 64 * 1024, "{n} clusters: {size} bytes");
            let counts = written.counts.expect("counts");
            assert_eq!(counts.total as usize, n, "{n}: every cluster counted");
            assert_eq!(
                (counts.succeeded + counts.failed + counts.upgrading + counts.triggered) as usize,
                n
            );
            let listed = written.clusters.len();
            let eligible = n - counts.succeeded as usize;
            assert_eq!(
                listed,
                eligible.min(MAX_STATUS_CLUSTERS),
                "{n}: in flight and failed only, capped"
            );
            assert_eq!(
                written.omitted_clusters as usize,
                eligible - listed,
                "{n}: the rest is counted"
            );
            assert!(
                written
                    .clusters
                    .iter()
                    .all(|c| c.state.as_deref() != Some("Succeeded")),
                "{n}: succeeded clusters live in their records only"
            );
            let failed = written
                .clusters
                .iter()
                .take_while(|c| c.state.as_deref() == Some("Failed"))
                .count();
            assert_eq!(
                failed,
                (counts.failed as usize).min(listed),
                "{n}: failed first"
            );
            assert_eq!(
                written.progress.as_deref(),
                Some(
                    format!(
                        "{}/{n} succeeded, {} failed",
                        counts.succeeded, counts.failed
                    )
                    .as_str()
                )
            );
            assert_eq!(written.reason.as_deref(), Some("Upgrading"));
            assert_eq!(
                written.stage.as_deref(),
                Some("dev"),
                "the first stage running"
            );
        }
        assert!(
            sizes[2] <= sizes[1] + 64,
            "20,000 clusters write no more than 1,000: {sizes:?}"
        );
    }

    #[test]
    fn campaign_reason_and_stage() {
        let cp = |name: &str, stage: &str, step: Step| rollout::ClusterPlan {
            name: name.into(),
            stage: Some(stage.into()),
            step,
            from: None,
            expected_start: None,
            announce: false,
        };
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().expect("now");
        let wait = |reason: rollout::WaitReason| Step::Waiting {
            reason,
            until: None,
        };
        let window = || rollout::WaitReason::Window {
            schedule: "weekly".into(),
            reason: upkeep_core::schedule::ClosedReason::OutsideWindows,
            next_open: None,
        };
        let plan = |clusters: Vec<rollout::ClusterPlan>, state, outcome| Plan {
            clusters,
            state,
            outcome,
            finished_at: None,
            next_check: None,
            reason: None,
        };
        let object = upgrade(serde_json::json!({
            "matchers": [], "targetVersion": "30.0.0",
            "strategy": {"stages": [{"name": "dev"}, {"name": "prod"}]},
        }));
        let cases = [
            (
                plan(
                    vec![cp("a", "dev", Step::Succeeded { at: now })],
                    CampaignState::Finished,
                    Some(rollout::Outcome::Succeeded),
                ),
                "Succeeded",
                Some("dev"),
                "finished: the outcome; the last stage that ran",
            ),
            (
                plan(
                    vec![
                        cp("a", "dev", Step::Succeeded { at: now }),
                        cp("b", "prod", wait(window())),
                        cp("c", "prod", wait(window())),
                        cp(
                            "d",
                            "prod",
                            wait(rollout::WaitReason::Frozen {
                                until: now,
                                reason: None,
                            }),
                        ),
                    ],
                    CampaignState::Running,
                    None,
                ),
                "Window",
                Some("dev"),
                "between stages: what most clusters wait for",
            ),
            (
                plan(
                    vec![cp("a", "prod", Step::Upgrading)],
                    CampaignState::Running,
                    None,
                ),
                "Upgrading",
                Some("prod"),
                "running",
            ),
            (
                plan(Vec::new(), CampaignState::Pending, None),
                "NoClusterSelected",
                None,
                "nothing selected",
            ),
        ];
        for (p, reason, stage_now, why) in cases {
            assert_eq!(campaign_reason(&p), reason, "{why}");
            assert_eq!(stage(&object, &p).as_deref(), stage_now, "{why}");
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

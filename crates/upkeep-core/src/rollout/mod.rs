//! Rollouts: which cluster of a `ClusterUpgrade` campaign starts, waits, runs or is done, now.
//!
//! [`plan`] is one pure function of a snapshot — the campaign, every cluster with what status
//! recorded about it last time, and `now` — to a decision for every cluster. The shells
//! (controller, `upkeep` CLI) gather the snapshot, record the decision in status and act on it;
//! nothing here remembers anything between calls. That is what lets a controller restart at any
//! point, lets `upkeep plan --at T` tell the truth, and lets the tests simulate months of a
//! fleet in milliseconds.
//!
//! # Rules
//!
//! - **Selection.** A cluster is in the campaign when any of `matchers` matches its name or
//!   labels. Its stage is the first stage whose matchers match; with stages defined, a selected
//!   cluster in no stage is `Skipped(NotInAnyStage)`. No stages = one implicit stage. A cluster
//!   the campaign already touched (recorded state other than Waiting) stays in the plan even if
//!   it is no longer selected, so a running upgrade is never lost from sight.
//! - **Never touched** (no progress, or Waiting): with a target for one provider (a Giant
//!   Swarm Release `aws-29.5.0`), a cluster of another provider or of none known →
//!   `Skipped(OtherProvider)`; held by another active campaign ([`Elsewhere::held_by`]:
//!   one running it, or an older one selecting it) → `Waiting(Overlap)`, unless a
//!   campaign-wide gate below (suspend, no target, start time, `after`) is the reason; missing/unparsable
//!   version → `Skipped(NotAVersion)`; at or above the target → `Skipped(AlreadyAtTarget)`,
//!   unless it reports a failure, or another campaign recorded its upgrade to this version as
//!   Failed and the cluster is not ready → `Failed(AtTargetNotHealthy)` (a broken cluster at
//!   the target is no success).
//!   Otherwise the gates below, in this order;
//!   the first that holds is the reason: `Suspended`, `NoTarget` (with the shell's reason: a
//!   Release missing or refused), `StartTime`, `After` (each dependency Succeeded and its
//!   `finished + soak <= now`; a Failed dependency waits forever with `failed: true`), `Stage`
//!   (every cluster of every earlier stage terminal, and `now >=` each earlier stage's last
//!   finish + its soak), `Halted`, `Frozen` (the cluster's annotation), `Window`
//!   (`Schedule::check(now, kind)` with the kind of `current → target`, so a `NoMinorUpgrades`
//!   exclusion lets a patch through; no schedule, no window gate), `Concurrency` (Triggered +
//!   Upgrading in the stage below the stage's `max_concurrency`, else the campaign's). Clusters
//!   are admitted in name order, so equal snapshots give equal plans.
//! - **Windows gate only the start.** A running upgrade is observed to its end whatever the
//!   schedule says.
//! - **Running** (Triggered/Upgrading): a reported failure → `Failed(Condition)`; the cluster
//!   shows the target (at or above it) and is ready — `ready == Some(true)`, control plane not
//!   `false`, topology not unreconciled, not rolling out, and `last_transition >= triggered_at`
//!   truncated to whole seconds (the provider acknowledged the change; a cluster that was
//!   Ready before and never transitioned stays Upgrading) → `Succeeded`;
//!   `now >= acknowledged_at + timeout` → `Failed(Timeout)` (the clock starts when the change was acknowledged, see
//!   [`timeout_from`]: a refused patch is not a start and never times out); else `Upgrading` when it shows the target, `Triggered` (the
//!   shell re-applies the same change) when not. Failure wins over readiness, readiness over
//!   the timeout (a late observation of a finished upgrade is not a failure).
//! - **Terminal** (Succeeded/Failed/Skipped) is kept from progress with its `finished_at` and
//!   recorded reason ([`FailReason::Recorded`], [`SkipReason::Recorded`]).
//! - **Failure policy.** Halt: once any cluster failed nothing new starts anywhere
//!   (`Halted`), running clusters are still observed. Continue: a failed cluster simply counts
//!   as finished for its stage.
//! - **Campaign state.** Finished when every cluster is terminal, or Halt stopped it with
//!   nothing running (outcome Failed if any cluster failed, else Succeeded; `finished_at` the
//!   latest cluster finish, `now` if no cluster has one); under Halt every cluster that never
//!   started is then `Halted`. Running when something was triggered
//!   (now or before). Otherwise Waiting when a campaign-wide gate holds (suspend, no target,
//!   start time, `after`; see [`Plan::reason`]) and Pending when clusters wait for their own
//!   gates. A campaign selecting nothing is Pending (clusters may appear later).
//! - **Time.** A waiting cluster's `until` is the instant at which time alone may change its
//!   decision, its reason included: start time, soak end, freeze end, the window's next opening
//!   or, when one comes first, a start or end of an applicable exclusion (the reason turns
//!   from "outside every window" to "excluded by …" and back), and for `Concurrency` the end of
//!   the open window (after it the reason becomes `Window`).
//!   `next_check` is the earliest of every `until`, every running cluster's timeout and every
//!   pending announcement: a shell that requeues at it never misses a change.
//! - **Announcements.** `expected_start` of a waiting cluster is the earliest start known from
//!   time gates alone (start time, `after` soak, stage soak, freeze end, then the schedule's next
//!   opening at or after that), `None` while an event is needed (suspend, no target, an
//!   unfinished stage or dependency, Halt, a full stage). `announce` is set when
//!   `announce_before` is set, the cluster was never announced, and `now >= expected_start -
//!   announce_before` — or when it starts now unannounced.

mod types;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod simulation;

pub use types::*;

use jiff::{SignedDuration, Timestamp};

use std::cell::RefCell;

use crate::schedule::{OccurrenceKind, Schedule, Verdict};
use crate::selector::ClusterLabels;
use crate::version::{UpgradeKind, Version};

/// `t + d`, saturating at the ends of time instead of failing.
fn add(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads a version place leniently: a tag (`v1.30.2`, `25.0.0`) or a shorter form (`1.30`).
pub fn parse_current(raw: &str) -> Option<Version> {
    let s = raw.trim();
    Version::parse(s).or_else(|| Version::parse_lenient(s))
}

/// Whether the provider acknowledged the change and the cluster is ready (see the module rules).
/// Without a recorded `triggered_at` (status written by something else) there is nothing to
/// compare with and readiness alone counts; such a cluster also has no timeout.
pub fn is_ready_since(observed: &Observed, triggered_at: Option<Timestamp>) -> bool {
    let settled = observed.ready == Some(true)
        && observed.control_plane_ready != Some(false)
        && observed.topology_reconciled != Some(false)
        && observed.rolling_out != Some(true);
    let acknowledged = match triggered_at {
        // Status times are whole seconds; a transition in the trigger's second counts.
        Some(t) => {
            let t = Timestamp::from_second(t.as_second()).unwrap_or(t);
            observed.last_transition.is_some_and(|lt| lt >= t)
        }
        None => true,
    };
    settled && acknowledged
}

/// What pass one knows about a cluster.
struct Entry<'c, 'a> {
    input: &'c ClusterInput<'a>,
    stage: Option<usize>,
    current: Option<Version>,
    /// `None`: never touched and not skipped, decided by the gates in pass two.
    step: Option<Step>,
    /// When the step finished, for stage soak and the campaign's `finished_at`.
    finished: Option<Timestamp>,
}

fn recorded(p: &Progress) -> Option<&str> {
    p.reason.as_deref().filter(|r| !r.trim().is_empty())
}

/// Pass one: everything that does not depend on other clusters.
fn observe(
    c: &Campaign,
    input: &ClusterInput<'_>,
    current: Option<&Version>,
    stage: Option<usize>,
    now: Timestamp,
) -> (Option<Step>, Option<Timestamp>) {
    let progress = input.progress.as_ref();
    match progress.map(|p| (p, p.state)) {
        Some((p, ClusterPhase::Succeeded)) => {
            let at = p.finished_at.unwrap_or(now);
            (Some(Step::Succeeded { at }), Some(at))
        }
        Some((p, ClusterPhase::Failed)) => {
            let at = p.finished_at.unwrap_or(now);
            let reason = FailReason::Recorded(recorded(p).unwrap_or("failed").to_owned());
            (Some(Step::Failed { reason, at }), Some(at))
        }
        Some((p, ClusterPhase::Skipped)) => {
            let reason = SkipReason::Recorded(recorded(p).unwrap_or("skipped").to_owned());
            (Some(Step::Skipped { reason }), p.finished_at)
        }
        Some((p, ClusterPhase::Triggered | ClusterPhase::Upgrading)) => {
            let triggered_at = p.triggered_at;
            let shows_target = shows_target(c, p, current);
            let step = if let Some(f) = &input.observed.failure {
                Step::Failed {
                    reason: FailReason::Condition(f.clone()),
                    at: now,
                }
            } else if shows_target && is_ready_since(&input.observed, triggered_at) {
                Step::Succeeded { at: now }
            } else if timeout_from(p, shows_target).is_some_and(|t| now >= add(t, c.timeout)) {
                Step::Failed {
                    reason: FailReason::Timeout { after: c.timeout },
                    at: now,
                }
            } else if shows_target {
                Step::Upgrading
            } else {
                Step::Triggered
            };
            let finished = step.finished_at();
            (Some(step), finished)
        }
        // Halted is recorded only under a Finished campaign; planned again (a shell that
        // re-plans one anyway), it is decided afresh and halts again.
        Some((_, ClusterPhase::Waiting | ClusterPhase::Halted)) | None => {
            let skip = |reason| (Some(Step::Skipped { reason }), None);
            if !c.stages.is_empty() && stage.is_none() {
                return skip(SkipReason::NotInAnyStage);
            }
            if let Some(release) = &c.provider
                && input.provider.as_ref() != Some(release)
            {
                return skip(SkipReason::OtherProvider {
                    cluster: input.provider.clone(),
                    release: release.clone(),
                });
            }
            // Another active campaign has it: whatever its version shows now may be that
            // campaign's change in flight, so nothing is concluded from it here.
            if let Some(upgrade) = &input.elsewhere.held_by {
                let reason = WaitReason::Overlap {
                    upgrade: upgrade.clone(),
                };
                return (
                    Some(Step::Waiting {
                        reason,
                        until: None,
                    }),
                    None,
                );
            }
            let Some(cur) = current else {
                return skip(SkipReason::NotAVersion {
                    current: input.current.clone(),
                });
            };
            if let Some(t) = &c.target
                && cur >= t
            {
                let current = input.current.clone().unwrap_or_default();
                if let Some(why) = not_healthy_at(input, cur) {
                    let reason = FailReason::AtTargetNotHealthy { current, why };
                    return (Some(Step::Failed { reason, at: now }), Some(now));
                }
                return skip(SkipReason::AlreadyAtTarget { current });
            }
            (None, None)
        }
    }
}

/// Whether a running cluster shows the target (at or above it).
fn shows_target(c: &Campaign, p: &Progress, current: Option<&Version>) -> bool {
    match (&c.target, current) {
        (Some(t), Some(v)) => v >= t,
        // Without a resolved target only the recorded state can say.
        (None, _) => p.state == ClusterPhase::Upgrading,
        (Some(_), None) => false,
    }
}

/// When a running cluster's timeout starts: the acknowledged change. An entry without
/// `acknowledged_at` (recorded by an older shell, or a change whose acknowledgement was not
/// recorded before a restart) counts from `triggered_at` once the cluster shows the target —
/// the change was evidently made; while it does not, the change is not made (refused, or not
/// tried yet) and no timeout runs: a failed change is not a start.
pub fn timeout_from(p: &Progress, shows_target: bool) -> Option<Timestamp> {
    p.acknowledged_at
        .or(if shows_target { p.triggered_at } else { None })
}

/// Why a never-touched cluster at (or above) the target is not "already there": it reports a
/// failure, or another campaign's upgrade to this very version failed and the cluster is not
/// ready (once it is ready there, someone fixed it and it is at the target).
fn not_healthy_at(input: &ClusterInput<'_>, current: &Version) -> Option<String> {
    if let Some(f) = &input.observed.failure {
        return Some(format!("the cluster reports failure: {f}"));
    }
    if input.observed.ready == Some(true) {
        return None;
    }
    let (upgrade, to) = input.elsewhere.failed_in.as_ref()?;
    let same = to
        .as_deref()
        .is_none_or(|to| parse_current(to).is_some_and(|v| v == *current));
    same.then(|| format!("ClusterUpgrade {upgrade} recorded its upgrade to this version as Failed"))
}

/// What pass two knows about one stage.
#[derive(Default, Clone)]
struct StageInfo {
    all_terminal: bool,
    last_finished: Option<Timestamp>,
    running: usize,
}

/// The gates that hold for the whole campaign, with their `until`.
fn campaign_gate(c: &Campaign, now: Timestamp) -> Option<(WaitReason, Option<Timestamp>)> {
    if c.suspended {
        return Some((WaitReason::Suspended, None));
    }
    if c.target.is_none() {
        let why = c.no_target.clone();
        return Some((WaitReason::NoTarget { why }, None));
    }
    if let Some(at) = c.start_time
        && now < at
    {
        return Some((WaitReason::StartTime { at }, Some(at)));
    }
    for dep in &c.after {
        let wait = |soak_until, failed| WaitReason::After {
            upgrade: dep.name.clone(),
            soak_until,
            failed,
        };
        match dep.finished {
            None => return Some((wait(None, false), None)),
            Some((Outcome::Failed, _)) => return Some((wait(None, true), None)),
            Some((Outcome::Succeeded, at)) => {
                let end = add(at, dep.soak.unwrap_or(SignedDuration::ZERO));
                if now < end {
                    return Some((wait(Some(end), false), Some(end)));
                }
            }
        }
    }
    None
}

/// Verdicts already computed in this call: clusters share a few schedules, and a fleet of
/// hundreds would otherwise expand the same recurrences hundreds of times per plan.
type VerdictMemo = RefCell<Vec<(*const Schedule, UpgradeKind, Timestamp, Verdict)>>;

struct Ctx<'x> {
    c: &'x Campaign,
    stages: &'x [StageInfo],
    halted_by: Option<&'x str>,
    now: Timestamp,
    memo: VerdictMemo,
    /// When the reason of a closed schedule next changes, per (schedule, kind), at `now`.
    reason_memo: RefCell<Vec<(*const Schedule, UpgradeKind, Option<Timestamp>)>>,
}

impl Ctx<'_> {
    fn check(&self, schedule: &Schedule, kind: UpgradeKind, at: Timestamp) -> Verdict {
        let key = std::ptr::from_ref(schedule);
        if let Some((.., v)) = self
            .memo
            .borrow()
            .iter()
            .find(|(p, k, t, _)| *p == key && *k == kind && *t == at)
        {
            return v.clone();
        }
        let v = schedule.check(at, kind);
        self.memo.borrow_mut().push((key, kind, at, v.clone()));
        v
    }

    fn stage_name(&self, i: usize) -> String {
        self.c
            .stages
            .get(i)
            .map_or_else(|| "default".to_owned(), |s| s.name.clone())
    }

    fn stage_soak(&self, i: usize) -> SignedDuration {
        self.c
            .stages
            .get(i)
            .and_then(|s| s.soak)
            .unwrap_or(SignedDuration::ZERO)
    }

    /// When time alone next changes a closed verdict of `schedule` for `kind` at `now`: the
    /// next opening, the freeze's end, or any boundary of an applicable exclusion before the
    /// opening (the reason turns from "outside every window" to "excluded by …" and back).
    fn closed_until(
        &self,
        schedule: &Schedule,
        kind: UpgradeKind,
        next_open: Option<Timestamp>,
    ) -> Option<Timestamp> {
        let key = std::ptr::from_ref(schedule);
        if let Some((.., t)) = self
            .reason_memo
            .borrow()
            .iter()
            .find(|(p, k, _)| *p == key && *k == kind)
        {
            return *t;
        }
        let now = self.now;
        // Without an opening in the horizon, look a year ahead: a requeue within a year is
        // plenty for a schedule that never opens.
        let to = next_open.unwrap_or_else(|| add(now, SignedDuration::from_hours(24 * 366)));
        let mut t = next_open;
        if let Some(f) = schedule.freeze_until().filter(|f| *f > now) {
            t = earliest(t, Some(f));
        }
        for o in schedule.occurrences_between(now, to, kind) {
            if matches!(o.kind, OccurrenceKind::Exclusion(_)) {
                for b in [o.start, o.end] {
                    if b > now {
                        t = earliest(t, Some(b));
                    }
                }
            }
        }
        self.reason_memo.borrow_mut().push((key, kind, t));
        t
    }

    /// The stage gate for a cluster of stage `s`: an earlier stage unfinished (`Err`), or the
    /// latest soak end among earlier stages (with the stage it belongs to).
    fn stage_gate(&self, s: usize) -> Result<Option<(usize, Timestamp)>, usize> {
        if let Some(j) = (0..s).find(|&j| !self.stages[j].all_terminal) {
            return Err(j);
        }
        Ok((0..s)
            .filter_map(|j| {
                let f = self.stages[j].last_finished?;
                Some((j, add(f, self.stage_soak(j))))
            })
            .max_by_key(|&(_, end)| end))
    }

    fn limit(&self, s: usize) -> Option<u32> {
        self.c
            .stages
            .get(s)
            .and_then(|st| st.max_concurrency)
            .or(self.c.max_concurrency)
    }

    /// The gates of one never-touched cluster, after the campaign-wide ones.
    fn cluster_gate(
        &self,
        e: &Entry<'_, '_>,
        kind: UpgradeKind,
        running: usize,
    ) -> Option<(WaitReason, Option<Timestamp>)> {
        let now = self.now;
        let s = e.stage.unwrap_or(0);
        match self.stage_gate(s) {
            Err(j) => {
                let stage = self.stage_name(j);
                return Some((
                    WaitReason::Stage {
                        stage,
                        soak_until: None,
                    },
                    None,
                ));
            }
            Ok(Some((j, end))) if now < end => {
                let stage = self.stage_name(j);
                return Some((
                    WaitReason::Stage {
                        stage,
                        soak_until: Some(end),
                    },
                    Some(end),
                ));
            }
            Ok(_) => {}
        }
        if let Some(failed) = self.halted_by {
            let failed = failed.to_owned();
            return Some((WaitReason::Halted { failed }, None));
        }
        if let Some((until, reason)) = &e.input.freeze
            && now < *until
        {
            let reason = reason.clone();
            let until = *until;
            return Some((WaitReason::Frozen { until, reason }, Some(until)));
        }
        let mut window_end = None;
        if let Some((name, schedule)) = e.input.schedule {
            match self.check(schedule, kind, now) {
                Verdict::Closed { reason, next_open } => {
                    let until = self.closed_until(schedule, kind, next_open);
                    let schedule = name.to_owned();
                    return Some((
                        WaitReason::Window {
                            schedule,
                            reason,
                            next_open,
                        },
                        until,
                    ));
                }
                Verdict::Open { until, .. } => window_end = until,
            }
        }
        if let Some(limit) = self.limit(s)
            && running >= limit as usize
        {
            return Some((WaitReason::Concurrency { limit, running }, window_end));
        }
        None
    }

    /// The earliest start known from time gates alone (see the module rules).
    fn expected_start(&self, e: &Entry<'_, '_>, kind: UpgradeKind) -> Option<Timestamp> {
        let c = self.c;
        if c.suspended || c.target.is_none() || self.halted_by.is_some() {
            return None;
        }
        let mut t = self.now;
        if let Some(st) = c.start_time {
            t = t.max(st);
        }
        for dep in &c.after {
            match dep.finished {
                Some((Outcome::Succeeded, at)) => {
                    t = t.max(add(at, dep.soak.unwrap_or(SignedDuration::ZERO)));
                }
                _ => return None,
            }
        }
        match self.stage_gate(e.stage.unwrap_or(0)) {
            Err(_) => return None,
            Ok(Some((_, end))) => t = t.max(end),
            Ok(None) => {}
        }
        if let Some((until, _)) = &e.input.freeze {
            t = t.max(*until);
        }
        if let Some((_, schedule)) = e.input.schedule {
            match self.check(schedule, kind, t) {
                Verdict::Open { .. } => {}
                Verdict::Closed {
                    next_open: Some(n), ..
                } => t = n,
                Verdict::Closed {
                    next_open: None, ..
                } => return None,
            }
        }
        Some(t)
    }
}

/// Decides every cluster's next step at `now`. See the module documentation for the rules.
pub fn plan(c: &Campaign, clusters: &[ClusterInput<'_>], now: Timestamp) -> Plan {
    let mut order: Vec<&ClusterInput<'_>> = clusters.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));

    // Pass one: selection, stage, observation of running and terminal clusters, skips.
    let mut entries: Vec<Entry<'_, '_>> = Vec::with_capacity(order.len());
    for input in order {
        let who = ClusterLabels {
            name: &input.name,
            labels: &input.labels,
        };
        let touched = input
            .progress
            .as_ref()
            .is_some_and(|p| p.state != ClusterPhase::Waiting);
        if !touched && !c.matchers.matches(who) {
            continue;
        }
        let stage = if c.stages.is_empty() {
            Some(0)
        } else {
            c.stages.iter().position(|s| s.matchers.matches(who))
        };
        let current = input.current.as_deref().and_then(parse_current);
        let (step, finished) = observe(c, input, current.as_ref(), stage, now);
        entries.push(Entry {
            input,
            stage,
            current,
            step,
            finished,
        });
    }

    // Stage summaries and the failure that halts the campaign.
    let mut stages = vec![
        StageInfo {
            all_terminal: true,
            ..StageInfo::default()
        };
        c.stages.len().max(1)
    ];
    for e in &entries {
        let Some(s) = e.stage else { continue };
        let info = &mut stages[s];
        let phase = e.step.as_ref().map(Step::phase);
        info.all_terminal &= phase.is_some_and(ClusterPhase::is_terminal);
        info.running += usize::from(phase.is_some_and(ClusterPhase::is_running));
        info.last_finished = info.last_finished.max(e.finished);
    }
    let halted_by = match c.failure_policy {
        FailurePolicy::Halt => entries
            .iter()
            .find(|e| matches!(e.step, Some(Step::Failed { .. })))
            .map(|e| e.input.name.as_str()),
        FailurePolicy::Continue => None,
    };
    let gate = campaign_gate(c, now);
    let ctx = Ctx {
        c,
        stages: &stages,
        halted_by,
        now,
        memo: RefCell::default(),
        reason_memo: RefCell::default(),
    };

    // Pass two: the gates of never-touched clusters, admitted in name order.
    let mut running: Vec<usize> = stages.iter().map(|s| s.running).collect();
    let mut next_check: Option<Timestamp> = None;
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        let progress = e.input.progress.as_ref();
        let announced = progress.is_some_and(|p| p.announced_at.is_some());
        let mut expected_start = None;
        let mut announce = false;
        // A campaign-wide gate is the reason before an overlap: the whole campaign waits.
        let decided = e.step.as_ref().filter(|s| {
            gate.is_none()
                || !matches!(
                    s,
                    Step::Waiting {
                        reason: WaitReason::Overlap { .. },
                        ..
                    }
                )
        });
        let step = if let Some(step) = decided {
            if step.phase().is_running()
                && let Some(p) = progress
                && let Some(t) = timeout_from(p, shows_target(c, p, e.current.as_ref()))
            {
                let deadline = add(t, c.timeout);
                if deadline > now {
                    next_check = earliest(next_check, Some(deadline));
                }
            }
            step.clone()
        } else {
            // Never touched, not skipped: a version below a resolved target, or no target.
            let kind = match (&e.current, &c.target) {
                (Some(cur), Some(t)) => UpgradeKind::between(cur, t).unwrap_or(UpgradeKind::Patch),
                _ => UpgradeKind::Major,
            };
            let s = e.stage.unwrap_or(0);
            let decided = gate
                .clone()
                .or_else(|| ctx.cluster_gate(e, kind, running[s]));
            if let Some((reason, until)) = decided {
                next_check = earliest(next_check, until.filter(|u| *u > now));
                if !matches!(reason, WaitReason::Concurrency { .. }) {
                    expected_start = ctx.expected_start(e, kind);
                }
                if let (Some(before), Some(start), false) =
                    (c.announce_before, expected_start, announced)
                {
                    let at = add(start, -before);
                    announce = now >= at;
                    if !announce {
                        next_check = earliest(next_check, Some(at));
                    }
                }
                Step::Waiting { reason, until }
            } else {
                running[s] += 1;
                expected_start = Some(now);
                announce = c.announce_before.is_some() && !announced;
                Step::Trigger
            }
        };
        out.push(ClusterPlan {
            name: e.input.name.clone(),
            stage: if c.stages.is_empty() {
                None
            } else {
                e.stage.map(|s| ctx.stage_name(s))
            },
            from: progress
                .and_then(|p| p.from.clone())
                .or_else(|| e.input.current.clone()),
            step,
            expected_start,
            announce,
        });
    }

    // The campaign as a whole.
    let terminal = |p: &ClusterPlan| p.step.phase().is_terminal();
    let active = |p: &ClusterPlan| matches!(p.step, Step::Trigger) || p.step.phase().is_running();
    let started = |p: &ClusterPlan| {
        active(p) || matches!(p.step, Step::Succeeded { .. } | Step::Failed { .. })
    };
    let any_failed = out.iter().any(|p| matches!(p.step, Step::Failed { .. }));
    let finished = !out.is_empty()
        && (out.iter().all(terminal) || (halted_by.is_some() && !out.iter().any(active)));
    let (state, outcome, finished_at, reason) = if finished {
        let latest = entries
            .iter()
            .filter_map(|e| e.finished)
            .max()
            .unwrap_or(now);
        let outcome = if any_failed {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        };
        (CampaignState::Finished, Some(outcome), Some(latest), None)
    } else if out.iter().any(started) {
        (CampaignState::Running, None, None, None)
    } else if let Some((reason, _)) = gate.filter(|_| !out.is_empty()) {
        (CampaignState::Waiting, None, None, Some(reason))
    } else {
        (CampaignState::Pending, None, None, None)
    };
    if finished {
        // Nothing a shell does for a finished campaign depends on time any more.
        next_check = None;
        // What never started under a campaign that Halt stopped is Halted, not Waiting: the
        // campaign is over and will not start it.
        if let Some(failed) = halted_by {
            for cp in &mut out {
                if matches!(cp.step, Step::Waiting { .. }) {
                    cp.step = Step::Halted {
                        failed: failed.to_owned(),
                    };
                    cp.expected_start = None;
                    cp.announce = false;
                }
            }
        }
    }
    Plan {
        clusters: out,
        state,
        outcome,
        finished_at,
        next_check,
        reason,
    }
}

//! The values [`super::plan`] reads and returns, and their one-line descriptions.
//!
//! Kept apart from the decision code so that the shells (controller, CLI) can read the whole
//! vocabulary of a rollout in one place. Every enum has a stable `as_str`/`name` because the
//! names become status fields, Event reasons and metric labels; every reason has a one-line
//! `Display` (UTC) and a `describe(tz)` for the schedule's own time zone, worded with
//! [`crate::describe`] so a rollout reads like a schedule verdict.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use crate::describe;
use crate::schedule::{ClosedReason, Schedule};
use crate::selector::Matchers;
use crate::version::Version;

/// What happens to the rest of a campaign when one cluster fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Nothing new starts anywhere in the campaign once a cluster failed.
    #[default]
    Halt,
    /// Keep going; a failed cluster counts as finished for its stage.
    Continue,
}

/// One `ClusterUpgrade`, converted at the boundary.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    /// `None`: `releaseRef` not resolved yet, every cluster waits ([`WaitReason::NoTarget`]).
    pub target: Option<Version>,
    /// Why there is no target (a Release that is missing or refused), shown with
    /// [`WaitReason::NoTarget`].
    pub no_target: Option<String>,
    /// The provider the target is for (a Giant Swarm Release `aws-29.5.0` is for `aws`): a
    /// cluster of another provider, or of none known, is skipped ([`SkipReason::OtherProvider`]).
    pub provider: Option<String>,
    pub start_time: Option<Timestamp>,
    /// Approval gate: nothing new starts; running clusters are still observed.
    pub suspended: bool,
    pub matchers: Matchers,
    /// Empty: one implicit stage holding every selected cluster.
    pub stages: Vec<StageSpec>,
    /// Default for stages without their own; `None` = unlimited.
    pub max_concurrency: Option<u32>,
    /// Per cluster, from the acknowledged change (`acknowledged_at`, see [`Progress`]).
    pub timeout: SignedDuration,
    pub failure_policy: FailurePolicy,
    pub after: Vec<AfterDep>,
    pub announce_before: Option<SignedDuration>,
}

/// One stage of `strategy.stages`.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub matchers: Matchers,
    pub max_concurrency: Option<u32>,
    /// Wait this long after THIS stage finished before the next one starts.
    pub soak: Option<SignedDuration>,
}

/// One `after` entry: another campaign that must have succeeded (and soaked) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterDep {
    pub name: String,
    pub soak: Option<SignedDuration>,
    /// `None`: not finished, or not found.
    pub finished: Option<(Outcome, Timestamp)>,
}

/// What the core sees of one cluster.
#[derive(Debug, Clone)]
pub struct ClusterInput<'a> {
    pub name: String,
    /// Borrowed from the shell's cluster where it can be: a campaign over 20,000 clusters
    /// would otherwise hold every cluster's labels twice while it plans.
    pub labels: Cow<'a, BTreeMap<String, String>>,
    /// The version place (label or topology version), raw.
    pub current: Option<String>,
    /// The cluster's provider (`aws`, `azure`, …), when known.
    pub provider: Option<String>,
    /// From the cluster's `upkeep.dev/freeze-until` / `upkeep.dev/freeze-reason` annotations.
    pub freeze: Option<(Timestamp, Option<String>)>,
    /// The schedule that governs this cluster (name, schedule), if any.
    pub schedule: Option<(&'a str, &'a Schedule)>,
    pub observed: Observed,
    /// What status recorded last time (`None` = never touched).
    pub progress: Option<Progress>,
    /// What the other campaigns of the namespace say about this cluster.
    pub elsewhere: Elsewhere,
}

/// What other campaigns say about one cluster, worked out by the shell from their specs and
/// status (`upkeep_api::cluster_upgrade::overlaps`) so that controller and CLI agree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elsewhere {
    /// Another active (not Finished) campaign has the cluster: one that runs it now, or an
    /// older one (creationTimestamp, then name) that selects it and is not done with it. This
    /// campaign does not start it ([`WaitReason::Overlap`]).
    pub held_by: Option<String>,
    /// Another campaign recorded this cluster's upgrade as Failed: (that campaign, the version
    /// it went to). A cluster at that version is not "already at the target".
    pub failed_in: Option<(String, Option<String>)>,
}

/// Cluster API readiness, converted from conditions at the boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `Ready` (v1beta1) or `Available` (v1beta2).
    pub ready: Option<bool>,
    pub control_plane_ready: Option<bool>,
    /// Only when the condition is present.
    pub topology_reconciled: Option<bool>,
    /// Only when the condition is present.
    pub rolling_out: Option<bool>,
    /// The latest `lastTransitionTime` of those conditions.
    pub last_transition: Option<Timestamp>,
    /// `failureReason`/`failureMessage`, or a condition False with severity Error.
    pub failure: Option<String>,
}

/// One cluster's entry in the campaign's status, as recorded last time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub state: ClusterPhase,
    /// When the trigger was recorded (before the change was made).
    pub triggered_at: Option<Timestamp>,
    /// When the change was acknowledged (the patch answered 2xx, the commit was pushed): the
    /// timeout runs from here. `None` while the change is refused or not yet made; entries
    /// recorded before this field existed fall back to `triggered_at` once the cluster shows
    /// the target.
    pub acknowledged_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub from: Option<String>,
    pub reason: Option<String>,
    pub announced_at: Option<Timestamp>,
}

/// A cluster's recorded state (`status.clusters[].state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClusterPhase {
    Waiting,
    Triggered,
    Upgrading,
    Succeeded,
    Failed,
    Skipped,
    /// Never started: failurePolicy Halt stopped the campaign, which is Finished.
    Halted,
}

impl ClusterPhase {
    pub const ALL: [ClusterPhase; 7] = [
        ClusterPhase::Waiting,
        ClusterPhase::Triggered,
        ClusterPhase::Upgrading,
        ClusterPhase::Succeeded,
        ClusterPhase::Failed,
        ClusterPhase::Skipped,
        ClusterPhase::Halted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClusterPhase::Waiting => "Waiting",
            ClusterPhase::Triggered => "Triggered",
            ClusterPhase::Upgrading => "Upgrading",
            ClusterPhase::Succeeded => "Succeeded",
            ClusterPhase::Failed => "Failed",
            ClusterPhase::Skipped => "Skipped",
            ClusterPhase::Halted => "Halted",
        }
    }

    /// Reads a recorded state; `None` for anything else (treat as never touched).
    pub fn parse(s: &str) -> Option<ClusterPhase> {
        ClusterPhase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Succeeded, Failed, Skipped and Halted never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ClusterPhase::Succeeded
                | ClusterPhase::Failed
                | ClusterPhase::Skipped
                | ClusterPhase::Halted
        )
    }

    /// Triggered or Upgrading: the change was made (or is being made) and is observed.
    pub fn is_running(self) -> bool {
        matches!(self, ClusterPhase::Triggered | ClusterPhase::Upgrading)
    }
}

impl fmt::Display for ClusterPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the shell does with one cluster now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Not started; `until` is when time alone may change the decision.
    Waiting {
        reason: WaitReason,
        until: Option<Timestamp>,
    },
    /// Start now: record `Triggered` (`triggered_at = now`) in status FIRST, then act.
    Trigger,
    /// Recorded, the cluster does not show the target yet: (re)apply the same change.
    Triggered,
    /// The cluster shows the target but has not become ready since the trigger.
    Upgrading,
    Succeeded {
        at: Timestamp,
    },
    Failed {
        reason: FailReason,
        at: Timestamp,
    },
    Skipped {
        reason: SkipReason,
    },
    /// Never started because failurePolicy Halt stopped the campaign (`failed` failed); only
    /// under a Finished campaign.
    Halted {
        failed: String,
    },
}

impl Step {
    /// The state to record for this step (`Trigger` records `Triggered`).
    pub fn phase(&self) -> ClusterPhase {
        match self {
            Step::Waiting { .. } => ClusterPhase::Waiting,
            Step::Trigger | Step::Triggered => ClusterPhase::Triggered,
            Step::Upgrading => ClusterPhase::Upgrading,
            Step::Succeeded { .. } => ClusterPhase::Succeeded,
            Step::Failed { .. } => ClusterPhase::Failed,
            Step::Skipped { .. } => ClusterPhase::Skipped,
            Step::Halted { .. } => ClusterPhase::Halted,
        }
    }

    /// The one-line reason to record (UTC), if the step has one.
    pub fn reason(&self) -> Option<String> {
        self.describe_reason(&TimeZone::UTC)
    }

    /// The one-line reason with times in `tz`, if the step has one.
    pub fn describe_reason(&self, tz: &TimeZone) -> Option<String> {
        match self {
            Step::Waiting { reason, .. } => Some(reason.describe(tz)),
            Step::Failed { reason, .. } => Some(reason.to_string()),
            Step::Skipped { reason } => Some(reason.to_string()),
            Step::Halted { failed } => Some(format!(
                "not started: the campaign halted after cluster {failed} failed (failurePolicy Halt)"
            )),
            Step::Trigger | Step::Triggered | Step::Upgrading | Step::Succeeded { .. } => None,
        }
    }

    /// When the cluster finished (Succeeded/Failed), if it did.
    pub fn finished_at(&self) -> Option<Timestamp> {
        match self {
            Step::Succeeded { at } | Step::Failed { at, .. } => Some(*at),
            _ => None,
        }
    }
}

/// Why a cluster that has not started yet does not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// `spec.suspend`: the approval gate.
    Suspended,
    /// `releaseRef` not resolved yet; `why` says why, when the shell knows (a Release that
    /// is missing, deprecated or work in progress).
    NoTarget { why: Option<String> },
    /// Before `spec.startTime`.
    StartTime { at: Timestamp },
    /// The governing schedule does not allow this upgrade kind now (its freeze included).
    Window {
        schedule: String,
        reason: ClosedReason,
        next_open: Option<Timestamp>,
    },
    /// The cluster's own freeze annotation.
    Frozen {
        until: Timestamp,
        reason: Option<String>,
    },
    /// An earlier stage is not finished (`soak_until: None`) or is soaking.
    Stage {
        stage: String,
        soak_until: Option<Timestamp>,
    },
    /// An `after` campaign has not succeeded, failed (`failed`) or is soaking.
    After {
        upgrade: String,
        soak_until: Option<Timestamp>,
        failed: bool,
    },
    /// The stage already runs `limit` clusters.
    Concurrency { limit: u32, running: usize },
    /// failurePolicy Halt: `failed` failed, nothing new starts.
    Halted { failed: String },
    /// Another active campaign has the cluster (see [`Elsewhere::held_by`]).
    Overlap { upgrade: String },
}

impl WaitReason {
    /// The variant name: a stable label for metrics (`upkeep_clusters_waiting{reason}`).
    pub fn name(&self) -> &'static str {
        match self {
            WaitReason::Suspended => "Suspended",
            WaitReason::NoTarget { .. } => "NoTarget",
            WaitReason::StartTime { .. } => "StartTime",
            WaitReason::Window { .. } => "Window",
            WaitReason::Frozen { .. } => "Frozen",
            WaitReason::Stage { .. } => "Stage",
            WaitReason::After { .. } => "After",
            WaitReason::Concurrency { .. } => "Concurrency",
            WaitReason::Halted { .. } => "Halted",
            WaitReason::Overlap { .. } => "Overlap",
        }
    }

    /// Whether the reason holds back the whole campaign rather than one cluster (suspend,
    /// no target, start time, an `after` dependency).
    pub fn is_campaign_wide(&self) -> bool {
        matches!(
            self,
            WaitReason::Suspended
                | WaitReason::NoTarget { .. }
                | WaitReason::StartTime { .. }
                | WaitReason::After { .. }
        )
    }

    /// One line with times in `tz`, e.g.
    /// `window closed (outside every maintenance window, schedule prod-eu) until Tue 2026-12-01 02:00 CET`.
    pub fn describe(&self, tz: &TimeZone) -> String {
        match self {
            WaitReason::Suspended => "suspended: waiting for approval".to_owned(),
            WaitReason::NoTarget { why: None } => "target release not resolved yet".to_owned(),
            WaitReason::NoTarget { why: Some(why) } => {
                format!("no target release: {}", one_line(why))
            }
            WaitReason::StartTime { at } => {
                format!("not before the start time {}", describe::local(*at, tz))
            }
            WaitReason::Window {
                schedule,
                reason,
                next_open,
            } => {
                let why = describe::closed_reason(reason, tz);
                match next_open {
                    Some(t) => format!(
                        "window closed ({why}, schedule {schedule}) until {}",
                        describe::local(*t, tz)
                    ),
                    None => format!(
                        "window closed ({why}, schedule {schedule}), no opening within {} days",
                        crate::schedule::HORIZON_DAYS
                    ),
                }
            }
            WaitReason::Frozen { until, reason } => format!(
                "cluster {}",
                describe::closed_reason(
                    &ClosedReason::Frozen {
                        until: *until,
                        reason: reason.clone(),
                    },
                    tz
                )
            ),
            WaitReason::Stage {
                stage,
                soak_until: None,
            } => format!("waiting for stage {stage} to finish"),
            WaitReason::Stage {
                stage,
                soak_until: Some(t),
            } => format!("stage {stage} soaking until {}", describe::local(*t, tz)),
            WaitReason::After {
                upgrade,
                failed: true,
                ..
            } => format!("after ClusterUpgrade {upgrade}, which failed"),
            WaitReason::After {
                upgrade,
                soak_until: Some(t),
                ..
            } => format!(
                "after ClusterUpgrade {upgrade}: soaking until {}",
                describe::local(*t, tz)
            ),
            WaitReason::After { upgrade, .. } => {
                format!("after ClusterUpgrade {upgrade}, which has not succeeded yet")
            }
            WaitReason::Concurrency { limit, running } => {
                format!("concurrency limit reached ({running} of {limit} running)")
            }
            WaitReason::Halted { failed } => {
                format!("halted: cluster {failed} failed (failurePolicy Halt)")
            }
            WaitReason::Overlap { upgrade } => format!(
                "overlap: ClusterUpgrade {upgrade} also selects this cluster and runs it first (the older active campaign wins)"
            ),
        }
    }
}

/// One line, times in UTC.
impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(&TimeZone::UTC))
    }
}

/// A duration in [`describe::span`]'s words (`2h`, `1d 4h`).
pub fn duration_words(d: SignedDuration) -> String {
    let t0 = Timestamp::UNIX_EPOCH;
    match t0.checked_add(d) {
        Ok(t1) => describe::span(t0, t1),
        Err(_) => format!("{}s", d.as_secs()),
    }
}

/// Why a cluster's upgrade failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    /// The cluster reports a failure (failureReason/Message or an Error condition).
    Condition(String),
    /// Not ready within the campaign's timeout after the trigger.
    Timeout { after: SignedDuration },
    /// A failure recorded earlier in status, kept verbatim.
    Recorded(String),
    /// Never touched by this campaign, at (or above) the target, but not a success: the
    /// cluster reports a failure, or another campaign's upgrade to this version failed.
    AtTargetNotHealthy { current: String, why: String },
}

impl FailReason {
    pub fn name(&self) -> &'static str {
        match self {
            FailReason::Condition(_) => "Condition",
            FailReason::Timeout { .. } => "Timeout",
            FailReason::Recorded(_) => "Recorded",
            FailReason::AtTargetNotHealthy { .. } => "AtTargetNotHealthy",
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::Condition(s) => write!(f, "cluster reports failure: {}", one_line(s)),
            FailReason::Timeout { after } => {
                write!(f, "not ready {} after the trigger", duration_words(*after))
            }
            FailReason::Recorded(s) => f.write_str(&one_line(s)),
            FailReason::AtTargetNotHealthy { current, why } => write!(
                f,
                "at {current} but not a success (not counted as already at the target): {}",
                one_line(why)
            ),
        }
    }
}

/// Why a selected cluster is not upgraded at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Already at (or above) the target.
    AlreadyAtTarget { current: String },
    /// The version place is missing (`None`) or not a version.
    NotAVersion { current: Option<String> },
    /// Stages are defined and none of them matches the cluster.
    NotInAnyStage,
    /// The target release is for `release`'s provider and the cluster is of another one
    /// (`cluster`), or of none known (`None`).
    OtherProvider {
        cluster: Option<String>,
        release: String,
    },
    /// A skip recorded earlier in status, kept verbatim.
    Recorded(String),
}

impl SkipReason {
    pub fn name(&self) -> &'static str {
        match self {
            SkipReason::AlreadyAtTarget { .. } => "AlreadyAtTarget",
            SkipReason::NotAVersion { .. } => "NotAVersion",
            SkipReason::NotInAnyStage => "NotInAnyStage",
            SkipReason::OtherProvider { .. } => "OtherProvider",
            SkipReason::Recorded(_) => "Recorded",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::AlreadyAtTarget { current } => {
                write!(f, "already at {current} (at or above the target)")
            }
            SkipReason::NotAVersion { current: None } => {
                f.write_str("no current version (version label or topology version missing)")
            }
            SkipReason::NotAVersion { current: Some(c) } => {
                write!(f, "current version {c:?} is not a version")
            }
            SkipReason::NotInAnyStage => f.write_str("matches no stage of the strategy"),
            SkipReason::OtherProvider {
                cluster: Some(c),
                release,
            } => write!(
                f,
                "the release is for provider {release}, the cluster's provider is {c}"
            ),
            SkipReason::OtherProvider {
                cluster: None,
                release,
            } => write!(
                f,
                "the release is for provider {release}, the cluster's provider is unknown (spec.infrastructureRef.kind)"
            ),
            SkipReason::Recorded(s) => f.write_str(&one_line(s)),
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One cluster's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPlan {
    pub name: String,
    /// The stage the cluster belongs to (`None`: no stages, or in none).
    pub stage: Option<String>,
    pub step: Step,
    /// The version the cluster is upgraded from (recorded, else current).
    pub from: Option<String>,
    /// For a waiting cluster: the earliest start known from time gates alone.
    pub expected_start: Option<Timestamp>,
    /// Announce the upgrade now (and record `announced_at`).
    pub announce: bool,
}

/// The campaign's state (`status.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignState {
    /// Nothing triggered yet; clusters wait for their own gates (windows, freezes, stages).
    Pending,
    /// Nothing triggered yet and the campaign as a whole is held (suspended, no target, start
    /// time, an `after` dependency): see [`Plan::reason`].
    Waiting,
    /// Something runs, or some cluster started and others still wait.
    Running,
    /// Every cluster is terminal, or failurePolicy Halt stopped it with nothing running (the
    /// clusters that never started are then [`Step::Halted`]). Final: a shell does not plan a
    /// Finished campaign again.
    Finished,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Pending => "Pending",
            CampaignState::Waiting => "Waiting",
            CampaignState::Running => "Running",
            CampaignState::Finished => "Finished",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignState> {
        [
            CampaignState::Pending,
            CampaignState::Waiting,
            CampaignState::Running,
            CampaignState::Finished,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a finished campaign ended (`status.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// No cluster failed.
    Succeeded,
    /// At least one cluster failed.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "Succeeded",
            Outcome::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "Succeeded" => Some(Outcome::Succeeded),
            "Failed" => Some(Outcome::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole decision for one campaign at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every selected cluster (and every cluster the campaign already touched), by name.
    pub clusters: Vec<ClusterPlan>,
    pub state: CampaignState,
    /// Set when `state` is Finished.
    pub outcome: Option<Outcome>,
    /// The latest cluster `finished_at`, when `state` is Finished.
    pub finished_at: Option<Timestamp>,
    /// The earliest instant at which time alone changes a decision: requeue then.
    pub next_check: Option<Timestamp>,
    /// Why the whole campaign waits, when `state` is Waiting.
    pub reason: Option<WaitReason>,
}

impl Plan {
    /// How many clusters are in each phase, as status messages and the CLI print it (`1
    /// Triggered, 2 Waiting`); `no cluster selected` when there is none.
    pub fn phase_counts(&self) -> String {
        let mut counts: std::collections::BTreeMap<&'static str, usize> =
            std::collections::BTreeMap::new();
        for cp in &self.clusters {
            *counts.entry(cp.step.phase().as_str()).or_default() += 1;
        }
        if counts.is_empty() {
            return "no cluster selected".to_owned();
        }
        counts
            .iter()
            .map(|(phase, n)| format!("{n} {phase}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

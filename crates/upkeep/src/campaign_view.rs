//! What `upkeep status`, `upkeep plan` and `quickstart` show of ClusterUpgrade campaigns: the
//! controller's own decision ([`upkeep_controller::cluster_upgrade::decide`], over the one
//! conversion in `upkeep_api::cluster_upgrade::inputs`) for each campaign over the
//! repository's clusters, as rows and tables. A repository holds no status: nothing counts as
//! started, and `after` upgrades count as not finished.
//!
//! With `--kubeconfig` the rows are what the controller recorded ([`recorded_row`]): the stage
//! of each cluster and of the campaign, a Stalled campaign's reason and message (an invalid
//! spec says which field and how to fix it), and as NEXT only what comes next — a running
//! cluster's timeout, a future start time — never a trigger or finish time that has passed.
//! Instants under an hour away are shown to the second ([`crate::render::instant`]).

use crate::Outcome;
use crate::fleet::ClusterFleet;
use crate::out::{out, outln};
use crate::render::{Table, instant};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use upkeep_api::cluster_upgrade::VersionSource;
use upkeep_api::release::{self, Release, Resolution};
use upkeep_api::{ClusterUpgrade, namespaced_name};
use upkeep_controller::cluster_upgrade::decide::{Decided, Decision, Snapshot, decide};
use upkeep_core::rollout::{ClusterInput, Plan, Step};

/// `--at`: a time, or now.
pub(crate) fn parse_at(at: Option<&str>) -> Result<Timestamp, Outcome> {
    match at {
        Some(s) => crate::timearg::parse(s, &TimeZone::UTC).map_err(|e| {
            crate::render::error_with_hint(&format!("--at: {e}"), None);
            Outcome::Invalid
        }),
        None => Ok(Timestamp::now()),
    }
}

/// One cluster of a campaign, as printed.
#[derive(Debug, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClusterRow {
    pub(crate) name: String,
    pub(crate) stage: Option<String>,
    pub(crate) state: String,
    pub(crate) reason: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    /// When time alone may change the decision (a waiting cluster), or the expected start.
    pub(crate) next: Option<Timestamp>,
    pub(crate) expected_start: Option<Timestamp>,
}

/// One campaign, as printed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CampaignRow {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) target: Option<String>,
    pub(crate) state: String,
    pub(crate) outcome: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) next_check: Option<Timestamp>,
    /// The stage running now or last (recorded by the controller; `None` from a repository).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stage: Option<String>,
    /// The campaign's progress as recorded, e.g. `3/10 succeeded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) progress: Option<String>,
    pub(crate) clusters: Vec<ClusterRow>,
}

/// What the repository holds for deciding about campaigns: its clusters and schedules.
pub(crate) fn snapshot(fleet: &ClusterFleet) -> Snapshot {
    Snapshot {
        clusters: fleet.objects(),
        schedules: fleet.schedules.clone(),
        release: None,
        finished: std::collections::HashMap::new(),
        others: Vec::new(),
        records: Vec::new(),
    }
}

/// Decides about `upgrade` as the controller does (the version in the release label unless the
/// spec says otherwise) and turns the decision into a row.
pub(crate) fn campaign_row(
    upgrade: &ClusterUpgrade,
    snapshot: &Snapshot,
    now: Timestamp,
) -> (CampaignRow, TimeZone) {
    row_of(
        upgrade,
        snapshot,
        decide(upgrade, snapshot, VersionSource::Label, now),
    )
}

/// A decision about `upgrade` (made over `snapshot`) as a row.
pub(crate) fn row_of(
    upgrade: &ClusterUpgrade,
    snapshot: &Snapshot,
    decision: Decision<'_>,
) -> (CampaignRow, TimeZone) {
    let (namespace, name) = namespaced_name(&upgrade.metadata);
    let not_planned = |state: &str, reason: String| CampaignRow {
        name: name.clone(),
        namespace: namespace.clone(),
        target: upgrade.target_text(snapshot.release.as_ref()),
        state: state.to_owned(),
        outcome: None,
        reason: Some(reason),
        next_check: None,
        stage: None,
        progress: None,
        clusters: Vec::new(),
    };
    match decision {
        Decision::Stalled { message, .. } => (not_planned("Stalled", message), TimeZone::UTC),
        Decision::NotReady { message, .. } => (not_planned("NotReady", message), TimeZone::UTC),
        Decision::Plan(decided) => planned_row(name, namespace, &decided),
    }
}

fn planned_row(name: String, namespace: String, decided: &Decided<'_>) -> (CampaignRow, TimeZone) {
    let (planned, inputs) = (&decided.plan, &decided.inputs.clusters);
    let tz = inputs
        .iter()
        .find_map(|i| i.schedule.map(|(_, s)| s.time_zone().clone()))
        .unwrap_or(TimeZone::UTC);
    let target = decided
        .inputs
        .campaign
        .target
        .as_ref()
        .map(ToString::to_string);
    let rows = cluster_rows(planned, inputs, target.as_deref(), &tz);
    let row = CampaignRow {
        name,
        namespace,
        target,
        state: planned.state.as_str().to_owned(),
        outcome: planned.outcome.map(|o| o.as_str().to_owned()),
        reason: planned.reason.as_ref().map(|r| r.describe(&tz)),
        next_check: planned.next_check,
        stage: None,
        progress: None,
        clusters: rows,
    };
    (row, tz)
}

/// Whether a row is a campaign that cannot be planned (an invalid spec, a missing schedule).
pub(crate) fn not_planned(row: &CampaignRow) -> bool {
    matches!(row.state.as_str(), "Stalled" | "NotReady")
}

/// Rows for a plan's clusters (reasons with times in `tz`).
pub(crate) fn cluster_rows(
    planned: &Plan,
    inputs: &[ClusterInput<'_>],
    target: Option<&str>,
    tz: &TimeZone,
) -> Vec<ClusterRow> {
    planned
        .clusters
        .iter()
        .map(|p| {
            let input = inputs.iter().find(|i| i.name == p.name);
            let tz = input
                .and_then(|i| i.schedule.map(|(_, s)| s.time_zone().clone()))
                .unwrap_or_else(|| tz.clone());
            let until = match &p.step {
                Step::Waiting { until, .. } => *until,
                _ => None,
            };
            ClusterRow {
                name: p.name.clone(),
                stage: p.stage.clone(),
                state: match &p.step {
                    Step::Trigger => "Trigger".to_owned(),
                    s => s.phase().as_str().to_owned(),
                },
                reason: p.step.describe_reason(&tz),
                from: p
                    .from
                    .clone()
                    .or_else(|| input.and_then(|i| i.current.clone())),
                to: target.map(str::to_owned),
                next: until,
                expected_start: p.expected_start,
            }
        })
        .collect()
}

/// The cluster table (`CLUSTER STAGE STATE CURRENT → TARGET REASON NEXT`).
pub(crate) fn rows_table(rows: &[ClusterRow], now: Timestamp, tz: &TimeZone) -> String {
    let mut t = Table::new(&[
        "CLUSTER",
        "STAGE",
        "STATE",
        "CURRENT → TARGET",
        "REASON",
        "NEXT",
    ]);
    for r in rows {
        // Only what comes next: a time that has passed is history, not a next step.
        let next = r.expected_start.or(r.next).filter(|t| *t > now);
        t.row(vec![
            r.name.clone(),
            r.stage.clone().unwrap_or_else(|| "-".into()),
            r.state.clone(),
            format!(
                "{} → {}",
                r.from.as_deref().unwrap_or("?"),
                r.to.as_deref().unwrap_or("?")
            ),
            r.reason.clone().unwrap_or_else(|| match r.state.as_str() {
                "Trigger" => "may start now".to_owned(),
                _ => "-".to_owned(),
            }),
            match next {
                _ if r.state == "Trigger" => "now".to_owned(),
                Some(t) => instant(t, now, tz),
                None => "-".to_owned(),
            },
        ]);
    }
    t.render("  ")
}

/// What a `releaseRef` naming a Giant Swarm Release resolves to in a repository: the Release
/// manifest of that name there (`kind: Release`, `apiVersion: release.giantswarm.io/*`), by its
/// `spec.state`; none is [`Resolution::Missing`] with a hint. `None` when `u` has no such
/// `releaseRef` (a VersionPolicy's is resolved by the caller).
pub(crate) fn repo_release(
    u: &ClusterUpgrade,
    releases: &[(std::path::PathBuf, Release)],
) -> Option<Resolution> {
    let name = u.spec.release_ref.as_ref()?.release_name()?;
    Some(match releases.iter().find(|(_, r)| r.name == name.trim()) {
        Some((_, r)) => release::resolve(name, Some(r)),
        None => Resolution::Missing(format!(
            "Release {name} is not in the repository (hint: add its manifest, e.g. the output of `kubectl get releases.release.giantswarm.io {name} -o yaml`)"
        )),
    })
}

/// Every ClusterUpgrade of the fleet (or the one named), decided at `now`. `release` resolves
/// a `releaseRef` (`upkeep plan` has the VersionPolicies decided; `None`: not resolved).
pub(crate) fn campaigns(
    fleet: &ClusterFleet,
    only: Option<&str>,
    release: &dyn Fn(&ClusterUpgrade) -> Option<Resolution>,
    now: Timestamp,
) -> Vec<(CampaignRow, TimeZone)> {
    let mut snapshot = snapshot(fleet);
    let mut out = Vec::new();
    for u in &fleet.upgrades {
        let (_, name) = namespaced_name(&u.metadata);
        if only.is_some_and(|o| o != name) {
            continue;
        }
        snapshot.release = release(u);
        out.push(campaign_row(u, &snapshot, now));
    }
    out
}

/// The campaign a ClusterUpgradePolicy would create now, as quickstart shows it.
#[derive(Debug)]
pub(crate) struct PolicyCampaign {
    /// The ClusterUpgradePolicy, `namespace/name`.
    pub(crate) policy: String,
    /// Its VersionPolicy (the release's source).
    pub(crate) release_policy: String,
    /// The release the VersionPolicy allows now.
    pub(crate) target: Option<String>,
    pub(crate) stages: Vec<String>,
    /// The ClusterUpgrade it would create for the release allowed now, decided as the
    /// controller decides it.
    pub(crate) row: CampaignRow,
    pub(crate) tz: TimeZone,
}

/// For each ClusterUpgradePolicy of a scanned fleet, the campaign it would create for the
/// release its VersionPolicy allows at `now` (quickstart's cluster sections; `quickstart
/// --serve` shows the same).
pub(crate) fn policy_campaigns(fleet: &crate::fleet::Fleet, now: Timestamp) -> Vec<PolicyCampaign> {
    let snapshot = Snapshot {
        clusters: fleet.clusters.clone(),
        schedules: fleet.schedules.clone(),
        ..Default::default()
    };
    fleet
        .cluster_policies
        .iter()
        .map(|p| {
            let (ns, name) = namespaced_name(&p.metadata);
            let target = fleet
                .policies
                .get(&(ns.clone(), p.spec.policy_ref.name.clone()))
                .and_then(|d| d.allow.selected.clone());
            let (row, tz) = campaign_row(&p.upgrade(target.as_deref()), &snapshot, now);
            PolicyCampaign {
                policy: format!("{ns}/{name}"),
                release_policy: p.spec.policy_ref.name.clone(),
                target,
                stages: p.spec.stages.iter().map(|s| s.name.clone()).collect(),
                row,
                tz,
            }
        })
        .collect()
}

/// Prints campaigns as text.
pub(crate) fn print_campaigns(list: &[(CampaignRow, TimeZone)], now: Timestamp) {
    for (c, tz) in list {
        outln!(
            "ClusterUpgrade {}/{} → {}: {}{}{}{}",
            c.namespace,
            c.name,
            c.target.as_deref().unwrap_or("(no target yet)"),
            c.state,
            c.outcome
                .as_ref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default(),
            c.progress
                .as_ref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default(),
            c.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
        );
        if let Some(s) = &c.stage {
            outln!("  stage: {s}");
        }
        if let Some(n) = c.next_check.filter(|n| *n > now) {
            outln!("  next check: {}", instant(n, now, tz));
        }
        if c.clusters.is_empty() {
            // A campaign that cannot be planned has said why on its first line.
            if !not_planned(c) {
                outln!("  (no cluster selected)");
            }
        } else {
            out!("{}", rows_table(&c.clusters, now, tz));
        }
        outln!();
    }
}

/// A condition of `status` (as the API server returns it) by type, when its status is `True`
/// (`Stalled`) or `False` (`Ready`).
fn condition<'a>(
    status: &'a serde_json::Value,
    type_: &str,
    value: &str,
) -> Option<&'a serde_json::Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == value)
}

/// `reason: message` of a condition.
fn condition_text(c: &serde_json::Value) -> String {
    let (reason, message) = (c["reason"].as_str(), c["message"].as_str());
    match (
        reason.filter(|r| !r.is_empty()),
        message.filter(|m| !m.is_empty()),
    ) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(t), None) | (None, Some(t)) => t.to_owned(),
        (None, None) => "not ready".to_owned(),
    }
}

/// A string field of a status object (read leniently: a field the installed CRD or an older
/// controller does not write is simply absent).
fn text_at(v: &serde_json::Value, field: &str) -> Option<String> {
    v[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An RFC 3339 time field of a status object.
fn time_at(v: &serde_json::Value, field: &str) -> Option<Timestamp> {
    v[field].as_str().and_then(|s| s.parse().ok())
}

/// The row of a ClusterUpgrade as the controller recorded it: `status` is the object's status
/// as the API server returned it (JSON, so fields newer than this build's types — the
/// campaign's `stage`, `progress`, `reason`, a cluster's `acknowledgedAt` — are read when
/// present), at `now`.
///
/// - STATE is `Stalled` while the Stalled condition holds (an invalid spec: its reason and
///   message, naming the field and the hint, are the campaign's reason); else the recorded
///   state. A campaign that is not Ready says why (the Ready condition), else the recorded
///   reason.
/// - NEXT is never in the past: a triggered or upgrading cluster's timeout (from
///   `acknowledgedAt`, else `triggeredAt`), a waiting cluster's start time when the campaign
///   has one ahead; nothing for a finished cluster.
pub(crate) fn recorded_row(
    upgrade: &ClusterUpgrade,
    status: &serde_json::Value,
    now: Timestamp,
) -> CampaignRow {
    let (namespace, name) = namespaced_name(&upgrade.metadata);
    let future = |t: Option<Timestamp>| t.filter(|t| *t > now);
    let start = future(
        upgrade
            .spec
            .start_time
            .as_deref()
            .and_then(|t| t.trim().parse().ok()),
    );
    let timeout = upgrade
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.timeout.as_deref())
        .and_then(|t| upkeep_api::duration::parse_duration(t).ok())
        .unwrap_or(upkeep_api::cluster_upgrade::DEFAULT_TIMEOUT);
    let stalled = condition(status, "Stalled", "True");
    let finished = matches!(status["state"].as_str(), Some("Finished"));
    let clusters = status["clusters"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let state = text_at(c, "state").unwrap_or_else(|| "-".into());
            let next = match state.as_str() {
                "Triggered" | "Upgrading" => future(
                    time_at(c, "acknowledgedAt")
                        .or_else(|| time_at(c, "triggeredAt"))
                        .and_then(|t| t.checked_add(timeout).ok()),
                ),
                "Waiting" | "Pending" if !finished => start,
                _ => None,
            };
            let reason = text_at(c, "reason").or_else(|| {
                matches!(state.as_str(), "Triggered" | "Upgrading")
                    .then(|| next.map(|_| "times out at NEXT".to_owned()))
                    .flatten()
            });
            ClusterRow {
                name: text_at(c, "name").unwrap_or_default(),
                stage: text_at(c, "stage"),
                state,
                reason,
                from: text_at(c, "fromRelease"),
                to: text_at(c, "toRelease"),
                next,
                expected_start: None,
            }
        })
        .collect();
    let reason = match stalled {
        Some(c) => Some(condition_text(c)),
        None => condition(status, "Ready", "False")
            .map(condition_text)
            .or_else(|| text_at(status, "reason")),
    };
    CampaignRow {
        name,
        namespace,
        target: upgrade
            .spec
            .target_version
            .clone()
            .or_else(|| text_at(status, "toRelease")),
        state: if stalled.is_some() {
            "Stalled".to_owned()
        } else {
            text_at(status, "state").unwrap_or_else(|| "-".into())
        },
        outcome: text_at(status, "outcome"),
        reason,
        next_check: if stalled.is_some() || finished {
            None
        } else {
            start
        },
        stage: text_at(status, "stage"),
        progress: text_at(status, "progress"),
        clusters,
    }
}

#[cfg(test)]
#[path = "campaign_view_tests.rs"]
mod tests;

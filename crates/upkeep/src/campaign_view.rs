//! What `upkeep status`, `upkeep plan` and `quickstart` show of ClusterUpgrade campaigns: the
//! controller's own decision ([`upkeep_controller::cluster_upgrade::decide`], over the one
//! conversion in `upkeep_api::cluster_upgrade::inputs`) for each campaign over the
//! repository's clusters, as rows and tables. A repository holds no status: nothing counts as
//! started, and `after` upgrades count as not finished.

use crate::Outcome;
use crate::fleet::ClusterFleet;
use crate::out::{out, outln};
use crate::render::{Table, local, relative};
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
    pub(crate) clusters: Vec<ClusterRow>,
}

/// What the repository holds for deciding about campaigns: its clusters and schedules.
pub(crate) fn snapshot(fleet: &ClusterFleet) -> Snapshot {
    Snapshot {
        clusters: fleet.clusters.iter().map(|(c, _)| c.clone()).collect(),
        schedules: fleet.schedules.clone(),
        release: None,
        finished: std::collections::HashMap::new(),
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
        let next = r.expected_start.or(r.next);
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
                Some(t) => format!("{} ({})", local(t, tz), relative(t, now)),
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

/// Prints campaigns as text.
pub(crate) fn print_campaigns(list: &[(CampaignRow, TimeZone)], now: Timestamp) {
    for (c, tz) in list {
        outln!(
            "ClusterUpgrade {}/{} → {}: {}{}{}",
            c.namespace,
            c.name,
            c.target.as_deref().unwrap_or("(no target yet)"),
            c.state,
            c.outcome
                .as_ref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default(),
            c.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
        );
        if let Some(n) = c.next_check {
            outln!("  next check: {} ({})", local(n, tz), relative(n, now));
        }
        if c.clusters.is_empty() {
            outln!("  (no cluster selected)");
        } else {
            out!("{}", rows_table(&c.clusters, now, tz));
        }
        outln!();
    }
}

#[cfg(test)]
#[path = "campaign_view_tests.rs"]
mod tests;

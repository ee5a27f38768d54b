//! What `upkeep status` and `upkeep plan` show of ClusterUpgrade campaigns: the rollout core's
//! plan of each campaign over the repository's clusters, as rows and tables.

use crate::Outcome;
use crate::fleet::{
    ClusterFleet, NamedSchedule, campaign_of, cluster_input, governing_schedule, place_of,
};
use crate::out::{out, outln};
use crate::render::{Table, local, relative};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use upkeep_api::namespaced_name;
use upkeep_core::rollout::{Campaign, ClusterInput, Plan, Step, plan};

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

/// Plans `campaign` over the clusters of `namespace` and turns the plan into rows.
pub(crate) fn plan_campaign(
    campaign: &Campaign,
    namespace: &str,
    fleet_clusters: &[&upkeep_api::ClusterObject],
    schedules: &[NamedSchedule],
    preferred_schedule: Option<&str>,
    place: &upkeep_api::cluster_edit::VersionPlace,
    now: Timestamp,
) -> (Plan, Vec<ClusterRow>, TimeZone) {
    let in_ns: Vec<&upkeep_api::ClusterObject> = fleet_clusters
        .iter()
        .copied()
        .filter(|c| c.namespace.as_deref().unwrap_or("default") == namespace)
        .collect();
    let inputs: Vec<ClusterInput<'_>> = in_ns
        .iter()
        .map(|c| {
            cluster_input(
                c,
                place,
                governing_schedule(schedules, c, preferred_schedule),
                None,
            )
        })
        .collect();
    let planned = plan(campaign, &inputs, now);
    let tz = inputs
        .iter()
        .find_map(|i| i.schedule.map(|(_, s)| s.time_zone().clone()))
        .unwrap_or(TimeZone::UTC);
    let target = campaign.target.as_ref().map(ToString::to_string);
    let rows = cluster_rows(&planned, &inputs, target.as_deref(), &tz);
    (planned, rows, tz)
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

/// Every ClusterUpgrade of the fleet (or the one named), planned at `now`.
pub(crate) fn campaigns(
    fleet: &ClusterFleet,
    only: Option<&str>,
    now: Timestamp,
) -> miette::Result<Vec<(CampaignRow, TimeZone)>> {
    let clusters: Vec<&upkeep_api::ClusterObject> = fleet.clusters.iter().map(|(c, _)| c).collect();
    let mut out = Vec::new();
    for u in &fleet.upgrades {
        let (ns, name) = namespaced_name(&u.metadata);
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let campaign = campaign_of(u)?;
        let preferred = u
            .spec
            .maintenance_schedule_ref
            .as_ref()
            .map(|r| r.name.as_str());
        let (planned, rows, tz) = plan_campaign(
            &campaign,
            &ns,
            &clusters,
            &fleet.schedules,
            preferred,
            &place_of(u),
            now,
        );
        out.push((
            CampaignRow {
                name,
                namespace: ns,
                target: campaign.target.as_ref().map(ToString::to_string),
                state: planned.state.as_str().to_owned(),
                outcome: planned.outcome.map(|o| o.as_str().to_owned()),
                reason: planned.reason.as_ref().map(|r| r.describe(&tz)),
                next_check: planned.next_check,
                clusters: rows,
            },
            tz,
        ));
    }
    Ok(out)
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

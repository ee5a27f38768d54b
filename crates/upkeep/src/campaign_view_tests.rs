//! The same fixtures through the controller's path and the CLI's paths, asserting identical
//! decisions (issue 13: one conversion).
//!
//! - Controller: objects as the API server returns them (typed from JSON, Clusters as
//!   `DynamicObject`s converted by `ClusterObject::from_parts` as its gather does, schedules by
//!   `NamedSchedule::from_object`), then `decide`.
//! - CLI: the same documents written to a repository and read by `ClusterFleet::load` (the
//!   loader's conversion), then `upkeep status`/`plan`'s campaign rows, and `upkeep upgrade
//!   cluster`'s one-cluster decision for each cluster.

use std::collections::HashMap;

use jiff::Timestamp;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use upkeep_api::cluster_edit::VersionPlace;
use upkeep_api::cluster_upgrade::{NamedSchedule, VersionSource, governing};
use upkeep_api::{ClusterObject, ClusterUpgrade, MaintenanceSchedule};
use upkeep_controller::cluster_upgrade::decide::{Decision, Snapshot, decide};
use upkeep_core::rollout::{Plan, Step, WaitReason};
use upkeep_core::version::Version;

use crate::fleet::ClusterFleet;

/// Wednesday 2026-12-02, 11:00 in Berlin.
const NOW: &str = "2026-12-02T10:00:00Z";

#[allow(clippy::needless_pass_by_value)] // callers build the value inline
fn cluster(name: &str, namespace: &str, env: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations,
                     "labels": {"env": env, "release.giantswarm.io/version": "29.0.0"}},
    })
}

#[allow(clippy::needless_pass_by_value)] // callers build the value inline
fn schedule(name: &str, namespace: &str, spec: Value) -> Value {
    json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "MaintenanceSchedule",
           "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

#[allow(clippy::needless_pass_by_value)] // callers build the value inline
fn upgrade(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgrade",
           "metadata": {"name": name, "namespace": "org"}, "spec": spec})
}

fn env(value: &str) -> Value {
    json!([{"name": "env", "key": "env", "value": value}])
}

/// Clusters and schedules of namespace `org` (and one of each elsewhere, which must not count).
fn fleet() -> Vec<Value> {
    let berlin = |start: &str, end: &str, rule: &str, selector: Value| {
        json!({"timeZone": "Europe/Berlin", "clusterSelector": selector,
               "maintenanceWindows": [{"name": "w", "startTime": start, "endTime": end,
                                       "recurrence": rule}]})
    };
    let prod = json!({"matchLabels": {"env": "prod"}});
    vec![
        cluster("dev-a", "org", "dev", json!({})),
        cluster(
            "prod-bad",
            "org",
            "prod",
            json!({"upkeep.dev/freeze-until": "next tuesday"}),
        ),
        cluster(
            "prod-frozen",
            "org",
            "prod",
            json!({"upkeep.dev/freeze-until": "2099-01-01T00:00:00Z",
                   "upkeep.dev/freeze-reason": "audit"}),
        ),
        cluster("prod-c", "org", "prod", json!({})),
        cluster("prod-x", "elsewhere", "prod", json!({})),
        // First in the file, but not first by name: "b-weekdays" governs the prod clusters.
        schedule(
            "weekends",
            "org",
            berlin(
                "2026-01-03T00:00:00",
                "2026-01-04T00:00:00",
                "FREQ=WEEKLY;BYDAY=SA",
                prod.clone(),
            ),
        ),
        schedule(
            "b-weekdays",
            "org",
            berlin(
                "2026-01-05T09:00:00",
                "2026-01-05T17:00:00",
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                prod.clone(),
            ),
        ),
        // Another namespace's schedule selects nothing in `org`.
        schedule(
            "a-closed",
            "elsewhere",
            berlin(
                "2026-01-03T00:00:00",
                "2026-01-03T01:00:00",
                "FREQ=YEARLY",
                prod,
            ),
        ),
        schedule(
            "nights",
            "org",
            json!({"timeZone": "UTC", "maintenanceWindows": [{"name": "n",
                   "startTime": "2026-01-01T02:00:00", "endTime": "2026-01-01T04:00:00",
                   "recurrence": "FREQ=DAILY"}]}),
        ),
    ]
}

/// The ClusterUpgrades, each with what both paths must decide (a reason per case).
fn cases() -> Vec<(Value, Expect, &'static str)> {
    use Expect::{NotReady, Planned, Stalled};
    let target = |extra: Value| {
        let mut spec = json!({"targetVersion": "30.0.0"});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        spec
    };
    vec![
        (
            upgrade(
                "all",
                target(json!({"matchers": [{"name": "all", "value": ".*", "isRegex": true}]})),
            ),
            Planned(&[
                ("dev-a", "Trigger"),
                ("prod-bad", "Frozen"),
                ("prod-c", "Trigger"),
                ("prod-frozen", "Frozen"),
            ]),
            "no schedule for dev-a; prod-c governed by b-weekdays (first by name, open); an unreadable freeze-until holds prod-bad; prod-frozen is frozen; prod-x is in another namespace",
        ),
        (
            upgrade(
                "by-ref",
                target(
                    json!({"matchers": env("dev"), "maintenanceScheduleRef": {"name": "nights"}}),
                ),
            ),
            Planned(&[("dev-a", "Window")]),
            "a scheduleRef governs a cluster no selector picks; the window is closed at 10:00 UTC",
        ),
        (
            upgrade(
                "staged",
                target(
                    json!({"matchers": [{"name": "all", "value": ".*", "isRegex": true}],
                "strategy": {"stages": [{"name": "dev", "matchers": env("dev"), "soak": "1h"},
                                        {"name": "prod", "matchers": env("prod")}]}}),
                ),
            ),
            Planned(&[
                ("dev-a", "Trigger"),
                ("prod-bad", "Stage"),
                ("prod-c", "Stage"),
                ("prod-frozen", "Stage"),
            ]),
            "stages: prod waits for dev (and its soak)",
        ),
        (
            upgrade(
                "announced",
                target(
                    json!({"matchers": env("dev"), "maintenanceScheduleRef": {"name": "nights"},
                "announce": {"before": "1d"}}),
                ),
            ),
            Planned(&[("dev-a", "Window+announce")]),
            "announce.before: the next window is within a day, so it is announced now",
        ),
        (
            upgrade(
                "missing-ref",
                target(json!({"matchers": env("dev"), "maintenanceScheduleRef": {"name": "nope"}})),
            ),
            NotReady,
            "a scheduleRef to a missing schedule starts nothing (not: no schedule, always open)",
        ),
        (
            upgrade(
                "release",
                json!({"matchers": env("dev"), "releaseRef": {"name": "cluster-release"}}),
            ),
            Planned(&[("dev-a", "NoTarget")]),
            "an unresolved releaseRef: every cluster waits",
        ),
        (
            upgrade(
                "bad-timeout",
                target(json!({"matchers": env("dev"), "strategy": {"timeout": "soon"}})),
            ),
            Stalled,
            "an invalid duration is an invalid spec, reported, never half-applied",
        ),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// (cluster, step name) by cluster name.
    Planned(&'static [(&'static str, &'static str)]),
    Stalled,
    NotReady,
}

/// A step's name for the table: the wait reason's kind, `+announce` when announced now.
fn step_name(p: &upkeep_core::rollout::ClusterPlan) -> String {
    let name = match &p.step {
        Step::Waiting { reason, .. } => reason.name().to_owned(),
        Step::Trigger => "Trigger".to_owned(),
        s => s.phase().as_str().to_owned(),
    };
    if p.announce {
        format!("{name}+announce")
    } else {
        name
    }
}

/// The controller's view of the documents: typed objects, Clusters through `DynamicObject`.
fn controller_snapshot(docs: &[Value]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for d in docs {
        match d["kind"].as_str() {
            Some("Cluster") => {
                let o: DynamicObject = serde_json::from_value(d.clone()).expect("a Cluster");
                snapshot
                    .clusters
                    .push(ClusterObject::from_parts(&o.metadata, &o.data).expect("a cluster"));
            }
            Some("MaintenanceSchedule") => {
                let m: MaintenanceSchedule = serde_json::from_value(d.clone()).expect("a schedule");
                if let Ok(s) = NamedSchedule::from_object(&m) {
                    snapshot.schedules.push(s);
                }
            }
            _ => {}
        }
    }
    snapshot
}

fn outcome(decision: &Decision<'_>) -> Result<Plan, &'static str> {
    match decision {
        Decision::Plan(d) => Ok(d.plan.clone()),
        Decision::Stalled { .. } => Err("Stalled"),
        Decision::NotReady { .. } => Err("NotReady"),
    }
}

/// Writes `docs` as a repository (JSON is YAML) and loads it as the cluster commands do.
fn cli_fleet(dir: &std::path::Path, docs: &[Value]) -> Result<ClusterFleet, crate::Outcome> {
    let text: Vec<String> = docs.iter().map(Value::to_string).collect();
    std::fs::write(dir.join("fleet.yaml"), text.join("\n---\n")).expect("write");
    ClusterFleet::load(dir).expect("load")
}

#[test]
fn controller_and_cli_decide_the_same() {
    let now: Timestamp = NOW.parse().expect("now");
    for (object, expect, why) in cases() {
        let upgrade: ClusterUpgrade = serde_json::from_value(object.clone()).expect("typed");
        let controller = controller_snapshot(&fleet());
        let by_controller = outcome(&decide(&upgrade, &controller, VersionSource::Label, now));

        let dir = tempfile::tempdir().expect("tempdir");
        let mut docs = fleet();
        docs.push(object);
        let by_cli = match cli_fleet(dir.path(), &docs) {
            Ok(f) => {
                let u = f.upgrades.first().expect("the upgrade");
                let snapshot = crate::campaign_view::snapshot(&f);
                let row = crate::campaign_view::campaign_row(u, &snapshot, now).0;
                let decided = outcome(&decide(u, &snapshot, VersionSource::Label, now));
                match &decided {
                    Ok(plan) => assert_eq!(row.state, plan.state.as_str(), "{why}: row"),
                    Err(state) => assert_eq!(row.state, *state, "{why}: row"),
                }
                decided
            }
            // The loader refuses an invalid ClusterUpgrade before anything is decided.
            Err(crate::Outcome::Invalid) => Err("Stalled"),
            Err(o) => panic!("{why}: unexpected {o:?}"),
        };
        assert_eq!(by_cli, by_controller, "{why}: the same decision");
        match (expect, &by_controller) {
            (Expect::Planned(want), Ok(plan)) => {
                let got: Vec<(String, String)> = plan
                    .clusters
                    .iter()
                    .map(|p| (p.name.clone(), step_name(p)))
                    .collect();
                let want: Vec<(String, String)> = want
                    .iter()
                    .map(|(c, s)| ((*c).to_owned(), (*s).to_owned()))
                    .collect();
                assert_eq!(got, want, "{why}");
            }
            (Expect::Stalled, Err("Stalled")) | (Expect::NotReady, Err("NotReady")) => {}
            (e, got) => panic!("{why}: expected {e:?}, got {got:?}"),
        }
    }
}

/// `upkeep upgrade cluster` decides one cluster at a time; over the same repository it must
/// decide each cluster as the controller's campaign over all of them does.
#[test]
fn upgrade_cluster_decides_as_the_controller() {
    let now: Timestamp = NOW.parse().expect("now");
    let target = Version::parse("30.0.0").expect("version");
    let all = cases().remove(0).0;
    let upgrade: ClusterUpgrade = serde_json::from_value(all).expect("typed");
    let controller = controller_snapshot(&fleet());
    let Ok(plan) = outcome(&decide(&upgrade, &controller, VersionSource::Label, now)) else {
        panic!("the controller plans `all`");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = cli_fleet(dir.path(), &fleet()).expect("a valid fleet");
    let mut seen = HashMap::new();
    for c in fleet
        .clusters
        .iter()
        .map(|c| &c.object)
        .filter(|c| c.namespace.as_deref() == Some("org"))
    {
        let schedule = governing(&fleet.schedules, c, None);
        let d = crate::cluster_upgrade::decide(c, &VersionPlace::default(), schedule, &target, now)
            .expect("decided");
        let by_controller = plan
            .clusters
            .iter()
            .find(|p| p.name == c.name)
            .map(|p| p.step.clone());
        assert_eq!(Some(d.step.clone()), by_controller, "cluster {}", c.name);
        seen.insert(c.name.clone(), d.step);
    }
    assert!(
        matches!(
            seen.get("prod-bad"),
            Some(Step::Waiting {
                reason: WaitReason::Frozen { .. },
                ..
            })
        ),
        "an unreadable freeze-until holds the cluster in `upkeep upgrade cluster` too"
    );
    assert_eq!(seen.len(), 4, "every cluster of the namespace decided");
}

/// The clusters of a recorded case: (name, stage, next).
type RecordedClusters = &'static [(&'static str, Option<&'static str>, Option<&'static str>)];

/// (spec, status, state, campaign reason, campaign stage, next check, clusters, why).
type RecordedCase = (
    Value,
    Value,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    RecordedClusters,
    &'static str,
);

/// What `upkeep status --kubeconfig` shows of a recorded status (a reason per case): the
/// recorded stage, NEXT only when it lies ahead, a stalled campaign's InvalidSpec message.
#[test]
fn recorded_rows_show_stage_next_and_stall() {
    let now: Timestamp = NOW.parse().expect("now");
    let at = |s: &str| -> Timestamp { s.parse().expect("time") };
    let stalled = json!([
        {"type": "Ready", "status": "False", "reason": "InvalidSpec", "observedGeneration": 2,
         "lastTransitionTime": "2026-12-02T09:00:00Z",
         "message": "spec.strategy.timeout: invalid duration \"soon\" (hint: e.g. 30m, 2h)"},
        {"type": "Stalled", "status": "True", "reason": "InvalidSpec", "observedGeneration": 2,
         "lastTransitionTime": "2026-12-02T09:00:00Z",
         "message": "spec.strategy.timeout: invalid duration \"soon\" (hint: e.g. 30m, 2h)"},
    ]);
    let cases: Vec<RecordedCase> = vec![
        (
            json!({"targetVersion": "30.0.0", "strategy": {"timeout": "soon"}}),
            json!({"conditions": stalled}),
            "Stalled",
            Some(
                "InvalidSpec: spec.strategy.timeout: invalid duration \"soon\" (hint: e.g. 30m, 2h)",
            ),
            None,
            None,
            &[],
            "an invalid campaign shows its Stalled reason and message (field and hint)",
        ),
        (
            json!({"targetVersion": "30.0.0", "strategy": {"timeout": "45m"}}),
            json!({"state": "Running", "stage": "prod", "progress": "1/3 succeeded", "clusters": [
                {"name": "a", "stage": "dev", "state": "Succeeded",
                 "triggeredAt": "2026-12-02T09:00:00Z", "finishedAt": "2026-12-02T09:55:00Z"},
                {"name": "b", "stage": "prod", "state": "Upgrading",
                 "triggeredAt": "2026-12-02T09:50:00Z"},
                {"name": "c", "stage": "prod", "state": "Triggered",
                 "triggeredAt": "2026-12-02T09:00:00Z"},
            ]}),
            "Running",
            None,
            Some("prod"),
            None,
            &[
                ("a", Some("dev"), None),
                ("b", Some("prod"), Some("2026-12-02T10:35:00Z")),
                ("c", Some("prod"), None),
            ],
            "stages as recorded; a finished cluster has no next step (not its finish time); a running one its timeout, unless that has passed",
        ),
        (
            json!({"targetVersion": "30.0.0"}),
            json!({"state": "Running", "clusters": [
                {"name": "a", "state": "Triggered", "triggeredAt": "2026-12-02T07:00:00Z",
                 "acknowledgedAt": "2026-12-02T08:30:00Z"},
            ]}),
            "Running",
            None,
            None,
            None,
            &[("a", None, Some("2026-12-02T10:30:00Z"))],
            "the default 2h timeout runs from the acknowledged change, not the recorded trigger",
        ),
        (
            json!({"targetVersion": "30.0.0", "startTime": "2026-12-02T12:00:00Z"}),
            json!({"state": "Pending", "reason": "StartTime", "clusters": [
                {"name": "a", "state": "Waiting", "reason": "StartTime"},
            ]}),
            "Pending",
            Some("StartTime"),
            None,
            Some("2026-12-02T12:00:00Z"),
            &[("a", None, Some("2026-12-02T12:00:00Z"))],
            "a start time ahead is what comes next, for the campaign and its waiting clusters",
        ),
        (
            json!({"targetVersion": "30.0.0", "startTime": "2026-12-01T12:00:00Z"}),
            json!({"state": "Waiting", "clusters": [{"name": "a", "state": "Waiting",
                                                      "reason": "Window"}]}),
            "Waiting",
            None,
            None,
            None,
            &[("a", None, None)],
            "a start time that has passed is not next",
        ),
        (
            json!({"targetVersion": "30.0.0", "maintenanceScheduleRef": {"name": "nope"}}),
            json!({"conditions": [{"type": "Ready", "status": "False", "reason": "ScheduleNotFound",
                    "message": "MaintenanceSchedule org/nope not found",
                    "lastTransitionTime": "2026-12-02T09:00:00Z"}]}),
            "-",
            Some("ScheduleNotFound: MaintenanceSchedule org/nope not found"),
            None,
            None,
            &[],
            "not ready (not stalled): why, from the Ready condition",
        ),
        (
            json!({"targetVersion": "30.0.0"}),
            json!({"state": "Finished", "outcome": "Succeeded",
                   "finishedAt": "2026-12-02T09:59:00Z", "clusters": []}),
            "Finished",
            None,
            None,
            None,
            &[],
            "a finished campaign has no next check",
        ),
    ];
    for (spec, status, state, reason, stage, next_check, clusters, why) in cases {
        let u: ClusterUpgrade = serde_json::from_value(upgrade("u", spec)).expect("typed");
        let row = crate::campaign_view::recorded_row(&u, &status, now);
        assert_eq!(row.state, state, "{why}");
        assert_eq!(row.reason.as_deref(), reason, "{why}");
        assert_eq!(row.stage.as_deref(), stage, "{why}");
        assert_eq!(row.next_check, next_check.map(at), "{why}");
        let got: Vec<(String, Option<String>, Option<Timestamp>)> = row
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.stage.clone(), c.next))
            .collect();
        let want: Vec<(String, Option<String>, Option<Timestamp>)> = clusters
            .iter()
            .map(|(n, s, t)| ((*n).to_owned(), s.map(str::to_owned), t.map(at)))
            .collect();
        assert_eq!(got, want, "{why}");
    }
}

/// The table never shows a past instant as NEXT, and shows seconds when under an hour away.
#[test]
fn the_table_shows_no_past_next_and_seconds_when_near() {
    use crate::campaign_view::{ClusterRow, rows_table};
    let now: Timestamp = NOW.parse().expect("now");
    let row = |name: &str, next: &str| ClusterRow {
        name: name.to_owned(),
        stage: Some("prod".to_owned()),
        state: "Upgrading".to_owned(),
        reason: None,
        from: Some("29.0.0".to_owned()),
        to: Some("30.0.0".to_owned()),
        next: Some(next.parse().expect("time")),
        expected_start: None,
    };
    let table = rows_table(
        &[
            row("past", "2026-12-02T09:59:59Z"),
            row("near", "2026-12-02T10:12:34Z"),
            row("far", "2026-12-03T10:00:00Z"),
        ],
        now,
        &jiff::tz::TimeZone::UTC,
    );
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .to_owned()
    };
    assert!(
        line("past").trim_end().ends_with(" -"),
        "a past instant is not next: {table}"
    );
    assert!(
        line("past").contains("prod"),
        "the recorded stage is shown: {table}"
    );
    assert!(
        line("near").ends_with("Wed 2026-12-02 10:12:34 UTC (in 12m 34s)"),
        "under an hour: seconds: {table}"
    );
    assert!(
        line("far").ends_with("Thu 2026-12-03 10:00 UTC (in 1d)"),
        "a day away: minutes: {table}"
    );
}

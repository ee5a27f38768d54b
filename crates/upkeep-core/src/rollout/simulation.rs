//! A fleet stepped through three months: 50 clusters in three stages under real schedules
//! (a weekly Berlin window across the October DST change, a Christmas exclusion, a
//! `NoMinorUpgrades` week, a schedule freeze), driven in 15-minute ticks by a simulated shell
//! (records every step as status, triggers, announces) and a simulated provider (shows the
//! target one tick after the trigger, ready the tick after).
//!
//! The invariants are checked every tick against facts computed here, independently of the
//! engine where that is possible (windows are re-derived from Berlin wall-clock time, stage
//! gates from the recorded finish times), so a wrong plan cannot pass by agreeing with itself.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp, civil::Weekday, tz::TimeZone};

use super::tests::{campaign, exclusion, hours, label, spec, stage, ts, window};
use super::*;
use crate::schedule::{ExclusionScope, Freeze, Schedule, TimeSpec};
use crate::selector::{Matcher, Matchers};
use crate::version::{UpgradeKind, Version};

const TICK: SignedDuration = SignedDuration::from_mins(15);
const STAGES: [&str; 3] = ["dev", "staging", "prod"];
const SOAK_DAYS: [i64; 3] = [7, 14, 0];
const LIMITS: [u32; 3] = [1, 3, 5];
const BERLIN: usize = 0;
const OPS: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Normal,
    /// Reports a failure one tick after the trigger.
    Fails,
    /// Shows the target but never becomes ready (runs into the timeout).
    Stuck,
}

#[derive(Debug)]
struct SimCluster {
    name: String,
    labels: BTreeMap<String, String>,
    current: Option<String>,
    freeze: Option<(Timestamp, Option<String>)>,
    schedule: Option<usize>,
    observed: Observed,
    progress: Option<Progress>,
    behaviour: Behaviour,
    stage: Option<usize>,
    kind: Option<UpgradeKind>,
    triggered: Option<(usize, Timestamp)>,
    finished: Option<Timestamp>,
    last_expected: Option<Timestamp>,
}

fn schedules() -> Vec<(String, Schedule)> {
    let mut berlin = spec("Europe/Berlin");
    berlin.windows.push(window(
        "saturday-night",
        "2026-01-03T22:00:00",
        "2026-01-04T04:00:00",
        Some("FREQ=WEEKLY;BYDAY=SA"),
    ));
    berlin.exclusions.push(exclusion(
        "christmas",
        "2026-12-19T00:00:00",
        "2027-01-04T00:00:00",
        ExclusionScope::NoUpgrades,
    ));
    berlin.exclusions.push(exclusion(
        "release-week",
        "2026-11-28T00:00:00",
        "2026-11-30T00:00:00",
        ExclusionScope::NoMinorUpgrades,
    ));
    let mut ops = spec("UTC");
    ops.windows.push(window(
        "office-hours",
        "2026-01-05T08:00:00",
        "2026-01-05T16:00:00",
        Some("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ));
    ops.freeze = Some(Freeze {
        until: TimeSpec::parse("2026-11-15T00:00:00Z").unwrap(),
        reason: Some("migration".to_owned()),
    });
    vec![
        ("berlin".to_owned(), Schedule::new(berlin).unwrap()),
        ("ops".to_owned(), Schedule::new(ops).unwrap()),
    ]
}

/// Whether an upgrade of `kind` may start at `t` under schedule `s`, from wall-clock facts
/// alone (not the schedule engine).
fn allowed_independently(s: usize, t: Timestamp, kind: UpgradeKind) -> bool {
    if s == BERLIN {
        let wall = t
            .to_zoned(TimeZone::get("Europe/Berlin").unwrap())
            .datetime();
        let in_window = (wall.weekday() == Weekday::Saturday && wall.hour() >= 22)
            || (wall.weekday() == Weekday::Sunday && wall.hour() < 4);
        let date = wall.date();
        let christmas =
            date >= "2026-12-19".parse().unwrap() && date < "2027-01-04".parse().unwrap();
        let release_week = date >= "2026-11-28".parse().unwrap()
            && date < "2026-11-30".parse().unwrap()
            && kind >= UpgradeKind::Minor;
        in_window && !christmas && !release_week
    } else {
        let wall = t.to_zoned(TimeZone::UTC).datetime();
        let weekday = !matches!(wall.weekday(), Weekday::Saturday | Weekday::Sunday);
        weekday && (8..16).contains(&wall.hour()) && t >= ts("2026-11-15T00:00:00Z")
    }
}

fn fleet(inject: &[(&str, Behaviour)]) -> Vec<SimCluster> {
    let target = Version::parse("1.1.0").unwrap();
    (0..50)
        .map(|i: usize| {
            let name = format!("c{i:02}");
            let mut stage_label = STAGES[usize::from(i >= 10) + usize::from(i >= 25)];
            let current = match i {
                15 | 21 => Some("1.1.0-rc.1"),
                47 => Some("1.2.0"),
                48 => None,
                49 => Some("1.1.0"),
                _ => Some("1.0.0"),
            };
            if i == 46 {
                stage_label = "qa";
            }
            let freeze = (i == 3).then(|| (ts("2026-11-01T00:00:00Z"), Some("audit".to_owned())));
            let cur = current.and_then(parse_current);
            SimCluster {
                labels: BTreeMap::from([
                    ("stage".to_owned(), stage_label.to_owned()),
                    ("fleet".to_owned(), "eu".to_owned()),
                ]),
                current: current.map(str::to_owned),
                freeze,
                schedule: match i % 3 {
                    0 => Some(BERLIN),
                    1 => Some(OPS),
                    _ => None,
                },
                observed: Observed {
                    ready: Some(true),
                    control_plane_ready: Some(true),
                    last_transition: Some(ts("2026-01-01T00:00:00Z")),
                    ..Observed::default()
                },
                progress: None,
                behaviour: inject
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(Behaviour::Normal, |(_, b)| *b),
                stage: STAGES.iter().position(|s| *s == stage_label),
                kind: cur.and_then(|c| UpgradeKind::between(&c, &target)),
                triggered: None,
                finished: None,
                last_expected: None,
                name,
            }
        })
        .collect()
}

fn sim_campaign(policy: FailurePolicy) -> Campaign {
    Campaign {
        name: "k8s-1.1".to_owned(),
        start_time: Some(ts("2026-10-20T00:00:00Z")),
        stages: (0..3)
            .map(|i| StageSpec {
                max_concurrency: (i != 1).then_some(LIMITS[i]),
                soak: Some(hours(24 * SOAK_DAYS[i])),
                ..stage(STAGES[i], label("stage", STAGES[i]))
            })
            .collect(),
        max_concurrency: Some(LIMITS[1]),
        failure_policy: policy,
        after: vec![AfterDep {
            name: "base".to_owned(),
            soak: Some(hours(72)),
            finished: Some((Outcome::Succeeded, ts("2026-10-18T00:00:00Z"))),
        }],
        announce_before: Some(hours(24)),
        // A label matcher rather than the default regex: cheaper in a debug build.
        matchers: Matchers(vec![
            Matcher::new(None, Some("fleet".to_owned()), "eu", false).unwrap(),
        ]),
        ..campaign("1.1.0")
    }
}

fn inputs<'a>(fleet: &[SimCluster], schedules: &'a [(String, Schedule)]) -> Vec<ClusterInput<'a>> {
    fleet
        .iter()
        .map(|c| ClusterInput {
            name: c.name.clone(),
            // Owned: the simulation keeps a settled snapshot while the fleet moves on.
            labels: std::borrow::Cow::Owned(c.labels.clone()),
            current: c.current.clone(),
            provider: None,
            freeze: c.freeze.clone(),
            schedule: c
                .schedule
                .map(|s| (schedules[s].0.as_str(), &schedules[s].1)),
            observed: c.observed.clone(),
            progress: c.progress.clone(),
            elsewhere: Elsewhere::default(),
        })
        .collect()
}

/// What a plan decides, without the instants that merely record "observed now" (a
/// Trigger's expected start, a fresh Succeeded/Failed's `at`).
type Decision = (CampaignState, Vec<(String, Step, bool, Option<Timestamp>)>);

fn decision(p: &Plan) -> Decision {
    let clusters = p
        .clusters
        .iter()
        .map(|c| {
            let (step, expected) = match &c.step {
                Step::Trigger => (Step::Trigger, None),
                Step::Succeeded { .. } => (
                    Step::Succeeded {
                        at: Timestamp::UNIX_EPOCH,
                    },
                    c.expected_start,
                ),
                Step::Failed { reason, .. } => (
                    Step::Failed {
                        reason: reason.clone(),
                        at: Timestamp::UNIX_EPOCH,
                    },
                    c.expected_start,
                ),
                s => (s.clone(), c.expected_start),
            };
            (c.name.clone(), step, c.announce, expected)
        })
        .collect();
    (p.state, clusters)
}

/// The provider acts on what the shell did in earlier ticks; true when it changed something.
fn provide(c: &mut SimCluster, tick: usize, now: Timestamp) -> bool {
    let Some((k, _)) = c.triggered else {
        return false;
    };
    if c.finished.is_some() {
        return false;
    }
    if tick == k + 1 {
        match c.behaviour {
            Behaviour::Fails => {
                c.observed.failure = Some("InfrastructureFailed: no capacity".into());
            }
            Behaviour::Normal | Behaviour::Stuck => {
                c.current = Some("1.1.0".to_owned());
                c.observed.ready = Some(false);
                c.observed.rolling_out = Some(true);
                c.observed.last_transition = Some(now);
            }
        }
    } else if tick == k + 2 && c.behaviour == Behaviour::Normal {
        c.observed.ready = Some(true);
        c.observed.rolling_out = None;
        c.observed.last_transition = Some(now);
    } else {
        return false;
    }
    true
}

/// The shell records the plan as status (and "acts" on triggers); true when the status changed.
fn record(c: &mut SimCluster, cp: &ClusterPlan, tick: usize, now: Timestamp) -> bool {
    let announced_at = c
        .progress
        .as_ref()
        .and_then(|p| p.announced_at)
        .or(cp.announce.then_some(now));
    let previous = c.progress.as_ref();
    let triggered_at = match cp.step {
        Step::Trigger => Some(now),
        _ => previous.and_then(|p| p.triggered_at),
    };
    if cp.step == Step::Trigger {
        c.triggered = Some((tick, now));
    }
    if let Some(at) = cp.step.finished_at() {
        c.finished.get_or_insert(at);
    }
    let next = Some(Progress {
        state: cp.step.phase(),
        triggered_at,
        // The simulated shell's changes are acknowledged at once.
        acknowledged_at: triggered_at,
        finished_at: cp
            .step
            .finished_at()
            .or(previous.and_then(|p| p.finished_at)),
        from: cp.from.clone(),
        // Only terminal reasons are read back by the core; formatting the others every tick
        // would dominate the run time in debug builds.
        reason: if cp.step.phase().is_terminal() {
            cp.step.reason()
        } else {
            None
        },
        announced_at,
    });
    let changed = c.progress != next;
    c.progress = next;
    changed
}

struct Report {
    fleet: Vec<SimCluster>,
    last: Plan,
    finished_tick: Option<Timestamp>,
    first_failure: Option<Timestamp>,
    failures: Vec<(String, FailReason)>,
    triggers: Vec<(String, Timestamp)>,
}

fn run(policy: FailurePolicy, inject: &[(&str, Behaviour)]) -> Report {
    let schedules = schedules();
    let c = sim_campaign(policy);
    let mut fleet = fleet(inject);
    let start = ts("2026-10-19T00:00:00Z");
    let end = ts("2027-01-20T00:00:00Z");
    // The snapshot as the shell recorded it last tick, and its plan at that tick.
    let mut settled: Option<(Vec<ClusterInput<'_>>, Plan)> = None;
    let mut report = Report {
        fleet: Vec::new(),
        last: plan(&c, &[], start),
        finished_tick: None,
        first_failure: None,
        failures: Vec::new(),
        triggers: Vec::new(),
    };
    let mut tick = 0;
    let mut now = start;
    // Three months, or two weeks past the end (enough to see that nothing starts any more).
    while now < end
        && report
            .finished_tick
            .is_none_or(|f| now < f + hours(24 * 14))
    {
        let mut events = false;
        for cl in &mut fleet {
            events |= provide(cl, tick, now);
        }
        // next_check: if the snapshot recorded last tick is now decided differently with
        // nothing else happening, its plan must have asked to be looked at again by now.
        let mut again = None;
        if let Some((inputs_then, plan_then)) = &settled {
            let p = plan(&c, inputs_then, now);
            let (a, b) = (decision(&p), decision(plan_then));
            if a != b {
                let diff: Vec<_> = a.1.iter().zip(&b.1).filter(|(x, y)| x != y).collect();
                assert!(
                    plan_then.next_check.is_some_and(|t| t <= now),
                    "{now}: time alone changed the plan but next_check was {:?}: {:?} {diff:#?}",
                    plan_then.next_check,
                    (a.0, b.0)
                );
            }
            again = Some(p);
        }
        // Without provider events the fleet is exactly the settled snapshot: reuse its plan
        // (planning is the whole cost of this test in a debug build).
        let p = match again {
            Some(p) if !events => p,
            _ => plan(&c, &inputs(&fleet, &schedules), now),
        };
        check_tick(&c, &fleet, &p, now, report.first_failure);

        let mut recorded = false;
        for (cp, cl) in p.clusters.iter().zip(fleet.iter_mut()) {
            assert_eq!(cp.name, cl.name, "the plan lists every cluster, by name");
            match &cp.step {
                Step::Trigger => report.triggers.push((cp.name.clone(), now)),
                Step::Failed { reason, .. }
                    if cl.progress.as_ref().map(|p| p.state) != Some(ClusterPhase::Failed) =>
                {
                    report.first_failure.get_or_insert(now);
                    report.failures.push((cp.name.clone(), reason.clone()));
                }
                Step::Waiting { .. } => {
                    if let Some(e) = cp.expected_start {
                        cl.last_expected = Some(e);
                    }
                }
                _ => {}
            }
            recorded |= record(cl, cp, tick, now);
        }
        if p.state == CampaignState::Finished && report.finished_tick.is_none() {
            report.finished_tick = Some(now);
        }
        settled = match settled {
            // Nothing new happened and nothing new was recorded: the same snapshot.
            Some((inputs_then, _)) if !events && !recorded => Some((inputs_then, p.clone())),
            _ => {
                let snapshot = inputs(&fleet, &schedules);
                let plan_now = if recorded {
                    plan(&c, &snapshot, now)
                } else {
                    p.clone()
                };
                Some((snapshot, plan_now))
            }
        };
        report.last = p;
        tick += 1;
        now += TICK;
    }
    report.fleet = fleet;
    report
}

/// Every invariant that must hold in every tick.
fn check_tick(
    c: &Campaign,
    fleet: &[SimCluster],
    p: &Plan,
    now: Timestamp,
    failed: Option<Timestamp>,
) {
    let mut running = [0_u32; 3];
    for (cp, cl) in p.clusters.iter().zip(fleet) {
        if let (Some(s), Step::Trigger | Step::Triggered | Step::Upgrading) = (cl.stage, &cp.step) {
            running[s] += 1;
        }
        if let Step::Waiting { until: Some(u), .. } = &cp.step {
            assert!(
                *u > now,
                "{now} {}: until {u} is not in the future",
                cp.name
            );
            assert!(
                p.next_check.is_some_and(|n| n <= *u),
                "{now}: next_check after an until"
            );
        }
        if cp.announce {
            let e = cp.expected_start.expect("announce needs a known start");
            assert!(
                now >= e - hours(24),
                "{now} {}: announced too early for {e}",
                cp.name
            );
        }
        if cp.step != Step::Trigger {
            continue;
        }
        let why = format!("{now} {}", cp.name);
        assert!(
            now >= ts("2026-10-21T00:00:00Z"),
            "{why}: before start time and after+soak"
        );
        assert!(
            failed.is_none() || c.failure_policy == FailurePolicy::Continue,
            "{why}: started after a failure under Halt"
        );
        let kind = cl.kind.expect("only upgrades start");
        if let Some(s) = cl.schedule {
            assert!(
                allowed_independently(s, now, kind),
                "{why}: outside allowed time ({kind:?})"
            );
        }
        if let Some((until, _)) = &cl.freeze {
            assert!(now >= *until, "{why}: frozen until {until}");
        }
        assert!(
            cl.progress
                .as_ref()
                .is_none_or(|pr| pr.announced_at.is_some())
                || cp.announce,
            "{why}: started unannounced"
        );
        assert!(
            cl.last_expected.is_none_or(|e| now >= e),
            "{why}: started before its expected start {:?}",
            cl.last_expected
        );
        let s = cl.stage.expect("only staged clusters start");
        for (j, soak) in SOAK_DAYS.iter().enumerate().take(s) {
            let earlier: Vec<&SimCluster> = fleet.iter().filter(|f| f.stage == Some(j)).collect();
            let done = |f: &&SimCluster| {
                p.clusters
                    .iter()
                    .any(|cp| cp.name == f.name && cp.step.phase().is_terminal())
            };
            assert!(
                earlier.iter().all(done),
                "{why}: stage {} not finished",
                STAGES[j]
            );
            if let Some(last) = earlier.iter().filter_map(|f| f.finished).max() {
                assert!(
                    now >= last + hours(24 * soak),
                    "{why}: stage {} still soaking",
                    STAGES[j]
                );
            }
        }
    }
    for (s, n) in running.iter().enumerate() {
        assert!(
            *n <= LIMITS[s],
            "{now}: {n} running in {} (limit {})",
            STAGES[s],
            LIMITS[s]
        );
    }
}

fn step_of<'p>(r: &'p Report, name: &str) -> &'p Step {
    &r.last
        .clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap()
        .step
}

#[test]
fn three_months_continue_policy() {
    let r = run(
        FailurePolicy::Continue,
        &[("c13", Behaviour::Fails), ("c40", Behaviour::Stuck)],
    );
    assert_eq!(r.last.state, CampaignState::Finished, "everything ends");
    assert_eq!(r.last.outcome, Some(Outcome::Failed), "two clusters failed");
    assert!(
        r.last.clusters.iter().all(|c| c.step.phase().is_terminal()),
        "every cluster ends terminal under Continue"
    );
    assert_eq!(
        r.failures,
        vec![
            (
                "c13".to_owned(),
                FailReason::Condition("InfrastructureFailed: no capacity".into())
            ),
            ("c40".to_owned(), FailReason::Timeout { after: hours(2) }),
        ],
        "exactly the injected failures: a reported condition and a timeout"
    );
    assert_eq!(
        step_of(&r, "c40").reason().as_deref(),
        Some("not ready 2h after the trigger"),
        "a recorded failure keeps its reason"
    );
    for (name, why) in [
        ("c46", "not in any stage"),
        ("c47", "above the target"),
        ("c48", "no version"),
        ("c49", "at the target"),
    ] {
        assert!(
            matches!(step_of(&r, name), Step::Skipped { .. }),
            "{name}: {why}"
        );
    }
    let started = |name: &str| r.triggers.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
    // Berlin windows both sides of the DST change (the independent check does the rest).
    assert_eq!(
        started("c00"),
        Some(ts("2026-10-24T20:00:00Z")),
        "CEST: 22:00 is 20:00Z"
    );
    assert_eq!(
        started("c03"),
        Some(ts("2026-11-01T00:00:00Z")),
        "the freeze annotation ends inside the CET window (21:00Z-03:00Z): start at once"
    );
    // The NoMinorUpgrades week lets the patch (release candidate) clusters through.
    let patch = started("c15").unwrap();
    let minor = started("c12").unwrap();
    assert!(
        patch < ts("2026-11-29T23:00:00Z") && minor >= ts("2026-12-05T21:00:00Z"),
        "patch {patch} during the release week, minor {minor} the week after"
    );
    // Christmas holds the Berlin prod clusters until the first window of January.
    let berlin_prod = started("c27").unwrap();
    assert_eq!(
        berlin_prod,
        ts("2027-01-09T21:00:00Z"),
        "prod in Berlin waits out the Christmas exclusion"
    );
    assert!(
        r.fleet.iter().all(|c| c.progress.is_some()),
        "every cluster was recorded"
    );
}

#[test]
fn three_months_halt_policy() {
    let r = run(FailurePolicy::Halt, &[("c26", Behaviour::Fails)]);
    let failed = r.first_failure.expect("the injected failure happens");
    assert_eq!(
        r.last.state,
        CampaignState::Finished,
        "Halt with nothing running finishes"
    );
    assert_eq!(r.last.outcome, Some(Outcome::Failed), "halted by a failure");
    assert!(
        r.triggers.iter().all(|(_, t)| *t < failed),
        "no start at or after the failure at {failed}"
    );
    assert_eq!(
        step_of(&r, "c27"),
        &Step::Halted {
            failed: "c26".into()
        },
        "a Berlin prod cluster never starts, and says Halted under the Finished campaign"
    );
    let others_done = r
        .last
        .clusters
        .iter()
        .filter(|c| c.stage.as_deref() == Some("prod") && c.name != "c26")
        .filter(|c| matches!(c.step, Step::Succeeded { .. }))
        .count();
    assert!(
        others_done > 0,
        "prod clusters running at the failure were observed to success"
    );
    assert!(
        r.finished_tick.is_some_and(|t| t > failed),
        "finished after the failure"
    );
}

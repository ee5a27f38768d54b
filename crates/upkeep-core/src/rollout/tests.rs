//! Table tests of the rollout rules, one reason per case; the month-long fleet simulation is
//! in `simulation.rs`.

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use super::*;
use crate::schedule::{
    ClosedReason, Exclusion, ExclusionScope, Freeze, RRule, Schedule, ScheduleSpec, TimeSpec,
    Window,
};
use crate::selector::{Matcher, Matchers};
use crate::version::Version;

pub(super) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub(super) fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

pub(super) fn names(re: &str) -> Matchers {
    Matchers(vec![Matcher::new(None, None, re, true).unwrap()])
}

pub(super) fn label(key: &str, value: &str) -> Matchers {
    Matchers(vec![
        Matcher::new(None, Some(key.to_owned()), value, false).unwrap(),
    ])
}

pub(super) fn stage(name: &str, matchers: Matchers) -> StageSpec {
    StageSpec {
        name: name.to_owned(),
        matchers,
        max_concurrency: None,
        soak: None,
    }
}

pub(super) fn campaign(target: &str) -> Campaign {
    Campaign {
        name: "cu".to_owned(),
        target: Version::parse(target),
        no_target: None,
        provider: None,
        start_time: None,
        suspended: false,
        matchers: names(".*"),
        stages: Vec::new(),
        max_concurrency: None,
        timeout: hours(2),
        failure_policy: FailurePolicy::Halt,
        after: Vec::new(),
        announce_before: None,
    }
}

pub(super) fn cl<'a>(name: &str, current: Option<&str>) -> ClusterInput<'a> {
    ClusterInput {
        name: name.to_owned(),
        labels: std::borrow::Cow::default(),
        current: current.map(str::to_owned),
        provider: None,
        freeze: None,
        schedule: None,
        observed: Observed::default(),
        progress: None,
        elsewhere: Elsewhere::default(),
    }
}

fn labelled<'a>(name: &str, current: &str, key: &str, value: &str) -> ClusterInput<'a> {
    let mut c = cl(name, Some(current));
    c.labels.to_mut().insert(key.to_owned(), value.to_owned());
    c
}

pub(super) fn progress(state: ClusterPhase, triggered: Option<Timestamp>) -> Progress {
    Progress {
        state,
        triggered_at: triggered,
        // The change was acknowledged when it was recorded, unless a case says otherwise.
        acknowledged_at: triggered,
        finished_at: None,
        from: Some("1.0.0".to_owned()),
        reason: None,
        announced_at: None,
    }
}

fn running<'a>(
    name: &str,
    current: &str,
    state: ClusterPhase,
    triggered: Timestamp,
    observed: Observed,
) -> ClusterInput<'a> {
    let mut c = cl(name, Some(current));
    c.progress = Some(progress(state, Some(triggered)));
    c.observed = observed;
    c
}

fn finished<'a>(
    name: &str,
    state: ClusterPhase,
    at: Timestamp,
    reason: Option<&str>,
) -> ClusterInput<'a> {
    let mut c = cl(name, Some("1.1.0"));
    let mut p = progress(state, Some(at - hours(1)));
    p.finished_at = Some(at);
    p.reason = reason.map(str::to_owned);
    c.progress = Some(p);
    c
}

pub(super) fn ready_since(t: Timestamp) -> Observed {
    Observed {
        ready: Some(true),
        control_plane_ready: Some(true),
        last_transition: Some(t),
        ..Observed::default()
    }
}

fn with_schedule<'a>(mut c: ClusterInput<'a>, name: &'a str, s: &'a Schedule) -> ClusterInput<'a> {
    c.schedule = Some((name, s));
    c
}

pub(super) fn spec(tz: &str) -> ScheduleSpec {
    ScheduleSpec {
        time_zone: TimeZone::get(tz).unwrap(),
        always_allowed: false,
        windows: Vec::new(),
        exclusions: Vec::new(),
        freeze: None,
    }
}

pub(super) fn window(name: &str, start: &str, end: &str, rule: Option<&str>) -> Window {
    Window {
        name: name.to_owned(),
        start: TimeSpec::parse(start).unwrap(),
        end: TimeSpec::parse(end).unwrap(),
        recurrence: rule.map(|r| RRule::parse(r).unwrap()),
    }
}

pub(super) fn exclusion(name: &str, start: &str, end: &str, scope: ExclusionScope) -> Exclusion {
    Exclusion {
        name: name.to_owned(),
        start: TimeSpec::parse(start).unwrap(),
        end: TimeSpec::parse(end).unwrap(),
        recurrence: None,
        scope,
    }
}

/// Tuesday noon UTC; the weekly window below opens on Saturday 22:00 Berlin.
const NOW: &str = "2026-11-10T12:00:00Z";

fn weekly() -> Schedule {
    let mut s = spec("Europe/Berlin");
    s.windows.push(window(
        "saturday-night",
        "2026-01-03T22:00:00",
        "2026-01-04T04:00:00",
        Some("FREQ=WEEKLY;BYDAY=SA"),
    ));
    Schedule::new(s).unwrap()
}

fn no_minor() -> Schedule {
    let mut s = spec("Europe/Berlin");
    s.always_allowed = true;
    s.exclusions.push(exclusion(
        "release-week",
        "2026-11-09T00:00:00",
        "2026-11-12T00:00:00",
        ExclusionScope::NoMinorUpgrades,
    ));
    Schedule::new(s).unwrap()
}

fn frozen_schedule() -> Schedule {
    let mut s = spec("UTC");
    s.always_allowed = true;
    s.freeze = Some(Freeze {
        until: TimeSpec::parse("2026-11-20T00:00:00Z").unwrap(),
        reason: Some("year-end".to_owned()),
    });
    Schedule::new(s).unwrap()
}

struct Case<'a> {
    why: &'static str,
    campaign: Campaign,
    clusters: Vec<ClusterInput<'a>>,
    want: Vec<(&'static str, Step)>,
}

fn case<'a>(
    why: &'static str,
    campaign: Campaign,
    clusters: Vec<ClusterInput<'a>>,
    want: Vec<(&'static str, Step)>,
) -> Case<'a> {
    Case {
        why,
        campaign,
        clusters,
        want,
    }
}

fn waiting(reason: WaitReason, until: Option<Timestamp>) -> Step {
    Step::Waiting { reason, until }
}

fn find<'p>(p: &'p Plan, name: &str) -> Option<&'p ClusterPlan> {
    p.clusters.iter().find(|c| c.name == name)
}

#[test]
#[allow(clippy::too_many_lines)]
fn steps_table() {
    let now = ts(NOW);
    let t0 = now - hours(1);
    let (weekly, no_minor, frozen) = (weekly(), no_minor(), frozen_schedule());
    let sat_open = ts("2026-11-14T21:00:00Z");
    let excl_end = ts("2026-11-11T23:00:00Z");

    let suspended = Campaign {
        suspended: true,
        ..campaign("1.1.0")
    };
    let no_target = Campaign {
        target: None,
        ..campaign("1.1.0")
    };
    let starts_later = Campaign {
        start_time: Some(now + hours(1)),
        ..campaign("1.1.0")
    };
    let started = Campaign {
        start_time: Some(now - hours(1)),
        ..campaign("1.1.0")
    };
    let everything_held = Campaign {
        suspended: true,
        target: None,
        start_time: Some(now + hours(1)),
        ..campaign("1.1.0")
    };
    let after = |finished: Option<(Outcome, Timestamp)>| Campaign {
        after: vec![AfterDep {
            name: "base".to_owned(),
            soak: Some(hours(24)),
            finished,
        }],
        ..campaign("1.1.0")
    };
    let staged = |soak: Option<SignedDuration>, policy: FailurePolicy| Campaign {
        stages: vec![
            StageSpec {
                soak,
                ..stage("dev", label("stage", "dev"))
            },
            stage("prod", label("stage", "prod")),
        ],
        failure_policy: policy,
        ..campaign("1.1.0")
    };
    let continue_ = Campaign {
        failure_policy: FailurePolicy::Continue,
        ..campaign("1.1.0")
    };
    let one_at_a_time = Campaign {
        stages: vec![StageSpec {
            max_concurrency: Some(1),
            ..stage("all", names(".*"))
        }],
        ..campaign("1.1.0")
    };
    let two = Campaign {
        max_concurrency: Some(2),
        ..campaign("1.1.0")
    };
    let stage_overrides = Campaign {
        max_concurrency: Some(1),
        stages: vec![StageSpec {
            max_concurrency: Some(3),
            ..stage("all", names(".*"))
        }],
        ..campaign("1.1.0")
    };
    let prod_only = Campaign {
        matchers: names("prod-.*"),
        ..campaign("1.1.0")
    };
    let for_aws = Campaign {
        provider: Some("aws".to_owned()),
        ..campaign("1.1.0")
    };
    let refused = Campaign {
        target: None,
        no_target: Some("Release aws-1.1.0 is deprecated".to_owned()),
        ..campaign("1.1.0")
    };
    let of = |name: &str, current: &str, provider: Option<&str>| {
        let mut c = cl(name, Some(current));
        c.provider = provider.map(ToOwned::to_owned);
        c
    };
    let frozen_cluster = |until: Timestamp| {
        let mut c = cl("a", Some("1.0.0"));
        c.freeze = Some((until, Some("incident 42".to_owned())));
        c
    };
    let fail = |reason: FailReason| Step::Failed { reason, at: now };
    let sub_second = ts("2026-11-10T11:00:00.700Z");
    let flag = |f: fn(&mut Observed)| {
        let mut o = ready_since(now);
        f(&mut o);
        o
    };

    let cases = vec![
        case(
            "a release for one provider: its clusters start, others are skipped naming both",
            for_aws,
            vec![
                of("a", "1.0.0", Some("aws")),
                of("b", "1.0.0", Some("azure")),
                of("c", "1.0.0", None),
                of("d", "1.1.0", Some("aws")),
            ],
            vec![
                ("a", Step::Trigger),
                (
                    "b",
                    Step::Skipped {
                        reason: SkipReason::OtherProvider {
                            cluster: Some("azure".into()),
                            release: "aws".into(),
                        },
                    },
                ),
                (
                    "c",
                    Step::Skipped {
                        reason: SkipReason::OtherProvider {
                            cluster: None,
                            release: "aws".into(),
                        },
                    },
                ),
                (
                    "d",
                    Step::Skipped {
                        reason: SkipReason::AlreadyAtTarget {
                            current: "1.1.0".into(),
                        },
                    },
                ),
            ],
        ),
        case(
            "a release without a provider: every provider, and none, may start",
            campaign("1.1.0"),
            vec![of("a", "1.0.0", Some("azure")), of("b", "1.0.0", None)],
            vec![("a", Step::Trigger), ("b", Step::Trigger)],
        ),
        case(
            "a refused or missing release: everyone waits with the shell's reason",
            refused,
            vec![of("a", "1.0.0", Some("aws"))],
            vec![(
                "a",
                waiting(
                    WaitReason::NoTarget {
                        why: Some("Release aws-1.1.0 is deprecated".into()),
                    },
                    None,
                ),
            )],
        ),
        case(
            "below the target with no gate: start now",
            campaign("1.1.0"),
            vec![cl("a", Some("1.0.0"))],
            vec![("a", Step::Trigger)],
        ),
        case(
            "equal to the target: nothing to do",
            campaign("1.1.0"),
            vec![cl("a", Some("1.1.0"))],
            vec![(
                "a",
                Step::Skipped {
                    reason: SkipReason::AlreadyAtTarget {
                        current: "1.1.0".into(),
                    },
                },
            )],
        ),
        case(
            "above the target: skipped, never downgraded (raw value kept)",
            campaign("1.1.0"),
            vec![cl("a", Some("v1.2.0"))],
            vec![(
                "a",
                Step::Skipped {
                    reason: SkipReason::AlreadyAtTarget {
                        current: "v1.2.0".into(),
                    },
                },
            )],
        ),
        case(
            "a missing version place is not a version",
            campaign("1.1.0"),
            vec![cl("a", None)],
            vec![(
                "a",
                Step::Skipped {
                    reason: SkipReason::NotAVersion { current: None },
                },
            )],
        ),
        case(
            "a label that is not a version is skipped, not guessed",
            campaign("1.1.0"),
            vec![cl("a", Some("latest"))],
            vec![(
                "a",
                Step::Skipped {
                    reason: SkipReason::NotAVersion {
                        current: Some("latest".into()),
                    },
                },
            )],
        ),
        case(
            "with stages, a selected cluster in no stage is skipped",
            staged(None, FailurePolicy::Halt),
            vec![labelled("x", "1.0.0", "stage", "qa")],
            vec![(
                "x",
                Step::Skipped {
                    reason: SkipReason::NotInAnyStage,
                },
            )],
        ),
        case(
            "suspend holds new starts; a running one is still observed to success",
            suspended.clone(),
            vec![
                cl("a", Some("1.0.0")),
                running("b", "1.1.0", ClusterPhase::Upgrading, t0, ready_since(t0)),
            ],
            vec![
                ("a", waiting(WaitReason::Suspended, None)),
                ("b", Step::Succeeded { at: now }),
            ],
        ),
        case(
            "suspend outranks no target and start time",
            everything_held,
            vec![cl("a", Some("1.0.0"))],
            vec![("a", waiting(WaitReason::Suspended, None))],
        ),
        case(
            "no target: everyone waits, even a cluster that may be above it",
            no_target,
            vec![cl("a", Some("1.0.0")), cl("b", Some("99.0.0"))],
            vec![
                ("a", waiting(WaitReason::NoTarget { why: None }, None)),
                ("b", waiting(WaitReason::NoTarget { why: None }, None)),
            ],
        ),
        case(
            "before the start time: wait until it",
            starts_later,
            vec![cl("a", Some("1.0.0"))],
            vec![(
                "a",
                waiting(
                    WaitReason::StartTime { at: now + hours(1) },
                    Some(now + hours(1)),
                ),
            )],
        ),
        case(
            "after the start time: start",
            started,
            vec![cl("a", Some("1.0.0"))],
            vec![("a", Step::Trigger)],
        ),
        case(
            "after: the dependency has not finished (or is not found)",
            after(None),
            vec![cl("a", Some("1.0.0"))],
            vec![(
                "a",
                waiting(
                    WaitReason::After {
                        upgrade: "base".into(),
                        soak_until: None,
                        failed: false,
                    },
                    None,
                ),
            )],
        ),
        case(
            "after: a failed dependency holds forever",
            after(Some((Outcome::Failed, now - hours(48)))),
            vec![cl("a", Some("1.0.0"))],
            vec![(
                "a",
                waiting(
                    WaitReason::After {
                        upgrade: "base".into(),
                        soak_until: None,
                        failed: true,
                    },
                    None,
                ),
            )],
        ),
        case(
            "after: succeeded an hour ago, soaking 24h",
            after(Some((Outcome::Succeeded, now - hours(1)))),
            vec![cl("a", Some("1.0.0"))],
            vec![(
                "a",
                waiting(
                    WaitReason::After {
                        upgrade: "base".into(),
                        soak_until: Some(now + hours(23)),
                        failed: false,
                    },
                    Some(now + hours(23)),
                ),
            )],
        ),
        case(
            "after: soaked exactly long enough",
            after(Some((Outcome::Succeeded, now - hours(24)))),
            vec![cl("a", Some("1.0.0"))],
            vec![("a", Step::Trigger)],
        ),
        case(
            "stage: prod waits while a dev cluster still upgrades",
            staged(None, FailurePolicy::Halt),
            vec![
                {
                    let mut c = running(
                        "d1",
                        "1.1.0",
                        ClusterPhase::Upgrading,
                        t0,
                        Observed::default(),
                    );
                    c.labels.to_mut().insert("stage".into(), "dev".into());
                    c
                },
                labelled("p1", "1.0.0", "stage", "prod"),
            ],
            vec![
                ("d1", Step::Upgrading),
                (
                    "p1",
                    waiting(
                        WaitReason::Stage {
                            stage: "dev".into(),
                            soak_until: None,
                        },
                        None,
                    ),
                ),
            ],
        ),
        case(
            "stage: dev done an hour ago, soaking 24h",
            staged(Some(hours(24)), FailurePolicy::Halt),
            vec![
                {
                    let mut c = finished("d1", ClusterPhase::Succeeded, now - hours(1), None);
                    c.labels.to_mut().insert("stage".into(), "dev".into());
                    c
                },
                labelled("p1", "1.0.0", "stage", "prod"),
            ],
            vec![(
                "p1",
                waiting(
                    WaitReason::Stage {
                        stage: "dev".into(),
                        soak_until: Some(now + hours(23)),
                    },
                    Some(now + hours(23)),
                ),
            )],
        ),
        case(
            "stage: soak over, prod starts",
            staged(Some(hours(24)), FailurePolicy::Halt),
            vec![
                {
                    let mut c = finished("d1", ClusterPhase::Succeeded, now - hours(25), None);
                    c.labels.to_mut().insert("stage".into(), "dev".into());
                    c
                },
                labelled("p1", "1.0.0", "stage", "prod"),
            ],
            vec![("p1", Step::Trigger)],
        ),
        case(
            "stage soak counts from the LAST finish in the stage",
            staged(Some(hours(24)), FailurePolicy::Halt),
            vec![
                {
                    let mut c = finished("d1", ClusterPhase::Succeeded, now - hours(30), None);
                    c.labels.to_mut().insert("stage".into(), "dev".into());
                    c
                },
                {
                    let mut c = finished("d2", ClusterPhase::Succeeded, now - hours(2), None);
                    c.labels.to_mut().insert("stage".into(), "dev".into());
                    c
                },
                labelled("p1", "1.0.0", "stage", "prod"),
            ],
            vec![(
                "p1",
                waiting(
                    WaitReason::Stage {
                        stage: "dev".into(),
                        soak_until: Some(now + hours(22)),
                    },
                    Some(now + hours(22)),
                ),
            )],
        ),
        case(
            "Continue: a failed dev cluster finishes its stage, prod starts",
            staged(None, FailurePolicy::Continue),
            vec![
                {
                    let mut c = finished("d1", ClusterPhase::Failed, now - hours(1), Some("boom"));
                    c.labels.to_mut().insert("stage".into(), "dev".into());
                    c
                },
                labelled("p1", "1.0.0", "stage", "prod"),
            ],
            vec![
                (
                    "d1",
                    Step::Failed {
                        reason: FailReason::Recorded("boom".into()),
                        at: now - hours(1),
                    },
                ),
                ("p1", Step::Trigger),
            ],
        ),
        case(
            "Halt: after a failure nothing new starts, running ones are observed",
            campaign("1.1.0"),
            vec![
                finished("a", ClusterPhase::Failed, now - hours(1), Some("boom")),
                cl("b", Some("1.0.0")),
                running(
                    "c",
                    "1.1.0",
                    ClusterPhase::Upgrading,
                    t0,
                    Observed::default(),
                ),
            ],
            vec![
                (
                    "b",
                    waiting(WaitReason::Halted { failed: "a".into() }, None),
                ),
                ("c", Step::Upgrading),
            ],
        ),
        case(
            "Halt: a failure observed now halts the rest in the same plan; with nothing running the campaign finishes and b is Halted, not Waiting",
            campaign("1.1.0"),
            vec![
                {
                    let mut c = running(
                        "a",
                        "1.1.0",
                        ClusterPhase::Upgrading,
                        t0,
                        Observed::default(),
                    );
                    c.observed.failure = Some("InfrastructureFailed: quota".into());
                    c
                },
                cl("b", Some("1.0.0")),
            ],
            vec![
                (
                    "a",
                    fail(FailReason::Condition("InfrastructureFailed: quota".into())),
                ),
                ("b", Step::Halted { failed: "a".into() }),
            ],
        ),
        case(
            "Continue: a failure does not stop the others",
            continue_,
            vec![
                finished("a", ClusterPhase::Failed, now - hours(1), Some("boom")),
                cl("b", Some("1.0.0")),
            ],
            vec![("b", Step::Trigger)],
        ),
        case(
            "freeze annotation holds until its end",
            campaign("1.1.0"),
            vec![frozen_cluster(now + hours(48))],
            vec![(
                "a",
                waiting(
                    WaitReason::Frozen {
                        until: now + hours(48),
                        reason: Some("incident 42".into()),
                    },
                    Some(now + hours(48)),
                ),
            )],
        ),
        case(
            "an expired freeze annotation holds nothing",
            campaign("1.1.0"),
            vec![frozen_cluster(now)],
            vec![("a", Step::Trigger)],
        ),
        case(
            "outside every window: wait for the Saturday-night opening",
            campaign("1.1.0"),
            vec![with_schedule(cl("a", Some("1.0.0")), "weekly", &weekly)],
            vec![(
                "a",
                waiting(
                    WaitReason::Window {
                        schedule: "weekly".into(),
                        reason: ClosedReason::OutsideWindows,
                        next_open: Some(sat_open),
                    },
                    Some(sat_open),
                ),
            )],
        ),
        case(
            "windows gate only the start: a running upgrade keeps going when closed",
            campaign("1.1.0"),
            vec![with_schedule(
                running(
                    "a",
                    "1.1.0",
                    ClusterPhase::Upgrading,
                    t0,
                    Observed::default(),
                ),
                "weekly",
                &weekly,
            )],
            vec![("a", Step::Upgrading)],
        ),
        case(
            "a NoMinorUpgrades exclusion holds a minor upgrade",
            campaign("1.1.0"),
            vec![with_schedule(cl("a", Some("1.0.0")), "eu", &no_minor)],
            vec![(
                "a",
                waiting(
                    WaitReason::Window {
                        schedule: "eu".into(),
                        reason: ClosedReason::Excluded {
                            name: "release-week".into(),
                            scope: ExclusionScope::NoMinorUpgrades,
                            until: excl_end,
                        },
                        next_open: Some(excl_end),
                    },
                    Some(excl_end),
                ),
            )],
        ),
        case(
            "a NoMinorUpgrades exclusion lets a patch through",
            campaign("1.0.1"),
            vec![with_schedule(cl("a", Some("1.0.0")), "eu", &no_minor)],
            vec![("a", Step::Trigger)],
        ),
        case(
            "a schedule freeze comes as Window{Frozen}, not as the annotation",
            campaign("1.1.0"),
            vec![with_schedule(cl("a", Some("1.0.0")), "frozen", &frozen)],
            vec![(
                "a",
                waiting(
                    WaitReason::Window {
                        schedule: "frozen".into(),
                        reason: ClosedReason::Frozen {
                            until: ts("2026-11-20T00:00:00Z"),
                            reason: Some("year-end".into()),
                        },
                        next_open: Some(ts("2026-11-20T00:00:00Z")),
                    },
                    Some(ts("2026-11-20T00:00:00Z")),
                ),
            )],
        ),
        case(
            "the annotation freeze is checked before the schedule",
            campaign("1.1.0"),
            vec![{
                let mut c = with_schedule(frozen_cluster(now + hours(1)), "weekly", &weekly);
                c.freeze = Some((now + hours(1), None));
                c
            }],
            vec![(
                "a",
                waiting(
                    WaitReason::Frozen {
                        until: now + hours(1),
                        reason: None,
                    },
                    Some(now + hours(1)),
                ),
            )],
        ),
        case(
            "stage maxConcurrency 1 with one Triggered: the next waits",
            one_at_a_time,
            vec![
                running(
                    "a",
                    "1.0.0",
                    ClusterPhase::Triggered,
                    t0,
                    Observed::default(),
                ),
                cl("b", Some("1.0.0")),
            ],
            vec![
                ("a", Step::Triggered),
                (
                    "b",
                    waiting(
                        WaitReason::Concurrency {
                            limit: 1,
                            running: 1,
                        },
                        None,
                    ),
                ),
            ],
        ),
        case(
            "campaign maxConcurrency is the default: the first two by name start",
            two,
            vec![
                cl("c", Some("1.0.0")),
                cl("a", Some("1.0.0")),
                cl("b", Some("1.0.0")),
            ],
            vec![
                ("a", Step::Trigger),
                ("b", Step::Trigger),
                (
                    "c",
                    waiting(
                        WaitReason::Concurrency {
                            limit: 2,
                            running: 2,
                        },
                        None,
                    ),
                ),
            ],
        ),
        case(
            "a stage's own maxConcurrency overrides the campaign's",
            stage_overrides,
            vec![
                cl("a", Some("1.0.0")),
                cl("b", Some("1.0.0")),
                cl("c", Some("1.0.0")),
            ],
            vec![
                ("a", Step::Trigger),
                ("b", Step::Trigger),
                ("c", Step::Trigger),
            ],
        ),
        case(
            "Triggered, the cluster does not show the target yet: re-apply",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.0.0",
                ClusterPhase::Triggered,
                t0,
                ready_since(now),
            )],
            vec![("a", Step::Triggered)],
        ),
        case(
            "shows the target, not ready yet: Upgrading",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Triggered,
                t0,
                Observed::default(),
            )],
            vec![("a", Step::Upgrading)],
        ),
        case(
            "ack rule: Ready since before the trigger never transitioned: still Upgrading",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Upgrading,
                t0,
                ready_since(t0 - hours(5)),
            )],
            vec![("a", Step::Upgrading)],
        ),
        case(
            "ack rule: a transition in the trigger's second counts (status times are whole seconds)",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Upgrading,
                sub_second,
                ready_since(ts("2026-11-10T11:00:00Z")),
            )],
            vec![("a", Step::Succeeded { at: now })],
        ),
        case(
            "Triggered straight to Succeeded when the target shows and it is ready since",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Triggered,
                t0,
                ready_since(now),
            )],
            vec![("a", Step::Succeeded { at: now })],
        ),
        case(
            "ready but still rolling out: Upgrading",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Upgrading,
                t0,
                flag(|o| o.rolling_out = Some(true)),
            )],
            vec![("a", Step::Upgrading)],
        ),
        case(
            "ready but control plane not ready: Upgrading",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Upgrading,
                t0,
                flag(|o| o.control_plane_ready = Some(false)),
            )],
            vec![("a", Step::Upgrading)],
        ),
        case(
            "ready but topology not reconciled: Upgrading",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Upgrading,
                t0,
                flag(|o| o.topology_reconciled = Some(false)),
            )],
            vec![("a", Step::Upgrading)],
        ),
        case(
            "absent optional conditions do not hold success back",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Upgrading,
                t0,
                Observed {
                    ready: Some(true),
                    last_transition: Some(now),
                    ..Observed::default()
                },
            )],
            vec![("a", Step::Succeeded { at: now })],
        ),
        case(
            "timeout: exactly triggered_at + timeout fails",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Upgrading,
                now - hours(2),
                Observed::default(),
            )],
            vec![("a", fail(FailReason::Timeout { after: hours(2) }))],
        ),
        case(
            "timeout also applies to a Triggered cluster that never showed the target",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.0.0",
                ClusterPhase::Triggered,
                now - hours(3),
                Observed::default(),
            )],
            vec![("a", fail(FailReason::Timeout { after: hours(2) }))],
        ),
        case(
            "a late observation of a ready cluster is a success, not a timeout",
            campaign("1.1.0"),
            vec![running(
                "a",
                "1.1.0",
                ClusterPhase::Upgrading,
                now - hours(3),
                ready_since(now - hours(2)),
            )],
            vec![("a", Step::Succeeded { at: now })],
        ),
        case(
            "terminal states are kept with their finish time and reason",
            campaign("1.1.0"),
            vec![
                {
                    // Rolled back by someone since: still Succeeded for this campaign.
                    let mut c = finished("a", ClusterPhase::Succeeded, now - hours(5), None);
                    c.current = Some("1.0.0".into());
                    c
                },
                finished(
                    "b",
                    ClusterPhase::Skipped,
                    now - hours(5),
                    Some("already at 1.1.0"),
                ),
            ],
            vec![
                ("a", Step::Succeeded { at: now - hours(5) }),
                (
                    "b",
                    Step::Skipped {
                        reason: SkipReason::Recorded("already at 1.1.0".into()),
                    },
                ),
            ],
        ),
        case(
            "a cluster no longer selected but running is still observed",
            prod_only,
            vec![
                running(
                    "dev-1",
                    "1.1.0",
                    ClusterPhase::Upgrading,
                    t0,
                    Observed::default(),
                ),
                cl("prod-1", Some("1.0.0")),
            ],
            vec![("dev-1", Step::Upgrading), ("prod-1", Step::Trigger)],
        ),
    ];
    for c in cases {
        let p = plan(&c.campaign, &c.clusters, now);
        for (name, want) in &c.want {
            let got = find(&p, name).unwrap_or_else(|| panic!("{}: {name} not in plan", c.why));
            assert_eq!(&got.step, want, "{}: {name}", c.why);
        }
    }
}

/// A running cluster whose change was recorded at `triggered` and acknowledged at `acked`
/// (`None`: refused or not made yet).
fn acked<'a>(
    name: &str,
    current: &str,
    state: ClusterPhase,
    triggered: Timestamp,
    acked: Option<Timestamp>,
) -> ClusterInput<'a> {
    let mut c = running(name, current, state, triggered, Observed::default());
    if let Some(p) = &mut c.progress {
        p.acknowledged_at = acked;
    }
    c
}

fn held<'a>(mut c: ClusterInput<'a>, by: &str) -> ClusterInput<'a> {
    c.elsewhere.held_by = Some(by.to_owned());
    c
}

fn failed_in<'a>(mut c: ClusterInput<'a>, by: &str, to: Option<&str>) -> ClusterInput<'a> {
    c.elsewhere.failed_in = Some((by.to_owned(), to.map(str::to_owned)));
    c
}

/// Honest starts (the timeout runs from the acknowledged change), overlaps between
/// campaigns, "already at the target" only when it is true, and Halted under a finished
/// campaign: (why, campaign, clusters, wanted steps, wanted campaign state).
#[test]
#[allow(clippy::too_many_lines)]
fn lifecycle_table() {
    let now = ts(NOW);
    let timeout = hours(2);
    let long_ago = now - hours(5);
    let timed_out = Step::Failed {
        reason: FailReason::Timeout { after: timeout },
        at: now,
    };
    let overlap = |by: &str| {
        waiting(
            WaitReason::Overlap {
                upgrade: by.to_owned(),
            },
            None,
        )
    };
    let not_healthy = |why: &str| Step::Failed {
        reason: FailReason::AtTargetNotHealthy {
            current: "1.1.0".into(),
            why: why.into(),
        },
        at: now,
    };
    let broken = {
        let mut c = cl("a", Some("1.1.0"));
        c.observed.failure = Some("ControlPlaneFailed: etcd".into());
        c
    };
    let halted_progress = {
        let mut c = cl("b", Some("1.0.0"));
        c.progress = Some(progress(ClusterPhase::Halted, None));
        c
    };
    let cases: Vec<(Case<'_>, CampaignState)> = vec![
        (
            case(
                "a refused change (no acknowledgement) is not a start: no timeout however long ago the trigger was recorded",
                campaign("1.1.0"),
                vec![acked("a", "1.0.0", ClusterPhase::Triggered, long_ago, None)],
                vec![("a", Step::Triggered)],
            ),
            CampaignState::Running,
        ),
        (
            case(
                "the timeout runs from the acknowledgement, not from the recorded trigger",
                campaign("1.1.0"),
                vec![acked(
                    "a",
                    "1.0.0",
                    ClusterPhase::Triggered,
                    long_ago,
                    Some(now - hours(1)),
                )],
                vec![("a", Step::Triggered)],
            ),
            CampaignState::Running,
        ),
        (
            case(
                "acknowledged longer ago than the timeout: failed",
                campaign("1.1.0"),
                vec![acked(
                    "a",
                    "1.0.0",
                    ClusterPhase::Triggered,
                    long_ago,
                    Some(now - timeout),
                )],
                vec![("a", timed_out.clone())],
            ),
            CampaignState::Finished,
        ),
        (
            case(
                "an entry recorded before acknowledgements existed, showing the target: the timeout falls back to triggeredAt",
                campaign("1.1.0"),
                vec![acked("a", "1.1.0", ClusterPhase::Upgrading, long_ago, None)],
                vec![("a", timed_out)],
            ),
            CampaignState::Finished,
        ),
        (
            case(
                "held by another active campaign: waits with Overlap naming it, even at the target (that campaign's change may be in flight)",
                campaign("1.1.0"),
                vec![
                    held(cl("a", Some("1.1.0")), "older"),
                    held(cl("b", Some("1.0.0")), "older"),
                    cl("c", Some("1.0.0")),
                ],
                vec![
                    ("a", overlap("older")),
                    ("b", overlap("older")),
                    ("c", Step::Trigger),
                ],
            ),
            CampaignState::Running,
        ),
        (
            case(
                "a campaign-wide gate is the reason before an overlap (the whole campaign waits)",
                Campaign {
                    suspended: true,
                    ..campaign("1.1.0")
                },
                vec![held(cl("a", Some("1.0.0")), "older")],
                vec![("a", waiting(WaitReason::Suspended, None))],
            ),
            CampaignState::Waiting,
        ),
        (
            case(
                "only overlapping clusters: the campaign is not finished and does not start them",
                campaign("1.1.0"),
                vec![held(cl("a", Some("1.0.0")), "older")],
                vec![("a", overlap("older"))],
            ),
            CampaignState::Pending,
        ),
        (
            case(
                "a cluster this campaign already runs is observed whatever other campaigns say",
                campaign("1.1.0"),
                vec![held(
                    acked("a", "1.0.0", ClusterPhase::Triggered, now, Some(now)),
                    "older",
                )],
                vec![("a", Step::Triggered)],
            ),
            CampaignState::Running,
        ),
        (
            case(
                "at the target but reporting a failure is not already at the target",
                campaign("1.1.0"),
                vec![broken],
                vec![(
                    "a",
                    not_healthy("the cluster reports failure: ControlPlaneFailed: etcd"),
                )],
            ),
            CampaignState::Finished,
        ),
        (
            case(
                "at the target another campaign's failed upgrade left it at: not a success",
                campaign("1.1.0"),
                vec![failed_in(cl("a", Some("1.1.0")), "first", Some("v1.1.0"))],
                vec![(
                    "a",
                    not_healthy(
                        "ClusterUpgrade first recorded its upgrade to this version as Failed",
                    ),
                )],
            ),
            CampaignState::Finished,
        ),
        (
            case(
                "another campaign's upgrade to the target failed, but the cluster is ready there now (fixed): already there",
                campaign("1.1.0"),
                vec![{
                    let mut c = failed_in(cl("a", Some("1.1.0")), "first", Some("1.1.0"));
                    c.observed = ready_since(now - hours(1));
                    c
                }],
                vec![(
                    "a",
                    Step::Skipped {
                        reason: SkipReason::AlreadyAtTarget {
                            current: "1.1.0".into(),
                        },
                    },
                )],
            ),
            CampaignState::Finished,
        ),
        (
            case(
                "another campaign failed on a different version; the cluster got to the target since: already there",
                campaign("1.1.0"),
                vec![failed_in(cl("a", Some("1.1.0")), "first", Some("1.0.5"))],
                vec![(
                    "a",
                    Step::Skipped {
                        reason: SkipReason::AlreadyAtTarget {
                            current: "1.1.0".into(),
                        },
                    },
                )],
            ),
            CampaignState::Finished,
        ),
        (
            case(
                "at the target before anyone touched it: already there",
                campaign("1.1.0"),
                vec![cl("a", Some("1.2.0"))],
                vec![(
                    "a",
                    Step::Skipped {
                        reason: SkipReason::AlreadyAtTarget {
                            current: "1.2.0".into(),
                        },
                    },
                )],
            ),
            CampaignState::Finished,
        ),
        (
            case(
                "Halt finished the campaign: what never started is Halted, every stage included",
                Campaign {
                    stages: vec![
                        stage("one", names("a|b")),
                        stage("two", names("c")),
                        stage("three", names("d")),
                    ],
                    ..campaign("1.1.0")
                },
                vec![
                    finished("a", ClusterPhase::Failed, now - hours(1), Some("boom")),
                    cl("b", Some("1.0.0")),
                    cl("c", Some("1.0.0")),
                    cl("d", Some("1.0.0")),
                ],
                vec![
                    ("b", Step::Halted { failed: "a".into() }),
                    ("c", Step::Halted { failed: "a".into() }),
                    ("d", Step::Halted { failed: "a".into() }),
                ],
            ),
            CampaignState::Finished,
        ),
        (
            case(
                "a recorded Halted planned again halts again (the failure still stands)",
                campaign("1.1.0"),
                vec![
                    finished("a", ClusterPhase::Failed, now - hours(1), Some("boom")),
                    halted_progress,
                ],
                vec![("b", Step::Halted { failed: "a".into() })],
            ),
            CampaignState::Finished,
        ),
    ];
    for (c, state) in cases {
        let p = plan(&c.campaign, &c.clusters, now);
        for (name, want) in &c.want {
            let got = find(&p, name).unwrap_or_else(|| panic!("{}: {name} not in plan", c.why));
            assert_eq!(&got.step, want, "{}: {name}", c.why);
        }
        assert_eq!(p.state, state, "{}", c.why);
    }
}

/// Every new state and reason has a stable name and a line.
#[test]
fn lifecycle_words() {
    assert_eq!(ClusterPhase::parse("Halted"), Some(ClusterPhase::Halted));
    assert!(ClusterPhase::Halted.is_terminal());
    let overlap = WaitReason::Overlap {
        upgrade: "first".into(),
    };
    assert_eq!(overlap.name(), "Overlap");
    assert!(
        overlap.to_string().contains("ClusterUpgrade first"),
        "{overlap}"
    );
    let halted = Step::Halted { failed: "a".into() };
    assert_eq!(halted.phase(), ClusterPhase::Halted);
    assert!(
        halted
            .reason()
            .is_some_and(|r| r.contains("cluster a failed")),
        "{halted:?}"
    );
}

#[test]
fn selection_and_stage_names() {
    let now = ts(NOW);
    let c = Campaign {
        matchers: names("prod-.*"),
        stages: vec![stage("eu", names(".*-eu")), stage("rest", names(".*"))],
        ..campaign("1.1.0")
    };
    let clusters = vec![
        cl("prod-us", Some("1.0.0")),
        cl("dev-eu", Some("1.0.0")),
        cl("prod-eu", Some("1.0.0")),
    ];
    let p = plan(&c, &clusters, now);
    let got: Vec<(&str, Option<&str>)> = p
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.stage.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![("prod-eu", Some("eu")), ("prod-us", Some("rest"))],
        "unselected clusters are absent, the rest sorted by name, each in its FIRST matching stage"
    );
    assert_eq!(
        p.clusters[0].from.as_deref(),
        Some("1.0.0"),
        "from is the current version"
    );
    let empty = Campaign {
        matchers: Matchers::default(),
        ..campaign("1.1.0")
    };
    assert!(
        plan(&empty, &clusters, now).clusters.is_empty(),
        "an empty matcher list selects nothing"
    );
}

#[test]
fn input_order_does_not_matter() {
    let now = ts(NOW);
    let c = Campaign {
        max_concurrency: Some(3),
        ..campaign("1.1.0")
    };
    let mut clusters: Vec<ClusterInput<'_>> = (0..12)
        .map(|i| cl(&format!("c{:02}", (i * 7) % 12), Some("1.0.0")))
        .collect();
    let a = plan(&c, &clusters, now);
    clusters.reverse();
    let b = plan(&c, &clusters, now);
    assert_eq!(
        a, b,
        "the same snapshot in another order gives the same plan"
    );
    let triggered: Vec<&str> = a
        .clusters
        .iter()
        .filter(|c| c.step == Step::Trigger)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(triggered, ["c00", "c01", "c02"], "admitted in name order");
}

/// (campaign, clusters, state, outcome, finished_at, reason)
type StateRow<'a> = (
    Campaign,
    Vec<ClusterInput<'a>>,
    CampaignState,
    Option<Outcome>,
    Option<Timestamp>,
    &'a str,
);

// (campaign, clusters, now, next_check, reason)
type CheckRow<'a> = (
    Campaign,
    Vec<ClusterInput<'a>>,
    Timestamp,
    Option<Timestamp>,
    &'a str,
);

// (campaign, cluster, expected_start, announce, next_check, reason)
type AnnounceRow<'a> = (
    Campaign,
    ClusterInput<'a>,
    Option<Timestamp>,
    bool,
    Option<Timestamp>,
    &'a str,
);

fn announced(mut c: ClusterInput<'_>, at: Timestamp) -> ClusterInput<'_> {
    let mut p = progress(ClusterPhase::Waiting, None);
    p.announced_at = Some(at);
    c.progress = Some(p);
    c
}

#[test]
fn campaign_state_table() {
    let now = ts(NOW);
    let t0 = now - hours(1);
    let suspended = Campaign {
        suspended: true,
        ..campaign("1.1.0")
    };
    let weekly = weekly();
    let rows: Vec<StateRow<'_>> = vec![
        (
            campaign("1.1.0"),
            vec![],
            CampaignState::Pending,
            None,
            None,
            "selecting nothing is Pending: clusters may appear later",
        ),
        (
            campaign("1.1.0"),
            vec![with_schedule(cl("a", Some("1.0.0")), "weekly", &weekly)],
            CampaignState::Pending,
            None,
            None,
            "nothing started, clusters wait for their own window",
        ),
        (
            suspended.clone(),
            vec![cl("a", Some("1.0.0"))],
            CampaignState::Waiting,
            None,
            None,
            "nothing started and the whole campaign is held",
        ),
        (
            suspended,
            vec![
                finished("a", ClusterPhase::Succeeded, t0, None),
                cl("b", Some("1.0.0")),
            ],
            CampaignState::Running,
            None,
            None,
            "suspended after some started is still Running",
        ),
        (
            campaign("1.1.0"),
            vec![cl("a", Some("1.0.0"))],
            CampaignState::Running,
            None,
            None,
            "a Trigger makes it Running",
        ),
        (
            campaign("1.1.0"),
            vec![
                finished("a", ClusterPhase::Succeeded, t0, None),
                finished("b", ClusterPhase::Succeeded, now - hours(3), None),
                cl("c", Some("1.1.0")),
            ],
            CampaignState::Finished,
            Some(Outcome::Succeeded),
            Some(t0),
            "all terminal, no failure; finished_at is the latest finish",
        ),
        (
            campaign("1.1.0"),
            vec![cl("a", Some("1.1.0"))],
            CampaignState::Finished,
            Some(Outcome::Succeeded),
            Some(now),
            "everyone already at target: finished now",
        ),
        (
            Campaign {
                failure_policy: FailurePolicy::Continue,
                ..campaign("1.1.0")
            },
            vec![
                finished("a", ClusterPhase::Failed, t0, None),
                finished("b", ClusterPhase::Succeeded, now - hours(3), None),
            ],
            CampaignState::Finished,
            Some(Outcome::Failed),
            Some(t0),
            "any failure makes the outcome Failed",
        ),
        (
            campaign("1.1.0"),
            vec![
                finished("a", ClusterPhase::Failed, t0, None),
                cl("b", Some("1.0.0")),
            ],
            CampaignState::Finished,
            Some(Outcome::Failed),
            Some(t0),
            "Halt with nothing running is Finished while others wait Halted",
        ),
        (
            campaign("1.1.0"),
            vec![
                finished("a", ClusterPhase::Failed, t0, None),
                running(
                    "b",
                    "1.1.0",
                    ClusterPhase::Upgrading,
                    t0,
                    Observed::default(),
                ),
                cl("c", Some("1.0.0")),
            ],
            CampaignState::Running,
            None,
            None,
            "Halt with one still running is not finished until it ends",
        ),
    ];
    for (c, clusters, state, outcome, finished_at, why) in rows {
        let p = plan(&c, &clusters, now);
        assert_eq!(
            (p.state, p.outcome, p.finished_at),
            (state, outcome, finished_at),
            "{why}"
        );
        assert_eq!(
            p.reason.is_some(),
            state == CampaignState::Waiting,
            "{why}: a reason exactly when Waiting"
        );
    }
}

#[test]
fn next_check_and_until() {
    let now = ts(NOW);
    let weekly = weekly();
    let sat_open = ts("2026-11-14T21:00:00Z");
    let sat_close = ts("2026-11-15T03:00:00Z");
    let limited = Campaign {
        max_concurrency: Some(1),
        ..campaign("1.1.0")
    };
    let rows: Vec<CheckRow<'_>> = vec![
        (
            campaign("1.1.0"),
            vec![with_schedule(cl("a", Some("1.0.0")), "w", &weekly)],
            now,
            Some(sat_open),
            "a closed window: requeue at the opening",
        ),
        (
            limited.clone(),
            vec![
                with_schedule(
                    running(
                        "a",
                        "1.0.0",
                        ClusterPhase::Triggered,
                        sat_open,
                        Observed::default(),
                    ),
                    "w",
                    &weekly,
                ),
                with_schedule(cl("b", Some("1.0.0")), "w", &weekly),
            ],
            sat_open + hours(1),
            Some(sat_open + hours(2)),
            "the running one's timeout comes first",
        ),
        (
            Campaign {
                timeout: hours(12),
                ..limited
            },
            vec![
                with_schedule(
                    running(
                        "a",
                        "1.0.0",
                        ClusterPhase::Triggered,
                        sat_open,
                        Observed::default(),
                    ),
                    "w",
                    &weekly,
                ),
                with_schedule(cl("b", Some("1.0.0")), "w", &weekly),
            ],
            sat_open + hours(1),
            Some(sat_close),
            "a cluster held by concurrency changes reason when the window closes",
        ),
        (
            campaign("1.1.0"),
            vec![finished("a", ClusterPhase::Succeeded, now, None)],
            now,
            None,
            "a finished campaign needs no requeue",
        ),
        (
            Campaign {
                suspended: true,
                ..campaign("1.1.0")
            },
            vec![with_schedule(cl("a", Some("1.0.0")), "w", &weekly)],
            now,
            None,
            "only an event (approval) changes a suspended campaign",
        ),
    ];
    for (c, clusters, at, want, why) in rows {
        assert_eq!(plan(&c, &clusters, at).next_check, want, "{why}");
    }
}

#[test]
fn expected_start_and_announce() {
    let now = ts(NOW);
    let weekly = weekly();
    let sat_open = ts("2026-11-14T21:00:00Z");
    let announcing = |before: i64| Campaign {
        announce_before: Some(hours(before)),
        ..campaign("1.1.0")
    };
    let frozen_past_open = {
        let mut c = with_schedule(cl("a", Some("1.0.0")), "w", &weekly);
        c.freeze = Some((sat_open + hours(7), None));
        c
    };
    let rows: Vec<AnnounceRow<'_>> = vec![
        (
            announcing(24),
            with_schedule(cl("a", Some("1.0.0")), "w", &weekly),
            Some(sat_open),
            false,
            Some(sat_open - hours(24)),
            "four days early: not yet announced, requeue at opening - 24h",
        ),
        (
            announcing(24 * 5),
            with_schedule(cl("a", Some("1.0.0")), "w", &weekly),
            Some(sat_open),
            true,
            Some(sat_open),
            "within announce_before: announce now",
        ),
        (
            announcing(24 * 5),
            announced(
                with_schedule(cl("a", Some("1.0.0")), "w", &weekly),
                now - hours(1),
            ),
            Some(sat_open),
            false,
            Some(sat_open),
            "announced once is enough",
        ),
        (
            announcing(1),
            cl("a", Some("1.0.0")),
            Some(now),
            true,
            None,
            "starting now unannounced: announce with the trigger",
        ),
        (
            campaign("1.1.0"),
            with_schedule(cl("a", Some("1.0.0")), "w", &weekly),
            Some(sat_open),
            false,
            Some(sat_open),
            "no announce_before: never announce",
        ),
        (
            announcing(24 * 30),
            frozen_past_open,
            Some(sat_open + hours(24 * 7)),
            true,
            Some(sat_open + hours(7)),
            "a freeze past this week's opening moves the start to next week's",
        ),
        (
            Campaign {
                suspended: true,
                ..announcing(24 * 30)
            },
            with_schedule(cl("a", Some("1.0.0")), "w", &weekly),
            None,
            false,
            None,
            "suspended: the start is not known, nothing to announce",
        ),
    ];
    for (c, cluster, start, announce, next, why) in rows {
        let p = plan(&c, std::slice::from_ref(&cluster), now);
        let got = &p.clusters[0];
        assert_eq!(
            (got.expected_start, got.announce, p.next_check),
            (start, announce, next),
            "{why}"
        );
    }
}

#[test]
fn reasons_read_as_one_line() {
    let t = ts("2026-12-01T01:00:00Z");
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let rows: Vec<(WaitReason, &str, &str)> = vec![
        (
            WaitReason::Suspended,
            "suspended: waiting for approval",
            "approval gate",
        ),
        (
            WaitReason::NoTarget { why: None },
            "target release not resolved yet",
            "releaseRef",
        ),
        (
            WaitReason::NoTarget {
                why: Some("Release aws-29.0.0 is deprecated\n (spec.state)".into()),
            },
            "no target release: Release aws-29.0.0 is deprecated (spec.state)",
            "a refused Release says why, on one line",
        ),
        (
            WaitReason::StartTime { at: t },
            "not before the start time Tue 2026-12-01 02:00 CET",
            "local time of the start",
        ),
        (
            WaitReason::Window {
                schedule: "prod-eu".into(),
                reason: ClosedReason::OutsideWindows,
                next_open: Some(t),
            },
            "window closed (outside every maintenance window, schedule prod-eu) until Tue 2026-12-01 02:00 CET",
            "the brief's example, with describe::closed_reason's words",
        ),
        (
            WaitReason::Window {
                schedule: "prod-eu".into(),
                reason: ClosedReason::OutsideWindows,
                next_open: None,
            },
            "window closed (outside every maintenance window, schedule prod-eu), no opening within 3653 days",
            "no opening in the horizon",
        ),
        (
            WaitReason::Frozen {
                until: t,
                reason: Some("incident".into()),
            },
            "cluster frozen until Tue 2026-12-01 02:00 CET (incident)",
            "annotation freeze, schedule wording",
        ),
        (
            WaitReason::Stage {
                stage: "dev".into(),
                soak_until: None,
            },
            "waiting for stage dev to finish",
            "unfinished stage",
        ),
        (
            WaitReason::Stage {
                stage: "dev".into(),
                soak_until: Some(t),
            },
            "stage dev soaking until Tue 2026-12-01 02:00 CET",
            "stage soak",
        ),
        (
            WaitReason::After {
                upgrade: "base".into(),
                soak_until: None,
                failed: false,
            },
            "after ClusterUpgrade base, which has not succeeded yet",
            "after unfinished",
        ),
        (
            WaitReason::After {
                upgrade: "base".into(),
                soak_until: None,
                failed: true,
            },
            "after ClusterUpgrade base, which failed",
            "after failed",
        ),
        (
            WaitReason::After {
                upgrade: "base".into(),
                soak_until: Some(t),
                failed: false,
            },
            "after ClusterUpgrade base: soaking until Tue 2026-12-01 02:00 CET",
            "after soak",
        ),
        (
            WaitReason::Concurrency {
                limit: 2,
                running: 2,
            },
            "concurrency limit reached (2 of 2 running)",
            "concurrency",
        ),
        (
            WaitReason::Halted { failed: "a".into() },
            "halted: cluster a failed (failurePolicy Halt)",
            "halt",
        ),
    ];
    for (r, want, why) in rows {
        assert_eq!(r.describe(&berlin), want, "{why}");
        let utc = r.to_string();
        assert!(!utc.contains('\n'), "{why}: one line: {utc}");
        if want.contains("CET") {
            assert!(
                utc.contains("Tue 2026-12-01 01:00 UTC"),
                "{why}: Display is UTC: {utc}"
            );
        }
    }
    let others: Vec<(String, &str, &str)> = vec![
        (
            FailReason::Timeout { after: hours(2) }.to_string(),
            "not ready 2h after the trigger",
            "timeout in describe::span words",
        ),
        (
            FailReason::Condition("Failed:\n quota".into()).to_string(),
            "cluster reports failure: Failed: quota",
            "a multi-line provider message is folded onto one line",
        ),
        (
            SkipReason::AlreadyAtTarget {
                current: "1.2.0".into(),
            }
            .to_string(),
            "already at 1.2.0 (at or above the target)",
            "skip at target",
        ),
        (
            SkipReason::NotAVersion {
                current: Some("latest".into()),
            }
            .to_string(),
            "current version \"latest\" is not a version",
            "skip not a version",
        ),
        (
            SkipReason::NotInAnyStage.to_string(),
            "matches no stage of the strategy",
            "skip no stage",
        ),
        (
            SkipReason::OtherProvider {
                cluster: Some("azure".into()),
                release: "aws".into(),
            }
            .to_string(),
            "the release is for provider aws, the cluster's provider is azure",
            "skip other provider: names both",
        ),
        (
            SkipReason::OtherProvider {
                cluster: None,
                release: "aws".into(),
            }
            .to_string(),
            "the release is for provider aws, the cluster's provider is unknown (spec.infrastructureRef.kind)",
            "skip unknown provider: says where it is read",
        ),
    ];
    for (got, want, why) in others {
        assert_eq!(got, want, "{why}");
    }
}

#[test]
fn phases_and_states_round_trip() {
    for p in ClusterPhase::ALL {
        assert_eq!(ClusterPhase::parse(p.as_str()), Some(p), "{p}");
    }
    assert_eq!(
        ClusterPhase::parse("Running"),
        None,
        "unknown states are not guessed"
    );
    for s in [
        CampaignState::Pending,
        CampaignState::Waiting,
        CampaignState::Running,
        CampaignState::Finished,
    ] {
        assert_eq!(CampaignState::parse(s.as_str()), Some(s), "{s}");
    }
    for o in [Outcome::Succeeded, Outcome::Failed] {
        assert_eq!(Outcome::parse(o.as_str()), Some(o), "{o}");
    }
    assert_eq!(
        Step::Trigger.phase(),
        ClusterPhase::Triggered,
        "Trigger records Triggered"
    );
}

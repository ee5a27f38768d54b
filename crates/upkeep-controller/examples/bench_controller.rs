//! The controller benchmark: the real `upkeep controller` binary against the real API server
//! (kube-apiserver 1.20.2 + etcd from `upkeep-testenv`) with thousands of MaintenanceSchedules.
//!
//! Why it is shaped this way:
//! - The controller runs as its own process (the release binary, `--leader-elect=false`), so
//!   `VmRSS`, `VmHWM` and CPU time (`/proc/PID/status`, `/proc/PID/stat`) are the controller's
//!   alone; the API server, etcd and this harness are other processes.
//! - Progress is observed from outside: this harness watches every upkeep object it created
//!   (one watch per kind) and records when each first has a status condition, and when each
//!   schedule of the "coordinated" group first names the window `bench-open` as active. Nothing
//!   is self-reported by the controller except the reconcile counters read from `/metrics` at
//!   the end.
//! - Two phases per size. *Cold start*: every object exists before the controller starts; the
//!   time until all have a status is the initial list plus one reconcile (and one status write)
//!   each. *Window opens*: 60 % of the schedules share one weekly window that opens at the
//!   same instant (`T_open`, written in each schedule's own time zone as wall-clock time); the
//!   controller has requeued each at that boundary, and the time from `T_open` until every one
//!   shows `activeWindow` is the DESIGN.md "window opens" figure. `T_open` is fixed when the
//!   objects are generated, `--open-lead` seconds ahead; when the cold start has not settled
//!   by then the phase is reported as missed, not faked.
//! - Each size runs on a fresh API server, and an idle controller (CRDs, no objects) is
//!   measured first on it, so memory per object is `(RSS − idle RSS) / objects`.
//! - The input is deterministic apart from `T_open` (a fixed xorshift seed): eight IANA zones,
//!   weekly and monthly windows, exclusions with every scope, `alwaysAllowed` schedules, a
//!   freeze, and 1 % invalid specs (a sub-daily RRULE) that must end `Stalled`; plus
//!   `--sources` ChartSources (the quickstart's OCI layouts, no network) with two VersionPolicies
//!   each, so the discovery controllers have real work too.
//!
//! Usage: `bench_controller UPKEEP_BIN CHARTS_DIR LOG_DIR SIZE... [--sources N] [--settle S]
//! [--open-lead S] [--deadline S]`. Prints one JSON object on stdout; progress on stderr.

// A benchmark driver: its output is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jiff::{Timestamp, ToSpan, tz::TimeZone};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};

use serde_json::{Value, json};
use upkeep_testenv::{KubeApiServer, upkeep_crds};

#[path = "bench_support/mod.rs"]
mod support;
use support::{
    Spawned, XorShift, ZONES, applied_objects, ar, client, clock_ticks, create_all_timed,
    idle_memory, open_at, parse_flags, reconcile_counts, report, wait_for, window_opens,
};

const NAMESPACES: usize = 25;
const OPEN_WINDOW: &str = "bench-open";
const LAYOUTS: &[(&str, &str, &str)] = &[
    ("ingress-nginx", ">=4.10.0 <5.0.0", ">=4.0.0"),
    ("cert-manager", "~1.15", ">=1.0.0"),
    ("podinfo", ">=6.5.0-0", ">=6.0.0 <7.0.0"),
    ("cluster-aws", "^29.0.0", ">=28.0.0"),
];

fn main() -> ExitCode {
    support::run_main(run())
}

struct Options {
    upkeep: PathBuf,
    charts: PathBuf,
    logs: PathBuf,
    sizes: Vec<usize>,
    sources: usize,
    settle: Duration,
    open_lead: Option<u64>,
    deadline: Duration,
}

fn parse_args() -> Result<Options, String> {
    let usage = "usage: bench_controller UPKEEP_BIN CHARTS_DIR LOG_DIR SIZE... [--sources N] \
                 [--settle S] [--open-lead S] [--deadline S]";
    let (positional, flags) = parse_flags(usage, &["sources", "settle", "open-lead", "deadline"])?;
    if positional.len() < 4 {
        return Err(usage.to_owned());
    }
    let sizes = positional[3..]
        .iter()
        .map(|s| {
            s.parse::<usize>()
                .ok()
                .filter(|n| *n >= 100)
                .ok_or_else(|| format!("invalid SIZE {s:?} (want a number ≥ 100)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Options {
        upkeep: PathBuf::from(&positional[0]),
        charts: std::fs::canonicalize(&positional[1])
            .map_err(|e| format!("CHARTS_DIR {}: {e}", positional[1]))?,
        logs: PathBuf::from(&positional[2]),
        sizes,
        sources: usize::try_from(flags.get("sources").copied().unwrap_or(100)).unwrap_or(100),
        settle: Duration::from_secs(flags.get("settle").copied().unwrap_or(10)),
        open_lead: flags.get("open-lead").copied(),
        deadline: Duration::from_secs(flags.get("deadline").copied().unwrap_or(600)),
    })
}

async fn run() -> Result<Value, String> {
    let opts = parse_args()?;
    std::fs::create_dir_all(&opts.logs).map_err(|e| format!("{}: {e}", opts.logs.display()))?;
    let tick = clock_ticks();
    let mut sizes = Vec::new();
    for &n in &opts.sizes {
        eprintln!("==> controller: {n} schedules");
        sizes.push(one_size(&opts, n, tick).await?);
    }
    Ok(report(&opts.upkeep, opts.settle, "target_open_s", &sizes))
}

/// What this harness generated, to check the controller's answers against.
struct Expected {
    schedules: usize,
    coordinated: usize,
    invalid: usize,
    always: usize,
    sources: usize,
    policies: usize,
}

#[allow(clippy::cast_precision_loss)]
async fn one_size(opts: &Options, n: usize, tick: f64) -> Result<Value, String> {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds()])
        .await
        .map_err(|e| format!("kube-apiserver with the CRDs: {e}"))?;
    let client = client(&server).await?;
    let workdir = tempfile::tempdir().map_err(|e| format!("workdir: {e}"))?;

    // Idle: the controller with the CRDs and no objects.
    eprintln!("    idle controller (no objects)");
    let idle = Spawned::start(
        &opts.upkeep,
        &opts.logs,
        &server,
        workdir.path(),
        &format!("{n}-idle"),
        &[],
    )?;
    let idle_mem = idle_memory(idle, opts.deadline, opts.settle).await?;

    // Objects.
    let open_at = open_at(opts.open_lead, n)?;
    let (docs, expected) = generate(n, opts.sources, &opts.charts, open_at)?;
    eprintln!(
        "    creating {} objects ({} schedules, {} coordinated to open at {open_at})",
        docs.len(),
        expected.schedules,
        expected.coordinated
    );
    let create_s = create_all_timed(&client, docs).await?;

    // Watch everything before the controller starts.
    let progress = Arc::new(Mutex::new(Progress::default()));
    let opened: Arc<Mutex<HashMap<Key, Instant>>> = Arc::default();
    let watches = [
        (
            "MaintenanceSchedule",
            ar::<upkeep_api::MaintenanceSchedule>(),
        ),
        ("ChartSource", ar::<upkeep_api::ChartSource>()),
        ("VersionPolicy", ar::<upkeep_api::VersionPolicy>()),
    ]
    .map(|(kind, ar)| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        tokio::spawn(track(kind, api, progress.clone(), opened.clone()))
    });
    // The initial lists: every object seen, none with a status yet.
    let total = expected.schedules + expected.sources + expected.policies;
    wait_for(
        opts.deadline,
        "the harness's watches to list every object",
        || progress.lock().is_ok_and(|p| p.seen.len() >= total),
    )
    .await?;

    eprintln!("    cold start");
    let ctl = Spawned::start(
        &opts.upkeep,
        &opts.logs,
        &server,
        workdir.path(),
        &n.to_string(),
        &[],
    )?;
    let spawned = ctl.started;
    let sampler = ctl.sampler();
    let all_statused = |p: &Progress| p.statused.len() >= total;
    wait_for(opts.deadline, "every object to get a status", || {
        progress.lock().is_ok_and(|p| all_statused(&p))
    })
    .await
    .map_err(|e| format!("{e}; {}", ctl.log_hint()))?;
    let cold_cpu = ctl.cpu_s(tick)?;
    let (first, all_sched, all) = {
        let p = progress.lock().map_err(|_| "poisoned")?;
        let since = |t: Instant| t.duration_since(spawned).as_secs_f64();
        let sched: Vec<Instant> = p
            .statused
            .iter()
            .filter(|(k, _)| k.0 == "MaintenanceSchedule")
            .map(|(_, t)| *t)
            .collect();
        (
            since(*p.statused.values().min().ok_or("no status")?),
            since(*sched.iter().max().ok_or("no schedule status")?),
            since(*p.statused.values().max().ok_or("no status")?),
        )
    };
    tokio::time::sleep(opts.settle).await;
    let settled = ctl.memory()?;
    let settled_cpu = ctl.cpu_s(tick)?;
    let cold_peaks = sampler.peaks();

    // Window opens.
    let open = window_opens(
        &ctl,
        tick,
        open_at,
        opts.settle,
        opts.deadline,
        "every coordinated schedule to show the opened window",
        "schedules",
        &opened,
        expected.coordinated,
    )
    .await?;
    let peaks = sampler.peaks();
    let metrics = ctl.metrics().await.unwrap_or_default();
    let check = check(&client, &expected).await?;
    let stopped = ctl.stop()?;
    for w in watches {
        w.abort();
    }

    Ok(json!({
        "schedules": n,
        "expected": {
            "schedules": expected.schedules,
            "coordinated": expected.coordinated,
            "invalid": expected.invalid,
            "always_allowed": expected.always,
            "sources": expected.sources,
            "policies": expected.policies,
            "namespaces": NAMESPACES,
        },
        "create_s": create_s,
        "idle": {"rss_kib": idle_mem.rss_kib, "hwm_kib": idle_mem.hwm_kib},
        "cold": {
            "first_status_s": first,
            "schedules_s": all_sched,
            "all_s": all,
            "per_s": total as f64 / all,
            "reconcile_per_s": if all > first { total as f64 / (all - first) } else { 0.0 },
            "cpu_s": cold_cpu,
            "cpu_settled_s": settled_cpu,
            "rss_kib": settled.rss_kib,
            "hwm_kib": settled.hwm_kib,
            "peak_sockets": cold_peaks.sockets,
            "peak_threads": cold_peaks.threads,
        },
        "open": open,
        "peak_sockets": peaks.sockets,
        "peak_rss_sampled_kib": peaks.rss_kib,
        "reconciles": reconcile_counts(&metrics),
        "check": check,
        "exit": stopped,
    }))
}

// --- input ----------------------------------------------------------------------------------

const WEEKDAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

fn rrule_day(wd: jiff::civil::Weekday) -> &'static str {
    WEEKDAYS[usize::from(wd.to_monday_zero_offset().unsigned_abs())]
}

/// `n` schedules over [`NAMESPACES`] namespaces, `sources` ChartSources with two policies each.
fn generate(
    n: usize,
    sources: usize,
    charts: &Path,
    open_at: Timestamp,
) -> Result<(Vec<(ApiResource, Value)>, Expected), String> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut docs = Vec::new();
    let mut exp = Expected {
        schedules: n,
        coordinated: 0,
        invalid: 0,
        always: 0,
        sources,
        policies: 2 * sources,
    };
    let ns_ar = ar::<k8s_openapi::api::core::v1::Namespace>();
    for k in 0..NAMESPACES {
        docs.push((
            ns_ar.clone(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("fleet-{k:02}")}}),
        ));
    }
    let ms = ar::<upkeep_api::MaintenanceSchedule>();
    let exclusions = [
        json!({"name": "holidays", "startTime": "2026-12-19T00:00:00", "endTime": "2027-01-04T00:00:00", "scope": "NoMinorUpgrades"}),
        json!({"name": "month-end", "startTime": "2026-01-30T00:00:00", "endTime": "2026-01-31T00:00:00", "recurrence": "FREQ=MONTHLY;BYDAY=-1FR", "scope": "NoMajorUpgrades"}),
        json!({"name": "sunday-morning", "startTime": "2026-01-04T06:00:00", "endTime": "2026-01-04T12:00:00", "recurrence": "FREQ=WEEKLY;BYDAY=SU", "scope": "NoMajorUpgrades"}),
        json!({"name": "black-friday", "startTime": "2026-11-26T00:00:00", "endTime": "2026-11-30T23:59:00", "scope": "NoUpgrades"}),
    ];
    let friday = json!({"name": "friday-afternoon", "startTime": "2026-01-02T14:00:00", "endTime": "2026-01-02T23:59:00", "recurrence": "FREQ=WEEKLY;BYDAY=FR", "scope": "NoUpgrades"});
    let fmt_local = |t: jiff::civil::DateTime| t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    for i in 0..n {
        let zone = *rng.pick(ZONES);
        let tz = TimeZone::get(zone).map_err(|e| format!("{zone}: {e}"))?;
        let class = i % 100;
        let mut spec = json!({"timeZone": zone});
        if class < 60 {
            // The coordinated window: opens at `open_at` (this zone's wall clock), weekly, 2 h;
            // another weekly window two days later, so the two never overlap.
            exp.coordinated += 1;
            let local = open_at.to_zoned(tz).datetime();
            let later = local.checked_add(2.days()).map_err(|e| e.to_string())?;
            let end = |t: jiff::civil::DateTime| t.checked_add(2.hours());
            spec["maintenanceWindows"] = json!([
                {"name": OPEN_WINDOW, "startTime": fmt_local(local),
                 "endTime": fmt_local(end(local).map_err(|e| e.to_string())?),
                 "recurrence": format!("FREQ=WEEKLY;BYDAY={}", rrule_day(local.weekday()))},
                {"name": "second", "startTime": fmt_local(later),
                 "endTime": fmt_local(end(later).map_err(|e| e.to_string())?),
                 "recurrence": format!("FREQ=WEEKLY;BYDAY={}", rrule_day(later.weekday()))},
            ]);
            // Exclusions that leave patches allowed at `open_at`.
            spec["maintenanceExclusions"] = json!([exclusions[usize::from(i % 3 == 0)].clone()]);
        } else if class < 85 {
            let (name, start, end, rule) = rng.pick(&[
                (
                    "weeknights",
                    "2026-01-06T22:00:00",
                    "2026-01-07T02:00:00",
                    "FREQ=WEEKLY;BYDAY=TU,TH",
                ),
                (
                    "first-saturday",
                    "2026-01-03T06:00:00",
                    "2026-01-03T12:00:00",
                    "FREQ=MONTHLY;BYDAY=1SA",
                ),
                (
                    "weekend",
                    "2026-01-03T00:00:00",
                    "2026-01-05T00:00:00",
                    "FREQ=WEEKLY;BYDAY=SA",
                ),
                (
                    "biweekly",
                    "2026-01-10T08:00:00",
                    "2026-01-10T14:00:00",
                    "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA",
                ),
                (
                    "nightly",
                    "2026-01-01T01:00:00",
                    "2026-01-01T04:00:00",
                    "FREQ=DAILY",
                ),
            ]);
            spec["maintenanceWindows"] =
                json!([{"name": name, "startTime": start, "endTime": end, "recurrence": rule}]);
            let a = rng.pick(&exclusions).clone();
            let b = rng.pick(&exclusions).clone();
            spec["maintenanceExclusions"] = if a["name"] == b["name"] {
                json!([a])
            } else {
                json!([a, b])
            };
        } else if class < 99 {
            exp.always += 1;
            spec["alwaysAllowed"] = json!(true);
            // A recurring NoUpgrades exclusion, so the allowed interval open now has a start
            // the API server accepts (see the README: without one the controller writes
            // `-9999-01-02T…` and every status write is rejected).
            spec["maintenanceExclusions"] = json!([friday.clone(), rng.pick(&exclusions).clone()]);
            if class == 98 {
                spec["freeze"] = json!({"until": "2026-12-01T00:00:00Z", "reason": "migration"});
            }
        } else {
            exp.invalid += 1;
            spec["maintenanceWindows"] = json!([{"name": "hourly", "startTime": "2026-01-01T00:00:00",
                "endTime": "2026-01-01T00:30:00", "recurrence": "FREQ=HOURLY"}]);
        }
        docs.push((
            ms.clone(),
            json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "MaintenanceSchedule",
                   "metadata": {"name": format!("cluster-{i:05}"), "namespace": format!("fleet-{:02}", i % NAMESPACES),
                                "labels": {"upkeep.dev/bench": "controller"}},
                   "spec": spec}),
        ));
    }
    let cs = ar::<upkeep_api::ChartSource>();
    let vp = ar::<upkeep_api::VersionPolicy>();
    for i in 0..sources {
        let (chart, r1, r2) = LAYOUTS[i % LAYOUTS.len()];
        let ns = format!("fleet-{:02}", i % NAMESPACES);
        let name = format!("{chart}-{i:03}");
        docs.push((
            cs.clone(),
            json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "ChartSource",
                   "metadata": {"name": name, "namespace": ns},
                   "spec": {"url": format!("oci-layout:{}", charts.join(chart).display()), "interval": "10m"}}),
        ));
        for (k, range) in [r1, r2].into_iter().enumerate() {
            docs.push((
                vp.clone(),
                json!({"apiVersion": "upkeep.dev/v1alpha1", "kind": "VersionPolicy",
                       "metadata": {"name": format!("{name}-{k}"), "namespace": ns},
                       "spec": {"sourceRef": {"name": name}, "policy": {"semver": {"range": range}}}}),
            ));
        }
    }
    Ok((docs, exp))
}

// --- observing --------------------------------------------------------------------------------

type Key = (&'static str, String, String);

#[derive(Default)]
struct Progress {
    seen: HashMap<Key, Instant>,
    statused: HashMap<Key, Instant>,
}

/// Watches one kind and records, per object, when it was first listed, first had a status
/// condition, and (schedules) first named [`OPEN_WINDOW`] as active (in `opened`).
async fn track(
    kind: &'static str,
    api: Api<DynamicObject>,
    progress: Arc<Mutex<Progress>>,
    opened_at: Arc<Mutex<HashMap<Key, Instant>>>,
) {
    let mut events = applied_objects(api);
    while let Some(event) = events.next().await {
        let Ok(object) = event else { continue };
        let now = Instant::now();
        let key = (
            kind,
            object.metadata.namespace.clone().unwrap_or_default(),
            object.metadata.name.clone().unwrap_or_default(),
        );
        let status = object.data.get("status");
        let has_condition = status
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
        let opened = status
            .and_then(|s| s.get("activeWindow"))
            .and_then(Value::as_str)
            .is_some_and(|w| w.contains(OPEN_WINDOW));
        if opened && let Ok(mut o) = opened_at.lock() {
            o.entry(key.clone()).or_insert(now);
        }
        let Ok(mut p) = progress.lock() else { return };
        p.seen.entry(key.clone()).or_insert(now);
        if has_condition {
            p.statused.entry(key).or_insert(now);
        }
    }
}

/// After the run: every object's conditions as the generator expects.
async fn check(client: &kube::Client, exp: &Expected) -> Result<Value, String> {
    let mut problems = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, ar, want) in [
        (
            "MaintenanceSchedule",
            ar::<upkeep_api::MaintenanceSchedule>(),
            exp.schedules,
        ),
        ("ChartSource", ar::<upkeep_api::ChartSource>(), exp.sources),
        (
            "VersionPolicy",
            ar::<upkeep_api::VersionPolicy>(),
            exp.policies,
        ),
    ] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing {kind}: {e}"))?;
        if list.items.len() != want {
            problems.push(format!(
                "{kind}: {} objects, created {want}",
                list.items.len()
            ));
        }
        for o in &list.items {
            let conditions = o.data["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let state = |t: &str| {
                conditions
                    .iter()
                    .any(|c| c["type"] == t && c["status"] == "True")
            };
            let label = if state("Ready") {
                "ready"
            } else if state("Stalled") {
                "stalled"
            } else if conditions.is_empty() {
                "no_status"
            } else {
                "other"
            };
            *counts.entry(format!("{kind}/{label}")).or_default() += 1;
            if kind == "MaintenanceSchedule"
                && o.data["status"]["activeWindow"]
                    .as_str()
                    .is_some_and(|w| w.contains(OPEN_WINDOW))
            {
                *counts
                    .entry("MaintenanceSchedule/open".to_owned())
                    .or_default() += 1;
            }
            if kind == "MaintenanceSchedule" && label == "stalled" && problems.len() < 3 {
                // Only the generated invalid specs may be stalled; their name says which.
                let i: usize = o
                    .metadata
                    .name
                    .as_deref()
                    .and_then(|n| n.strip_prefix("cluster-"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if i % 100 != 99 {
                    problems.push(format!(
                        "{} is Stalled: {}",
                        o.metadata.name.as_deref().unwrap_or("?"),
                        conditions
                            .iter()
                            .filter_map(|c| c["message"].as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
            }
        }
    }
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    for (key, want) in [
        ("MaintenanceSchedule/ready", exp.schedules - exp.invalid),
        ("MaintenanceSchedule/stalled", exp.invalid),
        ("ChartSource/ready", exp.sources),
        ("VersionPolicy/ready", exp.policies),
    ] {
        if get(key) != want {
            problems.push(format!("{key}: {}, want {want}", get(key)));
        }
    }
    // Every coordinated schedule has the window open now, and possibly always-allowed ones
    // never name it.
    if get("MaintenanceSchedule/open") != exp.coordinated {
        problems.push(format!(
            "schedules with {OPEN_WINDOW} active: {}, want {}",
            get("MaintenanceSchedule/open"),
            exp.coordinated
        ));
    }
    Ok(json!({"ok": problems.is_empty(), "counts": counts, "problems": problems}))
}

//! The cluster-upgrade benchmark: the real `upkeep controller` binary against the real API
//! server with thousands of Cluster API `Cluster` objects, MaintenanceSchedules and
//! ClusterUpgrades, measuring DESIGN.md's target "5,000 clusters, window opens: all due upgrades
//! triggered ≤ 30 s; RSS ≤ 64 MiB; memory linear in clusters".
//!
//! Why it is shaped this way:
//! - The controller is its own process (release binary, `--leader-elect=false`), so its RSS and
//!   CPU are its own; the API server, etcd and this harness are other processes.
//! - "Triggered" is observed from outside, on the clusters themselves: a watch on every
//!   `Cluster` records when its `release.giantswarm.io/version` label first shows the target.
//!   That is the moment the management cluster (and so Cluster API) sees the upgrade, which
//!   is what a user waits for; the controller's own status is checked afterwards.
//! - The fleet: `SIZE` clusters in one namespace, spread over `--schedules` MaintenanceSchedules
//!   (by `clusterSelector` on a label) and `--upgrades` ClusterUpgrades (by matcher on another
//!   label), so every upgrade spans every schedule and the controller must resolve each
//!   cluster's schedule itself. 60 % of the schedules share one weekly window opening at
//!   `T_open` (written as wall-clock time in each schedule's own zone); the rest open three days
//!   later and must *not* trigger. Each schedule also has a `NoMinorUpgrades` exclusion
//!   elsewhere in the week, so exclusions are evaluated but do not apply (the step is major).
//! - Two phases per size, as in `bench_controller`: cold start (every upgrade reports every one
//!   of its clusters as waiting for its window) and window opens (time from `T_open` until every
//!   due cluster carries the target). An idle controller is measured first on the same API
//!   server, so memory per cluster is `(RSS − idle RSS) / clusters`.
//! - No provider loop runs: triggered clusters stay `Upgrading`. Observation is tested in the
//!   controller's tests; this measures the decision and trigger path at scale.
//!
//! Usage: `bench_clusters UPKEEP_BIN LOG_DIR SIZE... [--schedules N] [--upgrades N] [--settle S]
//! [--open-lead S] [--deadline S]`. Prints one JSON object on stdout; progress on stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
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

const NAMESPACE: &str = "fleet";
const FROM: &str = "29.4.1";
const TARGET: &str = "30.1.0";
const VERSION_LABEL: &str = "release.giantswarm.io/version";
const SCHEDULE_LABEL: &str = "bench.upkeep.dev/schedule";
const GROUP_LABEL: &str = "bench.upkeep.dev/group";
const WEEKDAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

fn main() -> ExitCode {
    support::run_main(run())
}

struct Options {
    upkeep: PathBuf,
    logs: PathBuf,
    sizes: Vec<usize>,
    schedules: usize,
    upgrades: usize,
    settle: Duration,
    open_lead: Option<u64>,
    deadline: Duration,
}

fn parse_args() -> Result<Options, String> {
    let usage = "usage: bench_clusters UPKEEP_BIN LOG_DIR SIZE... [--schedules N] [--upgrades N] \
                 [--settle S] [--open-lead S] [--deadline S]";
    let (positional, flags) = parse_flags(
        usage,
        &["schedules", "upgrades", "settle", "open-lead", "deadline"],
    )?;
    if positional.len() < 3 {
        return Err(usage.to_owned());
    }
    let flag = |name: &str, default: u64| flags.get(name).copied().unwrap_or(default);
    let schedules = usize::try_from(flag("schedules", 50)).unwrap_or(50).max(2);
    let upgrades = usize::try_from(flag("upgrades", 10)).unwrap_or(10).max(1);
    let sizes = positional[2..]
        .iter()
        .map(|s| {
            s.parse::<usize>()
                .ok()
                .filter(|n| *n >= schedules.max(upgrades))
                .ok_or_else(|| format!("invalid SIZE {s:?} (want a number ≥ the schedules)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Options {
        upkeep: PathBuf::from(&positional[0]),
        logs: PathBuf::from(&positional[1]),
        sizes,
        schedules,
        upgrades,
        settle: Duration::from_secs(flag("settle", 10)),
        open_lead: flags.get("open-lead").copied(),
        deadline: Duration::from_secs(flag("deadline", 600)),
    })
}

async fn run() -> Result<Value, String> {
    let opts = parse_args()?;
    std::fs::create_dir_all(&opts.logs).map_err(|e| format!("{}: {e}", opts.logs.display()))?;
    let tick = clock_ticks();
    let mut sizes = Vec::new();
    for &n in &opts.sizes {
        eprintln!(
            "==> clusters: {n} clusters, {} schedules, {} upgrades",
            opts.schedules, opts.upgrades
        );
        sizes.push(one_size(&opts, n, tick).await?);
    }
    Ok(report(
        &opts.upkeep,
        opts.settle,
        "target_triggered_s",
        &sizes,
    ))
}

/// What this harness generated, to check the controller's answers against.
struct Expected {
    clusters: usize,
    due: usize,
    per_upgrade: BTreeMap<String, usize>,
}

fn cluster_ar() -> ApiResource {
    ApiResource {
        group: "cluster.x-k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "cluster.x-k8s.io/v1beta1".into(),
        kind: "Cluster".into(),
        plural: "clusters".into(),
    }
}

#[allow(clippy::cast_precision_loss, clippy::too_many_lines)]
async fn one_size(opts: &Options, n: usize, tick: f64) -> Result<Value, String> {
    let server =
        KubeApiServer::start_with_crds(&[&upkeep_crds(), &upkeep_testenv::cluster_api::crd_yaml()])
            .await
            .map_err(|e| format!("kube-apiserver with the CRDs: {e}"))?;
    let client = client(&server).await?;
    let workdir = tempfile::tempdir().map_err(|e| format!("workdir: {e}"))?;
    let start =
        |tag: String| Spawned::start(&opts.upkeep, &opts.logs, &server, workdir.path(), &tag, &[]);

    eprintln!("    idle controller (no objects)");
    let idle_mem = idle_memory(
        start(format!("clusters-{n}-idle"))?,
        opts.deadline,
        opts.settle,
    )
    .await?;

    let open_at = open_at(opts.open_lead, n)?;
    let (docs, expected) = generate(n, opts.schedules, opts.upgrades, open_at)?;
    eprintln!(
        "    creating {} objects ({n} clusters, {} due when the window opens at {open_at})",
        docs.len(),
        expected.due
    );
    let create_s = create_all_timed(&client, docs).await?;

    // Watch clusters and upgrades before the controller starts.
    let progress = Arc::new(Mutex::new(Progress::default()));
    // Cluster name → when its label first showed the target.
    let triggered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let clusters_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &cluster_ar());
    let upgrades_api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NAMESPACE,
        &ar::<upkeep_api::ClusterUpgrade>(),
    );
    let watches = [
        tokio::spawn(track_clusters(
            clusters_api.clone(),
            progress.clone(),
            triggered.clone(),
        )),
        tokio::spawn(track_upgrades(upgrades_api.clone(), progress.clone())),
    ];
    wait_for(
        opts.deadline,
        "the harness's watches to list every cluster",
        || progress.lock().is_ok_and(|p| p.clusters_seen >= n),
    )
    .await?;

    eprintln!("    cold start");
    let ctl = start(format!("clusters-{n}"))?;
    let spawned = ctl.started;
    let sampler = ctl.sampler();
    let want = expected.per_upgrade.clone();
    wait_for(
        opts.deadline,
        "every ClusterUpgrade to report each of its clusters",
        || {
            progress.lock().is_ok_and(|p| {
                want.iter()
                    .all(|(name, count)| p.reported.get(name).is_some_and(|(c, _)| c >= count))
            })
        },
    )
    .await
    .map_err(|e| format!("{e}; {}", ctl.log_hint()))?;
    let cold_all = {
        let p = progress.lock().map_err(|_| "poisoned")?;
        p.reported
            .values()
            .map(|(_, t)| t.duration_since(spawned).as_secs_f64())
            .fold(0.0, f64::max)
    };
    let cold_cpu = ctl.cpu_s(tick)?;
    let early = triggered.lock().map_err(|_| "poisoned")?.len();
    tokio::time::sleep(opts.settle).await;
    let settled = ctl.memory()?;
    let cold_peaks = sampler.peaks();

    let open = window_opens(
        &ctl,
        tick,
        open_at,
        opts.settle,
        opts.deadline,
        "every due cluster to carry the target version",
        "triggered",
        &triggered,
        expected.due,
    )
    .await?;
    let peaks = sampler.peaks();
    let metrics = ctl.metrics().await.unwrap_or_default();
    let check = check(&clusters_api, &upgrades_api, &expected, early).await?;
    let stopped = ctl.stop()?;
    for w in watches {
        w.abort();
    }

    Ok(json!({
        "clusters": n,
        "expected": {
            "clusters": expected.clusters,
            "due": expected.due,
            "schedules": opts.schedules,
            "upgrades": opts.upgrades,
        },
        "create_s": create_s,
        "idle": {"rss_kib": idle_mem.rss_kib, "hwm_kib": idle_mem.hwm_kib},
        "cold": {
            "all_reported_s": cold_all,
            "cpu_s": cold_cpu,
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

/// The fleet: schedules, clusters and upgrades, as (resource, object) in creation order.
fn generate(
    n: usize,
    schedules: usize,
    upgrades: usize,
    open_at: Timestamp,
) -> Result<(Vec<(ApiResource, Value)>, Expected), String> {
    let mut rng = XorShift(0x5EED_C1A5_7E55_0001);
    let due_schedules = schedules * 3 / 5;
    let mut docs = vec![(
        ar::<k8s_openapi::api::core::v1::Namespace>(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )];
    for s in 0..schedules {
        let zone = *rng.pick(ZONES);
        let tz = TimeZone::get(zone).map_err(|e| format!("{zone}: {e}"))?;
        // Due schedules open at T_open; the others three days later (same wall-clock time).
        let start = if s < due_schedules {
            open_at
        } else {
            open_at.checked_add(72.hours()).map_err(|e| e.to_string())?
        };
        let local = start.to_zoned(tz.clone()).datetime();
        let end = local.checked_add(4.hours()).map_err(|e| e.to_string())?;
        let day = WEEKDAYS[usize::from(local.weekday().to_monday_zero_offset().unsigned_abs())];
        // A NoMinorUpgrades exclusion two days after the window: evaluated, never applies to
        // this major step (and never covers T_open).
        let ex_start = local.checked_add(48.hours()).map_err(|e| e.to_string())?;
        let ex_end = ex_start
            .checked_add(24.hours())
            .map_err(|e| e.to_string())?;
        docs.push((
            ar::<upkeep_api::MaintenanceSchedule>(),
            json!({
                "apiVersion": "upkeep.dev/v1alpha1",
                "kind": "MaintenanceSchedule",
                "metadata": {"name": format!("s-{s}"), "namespace": NAMESPACE},
                "spec": {
                    "timeZone": zone,
                    "clusterSelector": {"matchLabels": {SCHEDULE_LABEL: format!("s-{s}")}},
                    "maintenanceWindows": [{
                        "name": "weekly",
                        "startTime": local.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                        "endTime": end.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                        "recurrence": format!("FREQ=WEEKLY;BYDAY={day}"),
                    }],
                    "maintenanceExclusions": [{
                        "name": "quiet-day",
                        "startTime": ex_start.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                        "endTime": ex_end.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                        "recurrence": "FREQ=WEEKLY",
                        "scope": "NoMinorUpgrades",
                    }],
                },
            }),
        ));
    }
    let mut per_upgrade = BTreeMap::new();
    let mut due = 0;
    for i in 0..n {
        let s = i % schedules;
        let g = i % upgrades;
        if s < due_schedules {
            due += 1;
        }
        *per_upgrade.entry(format!("upgrade-{g}")).or_insert(0) += 1;
        docs.push((
            cluster_ar(),
            json!({
                "apiVersion": "cluster.x-k8s.io/v1beta1",
                "kind": "Cluster",
                "metadata": {
                    "name": format!("c-{i:05}"),
                    "namespace": NAMESPACE,
                    "labels": {
                        VERSION_LABEL: FROM,
                        SCHEDULE_LABEL: format!("s-{s}"),
                        GROUP_LABEL: format!("g-{g}"),
                        "cluster.x-k8s.io/provider": "aws",
                    },
                },
                "spec": {"controlPlaneEndpoint": {"host": format!("api.c-{i:05}.example"), "port": 443}},
            }),
        ));
    }
    for g in 0..upgrades {
        docs.push((
            ar::<upkeep_api::ClusterUpgrade>(),
            json!({
                "apiVersion": "upkeep.dev/v1alpha1",
                "kind": "ClusterUpgrade",
                "metadata": {"name": format!("upgrade-{g}"), "namespace": NAMESPACE},
                "spec": {
                    "matchers": [{"name": "group", "key": GROUP_LABEL, "value": format!("g-{g}")}],
                    "targetVersion": TARGET,
                    "strategy": {"timeout": "6h"},
                },
            }),
        ));
    }
    Ok((
        docs,
        Expected {
            clusters: n,
            due,
            per_upgrade,
        },
    ))
}

// --- observing --------------------------------------------------------------------------------

#[derive(Default)]
struct Progress {
    clusters_seen: usize,
    seen: std::collections::HashSet<String>,
    /// ClusterUpgrade name → (clusters in its status, when it first reported them all so far).
    reported: HashMap<String, (usize, Instant)>,
}

async fn track_clusters(
    api: Api<DynamicObject>,
    progress: Arc<Mutex<Progress>>,
    triggered: Arc<Mutex<HashMap<String, Instant>>>,
) {
    let mut events = applied_objects(api);
    while let Some(event) = events.next().await {
        let Ok(object) = event else { continue };
        let now = Instant::now();
        let name = object.metadata.name.clone().unwrap_or_default();
        let at_target = object
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(VERSION_LABEL))
            .is_some_and(|v| v == TARGET);
        if at_target && let Ok(mut t) = triggered.lock() {
            t.entry(name.clone()).or_insert(now);
        }
        let Ok(mut p) = progress.lock() else { return };
        if p.seen.insert(name) {
            p.clusters_seen += 1;
        }
    }
}

async fn track_upgrades(api: Api<DynamicObject>, progress: Arc<Mutex<Progress>>) {
    let mut events = applied_objects(api);
    while let Some(event) = events.next().await {
        let Ok(object) = event else { continue };
        let now = Instant::now();
        let name = object.metadata.name.clone().unwrap_or_default();
        let count = object.data["status"]["clusters"]
            .as_array()
            .map_or(0, Vec::len);
        let Ok(mut p) = progress.lock() else { return };
        let entry = p.reported.entry(name).or_insert((0, now));
        if count > entry.0 {
            *entry = (count, now);
        }
    }
}

/// After the run: exactly the due clusters carry the target, and every upgrade's status agrees.
async fn check(
    clusters: &Api<DynamicObject>,
    upgrades: &Api<DynamicObject>,
    exp: &Expected,
    triggered_before_open: usize,
) -> Result<Value, String> {
    let mut problems = Vec::new();
    if triggered_before_open > 0 {
        problems.push(format!(
            "{triggered_before_open} clusters carried the target before the window opened"
        ));
    }
    let list = clusters
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing clusters: {e}"))?;
    let at_target = list
        .items
        .iter()
        .filter(|c| {
            c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(VERSION_LABEL))
                .is_some_and(|v| v == TARGET)
        })
        .count();
    if list.items.len() != exp.clusters {
        problems.push(format!(
            "{} clusters, created {}",
            list.items.len(),
            exp.clusters
        ));
    }
    if at_target != exp.due {
        problems.push(format!(
            "{at_target} clusters at {TARGET}, want exactly the {} due",
            exp.due
        ));
    }
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for u in upgrades
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing upgrades: {e}"))?
        .items
    {
        for c in u.data["status"]["clusters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let state = c["state"].as_str().unwrap_or("none").to_owned();
            *states.entry(state).or_default() += 1;
        }
    }
    let started: usize = ["Triggered", "Upgrading", "Succeeded"]
        .iter()
        .map(|s| states.get(*s).copied().unwrap_or(0))
        .sum();
    if started != exp.due {
        problems.push(format!(
            "status: {started} clusters started (Triggered/Upgrading/Succeeded), want {}",
            exp.due
        ));
    }
    Ok(
        json!({"ok": problems.is_empty(), "at_target": at_target, "states": states, "problems": problems}),
    )
}

//! The cluster-upgrade benchmark: the real `upkeep controller` binary against the real API
//! server with thousands of Cluster API `Cluster` objects, MaintenanceSchedules and
//! ClusterUpgrades, measuring DESIGN.md's targets "5,000 clusters, window opens: all due
//! upgrades triggered ≤ 10 s; RSS ≤ 64 MiB; memory linear in clusters" and "20,000 clusters in
//! one campaign, 12,000 due: all due triggered ≤ 30 s; RSS ≤ 128 MiB".
//!
//! Why it is shaped this way:
//! - The controller is its own process (release binary, `--leader-elect=false`), so its RSS and
//!   CPU are its own; the API server, etcd and this harness are other processes.
//! - "Triggered" is observed from outside, on the clusters themselves: a watch on every
//!   `Cluster` records when its `release.giantswarm.io/version` label first shows the target.
//!   That is the moment the management cluster (and so Cluster API) sees the upgrade, which
//!   is what a user waits for; the controller's own status is checked afterwards.
//! - The fleet: `SIZE` clusters in one namespace, spread over `--schedules` MaintenanceSchedules
//!   (by `clusterSelector` on a label) and ClusterUpgrades (by matcher on another label; `--upgrades`
//!   of them, or `U` for a size written `SIZE:U`, e.g. `20000:1` for one campaign over all), so
//!   every upgrade spans every schedule and the controller must resolve each cluster's schedule
//!   itself. 60 % of the schedules share one weekly window opening at `T_open` (written as
//!   wall-clock time in each schedule's own zone); the rest open three days later and must
//!   *not* trigger. Each schedule also has a `NoMinorUpgrades` exclusion elsewhere in the week,
//!   so exclusions are evaluated but do not apply (the step is major).
//! - The Clusters are created first; `T_open` is chosen after that (`--open-lead` seconds, by
//!   default 60 s plus 1 s per 200 clusters, for the controller's cold start), then the
//!   schedules and upgrades are created. So the lead does not have to guess how long creating
//!   20,000 objects takes on a loaded machine.
//! - Two phases per size, as in `bench_controller`: cold start (every upgrade reports every one
//!   of its clusters: `status.counts.total` where the status keeps counts, else the length of
//!   `status.clusters`) and window opens (time from `T_open` until every due cluster carries
//!   the target). An idle controller is measured first on the same API server, so memory per
//!   cluster is `(RSS − idle RSS) / clusters`.
//! - API requests per triggered cluster are the API server's own count
//!   (`apiserver_request_total` on its `/metrics`, by verb and resource, of the resources the
//!   controller writes and reads) from just before `T_open` until the controller has been
//!   quiet for a few seconds after the last due cluster was triggered; this harness sends none
//!   of them in between (its watches are long-running and counted apart), so the count is the
//!   controller's.
//! - No provider loop runs: triggered clusters stay `Upgrading`. Observation is tested in the
//!   controller's tests; this measures the decision and trigger path at scale.
//!
//! Usage: `bench_clusters UPKEEP_BIN LOG_DIR SIZE[:UPGRADES]... [--schedules N] [--upgrades N]
//! [--settle S] [--open-lead S] [--deadline S]`. Prints one JSON object on stdout; progress on
//! stderr.

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
    Spawned, XorShift, ZONES, applied_objects, ar, client, clock_ticks, create_all, idle_memory,
    open_at, parse_flags, reconcile_counts, report, wait_for, window_opens,
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
    /// (clusters, upgrades) per run.
    sizes: Vec<(usize, usize)>,
    schedules: usize,
    settle: Duration,
    open_lead: Option<u64>,
    deadline: Duration,
}

fn parse_args() -> Result<Options, String> {
    let usage = "usage: bench_clusters UPKEEP_BIN LOG_DIR SIZE[:UPGRADES]... [--schedules N] \
                 [--upgrades N] [--settle S] [--open-lead S] [--deadline S]";
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
            let (n, u) = s.split_once(':').unwrap_or((s, ""));
            let u = if u.is_empty() {
                Some(upgrades)
            } else {
                u.parse::<usize>().ok().filter(|u| *u >= 1)
            };
            n.parse::<usize>()
                .ok()
                .zip(u)
                .filter(|(n, u)| *n >= schedules.max(*u))
                .ok_or_else(|| {
                    format!(
                        "invalid SIZE {s:?} (want CLUSTERS or CLUSTERS:UPGRADES, clusters ≥ the schedules and the upgrades)"
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Options {
        upkeep: PathBuf::from(&positional[0]),
        logs: PathBuf::from(&positional[1]),
        sizes,
        schedules,
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
    for &(n, upgrades) in &opts.sizes {
        eprintln!(
            "==> clusters: {n} clusters, {} schedules, {upgrades} upgrades",
            opts.schedules
        );
        sizes.push(one_size(&opts, n, upgrades, tick).await?);
    }
    let mut report = report(&opts.upkeep, opts.settle, "target_triggered_s", &sizes);
    // The 5,000-cluster target; a size's own targets are in it (`targets`).
    report["target_triggered_s"] = json!(10);
    Ok(report)
}

/// DESIGN.md's targets for a size: (all due triggered, s; peak RSS, MiB). The 20,000-cluster
/// campaign has its own; every smaller fleet is held to the 5,000-cluster one.
fn targets(n: usize) -> (u64, u64) {
    if n > 5_000 { (30, 128) } else { (10, 64) }
}

/// What this harness generated, to check the controller's answers against.
struct Expected {
    clusters: usize,
    due: usize,
    upgrades: usize,
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
async fn one_size(opts: &Options, n: usize, upgrades: usize, tick: f64) -> Result<Value, String> {
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

    let (docs, mut expected) = generate_clusters(n, opts.schedules, upgrades);
    eprintln!("    creating {} clusters", docs.len() - 1);
    let created = Instant::now();
    create_all(&client, docs).await?;
    let lead = opts
        .open_lead
        .unwrap_or(60 + u64::try_from(n).unwrap_or(0) / 200);
    let open_at = open_at(Some(lead), n)?;
    let docs = generate_campaigns(opts.schedules, upgrades, open_at)?;
    eprintln!(
        "    creating {} schedules and upgrades ({} due when the window opens at {open_at})",
        docs.len(),
        expected.due
    );
    create_all(&client, docs).await?;
    let create_s = created.elapsed().as_secs_f64();
    expected.upgrades = upgrades;

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

    let before = api_requests(&client).await?;
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
    let after = quiet_requests(&client, Duration::from_secs(5), Duration::from_secs(180)).await?;
    let requests = requests_per_cluster(&before, &after.0, expected.due, after.1);
    let peaks = sampler.peaks();
    // The peak over the whole run: the reconciles after the opening (acknowledgements,
    // Upgrading) count as much as the opening itself.
    let last = ctl.memory()?;
    let metrics = ctl.metrics().await.unwrap_or_default();
    let check = check(&clusters_api, &upgrades_api, &expected, early).await?;
    let stopped = ctl.stop()?;
    for w in watches {
        w.abort();
    }
    let (target_s, target_mib) = targets(n);

    Ok(json!({
        "clusters": n,
        "target_triggered_s": target_s,
        "target_rss_mib": target_mib,
        "expected": {
            "clusters": expected.clusters,
            "due": expected.due,
            "schedules": opts.schedules,
            "upgrades": upgrades,
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
        "requests": requests,
        "peak_sockets": peaks.sockets,
        "peak_rss_sampled_kib": peaks.rss_kib,
        "peak_hwm_kib": last.hwm_kib,
        "reconciles": reconcile_counts(&metrics),
        "reconcile_seconds": reconcile_seconds(&metrics),
        "check": check,
        "exit": stopped,
    }))
}

/// Seconds spent reconciling, by kind (`upkeep_reconcile_duration_seconds_sum`), with the
/// number of reconciles: where the controller's time went.
fn reconcile_seconds(metrics: &str) -> Value {
    let mut out = serde_json::Map::new();
    for line in metrics.lines() {
        for (prefix, field) in [
            ("upkeep_reconcile_duration_seconds_sum{", "sum_s"),
            ("upkeep_reconcile_duration_seconds_count{", "count"),
        ] {
            let Some(rest) = line.strip_prefix(prefix) else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let kind = labels
                .split(',')
                .find_map(|kv| kv.strip_prefix("kind=\""))
                .map_or("?", |v| v.trim_end_matches('"'));
            let entry = out.entry(kind.to_owned()).or_insert_with(|| json!({}));
            entry[field] = json!(value.trim().parse::<f64>().unwrap_or(0.0));
        }
    }
    Value::Object(out)
}

// --- API requests -------------------------------------------------------------------------------

/// The resources whose requests are counted: what the controller reads and writes for
/// ClusterUpgrades (nothing else in the run writes them while the window opens).
const COUNTED: &[&str] = &[
    "clusters",
    "clusterupgrades",
    "clusterupgraderecords",
    "events",
    "maintenanceschedules",
    "versionpolicies",
    "releases",
];

/// `apiserver_request_total` of the [`COUNTED`] resources, by `VERB resource[/subresource]`,
/// watches left out (they are long-running and counted when they end).
async fn api_requests(client: &kube::Client) -> Result<BTreeMap<String, f64>, String> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = client
        .request_text(request)
        .await
        .map_err(|e| format!("GET /metrics from the API server: {e}"))?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let (verb, resource, sub) = (label("verb"), label("resource"), label("subresource"));
        if verb == "WATCH" || !COUNTED.contains(&resource.as_str()) {
            continue;
        }
        let key = if sub.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{sub}")
        };
        *out.entry(key).or_default() += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    Ok(out)
}

/// The counts once the writes among them (POST, PUT, PATCH, DELETE) have not moved for `quiet`
/// — the controller has finished writing what the opening called for: patches, status,
/// Events — and how long after the call that was; at most `limit`. Reads are not waited for:
/// an upgrade with clusters in flight is looked at every poll, for as long as they upgrade.
async fn quiet_requests(
    client: &kube::Client,
    quiet: Duration,
    limit: Duration,
) -> Result<(BTreeMap<String, f64>, f64), String> {
    let writes = |counts: &BTreeMap<String, f64>| -> f64 {
        counts
            .iter()
            .filter(|(k, _)| !k.starts_with("GET ") && !k.starts_with("LIST "))
            .map(|(_, v)| v)
            .sum()
    };
    let started = Instant::now();
    let mut last = api_requests(client).await?;
    let mut since = Instant::now();
    while since.elapsed() < quiet && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = api_requests(client).await?;
        #[allow(clippy::float_cmp)]
        let moved = writes(&now) != writes(&last);
        last = now;
        if moved {
            since = Instant::now();
        }
    }
    Ok((last, (since - started).as_secs_f64()))
}

/// The requests between `before` and `after`, per triggered cluster, by kind and in total.
#[allow(clippy::cast_precision_loss)]
fn requests_per_cluster(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    triggered: usize,
    quiet_after_s: f64,
) -> Value {
    let per = triggered.max(1) as f64;
    let mut by_kind = serde_json::Map::new();
    let mut total = 0.0;
    for (k, v) in after {
        let d = v - before.get(k).copied().unwrap_or(0.0);
        if d > 0.0 {
            total += d;
            by_kind.insert(k.clone(), json!({"requests": d, "per_cluster": d / per}));
        }
    }
    json!({
        "total": total,
        "per_cluster": total / per,
        "by_kind": by_kind,
        "quiet_after_s": quiet_after_s,
    })
}

// --- input ----------------------------------------------------------------------------------

/// The namespace and the clusters, as (resource, object) in creation order, and what is
/// expected of them (`upgrades` is set by the caller).
fn generate_clusters(
    n: usize,
    schedules: usize,
    upgrades: usize,
) -> (Vec<(ApiResource, Value)>, Expected) {
    let due_schedules = schedules * 3 / 5;
    let mut docs = vec![(
        ar::<k8s_openapi::api::core::v1::Namespace>(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )];
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
    (
        docs,
        Expected {
            clusters: n,
            due,
            upgrades,
            per_upgrade,
        },
    )
}

/// The schedules (the first 60 % open at `open_at`) and the upgrades.
fn generate_campaigns(
    schedules: usize,
    upgrades: usize,
    open_at: Timestamp,
) -> Result<Vec<(ApiResource, Value)>, String> {
    let mut rng = XorShift(0x5EED_C1A5_7E55_0001);
    let due_schedules = schedules * 3 / 5;
    let mut docs = Vec::new();
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
    Ok(docs)
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
        let count = reported(&object.data["status"]);
        let Ok(mut p) = progress.lock() else { return };
        let entry = p.reported.entry(name).or_insert((0, now));
        if count > entry.0 {
            *entry = (count, now);
        }
    }
}

/// How many clusters a ClusterUpgrade's status reports: `counts.total` where the status keeps
/// counts per state (and lists only the clusters in flight), else every `clusters[]` entry.
fn reported(status: &Value) -> usize {
    status["counts"]["total"].as_u64().map_or_else(
        || status["clusters"].as_array().map_or(0, Vec::len),
        |n| usize::try_from(n).unwrap_or(usize::MAX),
    )
}

/// Clusters per state in a ClusterUpgrade's status: from `counts` (`triggered` → `Triggered`,
/// …) where it keeps them, else by counting `clusters[].state`.
fn status_states(status: &Value) -> BTreeMap<String, usize> {
    let mut states = BTreeMap::new();
    if let Some(counts) = status["counts"].as_object() {
        for (k, v) in counts {
            if k == "total" {
                continue;
            }
            let mut state = k.clone();
            if let Some(first) = state.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            let n = v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            if n > 0 {
                states.insert(state, n);
            }
        }
        return states;
    }
    for c in status["clusters"].as_array().into_iter().flatten() {
        let state = c["state"].as_str().unwrap_or("none").to_owned();
        *states.entry(state).or_default() += 1;
    }
    states
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
        for (state, n) in status_states(&u.data["status"]) {
            *states.entry(state).or_default() += n;
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

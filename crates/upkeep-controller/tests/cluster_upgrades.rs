//! The ClusterUpgrade and ClusterUpgradePolicy controllers against a real kube-apiserver 1.20.2
//! with etcd, the test Cluster API provider loop (upkeep-testenv `cluster_api::Provider`,
//! which rolls a cluster's conditions when its version label changes) and a real Alertmanager.
//!
//! Each scenario lives in its own namespace so one API server serves several; the clock is the
//! real one plus an offset the test can move, because the provider stamps its conditions with
//! the real time and the core compares them with the trigger time.

mod support;
use support::{
    Running, apply, client, condition, eventually, eventually_within, next_second, status,
};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use upkeep_api::cluster_upgrade::{ClusterCounts, ClusterUpgradeStatus};
use upkeep_api::cluster_upgrade_record::ClusterUpgradeRecordSpec;
use upkeep_api::{ClusterUpgrade, ClusterUpgradePolicy, ClusterUpgradeRecord, VersionPolicy};
use upkeep_controller::alerts::{Alertmanager, Webhook};
use upkeep_controller::cluster_upgrade::{Silences, UpgradeSettings, run_cluster_upgrades};
use upkeep_controller::cluster_upgrade_policy::run_cluster_upgrade_policies;
use upkeep_controller::framework::Context;
use upkeep_controller::metrics::Metrics;
use upkeep_testenv::cluster_api::{FAIL_ANNOTATION, Provider, cluster_yaml, crd_yaml};
use upkeep_testenv::{KubeApiServer, KubeUser, upkeep_crds};

/// The real clock plus a movable offset.
#[derive(Clone, Default)]
struct Clock(Arc<AtomicI64>);

impl Clock {
    fn now(&self) -> Timestamp {
        Timestamp::now() + SignedDuration::from_secs(self.0.load(Ordering::SeqCst))
    }
    fn jump_to(&self, at: Timestamp) {
        self.0.store(
            at.duration_since(Timestamp::now()).as_secs(),
            Ordering::SeqCst,
        );
    }
}

fn start_upgrades(
    client: kube::Client,
    clock: &Clock,
    configure: impl FnOnce(UpgradeSettings) -> UpgradeSettings,
) -> Running {
    let clock = clock.clone();
    let ctx = Arc::new(Context::new(client).with_clock(move || clock.now()));
    let upgrades = configure(
        UpgradeSettings::new(ctx)
            .with_poll(Duration::from_millis(300))
            .with_retry_after(Duration::from_millis(500)),
    );
    Running::spawn(|shutdown| run_cluster_upgrades(Arc::new(upgrades), shutdown))
}

async fn setup() -> (KubeApiServer, kube::Client) {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds(), &crd_yaml()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let admin = client(&server, KubeUser::Admin).await;
    (server, admin)
}

/// Creates `namespace`, its clusters (all at 29.0.0) and a provider for them, and waits until
/// the provider has seen them and the real clock has left the second it marked them Ready in
/// (the core only counts a transition at or after the trigger's second as the provider's answer).
async fn clusters(
    server: &KubeApiServer,
    admin: &kube::Client,
    namespace: &str,
    clusters: &[(&str, &str)],
    step: Duration,
) -> Provider {
    server
        .kubectl(&["create", "namespace", namespace])
        .expect("namespace");
    let yaml: Vec<String> = clusters
        .iter()
        .map(|(name, env)| cluster_yaml(name, namespace, &[("env", env)], "29.0.0"))
        .collect();
    server
        .kubectl_stdin(&["apply", "-f", "-"], &yaml.join("\n---\n"))
        .expect("clusters");
    let provider = Provider::start(admin.clone(), namespace).with_step(step);
    eventually(
        async || clusters.iter().all(|(name, _)| provider.seen(name)),
        |seen| *seen,
        "the provider sees every cluster",
    )
    .await;
    next_second().await;
    provider
}

/// Changes a cluster's labels, as any watch event would: time alone does not wake a controller
/// whose next check is years away in real time.
fn touch(server: &KubeApiServer, namespace: &str, cluster: &str) {
    server
        .kubectl(&[
            "label",
            "--overwrite",
            "-n",
            namespace,
            "clusters.cluster.x-k8s.io",
            cluster,
            "touched=yes",
        ])
        .expect("touch");
}

fn cluster_state<'a>(s: &'a ClusterUpgradeStatus, name: &str) -> (&'a str, &'a str) {
    s.cluster(name).map_or(("-", "-"), |c| {
        (
            c.state.as_deref().unwrap_or("-"),
            c.reason.as_deref().unwrap_or(""),
        )
    })
}

/// `(type, reason)` of the Events about the ClusterUpgrade `upgrade`.
async fn events(admin: &kube::Client, namespace: &str, upgrade: &str) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin.clone(), namespace);
    api.list(&kube::api::ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(upgrade))
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
        .collect()
}

/// The reconciles of ClusterUpgrades that failed patching a Cluster so far.
fn patch_failures(metrics: &Metrics) -> u64 {
    metrics
        .encode()
        .lines()
        .find(|l| {
            l.starts_with("upkeep_reconcile_errors_total{")
                && l.contains("kind=\"ClusterUpgrade\"")
                && l.contains("error=\"PatchCluster\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The ClusterUpgradeRecords of `namespace`.
async fn records(admin: &kube::Client, namespace: &str) -> Vec<ClusterUpgradeRecord> {
    Api::<ClusterUpgradeRecord>::namespaced(admin.clone(), namespace)
        .list(&kube::api::ListParams::default())
        .await
        .expect("records")
        .items
}

/// The record of `cluster` among `records`.
fn record_of<'a>(
    records: &'a [ClusterUpgradeRecord],
    cluster: &str,
) -> &'a ClusterUpgradeRecordSpec {
    records
        .iter()
        .find(|r| r.spec.cluster == cluster)
        .map_or_else(
            || panic!("no record of {cluster} in {records:?}"),
            |r| &r.spec,
        )
}

/// Approves the suspended ClusterUpgrade `name` and waits until it is Finished.
async fn approve_and_finish(api: &Api<ClusterUpgrade>, name: &str) -> ClusterUpgradeStatus {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap_or_else(|e| panic!("approve {name}: {e}"));
    eventually(
        async || status(api, name).await,
        |s| s.state.as_deref() == Some("Finished"),
        &format!("{name}, approved, finishes"),
    )
    .await
}

async fn event_reasons(admin: &kube::Client, namespace: &str, upgrade: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin.clone(), namespace);
    api.list(&kube::api::ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(upgrade))
        .filter_map(|e| e.reason)
        .collect()
}

/// The notes of the Events of `reason` about the ClusterUpgrade `upgrade`.
async fn event_notes(
    admin: &kube::Client,
    namespace: &str,
    upgrade: &str,
    reason: &str,
) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin.clone(), namespace);
    api.list(&kube::api::ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(upgrade))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// How many clusters an Event's note is about: `N clusters: …` (several folded into one) or
/// `cluster NAME: …` (one).
fn clusters_in_note(note: &str) -> usize {
    match note.split_once(" clusters: ") {
        Some((n, _)) => n.parse().unwrap_or_else(|_| panic!("a count in {note:?}")),
        None if note.starts_with("cluster ") => 1,
        None => panic!("not a cluster note: {note:?}"),
    }
}

const STAGED: &str = "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: to-30, namespace: staged}
spec:
  matchers: [{name: all, value: '.*', isRegex: true}]
  targetVersion: 30.0.0
  strategy:
    timeout: 10m
    stages:
      - {name: dev, matchers: [{name: dev, key: env, value: dev}], soak: 2s}
      - {name: prod, matchers: [{name: prod, key: env, value: prod}], maxConcurrency: 1}
";

const FAILING: &str = "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: to-30, namespace: failing}
spec:
  matchers: [{name: all, value: '.*', isRegex: true}]
  targetVersion: 30.0.0
  strategy:
    failurePolicy: Halt
    stages:
      - {name: one, matchers: [{name: one, key: env, value: one}]}
      - {name: two, matchers: [{name: two, key: env, value: two}]}
";

/// The status of `to-30` once `cluster` waits (its reason is in [`cluster_state`]).
async fn once_waiting(
    api: &Api<ClusterUpgrade>,
    cluster: &str,
    what: &str,
) -> ClusterUpgradeStatus {
    eventually(
        async || status(api, "to-30").await,
        |s| cluster_state(s, cluster).0 == "Waiting",
        what,
    )
    .await
}

/// Waits until the provider has seen exactly one upgrade of `cluster`.
async fn triggered_once(provider: &Provider, cluster: &str, what: &str) {
    eventually(async || provider.upgrades_seen(cluster), |n| *n == 1, what).await;
}

fn simple(namespace: &str, extra: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {{name: to-30, namespace: {namespace}}}
spec:
  matchers: [{{name: all, value: '.*', isRegex: true}}]
  targetVersion: 30.0.0
{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_run_in_order_and_record_everything() {
    let (server, admin) = setup().await;
    let am = upkeep_testenv::Alertmanager::start()
        .await
        .expect("alertmanager");
    let staged = clusters(
        &server,
        &admin,
        "staged",
        &[("dev-1", "dev"), ("prod-1", "prod"), ("prod-2", "prod")],
        Duration::from_millis(1500),
    )
    .await;
    let failing = clusters(
        &server,
        &admin,
        "failing",
        &[("a-1", "one"), ("b-1", "two")],
        Duration::from_millis(300),
    )
    .await;
    let frozen = clusters(
        &server,
        &admin,
        "frozen",
        &[("f-1", "x")],
        Duration::from_millis(300),
    )
    .await;
    let suspended = clusters(
        &server,
        &admin,
        "suspended",
        &[("s-1", "x")],
        Duration::from_millis(300),
    )
    .await;
    let overlap = clusters(
        &server,
        &admin,
        "overlap",
        &[("o-1", "one"), ("o-2", "two")],
        Duration::from_millis(300),
    )
    .await;
    server
        .kubectl(&[
            "annotate",
            "-n",
            "overlap",
            "clusters.cluster.x-k8s.io",
            "o-2",
            &format!("{FAIL_ANNOTATION}=quota exceeded"),
        ])
        .expect("fail annotation");
    server
        .kubectl(&[
            "annotate",
            "-n",
            "failing",
            "clusters.cluster.x-k8s.io",
            "a-1",
            &format!("{FAIL_ANNOTATION}=disk full"),
        ])
        .expect("fail annotation");
    server
        .kubectl(&[
            "annotate",
            "-n",
            "frozen",
            "clusters.cluster.x-k8s.io",
            "f-1",
            "upkeep.dev/freeze-until=2099-01-01T00:00:00Z",
            "upkeep.dev/freeze-reason=audit",
        ])
        .expect("freeze annotation");

    let clock = Clock::default();
    let metrics = Metrics::new();
    let alertmanager = Alertmanager::new(am.url()).expect("alertmanager client");
    let running = start_upgrades(admin.clone(), &clock, |u| {
        u.with_metrics(metrics.clone())
            .with_silences(Silences {
                alertmanager,
                label: "cluster_id".into(),
            })
            .with_webhook(Webhook::new().expect("webhook client"))
    });
    // The staged upgrade goes last: dev-1 upgrades in 1.5 s, and the silence is looked for while
    // it does (each kubectl apply takes seconds on a loaded machine).
    apply(&server, FAILING);
    apply(&server, &simple("frozen", ""));
    let sink = upkeep_testenv::webhook::Sink::start().expect("webhook sink");
    apply(
        &server,
        &simple(
            "suspended",
            &format!(
                "  suspend: true\n  announce: {{before: 1h, webhookUrl: '{}'}}\n",
                sink.url()
            ),
        ),
    );

    apply(&server, STAGED);

    // Staged: while dev-1 upgrades its alerts are silenced.
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "staged");
    let upgrading = eventually(
        async || status(&api, "to-30").await,
        |s| {
            matches!(cluster_state(s, "dev-1").0, "Triggered" | "Upgrading")
                && s.cluster("dev-1")
                    .and_then(|c| c.silence_id.as_ref())
                    .is_some()
        },
        "dev-1 upgrades under a silence",
    )
    .await;
    let silence = upgrading
        .cluster("dev-1")
        .and_then(|c| c.silence_id.clone())
        .expect("silence id");
    assert!(
        am.active_silence_ids()
            .await
            .expect("silences")
            .contains(&silence),
        "the silence is active while dev-1 upgrades"
    );
    assert_eq!(
        cluster_state(&upgrading, "prod-1").0,
        "Waiting",
        "prod waits for dev"
    );

    let done = eventually_within(
        Duration::from_secs(90),
        async || status(&api, "to-30").await,
        |s| s.state.as_deref() == Some("Finished"),
        "the staged upgrade finishes",
    )
    .await;
    assert_eq!(done.outcome.as_deref(), Some("Succeeded"), "{done:?}");
    assert_eq!(
        (done.from_release.as_deref(), done.to_release.as_deref()),
        (Some("29.0.0"), Some("30.0.0"))
    );
    assert!(
        done.triggered_at.is_some() && done.finished_at.is_some(),
        "{done:?}"
    );
    // Each cluster's upgrade is its record; the status counts them and lists none (all done).
    let recs = records(&admin, "staged").await;
    assert_eq!(recs.len(), 3, "one record per cluster: {recs:?}");
    let at = |c: &str,
              f: fn(
        &ClusterUpgradeRecordSpec,
    ) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        f(record_of(&recs, c)).map_or_else(|| panic!("{c}: time missing in {recs:?}"), |t| t.0)
    };
    for (cluster, stage) in [("dev-1", "dev"), ("prod-1", "prod"), ("prod-2", "prod")] {
        let r = record_of(&recs, cluster);
        assert_eq!(r.state, "Succeeded", "{cluster}");
        assert_eq!(r.stage.as_deref(), Some(stage), "{cluster}");
        assert_eq!(r.campaign, "to-30", "{cluster}");
        assert_eq!(
            (r.from.as_deref(), r.to.as_deref()),
            (Some("29.0.0"), Some("30.0.0")),
            "{cluster}"
        );
        assert!(
            at(cluster, |r| r.triggered_at.as_ref()) <= at(cluster, |r| r.finished_at.as_ref()),
            "{cluster}: {r:?}"
        );
        assert_eq!(
            staged.upgrades_seen(cluster),
            1,
            "{cluster}: exactly one version change"
        );
        assert_eq!(
            staged.version(cluster).as_deref(),
            Some("30.0.0"),
            "{cluster}"
        );
    }
    let dev = recs
        .iter()
        .find(|r| r.spec.cluster == "dev-1")
        .expect("dev-1");
    let labels = dev.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("cluster").map(String::as_str), Some("dev-1"));
    assert_eq!(
        labels.get("upkeep.dev/campaign").map(String::as_str),
        Some("to-30")
    );
    let owner = &dev.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ClusterUpgrade", "to-30", Some(true)),
        "owned by its campaign"
    );
    assert!(
        done.clusters.is_empty(),
        "finished clusters live in their records: {done:?}"
    );
    assert_eq!(
        done.counts,
        Some(ClusterCounts {
            total: 3,
            succeeded: 3,
            ..ClusterCounts::default()
        })
    );
    assert_eq!(done.progress.as_deref(), Some("3/3 succeeded"));
    assert_eq!(done.reason.as_deref(), Some("Succeeded"));
    assert_eq!(
        done.stage.as_deref(),
        Some("prod"),
        "the last stage that ran"
    );
    assert!(
        at("prod-1", |c| c.triggered_at.as_ref())
            >= at("dev-1", |c| c.finished_at.as_ref()) + SignedDuration::from_secs(2),
        "prod starts after dev finished and soaked 2s: {recs:?}"
    );
    assert!(
        at("prod-2", |c| c.triggered_at.as_ref()) >= at("prod-1", |c| c.finished_at.as_ref()),
        "maxConcurrency 1: prod-2 starts after prod-1 finished: {recs:?}"
    );
    let ready = condition(&done.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Succeeded")
    );
    // Every cluster was silenced while it upgraded, and every silence is expired now.
    let silences = am.silences().await.expect("silences");
    assert!(
        silences.iter().any(|s| s["id"] == silence.as_str()),
        "dev-1's silence: {silences:?}"
    );
    for cluster in ["dev-1", "prod-1", "prod-2"] {
        let of: Vec<_> = silences
            .iter()
            .filter(|s| s["matchers"][0]["value"] == cluster)
            .collect();
        assert!(!of.is_empty(), "{cluster}: silenced while upgrading");
        for s in of {
            assert_eq!(
                s["status"]["state"], "expired",
                "{cluster}: the silence ends with the upgrade"
            );
            assert_eq!(s["matchers"][0]["name"], "cluster_id");
        }
    }
    for reason in ["UpgradeTriggered", "UpgradeSucceeded"] {
        let notes = event_notes(&admin, "staged", "to-30", reason).await;
        assert_eq!(
            notes.iter().map(|n| clusters_in_note(n)).sum::<usize>(),
            3,
            "{reason}: each cluster once: {notes:?}"
        );
    }

    // Failing, Halt: a-1 fails, stage two never starts.
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "failing");
    let failed = eventually(
        async || status(&api, "to-30").await,
        |s| s.state.as_deref() == Some("Finished"),
        "the failing upgrade finishes",
    )
    .await;
    assert_eq!(failed.outcome.as_deref(), Some("Failed"), "{failed:?}");
    let (state, reason) = cluster_state(&failed, "a-1");
    assert_eq!(state, "Failed");
    assert!(
        reason.contains("disk full"),
        "the provider's message is the reason: {reason}"
    );
    let (state, reason) = cluster_state(&failed, "b-1");
    assert_eq!(
        state, "Halted",
        "Halt: nothing new starts, and under the Finished campaign it says Halted"
    );
    assert!(
        reason.contains("halted") && reason.contains("a-1"),
        "{reason}"
    );
    assert_eq!(
        failing.upgrades_seen("b-1"),
        0,
        "the later stage was never touched"
    );
    let ready = condition(&failed.conditions, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Failed")
    );
    assert!(
        event_reasons(&admin, "failing", "to-30")
            .await
            .contains(&"UpgradeFailed".to_owned())
    );
    // Finished is final: changing the failure policy afterwards restarts nothing.
    api.patch(
        "to-30",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"strategy": {"failurePolicy": "Continue"}}})),
    )
    .await
    .expect("edit the finished campaign");
    let after_edit = eventually(
        async || status(&api, "to-30").await,
        |s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "SpecChangedAfterFinish" && c.status == "True")
        },
        "the edit of a finished campaign is answered with a condition",
    )
    .await;
    let changed = condition(&after_edit.conditions, "SpecChangedAfterFinish");
    assert!(
        changed.message.contains("ignored")
            && changed.message.contains("create a new ClusterUpgrade"),
        "{}",
        changed.message
    );
    assert_eq!(
        (
            after_edit.state.as_deref(),
            after_edit.outcome.as_deref(),
            cluster_state(&after_edit, "b-1").0
        ),
        (Some("Finished"), Some("Failed"), "Halted"),
        "nothing changed: {after_edit:?}"
    );
    let ready = condition(&after_edit.conditions, "Ready");
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_str(),
            ready.observed_generation
        ),
        ("False", "Failed", Some(2)),
        "Ready keeps the outcome at the generation seen"
    );
    assert_eq!(failing.upgrades_seen("b-1"), 0, "b-1 was never started");
    eventually(
        async || events(&admin, "failing", "to-30").await,
        |seen| seen.contains(&("Warning".to_owned(), "SpecChangedAfterFinish".to_owned())),
        "a Warning Event says the edit is ignored",
    )
    .await;

    // Frozen: waits, and says why.
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "frozen");
    let waiting = once_waiting(&api, "f-1", "f-1 waits").await;
    let (_, reason) = cluster_state(&waiting, "f-1");
    assert!(
        reason.contains("frozen until") && reason.contains("2099") && reason.contains("audit"),
        "{reason}"
    );
    assert_eq!(frozen.upgrades_seen("f-1"), 0);

    // Suspended: waits for approval, then runs.
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "suspended");
    let waiting = once_waiting(&api, "s-1", "s-1 waits").await;
    assert!(
        cluster_state(&waiting, "s-1").1.contains("suspended"),
        "{waiting:?}"
    );
    assert_eq!(waiting.state.as_deref(), Some("Waiting"));
    assert_eq!(
        suspended.upgrades_seen("s-1"),
        0,
        "nothing starts while suspended"
    );
    let done = approve_and_finish(&api, "to-30").await;
    assert_eq!(done.outcome.as_deref(), Some("Succeeded"));
    assert_eq!(suspended.upgrades_seen("s-1"), 1);
    // Announced when it was approved (it started at once), to the webhook and as an Event.
    let recs = records(&admin, "suspended").await;
    assert!(
        record_of(&recs, "s-1").announced_at.is_some(),
        "the announcement is in the record: {recs:?}"
    );
    let bodies = sink.bodies();
    assert_eq!(bodies.len(), 1, "one announcement: {bodies:?}");
    for (field, want) in [
        ("cluster", "s-1"),
        ("upgrade", "suspended/to-30"),
        ("from", "29.0.0"),
        ("to", "30.0.0"),
    ] {
        assert_eq!(bodies[0][field], want, "{field} in {}", bodies[0]);
    }
    assert!(bodies[0].get("expectedStart").is_some(), "{}", bodies[0]);
    assert!(
        event_reasons(&admin, "suspended", "to-30")
            .await
            .contains(&"UpgradeAnnounced".to_owned())
    );

    // Counted before the overlap scenario: clusters by outcome, not campaigns.
    let text = metrics.encode();
    for line in [
        "upkeep_cluster_upgrades_total{outcome=\"Succeeded\"} 4",
        "upkeep_cluster_upgrades_total{outcome=\"Failed\"} 1",
        "upkeep_cluster_upgrades_total{outcome=\"Halted\"} 1",
        "upkeep_cluster_upgrade_duration_seconds_count 5",
        "upkeep_clusters_waiting{reason=\"Frozen\"} 1",
        "upkeep_clusters_waiting{reason=\"Suspended\"} 0",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(
        !text.contains("upkeep_clusters_waiting{reason=\"Halted\"} 1"),
        "the finished campaign's halted cluster is not counted as waiting:\n{text}"
    );

    // Overlap: two active campaigns select o-2; it runs in the older one (first), the other
    // shows it Waiting with reason Overlap naming it.
    apply(
        &server,
        "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: first, namespace: overlap}
spec:
  matchers: [{name: all, value: '.*', isRegex: true}]
  targetVersion: 30.0.0
  suspend: true
",
    );
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "overlap");
    eventually(
        async || status(&api, "first").await,
        |s| s.state.as_deref() == Some("Waiting"),
        "first waits for approval",
    )
    .await;
    apply(
        &server,
        "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: second, namespace: overlap}
spec:
  matchers: [{name: two, key: env, value: two}]
  targetVersion: 30.0.0
",
    );
    let held = eventually(
        async || status(&api, "second").await,
        |s| cluster_state(s, "o-2").0 == "Waiting",
        "second sees o-2",
    )
    .await;
    let (_, reason) = cluster_state(&held, "o-2");
    assert!(
        reason.contains("overlap") && reason.contains("ClusterUpgrade first"),
        "{reason}"
    );
    assert_eq!(
        overlap.upgrades_seen("o-2"),
        0,
        "the newer campaign does not start it"
    );
    // Approved, first upgrades o-2, which fails at the target: second does not count o-2 as
    // already at the target.
    let first = approve_and_finish(&api, "first").await;
    assert_eq!(cluster_state(&first, "o-2").0, "Failed", "{first:?}");
    let second = eventually(
        async || status(&api, "second").await,
        |s| s.state.as_deref() == Some("Finished"),
        "second finishes once first let go of o-2",
    )
    .await;
    let (state, reason) = cluster_state(&second, "o-2");
    assert_eq!(
        state, "Failed",
        "not Skipped as already at the target: {second:?}"
    );
    assert!(reason.contains("not a success"), "{reason}");
    assert_eq!(second.outcome.as_deref(), Some("Failed"));
    assert_eq!(
        overlap.upgrades_seen("o-2"),
        1,
        "one version change, by the older campaign"
    );
    for p in [&staged, &failing, &frozen, &suspended, &overlap] {
        assert!(p.errors().is_empty(), "provider errors: {:?}", p.errors());
    }
    running.stop().await;
}

/// The controller user may do everything the ClusterUpgrade controllers need except patch
/// clusters (granted later by [`GRANT_PATCH`]).
const NO_PATCH: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: upgrades-without-patch}
rules:
  - apiGroups: [upkeep.dev]
    resources: ['*']
    verbs: [get, list, watch, create, patch, update]
  - apiGroups: ['', events.k8s.io]
    resources: [events]
    verbs: [create, patch]
  - apiGroups: [cluster.x-k8s.io]
    resources: [clusters]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: upgrades-without-patch}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: upgrades-without-patch}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: upkeep-controller}]
";

const GRANT_PATCH: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: upgrades-patch}
rules:
  - apiGroups: [cluster.x-k8s.io]
    resources: [clusters]
    verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: upgrades-patch}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: upgrades-patch}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: upkeep-controller}]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_windows_and_policies() {
    let (server, admin) = setup().await;
    assert_eq!(KubeUser::Controller.name(), "upkeep-controller");
    apply(&server, NO_PATCH);
    let controller = client(&server, KubeUser::Controller).await;
    let clock = Clock::default();

    // A controller that recorded the trigger but could not act (here: its patch is denied, as
    // if it had died between the two) ...
    let crash = clusters(
        &server,
        &admin,
        "crash",
        &[("c-1", "x")],
        Duration::from_millis(300),
    )
    .await;
    let metrics = Metrics::new();
    let first = start_upgrades(controller.clone(), &clock, |u| {
        u.with_metrics(metrics.clone())
    });
    apply(&server, &simple("crash", ""));
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "crash");
    let recorded = eventually(
        async || status(&api, "to-30").await,
        |s| {
            cluster_state(s, "c-1").0 == "Triggered"
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "PatchFailed")
        },
        "the trigger is recorded first, the refused patch is the Ready condition",
    )
    .await;
    let triggered_at = recorded
        .cluster("c-1")
        .and_then(|c| c.triggered_at.clone())
        .expect("triggeredAt");
    let ready = condition(&recorded.conditions, "Ready");
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains("crash/c-1")
            && ready.message.contains("forbidden")
            && ready.message.contains("patch"),
        "the cause names the request and the refusal: {}",
        ready.message
    );
    assert!(
        recorded
            .cluster("c-1")
            .is_some_and(|c| c.acknowledged_at.is_none()),
        "a refused patch is not acknowledged: {recorded:?}"
    );
    // No timeout while forbidden: three hours later (the timeout is two) it is still only
    // Triggered, after more refused retries.
    let refused = patch_failures(&metrics);
    clock.jump_to(Timestamp::now() + SignedDuration::from_hours(3));
    eventually(
        async || patch_failures(&metrics),
        |n| *n >= refused + 2,
        "the refused patch is retried with backoff",
    )
    .await;
    let later = status(&api, "to-30").await;
    assert_eq!(
        (later.state.as_deref(), cluster_state(&later, "c-1").0),
        (Some("Running"), "Triggered"),
        "a failed change is not a start: no timeout: {later:?}"
    );
    let seen = eventually(
        async || events(&admin, "crash", "to-30").await,
        |seen| seen.contains(&("Warning".to_owned(), "PatchFailed".to_owned())),
        "a Warning Event names the refused patch",
    )
    .await;
    assert!(
        !seen
            .iter()
            .any(|(_, r)| r == "UpgradeTriggered" || r == "UpgradeFailed"),
        "no start and no failure while the patch is refused: {seen:?}"
    );
    let recs = records(&admin, "crash").await;
    let r = record_of(&recs, "c-1");
    assert_eq!(
        (r.state.as_str(), r.triggered_at.as_ref()),
        ("Triggered", Some(&triggered_at)),
        "the record was written before the patch was tried"
    );
    first.stop().await;
    assert_eq!(
        crash.upgrades_seen("c-1"),
        0,
        "the first controller never changed the cluster"
    );
    assert_eq!(crash.version("c-1").as_deref(), Some("29.0.0"));

    // ... is replaced by a fresh one that may patch: it finishes with exactly one change and
    // keeps the recorded trigger time.
    apply(&server, GRANT_PATCH);
    let second = start_upgrades(controller.clone(), &clock, |u| u);
    let done = eventually(
        async || status(&api, "to-30").await,
        |s| s.state.as_deref() == Some("Finished"),
        "the fresh controller finishes",
    )
    .await;
    assert_eq!(done.outcome.as_deref(), Some("Succeeded"), "{done:?}");
    assert_eq!(crash.upgrades_seen("c-1"), 1, "exactly one version change");
    let recs = records(&admin, "crash").await;
    assert_eq!(recs.len(), 1, "one record: {recs:?}");
    let r = record_of(&recs, "c-1");
    assert_eq!(
        (r.state.as_str(), r.triggered_at.clone()),
        ("Succeeded", Some(triggered_at.clone())),
        "the trigger is not recorded twice"
    );
    assert!(
        r.acknowledged_at
            .as_ref()
            .is_some_and(|a| a.0 >= triggered_at.0 + SignedDuration::from_hours(3)),
        "acknowledged when the patch was allowed (the clock moved 3h): {r:?}"
    );
    assert_eq!(
        event_reasons(&admin, "crash", "to-30")
            .await
            .iter()
            .filter(|r| *r == "UpgradeTriggered")
            .count(),
        1
    );

    // A window far in the future: the cluster waits; at the window's time it starts.
    let window = clusters(
        &server,
        &admin,
        "window",
        &[("w-1", "x")],
        Duration::from_millis(300),
    )
    .await;
    apply(
        &server,
        "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: later, namespace: window}
spec:
  timeZone: UTC
  maintenanceWindows:
    - {name: once, startTime: '2030-06-01T00:00:00Z', endTime: '2030-06-01T06:00:00Z'}
",
    );
    apply(
        &server,
        &simple("window", "  maintenanceScheduleRef: {name: later}\n"),
    );
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "window");
    let waiting = once_waiting(&api, "w-1", "w-1 waits for the window").await;
    let (_, reason) = cluster_state(&waiting, "w-1");
    assert!(
        reason.contains("window closed")
            && reason.contains("later")
            && reason.contains("2030-06-01"),
        "{reason}"
    );
    assert_eq!(window.upgrades_seen("w-1"), 0);
    clock.jump_to("2030-06-01T01:00:00Z".parse().expect("ts"));
    // Time alone does not wake a controller whose next check is years away in real time: touch
    // the cluster, as any watch event would.
    touch(&server, "window", "w-1");
    triggered_once(&window, "w-1", "the window is open: w-1 starts").await;
    let started = status(&api, "to-30").await;
    assert!(
        matches!(cluster_state(&started, "w-1").0, "Triggered" | "Upgrading"),
        "{started:?}"
    );

    // A scheduled start: nothing moves before `startTime`, and the cluster starts once it passes.
    let scheduled = clusters(
        &server,
        &admin,
        "scheduled",
        &[("s-1", "x")],
        Duration::from_millis(300),
    )
    .await;
    apply(
        &server,
        &simple("scheduled", "  startTime: '2031-01-01T06:00:00Z'\n"),
    );
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "scheduled");
    let waiting = once_waiting(&api, "s-1", "s-1 waits for its start time").await;
    let (_, reason) = cluster_state(&waiting, "s-1");
    assert!(
        reason.contains("start time") && reason.contains("2031-01-01"),
        "{reason}"
    );
    assert_eq!(
        scheduled.upgrades_seen("s-1"),
        0,
        "not before the start time"
    );
    clock.jump_to("2031-01-01T06:00:01Z".parse().expect("ts"));
    touch(&server, "scheduled", "s-1");
    triggered_once(&scheduled, "s-1", "the start time passed: s-1 starts").await;
    second.stop().await;

    // A ClusterUpgradePolicy with Manual approval creates a suspended upgrade for a new release.
    server
        .kubectl(&["create", "namespace", "policies"])
        .expect("namespace");
    apply(
        &server,
        "apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: release-chart, namespace: policies}
spec:
  sourceRef: {name: releases}
  policy: {semver: {range: '>=30.0.0'}}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgradePolicy
metadata: {name: releases, namespace: policies}
spec:
  policyRef: {name: release-chart}
  matchers: [{name: all, value: '.*', isRegex: true}]
  stages: [{name: dev, soak: 1h}, {name: prod}]
  approval: Manual
",
    );
    let ctx = Arc::new(Context::new(controller.clone()));
    let task = Running::spawn(|shutdown| run_cluster_upgrade_policies(ctx, shutdown));
    let policies = Api::<ClusterUpgradePolicy>::namespaced(admin.clone(), "policies");
    eventually(
        async || {
            policies
                .get("releases")
                .await
                .expect("get")
                .status
                .map(|s| s.conditions.len())
        },
        |n| n.is_some_and(|n| n > 0),
        "the policy waits for a release",
    )
    .await;
    let vps = Api::<VersionPolicy>::namespaced(admin.clone(), "policies");
    vps.patch_status(
        "release-chart",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"latestVersion": "31.0.0"}})),
    )
    .await
    .expect("a new release");
    let upgrades = Api::<ClusterUpgrade>::namespaced(admin.clone(), "policies");
    let created = eventually(
        async || upgrades.get_opt("releases-31-0-0").await.expect("get"),
        Option::is_some,
        "the upgrade is created",
    )
    .await
    .expect("created");
    assert!(created.spec.suspend, "Manual approval: created suspended");
    assert_eq!(created.spec.target_version.as_deref(), Some("31.0.0"));
    let owners: BTreeSet<String> = created
        .metadata
        .owner_references
        .iter()
        .flatten()
        .map(|o| format!("{}/{}", o.kind, o.name))
        .collect();
    assert!(
        owners.contains("ClusterUpgradePolicy/releases"),
        "{owners:?}"
    );
    let status = eventually(
        async || {
            policies
                .get("releases")
                .await
                .expect("get")
                .status
                .unwrap_or_default()
        },
        |s| s.last_created.is_some(),
        "lastCreated recorded",
    )
    .await;
    assert_eq!(status.last_created.as_deref(), Some("releases-31-0-0"));
    assert_eq!(status.last_version.as_deref(), Some("31.0.0"));
    task.stop().await;
}

/// Everything the ClusterUpgrade controller needs except creating ClusterUpgradeRecords.
const NO_RECORDS: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: upgrades-without-records}
rules:
  - apiGroups: [upkeep.dev]
    resources: [clusterupgrades, clusterupgrades/status, maintenanceschedules, versionpolicies]
    verbs: [get, list, watch, patch, update]
  - apiGroups: [upkeep.dev]
    resources: [clusterupgraderecords]
    verbs: [get, list, watch, patch, delete]
  - apiGroups: ['', events.k8s.io]
    resources: [events]
    verbs: [create, patch]
  - apiGroups: [cluster.x-k8s.io]
    resources: [clusters]
    verbs: [get, list, watch, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: upgrades-without-records}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: upgrades-without-records}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: upkeep-controller}]
";

const GRANT_RECORDS: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: upgrades-records}
rules:
  - apiGroups: [upkeep.dev]
    resources: [clusterupgraderecords]
    verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: upgrades-records}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: upgrades-records}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: upkeep-controller}]
";

/// Records come before the change, a campaign's status stays small over 300 clusters while
/// every cluster gets its record, and retention keeps the newest records of a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_come_first_status_stays_bounded_and_retention_holds() {
    let (server, admin) = setup().await;
    apply(&server, NO_RECORDS);
    let controller = client(&server, KubeUser::Controller).await;
    let clock = Clock::default();
    let metrics = Metrics::new();

    // No record, no change: the controller may patch the cluster but not record it.
    let first = clusters(
        &server,
        &admin,
        "first",
        &[("n-1", "x")],
        Duration::from_millis(300),
    )
    .await;
    let running = start_upgrades(controller.clone(), &clock, |u| {
        u.with_metrics(metrics.clone()).with_records_per_cluster(2)
    });
    apply(&server, &simple("first", ""));
    eventually(
        async || metrics.encode(),
        |text| {
            text.lines().any(|l| {
                l.starts_with("upkeep_reconcile_errors_total")
                    && l.contains("ClusterUpgrade")
                    && l.contains("error=\"Create\"")
            })
        },
        "creating the record is refused",
    )
    .await;
    assert_eq!(
        first.upgrades_seen("n-1"),
        0,
        "the cluster is not changed before its record exists"
    );
    apply(&server, GRANT_RECORDS);
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "first");
    let done = eventually(
        async || status(&api, "to-30").await,
        |s| s.state.as_deref() == Some("Finished"),
        "recorded, then upgraded",
    )
    .await;
    assert_eq!(done.outcome.as_deref(), Some("Succeeded"), "{done:?}");
    assert_eq!(first.upgrades_seen("n-1"), 1);
    assert_eq!(
        record_of(&records(&admin, "first").await, "n-1").state,
        "Succeeded"
    );

    // 300 clusters, no concurrency limit: each gets its record, the status only counts them.
    let names: Vec<String> = (0..300).map(|i| format!("c-{i:03}")).collect();
    let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    let fleet = clusters(&server, &admin, "fleet", &pairs, Duration::from_millis(200)).await;
    apply(&server, &simple("fleet", ""));
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "fleet");
    let mut largest = 0;
    let done = eventually_within(
        Duration::from_secs(240),
        async || {
            let s = status(&api, "to-30").await;
            largest = largest.max(serde_json::to_vec(&s).expect("json").len());
            s
        },
        |s| s.state.as_deref() == Some("Finished"),
        "300 clusters upgrade",
    )
    .await;
    assert_eq!(
        done.outcome.as_deref(),
        Some("Succeeded"),
        "{:?}",
        done.counts
    );
    assert_eq!(
        done.counts,
        Some(ClusterCounts {
            total: 300,
            succeeded: 300,
            ..ClusterCounts::default()
        })
    );
    assert_eq!(done.progress.as_deref(), Some("300/300 succeeded"));
    // 100 entries of ~250 bytes at most, whatever the fleet (all 300 would be ~75 KB).
    assert!(
        largest < 40 * 1024,
        "the status stays bounded while 300 clusters run: {largest} bytes"
    );
    let recs = records(&admin, "fleet").await;
    assert_eq!(recs.len(), 300, "one record per cluster");
    for name in &names {
        assert_eq!(record_of(&recs, name).state, "Succeeded", "{name}");
        assert!(
            record_of(&recs, name).acknowledged_at.is_some(),
            "{name}: the acknowledgement reached the record with a later write"
        );
        assert_eq!(fleet.upgrades_seen(name), 1, "{name}: one change");
    }
    // One Event per reason and reconcile: together they count every cluster once, in fewer
    // Events than clusters.
    for reason in ["UpgradeTriggered", "UpgradeSucceeded"] {
        let notes = event_notes(&admin, "fleet", "to-30", reason).await;
        let counted: usize = notes.iter().map(|n| clusters_in_note(n)).sum();
        assert_eq!(counted, 300, "{reason}: every cluster once: {notes:?}");
        assert!(
            notes.len() < 300,
            "{reason}: folded: {} Events",
            notes.len()
        );
    }
    let one = server
        .kubectl(&[
            "get",
            "clusterupgraderecords",
            "-n",
            "fleet",
            "-l",
            "cluster=c-007",
            "-o",
            "jsonpath={.items[*].spec.cluster}",
        ])
        .expect("kubectl get -l cluster=c-007");
    assert_eq!(one, "c-007", "kubectl selects a cluster's records by label");

    // Retention 2: three upgrades of one cluster keep the two newest records.
    let kept = clusters(
        &server,
        &admin,
        "kept",
        &[("k-1", "x")],
        Duration::from_millis(300),
    )
    .await;
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "kept");
    for target in ["30.0.0", "31.0.0", "32.0.0"] {
        let name = format!("to-{}", &target[..2]);
        apply(
            &server,
            &format!(
                "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {{name: {name}, namespace: kept}}
spec:
  matchers: [{{name: all, value: '.*', isRegex: true}}]
  targetVersion: {target}
"
            ),
        );
        let done = eventually(
            async || status(&api, &name).await,
            |s| s.state.as_deref() == Some("Finished"),
            "the upgrade finishes",
        )
        .await;
        assert_eq!(
            done.outcome.as_deref(),
            Some("Succeeded"),
            "{name}: {done:?}"
        );
        assert_eq!(kept.version("k-1").as_deref(), Some(target));
    }
    let recs = eventually(
        async || records(&admin, "kept").await,
        |r| r.len() == 2,
        "the oldest record is deleted",
    )
    .await;
    let mut campaigns: Vec<&str> = recs.iter().map(|r| r.spec.campaign.as_str()).collect();
    campaigns.sort_unstable();
    assert_eq!(campaigns, ["to-31", "to-32"], "the newest two are kept");
    for p in [&first, &fleet, &kept] {
        assert!(p.errors().is_empty(), "provider errors: {:?}", p.errors());
    }
    running.stop().await;
}

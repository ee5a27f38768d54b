//! An invalid spec is loud once: against a real kube-apiserver 1.20.2, an invalid
//! MaintenanceSchedule and an invalid ClusterUpgrade each get exactly one Warning Event
//! (reason `InvalidSpec`, the note naming the field) per generation — not again when they are
//! reconciled again, not again after the controllers restart (the status records the
//! generation as Stalled), and once more when an edit makes a new generation that is still
//! invalid.
//!
//! "Reconciled again" is observed, not waited for: each run of the controllers counts its
//! reconciles in its own metrics, and annotating the schedule (no new generation) wakes both
//! controllers (the ClusterUpgrade controller watches the schedules of its namespace).

mod support;
use support::{Running, apply, client, eventually};

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use upkeep_api::{ClusterUpgrade, MaintenanceSchedule};
use upkeep_controller::cluster_upgrade::{UpgradeSettings, run_cluster_upgrades};
use upkeep_controller::framework::Context;
use upkeep_controller::metrics::Metrics;
use upkeep_controller::schedule::run_schedules;
use upkeep_testenv::cluster_api::crd_yaml;
use upkeep_testenv::{KubeApiServer, KubeUser, upkeep_crds};

fn schedule(time_zone: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {{name: bad, namespace: default}}
spec:
  timeZone: {time_zone}
  maintenanceWindows:
    - {{name: w, startTime: 2026-01-06T22:00:00, endTime: 2026-01-07T02:00:00, recurrence: FREQ=WEEKLY}}
"
    )
}

fn upgrade(timeout: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {{name: bad, namespace: default}}
spec:
  targetVersion: 30.0.0
  matchers: [{{name: all, value: '.*', isRegex: true}}]
  strategy: {{timeout: {timeout}}}
"
    )
}

/// The schedule and upgrade controllers, counting reconciles in `metrics`.
fn start(client: &kube::Client, metrics: &Metrics) -> (Running, Running) {
    let ctx = Arc::new(
        Context::new(client.clone())
            .with_metrics(metrics.clone())
            .with_retry_after(Duration::from_millis(500)),
    );
    let schedules = {
        let ctx = ctx.clone();
        Running::spawn(|shutdown| run_schedules(ctx, shutdown))
    };
    let upgrades = UpgradeSettings::new(ctx).with_poll(Duration::from_millis(300));
    let upgrades = Running::spawn(|shutdown| run_cluster_upgrades(Arc::new(upgrades), shutdown));
    (schedules, upgrades)
}

/// Successful reconciles of `kind` counted in `metrics`.
fn reconciles(metrics: &Metrics, kind: &str) -> u64 {
    let prefix = format!("upkeep_reconcile_total{{kind=\"{kind}\",result=\"success\"}} ");
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The notes of the InvalidSpec Warning Events about `kind` `bad`, oldest first.
async fn warnings(admin: &kube::Client, kind: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(admin.clone(), "default");
    let mut events: Vec<Event> = api
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some("bad")
            }) && e.reason.as_deref() == Some("InvalidSpec")
        })
        .collect();
    events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    for e in &events {
        assert_eq!(e.type_.as_deref(), Some("Warning"), "{e:?}");
    }
    events.into_iter().filter_map(|e| e.note).collect()
}

/// The generation the Stalled condition records for `bad` of `kind`.
async fn stalled_generation(admin: &kube::Client, kind: &str) -> Option<i64> {
    let conditions = match kind {
        "MaintenanceSchedule" => Api::<MaintenanceSchedule>::namespaced(admin.clone(), "default")
            .get("bad")
            .await
            .expect("schedule")
            .status
            .map(|s| s.conditions),
        _ => Api::<ClusterUpgrade>::namespaced(admin.clone(), "default")
            .get("bad")
            .await
            .expect("upgrade")
            .status
            .map(|s| s.conditions),
    };
    conditions?
        .into_iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "InvalidSpec")
        .and_then(|c| c.observed_generation)
}

/// Wakes both controllers without a new generation, and waits until each has reconciled since.
async fn reconcile_again(server: &KubeApiServer, metrics: &Metrics, n: &str) {
    let before = (
        reconciles(metrics, "MaintenanceSchedule"),
        reconciles(metrics, "ClusterUpgrade"),
    );
    server
        .kubectl(&[
            "annotate",
            "--overwrite",
            "maintenanceschedules",
            "bad",
            "-n",
            "default",
            &format!("touched={n}"),
        ])
        .expect("annotate");
    eventually(
        async || {
            (
                reconciles(metrics, "MaintenanceSchedule"),
                reconciles(metrics, "ClusterUpgrade"),
            )
        },
        |now| now.0 > before.0 && now.1 > before.1,
        "both controllers reconciled again",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_is_one_warning_per_generation() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds(), &crd_yaml()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let admin = client(&server, KubeUser::Admin).await;
    apply(&server, &schedule("Mars/Olympus_Mons"));
    apply(&server, &upgrade("soon"));
    let kinds = [
        ("MaintenanceSchedule", "spec.timeZone"),
        ("ClusterUpgrade", "spec.strategy.timeout"),
    ];

    let metrics = Metrics::new();
    let (schedules, upgrades) = start(&admin, &metrics);
    for (kind, field) in kinds {
        let notes = eventually(
            async || warnings(&admin, kind).await,
            |w| !w.is_empty(),
            &format!("{kind}: a Warning Event"),
        )
        .await;
        assert!(
            notes[0].contains(field),
            "{kind}: the note names {field}: {notes:?}"
        );
        assert!(
            notes[0].contains("hint:"),
            "{kind}: with the hint: {notes:?}"
        );
        assert_eq!(stalled_generation(&admin, kind).await, Some(1), "{kind}");
    }
    reconcile_again(&server, &metrics, "1").await;
    for (kind, _) in kinds {
        assert_eq!(
            warnings(&admin, kind).await.len(),
            1,
            "{kind}: not again on a reconcile"
        );
    }

    // A restart forgets what this process announced; the status still says generation 1.
    schedules.stop().await;
    upgrades.stop().await;
    let metrics = Metrics::new();
    let (schedules, upgrades) = start(&admin, &metrics);
    reconcile_again(&server, &metrics, "2").await;
    for (kind, _) in kinds {
        assert_eq!(
            warnings(&admin, kind).await.len(),
            1,
            "{kind}: not again after a restart"
        );
    }

    // An edit that is still invalid is a new generation: one more Warning each.
    apply(&server, &schedule("Venus/Maxwell_Montes"));
    apply(&server, &upgrade("later"));
    for (kind, _) in kinds {
        eventually(
            async || stalled_generation(&admin, kind).await,
            |g| *g == Some(2),
            &format!("{kind}: generation 2 stalled"),
        )
        .await;
        let notes = eventually(
            async || warnings(&admin, kind).await,
            |w| w.len() >= 2,
            &format!("{kind}: a second Warning Event"),
        )
        .await;
        assert!(
            notes[1].contains("Venus/Maxwell_Montes") || notes[1].contains("later"),
            "{kind}: the new generation's problem: {notes:?}"
        );
    }
    reconcile_again(&server, &metrics, "3").await;
    for (kind, _) in kinds {
        assert_eq!(
            warnings(&admin, kind).await.len(),
            2,
            "{kind}: one per generation"
        );
    }
    schedules.stop().await;
    upgrades.stop().await;
}

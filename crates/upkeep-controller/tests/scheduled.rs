//! kubectl-gs scheduled-upgrade annotations against a real kube-apiserver 1.20.2 with etcd, the
//! ClusterUpgrade controller and the test Cluster API provider loop (upkeep-testenv
//! `cluster_api::Provider`): an annotated Cluster is upgraded as a one-cluster ClusterUpgrade
//! `scheduled-<cluster>` at its time, the annotations are removed after success, a changed
//! annotation reschedules it, removed annotations cancel it, a frozen cluster is refused and an
//! invalid time is told, each with an Event on the Cluster. Both controllers run as the binary
//! runs them, over one shared Cluster watch (`run_cluster_controllers`), and every annotation is
//! added after they started: a Cluster that gains (or loses) the annotations later is seen.

mod support;
use support::{Running, client, eventually, eventually_within, next_second, status};

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use upkeep_api::ClusterUpgrade;
use upkeep_api::scheduled::{TARGET_RELEASE, TARGET_TIME};
use upkeep_controller::cluster_upgrade::{UpgradeSettings, cluster_resource};
use upkeep_controller::controllers::run_cluster_controllers;
use upkeep_controller::framework::Context;
use upkeep_testenv::cluster_api::{Provider, cluster_yaml, crd_yaml};
use upkeep_testenv::{KubeApiServer, KubeUser, upkeep_crds};

/// kubectl-gs' own test schedules `--scheduled-time "2022-01-01 01:00"`: in the past now.
const PAST: &str = "01 Jan 22 01:00 UTC";
/// Far enough ahead that nothing starts during the test.
const FUTURE: &str = "01 Jan 68 00:00 UTC";

async fn namespace_with(
    server: &KubeApiServer,
    admin: &kube::Client,
    ns: &str,
    cluster: &str,
) -> Provider {
    server
        .kubectl(&["create", "namespace", ns])
        .expect("namespace");
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cluster_yaml(cluster, ns, &[], "29.0.0"),
        )
        .expect("cluster");
    let provider = Provider::start(admin.clone(), ns).with_step(Duration::from_millis(300));
    eventually(
        async || provider.seen(cluster),
        |s| *s,
        "the provider sees the cluster",
    )
    .await;
    next_second().await;
    provider
}

fn annotate(server: &KubeApiServer, ns: &str, cluster: &str, pairs: &[String]) {
    let mut args = vec![
        "annotate",
        "--overwrite",
        "-n",
        ns,
        "clusters.cluster.x-k8s.io",
        cluster,
    ];
    args.extend(pairs.iter().map(String::as_str));
    server.kubectl(&args).expect("annotate");
}

fn schedule(server: &KubeApiServer, ns: &str, cluster: &str, release: &str, time: &str) {
    annotate(
        server,
        ns,
        cluster,
        &[
            format!("{TARGET_RELEASE}={release}"),
            format!("{TARGET_TIME}={time}"),
        ],
    );
}

async fn cluster(admin: &kube::Client, ns: &str, name: &str) -> DynamicObject {
    Api::<DynamicObject>::namespaced_with(admin.clone(), ns, &cluster_resource())
        .get(name)
        .await
        .expect("cluster")
}

/// `(reason, note)` of the Events regarding the Cluster `name`.
async fn cluster_events(admin: &kube::Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin.clone(), ns);
    api.list(&kube::api::ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.name.as_deref() == Some(name) && r.kind.as_deref() == Some("Cluster")
            })
        })
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

fn has(events: &[(String, String)], reason: &str) -> bool {
    events.iter().any(|(r, _)| r == reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_annotations_are_honoured() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds(), &crd_yaml()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let admin = client(&server, KubeUser::Admin).await;
    let _ok = namespace_with(&server, &admin, "sched-ok", "ok-1").await;
    let _cancel = namespace_with(&server, &admin, "sched-cancel", "c-1").await;
    let _frozen = namespace_with(&server, &admin, "sched-frozen", "f-1").await;
    let _bad = namespace_with(&server, &admin, "sched-bad", "b-1").await;
    annotate(
        &server,
        "sched-frozen",
        "f-1",
        &[
            "upkeep.dev/freeze-until=2099-01-01T00:00:00Z".into(),
            "upkeep.dev/freeze-reason=audit".into(),
        ],
    );

    let ctx = Arc::new(Context::new(admin.clone()).with_retry_after(Duration::from_millis(500)));
    let upgrades = UpgradeSettings::new(ctx).with_poll(Duration::from_millis(300));
    let running = Running::spawn(|s| run_cluster_controllers(Arc::new(upgrades), s));

    // Scheduled ahead: a pending ClusterUpgrade waits for its start time.
    schedule(&server, "sched-ok", "ok-1", "30.0.0", FUTURE);
    schedule(&server, "sched-cancel", "c-1", "30.0.0", FUTURE);
    let ok_api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "sched-ok");
    let waiting = eventually(
        async || status(&ok_api, "scheduled-ok-1").await,
        |s| s.cluster("ok-1").and_then(|c| c.state.as_deref()) == Some("Waiting"),
        "the scheduled upgrade waits for its time",
    )
    .await;
    let u = ok_api
        .get("scheduled-ok-1")
        .await
        .expect("the ClusterUpgrade");
    assert_eq!(u.spec.start_time.as_deref(), Some("2068-01-01T00:00:00Z"));
    assert_eq!(u.spec.target_version.as_deref(), Some("30.0.0"));
    assert_eq!(
        u.metadata
            .owner_references
            .as_ref()
            .map(|o| o[0].name.as_str()),
        Some("ok-1"),
        "owned by its Cluster"
    );
    assert!(
        waiting
            .cluster("ok-1")
            .and_then(|c| c.reason.as_deref())
            .is_some_and(|r| r.contains("2068")),
        "{waiting:?}"
    );

    // Rescheduled to a time already past: upgraded now, the annotations removed afterwards.
    schedule(&server, "sched-ok", "ok-1", "30.0.0", PAST);
    let done = eventually_within(
        Duration::from_secs(60),
        async || cluster(&admin, "sched-ok", "ok-1").await,
        |c| {
            let a = c.metadata.annotations.clone().unwrap_or_default();
            !a.contains_key(TARGET_RELEASE) && !a.contains_key(TARGET_TIME)
        },
        "the annotations are removed after the upgrade",
    )
    .await;
    assert_eq!(
        done.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("release.giantswarm.io/version"))
            .map(String::as_str),
        Some("30.0.0"),
        "upgraded before the annotations went"
    );
    let finished = status(&ok_api, "scheduled-ok-1").await;
    assert_eq!(
        finished.outcome.as_deref(),
        Some("Succeeded"),
        "{finished:?}"
    );
    eventually(
        async || cluster_events(&admin, "sched-ok", "ok-1").await,
        |e| has(e, "ScheduledUpgradeDone"),
        "the removal is an Event on the Cluster",
    )
    .await;

    // Removed before the time: cancelled.
    annotate(
        &server,
        "sched-cancel",
        "c-1",
        &[format!("{TARGET_RELEASE}-"), format!("{TARGET_TIME}-")],
    );
    let cancel_api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "sched-cancel");
    eventually(
        async || {
            cancel_api
                .get_opt("scheduled-c-1")
                .await
                .expect("get")
                .is_none()
        },
        |gone| *gone,
        "removing the annotations cancels the pending upgrade",
    )
    .await;
    eventually(
        async || cluster_events(&admin, "sched-cancel", "c-1").await,
        |e| has(e, "ScheduledUpgradeCancelled"),
        "the cancellation is an Event on the Cluster",
    )
    .await;

    // Frozen: refused, with an Event on the Cluster; nothing changed.
    schedule(&server, "sched-frozen", "f-1", "30.0.0", PAST);
    let refused = eventually(
        async || cluster_events(&admin, "sched-frozen", "f-1").await,
        |e| has(e, "ScheduledUpgradeRefused"),
        "a frozen cluster's scheduled upgrade is refused on the Cluster",
    )
    .await;
    assert!(
        refused
            .iter()
            .any(|(r, n)| r == "ScheduledUpgradeRefused" && n.contains("audit")),
        "{refused:?}"
    );
    let frozen = cluster(&admin, "sched-frozen", "f-1").await;
    assert_eq!(
        frozen
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("release.giantswarm.io/version"))
            .map(String::as_str),
        Some("29.0.0")
    );

    // Invalid time: told on the Cluster, nothing created.
    schedule(
        &server,
        "sched-bad",
        "b-1",
        "30.0.0",
        "15 Sept 21 08:00 UTC",
    );
    let told = eventually(
        async || cluster_events(&admin, "sched-bad", "b-1").await,
        |e| has(e, "ScheduledUpgradeInvalid"),
        "an invalid time is an Event on the Cluster",
    )
    .await;
    assert!(
        told.iter()
            .any(|(_, n)| n.contains(TARGET_TIME) && n.contains("column 7") && n.contains("hint:")),
        "{told:?}"
    );
    let bad_api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "sched-bad");
    assert!(
        bad_api
            .get_opt("scheduled-b-1")
            .await
            .expect("get")
            .is_none()
    );

    running.stop().await;
}

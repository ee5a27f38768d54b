//! ClusterUpgrades whose `releaseRef` names a Giant Swarm `Release`, against a real
//! kube-apiserver 1.20.2 with etcd and the test Cluster API provider loop.
//!
//! - The design notes' (RFC 0015) ClusterUpgrade, verbatim but for our apiVersion and kind, is
//!   accepted by the server and reads back with `releaseRef.apiVersion`/`kind` (nothing pruned).
//! - A Release whose kind is not installed yet waits with that reason; once the Release CRD
//!   (upkeep-testenv's, cluster-scoped as Giant Swarm's) and an `active` Release
//!   exist, the clusters of the Release's provider are upgraded to its version and the others
//!   are skipped with a reason naming both providers.
//! - `deprecated` and `wip` Releases are refused, and a missing one waits, each with its reason
//!   in the clusters' status and the `Ready` condition.

mod support;
use support::{Running, apply, client, condition, eventually, next_second, status};

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use upkeep_api::ClusterUpgrade;
use upkeep_api::cluster_upgrade::ClusterUpgradeStatus;
use upkeep_controller::cluster_upgrade::{UpgradeSettings, run_cluster_upgrades};
use upkeep_controller::framework::Context;
use upkeep_testenv::cluster_api::{Provider, api_resource, crd_yaml};
use upkeep_testenv::cluster_app::{release_crd_yaml, release_yaml};
use upkeep_testenv::{KubeApiServer, KubeUser, upkeep_crds};

/// The RFC's example, verbatim but for our apiVersion and kind (the RFC leaves them empty):
/// the same text upkeep-api's `load` tests read.
const RFC_EXAMPLE: &str = include_str!("../../upkeep-api/tests/data/rfc0015_cluster_upgrade.yaml");

fn release(name: &str, state: &str) -> String {
    release_yaml(
        name,
        state,
        &[("cluster-aws", "2.4.0"), ("kubernetes", "1.30.4")],
    )
}

/// A Cluster at 29.0.0 whose infrastructure is `infra` (`None`: no `infrastructureRef`).
fn cluster(name: &str, namespace: &str, infra: Option<&str>) -> String {
    let spec = infra.map_or_else(
        || "spec: {}\n".to_owned(),
        |kind| {
            format!(
                "spec:\n  infrastructureRef: {{apiVersion: infrastructure.cluster.x-k8s.io/v1beta2, kind: {kind}, name: {name}}}\n"
            )
        },
    );
    format!(
        "apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{release.giantswarm.io/version: 29.0.0}}
{spec}"
    )
}

fn upgrade(name: &str, namespace: &str, release: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  matchers: [{{name: all, value: '.*', isRegex: true}}]
  releaseRef: {{apiVersion: release.giantswarm.io/v1alpha1, kind: Release, name: {release}}}
"
    )
}

fn state_of<'a>(s: &'a ClusterUpgradeStatus, cluster: &str) -> (&'a str, &'a str) {
    s.cluster(cluster).map_or(("-", "-"), |c| {
        (
            c.state.as_deref().unwrap_or("-"),
            c.reason.as_deref().unwrap_or(""),
        )
    })
}

async fn label(admin: &kube::Client, namespace: &str, cluster: &str) -> Option<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), namespace, &api_resource());
    api.get(cluster)
        .await
        .expect("cluster")
        .metadata
        .labels
        .and_then(|l| l.get("release.giantswarm.io/version").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rfc_example_is_kept_whole_by_the_api_server() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds()])
        .await
        .expect("kube-apiserver with the CRDs established");
    apply(&server, RFC_EXAMPLE);
    let json = server
        .kubectl(&[
            "get",
            "-n",
            "default",
            "clusterupgrades.upkeep.dev",
            "upgrade-to-cluster-openstack-v1.20",
            "-o",
            "json",
        ])
        .expect("read back");
    let object: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        object["spec"]["releaseRef"],
        serde_json::json!({"apiVersion": "application.giantswarm.io/v1alpha1", "kind": "Release", "name": "v1.20.0"}),
        "releaseRef kept as written (nothing pruned)"
    );
    assert_eq!(object["spec"]["startTime"], "2021-03-10T07:00:00Z");
    assert_eq!(
        object["spec"]["matchers"][1],
        serde_json::json!({"name": "dev_clusters", "key": "stage", "value": "dev", "isRegex": true}),
    );
    let typed: ClusterUpgrade = serde_json::from_value(object).expect("a ClusterUpgrade");
    assert!(typed.validate().is_ok(), "{:?}", typed.validate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story: missing kind, then active, deprecated, wip, missing
async fn releases_are_resolved_refused_or_waited_for() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds(), &crd_yaml()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let admin = client(&server, KubeUser::Admin).await;
    for ns in ["gs", "refused"] {
        server.kubectl(&["create", "namespace", ns]).expect("ns");
    }
    let clusters = [
        cluster("aws-1", "gs", Some("AWSCluster")),
        cluster("aws-2", "gs", Some("AWSCluster")),
        cluster("az-1", "gs", Some("AzureCluster")),
        cluster("odd-1", "gs", Some("DockerCluster")),
        cluster("r-1", "refused", Some("AWSCluster")),
    ];
    apply(&server, &clusters.join("---\n"));
    let provider = Provider::start(admin.clone(), "gs").with_step(Duration::from_millis(300));
    eventually(
        async || ["aws-1", "aws-2", "az-1", "odd-1"].map(|c| provider.seen(c)),
        |seen| seen.iter().all(|s| *s),
        "the provider sees every cluster",
    )
    .await;
    next_second().await;

    let ctx = Arc::new(Context::new(admin.clone()));
    let settings = UpgradeSettings::new(ctx)
        .with_poll(Duration::from_millis(300))
        .with_retry_after(Duration::from_millis(500));
    let running = Running::spawn(|shutdown| run_cluster_upgrades(Arc::new(settings), shutdown));

    // The Release kind is not installed yet: the campaign waits, saying so.
    apply(&server, &upgrade("to-30", "gs", "aws-30.0.0"));
    let gs: Api<ClusterUpgrade> = Api::namespaced(admin.clone(), "gs");
    let waiting = eventually(
        async || status(&gs, "to-30").await,
        |s| state_of(s, "aws-1").0 == "Waiting",
        "to-30 waits for the Release kind",
    )
    .await;
    assert!(
        state_of(&waiting, "aws-1").1.contains("Release kind")
            && state_of(&waiting, "aws-1").1.contains("not installed"),
        "{waiting:?}"
    );
    assert_eq!(waiting.state.as_deref(), Some("Waiting"));

    // The kind and the Releases appear: seen on the next poll, no change to the upgrade.
    server
        .apply_crds(&release_crd_yaml())
        .expect("Release CRD established");
    apply(
        &server,
        &[
            release("aws-30.0.0", "active"),
            release("aws-28.0.0", "deprecated"),
            release("aws-31.0.0", "wip"),
        ]
        .join("---\n"),
    );
    let done = eventually(
        async || status(&gs, "to-30").await,
        |s| s.state.as_deref() == Some("Finished"),
        "to-30 finishes",
    )
    .await;
    assert_eq!(done.outcome.as_deref(), Some("Succeeded"), "{done:?}");
    assert_eq!(
        done.to_release.as_deref(),
        Some("30.0.0"),
        "the version, without the provider"
    );
    assert_eq!(done.from_release.as_deref(), Some("29.0.0"));
    for c in ["aws-1", "aws-2"] {
        assert_eq!(
            support::record_state(&admin, "gs", c).await,
            "Succeeded",
            "{c}: its record"
        );
        assert_eq!(
            label(&admin, "gs", c).await.as_deref(),
            Some("30.0.0"),
            "{c} upgraded"
        );
    }
    let (state, reason) = state_of(&done, "az-1");
    assert_eq!(state, "Skipped");
    assert!(
        reason.contains("provider aws") && reason.contains("provider is azure"),
        "names both providers: {reason}"
    );
    assert!(
        state_of(&done, "odd-1").1.contains("unknown"),
        "an unknown infrastructure kind is skipped: {done:?}"
    );
    for c in ["az-1", "odd-1"] {
        assert_eq!(
            label(&admin, "gs", c).await.as_deref(),
            Some("29.0.0"),
            "{c} untouched"
        );
    }

    // Deprecated and wip are refused, a missing Release waits: each says why.
    let refused: Api<ClusterUpgrade> = Api::namespaced(admin.clone(), "refused");
    let cases = [
        ("old", "aws-28.0.0", "deprecated"),
        ("next", "aws-31.0.0", "work in progress"),
        ("gone", "aws-32.0.0", "not found"),
    ];
    for (name, rel, _) in cases {
        apply(&server, &upgrade(name, "refused", rel));
    }
    for (name, rel, why) in cases {
        let s = eventually(
            async || status(&refused, name).await,
            |s| state_of(s, "r-1").0 == "Waiting" && !s.conditions.is_empty(),
            name,
        )
        .await;
        let (_, reason) = state_of(&s, "r-1");
        assert!(
            reason.contains(rel) && reason.contains(why),
            "{name}: {reason}"
        );
        let ready = condition(&s.conditions, "Ready");
        assert_eq!(ready.status, "False", "{name}");
        assert!(ready.message.contains(why), "{name}: {}", ready.message);
        assert_eq!(s.to_release, None, "{name}: no target");
    }
    assert_eq!(
        label(&admin, "refused", "r-1").await.as_deref(),
        Some("29.0.0"),
        "nothing was upgraded to a refused or missing release"
    );
    running.stop().await;
}

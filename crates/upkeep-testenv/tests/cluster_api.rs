//! The Cluster API fixture on the REAL test API server: the `Cluster` CRD is accepted by
//! kube-apiserver 1.20, and the test provider loop rolls conditions the way the rollout code
//! expects (first sight → Ready; version change → Upgrading → Ready with a fresh
//! lastTransitionTime, or → UpgradeFailed when the cluster asks for it), counting each version
//! change once.
//!
//! One API server for the whole walk-through (it takes seconds to start). Nothing sleeps:
//! waiting is polling against a deadline.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject};
use serde_json::Value;
use upkeep_testenv::cluster_api::{
    FAIL_ANNOTATION, Provider, VERSION_LABEL, api_resource, cluster_yaml, cluster_yaml_topology,
    crd_yaml,
};
use upkeep_testenv::{KubeApiServer, KubeUser};

const DEADLINE: Duration = Duration::from_secs(30);
const NAMESPACE: &str = "org-a";

async fn admin_client(server: &KubeApiServer) -> kube::Client {
    upkeep_testenv::install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig(KubeUser::Admin))
        .expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// The condition `kind` of a cluster's status.
fn condition(cluster: &DynamicObject, kind: &str) -> Option<Value> {
    cluster.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
}

fn transition(c: &Value) -> jiff::Timestamp {
    c["lastTransitionTime"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("lastTransitionTime in {c}"))
}

/// Polls cluster `name` until `done` holds.
async fn wait_for(
    api: &Api<DynamicObject>,
    provider: &Provider,
    name: &str,
    done: impl Fn(&DynamicObject) -> bool,
    what: &str,
) -> DynamicObject {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let cluster = api.get(name).await.expect("get cluster");
        if done(&cluster) {
            return cluster;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {what}; status {}; provider errors {:?}",
            cluster.data["status"],
            provider.errors()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is(c: Option<Value>, status: &str, reason: Option<&str>) -> bool {
    c.is_some_and(|c| c["status"] == status && c["reason"].as_str() == reason)
}

#[tokio::test]
async fn provider_rolls_conditions_on_version_changes() {
    let server = KubeApiServer::start().await.expect("start API server");
    server
        .apply_crds(&crd_yaml())
        .expect("CRD accepted by kube-apiserver 1.20 and established");
    server
        .kubectl(&["create", "namespace", NAMESPACE])
        .expect("namespace");
    let client = admin_client(&server).await;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &api_resource());
    let provider = Provider::start(client.clone(), NAMESPACE).with_step(Duration::from_millis(200));

    let clusters = [
        cluster_yaml("ok", NAMESPACE, &[("env", "dev")], "24.0.0"),
        cluster_yaml("broken", NAMESPACE, &[("env", "dev")], "24.0.0"),
        cluster_yaml_topology("topo", NAMESPACE, &[], "v1.29.3"),
    ];
    for yaml in &clusters {
        server
            .kubectl_stdin(&["apply", "-f", "-"], yaml)
            .expect("apply cluster");
    }

    // First sight: Ready without an upgrade.
    let mut first_sight = jiff::Timestamp::UNIX_EPOCH;
    for name in ["ok", "broken", "topo"] {
        let cluster = wait_for(
            &api,
            &provider,
            name,
            |c| {
                is(condition(c, "Ready"), "True", None)
                    && is(condition(c, "ControlPlaneReady"), "True", None)
            },
            "a new cluster is simply Ready",
        )
        .await;
        first_sight = first_sight.max(transition(&condition(&cluster, "Ready").unwrap()));
        assert_eq!(
            provider.upgrades_seen(name),
            0,
            "{name}: first sight is no upgrade"
        );
    }
    // Transitions have whole seconds: change the versions in a later second than the first
    // sight, so "transitioned at or after the change" cannot be met by the first sight.
    while jiff::Timestamp::now().as_second() <= first_sight.as_second() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let changed_at = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    server
        .kubectl(&[
            "-n",
            NAMESPACE,
            "annotate",
            "cluster",
            "broken",
            &format!("{FAIL_ANNOTATION}=etcd quorum lost"),
        ])
        .expect("annotate");
    for name in ["ok", "broken"] {
        server
            .kubectl(&[
                "-n",
                NAMESPACE,
                "label",
                "--overwrite",
                "cluster",
                name,
                &format!("{VERSION_LABEL}=25.0.0"),
            ])
            .expect("label");
    }
    server
        .kubectl(&[
            "-n",
            NAMESPACE,
            "patch",
            "cluster",
            "topo",
            "--type=merge",
            "-p",
            r#"{"spec":{"topology":{"version":"v1.30.1"}}}"#,
        ])
        .expect("patch topology");

    // Each ends Ready with transitions after the change, or failed when asked to.
    let cases = [
        ("ok", "label change ends Ready"),
        (
            "topo",
            "spec.topology.version is the version place when set",
        ),
    ];
    for (name, reason) in cases {
        let cluster = wait_for(
            &api,
            &provider,
            name,
            |c| {
                is(condition(c, "Ready"), "True", None)
                    && condition(c, "Ready").is_some_and(|r| transition(&r) >= changed_at)
            },
            reason,
        )
        .await;
        for kind in ["Ready", "ControlPlaneReady"] {
            let c = condition(&cluster, kind).unwrap();
            assert_eq!(c["status"], "True", "{name} {kind}: {reason}");
            assert!(transition(&c) >= changed_at, "{name} {kind} fresh: {c}");
        }
        assert_eq!(provider.upgrades_seen(name), 1, "{name}: {reason}");
    }
    let broken = wait_for(
        &api,
        &provider,
        "broken",
        |c| is(condition(c, "Ready"), "False", Some("UpgradeFailed")),
        "the fail annotation ends in failure",
    )
    .await;
    let ready = condition(&broken, "Ready").unwrap();
    let status = &broken.data["status"];
    let failure_cases = [
        (
            ready["severity"].clone(),
            "Error",
            "severity Error marks a failure",
        ),
        (
            ready["message"].clone(),
            "etcd quorum lost",
            "the message is the annotation's",
        ),
        (
            status["failureReason"].clone(),
            "UpgradeFailed",
            "v1beta1 failureReason",
        ),
        (
            status["failureMessage"].clone(),
            "etcd quorum lost",
            "v1beta1 failureMessage",
        ),
    ];
    for (actual, expected, reason) in failure_cases {
        assert_eq!(actual, expected, "{reason}: {status}");
    }
    assert_eq!(provider.upgrades_seen("broken"), 1, "one failed upgrade");

    // A change that is not a version change is not an upgrade; the next version change is.
    server
        .kubectl(&[
            "-n",
            NAMESPACE,
            "label",
            "--overwrite",
            "cluster",
            "ok",
            "env=prod",
        ])
        .expect("relabel");
    server
        .kubectl(&[
            "-n",
            NAMESPACE,
            "label",
            "--overwrite",
            "cluster",
            "ok",
            &format!("{VERSION_LABEL}=25.1.0"),
        ])
        .expect("label");
    let deadline = Instant::now() + DEADLINE;
    while provider.version("ok").as_deref() != Some("25.1.0") {
        assert!(Instant::now() < deadline, "provider never saw 25.1.0");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        provider.upgrades_seen("ok"),
        2,
        "two version changes, the unrelated label change not counted"
    );
    assert!(provider.errors().is_empty(), "{:?}", provider.errors());

    // With a step that outlasts the test, the in-between state stays put and can be read.
    server
        .kubectl(&["create", "namespace", "org-slow"])
        .expect("namespace");
    let slow_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "org-slow", &api_resource());
    let slow = Provider::start(client.clone(), "org-slow").with_step(Duration::from_secs(3600));
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cluster_yaml("slow", "org-slow", &[], "24.0.0"),
        )
        .expect("apply");
    wait_for(
        &slow_api,
        &slow,
        "slow",
        |c| is(condition(c, "Ready"), "True", None),
        "first sight",
    )
    .await;
    server
        .kubectl(&[
            "-n",
            "org-slow",
            "label",
            "--overwrite",
            "cluster",
            "slow",
            &format!("{VERSION_LABEL}=25.0.0"),
        ])
        .expect("label");
    let upgrading = wait_for(
        &slow_api,
        &slow,
        "slow",
        |c| is(condition(c, "Ready"), "False", Some("Upgrading")),
        "a version change first shows Upgrading",
    )
    .await;
    let cp = condition(&upgrading, "ControlPlaneReady").unwrap();
    assert!(
        is(Some(cp.clone()), "False", Some("Upgrading")),
        "the control plane is not ready while upgrading: {cp}"
    );
    assert_eq!(
        condition(&upgrading, "Ready").unwrap()["message"],
        "upgrading to 25.0.0",
        "the message names the target"
    );
    assert_eq!(slow.upgrades_seen("slow"), 1, "counted when it starts");
}

//! What the tests against the real API server with the test Cluster API provider share
//! (`campaigns`, `clusters_api`): a kube client as the admin, polling against a deadline, and
//! reading a `Cluster` the way a person would, with `kubectl -o jsonpath`.

use std::time::{Duration, Instant};

use upkeep_testenv::KubeApiServer;

/// How long polling waits before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `get` until `done` holds, or fails after [`DEADLINE`] with the last value.
pub(crate) async fn eventually<T: std::fmt::Debug>(
    mut get: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
    what: &str,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let value = get();
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: still {value:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A kube client as the API server's admin.
pub(crate) async fn admin_client(server: &KubeApiServer) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(server.admin_kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// `path` (a kubectl JSONPath) of the `Cluster` `ns/name`; empty when it cannot be read.
pub(crate) fn jsonpath(server: &KubeApiServer, ns: &str, name: &str, path: &str) -> String {
    server
        .kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io",
            name,
            "-n",
            ns,
            "-o",
            &format!("jsonpath={path}"),
        ])
        .unwrap_or_default()
}

/// The cluster's release label (`release.giantswarm.io/version`).
pub(crate) fn label_in(server: &KubeApiServer, ns: &str, name: &str) -> String {
    jsonpath(
        server,
        ns,
        name,
        r"{.metadata.labels.release\.giantswarm\.io/version}",
    )
}

/// When the cluster's `Ready` condition last turned `True` (empty while it is not `True`: the
/// provider's "upgrading" transition is not readiness).
pub(crate) fn ready_since_in(server: &KubeApiServer, ns: &str, name: &str) -> String {
    let ready = jsonpath(
        server,
        ns,
        name,
        r#"{.status.conditions[?(@.type=="Ready")].status}"#,
    );
    if ready.trim() != "True" {
        return String::new();
    }
    jsonpath(
        server,
        ns,
        name,
        r#"{.status.conditions[?(@.type=="Ready")].lastTransitionTime}"#,
    )
}

/// Waits until the provider marked the cluster Ready and the real clock has left that second:
/// the core only counts a transition at or after the trigger's second as the provider's answer,
/// so a trigger in the same second would take the old Ready for the new one.
pub(crate) async fn ready_before_the_trigger(server: &KubeApiServer, ns: &str, name: &str) {
    let since = eventually(
        || ready_since_in(server, ns, name),
        |t| !t.is_empty(),
        "the provider marks the cluster Ready",
    )
    .await;
    let second = since
        .parse::<jiff::Timestamp>()
        .expect("an RFC 3339 time")
        .as_second();
    eventually(
        || jiff::Timestamp::now().as_second(),
        |s| *s > second,
        "the clock leaves the Ready second",
    )
    .await;
}

/// The message of the `bad` campaign's InvalidSpec conditions ([`record_running_and_stalled`]).
pub(crate) const STALLED_MESSAGE: &str =
    "spec.strategy.timeout: invalid duration \"soon\" (hint: e.g. 30m, 2h)";

/// Writes what a controller would have recorded, as of `now`, for the ClusterUpgrades
/// `default/running` (dev-a Succeeded an hour ago, prod-a Upgrading for 10 minutes) and
/// `default/bad` (Ready False and Stalled True, InvalidSpec with [`STALLED_MESSAGE`]).
pub(crate) async fn record_running_and_stalled(server: &KubeApiServer, now: jiff::Timestamp) {
    use kube::api::{Api, Patch, PatchParams};
    let ago = |mins: i64| (now - jiff::SignedDuration::from_mins(mins)).to_string();
    let api: Api<upkeep_api::ClusterUpgrade> =
        Api::namespaced(admin_client(server).await, "default");
    let status = serde_json::json!({"status": {"state": "Running", "clusters": [
        {"name": "dev-a", "stage": "dev", "state": "Succeeded", "fromRelease": "29.1.0",
         "toRelease": "30.0.0", "triggeredAt": ago(60), "finishedAt": ago(55)},
        {"name": "prod-a", "stage": "prod", "state": "Upgrading", "fromRelease": "29.1.0",
         "toRelease": "30.0.0", "triggeredAt": ago(10)},
    ]}});
    api.patch_status("running", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("running status");
    let condition = |type_: &str, value: &str| {
        serde_json::json!({"type": type_, "status": value, "reason": "InvalidSpec",
            "message": STALLED_MESSAGE, "observedGeneration": 1, "lastTransitionTime": ago(1)})
    };
    let stalled = serde_json::json!({"status": {"conditions": [
        condition("Ready", "False"), condition("Stalled", "True")]}});
    api.patch_status("bad", &PatchParams::default(), &Patch::Merge(&stalled))
        .await
        .expect("bad status");
}

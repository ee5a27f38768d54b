//! Clusters that are Apps (Giant Swarm) on a real kube-apiserver 1.20.2: the Direct trigger
//! changes the version where the cluster chart reads it — the values ConfigMap's
//! `global.release.version` (byte-exact: the rest of `data.values` unchanged) or else the
//! App's `spec.version` — never the Cluster label the chart owns; the test chart loop
//! (upkeep-testenv `cluster_app::Chart`) then moves the Cluster's label and its provider rolls
//! the conditions, and the upgrade succeeds on what the Cluster shows. A cluster without an App
//! keeps the label patch. A concurrent change between read and patch is a conflict that is
//! retried on a fresh read without losing the other change; a forbidden App read is a clear
//! error naming the server, the request and a fix.
//!
//! The App and Release CRDs are the fixtures written in upkeep-testenv, applied server-side.

mod support;
use support::{Running, apply, client, eventually, eventually_within, next_second, status};

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject};
use upkeep_api::ClusterUpgrade;
use upkeep_controller::cluster_app::{self, AppError, AppPlace, Found, Lookup, Server};
use upkeep_controller::cluster_upgrade::{PATCH_FAILED, UpgradeSettings, run_cluster_upgrades};
use upkeep_controller::framework::Context;
use upkeep_testenv::cluster_api::{cluster_yaml, crd_yaml};
use upkeep_testenv::cluster_app::{
    Chart, app_crd_yaml, app_resource, app_yaml, release_crd_yaml, release_yaml,
    values_configmap_yaml,
};
use upkeep_testenv::{KubeApiServer, KubeUser, upkeep_crds};

const NS: &str = "org-acme";

/// The values of the release-based cluster: comments, other keys and a flow list around the
/// one key upkeep changes.
const VALUES: &str = "# owned by team acme
global:
  metadata:
    name: c-values
    organization: acme   # kept
  release:
    version: 29.0.0
  controlPlane: {replicas: 3}
nodePools:
  - name: np-1
    maxSize: 10
";

async fn setup() -> (KubeApiServer, kube::Client) {
    let server = KubeApiServer::start_with_crds(&[
        &upkeep_crds(),
        &crd_yaml(),
        &app_crd_yaml(),
        &release_crd_yaml(),
    ])
    .await
    .expect("kube-apiserver with the CRDs established");
    let admin = client(&server, KubeUser::Admin).await;
    (server, admin)
}

fn server_of(client: &kube::Client) -> Server {
    Server::new(client.clone(), "https://test-api", "upkeep-test")
}

fn values_of(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("values"))
        .cloned()
        .unwrap_or_default()
}

async fn app_version(apps: &Api<DynamicObject>, name: &str) -> String {
    apps.get(name).await.expect("app").data["spec"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn label(server: &KubeApiServer, name: &str) -> String {
    server
        .kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io",
            name,
            "-n",
            NS,
            "-o",
            r"jsonpath={.metadata.labels.release\.giantswarm\.io/version}",
        ])
        .unwrap_or_default()
}

/// Three clusters in `org-acme`: `c-app` (an App, release in `spec.version`), `c-values` (an
/// App whose values carry `global.release.version`; `spec.version` is the chart's 2.3.0) and
/// `c-plain` (no App: the label is the place). All at 29.0.0, the chart and provider running.
async fn fleet(server: &KubeApiServer, admin: &kube::Client) -> Chart {
    server.kubectl(&["create", "namespace", NS]).expect("ns");
    let yaml = [
        app_yaml("c-app", NS, "aws", "29.0.0", false),
        app_yaml("c-values", NS, "aws", "2.3.0", true),
        values_configmap_yaml("c-values", NS, VALUES),
        cluster_yaml("c-app", NS, &[("env", "dev")], "29.0.0"),
        cluster_yaml("c-values", NS, &[("env", "dev")], "29.0.0"),
        cluster_yaml("c-plain", NS, &[("env", "dev")], "29.0.0"),
        release_yaml(
            "aws-30.0.0",
            "active",
            &[("cluster-aws", "2.4.0"), ("kubernetes", "1.31.4")],
        ),
    ];
    apply(server, &yaml.join("---\n"));
    let chart = Chart::start(admin.clone(), NS).with_step(Duration::from_millis(400));
    eventually(
        async || {
            (
                chart.release("c-app"),
                chart.release("c-values"),
                ["c-app", "c-values", "c-plain"]
                    .iter()
                    .all(|c| chart.provider().seen(c)),
            )
        },
        |(a, v, seen)| a.as_deref() == Some("29.0.0") && v.as_deref() == Some("29.0.0") && *seen,
        "the chart renders both Apps and the provider sees every cluster",
    )
    .await;
    next_second().await;
    chart
}

fn start_controller(admin: &kube::Client) -> Running {
    let ctx = Arc::new(Context::new(admin.clone()));
    let upgrades = UpgradeSettings::new(ctx)
        .with_poll(Duration::from_millis(300))
        .with_retry_after(Duration::from_millis(500));
    Running::spawn(|shutdown| run_cluster_upgrades(Arc::new(upgrades), shutdown))
}

fn upgrade_to_30(server: &KubeApiServer, matcher: &str) {
    upgrade_to_30_with(server, matcher, "");
}

/// `to-30` over the clusters `matcher` selects, with `extra` spec lines.
fn upgrade_to_30_with(server: &KubeApiServer, matcher: &str, extra: &str) {
    apply(
        server,
        &format!(
            "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {{name: to-30, namespace: {NS}}}
spec:
  matchers: [{{name: some, value: '{matcher}', isRegex: true}}]
  targetVersion: 30.0.0
  strategy: {{timeout: 5m}}
{extra}"
        ),
    );
}

/// Waits (up to 90 s) until the upgrade `to-30` is `Finished` (`what` names the wait in the
/// timeout message) and asserts it `Succeeded`, showing the chart loop's errors otherwise.
async fn finishes_succeeded(api: &Api<ClusterUpgrade>, chart: &Chart, what: &str) {
    let done = eventually_within(
        Duration::from_secs(90),
        async || status(api, "to-30").await,
        |s| s.state.as_deref() == Some("Finished"),
        what,
    )
    .await;
    assert_eq!(
        done.outcome.as_deref(),
        Some("Succeeded"),
        "{done:?}; chart errors {:?}",
        chart.errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_place_label_writes_the_cluster_itself() {
    let (server, admin) = setup().await;
    let chart = fleet(&server, &admin).await;
    let running = start_controller(&admin);
    upgrade_to_30_with(&server, "c-app", "  versionPlace: {type: Label}\n");
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), NS);
    finishes_succeeded(&api, &chart, "the upgrade finishes").await;
    let apps: Api<DynamicObject> = Api::namespaced_with(admin.clone(), NS, &app_resource());
    assert_eq!(
        app_version(&apps, "c-app").await,
        "29.0.0",
        "versionPlace type Label: the App is not written"
    );
    assert_eq!(label(&server, "c-app"), "30.0.0", "the Cluster's label is");
    running.stop().await;
}

/// The notes of the `reason` Events on ClusterUpgrade `to-30`.
async fn event_notes(admin: &kube::Client, reason: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin.clone(), NS);
    api.list(&kube::api::ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("to-30")
                && e.reason.as_deref() == Some(reason)
        })
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_values_configmap_holds_the_cluster_until_it_is_back() {
    let (server, admin) = setup().await;
    let chart = fleet(&server, &admin).await;
    let kept = server
        .kubectl(&[
            "get",
            "configmap",
            "-n",
            NS,
            "c-values-userconfig",
            "-o",
            "yaml",
        ])
        .expect("cm");
    server
        .kubectl(&["delete", "configmap", "-n", NS, "c-values-userconfig"])
        .expect("delete");
    let running = start_controller(&admin);
    upgrade_to_30(&server, "c-values");
    let notes = eventually(
        async || event_notes(&admin, PATCH_FAILED).await,
        |n| !n.is_empty(),
        "a PatchFailed Event on the upgrade",
    )
    .await;
    assert!(
        notes[0].contains(&format!("ConfigMap {NS}/c-values-userconfig not found"))
            && notes[0].contains("spec.userConfig.configMap")
            && notes[0].contains("hint:"),
        "{notes:?}"
    );
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), NS);
    let held = status(&api, "to-30").await;
    assert_eq!(
        held.cluster("c-values").and_then(|c| c.state.as_deref()),
        Some("Triggered"),
        "{held:?}"
    );
    assert_eq!(
        label(&server, "c-values"),
        "29.0.0",
        "nothing else was written"
    );
    // Back: the next retry writes it and the upgrade succeeds.
    apply(&server, &kept);
    finishes_succeeded(
        &api,
        &chart,
        "the upgrade finishes once the ConfigMap is back",
    )
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_upgrades_write_where_the_chart_reads() {
    let (server, admin) = setup().await;
    let chart = fleet(&server, &admin).await;
    let release = server
        .kubectl(&[
            "get",
            "releases.release.giantswarm.io",
            "aws-30.0.0",
            "-o",
            "jsonpath={.spec.components[1].version}",
        ])
        .expect("the Release fixture is served");
    assert_eq!(release, "1.31.4");

    let running = start_controller(&admin);
    upgrade_to_30(&server, ".*");
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), NS);
    finishes_succeeded(&api, &chart, "the upgrade finishes").await;

    let apps: Api<DynamicObject> = Api::namespaced_with(admin.clone(), NS, &app_resource());
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), NS);
    assert_eq!(
        app_version(&apps, "c-app").await,
        "30.0.0",
        "spec.version form"
    );
    assert_eq!(
        app_version(&apps, "c-values").await,
        "2.3.0",
        "the values form leaves the chart's own version alone"
    );
    let values = values_of(&cms.get("c-values-userconfig").await.expect("cm"));
    assert_eq!(
        values,
        VALUES.replace("version: 29.0.0", "version: 30.0.0"),
        "only the release scalar changed in data.values"
    );
    for cluster in ["c-app", "c-values", "c-plain"] {
        assert_eq!(
            label(&server, cluster),
            "30.0.0",
            "{cluster} shows the target"
        );
        assert_eq!(
            chart.provider().upgrades_seen(cluster),
            1,
            "{cluster} was upgraded exactly once"
        );
    }
    // The chart moved the App clusters' labels, not upkeep: the Cluster's label field is owned
    // by the chart's patch (field manager of the test chart), and upkeep's manager never
    // touched the App clusters.
    for cluster in ["c-app", "c-values"] {
        let managers = server
            .kubectl(&[
                "get",
                "clusters.cluster.x-k8s.io",
                cluster,
                "-n",
                NS,
                "-o",
                "jsonpath={.metadata.managedFields[*].manager}",
            ])
            .unwrap_or_default();
        assert!(
            !managers.contains("upkeep"),
            "{cluster}: upkeep patched the Cluster itself: {managers}"
        );
    }
    assert!(chart.errors().is_empty(), "{:?}", chart.errors());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_change_is_a_conflict_retried_without_losing_it() {
    let (server, admin) = setup().await;
    let _chart = fleet(&server, &admin).await;
    let srv = server_of(&admin);
    let lookup = Lookup::default();

    // The App form: a label added between read and patch.
    let stale = cluster_app::find(&srv, NS, "c-app", &lookup)
        .await
        .expect("find")
        .expect("c-app is an App");
    assert!(matches!(stale, Found::AppVersion { .. }), "{stale:?}");
    server
        .kubectl(&[
            "label",
            "-n",
            NS,
            "apps.application.giantswarm.io",
            "c-app",
            "touched=yes",
        ])
        .expect("concurrent change");
    let once = cluster_app::write(&srv, &stale, "30.0.0", false).await;
    assert!(
        matches!(once, Err(AppError::Conflict { attempts: 1, .. })),
        "a patch on a stale read is refused: {once:?}"
    );
    let written = cluster_app::set_version(&srv, stale, NS, "c-app", &lookup, "30.0.0", false)
        .await
        .expect("retried on a fresh read");
    assert_eq!(
        (written.attempts, written.changed),
        (2, true),
        "{written:?}"
    );
    let apps: Api<DynamicObject> = Api::namespaced_with(admin.clone(), NS, &app_resource());
    let app = apps.get("c-app").await.expect("app");
    assert_eq!(app.data["spec"]["version"], "30.0.0");
    assert_eq!(
        app.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("touched"))
            .map(String::as_str),
        Some("yes"),
        "the concurrent change is kept"
    );

    // The values form: another key of data.values changed between read and patch.
    let stale = cluster_app::find(&srv, NS, "c-values", &lookup)
        .await
        .expect("find")
        .expect("c-values is an App");
    assert!(matches!(stale, Found::ValuesKey { .. }), "{stale:?}");
    let theirs = VALUES.replace("maxSize: 10", "maxSize: 20");
    apply(&server, &values_configmap_yaml("c-values", NS, &theirs));
    let written = cluster_app::set_version(&srv, stale, NS, "c-values", &lookup, "30.0.0", false)
        .await
        .expect("retried on a fresh read");
    assert_eq!(written.attempts, 2, "{written:?}");
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), NS);
    assert_eq!(
        values_of(&cms.get("c-values-userconfig").await.expect("cm")),
        theirs.replace("version: 29.0.0", "version: 30.0.0"),
        "both changes are in data.values"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_or_missing_app_is_a_clear_error() {
    let (server, admin) = setup().await;
    let _chart = fleet(&server, &admin).await;
    // The controller user has no RBAC at all here.
    let unprivileged = client(&server, KubeUser::Controller).await;
    let e = cluster_app::find(&server_of(&unprivileged), NS, "c-app", &Lookup::default())
        .await
        .expect_err("forbidden");
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "GET /apis/application.giantswarm.io/v1alpha1/namespaces/{NS}/apps/c-app"
        )) && text.contains("https://test-api")
            && text.contains("forbidden"),
        "{text}"
    );
    assert!(
        e.hint()
            .is_some_and(|h| h.contains("apps.application.giantswarm.io") && h.contains(NS)),
        "{:?}",
        e.hint()
    );

    // Convention: no App of that name means the cluster is not an App.
    let none = cluster_app::find(&server_of(&admin), NS, "c-plain", &Lookup::default())
        .await
        .expect("no error");
    assert_eq!(none, None);
    // Named explicitly, a missing App is an error.
    let named = Lookup {
        app: AppPlace::App {
            namespace: NS.into(),
            name: "nope".into(),
        },
        ..Lookup::default()
    };
    let e = cluster_app::find(&server_of(&admin), NS, "c-plain", &named)
        .await
        .expect_err("missing");
    assert!(
        matches!(e, AppError::Missing { kind: "App", .. }) && e.hint().is_some(),
        "{e:?}"
    );
    // A values ConfigMap the App names but that is gone is an error too, not a guess.
    server
        .kubectl(&["delete", "configmap", "-n", NS, "c-values-userconfig"])
        .expect("delete");
    let e = cluster_app::find(&server_of(&admin), NS, "c-values", &Lookup::default())
        .await
        .expect_err("missing configmap");
    assert!(
        matches!(
            e,
            AppError::Missing {
                kind: "ConfigMap",
                ..
            }
        ) && e.to_string().contains("spec.userConfig.configMap"),
        "{e}"
    );
}

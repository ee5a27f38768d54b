//! `upkeep upgrade cluster --via api` and `upkeep freeze` on a management cluster where clusters
//! are Apps in organisation namespaces (Giant Swarm), against a real kube-apiserver with the App
//! CRD fixture and the test chart loop (upkeep-testenv `cluster_app::Chart`, which moves the
//! Cluster's label when the App or its values change; its provider rolls the conditions).
//!
//! - A cluster named without `--namespace` is found in every namespace; a name used in two
//!   organisations is an error listing both candidates; an unknown name says so with a hint.
//! - The values form: only `global.release.version` changes in the ConfigMap's `data.values`
//!   (byte-exact), `--wait` sees the chart move the Cluster and ends Succeeded.
//! - The `spec.version` form: a dry run changes nothing; then the App's `spec.version` changes
//!   and the JSON report names the place.
//! - `freeze` without `--namespace` annotates the Cluster object in its organisation namespace.

mod support;

use std::path::Path;
use std::process::Output;

use support::clusters::{admin_client, eventually, label_in};
use support::text;
use upkeep_testenv::KubeApiServer;
use upkeep_testenv::cluster_api::{cluster_yaml, crd_yaml};
use upkeep_testenv::cluster_app::{Chart, app_crd_yaml, app_yaml, values_configmap_yaml};

const VALUES: &str = "global:
  metadata:
    name: c-values
    organization: a
  release:
    version: \"29.1.0\"   # set by upkeep
  nodePools: {np-1: {maxSize: 3}}
";

async fn upkeep(server: &KubeApiServer, store: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("UPKEEP_STORE", store)
        .output()
        .await
        .expect("the upkeep binary runs")
}

fn get(server: &KubeApiServer, what: &[&str]) -> String {
    server.kubectl(what).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_found_across_organisations_and_upgraded_through_their_apps() {
    let server = KubeApiServer::start_with_crds(&[&crd_yaml(), &app_crd_yaml()])
        .await
        .expect("kube-apiserver with the Cluster and App CRDs");
    let client = admin_client(&server).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("state.redb");
    for ns in ["org-a", "org-b"] {
        server.kubectl(&["create", "namespace", ns]).expect("ns");
    }
    let yaml = [
        cluster_yaml("shared", "org-a", &[], "29.1.0"),
        cluster_yaml("shared", "org-b", &[], "29.1.0"),
        app_yaml("c-values", "org-a", "aws", "2.3.0", true),
        values_configmap_yaml("c-values", "org-a", VALUES),
        cluster_yaml("c-values", "org-a", &[], "29.1.0"),
        app_yaml("c-app", "org-b", "azure", "29.1.0", false),
        cluster_yaml("c-app", "org-b", &[], "29.1.0"),
    ];
    server
        .kubectl_stdin(&["apply", "-f", "-"], &yaml.join("---\n"))
        .expect("fleet applied");
    let charts = [
        Chart::start(client.clone(), "org-a"),
        Chart::start(client.clone(), "org-b"),
    ];
    eventually(
        || {
            (
                charts[0].release("c-values"),
                charts[1].release("c-app"),
                charts[0].provider().seen("c-values"),
            )
        },
        |(v, a, seen)| v.as_deref() == Some("29.1.0") && a.as_deref() == Some("29.1.0") && *seen,
        "the charts render the Apps",
    )
    .await;

    // A name in two organisations: an error listing both, nothing patched.
    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade", "cluster", "shared", "--to", "30.0.0", "--via", "api",
        ],
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2 Clusters are named shared: org-a/shared, org-b/shared")
            && err.contains("hint:")
            && err.contains("--namespace"),
        "{err}"
    );
    assert_eq!(label_in(&server, "org-a", "shared"), "29.1.0");
    assert_eq!(label_in(&server, "org-b", "shared"), "29.1.0");
    // With --namespace it is that one (not an App: its label is patched).
    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade", "cluster", "shared", "-n", "org-b", "--to", "30.0.0", "--via", "api",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(label_in(&server, "org-b", "shared"), "30.0.0");
    assert_eq!(label_in(&server, "org-a", "shared"), "29.1.0");
    // An unknown name: not found anywhere, with a hint.
    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade", "cluster", "nope", "--to", "30.0.0", "--via", "api",
        ],
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no Cluster named nope in any namespace") && err.contains("hint:"),
        "{err}"
    );

    // The values form, found in org-a without --namespace, waited for.
    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade",
            "cluster",
            "c-values",
            "--to",
            "30.0.0",
            "--via",
            "api",
            "--wait",
            "--timeout",
            "1m",
        ],
    )
    .await;
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{err}; chart errors {:?}",
        charts[0].errors()
    );
    assert!(
        stdout.contains("ConfigMap org-a/c-values-userconfig data.values global.release.version"),
        "{stdout}"
    );
    let values = get(
        &server,
        &[
            "get",
            "configmap",
            "-n",
            "org-a",
            "c-values-userconfig",
            "-o",
            "jsonpath={.data.values}",
        ],
    );
    assert_eq!(
        values,
        VALUES.replace("\"29.1.0\"", "\"30.0.0\""),
        "only the release scalar changed (quotes and comment kept)"
    );
    assert_eq!(
        get(
            &server,
            &[
                "get",
                "apps.application.giantswarm.io",
                "-n",
                "org-a",
                "c-values",
                "-o",
                "jsonpath={.spec.version}"
            ]
        ),
        "2.3.0",
        "the chart's own version is left alone"
    );
    assert_eq!(
        label_in(&server, "org-a", "c-values"),
        "30.0.0",
        "the chart moved the Cluster"
    );
    assert_eq!(charts[0].provider().upgrades_seen("c-values"), 1);

    // A dry run of the spec.version form: the API server validates the App patch, nothing
    // changes.
    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade",
            "cluster",
            "c-app",
            "--to",
            "30.0.0",
            "--via",
            "api",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("would set App org-b/c-app spec.version"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        get(
            &server,
            &[
                "get",
                "apps.application.giantswarm.io",
                "-n",
                "org-b",
                "c-app",
                "-o",
                "jsonpath={.spec.version}"
            ]
        ),
        "29.1.0",
        "a dry run changes nothing"
    );

    // The spec.version form, found in org-b, JSON report.
    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade", "cluster", "c-app", "--to", "30.0.0", "--via", "api", "-o", "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["namespace"], "org-b", "{report}");
    assert_eq!(report["place"], "App org-b/c-app spec.version", "{report}");
    assert_eq!(report["from"], "29.1.0", "{report}");
    assert_eq!(
        get(
            &server,
            &[
                "get",
                "apps.application.giantswarm.io",
                "-n",
                "org-b",
                "c-app",
                "-o",
                "jsonpath={.spec.version}"
            ]
        ),
        "30.0.0"
    );
    eventually(
        || label_in(&server, "org-b", "c-app"),
        |l| l == "30.0.0",
        "the chart moves c-app's label",
    )
    .await;

    // freeze without --namespace: on the Cluster object in org-b.
    let out = upkeep(
        &server,
        &store,
        &[
            "freeze",
            "cluster",
            "c-app",
            "--until",
            "2099-01-01T00:00:00Z",
            "--reason",
            "audit",
            "--kubeconfig",
            server.admin_kubeconfig().to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        get(
            &server,
            &[
                "get",
                "clusters.cluster.x-k8s.io",
                "-n",
                "org-b",
                "c-app",
                "-o",
                r"jsonpath={.metadata.annotations.upkeep\.dev/freeze-reason}"
            ]
        ),
        "audit"
    );
    let out = upkeep(
        &server,
        &store,
        &[
            "freeze",
            "cluster",
            "shared",
            "--until",
            "2099-01-01T00:00:00Z",
            "--kubeconfig",
            server.admin_kubeconfig().to_str().unwrap(),
        ],
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("org-a/shared, org-b/shared"), "{err}");
    assert!(
        charts.iter().all(|c| c.errors().is_empty()),
        "{:?}",
        charts.iter().map(Chart::errors).collect::<Vec<_>>()
    );
}

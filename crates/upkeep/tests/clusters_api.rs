//! `upkeep upgrade cluster --via api` against a real kube-apiserver: a server-side dry run
//! leaves the Cluster as it was; a real run patches the release label, and `freeze` sets the
//! annotations that then refuse an upgrade.

use std::process::{Command, Output};

use upkeep_testenv::KubeApiServer;

/// A minimal Cluster API `Cluster` CRD (v1beta1, schema open), enough for labels to be patched.
const CLUSTER_CRD: &str = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clusters.cluster.x-k8s.io
spec:
  group: cluster.x-k8s.io
  scope: Namespaced
  names: {kind: Cluster, plural: clusters, singular: cluster, listKind: ClusterList}
  versions:
    - name: v1beta1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
";

const CLUSTER: &str = r#"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod-a
  namespace: default
  labels:
    release.giantswarm.io/version: "29.1.0"
spec: {}
"#;

fn label(server: &KubeApiServer) -> String {
    server
        .kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io",
            "prod-a",
            "-n",
            "default",
            "-o",
            r"jsonpath={.metadata.labels.release\.giantswarm\.io/version}",
        ])
        .unwrap_or_default()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn upkeep(server: &KubeApiServer, store: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("UPKEEP_STORE", store)
        .output()
        .expect("the upkeep binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_then_patch_then_freeze() {
    let server = KubeApiServer::start().await.expect("kube-apiserver");
    server
        .kubectl_stdin(&["apply", "-f", "-"], CLUSTER_CRD)
        .expect("cluster crd");
    server
        .kubectl(&[
            "wait",
            "--for",
            "condition=established",
            "crd/clusters.cluster.x-k8s.io",
            "--timeout=30s",
        ])
        .expect("the Cluster CRD is served");
    server
        .kubectl_stdin(&["apply", "-f", "-"], CLUSTER)
        .expect("cluster applied");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("state.redb");
    let rv_before = server
        .kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io",
            "prod-a",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .unwrap();

    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade",
            "cluster",
            "prod-a",
            "--to",
            "30.0.0",
            "--via",
            "api",
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("dryRun=All"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(label(&server), "29.1.0", "a dry run changes nothing");
    let rv_after = server
        .kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io",
            "prod-a",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .unwrap();
    assert_eq!(rv_before, rv_after, "not even the resourceVersion");

    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade", "cluster", "prod-a", "--to", "30.0.0", "--via", "api",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(label(&server), "30.0.0", "the label was patched");
    let out = upkeep(
        &server,
        &store,
        &["history", "--cluster", "prod-a", "-o", "json"],
    );
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h[0]["via"], "api");
    assert_eq!(h[0]["from"], "29.1.0");

    let out = upkeep(
        &server,
        &store,
        &[
            "freeze",
            "cluster",
            "prod-a",
            "--until",
            "2099-01-01T00:00:00Z",
            "--reason",
            "audit",
            "--kubeconfig",
            server.admin_kubeconfig().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade", "cluster", "prod-a", "--to", "31.0.0", "--via", "api",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "frozen: refused: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("audit"), "{}", text(&out.stderr));
    assert_eq!(label(&server), "30.0.0");

    let out = upkeep(
        &server,
        &store,
        &[
            "upgrade", "cluster", "nope", "--to", "31.0.0", "--via", "api",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing cluster: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("no Cluster default/nope"));
}

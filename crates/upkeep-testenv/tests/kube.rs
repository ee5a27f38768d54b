//! `KubeApiServer` against the real etcd and kube-apiserver v1.20.2 it starts: the server is
//! ready and serves TLS with the certificate it hands out, custom resources can be defined and
//! stored, RBAC really holds the controller user back until a test grants it access, and the
//! objects survive the API server going away and coming back (they live in etcd).
//!
//! Each test starts its own server (a few seconds, ~330 MB), so there are few tests, each
//! walking through several steps. Nothing sleeps: waiting is polling against a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use upkeep_testenv::{KUBE_CONTROLLER_USER, KubeApiServer, KubeUser};

const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

const CLUSTER: &str = r"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: edge-1
  namespace: default
  labels:
    topology.cluster.x-k8s.io/version: v1.29.3
spec:
  topology:
    class: quick-start
    version: v1.29.3
";

const GRANT_CONTROLLER: &str = r"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: upkeep-test-clusters-reader
rules:
- apiGroups: [cluster.x-k8s.io]
  resources: [clusters]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: upkeep-test-clusters-reader
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: upkeep-test-clusters-reader
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: upkeep-controller
";

const CLUSTERS_PATH: &str = "/apis/cluster.x-k8s.io/v1beta1/clusters";

async fn start() -> KubeApiServer {
    KubeApiServer::start().await.unwrap_or_else(|e| {
        panic!(
            "starting etcd + kube-apiserver: {e}\nhint: {}",
            e.hint().unwrap_or_default()
        )
    })
}

/// `GET url+path` with `token`; the status, or `None` when nothing answered.
async fn status(server: &KubeApiServer, path: &str, token: &str) -> Option<u16> {
    let response = server
        .client()
        .unwrap()
        .get(format!("{}{path}", server.url()))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

/// Polls `check` until it returns `Some`, failing with `what` after [`DEADLINE`].
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn define_clusters(server: &KubeApiServer) {
    server
        // The Cluster API-like `Cluster` the other tests use: a status subresource and a schema
        // that keeps unknown fields.
        .apply_crds(&upkeep_testenv::cluster_api::crd_yaml())
        .unwrap_or_else(|e| panic!("applying the CRD: {e}\n{}", server.log_tail()));
    server
        .kubectl_stdin(&["apply", "-f", "-"], CLUSTER)
        .unwrap();
}

fn cluster_version(server: &KubeApiServer) -> String {
    server
        .kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io",
            "edge-1",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.topology.version}",
        ])
        .unwrap_or_else(|e| panic!("reading the cluster back: {e}\n{}", server.log_tail()))
}

#[tokio::test]
async fn serves_custom_resources_and_enforces_rbac() {
    let server = start().await;
    let cases: &[(&str, KubeUser, u16, &str)] = &[
        ("/readyz", KubeUser::Admin, 200, "ready once start returns"),
        (
            "/api/v1/namespaces/default",
            KubeUser::Admin,
            200,
            "the admin token is in system:masters",
        ),
        (
            "/api/v1/namespaces/default",
            KubeUser::Controller,
            403,
            "the controller token is authenticated but granted nothing",
        ),
        (
            "/api/v1/namespaces",
            KubeUser::Controller,
            403,
            "not even listing namespaces",
        ),
    ];
    for (path, user, want, why) in cases {
        assert_eq!(
            status(&server, path, server.token(*user)).await,
            Some(*want),
            "{path} as {user:?}: {why}"
        );
    }
    assert_eq!(
        status(&server, "/api/v1/namespaces", "not-a-token").await,
        Some(401),
        "an unknown token is not authenticated"
    );
    assert!(
        server.ca_pem().contains("BEGIN CERTIFICATE"),
        "{}",
        server.ca_pem()
    );

    define_clusters(&server);
    assert_eq!(cluster_version(&server), "v1.29.3");
    let listed = server
        .kubectl(&["get", "clusters.cluster.x-k8s.io", "-A", "-o", "name"])
        .unwrap();
    assert_eq!(listed.trim(), "cluster.cluster.x-k8s.io/edge-1");

    // The status subresource exists: the admin can merge-patch it over HTTP.
    let patched = server
        .client()
        .unwrap()
        .patch(format!(
            "{}/apis/cluster.x-k8s.io/v1beta1/namespaces/default/clusters/edge-1/status",
            server.url()
        ))
        .bearer_auth(server.admin_token())
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"status":{"phase":"Provisioned"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status().as_u16(), 200, "status patch");
    let phase = server
        .kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io",
            "edge-1",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .unwrap();
    assert_eq!(phase, "Provisioned");

    // RBAC: the controller may not list clusters until a ClusterRole + binding grants it.
    assert_eq!(
        status(&server, CLUSTERS_PATH, server.controller_token()).await,
        Some(403),
        "no grant yet"
    );
    server
        .kubectl_stdin(&["apply", "-f", "-"], GRANT_CONTROLLER)
        .unwrap();
    eventually(
        "the controller may list clusters after the grant",
        || async {
            (status(&server, CLUSTERS_PATH, server.controller_token()).await == Some(200))
                .then_some(())
        },
    )
    .await;
    let delete = server
        .client()
        .unwrap()
        .delete(format!(
            "{}/apis/cluster.x-k8s.io/v1beta1/namespaces/default/clusters/edge-1",
            server.url()
        ))
        .bearer_auth(server.controller_token())
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete.status().as_u16(),
        403,
        "the grant covers reading only"
    );

    // kubectl as the controller, through a kubeconfig written for it, sees what RBAC allows.
    let listed = server
        .kubectl_as(
            KubeUser::Controller,
            &["get", "clusters.cluster.x-k8s.io", "-A", "-o", "name"],
        )
        .unwrap();
    assert_eq!(listed.trim(), "cluster.cluster.x-k8s.io/edge-1");
    let refused = server
        .kubectl_as(KubeUser::Controller, &["get", "namespaces"])
        .unwrap_err()
        .to_string();
    assert!(refused.contains("forbidden"), "{refused}");
    assert!(refused.contains(KUBE_CONTROLLER_USER), "{refused}");
}

#[tokio::test]
async fn objects_survive_an_apiserver_restart() {
    let mut server = start().await;
    define_clusters(&server);
    let url = server.url().to_owned();
    let ca = server.ca_pem().to_owned();

    server.stop_apiserver();
    assert!(!server.apiserver_running());
    assert_eq!(
        status(&server, "/readyz", server.admin_token()).await,
        None,
        "nothing answers while the API server is stopped"
    );
    assert!(
        server
            .kubectl(&["get", "clusters.cluster.x-k8s.io"])
            .is_err(),
        "kubectl fails while the API server is stopped"
    );

    server
        .restart_apiserver()
        .await
        .unwrap_or_else(|e| panic!("restarting kube-apiserver: {e}"));
    assert!(server.apiserver_running());
    assert_eq!(server.url(), url, "same port");
    assert_eq!(server.ca_pem(), ca, "same serving certificate");
    assert_eq!(
        status(&server, "/readyz", server.admin_token()).await,
        Some(200)
    );
    assert_eq!(
        cluster_version(&server),
        "v1.29.3",
        "the object lives in etcd"
    );
}

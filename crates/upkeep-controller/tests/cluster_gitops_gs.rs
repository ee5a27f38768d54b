//! `trigger: GitOps` on a repository in Giant Swarm's layout, against real components
//! (kube-apiserver with the Cluster CRD, the test provider loop, `git http-backend` behind
//! nginx): the controller writes the cluster's version where the repository keeps it — here
//! `global.release.version` inside the values ConfigMap's `data.values: |` block of the
//! fixture fleet — not a Cluster manifest (there is none). The test plays the cluster chart:
//! once the commit is there it sets the Cluster's release label, and the upgrade succeeds.

mod support;
use support::{apply, client, eventually, next_second, status};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use upkeep_api::ClusterUpgrade;
use upkeep_controller::cluster_upgrade::{UpgradeSettings, run_cluster_upgrades};
use upkeep_controller::framework::Context;
use upkeep_controller::metrics::Metrics;
use upkeep_testenv::cluster_api::{Provider, cluster_yaml, crd_yaml};
use upkeep_testenv::{GitServer, KubeApiServer, KubeUser, upkeep_crds};

const USER: &str = "bot";
const PASSWORD: &str = "git-pa55-never-shown";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_giant_swarm_cluster_is_upgraded_through_its_values() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds(), &crd_yaml()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let admin = client(&server, KubeUser::Admin).await;
    let git_server = GitServer::start(Some((USER, PASSWORD)))
        .await
        .expect("git server");
    let fleet =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../upkeep-api/testdata/giantswarm/fleet");
    let files = upkeep_testenv::read_tree(&fleet);
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_slice()))
        .collect();
    let url = git_server.create_repo("fleet", &refs).expect("repo");
    let bare = git_server.bare_path("fleet");
    let bare_git = |args: &[&str]| support::bare_git(&bare, args);
    let before = bare_git(&["rev-parse", "main"]).trim().to_owned();

    // The Cluster as the chart made it in the management cluster.
    server
        .kubectl(&["create", "namespace", "org-acme"])
        .expect("namespace");
    apply(
        &server,
        &cluster_yaml(
            "dev01",
            "org-acme",
            &[("giantswarm.io/organization", "acme")],
            "29.1.0",
        ),
    );
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "git-creds",
            "-n",
            "org-acme",
            "--from-literal=username=bot",
            &format!("--from-literal=password={PASSWORD}"),
        ])
        .expect("git secret");
    let provider = Provider::start(admin.clone(), "org-acme").with_step(Duration::from_millis(300));
    eventually(
        async || provider.seen("dev01"),
        |seen| *seen,
        "the provider sees the cluster",
    )
    .await;
    next_second().await;
    apply(
        &server,
        &format!(
            "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {{name: to-29-2, namespace: org-acme}}
spec:
  matchers: [{{name: dev01, value: dev01}}]
  targetVersion: 29.2.0
  strategy: {{timeout: 10m}}
  trigger: GitOps
  gitOps:
    git: {{url: '{url}', ref: {{branch: main}}, secretRef: {{name: git-creds}}}}
    path: management-clusters/golem
    commit: {{author: {{name: upkeep, email: upkeep@example.com}}}}
    push: {{branch: main}}
"
        ),
    );

    let workdir = tempfile::tempdir().expect("workdir");
    let metrics = Metrics::new();
    let ctx = Arc::new(Context::new(admin.clone()));
    let upgrades = UpgradeSettings::new(ctx)
        .with_poll(Duration::from_millis(300))
        .with_retry_after(Duration::from_millis(500))
        .with_workdir(workdir.path())
        .with_metrics(metrics.clone());
    let running =
        support::Running::spawn(|shutdown| run_cluster_upgrades(Arc::new(upgrades), shutdown));

    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "org-acme");
    let (recorded, _) = eventually(
        async || (status(&api, "to-29-2").await, metrics.encode()),
        |(s, _)| s.last_push_commit.is_some(),
        "the upgrade commits",
    )
    .await;
    let values = "management-clusters/golem/organizations/acme/workload-clusters/dev01/mapi/cluster/cluster_user_config.yaml";
    assert_eq!(
        bare_git(&["diff", "--name-only", &before, "main"]).trim(),
        values,
        "only the values ConfigMap changes"
    );
    assert_eq!(
        bare_git(&["show", &format!("main:{values}")]),
        bare_git(&["show", &format!("{before}:{values}")])
            .replace("        version: 29.1.0\n", "        version: 29.2.0\n"),
        "only the key's bytes inside the block"
    );
    assert_eq!(
        recorded.last_push_commit.as_deref(),
        Some(bare_git(&["rev-parse", "main"]).trim())
    );

    // Play the cluster chart once Flux applied the commit: it sets the release label.
    server
        .kubectl(&[
            "label",
            "--overwrite",
            "-n",
            "org-acme",
            "clusters.cluster.x-k8s.io/dev01",
            "release.giantswarm.io/version=29.2.0",
        ])
        .expect("label");
    let done = eventually(
        async || status(&api, "to-29-2").await,
        |s| s.outcome.as_deref() == Some("Succeeded"),
        "the upgrade succeeds once the chart moved the cluster",
    )
    .await;
    assert!(
        done.counts.is_some_and(|c| c.succeeded >= 1),
        "counted as succeeded: {done:?}"
    );
    assert_eq!(
        support::record_state(&admin, "org-acme", "dev01").await,
        "Succeeded",
        "a finished cluster is in its record"
    );
    assert_eq!(
        bare_git(&["rev-list", "--count", &format!("{before}..main")]).trim(),
        "1",
        "one commit"
    );
    running.stop().await;
}

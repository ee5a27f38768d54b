//! `trigger: GitOps` ClusterUpgrades against real components: kube-apiserver 1.20.2 with etcd,
//! the test Cluster API provider loop, `git http-backend` behind nginx with basic auth, and the
//! forge stand-in for pull requests. The test plays Flux: it applies the committed manifest
//! with kubectl, and only then does the provider roll the cluster.

mod support;
use support::{
    Running, apply, assert_no_secret, assert_one_pull_request, client, eventually, next_second,
    status,
};

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use upkeep_api::ClusterUpgrade;
use upkeep_api::cluster_upgrade::ClusterUpgradeStatus;
use upkeep_controller::cluster_upgrade::{UpgradeSettings, run_cluster_upgrades};
use upkeep_controller::framework::Context;
use upkeep_controller::metrics::Metrics;
use upkeep_testenv::cluster_api::{Provider, cluster_yaml, crd_yaml};
use upkeep_testenv::{ForgeFlavor, GitServer, KubeApiServer, KubeUser, PrStandIn, upkeep_crds};

const USER: &str = "bot";
const PASSWORD: &str = "git-pa55-never-shown";
const TOKEN: &str = "forge-t0ken-never-shown";

fn start(client: kube::Client, workdir: &std::path::Path, metrics: &Metrics) -> Running {
    let ctx = Arc::new(Context::new(client));
    let upgrades = UpgradeSettings::new(ctx)
        .with_poll(Duration::from_millis(300))
        .with_retry_after(Duration::from_millis(500))
        .with_workdir(workdir)
        .with_metrics(metrics.clone());
    Running::spawn(|shutdown| run_cluster_upgrades(Arc::new(upgrades), shutdown))
}

fn state<'a>(s: &'a ClusterUpgradeStatus, cluster: &str) -> &'a str {
    s.cluster(cluster)
        .and_then(|c| c.state.as_deref())
        .unwrap_or("-")
}

fn upgrade(namespace: &str, url: &str, push: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {{name: to-30, namespace: {namespace}}}
spec:
  matchers: [{{name: all, value: '.*', isRegex: true}}]
  targetVersion: 30.0.0
  strategy: {{timeout: 10m}}
  trigger: GitOps
  gitOps:
    git: {{url: '{url}', ref: {{branch: main}}, secretRef: {{name: git-creds}}}}
    path: clusters
    commit: {{author: {{name: upkeep, email: upkeep@example.com}}}}
{push}"
    )
}

/// Counts `upkeep_pushes_total{result=…}` in the metrics text.
fn pushes(metrics: &Metrics, result: &str) -> u64 {
    let needle = format!("upkeep_pushes_total{{result=\"{result}\"}} ");
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(&needle).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_upgrade_commits_opens_one_pull_request_and_succeeds_once_applied() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds(), &crd_yaml()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let admin = client(&server, KubeUser::Admin).await;
    let git_server = GitServer::start(Some((USER, PASSWORD)))
        .await
        .expect("git server");
    let forge = PrStandIn::start(ForgeFlavor::Gitlab, TOKEN).expect("stand-in");
    forge.create_repository("git/fleet");

    // Two namespaces: "gitops" runs start to finish through a pull request; "restart" plays a
    // controller that died after recording the trigger and before pushing.
    let pr_cluster = format!(
        "# dev-1, managed by Flux\n{}",
        cluster_yaml("dev-1", "gitops", &[("env", "dev")], "29.0.0")
    );
    let restart_cluster = cluster_yaml("r-1", "restart", &[("env", "dev")], "29.0.0");
    let url = git_server
        .create_repo(
            "fleet",
            &[
                ("clusters/dev-1.yaml", pr_cluster.as_bytes()),
                ("clusters/r-1.yaml", restart_cluster.as_bytes()),
                ("README.md", b"fleet\n"),
            ],
        )
        .expect("repo");
    let bare = git_server.bare_path("fleet");
    let bare_git = |args: &[&str]| support::bare_git(&bare, args);
    let main_before = bare_git(&["rev-parse", "main"]);

    let mut providers = Vec::new();
    for (namespace, yaml) in [("gitops", &pr_cluster), ("restart", &restart_cluster)] {
        server
            .kubectl(&["create", "namespace", namespace])
            .expect("namespace");
        apply(&server, yaml);
        server
            .kubectl(&[
                "create",
                "secret",
                "generic",
                "git-creds",
                "-n",
                namespace,
                "--from-literal=username=bot",
                &format!("--from-literal=password={PASSWORD}"),
            ])
            .expect("git secret");
        providers
            .push(Provider::start(admin.clone(), namespace).with_step(Duration::from_millis(300)));
    }
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "forge",
            "-n",
            "gitops",
            &format!("--from-literal=token={TOKEN}"),
        ])
        .expect("forge secret");
    eventually(
        async || providers[0].seen("dev-1") && providers[1].seen("r-1"),
        |seen| *seen,
        "the providers see the clusters",
    )
    .await;
    // The core counts only a provider transition at or after the trigger's second.
    next_second().await;

    // "restart": the trigger was recorded, then the controller died before the push.
    apply(
        &server,
        &upgrade("restart", &url, "    push: {branch: main}\n"),
    );
    let restart_api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "restart");
    restart_api
        .patch_status(
            "to-30",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {
                "state": "Running",
                "triggeredAt": Timestamp::now().to_string(),
                "clusters": [{"name": "r-1", "state": "Triggered", "triggeredAt": Timestamp::now().to_string(),
                              "fromRelease": "29.0.0", "toRelease": "30.0.0"}]}})),
        )
        .await
        .expect("recorded trigger");
    apply(
        &server,
        &upgrade(
            "gitops",
            &url,
            &format!(
                "    push:\n      branch: upkeep/clusters\n      pullRequest: {{provider: gitlab, apiUrl: '{}', secretRef: {{name: forge}}}}\n",
                forge.api_base()
            ),
        ),
    );

    let workdir = tempfile::tempdir().expect("workdir");
    let metrics = Metrics::new();
    let running = start(admin.clone(), workdir.path(), &metrics);

    // GitOps with a pull request: committed, recorded, one PR; the cluster waits for Flux.
    let api = Api::<ClusterUpgrade>::namespaced(admin.clone(), "gitops");
    // The metrics text rides along so a failure shows the reconcile errors.
    let (recorded, _) = eventually(
        async || (status(&api, "to-30").await, metrics.encode()),
        |(s, _)| s.pull_request.is_some() && s.last_push_commit.is_some(),
        "the upgrade commits and opens the pull request",
    )
    .await;
    assert_eq!(state(&recorded, "dev-1"), "Triggered", "{recorded:?}");
    let commit = recorded.last_push_commit.clone().expect("commit");
    assert_eq!(bare_git(&["rev-parse", "upkeep/clusters"]).trim(), commit);
    let committed = bare_git(&["show", "upkeep/clusters:clusters/dev-1.yaml"]);
    assert_eq!(
        committed,
        pr_cluster.replace("29.0.0", "30.0.0"),
        "only the version's bytes change (comment and quoting kept)"
    );
    let message = bare_git(&["log", "-1", "--format=%B", "upkeep/clusters"]);
    assert!(
        message.contains("Cluster gitops/dev-1 from 29.0.0 to 30.0.0")
            && message.contains("ClusterUpgrade gitops/to-30"),
        "{message}"
    );
    assert_one_pull_request(&forge, "upkeep/clusters");
    assert_no_secret(&recorded, &[PASSWORD, TOKEN]);
    // Not applied yet: the cluster does not move while Flux has not applied the commit.
    let waiting = eventually(
        async || pushes(&metrics, "up_to_date"),
        |n| *n >= 2,
        "re-applies while Triggered are up to date",
    )
    .await;
    assert!(waiting >= 2);
    assert_eq!(state(&status(&api, "to-30").await, "dev-1"), "Triggered");

    // Play Flux: apply the committed manifest; the provider rolls the cluster.
    apply(&server, &committed);
    let done = eventually(
        async || status(&api, "to-30").await,
        |s| s.outcome.as_deref() == Some("Succeeded"),
        "the upgrade succeeds once the manifest is applied",
    )
    .await;
    assert_eq!(
        support::record_state(&admin, "gitops", "dev-1").await,
        "Succeeded",
        "a finished cluster is in its record"
    );
    let url = |s: &ClusterUpgradeStatus| s.pull_request.as_ref().map(|p| p.url.clone());
    assert_eq!(url(&done), url(&recorded));
    let record = Api::<upkeep_api::ClusterUpgradeRecord>::namespaced(admin.clone(), "gitops")
        .list(&kube::api::ListParams::default())
        .await
        .expect("records")
        .items
        .into_iter()
        .find(|r| r.spec.cluster == "dev-1")
        .expect("dev-1's record");
    assert_eq!(
        (
            record.spec.commit.clone(),
            record.spec.pull_request.map(|p| p.url)
        ),
        (done.last_push_commit.clone(), url(&done)),
        "the record names the commit and pull request that carried the change"
    );
    assert!(
        record
            .spec
            .place
            .as_deref()
            .is_some_and(|p| p.contains("in Git")),
        "{:?}",
        record.spec.place
    );
    assert_eq!(
        bare_git(&["rev-list", "--count", "main..upkeep/clusters"]).trim(),
        "1",
        "one commit: every later reconcile found the branch up to date"
    );
    assert_eq!(forge.pull_requests("git/fleet").len(), 1, "still one PR");

    // The restart case: the recorded trigger was re-applied, exactly once.
    let restarted = eventually(
        async || status(&restart_api, "to-30").await,
        |s| s.last_push_commit.is_some(),
        "the recorded trigger is carried out after the restart",
    )
    .await;
    assert_eq!(state(&restarted, "r-1"), "Triggered");
    let on_main = bare_git(&[
        "rev-list",
        "--count",
        &format!("{}..main", main_before.trim()),
    ]);
    assert_eq!(on_main.trim(), "1", "one commit on main for r-1");
    assert_eq!(
        bare_git(&["show", "main:clusters/r-1.yaml"]),
        restart_cluster.replace("29.0.0", "30.0.0")
    );

    // Another restart of the controller (the real one this time): no second commit.
    running.stop().await;
    let metrics = Metrics::new();
    let running = start(admin.clone(), workdir.path(), &metrics);
    eventually(
        async || pushes(&metrics, "up_to_date"),
        |n| *n >= 1,
        "the restarted controller re-applies",
    )
    .await;
    assert_eq!(pushes(&metrics, "pushed"), 0, "nothing new pushed");
    let on_main = bare_git(&[
        "rev-list",
        "--count",
        &format!("{}..main", main_before.trim()),
    ]);
    assert_eq!(on_main.trim(), "1", "still one commit on main");
    running.stop().await;
}

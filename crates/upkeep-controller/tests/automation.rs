//! The AppUpgradeAutomation controller against a real kube-apiserver 1.20.2 + etcd and a real
//! `git http-backend` with basic auth (upkeep-testenv); the merge request goes to the testenv's
//! GitLab-flavoured stand-in (there is no real forge here). The VersionPolicy's status is set
//! by the test as the policy reconciler would, so this test is about the writer alone.

mod support;
use support::{
    Running, api_server_with_crds, assert_no_secret, assert_one_pull_request, client, condition,
    eventually, git_workspace,
};

use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use upkeep_api::{AppUpgradeAutomation, VersionPolicy};
use upkeep_controller::automation::run_automations;
use upkeep_testenv::{ForgeFlavor, GitServer, KubeUser, PrStandIn, git};

const USER: &str = "bot";
const PASSWORD: &str = "git-pa55-never-shown";
const TOKEN: &str = "forge-t0ken-never-shown";
const APP: &str = "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  chart:
    spec:
      chart: podinfo
      version: \"6.5.4\" # {\"$upkeep\": \"default:podinfo\"}
";

/// The test's objects, written as JSON.
fn object<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).expect("object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automation_pushes_the_upgrade_branch_and_opens_one_merge_request() {
    let server = api_server_with_crds().await;
    let git_server = GitServer::start(Some((USER, PASSWORD)))
        .await
        .expect("git server");
    let url = git_server
        .create_repo(
            "fleet",
            &[
                ("apps/podinfo.yaml", APP.as_bytes()),
                ("README.md", b"fleet\n"),
            ],
        )
        .expect("repo");
    let bare = git_server.bare_path("fleet");
    let forge = PrStandIn::start(ForgeFlavor::Gitlab, TOKEN).expect("stand-in");
    forge.create_repository("git/fleet");

    let client = client(&server, KubeUser::Admin).await;
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "git-creds",
            "--from-literal=username=bot",
            &format!("--from-literal=password={PASSWORD}"),
        ])
        .expect("git secret");
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "forge",
            &format!("--from-literal=token={TOKEN}"),
        ])
        .expect("forge secret");
    let policies: Api<VersionPolicy> = Api::namespaced(client.clone(), "default");
    let policy: VersionPolicy = object(
        r#"{"apiVersion": "upkeep.dev/v1alpha1", "kind": "VersionPolicy",
            "metadata": {"name": "podinfo", "namespace": "default"},
            "spec": {"sourceRef": {"name": "podinfo"}, "policy": {"semver": {"range": ">=6.0.0"}}}}"#,
    );
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    let set_latest = async |v: &str| {
        policies
            .patch_status(
                "podinfo",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"status": {"latestVersion": v}})),
            )
            .await
            .expect("policy status");
    };
    set_latest("6.6.0").await;

    let automations: Api<AppUpgradeAutomation> = Api::namespaced(client.clone(), "default");
    let automation: AppUpgradeAutomation = object(&format!(
        r#"{{"apiVersion": "upkeep.dev/v1alpha1", "kind": "AppUpgradeAutomation",
            "metadata": {{"name": "apps", "namespace": "default"}},
            "spec": {{"git": {{"url": "{url}", "ref": {{"branch": "main"}}, "secretRef": {{"name": "git-creds"}}}},
                     "path": "./apps", "interval": "1h",
                     "commit": {{"author": {{"name": "upkeep", "email": "upkeep@example.com"}}}},
                     "push": {{"branch": "upkeep/apps",
                              "pullRequest": {{"provider": "gitlab", "apiUrl": "{api}", "labels": ["upkeep"], "secretRef": {{"name": "forge"}}}}}}}}}}"#,
        api = forge.api_base()
    ));
    automations
        .create(&PostParams::default(), &automation)
        .await
        .expect("automation");

    let workdir = tempfile::tempdir().expect("workdir");
    let now: Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
    let writer = git_workspace(&client, now, workdir.path());
    let controller = Running::spawn(|shutdown| run_automations(writer, shutdown));

    let bare_git = |args: &[&str]| support::bare_git(&bare, args);
    let status = eventually(
        async || automations.get("apps").await.expect("get").status,
        |s| s.as_ref().is_some_and(|s| s.pull_request.is_some()),
        "the automation pushes and opens the merge request",
    )
    .await
    .expect("status");
    let first = status.last_push_commit.clone().expect("lastPushCommit");
    assert_eq!(bare_git(&["rev-parse", "upkeep/apps"]).trim(), first);
    assert!(
        bare_git(&["show", "upkeep/apps:apps/podinfo.yaml"])
            .contains("version: \"6.6.0\" # {\"$upkeep\": \"default:podinfo\"}"),
        "the marked scalar is rewritten, quotes kept"
    );
    assert_eq!(
        status
            .observed_policies
            .get("default/podinfo")
            .map(String::as_str),
        Some("6.6.0")
    );
    let ready = condition(&status.conditions, "Ready");
    // A later run (started by a watched object's change) reports UpToDate; either is Ready.
    assert!(
        ready.status == "True" && (ready.reason == "Pushed" || ready.reason == "UpToDate"),
        "{ready:?}"
    );
    assert_eq!(
        bare_git(&["rev-list", "--count", "main..upkeep/apps"]).trim(),
        "1",
        "one commit: later runs (the status write, watched objects) found it up to date"
    );
    assert_one_pull_request(&forge, "upkeep/apps");
    assert_no_secret(&status, &[PASSWORD, TOKEN]);

    // A new version: the policy's change re-runs the automation (a watch, not the 1h interval).
    set_latest("6.6.1").await;
    let status = eventually(
        async || automations.get("apps").await.expect("get").status,
        |s| {
            s.as_ref()
                .and_then(|s| s.last_push_commit.clone())
                .is_some_and(|c| c != first)
        },
        "the automation pushes the newer version",
    )
    .await
    .expect("status");
    let second = status.last_push_commit.expect("commit");
    assert_eq!(
        bare_git(&["rev-parse", "upkeep/apps~1"]).trim(),
        first,
        "built on top of its own branch"
    );
    assert_eq!(bare_git(&["rev-parse", "upkeep/apps"]).trim(), second);
    let prs = forge.pull_requests("git/fleet");
    assert_eq!(prs.len(), 1, "updated, not doubled: {prs:?}");
    assert!(prs[0].body.contains("`6.6.1`"), "{}", prs[0].body);

    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_that_claim_the_same_files_are_stalled_naming_each_other() {
    let server = api_server_with_crds().await;
    let git_server = GitServer::start(None).await.expect("git server");
    let url = git_server
        .create_repo("fleet", &[("apps/podinfo.yaml", APP.as_bytes())])
        .expect("repo");
    let bare = git_server.bare_path("fleet");
    let client = client(&server, KubeUser::Admin).await;
    let policies: Api<VersionPolicy> = Api::namespaced(client.clone(), "default");
    let policy: VersionPolicy = object(
        r#"{"apiVersion": "upkeep.dev/v1alpha1", "kind": "VersionPolicy",
            "metadata": {"name": "podinfo", "namespace": "default"},
            "spec": {"sourceRef": {"name": "podinfo"}, "policy": {"semver": {"range": ">=6.0.0"}}}}"#,
    );
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    policies
        .patch_status(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"latestVersion": "6.6.0"}})),
        )
        .await
        .expect("policy status");
    let automations: Api<AppUpgradeAutomation> = Api::namespaced(client.clone(), "default");
    // (name, path): the whole repository, and ./apps inside it; same repository and branch.
    for (name, path) in [("everything", "."), ("apps", "./apps")] {
        let a: AppUpgradeAutomation = object(&format!(
            r#"{{"apiVersion": "upkeep.dev/v1alpha1", "kind": "AppUpgradeAutomation",
                "metadata": {{"name": "{name}", "namespace": "default"}},
                "spec": {{"git": {{"url": "{url}", "ref": {{"branch": "main"}}}},
                         "path": "{path}", "interval": "1h",
                         "commit": {{"author": {{"name": "upkeep", "email": "upkeep@example.com"}}}}}}}}"#
        ));
        automations
            .create(&PostParams::default(), &a)
            .await
            .expect("automation");
    }
    let workdir = tempfile::tempdir().expect("workdir");
    let now: Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
    let writer = git_workspace(&client, now, workdir.path());
    let controller = Running::spawn(|shutdown| run_automations(writer, shutdown));
    let stalled = |a: &AppUpgradeAutomation| {
        a.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Stalled"))
            .cloned()
    };
    for (name, other) in [
        ("everything", "default/apps"),
        ("apps", "default/everything"),
    ] {
        let got = eventually(
            async || automations.get(name).await.expect("get"),
            |a| stalled(a).is_some_and(|c| c.status == "True"),
            &format!("{name} is stalled"),
        )
        .await;
        let c = stalled(&got).expect("Stalled");
        assert_eq!(c.reason, "Overlap", "{c:?}");
        assert!(
            c.message.contains(other) && c.message.contains("hint:"),
            "{name}'s condition names the other automation and a fix: {}",
            c.message
        );
    }
    let main = || {
        git(
            &[
                "--git-dir",
                bare.to_str().expect("utf-8"),
                "rev-parse",
                "main",
            ],
            None,
        )
        .unwrap_or_default()
    };
    let before = main();
    assert!(
        git(
            &[
                "--git-dir",
                bare.to_str().expect("utf-8"),
                "show",
                "main:apps/podinfo.yaml"
            ],
            None
        )
        .unwrap_or_default()
        .contains("6.5.4"),
        "neither wrote"
    );

    // Once the broad one is gone, a change to the other lets it write.
    automations
        .delete("everything", &kube::api::DeleteParams::default())
        .await
        .expect("delete");
    automations
        .patch(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"interval": "59m"}})),
        )
        .await
        .expect("touch");
    eventually(
        async || (main(), automations.get("apps").await.expect("get").status),
        |(tip, _)| *tip != before,
        "the remaining automation commits",
    )
    .await;
    let _ = controller.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), controller.task).await;
}

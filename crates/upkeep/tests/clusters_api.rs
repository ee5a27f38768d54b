//! `upkeep upgrade cluster --via api` against a real kube-apiserver: a server-side dry run
//! leaves the Cluster as it was; a real run patches the release label, and `freeze` sets the
//! annotations that then refuse an upgrade.
//!
//! `--wait` against the same real API server with the test Cluster API provider loop
//! (upkeep-testenv `cluster_api::Provider`, which rolls a cluster's conditions Upgrading →
//! Ready, or to a failure under the fail annotation): Succeeded (exit 0), Failed with the
//! provider's reason (exit 3), a timeout with no provider (exit 3), Ctrl-C (exit 130, the
//! upgrade stays Triggered), and `--via git` where the test plays Flux by applying the commit.
//! Waits in the tests are polling with a deadline, never a fixed sleep.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::clusters::{DEADLINE, admin_client, eventually, label_in, ready_before_the_trigger};
use support::{git_in, text};
use upkeep_testenv::KubeApiServer;
use upkeep_testenv::cluster_api::{FAIL_ANNOTATION, Provider, cluster_yaml, crd_yaml};

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
    label_in(server, "default", "prod-a")
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
    let server = KubeApiServer::start_with_crds(&[&crd_yaml()])
        .await
        .expect("kube-apiserver with the Cluster CRD");
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
    assert!(
        text(&out.stderr).contains("no Cluster named nope in any namespace"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs upkeep without blocking the runtime the provider runs on.
async fn upkeep_async(server: &KubeApiServer, store: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("UPKEEP_STORE", store)
        .output()
        .await
        .expect("the upkeep binary runs")
}

fn history(server: &KubeApiServer, store: &Path, cluster: &str) -> serde_json::Value {
    let out = upkeep(
        server,
        store,
        &["history", "--cluster", cluster, "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("history JSON")
}

/// (namespace, provider runs, fail annotation, extra args, exit, outcome, failure fragment,
/// reason)
type Case<'a> = (
    &'a str,
    bool,
    Option<&'a str>,
    &'a [&'a str],
    i32,
    &'a str,
    Option<&'a str>,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_via_api_ends_succeeded_failed_or_timed_out() {
    let server = KubeApiServer::start_with_crds(&[&crd_yaml()])
        .await
        .expect("kube-apiserver with the Cluster CRD");
    let client = admin_client(&server).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("state.redb");

    let cases: &[Case<'_>] = &[
        (
            "ok",
            true,
            None,
            &[],
            0,
            "Succeeded",
            None,
            "the provider rolls Upgrading → Ready after the trigger: Succeeded, exit 0",
        ),
        (
            "bad",
            true,
            Some("etcd quorum lost"),
            &[],
            3,
            "Failed",
            Some("etcd quorum lost"),
            "the provider reports a failure: Failed with its message, exit 3",
        ),
        (
            "slow",
            false,
            None,
            &["--timeout", "2s"],
            3,
            "Failed",
            Some("not ready 2s after the trigger (timeout)"),
            "nothing ever reports ready: the timeout fails it, exit 3",
        ),
    ];
    for (ns, runs, fail, extra, code, outcome, failure, reason) in cases {
        let name = format!("{ns}-a");
        server
            .kubectl(&["create", "namespace", ns])
            .expect("namespace");
        server
            .kubectl_stdin(
                &["apply", "-f", "-"],
                &cluster_yaml(&name, ns, &[], "29.1.0"),
            )
            .expect("cluster");
        if let Some(message) = fail {
            server
                .kubectl(&[
                    "annotate",
                    "clusters.cluster.x-k8s.io",
                    &name,
                    "-n",
                    ns,
                    &format!("{FAIL_ANNOTATION}={message}"),
                ])
                .expect("annotated");
        }
        let provider = runs.then(|| Provider::start(client.clone(), ns));
        if provider.is_some() {
            ready_before_the_trigger(&server, ns, &name).await;
        }
        let mut args = vec![
            "upgrade", "cluster", &name, "--to", "30.0.0", "--via", "api", "-n", ns, "--wait",
            "-o", "json",
        ];
        args.extend_from_slice(extra);
        let out = upkeep_async(&server, &store, &args).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{reason}: {stderr}");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{reason}: {e}"));
        assert_eq!(report["outcome"], *outcome, "{reason}: {report}");
        assert_eq!(report["via"], "api", "{reason}");
        assert!(report["finishedAt"].is_string(), "{reason}: {report}");
        assert_eq!(
            report["timedOut"],
            *ns == "slow",
            "{reason}: only the timeout is one: {report}"
        );
        match failure {
            Some(f) => assert!(
                report["failure"].as_str().is_some_and(|s| s.contains(f)),
                "{reason}: {report}"
            ),
            None => assert!(report["failure"].is_null(), "{reason}: {report}"),
        }
        // How many intermediate states a watch sees depends on timing; the start, the end
        // and (with nothing reporting readiness) Upgrading do not.
        assert!(
            stderr.contains("Triggered; waiting") && stderr.contains(&format!("→ {outcome}")),
            "{reason}: progress shows the state changes: {stderr}"
        );
        if !runs {
            assert!(
                stderr.contains("Triggered → Upgrading"),
                "{reason}: the label shows the target at once: {stderr}"
            );
        }
        let h = history(&server, &store, &name);
        assert_eq!(
            h.as_array().map(Vec::len),
            Some(1),
            "{reason}: one row: {h}"
        );
        assert_eq!(h[0]["outcome"], *outcome, "{reason}: history: {h}");
        assert!(h[0]["finishedAt"].is_string(), "{reason}: {h}");
        match failure {
            Some(f) => assert!(
                h[0]["reason"].as_str().is_some_and(|s| s.contains(f)),
                "{reason}: history names the reason: {h}"
            ),
            None => assert!(h[0]["reason"].is_null(), "{reason}: {h}"),
        }
        if let Some(p) = provider {
            assert_eq!(p.upgrades_seen(&name), 1, "{reason}: triggered once");
            assert!(p.errors().is_empty(), "{reason}: {:?}", p.errors());
        }
    }

    // Ctrl-C while waiting: exit 130, the upgrade stays recorded as Triggered.
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cluster_yaml("slow-b", "slow", &[], "29.1.0"),
        )
        .expect("cluster");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "upgrade", "cluster", "slow-b", "--to", "30.0.0", "-n", "slow", "--wait",
        ])
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("UPKEEP_STORE", &store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("upkeep starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let seen = tokio::time::timeout(DEADLINE, async {
        let mut seen = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("Triggered; waiting") {
                return seen;
            }
        }
        panic!("upkeep ended before waiting: {seen}");
    })
    .await
    .expect("upkeep starts waiting");
    let pid = child.id().expect("running").to_string();
    let kill = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("upkeep stops waiting on Ctrl-C")
        .expect("exit status");
    let mut rest = seen;
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert_eq!(status.code(), Some(130), "interrupted: {rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    let h = history(&server, &store, "slow-b");
    assert_eq!(h[0]["outcome"], "Triggered", "nothing was observed: {h}");
    assert!(h[0]["finishedAt"].is_null(), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_via_git_observes_what_flux_applies() {
    let server = KubeApiServer::start_with_crds(&[&crd_yaml()])
        .await
        .expect("kube-apiserver with the Cluster CRD");
    let client = admin_client(&server).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("state.redb");
    let repo = tmp.path().join("fleet");
    std::fs::create_dir_all(repo.join("clusters")).unwrap();
    let manifest = repo.join("clusters/git-a.yaml");
    std::fs::write(&manifest, cluster_yaml("git-a", "gitops", &[], "29.1.0")).unwrap();
    support::init_and_commit(&repo, "fleet");
    let before = git_in(&repo, &["rev-parse", "HEAD"]);
    let repo_arg = repo.to_str().expect("utf-8");

    // Without a kubeconfig there is nothing to observe: refused before committing.
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "upgrade", "cluster", "git-a", "--to", "30.0.0", "--repo", repo_arg, "--wait",
        ])
        .env_remove("KUBECONFIG")
        .env("UPKEEP_STORE", &store)
        .output()
        .expect("upkeep runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("kubeconfig"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        git_in(&repo, &["rev-parse", "HEAD"]),
        before,
        "nothing committed"
    );

    server
        .kubectl(&["create", "namespace", "gitops"])
        .expect("namespace");
    server
        .kubectl(&["apply", "-f", manifest.to_str().unwrap()])
        .expect("Flux applied the fleet once");
    let provider = Provider::start(client.clone(), "gitops");
    ready_before_the_trigger(&server, "gitops", "git-a").await;

    let kubeconfig = server.admin_kubeconfig().to_str().unwrap().to_owned();
    let args = [
        "upgrade",
        "cluster",
        "git-a",
        "--to",
        "30.0.0",
        "--repo",
        repo_arg,
        "--kubeconfig",
        &kubeconfig,
        "--wait",
        "-o",
        "json",
    ];
    let run = upkeep_async(&server, &store, &args);
    // Flux: once the commit exists, apply the repository's manifest.
    let flux = async {
        let head = eventually(
            || git_in(&repo, &["rev-parse", "HEAD"]),
            |h| *h != before,
            "upkeep commits the upgrade",
        )
        .await;
        server
            .kubectl(&["apply", "-f", manifest.to_str().unwrap()])
            .expect("Flux applies the commit");
        head
    };
    let (out, head) = tokio::join!(run, flux);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["via"], "git", "{report}");
    assert_eq!(report["outcome"], "Succeeded", "{report}");
    assert_eq!(report["commit"].as_str(), Some(head.trim()), "{report}");
    assert!(stderr.contains("→ Succeeded"), "{stderr}");
    assert_eq!(provider.upgrades_seen("git-a"), 1, "applied once");
    let h = history(&server, &store, "git-a");
    assert_eq!(h[0]["via"], "git", "{h}");
    assert_eq!(h[0]["outcome"], "Succeeded", "{h}");
    assert_eq!(h[0]["commit"].as_str(), Some(head.trim()), "{h}");
}

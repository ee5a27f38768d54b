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
//!
//! `upkeep status --kubeconfig` and `upkeep freeze` against an audited API server: the recorded
//! stage, NEXT only ahead and to the second when near, a stalled campaign's InvalidSpec message;
//! every request with the User-Agent `upkeep/<version>`, the freeze written as `upkeep-cli`.

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

const RECORDED: &str = r#"apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: running, namespace: default}
spec:
  targetVersion: 30.0.0
  matchers: [{name: all, value: ".*", isRegex: true}]
  strategy: {timeout: 45m}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: bad, namespace: default}
spec:
  targetVersion: 30.0.0
  matchers: [{name: all, value: ".*", isRegex: true}]
  strategy: {timeout: soon}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_what_was_recorded_and_writes_name_upkeep_cli() {
    use upkeep_testenv::{KubeUser, upkeep_crds};

    let server = KubeApiServer::start_audited_with_crds(&[&crd_yaml(), &upkeep_crds()])
        .await
        .expect("an audited kube-apiserver with the CRDs");
    server
        .kubectl_stdin(&["apply", "-f", "-"], &format!("{CLUSTER}---\n{RECORDED}"))
        .expect("cluster and upgrades applied");
    // The CLI runs as a user of its own, so the audit log tells its requests from kubectl's.
    server
        .kubectl(&[
            "create",
            "clusterrolebinding",
            "upkeep-cli-test",
            "--clusterrole=cluster-admin",
            &format!("--user={}", KubeUser::Controller.name()),
        ])
        .expect("bind");
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("cli.kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, KubeUser::Controller)
        .unwrap();

    // What a controller recorded: a finished dev cluster, a prod cluster upgrading for 10
    // minutes (45m timeout: due in about 35m), and the stall of the invalid campaign.
    let now = jiff::Timestamp::now();
    let deadline = now - jiff::SignedDuration::from_mins(10) + jiff::SignedDuration::from_mins(45);
    support::clusters::record_running_and_stalled(&server, now).await;
    let message = support::clusters::STALLED_MESSAGE;

    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(&all)
            .env_remove("KUBECONFIG")
            .output()
            .expect("the upkeep binary runs")
    };
    let out = run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let section = |name: &str| {
        shown
            .split("ClusterUpgrade ")
            .find(|s| s.starts_with(&format!("default/{name} ")))
            .unwrap_or_else(|| panic!("{name} in {shown}"))
            .to_owned()
    };
    let bad = section("bad");
    assert!(
        bad.starts_with(&format!(
            "default/bad → 30.0.0: Stalled: InvalidSpec: {message}"
        )),
        "the invalid campaign says why: {shown}"
    );
    assert!(!bad.contains("no cluster selected"), "{shown}");
    let running = section("running");
    let line = |cluster: &str| {
        running
            .lines()
            .find(|l| l.trim_start().starts_with(cluster))
            .unwrap_or_else(|| panic!("{cluster} in {shown}"))
            .to_owned()
    };
    let (dev, prod) = (line("dev-a"), line("prod-a"));
    assert!(
        dev.contains(" dev ") && dev.trim_end().ends_with(" -"),
        "the recorded stage; a finished cluster has no NEXT (not its finish time): {shown}"
    );
    assert!(prod.contains(" prod "), "the recorded stage: {shown}");
    let due = deadline.strftime("%H:%M:%S").to_string();
    assert!(
        prod.contains(&due) && prod.contains("(in 3"),
        "NEXT is the timeout ahead ({due}), to the second: {shown}"
    );

    let out = run(&[
        "freeze",
        "cluster",
        "prod-a",
        "--until",
        "2099-01-01T00:00:00Z",
        "--reason",
        "audit",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let managed = server
        .kubectl(&[
            "get",
            "clusters.cluster.x-k8s.io",
            "prod-a",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .unwrap();
    let ours: Vec<&str> = managed
        .split_whitespace()
        .filter(|m| !m.starts_with("kubectl"))
        .collect();
    assert_eq!(
        ours,
        ["upkeep-cli"],
        "the freeze is written as upkeep-cli: {managed}"
    );

    let agent = format!("upkeep/{}", env!("CARGO_PKG_VERSION"));
    let audit = server.audit_events();
    let mine: Vec<&serde_json::Value> = audit
        .iter()
        .filter(|e| e["user"]["username"] == KubeUser::Controller.name())
        .collect();
    let verbs: std::collections::BTreeSet<&str> =
        mine.iter().filter_map(|e| e["verb"].as_str()).collect();
    assert!(
        verbs.contains("list") && verbs.contains("patch"),
        "the CLI's requests were audited: {verbs:?}"
    );
    let strangers: Vec<String> = mine
        .iter()
        .filter(|e| e["userAgent"] != agent.as_str())
        .map(|e| format!("{} {} ({})", e["verb"], e["requestURI"], e["userAgent"]))
        .collect();
    assert!(
        strangers.is_empty(),
        "requests without User-Agent {agent}: {strangers:#?}"
    );
}

/// Three ClusterUpgradeRecords as the controller writes them: two of `wc1` (in two namespaces'
/// worth of campaigns, one failed), one of `wc10` (a name `wc1` is a prefix of).
const RECORDS: &str = r"apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgradeRecord
metadata: {name: to-30-wc1, namespace: org-a, labels: {cluster: wc1, upkeep.dev/campaign: to-30}}
spec: {cluster: wc1, campaign: to-30, from: 29.0.0, to: 30.0.0, trigger: Direct,
       place: Auto, state: Succeeded, triggeredAt: '2026-11-01T10:00:00Z',
       finishedAt: '2026-11-01T10:20:00Z'}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgradeRecord
metadata: {name: to-31-wc1, namespace: org-a, labels: {cluster: wc1, upkeep.dev/campaign: to-31}}
spec: {cluster: wc1, campaign: to-31, from: 30.0.0, to: 31.0.0, trigger: GitOps,
       place: Auto in Git clusters, state: Failed, reason: disk full,
       triggeredAt: '2026-12-01T10:00:00Z', finishedAt: '2026-12-01T10:30:00Z',
       commit: 0123456789abcdef0123456789abcdef01234567}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgradeRecord
metadata: {name: to-30-wc10, namespace: org-a, labels: {cluster: wc10, upkeep.dev/campaign: to-30}}
spec: {cluster: wc10, campaign: to-30, from: 29.0.0, to: 30.0.0, trigger: Direct,
       state: Upgrading, triggeredAt: '2026-11-01T10:00:00Z'}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reads_the_records_in_the_management_cluster() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_testenv::upkeep_crds()])
        .await
        .expect("kube-apiserver with upkeep's CRDs");
    server
        .kubectl(&["create", "namespace", "org-a"])
        .expect("namespace");
    server
        .kubectl_stdin(&["apply", "-f", "-"], RECORDS)
        .expect("records applied");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("state.redb");
    let kubeconfig = server.admin_kubeconfig().to_str().expect("utf-8 path");

    // kubectl finds a cluster's records by its label, and by the short name.
    let names = server
        .kubectl(&[
            "get",
            "clusterupgraderecords",
            "-A",
            "-l",
            "cluster=wc1",
            "-o",
            "name",
        ])
        .expect("kubectl get -l cluster=wc1");
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [
            "clusterupgraderecord.upkeep.dev/to-30-wc1",
            "clusterupgraderecord.upkeep.dev/to-31-wc1"
        ],
        "{names}"
    );
    let table = server
        .kubectl(&["get", "cur", "-n", "org-a"])
        .expect("kubectl get cur");
    for column in [
        "CLUSTER",
        "FROM",
        "TO",
        "STATE",
        "TRIGGERED",
        "FINISHED",
        "AGE",
    ] {
        assert!(table.contains(column), "{column} in\n{table}");
    }

    // Text: newest first, wc1 only, with the outcome's reason and the short commit.
    let out = upkeep(
        &server,
        &store,
        &["history", "--cluster", "wc1", "--kubeconfig", kubeconfig],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows[0].contains("to-31") && rows[0].contains("Failed: disk full"),
        "newest first: {stdout}"
    );
    assert!(
        rows[0].contains("0123456789ab") && !rows[0].contains("0123456789abc"),
        "{stdout}"
    );
    assert!(
        rows[1].contains("to-30") && rows[1].contains("29.0.0 → 30.0.0"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("wc10"),
        "only the cluster asked for: {stdout}"
    );

    // JSON: every field of the record, with its namespace and name.
    let out = upkeep(
        &server,
        &store,
        &[
            "history",
            "--cluster",
            "wc1",
            "--kubeconfig",
            kubeconfig,
            "-n",
            "org-a",
            "-o",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let campaigns: Vec<&str> = json
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|r| r["campaign"].as_str())
        .collect();
    assert_eq!(campaigns, ["to-31", "to-30"], "{json}");
    for (field, want) in [
        ("namespace", "org-a"),
        ("name", "to-31-wc1"),
        ("cluster", "wc1"),
        ("from", "30.0.0"),
        ("to", "31.0.0"),
        ("trigger", "GitOps"),
        ("state", "Failed"),
        ("reason", "disk full"),
        ("triggeredAt", "2026-12-01T10:00:00Z"),
        ("finishedAt", "2026-12-01T10:30:00Z"),
    ] {
        assert_eq!(json[0][field], want, "{field} in {json}");
    }

    // Nothing recorded: exit 1 and a message on stderr; another namespace holds nothing.
    let out = upkeep(
        &server,
        &store,
        &[
            "history",
            "--cluster",
            "wc1",
            "--kubeconfig",
            kubeconfig,
            "-n",
            "org-b",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no ClusterUpgradeRecords of cluster wc1 in namespace org-b"),
        "{}",
        text(&out.stderr)
    );
}

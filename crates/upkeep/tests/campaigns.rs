//! `upkeep run` carries out ClusterUpgrade campaigns with the store as their status, against
//! the real Git server (git http-backend behind nginx, basic auth) and the real kube-apiserver
//! with the test Cluster API provider loop (upkeep-testenv `cluster_api::Provider`).
//!
//! - GitOps, 3 clusters, `maxConcurrency: 1`, no `--kubeconfig`: each pass makes at most one
//!   commit on the remote; a triggered cluster is never taken as succeeded (its reason says it
//!   is not observed) and fails only when the campaign's timeout passes, after which the next
//!   cluster starts (`failurePolicy: Continue`); `upkeep history --cluster` shows each upgrade.
//! - A real `upkeep run` killed (abort, as `kill -9`) between recording `Triggered` and the
//!   commit, or between the commit and recording it, then run again: exactly one commit, one
//!   history record, and it names that commit (found again by its `Upkeep-Campaign` /
//!   `Upkeep-Cluster` trailers).
//! - `releaseRef` over an OCI layout directory: the cluster moves to what the VersionPolicy
//!   allows; no allowed version or no policy: the campaign waits and says why.
//! - `after` with `soak`: B starts only once A is Finished and an hour has passed since A's
//!   recorded finish.
//! - Direct with `--kubeconfig`: the pass patches one cluster; the provider rolls it to Ready;
//!   the next pass records Succeeded (history too) and patches the next cluster.
//! - GitOps with `--kubeconfig` in a local checkout: commit, re-apply without a second commit
//!   until the test (playing Flux) applies it, then Succeeded and the next commit.
//! - Two campaigns over one cluster: it runs in the older (by name in a repository); the other
//!   says Waiting, overlap, naming it.

mod support;

use std::path::Path;
use std::process::Output;

use support::clusters::{
    admin_client, eventually, label_in, ready_before_the_trigger, ready_since_in,
};
use support::{runtime, text, upkeep};
use upkeep_testenv::cluster_api::{Provider, cluster_yaml, crd_yaml};
use upkeep_testenv::{GitServer, KubeApiServer, git};

const USER: &str = "bot";
const PASSWORD: &str = "git-pa55-never-shown";
const T0: &str = "2026-03-10T12:00:00Z";

const CLUSTERS: &str = r#"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: a
  namespace: org
  labels:
    release.giantswarm.io/version: "1.0.0"
    env: dev
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: b
  namespace: org
  labels:
    release.giantswarm.io/version: "1.0.0"
    env: dev
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: c
  namespace: org
  labels:
    release.giantswarm.io/version: "1.0.0"
    env: dev
"#;

fn campaign(url: &str) -> String {
    format!(
        r#"apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata:
  name: rollout
  namespace: org
spec:
  targetVersion: 2.0.0
  matchers:
    - {{name: dev, key: env, value: dev}}
  strategy:
    maxConcurrency: 1
    timeout: 1h
    failurePolicy: Continue
  trigger: GitOps
  gitOps:
    git: {{url: "{url}"}}
    commit:
      author: {{name: upkeep, email: upkeep@example.com}}
"#
    )
}

struct World {
    _server: GitServer,
    url: String,
    bare: std::path::PathBuf,
    tmp: tempfile::TempDir,
    base: String,
}

impl World {
    fn start() -> World {
        World::start_with(|_| Vec::new())
    }

    /// The fleet repository with the files `extra` makes (given the repository's URL) besides
    /// the clusters and the campaign.
    fn start_with(extra: impl Fn(&str) -> Vec<(&'static str, String)>) -> World {
        let rt = runtime();
        let server = rt
            .block_on(GitServer::start(Some((USER, PASSWORD))))
            .expect("git server");
        let url = server.url("fleet");
        let campaign = campaign(&url);
        let extra = extra(&url);
        server
            .create_repo(
                "fleet",
                &[
                    ("clusters/clusters.yaml", CLUSTERS.as_bytes()),
                    ("upkeep/campaign.yaml", campaign.as_bytes()),
                ]
                .into_iter()
                .chain(extra.iter().map(|(p, t)| (*p, t.as_bytes())))
                .collect::<Vec<_>>(),
            )
            .expect("repo");
        let bare = server.bare_path("fleet");
        let mut world = World {
            _server: server,
            url,
            bare,
            tmp: tempfile::tempdir().expect("tempdir"),
            base: String::new(),
        };
        let base = world.bare_git(&["rev-parse", "main"]);
        base.trim().clone_into(&mut world.base);
        world
    }

    fn bare_git(&self, args: &[&str]) -> String {
        let mut all = vec!["--git-dir", self.bare.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        git(&all, None).expect("git on the server's repository")
    }

    fn store(&self) -> std::path::PathBuf {
        self.tmp.path().join("state.redb")
    }

    /// `upkeep run --once` at `at`, killed by `failpoint` when given.
    fn run(&self, at: &str, failpoint: Option<&str>) -> Output {
        let work = self.tmp.path().join("work");
        let store = self.store();
        let args = [
            "run",
            "--once",
            "--repo",
            &self.url,
            "--workdir",
            work.to_str().expect("utf-8"),
            "--at",
            at,
            "--store",
            store.to_str().expect("utf-8"),
            "--allow-insecure-http",
        ];
        // Under coreutils' `timeout`, so a hang fails the test; no kubeconfig from the
        // environment: these passes observe nothing.
        let out = std::process::Command::new("timeout")
            .args(["-s", "KILL", "120", env!("CARGO_BIN_EXE_upkeep")])
            .args(args)
            .env("UPKEEP_GIT_USERNAME", USER)
            .env("UPKEEP_GIT_PASSWORD", PASSWORD)
            .env_remove("KUBECONFIG")
            .env_remove("UPKEEP_STORE")
            .env_remove("UPKEEP_FAILPOINT")
            .envs(failpoint.map(|step| ("UPKEEP_FAILPOINT", step)))
            .output()
            .expect("the upkeep binary runs");
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !shown.contains(PASSWORD),
            "no credential in output: {shown}"
        );
        out
    }

    /// A pass without failpoint at `at`: it exits 0 and leaves `commits` commits from upkeep on
    /// `main` (`what` says why). Its stderr.
    fn pass(&self, at: &str, commits: usize, what: &str) -> String {
        let out = self.run(at, None);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert_eq!(self.commits().len(), commits, "{what}: {err}");
        err
    }

    /// `upkeep status -o json` over a fresh checkout of the repository, with the store `run`
    /// records in (or none), at `at`.
    fn status(&self, at: &str, with_store: bool) -> serde_json::Value {
        let checkout = tempfile::tempdir().expect("tempdir");
        let dir = checkout.path().join("fleet");
        git(
            &[
                "clone",
                "-q",
                self.bare.to_str().expect("utf-8"),
                dir.to_str().expect("utf-8"),
            ],
            None,
        )
        .expect("clone");
        let none = self.tmp.path().join("no-store.redb");
        let store = if with_store { self.store() } else { none };
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["status", "-o", "json", "--at", at, "--repo"])
            .arg(&dir)
            .arg("--store")
            .arg(&store)
            .output()
            .expect("the upkeep binary runs");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// The commits upkeep pushed to `main`, oldest first.
    fn commits(&self) -> Vec<String> {
        self.bare_git(&["rev-list", "--reverse", &format!("{}..main", self.base)])
            .lines()
            .map(ToOwned::to_owned)
            .collect()
    }

    /// The version of each cluster in `main`'s manifest.
    fn versions(&self) -> Vec<String> {
        self.bare_git(&["show", "main:clusters/clusters.yaml"])
            .lines()
            .filter_map(|l| l.trim().strip_prefix("release.giantswarm.io/version: "))
            .map(|v| v.trim_matches('"').to_owned())
            .collect()
    }

    fn history(&self, cluster: &str) -> serde_json::Value {
        let store = self.store();
        let out = upkeep(
            &[
                "history",
                "--cluster",
                cluster,
                "-o",
                "json",
                "--store",
                store.to_str().expect("utf-8"),
            ],
            &[],
        );
        // 1: no upgrade of this cluster recorded (the list is empty).
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("history JSON")
    }
}

fn later(minutes: i64) -> String {
    T0.parse::<jiff::Timestamp>()
        .unwrap()
        .checked_add(jiff::SignedDuration::from_mins(minutes))
        .unwrap()
        .to_string()
}

#[test]
fn a_gitops_campaign_makes_one_commit_per_step_and_never_succeeds_unobserved() {
    let world = World::start();

    // Pass 1: a starts (concurrency 1), one commit.
    let err = world.pass(T0, 1, "one commit for the first step");
    assert_eq!(
        world.versions(),
        ["2.0.0", "1.0.0", "1.0.0"],
        "only a moved"
    );
    assert!(err.contains("cluster a: trigger 1.0.0 → 2.0.0"), "{err}");
    let h = world.history("a");
    assert_eq!(h[0]["outcome"], "Triggered", "{h}");
    assert_eq!(h[0]["via"], "git", "{h}");
    assert_eq!(
        h[0]["commit"].as_str(),
        world.commits().first().map(String::as_str),
        "the history names the commit: {h}"
    );

    // Pass 2, later but within the timeout: a is not observed, so it neither succeeds nor
    // lets b start; nothing is committed.
    let err = world.pass(&later(10), 1, "no second commit while a runs");
    assert!(
        err.contains("cluster a: not observed: pass --kubeconfig to see cluster status"),
        "{err}"
    );
    assert!(err.contains("1 Triggered, 2 Waiting"), "{err}");
    assert_eq!(world.history("a")[0]["outcome"], "Triggered");
    // `upkeep status` over a checkout decides on what run recorded, as the controller decides
    // on its status: a is running; without the store nothing counts as started.
    let state_of = |status: &serde_json::Value, name: &str| {
        status[0]["clusters"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["name"] == name))
            .map(|c| c["state"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    let recorded = world.status(&later(10), true);
    assert_eq!(state_of(&recorded, "a"), "Triggered", "{recorded}");
    assert_eq!(state_of(&recorded, "b"), "Waiting", "{recorded}");
    assert_eq!(recorded[0]["state"], "Running", "{recorded}");
    let unrecorded = world.status(&later(10), false);
    assert_ne!(state_of(&unrecorded, "a"), "Triggered", "{unrecorded}");
    assert!(
        !world.tmp.path().join("no-store.redb").exists(),
        "status creates no store"
    );

    // Pass 3, after the timeout: a failed (unobserved, and the failure says so), b starts.
    world.pass(&later(61), 2, "one commit for the second step");
    assert_eq!(world.versions(), ["2.0.0", "2.0.0", "1.0.0"]);
    let h = world.history("a");
    assert_eq!(h[0]["outcome"], "Failed", "{h}");
    let reason = h[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not ready 1h after the trigger") && reason.contains("not observed"),
        "{h}"
    );
    assert_eq!(world.history("b")[0]["outcome"], "Triggered");

    // Pass 4: b timed out too, c starts; pass 5 (same time) changes nothing.
    world.pass(&later(122), 3, "one commit for the third step");
    assert_eq!(world.versions(), ["2.0.0", "2.0.0", "2.0.0"]);
    world.pass(&later(123), 3, "nothing more to commit");
    for c in ["a", "b", "c"] {
        assert_eq!(
            world.history(c).as_array().map(Vec::len),
            Some(1),
            "one upgrade of {c} in the history"
        );
    }
}

/// Two campaigns over cluster `a`: it runs in the older one (in a repository, where manifests
/// have no creation time, the name decides: `rollout` < `second`), and `second` shows it
/// Waiting with reason Overlap naming `rollout`, as the controller does.
#[test]
fn two_campaigns_over_one_cluster_run_it_in_the_older_one() {
    let world = World::start_with(|url| {
        let second = campaign(url)
            .replace("name: rollout", "name: second")
            .replace(
                "    - {name: dev, key: env, value: dev}",
                "    - {name: a, value: a}",
            );
        vec![("upkeep/second.yaml", second)]
    });
    let err = world.pass(T0, 1, "one commit: rollout starts a, second does not");
    assert!(
        err.contains(
            "ClusterUpgrade org/second: cluster a: Waiting: overlap: ClusterUpgrade rollout"
        ),
        "{err}"
    );
    assert_eq!(world.versions(), ["2.0.0", "1.0.0", "1.0.0"], "{err}");
}

#[test]
fn killed_between_record_and_commit_then_rerun_makes_exactly_one_commit() {
    // (failpoint, reason)
    let cases = [
        ("trigger", "Triggered recorded, nothing committed yet"),
        ("acted", "committed and pushed, the commit not recorded yet"),
    ];
    for (step, reason) in cases {
        let world = World::start();
        let killed = world.run(T0, Some(step));
        assert_ne!(
            killed.status.code(),
            Some(0),
            "{reason}: the failpoint aborted the run: {}",
            text(&killed.stderr)
        );
        assert!(
            text(&killed.stderr).contains(&format!("failpoint {step}: aborting")),
            "{reason}: {}",
            text(&killed.stderr)
        );
        let before = world.commits().len();
        let out = world.run(&later(1), None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{reason}: {}",
            text(&out.stderr)
        );
        let commits = world.commits();
        assert_eq!(
            commits.len(),
            1,
            "{reason}: exactly one commit after the rerun (had {before} after the kill): {}",
            text(&out.stderr)
        );
        assert_eq!(world.versions(), ["2.0.0", "1.0.0", "1.0.0"], "{reason}");
        let h = world.history("a");
        assert_eq!(h.as_array().map(Vec::len), Some(1), "{reason}: {h}");
        assert_eq!(h[0]["outcome"], "Triggered", "{reason}: {h}");
        assert_eq!(
            h[0]["commit"].as_str(),
            Some(commits[0].as_str()),
            "{reason}: the history names the one commit (found by its trailers after a kill): {h}"
        );
        let message = world.bare_git(&["log", "-1", "--format=%B", "main"]);
        assert!(
            message.contains("Upkeep-Campaign: org/rollout\nUpkeep-Cluster: org/a\n"),
            "{reason}: the pushed commit names the campaign and the cluster: {message}"
        );
        assert!(
            world.history("b").as_array().is_some_and(Vec::is_empty),
            "{reason}: b did not start (concurrency 1)"
        );
    }
}

const DIRECT: &str = r"apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata:
  name: direct
  namespace: prov
spec:
  targetVersion: 2.0.0
  matchers:
    - {name: dev, key: env, value: dev}
  strategy:
    maxConcurrency: 1
    timeout: 1h
";

fn label(server: &KubeApiServer, name: &str) -> String {
    label_in(server, "prov", name)
}

fn ready_since(server: &KubeApiServer, name: &str) -> String {
    ready_since_in(server, "prov", name)
}

async fn run_direct(server: &KubeApiServer, dir: &Path, store: &Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "run",
            "--once",
            "--repo",
            dir.to_str().expect("utf-8"),
            "--store",
            store.to_str().expect("utf-8"),
            "--kubeconfig",
            server.admin_kubeconfig().to_str().expect("utf-8"),
        ])
        .env_remove("UPKEEP_FAILPOINT")
        .output()
        .await
        .expect("the upkeep binary runs")
}

/// The API server with the Cluster CRD, namespace `ns` with clusters `a` and `b` (label
/// `env: dev`, version 1.0.0) that the provider loop has marked Ready, and the clock past that
/// second (the core counts only a transition at or after the trigger's second as the
/// provider's answer).
async fn api_with_ready_clusters(ns: &str) -> (KubeApiServer, Provider) {
    let server = KubeApiServer::start_with_crds(&[&crd_yaml()])
        .await
        .expect("kube-apiserver with the Cluster CRD");
    server
        .kubectl(&["create", "namespace", ns])
        .expect("namespace");
    let provider = Provider::start(admin_client(&server).await, ns);
    for name in ["a", "b"] {
        server
            .kubectl_stdin(
                &["apply", "-f", "-"],
                &cluster_yaml(name, ns, &[("env", "dev")], "1.0.0"),
            )
            .expect("cluster applied");
    }
    for name in ["a", "b"] {
        ready_before_the_trigger(&server, ns, name).await;
    }
    (server, provider)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_campaign_patches_and_records_succeeded_when_the_cluster_is_ready() {
    let (server, provider) = api_with_ready_clusters("prov").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("campaign.yaml"), DIRECT).unwrap();
    let store = tmp.path().join("state.redb");

    let out = run_direct(&server, &dir, &store).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(label(&server, "a"), "2.0.0", "a patched: {err}");
    assert_eq!(
        label(&server, "b"),
        "1.0.0",
        "b waits (concurrency 1): {err}"
    );
    assert!(
        !err.contains("not observed"),
        "observed with --kubeconfig: {err}"
    );

    // The provider rolls a to Ready at 2.0.0; the next pass sees it.
    eventually(
        || provider.upgrades_seen("a"),
        |n| *n >= 1,
        "the provider rolls a",
    )
    .await;
    let triggered = world_history(&store, "a");
    let at: jiff::Timestamp = triggered[0]["at"].as_str().unwrap().parse().unwrap();
    eventually(
        || ready_since(&server, "a"),
        |t| {
            t.parse::<jiff::Timestamp>()
                .is_ok_and(|t| t.as_second() >= at.as_second())
        },
        "a Ready again after the trigger",
    )
    .await;
    let out = run_direct(&server, &dir, &store).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("cluster a: succeeded"), "{err}");
    assert_eq!(
        label(&server, "b"),
        "2.0.0",
        "b patched in the next step: {err}"
    );
    let h = world_history(&store, "a");
    assert_eq!(h[0]["outcome"], "Succeeded", "{h}");
    assert_eq!(h[0]["via"], "api", "{h}");
    assert_eq!(world_history(&store, "b")[0]["outcome"], "Triggered");
    assert!(provider.errors().is_empty(), "{:?}", provider.errors());
}

fn world_history(store: &Path, cluster: &str) -> serde_json::Value {
    let out = upkeep(
        &[
            "history",
            "--cluster",
            cluster,
            "-o",
            "json",
            "--store",
            store.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("history JSON")
}

const GITOPS_LOCAL: &str = r#"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: a
  namespace: flux
  labels:
    release.giantswarm.io/version: "1.0.0"
    env: dev
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: b
  namespace: flux
  labels:
    release.giantswarm.io/version: "1.0.0"
    env: dev
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata:
  name: gitops
  namespace: flux
spec:
  targetVersion: 2.0.0
  matchers:
    - {name: dev, key: env, value: dev}
  strategy:
    maxConcurrency: 1
  trigger: GitOps
  gitOps:
    git: {url: "https://git.example/fleet"}
    commit:
      author: {name: upkeep, email: upkeep@example.com}
"#;

/// GitOps observed with `--kubeconfig`, in a local checkout (no `origin`: local commits, as
/// `upkeep upgrade cluster --via git` makes them): the pass commits a; until Flux applies it
/// the cluster stays Triggered and the next pass re-applies without a second commit; the test
/// plays Flux (sets the label on the management cluster), the provider rolls a to Ready, and
/// the next pass records a Succeeded and commits b.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_campaign_observed_on_the_management_cluster_moves_on_when_flux_applied_it() {
    let (server, provider) = api_with_ready_clusters("flux").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fleet.yaml"), GITOPS_LOCAL).unwrap();
    support::commit_all(&dir, "import");
    let store = tmp.path().join("state.redb");
    let commits = || {
        support::git_in(&dir, &["rev-list", "--count", "HEAD"])
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let in_git = |name: &str| {
        let text = std::fs::read_to_string(dir.join("fleet.yaml")).unwrap();
        let at = text.find(&format!("name: {name}\n")).unwrap();
        text[at..]
            .lines()
            .find_map(|l| l.trim().strip_prefix("release.giantswarm.io/version: "))
            .unwrap()
            .trim_matches('"')
            .to_owned()
    };

    let out = run_direct(&server, &dir, &store).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(commits(), 2, "one commit for a: {err}");
    assert_eq!((in_git("a"), in_git("b")), ("2.0.0".into(), "1.0.0".into()));
    assert_eq!(
        label_in(&server, "flux", "a"),
        "1.0.0",
        "Flux has not applied it"
    );

    let out = run_direct(&server, &dir, &store).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(commits(), 2, "re-applied, nothing to commit: {err}");
    assert!(err.contains("1 Triggered, 1 Waiting"), "{err}");

    // Flux applies the commit.
    let h = world_history(&store, "a");
    let at: jiff::Timestamp = h[0]["at"].as_str().unwrap().parse().unwrap();
    server
        .kubectl(&[
            "label",
            "--overwrite",
            "clusters.cluster.x-k8s.io",
            "a",
            "-n",
            "flux",
            "release.giantswarm.io/version=2.0.0",
        ])
        .expect("label");
    eventually(
        || provider.upgrades_seen("a"),
        |n| *n >= 1,
        "the provider rolls a",
    )
    .await;
    eventually(
        || ready_since_in(&server, "flux", "a"),
        |t| {
            t.parse::<jiff::Timestamp>()
                .is_ok_and(|t| t.as_second() >= at.as_second())
        },
        "a Ready again after the trigger",
    )
    .await;
    let out = run_direct(&server, &dir, &store).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("cluster a: succeeded"), "{err}");
    assert_eq!(commits(), 3, "b committed in the next step: {err}");
    assert_eq!(in_git("b"), "2.0.0");
    let message = support::git_in(&dir, &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("Upkeep-Campaign: flux/gitops\nUpkeep-Cluster: flux/b"),
        "the commit names the campaign and the cluster: {message}"
    );
    let h = world_history(&store, "a");
    assert_eq!(h[0]["outcome"], "Succeeded", "{h}");
    assert_eq!(h[0]["file"], "fleet.yaml", "{h}");
    assert!(
        h[0]["commit"].as_str().is_some(),
        "the local commit is named: {h}"
    );
}

/// `upkeep run --once` on a local checkout at `at`, observing nothing (no kubeconfig).
fn run_local(dir: &Path, store: &Path, at: &str) -> Output {
    std::process::Command::new("timeout")
        .args(["-s", "KILL", "120", env!("CARGO_BIN_EXE_upkeep")])
        .args([
            "run",
            "--once",
            "--repo",
            dir.to_str().expect("utf-8"),
            "--store",
            store.to_str().expect("utf-8"),
            "--at",
            at,
        ])
        .env_remove("KUBECONFIG")
        .env_remove("UPKEEP_STORE")
        .env_remove("UPKEEP_FAILPOINT")
        .output()
        .expect("the upkeep binary runs")
}

/// The version of Cluster `name` in a local checkout's `fleet.yaml`.
fn version_in(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join("fleet.yaml")).unwrap();
    let at = text
        .find(&format!("  name: {name}\n"))
        .unwrap_or_else(|| panic!("Cluster {name} in {text}"));
    text[at..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("release.giantswarm.io/version: "))
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

fn cluster_doc(name: &str, env: &str, version: &str) -> String {
    format!(
        r#"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: {name}
  namespace: org
  labels:
    release.giantswarm.io/version: "{version}"
    env: {env}
"#
    )
}

fn gitops_campaign(name: &str, env: &str, target: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata:
  name: {name}
  namespace: org
spec:
  {target}
  matchers:
    - {{name: {env}, key: env, value: {env}}}
  trigger: GitOps
  gitOps:
    git: {{url: "https://git.example/fleet"}}
    commit:
      author: {{name: upkeep, email: upkeep@example.com}}
{extra}"#
    )
}

/// A `releaseRef` resolves to its VersionPolicy's latest allowed version over the pass's scan
/// of an OCI layout directory (the controller reads the same from `status.latestVersion`):
/// `^2` over 1.0.0, 2.0.0, 2.1.0, 3.0.0 moves the cluster to 2.1.0. A policy that allows no
/// version, and one that is not in the repository, leave their clusters waiting, and the
/// reason says why.
#[test]
fn a_release_ref_campaign_moves_to_the_version_its_policy_allows_and_says_why_it_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("releases");
    upkeep_testenv::write_layout(
        &layout,
        "cluster-release",
        &[
            ("1.0.0", "1.0.0"),
            ("2.0.0", "2.0.0"),
            ("2.1.0", "2.1.0"),
            ("3.0.0", "3.0.0"),
        ],
    )
    .expect("OCI layout");
    let dir = tmp.path().join("fleet");
    std::fs::create_dir_all(&dir).unwrap();
    let source = format!(
        r#"apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: releases, namespace: org}}
spec: {{url: "oci-layout:{}"}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: release, namespace: org}}
spec: {{sourceRef: {{name: releases}}, policy: {{semver: {{range: "^2"}}}}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: nine, namespace: org}}
spec: {{sourceRef: {{name: releases}}, policy: {{semver: {{range: "^9"}}}}}}
"#,
        layout.display()
    );
    let docs = [
        cluster_doc("a", "dev", "1.0.0"),
        cluster_doc("b", "qa", "1.0.0"),
        cluster_doc("c", "stage", "1.0.0"),
        source,
        gitops_campaign("follow", "dev", "releaseRef: {name: release}", ""),
        gitops_campaign("none", "qa", "releaseRef: {name: nine}", ""),
        gitops_campaign("missing", "stage", "releaseRef: {name: gone}", ""),
    ];
    std::fs::write(dir.join("fleet.yaml"), docs.join("---\n")).unwrap();
    support::commit_all(&dir, "import");
    let store = tmp.path().join("state.redb");

    let out = run_local(&dir, &store, T0);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(version_in(&dir, "a"), "2.1.0", "^2 allows 2.1.0: {err}");
    let h = world_history(&store, "a");
    assert_eq!(h[0]["to"], "2.1.0", "{h}");
    assert_eq!(
        (version_in(&dir, "b"), version_in(&dir, "c")),
        ("1.0.0".to_owned(), "1.0.0".to_owned()),
        "nothing resolved, nothing moved: {err}"
    );
    assert!(
        err.contains(
            "ClusterUpgrade org/none: target release not resolved yet: VersionPolicy org/nine allows no version"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "ClusterUpgrade org/missing: target release not resolved yet: VersionPolicy org/gone (spec.releaseRef) is not in the repository"
        ),
        "{err}"
    );
}

/// `after` is the controller's: B starts only once A's recorded campaign state is Finished
/// and `soak` has passed since A's `finishedAt` (A finishes at T0: its only cluster is already
/// at the target; the finish time stays T0 on later passes).
#[test]
fn after_waits_for_the_other_campaign_to_finish_and_soak_from_its_finish_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    std::fs::create_dir_all(&dir).unwrap();
    let docs = [
        cluster_doc("x", "first", "2.0.0"),
        cluster_doc("y", "second", "1.0.0"),
        gitops_campaign("a", "first", "targetVersion: 2.0.0", ""),
        gitops_campaign(
            "b",
            "second",
            "targetVersion: 2.0.0",
            "  after:\n    - {name: a, soak: 1h}\n",
        ),
    ];
    std::fs::write(dir.join("fleet.yaml"), docs.join("---\n")).unwrap();
    support::commit_all(&dir, "import");
    let store = tmp.path().join("state.redb");

    // (at, y's version after the pass, what stderr says, reason)
    let cases = [
        (
            T0.to_owned(),
            "1.0.0",
            "ClusterUpgrade org/a: Finished",
            "a finishes now; b soaks",
        ),
        (
            later(59),
            "1.0.0",
            "ClusterUpgrade org/b: Waiting",
            "59 minutes after a finished: still soaking",
        ),
        (
            later(61),
            "2.0.0",
            "cluster y: trigger 1.0.0 → 2.0.0",
            "an hour after a finished: b starts",
        ),
    ];
    for (at, want, says, reason) in cases {
        let out = run_local(&dir, &store, &at);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{reason}: {err}");
        assert_eq!(version_in(&dir, "y"), want, "{reason}: {err}");
        assert!(err.contains(says), "{reason}: {says:?} in {err}");
    }
}

/// A `releaseRef` naming a Giant Swarm Release resolves from the Release manifest in the
/// repository: an `active` `aws-30.0.0` moves the AWS cluster to 30.0.0 and skips the Azure
/// one, naming both providers; a `deprecated` Release is refused and a Release that is not in
/// the repository waits, each saying why, and nothing moves for them.
#[test]
fn a_giant_swarm_release_campaign_moves_its_provider_s_clusters_and_refuses_or_waits_with_a_reason()
{
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    std::fs::create_dir_all(&dir).unwrap();
    let on = |doc: String, kind: &str| {
        format!("{doc}spec:\n  infrastructureRef: {{kind: {kind}, name: x}}\n")
    };
    let release = |name: &str, state: &str| {
        format!(
            "apiVersion: release.giantswarm.io/v1alpha1\nkind: Release\nmetadata: {{name: {name}}}\nspec: {{state: {state}}}\n"
        )
    };
    let gs = |name: &str| {
        format!(
            "releaseRef: {{apiVersion: release.giantswarm.io/v1alpha1, kind: Release, name: {name}}}"
        )
    };
    let docs = [
        on(cluster_doc("a", "dev", "29.0.0"), "AWSCluster"),
        on(cluster_doc("b", "dev", "29.0.0"), "AzureCluster"),
        on(cluster_doc("c", "qa", "29.0.0"), "AWSCluster"),
        on(cluster_doc("d", "stage", "29.0.0"), "AWSCluster"),
        gitops_campaign("follow", "dev", &gs("aws-30.0.0"), ""),
        gitops_campaign("old", "qa", &gs("aws-28.0.0"), ""),
        gitops_campaign("missing", "stage", &gs("aws-32.0.0"), ""),
    ];
    std::fs::write(dir.join("fleet.yaml"), docs.join("---\n")).unwrap();
    std::fs::write(
        dir.join("releases.yaml"),
        [
            release("aws-30.0.0", "active"),
            release("aws-28.0.0", "deprecated"),
        ]
        .join("---\n"),
    )
    .unwrap();
    support::commit_all(&dir, "import");
    let store = tmp.path().join("state.redb");

    let out = run_local(&dir, &store, T0);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        version_in(&dir, "a"),
        "30.0.0",
        "the Release's version: {err}"
    );
    for c in ["b", "c", "d"] {
        assert_eq!(version_in(&dir, c), "29.0.0", "{c} untouched: {err}");
    }
    assert!(
        err.contains("ClusterUpgrade org/old: target release not resolved yet: Release aws-28.0.0 is deprecated"),
        "{err}"
    );
    assert!(
        err.contains("ClusterUpgrade org/missing: target release not resolved yet: Release aws-32.0.0 is not in the repository"),
        "{err}"
    );
    let status = upkeep(
        &[
            "status",
            "--repo",
            dir.to_str().expect("utf-8"),
            "--store",
            store.to_str().expect("utf-8"),
            "--at",
            T0,
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let follow = rows
        .as_array()
        .and_then(|r| r.iter().find(|c| c["name"] == "follow"))
        .expect("follow");
    let b = follow["clusters"]
        .as_array()
        .and_then(|r| r.iter().find(|c| c["name"] == "b"))
        .expect("b");
    assert_eq!(b["state"], "Skipped", "{follow}");
    assert_eq!(
        b["reason"], "the release is for provider aws, the cluster's provider is azure",
        "{follow}"
    );
}

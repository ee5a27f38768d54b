//! The cluster commands as a user runs them, in a real Git repository: `upgrade cluster`
//! (byte-exact commit, refusal outside the window, dry run, freeze), `freeze`/`unfreeze`,
//! `status` (text and JSON) and `history --cluster`.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::{git_in, text};

const CLUSTERS: &str = r#"# Workload clusters of org-a.
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: dev-a
  namespace: org-a
  labels:
    release.giantswarm.io/version: "29.1.0"   # bumped by upkeep
    upkeep.dev/stage: dev
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod-a
  namespace: org-a
  labels:
    upkeep.dev/stage: prod
    release.giantswarm.io/version: 29.1.0
spec:
  controlPlaneEndpoint: {host: api.prod-a.example.com, port: 443}
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: unlabelled
  namespace: org-a
"#;

const SCHEDULES: &str = r#"apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata:
  name: prod-window
  namespace: org-a
spec:
  timeZone: Europe/Berlin
  maintenanceWindows:
    - name: tuesday-night
      startTime: "2026-01-06T22:00:00"
      endTime: "2026-01-07T02:00:00"
      recurrence: FREQ=WEEKLY;BYDAY=TU
  clusterSelector:
    matchLabels:
      upkeep.dev/stage: prod
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata:
  name: to-30
  namespace: org-a
spec:
  targetVersion: 30.0.0
  matchers:
    - name: all
      key: upkeep.dev/stage
      value: "dev|prod"
      isRegex: true
  strategy:
    stages:
      - name: dev
        soak: 24h
        matchers: [{name: dev, key: upkeep.dev/stage, value: dev}]
      - name: prod
        matchers: [{name: prod, key: upkeep.dev/stage, value: prod}]
"#;

/// Tuesday 2026-03-10 21:30Z = 22:30 CET: inside the Tuesday-night window.
const OPEN: &str = "2026-03-10T21:30:00Z";
/// Tuesday noon: outside; the window opens at 22:00 CET (21:00Z).
const CLOSED: &str = "2026-03-10T12:00:00Z";

struct Repo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: PathBuf,
}

fn repo() -> Repo {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    std::fs::create_dir_all(dir.join("clusters")).unwrap();
    std::fs::create_dir_all(dir.join("upkeep")).unwrap();
    std::fs::write(dir.join("clusters/clusters.yaml"), CLUSTERS).unwrap();
    std::fs::write(dir.join("upkeep/schedules.yaml"), SCHEDULES).unwrap();
    support::init_and_commit(&dir, "fleet");
    let store = tmp.path().join("state.redb");
    Repo {
        _tmp: tmp,
        dir,
        store,
    }
}

impl Repo {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(args)
            .env("UPKEEP_STORE", &self.store)
            .env_remove("KUBECONFIG")
            .output()
            .expect("the upkeep binary runs")
    }

    /// `upkeep upgrade cluster <cluster> --to <version> --at <at>` on this repository.
    fn upgrade(&self, cluster: &str, version: &str, at: &str) -> Output {
        self.run(&[
            "upgrade",
            "cluster",
            cluster,
            "--to",
            version,
            "--repo",
            self.repo_arg(),
            "--at",
            at,
        ])
    }

    fn repo_arg(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn clusters(&self) -> String {
        std::fs::read_to_string(self.dir.join("clusters/clusters.yaml")).unwrap()
    }

    fn head(&self) -> String {
        git_in(&self.dir, &["rev-parse", "HEAD"]).trim().to_owned()
    }
}

/// (cluster, extra args, exit code, stderr fragments, reason)
type Case<'a> = (&'a str, &'a [&'a str], i32, &'a [&'a str], &'a str);

/// `out` exited with `code` and its stderr says each of `wants` (`reason`: the case).
fn assert_says(out: &Output, code: i32, wants: &[&str], reason: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{reason}: {err}");
    for w in wants {
        assert!(err.contains(w), "{reason}: lacks {w:?}:\n{err}");
    }
}

#[test]
fn upgrade_via_git_commits_only_the_label_and_records_it() {
    let r = repo();
    let before = r.head();
    let out = r.upgrade("prod-a", "30.0.0", OPEN);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        r.clusters(),
        CLUSTERS.replacen(
            "    release.giantswarm.io/version: 29.1.0\n",
            "    release.giantswarm.io/version: 30.0.0\n",
            1
        ),
        "only the scalar of prod-a changed, plain stays plain"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("-    release.giantswarm.io/version: 29.1.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+    release.giantswarm.io/version: 30.0.0"),
        "{stdout}"
    );
    assert_ne!(r.head(), before, "a commit was made");
    assert_eq!(
        git_in(&r.dir, &["status", "--porcelain"]),
        "",
        "the work tree is clean"
    );
    let message = git_in(&r.dir, &["log", "-1", "--format=%s"]);
    assert_eq!(
        message.trim(),
        "Upgrade cluster prod-a from 29.1.0 to 30.0.0"
    );

    let out = r.run(&["history", "--cluster", "prod-a", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h[0]["from"], "29.1.0");
    assert_eq!(h[0]["to"], "30.0.0");
    assert_eq!(h[0]["outcome"], "Triggered");
    assert_eq!(h[0]["commit"], r.head());
    assert_eq!(h[0]["at"], OPEN);
    let out = r.run(&["history", "--cluster", "prod-a"]);
    let s = text(&out.stdout);
    assert!(
        s.contains("29.1.0 → 30.0.0") && s.contains("Triggered") && s.contains("git"),
        "{s}"
    );
    let out = r.run(&["history", "--cluster", "dev-a"]);
    assert_eq!(out.status.code(), Some(1), "no upgrades of dev-a: exit 1");

    // Again: already at the target, nothing to do, exit 0, no new commit.
    let head = r.head();
    let out = r.upgrade("prod-a", "30.0.0", OPEN);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("already at 30.0.0"));
    assert_eq!(r.head(), head);
}

#[test]
fn upgrade_outside_the_window_is_refused_with_reason_and_next_time() {
    let r = repo();
    let before = r.head();
    // (args beyond the common ones, exit code, stderr fragments, reason)
    let cases: &[(&[&str], i32, &[&str], &str)] = &[
        (
            &["--at", CLOSED],
            1,
            &[
                "refused",
                "outside",
                "next allowed start: Tue 2026-03-10 22:00 CET",
                "2026-03-10 21:00Z",
            ],
            "closed window: exit 1 with the reason and the opening",
        ),
        (
            &["--at", CLOSED, "--next-window"],
            1,
            &[
                "next allowed start: Tue 2026-03-10 22:00 CET",
                "run again then",
            ],
            "--next-window says when and does not wait",
        ),
    ];
    for (extra, code, wants, reason) in cases {
        let mut args = vec![
            "upgrade",
            "cluster",
            "prod-a",
            "--to",
            "30.0.0",
            "--repo",
            r.repo_arg(),
        ];
        args.extend_from_slice(extra);
        let out = r.run(&args);
        assert_says(&out, *code, wants, reason);
        assert_eq!(r.clusters(), CLUSTERS, "{reason}: nothing changed");
        assert_eq!(r.head(), before, "{reason}: no commit");
    }
    // JSON says the same.
    let out = r.run(&[
        "upgrade",
        "cluster",
        "prod-a",
        "--to",
        "30.0.0",
        "--repo",
        r.repo_arg(),
        "--at",
        CLOSED,
        "-o",
        "json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["decision"], "refused");
    assert_eq!(j["nextStart"], "2026-03-10T21:00:00Z");
    assert_eq!(j["schedule"], "prod-window");
}

#[test]
fn dry_run_prints_the_diff_and_changes_nothing() {
    let r = repo();
    let before = r.head();
    let out = r.run(&[
        "upgrade",
        "cluster",
        "dev-a",
        "--to",
        "30.0.0",
        "--repo",
        r.repo_arg(),
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("+    release.giantswarm.io/version: \"30.0.0\"   # bumped by upkeep"),
        "quotes and comment kept in the diff: {s}"
    );
    assert_eq!(r.clusters(), CLUSTERS);
    assert_eq!(r.head(), before);
    let out = r.run(&["history", "--cluster", "dev-a"]);
    assert_eq!(out.status.code(), Some(1), "a dry run records nothing");
}

#[test]
fn an_unreadable_freeze_holds_the_cluster_as_the_controller_does() {
    // The controller holds a cluster whose freeze-until is not a time (someone meant to freeze
    // it); the CLI once read it as "not frozen" and went ahead.
    let r = repo();
    let frozen = CLUSTERS.replacen(
        "  name: prod-a\n",
        "  name: prod-a\n  annotations:\n    upkeep.dev/freeze-until: next tuesday\n",
        1,
    );
    std::fs::write(r.dir.join("clusters/clusters.yaml"), &frozen).unwrap();
    git_in(&r.dir, &["commit", "-qam", "freeze prod-a (badly)"]);
    let head = r.head();
    let out = r.upgrade("prod-a", "30.0.0", OPEN);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "held, not upgraded: {err}");
    assert!(
        err.contains("frozen") && err.contains("invalid RFC 3339 time \"next tuesday\""),
        "the reason names the bad annotation: {err}"
    );
    assert_eq!(r.head(), head, "nothing committed");
    assert_eq!(r.clusters(), frozen, "nothing written");
}

#[test]
fn freeze_refuses_upgrades_until_unfrozen() {
    let r = repo();
    let out = r.run(&[
        "freeze",
        "cluster",
        "prod-a",
        "--until",
        "2026-04-01T00:00:00Z",
        "--reason",
        "quarter close",
        "--repo",
        r.repo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let frozen = r.clusters();
    assert!(
        frozen.contains("  name: prod-a\n  annotations:\n    upkeep.dev/freeze-reason: \"quarter close\"\n    upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n  namespace: org-a\n"),
        "annotations inserted after the name:\n{frozen}"
    );
    assert_eq!(git_in(&r.dir, &["status", "--porcelain"]), "", "committed");

    let out = r.upgrade("prod-a", "30.0.0", OPEN);
    assert_eq!(out.status.code(), Some(1), "frozen: refused");
    let err = text(&out.stderr);
    assert!(
        err.contains("frozen") && err.contains("quarter close"),
        "{err}"
    );
    assert!(err.contains("next allowed start"), "{err}");

    let out = r.run(&["unfreeze", "cluster", "prod-a", "--repo", r.repo_arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(r.clusters(), CLUSTERS, "unfreeze restores the bytes");
    let out = r.upgrade("prod-a", "30.0.0", OPEN);
    assert_eq!(
        out.status.code(),
        Some(0),
        "unfrozen: allowed: {}",
        text(&out.stderr)
    );
}

#[test]
fn errors_name_the_repository_and_hint() {
    let r = repo();
    // (cluster, extra args, exit, fragments, reason)
    let cases: &[Case<'_>] = &[
        (
            "nope",
            &[],
            2,
            &["no Cluster nope in the repository", "hint:"],
            "missing cluster",
        ),
        (
            "unlabelled",
            &[],
            2,
            &[
                "clusters/clusters.yaml:",
                "has no metadata.labels",
                "hint: add the label",
            ],
            "the version label is missing",
        ),
        (
            "prod-a",
            &["--to", "not-a-version"],
            2,
            &["is not a version"],
            "bad --to",
        ),
        (
            "prod-a",
            &["--namespace", "other"],
            2,
            &["no Cluster other/prod-a"],
            "namespace filters",
        ),
    ];
    for (name, extra, code, wants, reason) in cases {
        let mut args = vec![
            "upgrade",
            "cluster",
            name,
            "--repo",
            r.repo_arg(),
            "--at",
            OPEN,
        ];
        if !extra.contains(&"--to") {
            args.extend_from_slice(&["--to", "30.0.0"]);
        }
        args.extend_from_slice(extra);
        let out = r.run(&args);
        assert_says(&out, *code, wants, reason);
    }
    assert_eq!(r.clusters(), CLUSTERS, "errors change nothing");
}

/// A second organisation with a cluster named like one of org-a's, and one of its own.
const ORG_B: &str = r"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: dev-a
  namespace: org-b
  labels:
    release.giantswarm.io/version: 29.0.0
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: solo
  namespace: org-b
  labels:
    release.giantswarm.io/version: 29.0.0
";

#[test]
fn a_cluster_is_found_by_name_across_namespaces_and_ambiguity_lists_the_candidates() {
    let r = repo();
    std::fs::write(r.dir.join("clusters/org-b.yaml"), ORG_B).unwrap();
    git_in(&r.dir, &["add", "-A"]);
    git_in(&r.dir, &["commit", "-q", "-m", "org-b"]);
    let org_b = || std::fs::read_to_string(r.dir.join("clusters/org-b.yaml")).unwrap();
    let before = r.head();

    // The name alone is ambiguous: every candidate with where it is defined, and the fix.
    let ambiguous = [
        "cluster name dev-a is ambiguous",
        "org-a/dev-a (clusters/clusters.yaml:2)",
        "org-b/dev-a (clusters/org-b.yaml:1)",
        "hint: pass --namespace",
    ];
    let out = r.upgrade("dev-a", "30.0.0", OPEN);
    assert_says(
        &out,
        2,
        &ambiguous,
        "upgrade: one name in two organisations",
    );
    let out = r.run(&[
        "freeze",
        "cluster",
        "dev-a",
        "--until",
        "2026-04-01T00:00:00Z",
        "--repo",
        r.repo_arg(),
    ]);
    assert_says(&out, 2, &ambiguous, "freeze: one name in two organisations");
    let out = r.run(&["unfreeze", "cluster", "dev-a", "--repo", r.repo_arg()]);
    assert_says(
        &out,
        2,
        &ambiguous,
        "unfreeze: one name in two organisations",
    );
    assert_eq!(r.head(), before, "an ambiguous name changes nothing");

    // A wrong namespace says where the name is.
    let out = r.run(&[
        "upgrade",
        "cluster",
        "solo",
        "--to",
        "30.0.0",
        "--repo",
        r.repo_arg(),
        "--at",
        OPEN,
        "-n",
        "org-a",
    ]);
    assert_says(
        &out,
        2,
        &[
            "no Cluster org-a/solo in the repository",
            "hint: a cluster of that name is in org-b; pass --namespace org-b",
        ],
        "a given namespace is exact",
    );

    // --namespace picks one: only org-b's file changes.
    let out = r.run(&[
        "upgrade",
        "cluster",
        "dev-a",
        "--to",
        "30.0.0",
        "--repo",
        r.repo_arg(),
        "--at",
        OPEN,
        "--namespace",
        "org-b",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(r.clusters(), CLUSTERS, "org-a's dev-a is untouched");
    assert_eq!(
        org_b(),
        ORG_B.replacen("29.0.0", "30.0.0", 1),
        "org-b's dev-a moved, only its version"
    );

    // A name unique across namespaces needs no namespace (no fallback to `default`).
    let out = r.run(&[
        "freeze",
        "cluster",
        "solo",
        "--until",
        "2026-04-01T00:00:00Z",
        "--repo",
        r.repo_arg(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        org_b().contains(
            "  name: solo\n  annotations:\n    upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n  namespace: org-b\n"
        ),
        "{}",
        org_b()
    );
    let out = r.upgrade("solo", "30.0.0", OPEN);
    assert_says(&out, 1, &["frozen"], "the freeze found by name holds");
    assert_eq!(
        git_in(&r.dir, &["status", "--porcelain"]),
        "",
        "all committed"
    );
}

#[test]
fn status_shows_each_cluster_with_reason_text_and_json() {
    let r = repo();
    let out = r.run(&["status", "--repo", r.repo_arg(), "--at", CLOSED]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        // dev-a may start now, so the core counts the campaign as running.
        "ClusterUpgrade org-a/to-30 → 30.0.0: Running",
        "dev-a",
        "may start now",
        "waiting for stage dev",
    ] {
        assert!(s.contains(want), "lacks {want:?}:\n{s}");
    }
    let out = r.run(&[
        "status",
        "to-30",
        "--repo",
        r.repo_arg(),
        "--at",
        CLOSED,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let clusters = j[0]["clusters"].as_array().unwrap();
    let by = |n: &str| clusters.iter().find(|c| c["name"] == n).unwrap().clone();
    // (cluster, state, stage, why)
    let cases = [
        (
            "dev-a",
            "Trigger",
            "dev",
            "no schedule governs dev-a: it may start",
        ),
        ("prod-a", "Waiting", "prod", "prod waits for the dev stage"),
    ];
    for (name, state, stage, reason) in cases {
        let c = by(name);
        assert_eq!(c["state"], state, "{reason}: {c}");
        assert_eq!(c["stage"], stage, "{reason}: {c}");
    }
    assert_eq!(j[0]["state"], "Running", "a cluster starts now");
    assert_eq!(j[0]["target"], "30.0.0");
    let out = r.run(&["status", "nope", "--repo", r.repo_arg()]);
    assert_eq!(out.status.code(), Some(1), "an unknown upgrade is a no");
}

/// `--via git --push --branch B --pull-request gitlab`: the commit is built on the real Git
/// server's `main` (git http-backend, basic auth) through the shared write loop and pushed to
/// B, one merge request is opened on the forge stand-in, the checkout is not touched; running
/// it again pushes nothing and keeps one merge request.
#[test]
fn upgrade_push_lands_one_commit_on_the_remote_branch_and_opens_one_pull_request() {
    const USER: &str = "bot";
    const PASSWORD: &str = "git-pa55-never-shown";
    const TOKEN: &str = "forge-t0ken-never-shown";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(upkeep_testenv::GitServer::start(Some((USER, PASSWORD))))
        .expect("git server");
    let forge = upkeep_testenv::PrStandIn::start(upkeep_testenv::ForgeFlavor::Gitlab, TOKEN)
        .expect("stand-in");
    forge.create_repository("git/fleet");
    let url = server
        .create_repo(
            "fleet",
            &[
                ("clusters/clusters.yaml", CLUSTERS.as_bytes()),
                ("upkeep/schedules.yaml", SCHEDULES.as_bytes()),
            ],
        )
        .expect("repo");
    let bare = server.bare_path("fleet");
    let bare_git = |args: &[&str]| support::bare_git(&bare, args);
    let tmp = tempfile::tempdir().unwrap();
    let fleet = tmp.path().join("fleet");
    support::clone_bare(&bare, &url, &fleet);
    let head = git_in(&fleet, &["rev-parse", "HEAD"]);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args([
                "upgrade",
                "cluster",
                "prod-a",
                "--to",
                "30.0.0",
                "--repo",
                fleet.to_str().unwrap(),
                "--at",
                OPEN,
                "--push",
                "--branch",
                "upkeep/prod-a",
                "--pull-request",
                "gitlab",
                "--pr-api-url",
                &forge.api_base(),
                "--allow-insecure-http",
                "-o",
                "json",
            ])
            .env("UPKEEP_STORE", tmp.path().join("state.redb"))
            .env("UPKEEP_GIT_USERNAME", USER)
            .env("UPKEEP_GIT_PASSWORD", PASSWORD)
            .env("UPKEEP_PR_TOKEN", TOKEN)
            .env_remove("KUBECONFIG")
            .output()
            .expect("the upkeep binary runs")
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let commit = report["commit"].as_str().expect("a commit").to_owned();
    assert_eq!(bare_git(&["rev-parse", "upkeep/prod-a"]).trim(), commit);
    assert_eq!(
        bare_git(&["rev-list", "--count", "main..upkeep/prod-a"]).trim(),
        "1",
        "one commit on the upgrade branch"
    );
    assert_eq!(
        bare_git(&["show", "upkeep/prod-a:clusters/clusters.yaml"]),
        CLUSTERS.replacen(
            "    release.giantswarm.io/version: 29.1.0\n",
            "    release.giantswarm.io/version: 30.0.0\n",
            1
        ),
        "only prod-a's scalar changed"
    );
    assert_eq!(
        git_in(&fleet, &["rev-parse", "HEAD"]),
        head,
        "the checkout is untouched"
    );
    let prs = forge.pull_requests("git/fleet");
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert_eq!(
        (prs[0].head.as_str(), prs[0].base.as_str()),
        ("upkeep/prod-a", "main")
    );
    assert!(
        report["pullRequest"].as_str().is_some(),
        "the PR is reported: {report}"
    );
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!shown.contains(PASSWORD) && !shown.contains(TOKEN));

    // Again: the remote already holds the target; nothing pushed, the same one PR.
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing pushed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(bare_git(&["rev-parse", "upkeep/prod-a"]).trim(), commit);
    assert_eq!(forge.pull_requests("git/fleet").len(), 1);
}

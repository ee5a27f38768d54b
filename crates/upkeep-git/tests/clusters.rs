//! `write_cluster_versions` against real bare repositories over `file://`: one byte-exact
//! commit per batch, an idempotent re-apply, located errors for a missing cluster or version,
//! and a real race (another writer pushes while upkeep's push is in flight) retried on the
//! new tip. A campaign's batch carries `Upkeep-Campaign`/`Upkeep-Cluster` trailers (read back by
//! `git interpret-trailers` and by `campaign_commit`); a batch without one has none.

use upkeep_api::cluster_edit::VersionPlace;
use upkeep_git::clusters::{
    ClusterBatch, ClusterTarget, ClusterWriteError, campaign_commit, write_cluster_versions,
};
use upkeep_git::{Auth, Branches, Repo, Written};
use upkeep_testenv::git;

mod support;
use support::{Fixture, author, bare_git, runtime, show};

const DEV: &str = "clusters/dev.yaml";
const PROD: &str = "clusters/prod.yaml";
const README: &str = "README.md";

const DEV_TEXT: &str = "\
# The dev cluster.
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: dev
  namespace: org-a
  labels:
    release.giantswarm.io/version: \"30.0.0\" # bumped by upkeep
    env: dev
spec: {}
";

const PROD_TEXT: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: prod-values
data:
  version: 30.0.0
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod
  labels:
    release.giantswarm.io/version: '30.0.0'
spec:
  topology:
    version: v1.31.0
";

fn fixture() -> Fixture {
    Fixture::new(&[
        (DEV, DEV_TEXT.as_bytes()),
        (PROD, PROD_TEXT.as_bytes()),
        (README, b"fleet\n"),
    ])
}

fn target(ns: Option<&str>, name: &str, version: &str) -> ClusterTarget {
    ClusterTarget {
        namespace: ns.map(ToOwned::to_owned),
        name: name.to_owned(),
        version: version.to_owned(),
    }
}

fn write(
    f: &Fixture,
    push: &str,
    path: &str,
    place: &VersionPlace,
    clusters: &[ClusterTarget],
) -> Result<upkeep_git::clusters::ClusterWrite, ClusterWriteError> {
    write_for(f, push, path, place, clusters, None)
}

fn write_for(
    f: &Fixture,
    push: &str,
    path: &str,
    place: &VersionPlace,
    clusters: &[ClusterTarget],
    campaign: Option<&str>,
) -> Result<upkeep_git::clusters::ClusterWrite, ClusterWriteError> {
    write_cluster_versions(
        &f.repo,
        &Auth::none(),
        Branches {
            checkout: "main",
            push,
        },
        &author(),
        3,
        &ClusterBatch {
            path,
            place,
            version_place: None,
            clusters,
            requester: "ClusterUpgrade org-a/to-30-1",
            template: None,
            campaign,
        },
    )
}

#[test]
fn a_campaign_commit_carries_trailers_and_is_found_again_after_later_commits() {
    let f = fixture();
    let place = VersionPlace::default();
    let batch = [
        target(Some("org-a"), "dev", "30.1.0"),
        target(Some("org-a"), "prod", "30.1.0"),
    ];
    let w = write_for(
        &f,
        "main",
        "clusters",
        &place,
        &batch,
        Some("org-a/to-30-1"),
    )
    .expect("written");
    let Written::Pushed { commit, .. } = w.written else {
        panic!("expected a push, got {:?}", w.written);
    };
    let message = bare_git(&f.bare, &["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("Requested by ClusterUpgrade org-a/to-30-1."),
        "the built-in message stays: {message}"
    );
    // Git itself reads them as trailers (the peer, not our parser).
    let trailers = bare_git(
        &f.bare,
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Upkeep-Campaign,key=Upkeep-Cluster)",
            "main",
        ],
    );
    assert_eq!(
        trailers.trim_end(),
        "Upkeep-Campaign: org-a/to-30-1\nUpkeep-Cluster: org-a/dev\nUpkeep-Cluster: org-a/prod",
        "{message}"
    );

    // Someone moves prod on, without a campaign: that commit has no trailers (the controller's
    // and `upkeep upgrade cluster`'s messages are unchanged).
    let later = write(
        &f,
        "main",
        "clusters",
        &place,
        &[target(Some("org-a"), "prod", "30.2.0")],
    )
    .expect("written");
    assert!(matches!(later.written, Written::Pushed { .. }), "{later:?}");
    let message = bare_git(&f.bare, &["log", "-1", "--format=%B", "main"]);
    assert!(!message.contains("Upkeep-"), "no trailers: {message}");
    let tip =
        upkeep_git::Oid::from_str(bare_git(&f.bare, &["rev-parse", "main"]).trim()).expect("oid");

    // (campaign, cluster, version, found, reason)
    let cases = [
        (
            "org-a/to-30-1",
            target(Some("org-a"), "dev", "30.1.0"),
            Some(commit),
            "found under a later commit",
        ),
        (
            "org-a/to-30-1",
            target(Some("org-a"), "prod", "30.1.0"),
            Some(commit),
            "the same commit names both clusters, though prod moved on since",
        ),
        (
            "org-a/other",
            target(Some("org-a"), "dev", "30.1.0"),
            None,
            "another campaign's commit is not this one's",
        ),
        (
            "org-a/to-30-1",
            target(Some("org-a"), "dev", "30.9.0"),
            None,
            "the commit does not hold this target: not this change",
        ),
        (
            "org-a/to-30-1",
            target(Some("org-b"), "dev", "30.1.0"),
            None,
            "a cluster of another namespace is not named",
        ),
    ];
    for (campaign, wanted, want, reason) in cases {
        let got = campaign_commit(&f.repo, tip, "clusters", &place, campaign, &wanted)
            .expect("history read");
        assert_eq!(got, want, "{reason}");
    }
}

#[test]
fn a_batch_is_one_byte_exact_commit_and_a_reapply_is_up_to_date() {
    let f = fixture();
    let place = VersionPlace::default();
    let batch = [
        target(Some("org-a"), "dev", "30.1.0"),
        // No namespace in the manifest (a Kustomization sets it): found by name.
        target(Some("org-a"), "prod", "30.1.0"),
    ];
    let before = bare_git(&f.bare, &["rev-parse", "main"]);
    let w = write(&f, "main", "clusters", &place, &batch).expect("written");
    let Written::Pushed {
        commit, attempts, ..
    } = w.written
    else {
        panic!("expected a push, got {:?}", w.written);
    };
    assert_eq!(attempts, 1);
    assert_eq!(
        bare_git(&f.bare, &["rev-parse", "main"]).trim(),
        commit.to_string()
    );
    assert_eq!(
        bare_git(&f.bare, &["rev-parse", "main~1"]),
        before,
        "exactly one commit for the batch"
    );
    assert_eq!(
        show(&f.bare, &format!("main:{DEV}")),
        DEV_TEXT.replace("\"30.0.0\"", "\"30.1.0\""),
        "only the label's bytes change; comment and quotes stay"
    );
    assert_eq!(
        show(&f.bare, &format!("main:{PROD}")),
        PROD_TEXT.replace("'30.0.0'", "'30.1.0'"),
        "the ConfigMap's 30.0.0 and the topology version are untouched"
    );
    let message = bare_git(&f.bare, &["log", "-1", "--format=%B", "main"]);
    for needle in [
        "Upgrade 2 clusters to 30.1.0",
        "clusters/dev.yaml:8 Cluster org-a/dev: 30.0.0 -> 30.1.0 (minor)",
        "Cluster org-a/prod: 30.0.0 -> 30.1.0",
        "Requested by ClusterUpgrade org-a/to-30-1.",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert_eq!(w.changes.len(), 2, "both clusters differ from the base");

    // A controller restarted after recording the trigger re-applies: nothing new.
    let again = write(&f, "main", "clusters", &place, &batch).expect("re-applied");
    assert!(
        matches!(again.written, Written::UpToDate { tip, .. } if tip == commit),
        "{again:?}"
    );
    assert!(again.changes.is_empty(), "main already holds the targets");
    assert_eq!(
        bare_git(&f.bare, &["rev-parse", "main"]).trim(),
        commit.to_string()
    );
}

#[test]
fn the_topology_version_and_an_upgrade_branch() {
    let f = fixture();
    let batch = [target(None, "prod", "v1.32.1")];
    let w = write(&f, "upgrades", "", &VersionPlace::Topology, &batch).expect("written");
    assert!(matches!(w.written, Written::Pushed { .. }), "{w:?}");
    assert_eq!(
        show(&f.bare, &format!("upgrades:{PROD}")),
        PROD_TEXT.replace("v1.31.0", "v1.32.1")
    );
    assert_eq!(
        show(&f.bare, &format!("main:{PROD}")),
        PROD_TEXT,
        "main is untouched"
    );
    // Re-applying: up to date, and the pull request still carries the change.
    let again = write(&f, "upgrades", "", &VersionPlace::Topology, &batch).expect("again");
    let Written::UpToDate { base, tip } = again.written else {
        panic!("expected up to date, got {:?}", again.written);
    };
    assert_ne!(base, tip, "the upgrade branch is ahead of main");
    assert_eq!(again.changes.len(), 1);
    assert_eq!(
        (again.changes[0].old.as_str(), again.changes[0].new.as_str()),
        ("v1.31.0", "v1.32.1")
    );
}

/// (path, batch, version place, error kind, message fragment, why)
type ErrorCase<'a> = (
    &'a str,
    Vec<ClusterTarget>,
    VersionPlace,
    &'a str,
    &'a str,
    &'a str,
);

#[test]
fn errors_name_the_place_and_push_nothing() {
    let cases: [ErrorCase<'_>; 4] = [
        (
            "clusters",
            vec![target(Some("org-a"), "staging", "30.1.0")],
            VersionPlace::default(),
            "NotFound",
            "no Cluster org-a/staging in clusters at ",
            "a cluster that is not in the repository",
        ),
        (
            "clusters",
            vec![
                target(Some("org-a"), "dev", "30.1.0"),
                target(Some("org-b"), "dev", "30.1.0"),
            ],
            VersionPlace::default(),
            "NotFound",
            "org-b/dev",
            "one missing cluster fails the whole batch (no partial commit)",
        ),
        (
            "clusters",
            vec![target(Some("org-a"), "dev", "v1.32.0")],
            VersionPlace::Topology,
            "FieldMissing",
            "clusters/dev.yaml:10: Cluster org-a/dev has no spec.topology.version",
            "the version place is missing: file and line",
        ),
        (
            "apps",
            vec![target(Some("org-a"), "dev", "30.1.0")],
            VersionPlace::default(),
            "NotFound",
            "no Cluster org-a/dev in apps at ",
            "the cluster is outside the configured path",
        ),
    ];
    for (path, batch, place, kind, needle, why) in cases {
        let f = fixture();
        let before = bare_git(&f.bare, &["rev-parse", "main"]);
        let err = write(&f, "main", path, &place, &batch).expect_err(why);
        assert_eq!(err.kind(), kind, "{why}: {err}");
        assert!(err.to_string().contains(needle), "{why}: {err}");
        assert!(err.hint().is_some(), "{why}: a hint");
        assert_eq!(
            bare_git(&f.bare, &["rev-parse", "main"]),
            before,
            "{why}: nothing pushed"
        );
    }
}

/// A `pre-receive` hook on a real smart-HTTP server (`git http-backend`; libgit2's local
/// transport runs no hooks) pushes another writer's commit from a separate clone while
/// upkeep's push is being received, once; upkeep's ref update then finds `main` moved, is
/// rejected, and the retry builds on the other writer's commit.
#[test]
fn a_race_is_retried_on_the_new_tip() {
    let rt = runtime();
    let server = rt
        .block_on(upkeep_testenv::GitServer::start(None))
        .expect("git server");
    let url = server
        .create_repo(
            "fleet",
            &[
                (DEV, DEV_TEXT.as_bytes()),
                (PROD, PROD_TEXT.as_bytes()),
                (README, b"fleet\n"),
            ],
        )
        .expect("repo");
    let bare = server.bare_path("fleet");
    let tmp = tempfile::tempdir().expect("tempdir");
    let other = tmp.path().join("other");
    let file_url = format!("file://{}", bare.display());
    git(
        &[
            "clone",
            "--quiet",
            &file_url,
            other.to_str().expect("utf-8"),
        ],
        None,
    )
    .expect("clone");
    std::fs::write(other.join(README), "fleet, edited\n").expect("write");
    git(
        &[
            "-c",
            "user.name=someone",
            "-c",
            "user.email=someone@example.invalid",
            "commit",
            "--quiet",
            "-am",
            "someone else",
        ],
        Some(&other),
    )
    .expect("commit");
    let marker = tmp.path().join("raced");
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >/dev/null\nif [ ! -e '{m}' ]; then\n  touch '{m}'\n  env -i PATH=\"$PATH\" HOME='{h}' git -C '{o}' push --quiet origin HEAD:main >&2\nfi\nexit 0\n",
            m = marker.display(),
            h = tmp.path().display(),
            o = other.display()
        ),
    )
    .expect("hook");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let auth = Auth::none().allow_insecure_http();
    let repo = Repo::clone_or_open(&url, &tmp.path().join("clone"), "main", &auth).expect("clone");
    let batch = [target(Some("org-a"), "dev", "30.1.0")];
    let w = write_cluster_versions(
        &repo,
        &auth,
        Branches {
            checkout: "main",
            push: "main",
        },
        &author(),
        3,
        &ClusterBatch {
            path: "clusters",
            place: &VersionPlace::default(),
            version_place: None,
            clusters: &batch,
            requester: "ClusterUpgrade org-a/to-30-1",
            template: None,
            campaign: None,
        },
    )
    .expect("written");
    let Written::Pushed { attempts, .. } = w.written else {
        panic!("expected a push, got {:?}", w.written);
    };
    assert!(
        marker.exists(),
        "the other writer raced: {}",
        server.log_tail()
    );
    assert_eq!(attempts, 2, "rejected once, then built on the new tip");
    assert_eq!(
        bare_git(&bare, &["log", "-1", "--format=%s", "main~1"]).trim(),
        "someone else",
        "the other writer's commit is kept, upkeep's is on top"
    );
    assert_eq!(show(&bare, &format!("main:{README}")), "fleet, edited\n");
    assert_eq!(
        show(&bare, &format!("main:{DEV}")),
        DEV_TEXT.replace("\"30.0.0\"", "\"30.1.0\"")
    );
}

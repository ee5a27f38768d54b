//! Cluster upgrades of a repository in Giant Swarm's GitOps layout (the fixture fleet in
//! `upkeep-api/testdata/giantswarm/fleet`), end to end through the real Git server (nginx +
//! `git http-backend`): one batch moving four clusters whose versions live in four different
//! places is one byte-exact commit (the values key inside `data.values: |`, the Flux variable
//! the App uses, the App's literal `spec.version`, the variable a shared base's values use); a
//! re-apply pushes nothing; file modes are kept; a cluster behind a symlink that leaves the
//! repository is not read, and its batch pushes nothing.

use std::path::{Path, PathBuf};

use upkeep_api::cluster_edit::VersionPlace;
use upkeep_git::clusters::{ClusterBatch, ClusterTarget, campaign_commit, write_cluster_versions};
use upkeep_git::{Auth, Branches, Repo, Written};
use upkeep_testenv::{GitServer, git};

mod support;
use support::{author, runtime};

const W: &str = "management-clusters/golem/organizations";

fn fleet_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../upkeep-api/testdata/giantswarm/fleet")
}

fn target(ns: &str, name: &str, version: &str) -> ClusterTarget {
    ClusterTarget {
        namespace: Some(ns.to_owned()),
        name: name.to_owned(),
        version: version.to_owned(),
    }
}

/// Runs git in the work tree `dir` as a person would.
fn person(dir: &Path, args: &[&str]) {
    let mut all = vec![
        "-c",
        "user.name=someone",
        "-c",
        "user.email=someone@example.invalid",
    ];
    all.extend_from_slice(args);
    git(&all, Some(dir)).expect("git");
}

fn bare_git(bare: &Path, args: &[&str]) -> String {
    let dir = bare.to_str().expect("utf-8");
    let mut all = vec!["--git-dir", dir];
    all.extend_from_slice(args);
    git(&all, None).expect("git on the server's repository")
}

#[test]
fn four_places_in_one_commit_through_the_git_server() {
    let rt = runtime();
    let server = rt.block_on(GitServer::start(None)).expect("git server");
    let files = upkeep_testenv::read_tree(&fleet_dir());
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_slice()))
        .collect();
    let url = server.create_repo("fleet", &refs).expect("repo");
    let bare = server.bare_path("fleet");
    let tmp = tempfile::tempdir().expect("tempdir");

    // Someone makes prod01's Kustomization executable (odd, but theirs) and adds a cluster
    // whose manifests are behind a symlink leaving the repository.
    let work = tmp.path().join("person");
    let file_url = format!("file://{}", bare.display());
    git(
        &["clone", "--quiet", &file_url, work.to_str().expect("utf-8")],
        None,
    )
    .expect("clone");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("mapi")).expect("outside");
    std::fs::write(
        outside.join("mapi/app.yaml"),
        "apiVersion: application.giantswarm.io/v1alpha1\nkind: App\nmetadata:\n  name: evil01\n  namespace: org-globex\nspec:\n  name: cluster-aws\n  version: 1.0.0\n",
    )
    .expect("outside app");
    let g = format!("{W}/globex/workload-clusters");
    std::os::unix::fs::symlink(&outside, work.join(format!("{g}/evil01"))).expect("symlink");
    std::fs::write(
        work.join(format!("{g}/evil01.yaml")),
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: golem-clusters-evil01\n  namespace: default\nspec:\n  path: ./management-clusters/golem/organizations/globex/workload-clusters/evil01/mapi\n  postBuild:\n    substitute:\n      cluster_name: evil01\n      organization: globex\n",
    )
    .expect("evil01");
    let prod01 = format!("{W}/acme/workload-clusters/prod01.yaml");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(work.join(&prod01), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    person(&work, &["add", "-A"]);
    person(
        &work,
        &["commit", "--quiet", "-m", "evil01, and an executable"],
    );
    person(&work, &["push", "--quiet", "origin", "HEAD:main"]);
    let before = bare_git(&bare, &["rev-parse", "main"]).trim().to_owned();
    assert!(
        bare_git(&bare, &["ls-tree", &before, &prod01]).starts_with("100755 "),
        "executable before"
    );

    let auth = Auth::none().allow_insecure_http();
    let repo = Repo::clone_or_open(&url, &tmp.path().join("clone"), "main", &auth).expect("clone");
    let batch = [
        target("org-acme", "dev01", "29.2.0"),
        target("org-acme", "prod01", "0.14.0"),
        target("org-globex", "dev02", "1.3.0"),
        target("org-globex", "prod02", "29.1.0"),
    ];
    let place = VersionPlace::default();
    let write = |clusters: &[ClusterTarget]| {
        write_cluster_versions(
            &repo,
            &auth,
            Branches {
                checkout: "main",
                push: "main",
            },
            &author(),
            3,
            &ClusterBatch {
                path: "management-clusters/golem",
                place: &place,
                version_place: None,
                clusters,
                requester: "ClusterUpgrade org-acme/golem-29",
                template: None,
                campaign: Some("org-acme/golem-29"),
            },
        )
    };
    let w = write(&batch).expect("written");
    let Written::Pushed { commit, .. } = w.written else {
        panic!("pushed: {w:?}");
    };
    assert_eq!(
        bare_git(&bare, &["rev-parse", "main"]).trim(),
        commit.to_string(),
        "the server has the commit"
    );
    assert_eq!(
        bare_git(&bare, &["rev-list", "--count", &format!("{before}..main")]).trim(),
        "1",
        "one commit for the batch"
    );
    let changed = bare_git(&bare, &["diff", "--name-only", &before, "main"]);
    let a = format!("{W}/acme/workload-clusters");
    assert_eq!(
        changed.lines().collect::<Vec<_>>(),
        [
            format!("{a}/dev01/mapi/cluster/cluster_user_config.yaml"),
            prod01.clone(),
            format!("{g}/dev02/mapi/cluster/app.yaml"),
            format!("{g}/prod02.yaml"),
        ],
        "exactly the four places; the shared base is untouched"
    );
    // Byte-exact: each file is the original with the one scalar replaced.
    let expect = [
        (
            format!("{a}/dev01/mapi/cluster/cluster_user_config.yaml"),
            "        version: 29.1.0\n",
            "        version: 29.2.0\n",
        ),
        (
            prod01.clone(),
            "cluster_release: \"0.13.0\"",
            "cluster_release: \"0.14.0\"",
        ),
        (
            format!("{g}/dev02/mapi/cluster/app.yaml"),
            "version: '1.2.0'",
            "version: '1.3.0'",
        ),
        (
            format!("{g}/prod02.yaml"),
            "cluster_release: 29.0.1",
            "cluster_release: 29.1.0",
        ),
    ];
    for (path, old, new) in &expect {
        let original = bare_git(&bare, &["show", &format!("{before}:{path}")]);
        let now = bare_git(&bare, &["show", &format!("main:{path}")]);
        assert_eq!(now, original.replace(old, new), "{path}");
    }
    let modes = bare_git(&bare, &["ls-tree", "main", &prod01]);
    assert!(modes.starts_with("100755 "), "the mode is kept: {modes}");
    let message = bare_git(&bare, &["log", "-1", "--format=%B", "main"]);
    for line in [
        "Upgrade 4 clusters to 29.2.0, 0.14.0, 1.3.0, 29.1.0",
        "Upkeep-Campaign: org-acme/golem-29",
        "Upkeep-Cluster: org-acme/dev01",
        "Upkeep-Cluster: org-globex/prod02",
        &format!(
            "- {g}/dev02/mapi/cluster/app.yaml:14 Cluster org-globex/dev02: 1.2.0 -> 1.3.0 (minor)"
        ),
    ] {
        assert!(message.contains(line), "{line:?} in:\n{message}");
    }
    assert_eq!(
        campaign_commit(
            &repo,
            commit,
            "management-clusters/golem",
            &place,
            "org-acme/golem-29",
            &batch[1],
        )
        .expect("walked"),
        Some(commit),
        "the campaign's commit is found again"
    );

    // Again: every place holds its target, nothing is pushed.
    let again = write(&batch).expect("again");
    assert!(
        matches!(again.written, Written::UpToDate { .. }),
        "{again:?}"
    );
    assert_eq!(
        bare_git(&bare, &["rev-parse", "main"]).trim(),
        commit.to_string()
    );

    // The cluster behind the symlink: not read, so not found; nothing pushed.
    let err = write(&[target("org-globex", "evil01", "2.0.0")]).expect_err("not read");
    let shown = err.to_string();
    assert!(
        shown.contains("evil01") && err.hint().is_some(),
        "{shown} (hint: {:?})",
        err.hint()
    );
    assert_eq!(
        bare_git(&bare, &["rev-parse", "main"]).trim(),
        commit.to_string(),
        "nothing pushed"
    );
    assert!(
        std::fs::read_to_string(outside.join("mapi/app.yaml"))
            .expect("outside")
            .contains("version: 1.0.0"),
        "the file outside is untouched"
    );
}

/// Two clusters defined in one file (two Flux Kustomizations) move in one batch: both
/// variables are written, each found again after the other's edit.
#[test]
fn two_clusters_in_one_file() {
    let ks = |name: &str, release: &str| {
        format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  path: ./clusters/{name}\n  postBuild:\n    substitute:\n      cluster_name: {name}\n      cluster_release: \"{release}\"\n      organization: acme\n"
        )
    };
    let app = "apiVersion: application.giantswarm.io/v1alpha1\nkind: App\nmetadata:\n  name: ${cluster_name}\n  namespace: org-${organization}\nspec:\n  name: cluster-aws\n  version: ${cluster_release}\n";
    let both = format!("{}---\n{}", ks("a1", "1.0.0"), ks("b1", "1.0.0"));
    let f = support::Fixture::new(&[
        ("clusters.yaml", both.as_bytes()),
        ("clusters/a1/app.yaml", app.as_bytes()),
        ("clusters/b1/app.yaml", app.as_bytes()),
    ]);
    let place = VersionPlace::default();
    let batch = [
        target("org-acme", "a1", "1.1.0"),
        target("org-acme", "b1", "2.0.0"),
    ];
    let w = write_cluster_versions(
        &f.repo,
        &Auth::none(),
        Branches {
            checkout: "main",
            push: "main",
        },
        &author(),
        3,
        &ClusterBatch {
            path: "",
            place: &place,
            version_place: None,
            clusters: &batch,
            requester: "upkeep upgrade cluster",
            template: None,
            campaign: None,
        },
    )
    .expect("written");
    assert!(matches!(w.written, Written::Pushed { .. }), "{w:?}");
    assert_eq!(
        support::show(&f.bare, "main:clusters.yaml"),
        format!("{}---\n{}", ks("a1", "1.1.0"), ks("b1", "2.0.0"))
    );
    assert_eq!(w.changes.len(), 2);
}

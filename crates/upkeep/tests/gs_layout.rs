//! The cluster commands on a repository in Giant Swarm's GitOps layout, as a Giant Swarm
//! customer runs them: no `Cluster` manifest, clusters are Flux Kustomizations rendering a
//! cluster App and its values ConfigMap (fixture: `tests/testdata/gs-fleet`, two
//! organisations, dev/prod clusters, the older `cluster_release` form and the newer
//! `global.release.version` form). `plan`/`status` over a ClusterUpgrade selecting dev
//! clusters by label, `freeze`/`unfreeze` in the values ConfigMap and the freeze honoured by
//! `plan`, the cluster name shared by two organisations, `upgrade cluster --via git --push` and
//! `upkeep run` against the real Git server, each pushed commit checked to change exactly the
//! intended bytes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{bare_git, borrowed, git_in, text};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/gs-fleet");
const ORGS: &str = "management-clusters/grizzly/organizations";

/// A campaign in org-acme for the dev clusters (label from the values' global.metadata.labels).
const CAMPAIGN: &str = r#"apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata:
  name: dev-to-29-2
  namespace: org-acme
spec:
  targetVersion: 29.2.0
  trigger: GitOps
  matchers:
    - name: dev
      key: upkeep.dev/stage
      value: dev
  gitOps:
    git: {url: "https://git.example/fleet"}
    commit:
      author: {name: upkeep, email: upkeep@example.com}
"#;

const AT: &str = "2026-03-10T10:00:00Z";
const USER: &str = "bot";
const PASSWORD: &str = "git-pa55-never-shown";

/// Every file of the fixture, `(path from its root, bytes)`.
fn fixture_files() -> Vec<(String, Vec<u8>)> {
    let mut out = upkeep_testenv::read_tree(Path::new(FIXTURE));
    out.push((
        "upkeep/campaign.yaml".to_owned(),
        CAMPAIGN.as_bytes().to_vec(),
    ));
    out.sort();
    out
}

struct Fleet {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

/// The fixture (and the campaign) committed in a fresh checkout without a remote.
fn fleet() -> Fleet {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    for (rel, bytes) in fixture_files() {
        let p = dir.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    support::init_and_commit(&dir, "fleet");
    Fleet { tmp, dir }
}

impl Fleet {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(args)
            .env("UPKEEP_STORE", self.tmp.path().join("state.redb"))
            .env_remove("KUBECONFIG")
            .output()
            .expect("the upkeep binary runs")
    }

    fn repo(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.join(rel)).unwrap()
    }

    /// The one campaign of `plan -o json`: its clusters as `(name, state, reason)`.
    fn planned(&self) -> Vec<(String, String, String)> {
        let out = self.run(&["plan", "--repo", self.repo(), "--at", AT, "-o", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("plan prints JSON ({e}): {}", text(&out.stderr)));
        let campaigns = json["clusters"].as_array().expect("campaigns");
        assert_eq!(campaigns.len(), 1, "{json}");
        campaigns[0]["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_owned(),
                    c["state"].as_str().unwrap_or_default().to_owned(),
                    c["reason"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

fn userconfig(org: &str, wc: &str) -> String {
    format!("{ORGS}/{org}/workload-clusters/{wc}/mapi/cluster/userconfig.yaml")
}

#[test]
fn plan_selects_dev_clusters_by_label_and_honours_a_freeze_written_in_the_values() {
    let f = fleet();
    let planned = f.planned();
    assert_eq!(
        planned
            .iter()
            .map(|(n, s, _)| (n.as_str(), s.as_str()))
            .collect::<Vec<_>>(),
        [("dev01", "Trigger")],
        "only org-acme's dev cluster is selected (label from the values), and may start: {planned:?}"
    );

    let values = userconfig("acme", "dev01");
    let before = f.read(&values);
    let out = f.run(&[
        "freeze",
        "cluster",
        "dev01",
        "-n",
        "org-acme",
        "--until",
        "2026-04-01T00:00:00Z",
        "--reason",
        "quarter close",
        "--repo",
        f.repo(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        f.read(&values),
        before.replace(
            "      metadata:\n        name:",
            "      metadata:\n        annotations:\n          upkeep.dev/freeze-reason: \"quarter close\"\n          upkeep.dev/freeze-until: \"2026-04-01T00:00:00Z\"\n        name:"
        ),
        "the freeze is global.metadata.annotations in the values (the chart copies it onto the Cluster); nothing else changed"
    );
    assert_eq!(git_in(&f.dir, &["status", "--porcelain"]), "", "committed");
    assert_eq!(
        git_in(&f.dir, &["show", "--name-only", "--format=", "HEAD"]).trim(),
        values,
        "one file in the commit"
    );

    let planned = f.planned();
    assert_eq!(planned.len(), 1, "{planned:?}");
    let (name, state, reason) = &planned[0];
    assert_eq!(
        (name.as_str(), state.as_str()),
        ("dev01", "Waiting"),
        "{planned:?}"
    );
    assert!(
        reason.contains("frozen") && reason.contains("quarter close"),
        "plan honours the freeze read from the values: {reason}"
    );

    let out = f.run(&[
        "unfreeze",
        "cluster",
        "dev01",
        "-n",
        "org-acme",
        "--repo",
        f.repo(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(f.read(&values), before, "unfreeze restores the bytes");
    let out = f.run(&[
        "status",
        "--repo",
        f.repo(),
        "--at",
        AT,
        "-o",
        "json",
        "--store",
        "/nonexistent/none.redb",
    ]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status prints JSON ({e}): {}", text(&out.stderr)));
    assert_eq!(status[0]["clusters"][0]["name"], "dev01", "{status}");
    assert_eq!(status[0]["clusters"][0]["state"], "Trigger", "{status}");
}

#[test]
fn a_cluster_name_in_two_organisations_is_ambiguous_until_a_namespace_picks_one() {
    let f = fleet();
    let head = git_in(&f.dir, &["rev-parse", "HEAD"]);
    for args in [
        &["upgrade", "cluster", "dev01", "--to", "29.2.0", "--at", AT][..],
        &[
            "freeze",
            "cluster",
            "dev01",
            "--until",
            "2026-04-01T00:00:00Z",
        ][..],
        &["unfreeze", "cluster", "dev01"][..],
    ] {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--repo", f.repo()]);
        let out = f.run(&all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for want in [
            "cluster name dev01 is ambiguous",
            &format!("org-acme/dev01 ({ORGS}/acme/workload-clusters/dev01.yaml:1)"),
            &format!("org-globex/dev01 ({ORGS}/globex/workload-clusters/dev01.yaml:1)"),
            "hint: pass --namespace",
        ] {
            assert!(err.contains(want), "{args:?}: lacks {want:?}:\n{err}");
        }
    }
    let out = f.run(&[
        "upgrade",
        "cluster",
        "prod01",
        "--to",
        "29.2.0",
        "--at",
        AT,
        "-n",
        "org-globex",
        "--repo",
        f.repo(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no Cluster org-globex/prod01") && err.contains("pass --namespace org-acme"),
        "a wrong organisation says where the name is: {err}"
    );
    assert_eq!(
        git_in(&f.dir, &["rev-parse", "HEAD"]),
        head,
        "nothing changed"
    );
}

/// `(-/+ lines, files)` of the checkout's last commit.
fn last_commit(dir: &Path) -> (Vec<String>, Vec<String>) {
    let patch = git_in(dir, &["show", "--format=", "-U0", "HEAD"]);
    let lines = patch
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .map(str::to_owned)
        .collect();
    let files = git_in(dir, &["show", "--format=", "--name-only", "HEAD"])
        .lines()
        .map(str::to_owned)
        .collect();
    (lines, files)
}

#[test]
fn upgrade_cluster_commits_exactly_the_version_bytes_in_either_form() {
    let f = fleet();
    // The newer form: the values' global.release.version, inside the data.values block.
    let out = f.run(&[
        "upgrade",
        "cluster",
        "prod02",
        "--to",
        "29.1.0",
        "--repo",
        f.repo(),
        "--at",
        AT,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        last_commit(&f.dir),
        (
            vec![
                "-        version: 29.0.0".to_owned(),
                "+        version: 29.1.0".to_owned()
            ],
            vec![userconfig("globex", "prod02")],
        ),
        "only the version inside the values block"
    );
    // The older form: the Flux Kustomization's cluster_release, the organisation picked.
    let out = f.run(&[
        "upgrade",
        "cluster",
        "dev01",
        "-n",
        "org-acme",
        "--to",
        "29.2.0",
        "--repo",
        f.repo(),
        "--at",
        AT,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["namespace"], "org-acme", "{report}");
    assert_eq!(report["from"], "29.1.0", "{report}");
    assert_eq!(
        report["file"],
        format!("{ORGS}/acme/workload-clusters/dev01.yaml"),
        "{report}"
    );
    assert_eq!(
        last_commit(&f.dir),
        (
            vec![
                "-      cluster_release: \"29.1.0\"".to_owned(),
                "+      cluster_release: \"29.2.0\"".to_owned()
            ],
            vec![format!("{ORGS}/acme/workload-clusters/dev01.yaml")],
        ),
        "only the substitution variable, quotes kept; globex's dev01 untouched"
    );
    let head = git_in(&f.dir, &["rev-parse", "HEAD"]);
    let out = f.run(&[
        "upgrade",
        "cluster",
        "dev01",
        "-n",
        "org-acme",
        "--to",
        "29.2.0",
        "--repo",
        f.repo(),
        "--at",
        AT,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already at 29.2.0"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        git_in(&f.dir, &["rev-parse", "HEAD"]),
        head,
        "no second commit"
    );
}

#[test]
fn upkeep_run_carries_out_the_campaign_on_the_app_based_clusters() {
    let f = fleet();
    let out = f.run(&["run", "--once", "--repo", f.repo(), "--at", AT]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        last_commit(&f.dir),
        (
            vec![
                "-      cluster_release: \"29.1.0\"".to_owned(),
                "+      cluster_release: \"29.2.0\"".to_owned()
            ],
            vec![format!("{ORGS}/acme/workload-clusters/dev01.yaml")],
        ),
        "the campaign moved org-acme's dev cluster only"
    );
    let message = git_in(&f.dir, &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("Upkeep-Campaign: org-acme/dev-to-29-2"),
        "{message}"
    );
    assert!(
        message.contains("Upkeep-Cluster: org-acme/dev01"),
        "{message}"
    );
}
/// The fixture on the real Git server (basic auth), cloned; `(server, url, bare, checkout)`.
struct Remote {
    _rt: tokio::runtime::Runtime,
    server: upkeep_testenv::GitServer,
    url: String,
    tmp: tempfile::TempDir,
    checkout: PathBuf,
}

fn remote() -> Remote {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(upkeep_testenv::GitServer::start(Some((USER, PASSWORD))))
        .expect("git server");
    let files = fixture_files();
    let url = server
        .create_repo("fleet", &borrowed(&files))
        .expect("repo");
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("fleet");
    let bare = server.bare_path("fleet");
    support::clone_bare(&bare, &url, &checkout);
    git_in(&checkout, &["config", "user.name", "Test"]);
    git_in(&checkout, &["config", "user.email", "test@example.com"]);
    Remote {
        _rt: rt,
        server,
        url,
        tmp,
        checkout,
    }
}

impl Remote {
    fn bare_git(&self, args: &[&str]) -> String {
        bare_git(&self.server.bare_path("fleet"), args)
    }

    fn upkeep(&self, args: &[&str]) -> Output {
        let out = Command::new("timeout")
            .args(["-s", "KILL", "120", env!("CARGO_BIN_EXE_upkeep")])
            .args(args)
            .env("UPKEEP_STORE", self.tmp.path().join("state.redb"))
            .env("UPKEEP_GIT_USERNAME", USER)
            .env("UPKEEP_GIT_PASSWORD", PASSWORD)
            .env_remove("KUBECONFIG")
            .output()
            .expect("the upkeep binary runs");
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !shown.contains(PASSWORD),
            "no credential in output: {shown}"
        );
        out
    }

    /// The `-`/`+` lines of the tip commit of `branch` against its parent, and its files.
    fn last_change(&self, branch: &str) -> (Vec<String>, Vec<String>) {
        let patch = self.bare_git(&["show", "--format=", "-U0", branch]);
        let lines = patch
            .lines()
            .filter(|l| {
                (l.starts_with('-') || l.starts_with('+'))
                    && !l.starts_with("---")
                    && !l.starts_with("+++")
            })
            .map(str::to_owned)
            .collect();
        let files = self
            .bare_git(&["show", "--format=", "--name-only", branch])
            .lines()
            .map(str::to_owned)
            .collect();
        (lines, files)
    }
}

#[test]
fn upgrade_cluster_pushes_exactly_the_version_bytes_in_either_form() {
    let r = remote();
    let repo = r.checkout.to_str().unwrap();
    // The newer form: the values' global.release.version.
    let out = r.upkeep(&[
        "upgrade",
        "cluster",
        "prod02",
        "--to",
        "29.1.0",
        "--repo",
        repo,
        "--at",
        AT,
        "--push",
        "--allow-insecure-http",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        r.last_change("main"),
        (
            vec![
                "-        version: 29.0.0".to_owned(),
                "+        version: 29.1.0".to_owned()
            ],
            vec![userconfig("globex", "prod02")],
        ),
        "only the version inside the values block"
    );
    // The older form: the Flux Kustomization's cluster_release, picked by organisation.
    let out = r.upkeep(&[
        "upgrade",
        "cluster",
        "dev01",
        "-n",
        "org-acme",
        "--to",
        "29.2.0",
        "--repo",
        repo,
        "--at",
        AT,
        "--push",
        "--allow-insecure-http",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        r.last_change("main"),
        (
            vec![
                "-      cluster_release: \"29.1.0\"".to_owned(),
                "+      cluster_release: \"29.2.0\"".to_owned()
            ],
            vec![format!("{ORGS}/acme/workload-clusters/dev01.yaml")],
        ),
        "only the substitution variable, quotes kept; globex's dev01 untouched"
    );
    let again = r.upkeep(&[
        "upgrade",
        "cluster",
        "dev01",
        "-n",
        "org-acme",
        "--to",
        "29.2.0",
        "--repo",
        repo,
        "--at",
        AT,
        "--push",
        "--allow-insecure-http",
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let tip = r.bare_git(&["rev-parse", "main"]);
    assert_eq!(
        r.bare_git(&["rev-list", "--count", "main"]).trim(),
        "3",
        "no second commit for the same target (tip {tip})"
    );
}

#[test]
fn upkeep_run_pushes_the_campaign_on_the_app_based_clusters_to_the_real_git_server() {
    let r = remote();
    let work = r.tmp.path().join("work");
    let out = r.upkeep(&[
        "run",
        "--once",
        "--repo",
        &r.url,
        "--workdir",
        work.to_str().unwrap(),
        "--at",
        AT,
        "--allow-insecure-http",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let (lines, files) = r.last_change("main");
    assert_eq!(
        (lines, files),
        (
            vec![
                "-      cluster_release: \"29.1.0\"".to_owned(),
                "+      cluster_release: \"29.2.0\"".to_owned()
            ],
            vec![format!("{ORGS}/acme/workload-clusters/dev01.yaml")],
        ),
        "the campaign moved org-acme's dev cluster only"
    );
    let message = r.bare_git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("Upkeep-Campaign: org-acme/dev-to-29-2"),
        "{message}"
    );
}

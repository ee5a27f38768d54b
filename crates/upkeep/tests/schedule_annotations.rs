//! `upkeep upgrade cluster NAME --to V --at T --schedule-annotations` writes exactly what
//! `kubectl gs update cluster --release-version V --scheduled-time T` writes, in a real Git
//! repository (the Cluster manifest, byte-exact, committed) and on a real kube-apiserver; and
//! `upkeep status` shows a Cluster manifest's scheduled annotations as the one-cluster upgrade
//! the controller would make.
//!
//! The expected values are kubectl-gs' own: its test schedules `--scheduled-time "2022-01-01
//! 01:00"`, which it writes as `time.Parse("2006-01-02 15:04", …).Format(time.RFC822)` =
//! `01 Jan 22 01:00 UTC` (checked with Go 1.x's `time` package on this machine).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::clusters::{jsonpath, label_in};
use support::{git_in, text};
use upkeep_testenv::KubeApiServer;
use upkeep_testenv::cluster_api::crd_yaml;

const CLUSTERS: &str = r"# Workload clusters of org-a.
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
";

/// `CLUSTERS` with the two annotations as kubectl-gs writes them for 30.0.0 at 2022-01-01 01:00.
const SCHEDULED: &str = r#"# Workload clusters of org-a.
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod-a
  annotations:
    alpha.giantswarm.io/update-schedule-target-release: "30.0.0"
    alpha.giantswarm.io/update-schedule-target-time: "01 Jan 22 01:00 UTC"
  namespace: org-a
  labels:
    upkeep.dev/stage: prod
    release.giantswarm.io/version: 29.1.0
spec:
  controlPlaneEndpoint: {host: api.prod-a.example.com, port: 443}
"#;

const SCHEDULE: &str = r#"apiVersion: upkeep.dev/v1alpha1
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
"#;

struct Repo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

fn repo() -> Repo {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    std::fs::create_dir_all(dir.join("clusters")).unwrap();
    std::fs::write(dir.join("clusters/clusters.yaml"), CLUSTERS).unwrap();
    std::fs::write(dir.join("schedules.yaml"), SCHEDULE).unwrap();
    support::init_and_commit(&dir, "fleet");
    Repo { _tmp: tmp, dir }
}

fn upkeep(args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_upkeep"));
    c.args(args).env_remove("KUBECONFIG");
    if let Some(k) = kubeconfig {
        c.env("KUBECONFIG", k);
    }
    c.output().expect("the upkeep binary runs")
}

#[test]
fn in_a_repository_the_manifest_gets_what_kubectl_gs_writes() {
    let r = repo();
    let dir = r.dir.to_str().unwrap();
    let schedule = |at: &str| {
        upkeep(
            &[
                "upgrade",
                "cluster",
                "prod-a",
                "--to",
                "30.0.0",
                "--at",
                at,
                "--schedule-annotations",
                "--repo",
                dir,
            ],
            None,
        )
    };
    let out = schedule("2022-01-01 01:00");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(r.dir.join("clusters/clusters.yaml")).unwrap();
    assert_eq!(
        written, SCHEDULED,
        "only the two annotation lines are added"
    );
    assert_eq!(git_in(&r.dir, &["status", "--porcelain"]), "", "committed");
    assert!(
        text(&out.stdout).contains("01 Jan 22 01:00 UTC"),
        "{}",
        text(&out.stdout)
    );

    // Shown as the one-cluster upgrade the controller would make, gated by the schedule:
    // Tuesday noon is outside the window, Tuesday night inside.
    for (at, state) in [
        ("2026-03-10T12:00:00Z", "Waiting"),
        ("2026-03-10T21:30:00Z", "Trigger"),
    ] {
        let out = upkeep(&["status", "--repo", dir, "--at", at, "-o", "json"], None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let u = j
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "scheduled-prod-a")
            .unwrap_or_else(|| panic!("the scheduled upgrade is shown: {j}"));
        assert_eq!(u["target"], "30.0.0");
        assert_eq!(u["clusters"][0]["name"], "prod-a");
        assert_eq!(u["clusters"][0]["state"], state, "at {at}: {u}");
    }

    let out = upkeep(
        &["plan", "--repo", dir, "--at", "2026-03-10T21:30:00Z"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(
        plan.contains("ClusterUpgrade org-a/scheduled-prod-a → 30.0.0: Running"),
        "plan shows the scheduled upgrade:\n{plan}"
    );

    // Refused, with the reason and a hint: nothing changes.
    let cases: [(&str, &[&str], &str); 2] = [
        (
            "2022-01-01T01:00:30Z",
            &["whole minute", "hint:"],
            "the annotation holds no seconds",
        ),
        (
            "2070-01-01 00:00",
            &["1969–2068", "hint:"],
            "a two-digit year cannot say 2070",
        ),
    ];
    for (at, wants, why) in cases {
        let out = schedule(at);
        assert_eq!(out.status.code(), Some(2), "{why}");
        let err = text(&out.stderr);
        for w in wants {
            assert!(err.contains(w), "{why}: lacks {w:?}: {err}");
        }
    }
    let out = upkeep(
        &[
            "upgrade",
            "cluster",
            "nope",
            "--to",
            "30.0.0",
            "--at",
            "2022-01-01 01:00",
            "--schedule-annotations",
            "--repo",
            dir,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no Cluster manifest named nope") && err.contains("--kubeconfig"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(r.dir.join("clusters/clusters.yaml")).unwrap(),
        SCHEDULED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_management_cluster_the_cluster_gets_what_kubectl_gs_writes() {
    let server = KubeApiServer::start_with_crds(&[&crd_yaml()])
        .await
        .expect("kube-apiserver with the Cluster CRD");
    server
        .kubectl(&["create", "namespace", "org-a"])
        .expect("namespace");
    server
        .kubectl_stdin(&["apply", "-f", "-"], CLUSTERS)
        .expect("cluster applied");
    let kubeconfig = server.admin_kubeconfig();
    let out = upkeep(
        &[
            "upgrade",
            "cluster",
            "prod-a",
            // No --namespace: the Cluster (in org-a) is found by name, as kubectl gs does.
            "--to",
            "30.0.0",
            "--at",
            "2022-01-01 01:00",
            "--schedule-annotations",
        ],
        Some(Path::new(&kubeconfig)),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let read = |key: &str| {
        jsonpath(
            &server,
            "org-a",
            "prod-a",
            &format!("{{.metadata.annotations.{}}}", key.replace('.', "\\.")),
        )
    };
    assert_eq!(
        read("alpha.giantswarm.io/update-schedule-target-release"),
        "30.0.0"
    );
    assert_eq!(
        read("alpha.giantswarm.io/update-schedule-target-time"),
        "01 Jan 22 01:00 UTC"
    );
    assert_eq!(
        label_in(&server, "org-a", "prod-a"),
        "29.1.0",
        "scheduled, not upgraded"
    );
}

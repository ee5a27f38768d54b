//! The controller's `/calendar.ics` on the real kube-apiserver: the same feed as
//! `upkeep calendar --kubeconfig` (one function serves both), read by python's `icalendar`,
//! filtered by `namespace=` and the label selector `selector=`, and a bad query is a 400 that
//! says which parameter.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upkeep_testenv::{KubeApiServer, cluster_api, upkeep_crds};

/// Berlin windows that ended before today: the running controller never starts the upgrade,
/// while a feed from March still shows them.
const OBJECTS: &str = r#"apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: berlin, namespace: default}
spec:
  timeZone: Europe/Berlin
  maintenanceWindows:
    - name: saturday nights
      startTime: "2026-01-03T22:00:00"
      endTime: "2026-01-04T04:00:00"
      recurrence: FREQ=WEEKLY;BYDAY=SA;UNTIL=20260601T000000Z
  clusterSelector:
    matchLabels: {stage: prod}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: to-29-4, namespace: default}
spec:
  targetVersion: 29.4.0
  matchers: [{name: prod, key: stage, value: prod}]
"#;

const FROM: &str = "2026-03-27T00:00:00Z";

fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        code != 200
            || head
                .to_ascii_lowercase()
                .contains("content-type: text/calendar"),
        "{head}"
    );
    (code, body.to_owned())
}

fn peer(ics: &str, dir: &Path) -> Vec<serde_json::Value> {
    let file = dir.join("feed.ics");
    std::fs::write(&file, ics).unwrap();
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/calendar_peer.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "icalendar: {}",
        support::text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (uid, start, end, summary) of each event, sorted.
fn shape(events: &[serde_json::Value]) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["uid"].as_str().unwrap().to_owned(),
                e["start"].as_str().unwrap().to_owned(),
                e["end"].as_str().unwrap().to_owned(),
                e["summary"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_serves_the_feed_the_cli_writes() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds(), &cluster_api::crd_yaml()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let clusters = [
        cluster_api::cluster_yaml("prod-frankfurt", "default", &[("stage", "prod")], "29.1.0"),
        cluster_api::cluster_yaml("dev-berlin", "default", &[("stage", "dev")], "29.1.0"),
    ]
    .join("---\n");
    server
        .kubectl_stdin(&["apply", "-f", "-"], &format!("{clusters}---\n{OBJECTS}"))
        .expect("objects applied");
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "controller",
            "--leader-elect=false",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn upkeep controller");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the controller exited early"
        );
        assert!(Instant::now() < deadline, "the metrics port never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let query = format!("/calendar.ics?namespace=default&from={FROM}&days=30");
    let (code, body) = get(port, &query);
    assert_eq!(code, 200, "{body}");
    let served = peer(&body, tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["calendar", "--kubeconfig"])
        .arg(server.admin_kubeconfig())
        .args(["-n", "default", "--from", FROM, "--days", "30", "--out"])
        .arg(tmp.path().join("cli.ics"))
        .env("UPKEEP_STORE", tmp.path().join("state.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    let written = peer(
        &std::fs::read_to_string(tmp.path().join("cli.ics")).unwrap(),
        tmp.path(),
    );
    assert_eq!(
        shape(&served),
        shape(&written),
        "the route and the CLI give one feed"
    );
    let summaries: Vec<&str> = served
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        served
            .iter()
            .any(|e| e["summary"] == "prod-frankfurt: 29.1.0 → 29.4.0"
                && e["start"] == "2026-03-28T21:00:00Z"
                && e["end"] == "2026-03-29T02:00:00Z"),
        "prod-frankfurt in the first Saturday night (CET → CEST): {summaries:?}"
    );
    assert_eq!(
        served.iter().filter(|e| e["category"] == "window").count(),
        5,
        "five Saturday nights from March 27 to April 26: {summaries:?}"
    );
    // The selector picks clusters (and schedules) by label.
    let (code, body) = get(port, &format!("{query}&selector=stage%3Ddev"));
    assert_eq!(code, 200, "{body}");
    let dev = peer(&body, tmp.path());
    assert!(
        dev.iter()
            .all(|e| !e["summary"].as_str().unwrap().starts_with("prod-frankfurt")),
        "stage=dev leaves prod-frankfurt out: {dev:?}"
    );
    assert!(
        dev.iter().all(|e| e["category"] != "window"),
        "the schedule has no stage=dev label"
    );
    let (code, body) = get(port, "/calendar.ics?namespace=nowhere");
    assert_eq!(code, 200, "an empty namespace is an empty feed: {body}");
    assert!(peer(&body, tmp.path()).is_empty());
    // Bad queries: 400 naming the parameter.
    for (q, want) in [
        ("days=0", "days"),
        ("from=yesterday-ish", "from"),
        ("bogus=1", "bogus"),
    ] {
        let (code, body) = get(port, &format!("/calendar.ics?{q}"));
        assert_eq!(code, 400, "{q}: {body}");
        assert!(body.contains(want), "{q}: {body}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

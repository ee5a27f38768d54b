//! The dashboard in a real browser: Debian's headless Chromium loads every page of
//! `upkeep quickstart --serve`, of `upkeep serve --repo` over a hostile repository, of
//! `upkeep serve --kubeconfig` and of `upkeep controller --ui-addr` against the real
//! kube-apiserver. The DOM Chromium dumps is parsed (Python's `html.parser`, in
//! `support/dom.py`) and its table rows are checked against the page's JSON twin and against
//! what the CLI prints for the same input. Screenshots go to `target/artefacts/ui/` (or
//! `$UPKEEP_ARTEFACTS/ui/`) for review; CI keeps them as artefacts.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::text;

/// A served dashboard; the process is killed when dropped.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `upkeep <args>` and waits for the URL it prints on stdout.
fn serve(args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("upkeep runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("http://") {
                let _ = tx.send(line.trim_end_matches('/').to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("upkeep {args:?} never printed its URL"));
    Served { child, base }
}

/// A raw HTTP/1.1 request: status, headers (lower-case names), body.
fn request(method: &str, url: &str) -> (u16, BTreeMap<String, String>, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn json(url: &str) -> Value {
    let (status, headers, body) = request("GET", url);
    assert_eq!(status, 200, "{url}: {body}");
    assert_eq!(headers["content-type"], "application/json", "{url}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"))
}

/// Where screenshots go.
fn artefacts() -> PathBuf {
    let dir = std::env::var_os("UPKEEP_ARTEFACTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artefacts"),
        PathBuf::from,
    );
    let dir = dir.join("ui");
    std::fs::create_dir_all(&dir).expect("artefacts directory");
    dir
}

/// Runs headless Chromium; a page that keeps it from finishing (a script opening a dialog, a
/// load that never ends) fails the test after a minute instead of hanging it.
fn chromium(args: &[&str]) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let out_file = profile.path().join("stdout");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1400,1000",
            &format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ),
        ])
        .args(args)
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium runs (Debian package `chromium`; scripts/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {args:?} did not finish within 60 s (a script or dialog blocks the page?)"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium {args:?}: {status}");
    std::fs::read(&out_file).unwrap()
}

/// The page as Chromium renders it, parsed; a screenshot of it saved as `shot`.
fn load(url: &str, shot: &str) -> Value {
    let dom = chromium(&["--dump-dom", url]);
    let mut parse = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dom.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    parse.stdin.take().unwrap().write_all(&dom).unwrap();
    let out = parse.wait_with_output().unwrap();
    assert!(out.status.success(), "parsing the DOM of {url}");
    let path = artefacts().join(format!("{shot}.png"));
    chromium(&[&format!("--screenshot={}", path.display()), url]);
    assert!(path.exists(), "the screenshot {} was saved", path.display());
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

/// The body rows of the table `table` (by id or class), optionally inside one campaign's
/// section, as their cells.
fn rows<'d>(dom: &'d Value, table: &str, section: Option<&str>) -> Vec<&'d Value> {
    dom["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["table"] == table && r["head"] == false)
        .filter(|r| section.is_none_or(|s| r["section"] == s))
        .collect()
}

fn cells(row: &Value) -> Vec<&str> {
    row["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c.as_str().unwrap_or_default())
        .collect()
}

/// The fleet table's rows against `/fleet.json`, cell by cell.
fn check_fleet(dom: &Value, twin: &Value) {
    let shown = rows(dom, "clusters", None);
    let want = twin["clusters"].as_array().expect("clusters");
    assert_eq!(shown.len(), want.len(), "one row per cluster: {dom}");
    for (row, c) in shown.iter().zip(want) {
        let cells = cells(row);
        assert_eq!(cells[0], c["name"], "name");
        assert_eq!(cells[1], c["namespace"], "namespace");
        assert_eq!(cells[2], c["current"].as_str().unwrap_or("?"), "current");
        assert_eq!(cells[3], c["target"].as_str().unwrap_or("-"), "target");
        assert_eq!(
            cells[4],
            c["state"].as_str().unwrap_or("no campaign"),
            "state"
        );
    }
}

/// Each campaign's stage rows against `/campaigns.json`: per stage, the clusters and how many
/// succeeded, may start, run, failed and wait.
fn check_campaigns(dom: &Value, twin: &Value) {
    for c in twin.as_array().expect("campaigns") {
        let key = format!(
            "{}/{}",
            c["namespace"].as_str().unwrap(),
            c["name"].as_str().unwrap()
        );
        let mut want: BTreeMap<String, [usize; 6]> = BTreeMap::new();
        for r in c["clusters"].as_array().unwrap() {
            let stage = r["stage"].as_str().unwrap_or("(all)").to_owned();
            let e = want.entry(stage).or_default();
            e[0] += 1;
            let i = match r["state"].as_str().unwrap() {
                "Succeeded" | "Skipped" => 1,
                "Trigger" => 2,
                "Triggered" | "Upgrading" => 3,
                "Failed" | "Halted" => 4,
                _ => 5,
            };
            e[i] += 1;
        }
        let shown: BTreeMap<String, [usize; 6]> = rows(dom, "stages", Some(&key))
            .iter()
            .filter(|r| r["attrs"]["data-stage"].is_string())
            .map(|r| {
                let cells = cells(r);
                let n = |i: usize| cells[i].parse::<usize>().expect("a count");
                (cells[0].to_owned(), [n(1), n(2), n(3), n(4), n(5), n(6)])
            })
            .collect();
        assert_eq!(shown, want, "the stages of {key}: {dom}");
    }
}

fn check_read_only(base: &str) {
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (status, headers, _) = request(method, &format!("{base}/fleet"));
        assert_eq!(status, 405, "{method} is refused");
        assert_eq!(headers["allow"], "GET, HEAD", "{method}");
    }
    let (status, headers, body) = request("HEAD", &format!("{base}/fleet"));
    assert_eq!(status, 200, "HEAD is answered");
    assert!(body.is_empty(), "HEAD has no body");
    assert!(headers["content-type"].starts_with("text/html"));
    let (status, _, body) = request("GET", &format!("{base}/nope"));
    assert_eq!(status, 404, "{body}");
}

/// A feed as python's `icalendar` reads it (`tests/data/calendar_peer.py`: one object per
/// VEVENT, times in UTC through the feed's own VTIMEZONEs).
fn ics_peer(feed: &[u8]) -> Vec<Value> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), feed).unwrap();
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/calendar_peer.py"))
        .arg(file.path())
        .output()
        .expect("python3 runs (scripts/test installs python3-icalendar)");
    assert!(
        out.status.success(),
        "python's icalendar rejects the feed: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the peer's JSON")
}

/// `GET url` as a calendar feed, read by the python peer.
fn feed(url: &str) -> Vec<Value> {
    let (status, headers, body) = request("GET", url);
    assert_eq!(status, 200, "{url}: {body}");
    assert_eq!(
        headers["content-type"], "text/calendar; charset=utf-8",
        "{url}"
    );
    ics_peer(body.as_bytes())
}

/// The Calendar page against a feed of the same range: one row per schedule and per cluster
/// of `subjects`, and every bar's start and end are those of the feed's event with its UID,
/// which the row of the event's subject holds. Returns the bars by kind.
fn check_calendar(
    dom: &Value,
    events: &[Value],
    schedules: &[&str],
    clusters: &[&str],
) -> BTreeMap<String, usize> {
    let row_subjects = |kind: &str| -> Vec<String> {
        dom["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["table"] == "timeline" && r["attrs"]["data-row"] == kind)
            .map(|r| r["attrs"]["data-subject"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        row_subjects("schedule"),
        schedules,
        "one row per schedule: {dom}"
    );
    assert_eq!(
        row_subjects("cluster"),
        clusters,
        "one row per cluster: {dom}"
    );
    let by_uid: BTreeMap<&str, &Value> = events
        .iter()
        .map(|e| (e["uid"].as_str().unwrap(), e))
        .collect();
    let bars = dom["bars"].as_array().expect("bars");
    let mut kinds = BTreeMap::new();
    for b in bars {
        let a = &b["attrs"];
        let uid = a["data-uid"].as_str().unwrap();
        let e = by_uid
            .get(uid)
            .unwrap_or_else(|| panic!("bar {b} has no event in the feed: {events:?}"));
        assert_eq!(a["data-start"], e["start"], "start of {uid}");
        assert_eq!(a["data-end"], e["end"], "end of {uid}");
        let subject = e["subject"].as_str().unwrap();
        let row = b["row"].as_str().unwrap();
        assert!(
            row == subject || row.ends_with(&format!("/{subject}")),
            "the bar of {subject} is in its row, not {row}"
        );
        assert!(
            b["title"]
                .as_str()
                .unwrap()
                .contains(e["summary"].as_str().unwrap()),
            "the tooltip names the event: {b}"
        );
        *kinds
            .entry(a["data-kind"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    // Every event of a row shown is drawn.
    let shown: std::collections::BTreeSet<&str> =
        schedules.iter().chain(clusters).copied().collect();
    let expected = events
        .iter()
        .filter(|e| {
            let s = e["subject"].as_str().unwrap();
            shown.contains(s) || shown.iter().any(|k| k.ends_with(&format!("/{s}")))
        })
        .count();
    let drawn = bars
        .iter()
        .filter(|b| b["row"].as_str().is_some_and(|r| shown.contains(r)))
        .count();
    assert_eq!(drawn, expected, "every event of the rows shown is a bar");
    kinds
}

const AT: &str = "2026-12-07T23:30:00Z";

#[test]
fn quickstart_pages_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("qs");
    let s = serve(
        &[
            "quickstart",
            "--serve",
            "--addr",
            "127.0.0.1:0",
            "--at",
            AT,
            "--scratch",
            scratch.to_str().unwrap(),
        ],
        &[],
    );
    let base = &s.base;
    check_read_only(base);

    // Fleet: every cluster of the example, as the quickstart's own text table has it.
    let twin = json(&format!("{base}/fleet.json"));
    let dom = load(&format!("{base}/fleet"), "quickstart-fleet");
    check_fleet(&dom, &twin);
    let shown: BTreeMap<&str, &str> = rows(&dom, "clusters", None)
        .iter()
        .map(|r| (cells(r)[0], cells(r)[4]))
        .collect();
    assert_eq!(
        shown.len(),
        6,
        "the six clusters of examples/quickstart: {shown:?}"
    );
    let names: Vec<&str> = shown.keys().copied().collect();
    assert_eq!(
        names,
        [
            "dev-frankfurt",
            "dev-virginia",
            "prod-dublin",
            "prod-frankfurt",
            "prod-ohio",
            "prod-virginia"
        ]
    );
    assert_eq!(shown["dev-frankfurt"], "Trigger", "dev may start at {AT}");
    assert_eq!(shown["prod-frankfurt"], "Waiting", "prod waits for dev");
    assert_eq!(dom["ids"]["matching"], "6");
    assert_eq!(dom["ids"]["pager-top-shown"], "clusters 1–6 of 6");

    // Calendar: one row per schedule and per cluster; each bar is the feed's event.
    let events = feed(&format!("{base}/calendar.ics?days=14"));
    let twin = json(&format!("{base}/calendar.json"));
    assert_eq!(twin["from"], AT, "the page starts at --at");
    let dom = load(&format!("{base}/calendar"), "quickstart-calendar");
    let schedules = [
        "org-acme/dev-anytime",
        "org-acme/prod-eu",
        "org-acme/prod-us",
    ];
    let clusters: Vec<String> = names.iter().map(|n| format!("org-acme/{n}")).collect();
    let clusters: Vec<&str> = clusters.iter().map(String::as_str).collect();
    let kinds = check_calendar(&dom, &events, &schedules, &clusters);
    assert!(
        kinds.get("window").copied().unwrap_or(0) > 0,
        "windows drawn: {kinds:?}"
    );
    assert!(
        kinds.get("cluster-upgrade").copied().unwrap_or(0) > 0,
        "planned cluster upgrades drawn: {kinds:?}"
    );
    let dev = dom["bars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["row"] == "org-acme/dev-frankfurt" && b["attrs"]["data-kind"] == "cluster-upgrade"
        })
        .expect("dev-frankfurt's planned upgrade");
    assert_eq!(
        dev["attrs"]["data-start"], AT,
        "dev-frankfurt may start at {AT}"
    );
    // The twin: the entries of `upkeep calendar --output json`, the same as the feed's.
    let entries = twin["entries"].as_array().unwrap();
    assert_eq!(entries.len(), events.len(), "{twin}");
    for (e, ev) in entries.iter().zip(&events) {
        for k in ["uid", "start", "end", "summary", "subject"] {
            assert_eq!(e[k], ev[k], "{k} of {}", e["uid"]);
        }
    }
    assert_eq!(dom["ids"]["axis-tz"], "UTC", "the axis says its zone");
    assert_eq!(
        dom["hrefs"]["subscribe"], "/calendar.ics",
        "the subscribe link"
    );
    for p in ["fleet", "campaigns", "apps", "history", "calendar"] {
        let (_, _, body) = request("GET", &format!("{base}/{p}"));
        assert!(
            body.contains(r#"<a href="/calendar""#),
            "{p} links the Calendar page"
        );
    }
    // Filters and paging: by label (the subscribe link carries it as a selector), 4 a page.
    let prod = json(&format!(
        "{base}/calendar.json?label=upkeep.dev/stage%3Dprod"
    ));
    let dom = load(
        &format!("{base}/calendar?label=upkeep.dev/stage%3Dprod"),
        "quickstart-calendar-prod",
    );
    let prod_clusters: Vec<&str> = clusters
        .iter()
        .copied()
        .filter(|c| c.contains("prod-"))
        .collect();
    check_calendar(&dom, &events, &schedules, &prod_clusters);
    assert_eq!(
        dom["hrefs"]["subscribe"], "/calendar.ics?selector=upkeep.dev%2Fstage%3Dprod",
        "the feed of the clusters shown"
    );
    assert!(
        prod["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["subject"].as_str().unwrap().contains("/dev-")),
        "no dev cluster's entry: {prod}"
    );
    let dev = feed(&format!(
        "{base}/calendar.ics?selector=upkeep.dev/stage%3Ddev"
    ));
    assert!(
        dev.iter().any(|e| e["subject"] == "org-acme/dev-frankfurt"),
        "selector=stage=dev keeps dev's upgrades"
    );
    let prod = feed(&format!(
        "{base}/calendar.ics?selector=upkeep.dev/stage%3Dprod"
    ));
    assert!(
        prod.iter()
            .all(|e| !e["subject"].as_str().unwrap().contains("/dev-")),
        "selector=stage=prod drops dev's: {prod:?}"
    );
    assert!(
        prod.iter().any(|e| e["subject"] == "org-acme/prod-eu"),
        "and keeps the schedules"
    );
    let page2 = json(&format!("{base}/calendar.json?per=4&page=2"));
    assert_eq!(
        (page2["page"].as_u64(), page2["pages"].as_u64()),
        (Some(2), Some(2))
    );
    let dom = load(
        &format!("{base}/calendar?per=4&page=2"),
        "quickstart-calendar-page2",
    );
    check_calendar(&dom, &events, &schedules, &clusters[4..]);
    let (status, _, body) = request("GET", &format!("{base}/calendar.ics?bogus=1"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bogus") && body.contains("hint:"), "{body}");
    let (status, _, body) = request("GET", &format!("{base}/calendar.json?days=0"));
    assert_eq!(status, 400, "{body}");
    // The file quickstart wrote is the same feed (28 days from --at).
    let written = ics_peer(
        &std::fs::read(scratch.join("calendar.ics")).expect("quickstart wrote calendar.ics"),
    );
    let served = feed(&format!("{base}/calendar.ics"));
    let key = |e: &Value| {
        (
            e["uid"].to_string(),
            e["start"].to_string(),
            e["end"].to_string(),
        )
    };
    assert_eq!(
        written.iter().map(key).collect::<Vec<_>>(),
        served.iter().map(key).collect::<Vec<_>>(),
        "the served feed is the file quickstart wrote"
    );

    // Filters: by stage and by label, on the page and in its twin alike.
    let prod = load(&format!("{base}/fleet?stage=prod"), "quickstart-fleet-prod");
    let prod_twin = json(&format!("{base}/fleet.json?stage=prod"));
    check_fleet(&prod, &prod_twin);
    assert_eq!(rows(&prod, "clusters", None).len(), 4, "four prod clusters");
    let dev = json(&format!("{base}/fleet.json?label=upkeep.dev/stage%3Ddev"));
    assert_eq!(
        dev["clusters"].as_array().unwrap().len(),
        2,
        "two dev clusters: {dev}"
    );

    // Campaigns: the stage bars count what the twin says.
    let twin = json(&format!("{base}/campaigns.json"));
    let dom = load(&format!("{base}/campaigns"), "quickstart-campaigns");
    check_campaigns(&dom, &twin);
    assert_eq!(dom["tags"]["svg"], 2, "one bar per stage (dev, prod)");

    // Apps: the fields of `upkeep plan --output json`, each shown.
    let twin = json(&format!("{base}/apps.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "plan",
            "--repo",
            scratch.join("fleet").to_str().unwrap(),
            "--at",
            AT,
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(
        twin["fields"], plan["fields"],
        "the same fields as `upkeep plan`"
    );
    let dom = load(&format!("{base}/apps"), "quickstart-apps");
    let shown = rows(&dom, "fields", None);
    let fields = plan["fields"].as_array().unwrap();
    assert!(!fields.is_empty());
    assert_eq!(shown.len(), fields.len());
    for (row, f) in shown.iter().zip(fields) {
        assert_eq!(
            row["attrs"]["data-field"],
            format!("{}:{}", f["file"].as_str().unwrap(), f["line"]),
        );
        assert_eq!(cells(row)[4], f["action"], "action");
    }

    // History: what `upkeep history` lists, with the commits quickstart made.
    let twin = json(&format!("{base}/history.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "history",
            "--store",
            scratch.join("state.redb").to_str().unwrap(),
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let history: Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    assert_eq!(
        twin["changes"], history,
        "the same changes as `upkeep history`"
    );
    let dom = load(&format!("{base}/history"), "quickstart-history");
    let shown = rows(&dom, "app-history", None);
    let changes = history.as_array().unwrap();
    assert!(
        !changes.is_empty(),
        "quickstart committed something at {AT}"
    );
    assert_eq!(shown.len(), changes.len());
    for (row, c) in shown.iter().zip(changes) {
        let commit = c["commit"].as_str().unwrap();
        assert_eq!(cells(row)[5], &commit[..12], "the short commit");
        assert_eq!(
            cells(row)[3],
            format!(
                "{} → {}",
                c["old"].as_str().unwrap(),
                c["new"].as_str().unwrap()
            )
        );
    }
}

/// A repository whose manifests carry markup and credentials: a freeze reason with an `<img>`
/// tag, a password in a URL and a token; a ChartSource with a password in its URL.
const HOSTILE: &str = r#"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod-a
  namespace: default
  labels: {release.giantswarm.io/version: "29.1.0", stage: prod}
  annotations:
    upkeep.dev/freeze-until: "2099-01-01T00:00:00Z"
    upkeep.dev/freeze-reason: "<img src=x onerror=alert(1)> see https://admin:hunter2hunter2@git.example/x token=ghp_abcdefghijklmnopqrstuvwxyz0123456789"
spec: {}
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod-b
  namespace: default
  labels: {release.giantswarm.io/version: "29.1.0", stage: prod}
spec: {}
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: always, namespace: default}
spec:
  alwaysAllowed: true
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: to-30, namespace: default}
spec:
  targetVersion: 30.0.0
  maintenanceScheduleRef: {name: always}
  matchers: [{name: all, value: ".*", isRegex: true}]
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: charts, namespace: default}
spec:
  url: oci://bob:s3cretPassw0rd99@127.0.0.1:9/charts/podinfo
  interval: 1h
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: podinfo, namespace: default}
spec:
  sourceRef: {name: charts}
  policy: {semver: {range: ">=1.0.0"}}
"#;

const SECRETS: [&str; 3] = [
    "hunter2hunter2",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "s3cretPassw0rd99",
];

#[test]
fn markup_is_escaped_and_credentials_never_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("apps")).unwrap();
    std::fs::write(repo.join("fleet.yaml"), HOSTILE).unwrap();
    std::fs::write(
        repo.join("apps/podinfo.yaml"),
        "image:\n  tag: 1.0.0 # {\"$upkeep\": \"default:podinfo\"}\n",
    )
    .unwrap();
    let s = serve(
        &[
            "serve",
            "--repo",
            repo.to_str().unwrap(),
            "--store",
            tmp.path().join("none.redb").to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--at",
            AT,
        ],
        &[],
    );
    let base = &s.base;
    for page in ["fleet", "campaigns", "apps", "history", "calendar"] {
        for url in [format!("{base}/{page}"), format!("{base}/{page}.json")] {
            let (status, _, body) = request("GET", &url);
            assert_eq!(status, 200, "{url}: {body}");
            for secret in SECRETS {
                assert!(!body.contains(secret), "{url} shows {secret}: {body}");
            }
        }
        let dom = load(&format!("{base}/{page}"), &format!("hostile-{page}"));
        assert_eq!(
            dom["tags"].get("img"),
            None,
            "no <img> element on {page}: markup is text"
        );
        assert!(
            dom["tags"]["script"].as_u64().unwrap_or(0) <= 2,
            "only upkeep's scripts"
        );
        for secret in SECRETS {
            assert!(!dom.to_string().contains(secret), "{page} renders {secret}");
        }
    }
    // The freeze reason is there, as text, with its credentials redacted.
    let dom = load(&format!("{base}/fleet"), "hostile-fleet");
    let a = rows(&dom, "clusters", None)
        .into_iter()
        .find(|r| cells(r)[0] == "prod-a")
        .expect("prod-a");
    let reason = cells(a)[7];
    assert!(
        reason.contains("<img src=x onerror=alert(1)>"),
        "the markup shown as text: {reason}"
    );
    assert!(
        reason.contains("https://admin:"),
        "the URL is still recognisable: {reason}"
    );
    // The marked field of the unreachable source: an error that names the source, redacted.
    let apps = json(&format!("{base}/apps.json"));
    let field = &apps["fields"][0];
    assert_eq!(field["action"], "error", "{apps}");
    assert!(
        field["reason"].as_str().unwrap().contains("127.0.0.1:9"),
        "{apps}"
    );

    // A repository that is not there: an error page naming it, not a crash.
    let missing = tmp.path().join("missing");
    let s = serve(
        &[
            "serve",
            "--repo",
            missing.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    let (status, _, body) = request("GET", &format!("{}/fleet", s.base));
    assert_eq!(status, 502, "{body}");
    let dom = load(&format!("{}/fleet", s.base), "error-missing-repo");
    let message = dom["ids"]["message"].as_str().expect("an error message");
    assert!(
        message.contains("missing") && message.contains("no such directory"),
        "{message}"
    );
    assert!(dom["ids"]["hint"].as_str().unwrap().contains("--repo"));
    let twin = request("GET", &format!("{}/fleet.json", s.base));
    assert_eq!(twin.0, 502);
    let twin: Value = serde_json::from_str(&twin.2).unwrap();
    assert!(
        twin["error"]
            .as_str()
            .unwrap()
            .contains("no such directory")
    );
}

#[test]
fn refuses_a_non_loopback_bind() {
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["serve", "--repo", ".", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}

const KUBE_FLEET: &str = r#"apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: nights, namespace: default}
spec:
  timeZone: Europe/Berlin
  maintenanceWindows:
    - name: nights
      startTime: "2026-01-01T22:00:00"
      endTime: "2026-01-02T04:00:00"
      recurrence: FREQ=DAILY
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: dev-a, namespace: default, labels: {release.giantswarm.io/version: "30.0.0"}}
spec: {}
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: prod-a, namespace: default, labels: {release.giantswarm.io/version: "29.1.0"}}
spec: {}
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: lone, namespace: default, labels: {release.giantswarm.io/version: "28.0.0"}}
spec: {}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: running, namespace: default}
spec:
  targetVersion: 30.0.0
  matchers: [{name: a, value: ".*-a", isRegex: true}]
  strategy: {timeout: 45m}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: bad, namespace: default}
spec:
  targetVersion: 30.0.0
  matchers: [{name: none, value: "nothing"}]
  strategy: {timeout: soon}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgradeRecord
metadata: {name: running-dev-a, namespace: default, labels: {cluster: dev-a, upkeep.dev/campaign: running}}
spec: {cluster: dev-a, campaign: running, from: 29.1.0, to: 30.0.0, trigger: Direct,
       place: Auto, state: Succeeded, triggeredAt: '2026-11-01T10:00:00Z',
       finishedAt: '2026-11-01T10:20:00Z', commit: 0123456789abcdef0123456789abcdef01234567}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgradeRecord
metadata: {name: old-dev-a, namespace: default, labels: {cluster: dev-a, upkeep.dev/campaign: old}}
spec: {cluster: dev-a, campaign: old, from: 28.0.0, to: 29.1.0, trigger: Direct,
       state: Failed, reason: "disk <b>full</b>", triggeredAt: '2026-10-01T10:00:00Z'}
---
apiVersion: v1
kind: Event
metadata: {name: running.1, namespace: default}
involvedObject: {apiVersion: upkeep.dev/v1alpha1, kind: ClusterUpgrade, name: running, namespace: default}
reason: Triggered
message: "triggered prod-a: 29.1.0 → 30.0.0"
type: Normal
count: 1
firstTimestamp: "2026-12-06T10:00:00Z"
lastTimestamp: "2026-12-06T10:00:00Z"
source: {component: upkeep}
"#;

/// `n` clusters in one always-allowed campaign: the first fifth in stage dev, the rest in prod;
/// `wc00000` on `first`, every other one on 29.(i % 3).0.
fn paged_fleet(n: usize, first: &str) -> String {
    let mut out = String::from(
        "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: always, namespace: org-a}
spec: {alwaysAllowed: true}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: to-30, namespace: org-a}
spec:
  targetVersion: 30.0.0
  maintenanceScheduleRef: {name: always}
  matchers: [{name: all, value: \".*\", isRegex: true}]
  strategy:
    maxConcurrency: 10
    stages:
      - {name: dev, matchers: [{name: dev, key: stage, value: dev}]}
      - {name: prod, matchers: [{name: prod, key: stage, value: prod}]}
",
    );
    for i in 0..n {
        let stage = if i < n / 5 { "dev" } else { "prod" };
        let version = if i == 0 {
            first.to_owned()
        } else {
            format!("29.{}.0", i % 3)
        };
        std::fmt::Write::write_fmt(
            &mut out,
            format_args!(
            "---\napiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata:\n  name: wc{i:05}\n  namespace: org-a\n  labels: {{release.giantswarm.io/version: \"{version}\", stage: {stage}}}\nspec: {{}}\n"
        ),
        )
        .expect("a string");
    }
    out
}

/// Polls `f` every 100 ms until it gives a value, for at most `within`; the test fails naming
/// `what` if it never does.
fn eventually<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `datetime` of the page's "as of" (when the fleet it shows was loaded).
fn as_of(url: &str) -> String {
    let (status, _, body) = request("GET", url);
    assert_eq!(status, 200, "{url}: {body}");
    let (_, rest) = body
        .split_once("id=\"as-of\" datetime=\"")
        .unwrap_or_else(|| panic!("{url} says as of when: {body}"));
    rest.split('"').next().unwrap().to_owned()
}

#[test]
fn fleet_pages_and_one_snapshot_refreshed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("fleet.yaml"), paged_fleet(250, "29.0.0")).unwrap();
    let s = serve(
        &[
            "serve",
            "--repo",
            repo.to_str().unwrap(),
            "--store",
            tmp.path().join("none.redb").to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--at",
            AT,
            "--refresh",
            "3s",
        ],
        &[],
    );
    let base = &s.base;
    let names = |v: &Value| -> Vec<String> {
        v["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };

    // The JSON twin is the whole filtered fleet unless a page is asked for.
    let whole = json(&format!("{base}/fleet.json?stage=prod"));
    assert_eq!(names(&whole).len(), 200, "every prod cluster: {whole}");
    assert_eq!(whole.get("page"), None, "not paged without ?page=");
    let paged = json(&format!("{base}/fleet.json?stage=prod&per=50&page=2"));
    assert_eq!(
        names(&paged),
        names(&whole)[50..100],
        "page 2 at 50 a page: the 51st to the 100th"
    );
    assert_eq!(
        (&paged["page"], &paged["pages"], &paged["matching"]),
        (&Value::from(2), &Value::from(4), &Value::from(200))
    );

    // The page in the browser: its rows, its counts, its links (which keep the filters).
    let dom = load(
        &format!("{base}/fleet?stage=prod&per=50&page=2"),
        "fleet-paged",
    );
    let shown: Vec<String> = rows(&dom, "clusters", None)
        .iter()
        .map(|r| cells(r)[0].to_owned())
        .collect();
    assert_eq!(shown, names(&paged), "the page's rows: {dom}");
    assert_eq!(dom["ids"]["pager-top-shown"], "clusters 51–100 of 200");
    assert_eq!(dom["ids"]["pager-bottom-shown"], "clusters 51–100 of 200");
    for (link, page) in [("first", 1), ("prev", 1), ("next", 3), ("last", 4)] {
        assert_eq!(
            dom["hrefs"][format!("pager-top-{link}")],
            format!("/fleet?stage=prod&per=50&page={page}"),
            "the {link} link keeps the filters: {dom}"
        );
    }
    // The counts are over the whole filtered fleet, not the page.
    assert_eq!(dom["ids"]["matching"], "200", "{dom}");
    let count = |id: &str| {
        dom["ids"][id]
            .as_str()
            .and_then(|n| n.parse::<usize>().ok())
    };
    let states = ["Trigger", "Waiting", "Pending", "no-campaign"];
    let by_state: usize = states
        .iter()
        .filter_map(|s| count(&format!("state-{s}")))
        .sum();
    assert_eq!(
        by_state, 200,
        "the states add up to the filtered fleet: {dom}"
    );
    for v in ["29.0.0", "29.1.0", "29.2.0"] {
        let want = whole["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["current"] == v)
            .count();
        assert_eq!(count(&format!("version-{v}")), Some(want), "on {v}: {dom}");
    }
    // Past the last page: the last page, without a next link.
    let dom = load(
        &format!("{base}/fleet?stage=prod&per=50&page=9"),
        "fleet-last",
    );
    assert_eq!(dom["ids"]["pager-top-shown"], "clusters 151–200 of 200");
    assert_eq!(dom["hrefs"].get("pager-top-next"), None, "{dom}");

    // The Campaigns page lists the first 100 clusters of a campaign and links to the rest on
    // the Fleet page, filtered by the campaign.
    let dom = load(&format!("{base}/campaigns"), "campaigns-paged");
    assert_eq!(
        rows(&dom, "clusters", Some("org-a/to-30")).len(),
        100,
        "the first 100 of 250: {dom}"
    );
    let more = dom["hrefs"]["more-org-a/to-30"].as_str().expect("a link");
    assert_eq!(more, "/fleet?campaign=org-a%2Fto-30");
    let dom = load(&format!("{base}{more}"), "fleet-of-campaign");
    assert_eq!(dom["ids"]["pager-top-shown"], "clusters 1–100 of 250");
    assert_eq!(
        dom["hrefs"]["pager-top-next"],
        "/fleet?campaign=org-a%2Fto-30&page=2"
    );

    // One snapshot for every page until the repository changes.
    let loaded = as_of(&format!("{base}/fleet"));
    assert_eq!(
        as_of(&format!("{base}/campaigns")),
        loaded,
        "the campaigns page reads the same snapshot"
    );
    // A change to the repository shows up (at the latest after --refresh), and the pages say
    // when it was loaded.
    std::fs::write(repo.join("fleet.yaml"), paged_fleet(250, "29.9.9")).unwrap();
    eventually(
        "the new version of wc00000 on /fleet.json",
        Duration::from_secs(60),
        || {
            let fleet = json(&format!("{base}/fleet.json?per=1&page=1"));
            (fleet["clusters"][0]["current"] == "29.9.9").then_some(())
        },
    );
    assert_ne!(
        as_of(&format!("{base}/fleet")),
        loaded,
        "as of the new load"
    );

    // A broken file while serving: the last good snapshot, and the error, on every page.
    std::fs::write(
        repo.join("broken.yaml"),
        "apiVersion: cluster.x-k8s.io/v1beta1\nkind: Cluster\nmetadata:\n  name: broken\n  namespace: org-a\n  labels: [oops]\nspec: {}\n",
    )
    .unwrap();
    eventually(
        "the reload error on the fleet page",
        Duration::from_secs(60),
        || {
            let (_, _, body) = request("GET", &format!("{base}/fleet"));
            body.contains("id=\"reload-error\"").then_some(())
        },
    );
    let dom = load(&format!("{base}/fleet?per=5"), "fleet-reload-error");
    let error = dom["ids"]["reload-error"].as_str().expect("the error");
    assert!(
        error.contains("broken.yaml:6") && error.contains("metadata.labels"),
        "the error names the file and the field: {error}"
    );
    let first = rows(&dom, "clusters", None)[0];
    assert_eq!(
        (cells(first)[0], cells(first)[2]),
        ("wc00000", "29.9.9"),
        "the last good snapshot is shown"
    );
    let dom = load(&format!("{base}/calendar"), "calendar-reload-error");
    assert!(
        dom["ids"]["reload-error"]
            .as_str()
            .is_some_and(|e| e.contains("broken.yaml")),
        "the calendar page says so too: {dom}"
    );
    // Fixed: the error goes away.
    std::fs::remove_file(repo.join("broken.yaml")).unwrap();
    eventually(
        "the fleet page without the reload error",
        Duration::from_secs(60),
        || {
            let (_, _, body) = request("GET", &format!("{base}/fleet"));
            (!body.contains("id=\"reload-error\"")).then_some(())
        },
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_and_controller_pages_in_a_browser() {
    use kube::api::Api;
    use support::clusters::admin_client;
    use upkeep_testenv::KubeApiServer;

    let server = KubeApiServer::start_with_crds(&[
        &upkeep_testenv::cluster_api::crd_yaml(),
        &upkeep_testenv::upkeep_crds(),
    ])
    .await
    .expect("kube-apiserver with the CRDs");
    server
        .kubectl_stdin(&["apply", "-f", "-"], KUBE_FLEET)
        .expect("the fleet applied");
    let now = jiff::Timestamp::now();
    support::clusters::record_running_and_stalled(&server, now).await;
    let api: Api<upkeep_api::ClusterUpgrade> =
        Api::namespaced(admin_client(&server).await, "default");
    let kubeconfig = server.admin_kubeconfig().to_str().unwrap().to_owned();

    // `upkeep serve --kubeconfig`: what the controller recorded.
    let s = serve(
        &[
            "serve",
            "--kubeconfig",
            &kubeconfig,
            "--addr",
            "127.0.0.1:0",
            "--refresh",
            "2s",
        ],
        &[],
    );
    let base = s.base.clone();
    check_read_only(&base);
    let body_has_no_token = |url: &str| {
        let (_, _, body) = request("GET", url);
        assert!(
            !body.contains(server.admin_token()),
            "{url} shows the token"
        );
    };
    let twin = json(&format!("{base}/fleet.json"));
    let dom = load(&format!("{base}/fleet"), "kube-fleet");
    check_fleet(&dom, &twin);
    let shown: BTreeMap<&str, &str> = rows(&dom, "clusters", None)
        .iter()
        .map(|r| (cells(r)[0], cells(r)[4]))
        .collect();
    assert_eq!(
        shown,
        BTreeMap::from([
            ("dev-a", "Succeeded"),
            ("lone", "no campaign"),
            ("prod-a", "Upgrading")
        ]),
        "every Cluster, with the state its campaign recorded"
    );
    // The Cluster list is a snapshot: a change on the API server shows up after --refresh
    // (there is no cheap check of a management cluster), and the page says as of when.
    let loaded = as_of(&format!("{base}/fleet"));
    server
        .kubectl(&[
            "label",
            "clusters.cluster.x-k8s.io",
            "lone",
            "-n",
            "default",
            "team=platform",
        ])
        .expect("label lone");
    eventually(
        "the new label of lone on /fleet.json after --refresh 2s",
        Duration::from_secs(60),
        || {
            let fleet = json(&format!("{base}/fleet.json"));
            fleet["clusters"]
                .as_array()?
                .iter()
                .any(|c| c["name"] == "lone" && c["labels"]["team"] == "platform")
                .then_some(())
        },
    );
    assert_ne!(
        as_of(&format!("{base}/fleet")),
        loaded,
        "as of the new load"
    );

    let twin = json(&format!("{base}/campaigns.json"));
    let status = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["status", "--kubeconfig", &kubeconfig, "-o", "json"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let cli: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(
        twin, cli,
        "the twin is `upkeep status --kubeconfig --output json`"
    );
    let dom = load(&format!("{base}/campaigns"), "kube-campaigns");
    check_campaigns(&dom, &twin);
    assert!(
        dom["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["table"] == "events"
                && cells(r).contains(&"triggered prod-a: 29.1.0 → 30.0.0")),
        "the campaign's Event: {dom}"
    );
    assert!(
        dom["ids"]
            .as_object()
            .unwrap()
            .iter()
            .any(|(k, v)| k == "default/bad" && v.as_str().unwrap().contains("InvalidSpec")),
        "the stalled campaign says why"
    );

    let dom = load(&format!("{base}/history"), "kube-history");
    let shown = rows(&dom, "cluster-history", None);
    assert_eq!(shown.len(), 2, "both records: {dom}");
    assert!(
        cells(shown[0])[2].contains("29.1.0 → 30.0.0"),
        "newest first"
    );
    assert_eq!(cells(shown[0])[6], "0123456789ab");
    assert_eq!(
        cells(shown[1])[7],
        "Failed: disk <b>full</b>",
        "markup as text"
    );
    assert_eq!(dom["tags"].get("b"), None);
    let dom = load(&format!("{base}/apps"), "kube-apps");
    assert_eq!(
        rows(&dom, "automations", None).len(),
        1,
        "the empty-table row"
    );
    for page in [
        "fleet",
        "campaigns",
        "apps",
        "history",
        "fleet.json",
        "history.json",
    ] {
        body_has_no_token(&format!("{base}/{page}"));
    }
    // A past upgrade on the Calendar page: a ClusterUpgradeRecord of `running` (owned by it,
    // as the controller writes them) triggered inside the page's range.
    let uid = api
        .get("running")
        .await
        .expect("running")
        .metadata
        .uid
        .expect("a uid");
    let record = format!(
        r#"apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgradeRecord
metadata:
  name: running-dev-a-2
  namespace: default
  labels: {{cluster: dev-a, upkeep.dev/campaign: running}}
  ownerReferences: [{{apiVersion: upkeep.dev/v1alpha1, kind: ClusterUpgrade, name: running, uid: "{uid}"}}]
spec: {{cluster: dev-a, campaign: running, from: 29.1.0, to: 30.0.0, trigger: Direct,
       place: Auto, state: Succeeded, triggeredAt: '2026-12-08T10:00:00Z',
       finishedAt: '2026-12-08T10:20:00Z'}}
"#
    );
    server
        .kubectl_stdin(&["apply", "-f", "-"], &record)
        .expect("the record applied");
    let from = "2026-12-07T00:00:00Z";
    let events = feed(&format!("{base}/calendar.ics?from={from}&days=14"));
    let dom = load(&format!("{base}/calendar?from={from}"), "kube-calendar");
    let kinds = check_calendar(
        &dom,
        &events,
        &["default/nights"],
        &["default/dev-a", "default/lone", "default/prod-a"],
    );
    assert_eq!(
        kinds.get("past-upgrade"),
        Some(&1),
        "the record's bar: {kinds:?}"
    );
    let past = dom["bars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["attrs"]["data-kind"] == "past-upgrade")
        .unwrap();
    assert_eq!(past["row"], "default/dev-a", "in dev-a's row");
    assert_eq!(
        (&past["attrs"]["data-start"], &past["attrs"]["data-end"]),
        (
            &"2026-12-08T10:00:00Z".into(),
            &"2026-12-08T10:20:00Z".into()
        ),
        "from triggeredAt to finishedAt"
    );
    drop(s);

    // `upkeep controller --ui-addr`: the same pages from the running controller.
    let port = free_port();
    let mut controller = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "controller",
            "--leader-elect=false",
            "--metrics-addr",
            "127.0.0.1:0",
            "--ui-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the controller runs");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the controller never served --ui-addr"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for page in ["fleet", "campaigns", "apps", "history"] {
        let dom = load(&format!("{base}/{page}"), &format!("controller-{page}"));
        assert!(
            dom["ids"].get("error").is_none(),
            "{page} from the controller: {dom}"
        );
        body_has_no_token(&format!("{base}/{page}"));
    }
    let dom = load(&format!("{base}/fleet"), "controller-fleet");
    let names: Vec<&str> = rows(&dom, "clusters", None)
        .iter()
        .map(|r| cells(r)[0])
        .collect();
    assert_eq!(names, ["dev-a", "lone", "prod-a"], "every Cluster");

    // The Calendar page of the controller: a row per schedule and per Cluster, each bar the
    // event of the feed the same dashboard serves, which is `upkeep calendar --kubeconfig`'s.
    let from = "2026-12-07T00:00:00Z";
    let events = feed(&format!("{base}/calendar.ics?from={from}&days=14"));
    let dom = load(
        &format!("{base}/calendar?from={from}"),
        "controller-calendar",
    );
    let kinds = check_calendar(
        &dom,
        &events,
        &["default/nights"],
        &["default/dev-a", "default/lone", "default/prod-a"],
    );
    assert!(kinds["window"] >= 14, "a window a night: {kinds:?}");
    let store = tempfile::tempdir().unwrap();
    let cli = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "calendar",
            "--kubeconfig",
            &kubeconfig,
            "--from",
            from,
            "--days",
            "14",
            "-o",
            "json",
        ])
        .env_remove("KUBECONFIG")
        .env("UPKEEP_STORE", store.path().join("s.redb"))
        .output()
        .unwrap();
    let cli: Value = serde_json::from_slice(&cli.stdout).expect("calendar JSON");
    let twin = json(&format!("{base}/calendar.json?from={from}"));
    let key = |e: &Value| {
        (
            e["uid"].to_string(),
            e["start"].to_string(),
            e["end"].to_string(),
        )
    };
    assert_eq!(
        twin["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect::<Vec<_>>(),
        cli.as_array().unwrap().iter().map(key).collect::<Vec<_>>(),
        "the twin's entries are `upkeep calendar --kubeconfig --output json`'s"
    );
    let title = dom["bars"][0]["title"].as_str().unwrap();
    assert!(
        title.contains("Europe/Berlin") && title.contains("UTC"),
        "times in both zones: {title}"
    );
    let _ = controller.kill();
    let _ = controller.wait();

    // The API server gone: an error page that names it.
    let s = serve(
        &[
            "serve",
            "--kubeconfig",
            &kubeconfig,
            "--addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    drop(server);
    let (status, _, body) = request("GET", &format!("{}/campaigns", s.base));
    assert_eq!(status, 502, "{body}");
    let dom = load(&format!("{}/campaigns", s.base), "kube-error");
    assert!(
        dom["ids"]["message"]
            .as_str()
            .unwrap()
            .contains("listing ClusterUpgrades"),
        "{dom}"
    );
}

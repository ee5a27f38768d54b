//! `upkeep calendar` as a subscriber sees it: the feed is read by python's `icalendar` package
//! (Debian `python3-icalendar`, a test peer; its own VTIMEZONE parsing converts the times), and
//! every event's start and end equal what `upkeep windows` and `upkeep status --at` answer for
//! that instant — in Europe/Berlin across the March and October changes and in
//! Australia/Sydney (southern hemisphere: summer time ends in April, starts in October).
//! Then: stable UIDs and a SEQUENCE that grows when a window moves, and hostile input.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::text;

const FLEET: &str = r#"apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod-frankfurt
  namespace: org-a
  labels:
    release.giantswarm.io/version: 29.1.0
    stage: prod
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: prod-sydney
  namespace: org-b
  labels:
    release.giantswarm.io/version: 29.1.0
    stage: prod
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata:
  name: berlin
  namespace: org-a
spec:
  timeZone: Europe/Berlin
  maintenanceWindows:
    - name: nights
      startTime: "2026-01-01T22:00:00"
      endTime: "2026-01-02T04:00:00"
      recurrence: FREQ=WEEKLY;BYDAY=SA
  clusterSelector:
    matchLabels: {stage: prod}
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata:
  name: sydney
  namespace: org-b
spec:
  timeZone: Australia/Sydney
  maintenanceWindows:
    - name: "early, quiet; \"really\"\nmornings ☕"
      startTime: "2026-01-01T01:00:00"
      endTime: "2026-01-01T04:00:00"
      recurrence: FREQ=WEEKLY;BYDAY=SU
  maintenanceExclusions:
    - name: school holidays, \ ; end
      startTime: "2026-07-04T00:00:00"
      endTime: "2026-07-20T00:00:00"
  clusterSelector:
    matchLabels: {stage: prod}
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata:
  name: to-29-4
  namespace: org-a
spec:
  targetVersion: 29.4.0
  matchers: [{name: prod, key: stage, value: prod}]
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata:
  name: to-30
  namespace: org-b
spec:
  targetVersion: 30.0.0
  matchers: [{name: prod, key: stage, value: prod}]
"#;

/// Friday before Berlin's spring change (Sunday 2026-03-29 02:00 → 03:00).
const FROM: &str = "2026-03-27T00:00:00Z";
/// To November: Sydney's April and October changes and Berlin's October change (10-25).
const DAYS: &str = "224";

struct Fleet {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    store: PathBuf,
}

fn fleet() -> Fleet {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fleet.yaml"), FLEET).unwrap();
    let store = tmp.path().join("state.redb");
    Fleet { tmp, dir, store }
}

fn upkeep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env_remove("UPKEEP_STORE")
        .output()
        .expect("the upkeep binary runs")
}

impl Fleet {
    fn repo(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// `upkeep calendar` into a file, read back by the python peer.
    fn feed(&self, extra: &[&str]) -> Vec<Value> {
        let out_file = self.tmp.path().join("feed.ics");
        let store = self.store.to_str().unwrap();
        let mut args = vec![
            "calendar",
            "--repo",
            self.repo(),
            "--from",
            FROM,
            "--days",
            DAYS,
            "--store",
            store,
            "--out",
            out_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = upkeep(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "--out writes nothing to stdout");
        peer(&out_file)
    }

    #[allow(clippy::unused_self)] // reads as `f.json(…)` next to `f.feed(…)`
    fn json(&self, args: &[&str]) -> Value {
        let out = upkeep(args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }
}

/// The events as python's icalendar reads them (times in UTC through the feed's VTIMEZONEs).
fn peer(file: &Path) -> Vec<Value> {
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/calendar_peer.py");
    let out = Command::new(python)
        .arg(script)
        .arg(file)
        .output()
        .expect("python3 runs (scripts/test installs python3-icalendar)");
    assert!(
        out.status.success(),
        "python's icalendar rejects the feed: {}",
        text(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn of<'a>(events: &'a [Value], category: &str, subject: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["category"] == category && e["subject"] == subject)
        .collect()
}

#[test]
fn every_event_is_what_windows_and_status_say_across_dst_changes() {
    let f = fleet();
    let events = f.feed(&[]);
    let file = f.dir.join("fleet.yaml");
    let file = file.to_str().unwrap();
    // Windows: the occurrences are the allowed intervals `upkeep windows` lists (Sydney's
    // exclusion removes whole occurrences, which the calendar shows as the exclusion).
    for (name, subject, zone) in [
        ("berlin", "org-a/berlin", "Europe/Berlin"),
        ("sydney", "org-b/sydney", "Australia/Sydney"),
    ] {
        let windows: Vec<(String, String)> = of(&events, "window", subject)
            .iter()
            .map(|e| {
                assert_eq!(e["tzid"], zone, "times carry the schedule's zone: {e}");
                assert_eq!(e["transp"], "OPAQUE");
                (
                    e["start"].as_str().unwrap().to_owned(),
                    e["end"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let exclusions: Vec<(String, String)> = of(&events, "exclusion", subject)
            .iter()
            .map(|e| {
                assert_eq!(e["transp"], "TRANSPARENT");
                (
                    e["start"].as_str().unwrap().to_owned(),
                    e["end"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let listed = f.json(&[
            "windows", file, "--name", name, "--from", FROM, "--next", "100", "-o", "json",
        ]);
        let end_of_feed = "2026-11-06T00:00:00Z";
        let allowed: Vec<(String, String)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["start"].as_str().unwrap().to_owned(),
                    i["end"].as_str().unwrap().to_owned(),
                )
            })
            .filter(|(s, _)| s.as_str() < end_of_feed)
            .collect();
        let not_excluded: Vec<(String, String)> = windows
            .iter()
            .filter(|(s, e)| !exclusions.iter().any(|(xs, xe)| xs < e && s < xe))
            .cloned()
            .collect();
        assert!(
            allowed.len() > 25,
            "{name}: weekly windows over 32 weeks: {allowed:?}"
        );
        assert_eq!(
            not_excluded, allowed,
            "{name}: the feed's windows are `upkeep windows`'"
        );
        for (start, end) in &windows {
            // Each window occurrence lasts the wall-clock span: 6 h in Berlin (5 h the night
            // of the spring change), 3 h in Sydney (4 h the night summer time ends).
            let s: jiff::Timestamp = start.parse().unwrap();
            let e: jiff::Timestamp = end.parse().unwrap();
            let hours = e.duration_since(s).as_hours();
            let want = match (name, start.as_str()) {
                ("berlin", "2026-03-28T21:00:00Z") => 5,
                ("berlin", "2026-10-24T20:00:00Z") => 7,
                ("berlin", _) => 6,
                ("sydney", "2026-04-04T14:00:00Z") => 4,
                ("sydney", "2026-10-03T15:00:00Z") => 2,
                _ => 3,
            };
            assert_eq!(hours, want, "{name} {start}..{end}");
        }
        for (start, end) in &exclusions {
            let at = f.json(&["windows", file, "--name", name, "--at", start, "-o", "json"]);
            assert_eq!(
                at["open"], false,
                "{name}: closed at the exclusion's start: {at}"
            );
            assert!(
                at["reason"].as_str().unwrap().contains("school holidays"),
                "{name}: closed by that exclusion: {at}"
            );
            assert_eq!(start, "2026-07-03T14:00:00Z", "AEST (+10) in July");
            assert_eq!(end, "2026-07-19T14:00:00Z");
        }
    }
    assert!(
        of(&events, "window", "org-a/berlin")
            .iter()
            .any(|e| e["start"] == "2026-03-28T21:00:00Z"),
        "the night of Berlin's spring change"
    );
    assert!(
        of(&events, "window", "org-b/sydney")
            .iter()
            .any(|e| e["start"] == "2026-04-04T14:00:00Z"),
        "the night summer time ends in Sydney"
    );
    assert_eq!(of(&events, "exclusion", "org-b/sydney").len(), 1);
    // Names with commas, semicolons, quotes, a newline, a backslash and unicode come back whole.
    let sydney = &of(&events, "window", "org-b/sydney")[0];
    assert_eq!(
        sydney["summary"],
        "sydney: maintenance window early, quiet; \"really\"\nmornings ☕"
    );
    assert_eq!(
        of(&events, "exclusion", "org-b/sydney")[0]["summary"],
        "sydney: exclusion school holidays, \\ ; end (NoUpgrades)"
    );

    // Planned cluster upgrades: start where `upkeep status --at FROM` expects them, end where
    // `upkeep windows --at <start> --for <kind>` says the allowed interval ends.
    let upgrades: Vec<&Value> = events
        .iter()
        .filter(|e| e["category"] == "cluster-upgrade")
        .collect();
    assert_eq!(upgrades.len(), 2, "one per cluster: {upgrades:#?}");
    for (campaign, cluster, schedule, kind, summary) in [
        (
            "to-29-4",
            "prod-frankfurt",
            "berlin",
            "minor",
            "prod-frankfurt: 29.1.0 → 29.4.0",
        ),
        (
            "to-30",
            "prod-sydney",
            "sydney",
            "major",
            "prod-sydney: 29.1.0 → 30.0.0",
        ),
    ] {
        let status = f.json(&[
            "status",
            campaign,
            "--repo",
            f.repo(),
            "--at",
            FROM,
            "-o",
            "json",
        ]);
        let row = status[0]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == cluster)
            .unwrap_or_else(|| panic!("{status}"));
        let expected = row["expectedStart"]
            .as_str()
            .unwrap_or_else(|| panic!("{row}"));
        let e = upgrades
            .iter()
            .find(|e| e["summary"] == summary)
            .unwrap_or_else(|| panic!("{summary}: {upgrades:#?}"));
        assert_eq!(e["start"], expected, "{cluster}: status's expected start");
        let at = f.json(&[
            "windows", file, "--name", schedule, "--at", expected, "--for", kind, "-o", "json",
        ]);
        assert_eq!(at["open"], true, "{at}");
        let until: jiff::Timestamp = at["until"].as_str().unwrap().parse().unwrap();
        assert_eq!(e["end"], until.to_string(), "{cluster}: the window's end");
        let d = e["description"].as_str().unwrap();
        for want in [
            campaign,
            "Waiting",
            &format!("upkeep status {campaign} --repo"),
        ] {
            assert!(d.contains(want), "{cluster}: {want:?} in {d}");
        }
    }
}

#[test]
fn uids_stay_and_sequence_grows_only_for_what_moved() {
    let f = fleet();
    let first = f.feed(&[]);
    let again = f.feed(&[]);
    let seq = |events: &[Value]| -> BTreeMap<String, (i64, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e["uid"].as_str().unwrap().to_owned(),
                    (
                        e["sequence"].as_i64().unwrap(),
                        e["start"].as_str().unwrap().to_owned(),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(
        seq(&first),
        seq(&again),
        "an unchanged fleet: same UIDs, same SEQUENCEs"
    );
    assert_eq!(first.len(), seq(&first).len(), "UIDs are unique");
    // Berlin's window moves an hour later.
    let moved = FLEET.replace(
        "startTime: \"2026-01-01T22:00:00\"\n      endTime: \"2026-01-02T04:00:00\"",
        "startTime: \"2026-01-01T23:00:00\"\n      endTime: \"2026-01-02T04:00:00\"",
    );
    assert_ne!(moved, FLEET);
    std::fs::write(f.dir.join("fleet.yaml"), moved).unwrap();
    let after = seq(&f.feed(&[]));
    let before = seq(&first);
    let (mut grew, mut kept) = (0, 0);
    for (uid, (s0, start0)) in &before {
        let Some((s1, start1)) = after.get(uid) else {
            continue;
        };
        if start0 == start1 {
            assert_eq!(s0, s1, "{uid}: did not move, same SEQUENCE");
            kept += 1;
        } else {
            assert!(
                s1 > s0,
                "{uid}: moved {start0} → {start1}, SEQUENCE {s0} → {s1}"
            );
            grew += 1;
        }
    }
    let berlin = of(&first, "window", "org-a/berlin").len();
    assert!(
        grew >= berlin,
        "every Berlin window kept its UID and grew: {grew} of {berlin}"
    );
    assert!(
        kept >= of(&first, "window", "org-b/sydney").len(),
        "Sydney's stayed: {kept}"
    );
}

#[test]
fn hostile_arguments_get_clear_errors_never_a_panic() {
    let f = fleet();
    let repo = f.repo().to_owned();
    let store = f.store.to_str().unwrap().to_owned();
    // (args, what stderr names, reason)
    let cases: [(&[&str], &str, &str); 5] = [
        (&["--days", "0"], "--days", "a 0-day feed is refused"),
        (
            &["--days", "100000"],
            "--days",
            "beyond the 10-year horizon",
        ),
        (
            &["--from", "next tuesday"],
            "--from: \"next tuesday\" is not a time",
            "a bad --from",
        ),
        (
            &["--from", "9998-06-01T00:00:00Z", "--days", "3653"],
            "outside the years",
            "past year 9999",
        ),
        (
            &["--out", "/nonexistent-dir/feed.ics"],
            "writing /nonexistent-dir/feed.ics",
            "an unwritable --out",
        ),
    ];
    for (extra, want, why) in cases {
        let mut args = vec!["calendar", "--repo", &repo, "--store", &store];
        if !extra.contains(&"--from") {
            args.extend(["--from", FROM]);
        }
        args.extend_from_slice(extra);
        let out = upkeep(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{why}: {err}");
        assert!(err.contains(want), "{why}: {err}");
        assert!(!err.contains("panicked"), "{why}: {err}");
    }
    // The longest feed is written (and parses).
    let out_file = f.tmp.path().join("long.ics");
    let out = upkeep(&[
        "calendar",
        "--repo",
        &repo,
        "--store",
        &store,
        "--from",
        FROM,
        "--days",
        "3653",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(peer(&out_file).len() > 1000, "ten years of weekly windows");
    // JSON carries the same entries.
    let json = f.json(&[
        "calendar", "--repo", &repo, "--store", &store, "--from", FROM, "--days", "7", "-o", "json",
    ]);
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "window" && e["tz"] == "Europe/Berlin"),
        "{json}"
    );
}

/// `upkeep serve --repo` running until dropped; its URL.
struct Served(std::process::Child, String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(repo: &str, store: &str) -> Served {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "serve",
            "--repo",
            repo,
            "--store",
            store,
            "--addr",
            "127.0.0.1:0",
        ])
        .env_remove("UPKEEP_STORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("upkeep serve runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().trim_end_matches('/').to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "the URL: {line:?}");
    Served(child, base)
}

/// `GET path`: status and body.
fn get(base: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    if status == 200 {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/calendar"),
            "{head}"
        );
    }
    (status, body.to_owned())
}

#[test]
fn the_dashboard_serves_the_same_feed_with_filters() {
    let f = fleet();
    let store = f.store.to_str().unwrap();
    let cli = f.feed(&[]);
    let s = serve(f.repo(), store);
    let served = |query: &str| -> Vec<Value> {
        let (status, body) = get(
            &s.1,
            &format!("/calendar.ics?from={FROM}&days={DAYS}{query}"),
        );
        assert_eq!(status, 200, "{query}: {body}");
        let file = f.tmp.path().join("served.ics");
        std::fs::write(&file, body).unwrap();
        peer(&file)
    };
    let key = |e: &Value| {
        (
            e["uid"].as_str().unwrap().to_owned(),
            e["start"].as_str().unwrap().to_owned(),
            e["end"].as_str().unwrap().to_owned(),
            e["summary"].as_str().unwrap().to_owned(),
        )
    };
    let all = served("");
    assert_eq!(
        all.iter().map(key).collect::<Vec<_>>(),
        cli.iter().map(key).collect::<Vec<_>>(),
        "`upkeep serve`'s /calendar.ics is `upkeep calendar`'s feed"
    );
    let subjects = |events: &[Value]| -> std::collections::BTreeSet<String> {
        events
            .iter()
            .map(|e| e["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let org_a = served("&namespace=org-a");
    assert!(!org_a.is_empty());
    assert!(
        subjects(&org_a).iter().all(|s| s.starts_with("org-a/")),
        "namespace=org-a: {:?}",
        subjects(&org_a)
    );
    assert_eq!(
        org_a.len(),
        cli.iter()
            .filter(|e| e["subject"].as_str().unwrap().starts_with("org-a/"))
            .count(),
        "every org-a event"
    );
    // The label selector picks clusters; schedules stay.
    let none = served("&selector=stage%3Ddev");
    assert!(
        subjects(&none).iter().all(|s| !s.contains("prod-")),
        "no prod cluster with stage=dev: {:?}",
        subjects(&none)
    );
    assert!(subjects(&none).contains("org-a/berlin"), "schedules stay");
    let prod = served("&selector=stage%3Dprod");
    assert_eq!(prod.len(), all.len(), "every cluster is stage=prod");
    for (query, want) in [
        ("&bogus=1", "unknown parameter \"bogus\""),
        ("&selector=stage+in+(a)", "selector"),
    ] {
        let (status, body) = get(&s.1, &format!("/calendar.ics?from={FROM}{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body.contains(want) && body.contains("hint:"),
            "{query}: {body}"
        );
    }
    let (status, body) = get(&s.1, "/calendar.ics?days=0");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("days"), "{body}");
}

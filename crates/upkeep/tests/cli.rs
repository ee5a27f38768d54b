//! The `upkeep` binary as a user runs it: arguments in, stdout/stderr/exit code out.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn upkeep(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the upkeep binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn versions_json_shape_and_exit_codes() {
    // (range, tags, expected stdout JSON, exit code, reason)
    let cases: &[(&str, &str, &str, i32, &str)] = &[
        (
            "^1.2",
            "v1.2.3\n1.3.0\n1.4.0-rc.1\nlatest\n\n",
            r#"{"selected":"1.3.0","considered":3,"ignored":1}"#,
            0,
            "highest stable version in range; the prerelease is excluded; blank lines are not tags",
        ),
        (
            ">=1.4.0-0",
            "v1.2.3\n1.3.0\n1.4.0-rc.1\n",
            r#"{"selected":"1.4.0-rc.1","considered":3,"ignored":0}"#,
            0,
            "a prerelease comparator admits prereleases",
        ),
        (
            "^2",
            "1.0.0\n1.5.0\n",
            r#"{"selected":null,"considered":2,"ignored":0}"#,
            1,
            "nothing in range exits 1 with selected null",
        ),
        (
            "*",
            "v2.0.0\n",
            r#"{"selected":"v2.0.0","considered":1,"ignored":0}"#,
            0,
            "the original tag, with its v, is returned",
        ),
    ];
    for (range, tags, want, code, reason) in cases {
        let out = upkeep(
            &[
                "versions",
                "--range",
                range,
                "--tags-from",
                "-",
                "--output",
                "json",
            ],
            Some(tags),
        );
        assert_eq!(text(&out.stdout).trim(), *want, "{reason}");
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{reason}: stderr {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn versions_text_prints_the_tag_on_stdout_and_the_summary_on_stderr() {
    let out = upkeep(
        &["versions", "--range", "~1.2", "--tags-from", "-"],
        Some("1.2.0\n1.2.9\n1.3.0\n"),
    );
    assert_eq!(text(&out.stdout), "1.2.9\n");
    assert!(
        text(&out.stderr).contains("3 version(s) considered"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn versions_invalid_range_exits_2_with_a_hint() {
    let out = upkeep(
        &["versions", "--range", ">=1.2 <<2", "--tags-from", "-"],
        Some("1.2.0\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--range"), "names the argument: {err}");
    assert!(err.contains("hint:"), "offers a fix: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn versions_missing_file_exits_2_naming_it() {
    let out = upkeep(&["versions", "--tags-from", "no/such/tags.txt"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no/such/tags.txt"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn windows_json_merges_touching_windows_and_skips_exclusions() {
    let out = upkeep(
        &[
            "windows",
            "tests/data/berlin-weekends.yaml",
            "--from",
            "2026-12-19T12:00:00Z",
            "--next",
            "3",
            "--output",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = serde_json::json!([
        // Sat 22:00 CET → Sun 08:00 CET: the two windows touch at 04:00 and are merged.
        {"start": "2026-12-19T21:00:00Z", "end": "2026-12-20T07:00:00Z", "window": "saturday-night, sunday-morning"},
        // 26/27 December: Saturday night starts at 22:00 on the 26th, inside christmas (until the 27th 00:00).
        {"start": "2026-12-26T23:00:00Z", "end": "2026-12-27T07:00:00Z", "window": "saturday-night, sunday-morning"},
        // January is closed to majors (NoMajorUpgrades), so the next major slot is in February.
        {"start": "2027-02-06T21:00:00Z", "end": "2027-02-07T07:00:00Z", "window": "saturday-night, sunday-morning"},
    ]);
    assert_eq!(got, want);
}

#[test]
fn windows_at_says_closed_why_and_when_next() {
    let out = upkeep(
        &[
            "windows",
            "tests/data/berlin-weekends.yaml",
            "--at",
            "2027-01-09T23:00",
            "--for",
            "major",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "closed exits 1");
    let s = text(&out.stdout);
    assert!(s.contains("excluded by no-majors-in-january"), "{s}");
    assert!(s.contains("next opening: Sat 2027-02-06 22:00 CET"), "{s}");

    let out = upkeep(
        &[
            "windows",
            "tests/data/berlin-weekends.yaml",
            "--at",
            "2027-01-09T23:00",
            "--for",
            "minor",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "a minor upgrade is let through NoMajorUpgrades"
    );
    assert!(
        text(&out.stdout).contains("until Sun 2027-01-10 08:00 CET"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn windows_text_has_local_and_utc_times_and_a_timeline() {
    let out = upkeep(
        &[
            "windows",
            "tests/data/berlin-weekends.yaml",
            "--from",
            "2026-12-19T12:00:00Z",
            "--next",
            "2",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("Sat 2026-12-19 22:00 CET"), "local start: {s}");
    assert!(s.contains("2026-12-19 21:00Z"), "UTC start: {s}");
    assert!(s.contains("timeline (Europe/Berlin"), "{s}");
    assert!(s.contains("Sat 12-19"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.starts_with("  Thu 12-24") && l.contains('x')),
        "christmas shown as excluded? {s}"
    );
}

#[test]
fn invalid_schedule_is_reported_with_file_line_and_field() {
    let out = upkeep(&["validate", "tests/data/bad-schedule.yaml"], None);
    assert_eq!(out.status.code(), Some(1), "invalid manifests exit 1");
    let err = text(&out.stderr);
    assert!(
        err.contains("bad-schedule.yaml:19"),
        "file and line of the recurrence: {err}"
    );
    assert!(
        err.contains("spec.maintenanceWindows[0].recurrence"),
        "field path: {err}"
    );
    assert!(err.contains("hint:"), "{err}");

    let out = upkeep(
        &[
            "windows",
            "tests/data/bad-schedule.yaml",
            "--name",
            "broken",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "windows refuses an invalid schedule"
    );
}

#[test]
fn validate_reports_marked_fields_apply_would_refuse() {
    let out = upkeep(&["validate", "tests/data/unsafe-markers.yaml"], None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "unsafe markers make the file invalid"
    );
    let err = text(&out.stderr);
    // (line, why, reason)
    let cases = [
        (
            11,
            "spans lines 10-11",
            "issue 11: a double-quoted value over two lines",
        ),
        (
            14,
            "spans lines 13-14",
            "issue 11: a plain value over two lines",
        ),
        (
            15,
            "explicit (`?`)",
            "issue 11: a marker after an explicit key",
        ),
        (
            17,
            "anchored",
            "an anchored value: its alias would change too",
        ),
    ];
    for (line, why, reason) in cases {
        let at = format!("unsafe-markers.yaml:{line}:");
        let report = err
            .lines()
            .find(|l| l.contains(&at))
            .unwrap_or_else(|| panic!("{reason}: no error at {at}\n{err}"));
        assert!(report.contains(why), "{reason}: {report}");
    }
    assert_eq!(err.matches("  hint: ").count(), 4, "a hint each: {err}");
    assert!(
        !err.contains("unsafe-markers.yaml:19:"),
        "the safe field is not reported: {err}"
    );
    // A directory: every YAML file is checked, also those that are not Kubernetes objects
    // (values files, patches), where marked fields live as often.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("values.yaml"),
        "image:\n  tag: \"6.5\n    .4\" # {\"$upkeep\": \"flux-system:podinfo\"}\n",
    )
    .expect("write");
    let out = upkeep(&["validate", dir.path().to_str().expect("utf-8")], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("values.yaml:3:") && l.contains("spans lines 2-3")),
        "a values file's marked field is checked: {err}"
    );
}

#[test]
fn validate_accepts_the_quickstart_fleet() {
    let out = upkeep(&["validate", "../../examples/quickstart/fleet"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn quickstart_runs_offline_and_explains_each_decision() {
    let out = upkeep(&["quickstart", "--at", "2026-11-21T10:00:00Z"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "4.10.1 → 4.11.3", // ingress-nginx in prod: 4.12.0 is held by minimumReleaseAge
        "too young",
        "v1.15.4",                         // cert-manager ~1.15 picks the newest 1.15
        "6.7.0-rc.2",                      // podinfo admits prereleases
        "29.4.0",                          // cluster-aws ^29
        "waiting for stage dev to finish", // prod waits for dev (rollout core gate order)
        "prod-dublin",
    ] {
        assert!(s.contains(want), "quickstart output lacks {want:?}:\n{s}");
    }
    // The calendar: its path on stderr (stdout stays the report), a feed python's icalendar
    // reads, with the windows and the dev clusters' planned upgrades.
    let stderr = text(&out.stderr);
    assert!(
        !s.contains("calendar.ics"),
        "the path is a message, not data:\n{s}"
    );
    let path = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("wrote the example fleet's calendar ")?
                .split_once(") to ")
                .map(|(_, p)| p.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no calendar path on stderr:\n{stderr}"));
    let path = std::path::Path::new(&path);
    assert!(path.is_file(), "{} exists", path.display());
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let peer = Command::new(python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/calendar_peer.py"))
        .arg(path)
        .output()
        .expect("python3 runs (scripts/test installs python3-icalendar)");
    assert!(
        peer.status.success(),
        "python's icalendar reads it: {}",
        text(&peer.stderr)
    );
    let events: serde_json::Value = serde_json::from_slice(&peer.stdout).unwrap();
    let events = events.as_array().unwrap();
    for (category, subject) in [
        ("window", "org-acme/prod-eu"),
        ("cluster-upgrade", "org-acme/dev-frankfurt"),
    ] {
        assert!(
            events
                .iter()
                .any(|e| e["category"] == category && e["subject"] == subject),
            "a {category} of {subject} in {events:?}"
        );
    }
    let dir = path.parent().unwrap();
    if dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("upkeep-quickstart-"))
    {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn plan_lists_each_field_with_its_action_and_reason() {
    let out = upkeep(
        &[
            "plan",
            "--repo",
            "../../examples/quickstart/fleet",
            "--at",
            "2026-11-21T10:00:00Z",
            "--output",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields = plan["fields"].as_array().unwrap();
    let by_file = |f: &str| {
        fields
            .iter()
            .find(|x| x["file"] == f)
            .unwrap_or_else(|| panic!("{f} in {plan}"))
    };
    // (file, action, target, reason fragment, why)
    let cases = [
        (
            "apps/dev/podinfo.yaml",
            "write",
            "6.7.0-rc.2",
            "allowed at any time",
            "dev schedule is alwaysAllowed",
        ),
        (
            "apps/dev/cert-manager.yaml",
            "write",
            "v1.15.4",
            "dev-anytime",
            "patch in dev",
        ),
        (
            "apps/prod/ingress-nginx.yaml",
            "held",
            "4.11.3",
            "outside every maintenance window",
            "prod window closed on Saturday",
        ),
        (
            "apps/prod/ingress-nginx.yaml",
            "held",
            "4.11.3",
            "4.12.0 too young until",
            "the newer release is held by minimumReleaseAge",
        ),
    ];
    for (file, action, target, reason, why) in cases {
        let f = by_file(file);
        assert_eq!(f["action"], action, "{why}: {f}");
        assert_eq!(f["target"], target, "{why}: {f}");
        assert!(f["reason"].as_str().unwrap().contains(reason), "{why}: {f}");
    }
    let diff = plan["diff"].as_str().unwrap();
    assert!(diff.contains("-    targetRevision: '6.5.4' # {\"$upkeep\": \"flux-system:podinfo\"}\n+    targetRevision: '6.7.0-rc.2' # {\"$upkeep\": \"flux-system:podinfo\"}"), "{diff}");
    assert!(
        !diff.contains("ingress-nginx"),
        "held changes are not in the diff: {diff}"
    );

    // Inside Tuesday's window, with 4.12.0 old enough by then, production moves too.
    let out = upkeep(
        &[
            "plan",
            "--repo",
            "../../examples/quickstart/fleet",
            "--at",
            "2026-11-24T22:30:00+01:00",
            "--output",
            "json",
        ],
        None,
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = plan["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["file"] == "apps/prod/ingress-nginx.yaml")
        .unwrap();
    assert_eq!(
        (
            f["action"].as_str(),
            f["target"].as_str(),
            f["kind"].as_str()
        ),
        (Some("write"), Some("4.12.0"), Some("minor")),
        "{f}"
    );
}

#[test]
fn plan_reports_unusable_markers_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("upkeep-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        "spec:\n  version: 1.0.0 # {\"$upkeep\": \"${NS}:app\"}\n  other: 2.0.0 # {\"$upkeep\": \"default:missing\"}\n",
    )
    .unwrap();
    let out = upkeep(
        &["plan", "--repo", dir.to_str().unwrap(), "--output", "json"],
        None,
    );
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields = plan["fields"].as_array().unwrap();
    assert!(
        fields.iter().any(|f| f["line"] == 2
            && f["action"] == "error"
            && f["reason"].as_str().unwrap().contains("unresolved")),
        "{plan}"
    );
    assert!(
        fields.iter().any(|f| f["line"] == 3
            && f["reason"]
                .as_str()
                .unwrap()
                .contains("no VersionPolicy default/missing")),
        "{plan}"
    );
    assert!(
        text(&out.stderr).contains("no AppUpgradeAutomation"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn versions_reads_an_oci_layout_directory() {
    let out = upkeep(
        &[
            "versions",
            "oci-layout:../../examples/quickstart/charts/ingress-nginx",
            "--range",
            ">=4.10 <5",
            "--output",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["selected"], "4.12.0",
        "no minimumReleaseAge here: the newest in range"
    );
    let tags: Vec<&str> = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags.first(), Some(&"5.0.0-alpha.1"), "newest first");
    assert!(
        !tags.contains(&"4.12.0.sig"),
        "signature tags are excluded by default"
    );
    assert_eq!(tags.len(), 14, "15 tags in the layout, one excluded");

    let out = upkeep(&["versions", "oci-layout:no/such/dir"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no/such/dir"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_holds_fields_whose_policy_the_policy_selector_leaves_out() {
    let charts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/charts");
    let charts = charts.canonicalize().unwrap();
    let dir = std::env::temp_dir().join(format!("upkeep-plan-selector-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("apps")).unwrap();
    std::fs::write(
        dir.join("upkeep.yaml"),
        format!(
            r#"apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: podinfo, namespace: apps}}
spec: {{url: "oci-layout:{podinfo}"}}
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: certs, namespace: apps}}
spec: {{url: "oci-layout:{certs}"}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: podinfo, namespace: apps, labels: {{tier: stable}}}}
spec: {{sourceRef: {{name: podinfo}}, policy: {{semver: {{range: "^6"}}}}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: certs, namespace: apps, labels: {{tier: edge}}}}
spec: {{sourceRef: {{name: certs}}, policy: {{semver: {{range: "*"}}}}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {{name: stable-only, namespace: apps}}
spec:
  git: {{url: "file:///srv/git/fleet"}}
  path: ./apps
  commit: {{author: {{name: upkeep, email: upkeep@example.com}}}}
  policySelector: {{matchLabels: {{tier: stable}}}}
"#,
            podinfo = charts.join("podinfo").display(),
            certs = charts.join("cert-manager").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("apps/values.yaml"),
        "podinfo: 6.5.3 # {\"$upkeep\": \"apps:podinfo\"}\ncerts: v1.14.4 # {\"$upkeep\": \"apps:certs\"}\n",
    )
    .unwrap();
    let out = upkeep(
        &["plan", "--repo", dir.to_str().unwrap(), "--output", "json"],
        None,
    );
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = |line: i64| {
        plan["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["line"] == line)
            .unwrap()
            .clone()
    };
    assert_eq!(
        f(1)["action"],
        "write",
        "the selected policy is written (no schedule): {plan}"
    );
    assert_eq!(f(1)["target"], "6.6.1");
    assert_eq!(f(2)["action"], "held", "{plan}");
    assert!(
        f(2)["reason"].as_str().unwrap().contains("policySelector"),
        "{plan}"
    );
    let diff = plan["diff"].as_str().unwrap();
    assert!(diff.contains("+podinfo: 6.6.1 #"), "{diff}");
    assert!(
        !diff.contains("-certs:") && !diff.contains("+certs:"),
        "held fields are not changed: {diff}"
    );
}

#[test]
fn deploy_crds_are_what_upkeep_crds_generates() {
    let dir = tempfile::tempdir().unwrap();
    let out = upkeep(&["crds", "--out", dir.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let checked_in = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let mut generated: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    generated.sort();
    let mut present: Vec<_> = std::fs::read_dir(&checked_in)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    present.sort();
    let hint = "deploy/crds is stale: run `cargo run -- crds --out deploy/crds` and commit it";
    assert_eq!(generated, present, "{hint}");
    for name in generated {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&name)).unwrap(),
            std::fs::read_to_string(checked_in.join(&name)).unwrap(),
            "{}: {hint}",
            name.to_string_lossy()
        );
    }
}

#[test]
fn an_interval_open_since_always_has_no_start_date() {
    let out = upkeep(
        &[
            "windows",
            "../../examples/quickstart/fleet/upkeep/schedules.yaml",
            "--name",
            "dev-anytime",
            "--from",
            "2026-11-21T10:00:00Z",
            "--output",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&json[0]["start"], &json[0]["end"]),
        (&serde_json::Value::Null, &serde_json::Value::Null),
        "alwaysAllowed: open since always and for ever, not from year -9999: {json}"
    );
}

/// The design notes' ClusterUpgrade (RFC 0015), verbatim but for our apiVersion and kind:
/// `upkeep validate` accepts it, `releaseRef` with the RFC's apiVersion and kind included.
#[test]
fn validate_accepts_the_rfc_example_verbatim() {
    let out = upkeep(&["validate", "tests/data/rfc-cluster-upgrade.yaml"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

//! Loading manifests: every kind loads, and every mistake is reported at the right file, line,
//! column and field, with a hint. Inputs are small inline YAML so each case reads on its own.

use std::path::Path;

use upkeep_api::{Diagnostic, Loaded, Resource, load_path, load_str};

const FILE: &str = "fleet/schedules.yaml";

fn load(text: &str) -> Loaded {
    load_str(Path::new(FILE), text)
}

/// One expected diagnostic: line, column, field, a piece of the message, a piece of the hint,
/// and the text the byte offset must point at.
struct Want {
    line: usize,
    column: usize,
    field: &'static str,
    message: &'static str,
    hint: &'static str,
    at: &'static str,
}

fn check(name: &str, text: &str, got: &Diagnostic, want: &Want, reason: &str) {
    let ctx = format!("case {name:?} ({reason}); got:\n{got}");
    assert_eq!(got.file, Path::new(FILE), "{ctx}");
    assert_eq!(
        (got.line, got.column),
        (want.line, want.column),
        "line:column, {ctx}"
    );
    assert_eq!(got.field.as_deref(), Some(want.field), "field, {ctx}");
    assert!(
        got.message.contains(want.message),
        "message should contain {:?}, {ctx}",
        want.message
    );
    let hint = got.hint.as_deref().unwrap_or("");
    assert!(
        hint.contains(want.hint),
        "hint should contain {:?}, {ctx}",
        want.hint
    );
    let at = want
        .at
        .replace('\n', if text.contains('\r') { "\r\n" } else { "\n" });
    assert!(
        text[got.offset..].starts_with(&at),
        "offset {} should point at {:?} but points at {:?}, {ctx}",
        got.offset,
        want.at,
        &text[got.offset..text.len().min(got.offset + 20)]
    );
}

const SCHEDULE_HEAD: &str = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata:
  name: weekly
spec:
";

#[allow(clippy::type_complexity)]
fn error_cases() -> Vec<(&'static str, String, Want, &'static str)> {
    let s = |body: &str| format!("{SCHEDULE_HEAD}{body}");
    vec![
        (
            "unknown time zone",
            s("  timeZone: Europe/Atlantis\n  alwaysAllowed: true\n"),
            Want { line: 6, column: 13, field: "spec.timeZone", message: "unknown time zone \"Europe/Atlantis\"", hint: "an IANA name such as Europe/Berlin", at: "Europe/Atlantis" },
            "a misspelt zone must not silently become UTC",
        ),
        (
            "core: bad RRULE",
            s("  maintenanceWindows:\n    - name: tue\n      startTime: \"2025-01-07T02:00:00\"\n      endTime: \"2025-01-07T04:00:00\"\n      recurrence: FREQ=WEEKLY;BYDAY=XX\n"),
            Want { line: 10, column: 19, field: "spec.maintenanceWindows[0].recurrence", message: "XX", hint: "", at: "FREQ=WEEKLY;BYDAY=XX" },
            "the recurrence error points at the recurrence value, not the window",
        ),
        (
            "core: endTime before startTime",
            s("  maintenanceWindows:\n    - name: tue\n      startTime: \"2025-01-07T02:00:00\"\n      endTime: \"2025-01-07T01:00:00\"\n"),
            Want { line: 9, column: 16, field: "spec.maintenanceWindows[0].endTime", message: "not after startTime", hint: "next day", at: "\"2025-01-07T01:00:00\"" },
            "a whole-schedule error from the core is mapped under spec. and located",
        ),
        (
            "core: startTime past the last instant",
            s("  maintenanceWindows:\n    - name: late\n      startTime: \"9999-12-31T00:00:00\"\n      endTime: \"9999-12-31T01:00:00\"\n      recurrence: FREQ=DAILY\n"),
            Want { line: 8, column: 18, field: "spec.maintenanceWindows[0].startTime", message: "outside the supported range", hint: "9999-12-30T22:00:00Z", at: "\"9999-12-31T00:00:00\"" },
            "a window that could never start is refused, not accepted and then never open",
        ),
        (
            "core: endTime equal to startTime in an exclusion",
            s("  alwaysAllowed: true\n  maintenanceExclusions:\n    - name: xmas\n      startTime: \"2025-12-24T00:00:00\"\n      endTime: \"2025-12-24T00:00:00\"\n"),
            Want { line: 10, column: 16, field: "spec.maintenanceExclusions[0].endTime", message: "not after startTime", hint: "", at: "\"2025-12-24T00:00:00\"" },
            "an empty span is as wrong as a negative one, and exclusions are checked too",
        ),
        (
            "core: empty schedule",
            s("  timeZone: UTC\n"),
            Want { line: 5, column: 1, field: "spec.maintenanceWindows", message: "no windows", hint: "alwaysAllowed: true", at: "spec:" },
            "an empty schedule is an error, not an open door; reported at the nearest parent",
        ),
        (
            "bad time",
            s("  alwaysAllowed: true\n  freeze:\n    until: next tuesday\n"),
            Want { line: 8, column: 12, field: "spec.freeze.until", message: "next tuesday", hint: "RFC 3339", at: "next tuesday" },
            "each time field is parsed on its own and located",
        ),
        (
            "typo in a field name",
            s("  maintenanceWindow:\n    - name: tue\n"),
            Want { line: 6, column: 3, field: "spec.maintenanceWindow", message: "unknown field `maintenanceWindow`", hint: "did you mean `maintenanceWindows`?", at: "maintenanceWindow:" },
            "deny_unknown_fields catches typos, pointed at the key with a suggestion",
        ),
        (
            "missing field",
            s("  maintenanceWindows:\n    - name: tue\n      startTime: \"2025-01-07T02:00:00\"\n"),
            Want { line: 7, column: 7, field: "spec.maintenanceWindows[0].endTime", message: "missing field `endTime`", hint: "add `endTime`", at: "name: tue" },
            "a missing field is named in full and reported at its parent mapping",
        ),
        (
            "wrong type",
            s("  alwaysAllowed: sometimes\n"),
            Want { line: 6, column: 18, field: "spec.alwaysAllowed", message: "invalid type: string \"sometimes\"", hint: "expected a boolean", at: "sometimes" },
            "type errors from serde carry path and location",
        ),
        (
            "bad enum value",
            s("  alwaysAllowed: true\n  maintenanceExclusions:\n    - name: x\n      startTime: \"2025-12-24T00:00:00\"\n      endTime: \"2025-12-27T00:00:00\"\n      scope: NoUpgrade\n"),
            Want { line: 11, column: 14, field: "spec.maintenanceExclusions[0].scope", message: "unknown value `NoUpgrade`", hint: "did you mean `NoUpgrades`?", at: "NoUpgrade" },
            "enum typos are suggested like field typos",
        ),
        (
            "core: invalid semver range",
            "apiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {name: app}\nspec:\n  sourceRef: {name: charts}\n  policy:\n    semver:\n      range: \">=1.2 <<2\"\n".to_owned(),
            Want { line: 8, column: 14, field: "spec.policy.semver.range", message: "<<2", hint: "", at: "\">=1.2 <<2\"" },
            "the constraint parser's error and hint reach the user at the range",
        ),
        (
            "two policy kinds",
            "apiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {name: app}\nspec:\n  sourceRef: {name: charts}\n  policy:\n    semver: {range: \"^1\"}\n    alphabetical: {order: desc}\n".to_owned(),
            Want { line: 6, column: 3, field: "spec.policy", message: "semver, alphabetical", hint: "exactly one of", at: "policy:" },
            "Flux's shape allows writing two kinds; saying which two helps",
        ),
        (
            "bad minimum release age",
            "apiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {name: app}\nspec:\n  sourceRef: {name: charts}\n  policy: {numerical: {}}\n  minimumReleaseAge: 3w\n".to_owned(),
            Want { line: 7, column: 22, field: "spec.minimumReleaseAge", message: "unknown unit \"w\"", hint: "3d", at: "3w" },
            "durations accept Go units plus days, and say so",
        ),
        (
            "invalid regex in exclusionList",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ChartSource\nmetadata: {name: charts}\nspec:\n  url: oci://ghcr.io/org/charts/app\n  exclusionList:\n    - '^.*\\.sig$'\n    - '[unclosed'\n".to_owned(),
            Want { line: 8, column: 7, field: "spec.exclusionList[1]", message: "invalid regex \"[unclosed\"", hint: "escape", at: "'[unclosed'" },
            "the second list item is located, not the list",
        ),
        (
            "https source without chart",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ChartSource\nmetadata: {name: charts}\nspec:\n  url: https://charts.example.com\n".to_owned(),
            Want { line: 4, column: 1, field: "spec.chart", message: "needs a chart name", hint: "spec.chart", at: "spec:" },
            "a missing field found by validation is reported at its nearest existing parent",
        ),
        (
            "unsupported URL scheme",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ChartSource\nmetadata: {name: charts}\nspec:\n  url: s3://bucket/charts\n".to_owned(),
            Want { line: 5, column: 8, field: "spec.url", message: "unsupported URL", hint: "oci://", at: "s3://" },
            "only the three documented forms are accepted",
        ),
        (
            "invalid matcher regex",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  targetVersion: 30.1.0\n  matchers:\n    - name: dev\n      value: 'dev-(a|b'\n      isRegex: true\n".to_owned(),
            Want { line: 8, column: 14, field: "spec.matchers[0].value", message: "unclosed group", hint: "", at: "'dev-(a|b'" },
            "matcher regexes are compiled at load time, not at rollout time",
        ),
        (
            "both targetVersion and releaseRef",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  targetVersion: 30.1.0\n  releaseRef: {name: r30}\n".to_owned(),
            Want { line: 6, column: 3, field: "spec.releaseRef", message: "both", hint: "exactly one", at: "releaseRef:" },
            "exactly one target",
        ),
        (
            "releaseRef of an unknown kind",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  releaseRef:\n    kind: HelmRelease\n    name: r\n".to_owned(),
            Want { line: 6, column: 11, field: "spec.releaseRef.kind", message: "unknown kind \"HelmRelease\"", hint: "kind: Release", at: "HelmRelease" },
            "releaseRef names a VersionPolicy or a Giant Swarm Release, nothing else",
        ),
        (
            "releaseRef Release at another group",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  releaseRef:\n    apiVersion: helm.toolkit.fluxcd.io/v2\n    kind: Release\n    name: v20.1.0\n".to_owned(),
            Want { line: 6, column: 17, field: "spec.releaseRef.apiVersion", message: "not served", hint: "release.giantswarm.io/v1alpha1", at: "helm.toolkit" },
            "a Release is Giant Swarm's (or the RFC's spelling of it)",
        ),
        (
            "releaseRef VersionPolicy at another group",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  releaseRef: {apiVersion: image.toolkit.fluxcd.io/v1beta2, name: p}\n".to_owned(),
            Want { line: 5, column: 28, field: "spec.releaseRef.apiVersion", message: "VersionPolicy is not served", hint: "upkeep.dev/v1alpha1", at: "image.toolkit" },
            "no kind means VersionPolicy, which is upkeep.dev's",
        ),
        (
            "releaseRef Release with a name that is no release name",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  releaseRef: {kind: Release, name: latest}\n".to_owned(),
            Want { line: 5, column: 37, field: "spec.releaseRef.name", message: "not a Giant Swarm release name", hint: "aws-29.5.0", at: "latest" },
            "the version is read from the Release's name",
        ),
        (
            "releaseRef with an unknown field",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  releaseRef: {kind: Release, name: v20.1.0, namespace: x}\n".to_owned(),
            Want { line: 5, column: 46, field: "spec.releaseRef.namespace", message: "unknown field", hint: "apiVersion", at: "namespace" },
            "Releases are cluster-scoped: no namespace, and unknown fields are still refused",
        ),
        (
            "core: invalid target version",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  targetVersion: '30.1'\n".to_owned(),
            Want { line: 5, column: 18, field: "spec.targetVersion", message: "invalid version \"30.1\"", hint: "30.1.2", at: "'30.1'" },
            "a target must be a full version: strict SemVer as Flux reads tags",
        ),
        (
            "duplicate stage names",
            "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgradePolicy\nmetadata: {name: p}\nspec:\n  policyRef: {name: releases}\n  stages:\n    - name: dev\n    - name: dev\n".to_owned(),
            Want { line: 8, column: 13, field: "spec.stages[1].name", message: "duplicate stage name \"dev\"", hint: "unique", at: "dev\n" },
            "the repeat is reported, not the first",
        ),
        (
            "path escaping the repository",
            "apiVersion: upkeep.dev/v1alpha1\nkind: AppUpgradeAutomation\nmetadata: {name: a}\nspec:\n  git: {url: 'file:///srv/git/fleet'}\n  path: ./apps/../../etc\n  commit: {author: {name: upkeep, email: upkeep@example.com}}\n".to_owned(),
            Want { line: 6, column: 9, field: "spec.path", message: "..", hint: "inside the repository", at: "./apps/../../etc" },
            "automation must not write outside the checkout",
        ),
        (
            "unknown upkeep kind",
            "apiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicies\nmetadata: {name: p}\n".to_owned(),
            Want { line: 2, column: 7, field: "kind", message: "unknown upkeep.dev kind", hint: "did you mean VersionPolicy?", at: "VersionPolicies" },
            "the hint lists the kinds that exist",
        ),
        (
            "upkeep group without version",
            "apiVersion: upkeep.dev\nkind: VersionPolicy\nmetadata: {name: p}\n".to_owned(),
            Want { line: 1, column: 13, field: "apiVersion", message: "unknown upkeep.dev version \"\"", hint: "upkeep.dev/v1alpha1", at: "upkeep.dev\n" },
            "a bare group is an upkeep mistake, not some other kind to pass through",
        ),
        (
            "unknown upkeep version",
            "apiVersion: upkeep.dev/v1\nkind: VersionPolicy\nmetadata: {name: p}\n".to_owned(),
            Want { line: 1, column: 13, field: "apiVersion", message: "unknown upkeep.dev version \"v1\"", hint: "upkeep.dev/v1alpha1", at: "upkeep.dev/v1\n" },
            "a future or mistyped version is not silently treated as v1alpha1",
        ),
        (
            "typo at the top level",
            "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceSchedule\nmetadata: {name: p}\nsepc:\n  alwaysAllowed: true\n".to_owned(),
            Want { line: 4, column: 1, field: "sepc", message: "unknown field `sepc`", hint: "did you mean `spec`?", at: "sepc:" },
            "kube's root type ignores unknown keys; the loader must not",
        ),
        (
            "missing name",
            "apiVersion: upkeep.dev/v1alpha1\nkind: MaintenanceSchedule\nmetadata: {}\nspec: {alwaysAllowed: true}\n".to_owned(),
            Want { line: 3, column: 1, field: "metadata.name", message: "missing object name", hint: "metadata.name", at: "metadata:" },
            "objects are referenced by name",
        ),
        (
            "YAML syntax error",
            format!("{SCHEDULE_HEAD}  maintenanceWindows: [\n    {{name: a\n"),
            Want { line: 8, column: 1, field: "", message: "while parsing a flow", hint: "YAML syntax", at: "" },
            "syntax errors are located by the YAML parser",
        ),
    ]
}

#[test]
fn each_mistake_is_located_with_field_and_hint() {
    // Every case also runs as a CRLF file and as a CRLF file with a BOM (as Windows editors
    // save): lines, columns and fields must not change, and offsets must still hit the text.
    type Variant = (&'static str, fn(&str) -> String);
    let variants: [Variant; 3] = [
        ("LF", str::to_owned),
        ("CRLF", |t| t.replace('\n', "\r\n")),
        ("BOM+CRLF", |t| {
            format!("\u{feff}{}", t.replace('\n', "\r\n"))
        }),
    ];
    for (name, text, want, reason) in error_cases() {
        for (variant, transform) in variants {
            let name = &format!("{name} [{variant}]");
            let text = transform(&text);
            let loaded = load(&text);
            assert!(
                loaded.documents.is_empty(),
                "case {name:?}: a document with a diagnostic is left out ({reason})"
            );
            assert_eq!(
                loaded.diagnostics.len(),
                1,
                "case {name:?} ({reason}): expected one diagnostic, got:\n{}",
                loaded
                    .diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            let got = &loaded.diagnostics[0];
            if want.field.is_empty() {
                assert_eq!(
                    got.field, None,
                    "case {name:?}: syntax errors have no field"
                );
                assert_eq!(got.line, want.line, "case {name:?}: {got}");
                assert!(got.message.contains(want.message), "case {name:?}: {got}");
                assert!(
                    got.hint.as_deref().unwrap_or("").contains(want.hint),
                    "case {name:?}: {got}"
                );
            } else {
                check(name, &text, got, &want, reason);
            }
        }
    }
}

#[test]
fn all_field_errors_of_a_document_are_reported() {
    let text = format!(
        "{SCHEDULE_HEAD}  timeZone: Nowhere/Special\n  maintenanceWindows:\n    - name: a\n      startTime: soon\n      endTime: \"2025-01-07T04:00:00\"\n      recurrence: FREQ=SOMETIMES\n"
    );
    let loaded = load(&text);
    let fields: Vec<_> = loaded
        .diagnostics
        .iter()
        .map(|d| d.field.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.timeZone",
            "spec.maintenanceWindows[0].startTime",
            "spec.maintenanceWindows[0].recurrence"
        ],
        "one run reports every independent mistake, in file order"
    );
}

const VALID: &str = r#"apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: charts, namespace: flux-system}
spec:
  url: oci://ghcr.io/org/charts/app
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: bitnami}
spec:
  url: https://charts.bitnami.com/bitnami
  chart: nginx
  interval: 1h
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {name: local}
spec:
  url: oci-layout:./charts/app
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {name: app}
spec:
  sourceRef: {name: charts, namespace: flux-system}
  policy:
    semver: {range: ">=1.2.0 <2.0.0"}
  filterTags:
    pattern: '^v(?P<v>.*)$'
    extract: '$v'
  minimumReleaseAge: 3d
---
apiVersion: upkeep.dev/v1alpha1
kind: AppUpgradeAutomation
metadata: {name: fleet}
spec:
  git:
    url: https://git.example.com/fleet.git
    ref: {branch: main}
    secretRef: {name: git-auth}
  path: ./clusters/prod
  policySelector:
    matchLabels: {team: platform}
  commit:
    author: {name: upkeep, email: upkeep@example.com}
    messageTemplate: "Upgrade {{ .Policy }}"
  push:
    branch: upkeep/updates
    pullRequest: {provider: gitea, title: Upgrades, labels: [automated]}
  scheduleRef: {name: weekly}
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: weekly}
spec:
  timeZone: Europe/Berlin
  maintenanceWindows:
    - name: tuesday-night
      startTime: "2025-01-07T02:00:00"
      endTime: "2025-01-07T04:00:00"
      recurrence: FREQ=WEEKLY;BYDAY=TU
  maintenanceExclusions:
    - name: xmas
      startTime: "2025-12-20T00:00:00"
      endTime: "2026-01-06T00:00:00"
      scope: NoMinorUpgrades
  freeze: {until: "2025-02-01T00:00:00Z", reason: audit}
  clusterSelector:
    matchExpressions: [{key: env, operator: In, values: [prod]}]
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: to-30-1-0}
spec:
  matchers:
    - {name: dev, value: 'dev-.*', isRegex: true}
    - {name: prod-label, key: env, value: prod}
  targetVersion: 30.1.0
  startTime: "2025-03-01T09:00:00Z"
  maintenanceScheduleRef: {name: weekly}
  strategy:
    stages:
      - {name: dev, matchers: [{name: dev, value: 'dev-.*', isRegex: true}], soak: 24h}
      - {name: prod, maxConcurrency: 2}
    maxConcurrency: 5
    timeout: 2h
    failurePolicy: Continue
  after: [{name: to-30-0-0, soak: 1d}]
  trigger: GitOps
  gitOps:
    git: {url: https://git.example.com/org/fleet.git, ref: {branch: main}}
    path: clusters
    commit: {author: {name: upkeep, email: upkeep@example.com}}
    push: {branch: upkeep/to-30, pullRequest: {provider: github}}
  versionSource: topology
---
apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgradePolicy
metadata: {name: releases}
spec:
  policyRef: {name: release-chart}
  matchers: [{name: all, value: '.*', isRegex: true}]
  stages:
    - {name: dev, soak: 1d}
    - {name: prod, maxConcurrency: 1}
  approval: Manual
  maintenanceScheduleRef: {name: weekly}
  trigger: Direct
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: prod-1
  namespace: org-acme
  labels: {release.giantswarm.io/version: 29.4.0, env: prod}
  annotations: {upkeep.dev/freeze-until: "2025-02-01T00:00:00Z"}
spec:
  topology: {classRef: {name: aws}, version: v1.31.2}
  controlPlaneRef: {kind: Whatever, anything: [1, 2, 3]}
status: {phase: Provisioned}
---
apiVersion: application.giantswarm.io/v1alpha1
kind: App
metadata: {name: nginx}
spec: {anything: goes}
"#;

#[test]
fn core_every_kind_loads_and_converts() {
    let loaded = load(VALID);
    assert!(
        loaded.is_ok(),
        "valid manifests must load cleanly:\n{}",
        loaded
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let got: Vec<(&str, Option<&str>, usize)> = loaded
        .documents
        .iter()
        .map(|d| (d.resource.kind(), d.resource.name(), d.index))
        .collect();
    let want = vec![
        ("ChartSource", Some("charts"), 0),
        ("ChartSource", Some("bitnami"), 1),
        ("ChartSource", Some("local"), 2),
        ("VersionPolicy", Some("app"), 3),
        ("AppUpgradeAutomation", Some("fleet"), 4),
        ("MaintenanceSchedule", Some("weekly"), 5),
        ("ClusterUpgrade", Some("to-30-1-0"), 6),
        ("ClusterUpgradePolicy", Some("releases"), 7),
        ("Cluster", Some("prod-1"), 8),
        ("App", Some("nginx"), 9),
    ];
    assert_eq!(
        got, want,
        "every kind dispatches on apiVersion+kind, in file order"
    );
    assert!(loaded.documents.iter().all(|d| d.file == Path::new(FILE)));
    assert_eq!(
        loaded.documents[1].line, 7,
        "document line is where its content starts"
    );

    for doc in &loaded.documents {
        match &doc.resource {
            Resource::ChartSource { object, settings } => {
                use upkeep_api::chart_source::ChartLocation;
                let name = object.metadata.name.as_deref().unwrap_or_default();
                let want = match name {
                    "charts" => ChartLocation::Oci {
                        host: "ghcr.io".into(),
                        repository: "org/charts/app".into(),
                    },
                    "bitnami" => ChartLocation::Https {
                        url: "https://charts.bitnami.com/bitnami".into(),
                        chart: "nginx".into(),
                    },
                    _ => ChartLocation::OciLayout {
                        dir: "./charts/app".into(),
                    },
                };
                assert_eq!(
                    settings.location, want,
                    "{name}: the URL scheme picks the source kind"
                );
                assert_eq!(
                    object.spec.exclusion_list,
                    [r"^.*\.sig$"],
                    "{name}: default exclusion list skips signatures"
                );
                assert!(settings.exclusions[0].is_match("sha256-abc.sig"));
                let minutes = if name == "bitnami" { 60 } else { 10 };
                assert_eq!(
                    settings.interval,
                    jiff::SignedDuration::from_mins(minutes),
                    "{name}: interval default 10m"
                );
            }
            Resource::VersionPolicy { policy, .. } => {
                assert_eq!(
                    policy.minimum_release_age,
                    Some(jiff::SignedDuration::from_hours(72)),
                    "3d is 72h"
                );
                assert!(policy.filter.is_some());
                assert!(matches!(
                    policy.kind,
                    upkeep_core::version::PolicyKind::SemverRange(_)
                ));
            }
            Resource::MaintenanceSchedule { object, schedule } => {
                assert_eq!(
                    object.spec.maintenance_exclusions[0].scope,
                    upkeep_api::maintenance_schedule::ExclusionScope::NoMinorUpgrades
                );
                assert_eq!(schedule.time_zone().iana_name(), Some("Europe/Berlin"));
            }
            Resource::ClusterUpgrade(cu) => {
                assert_eq!(cu.target_version().map(|v| v.major()), Some(30));
                assert_eq!(
                    cu.spec.trigger,
                    upkeep_api::cluster_upgrade::Trigger::GitOps
                );
                assert_eq!(
                    cu.spec.git_ops.as_ref().and_then(|g| g.path.as_deref()),
                    Some("clusters")
                );
            }
            Resource::ClusterUpgradePolicy(p) => {
                assert_eq!(
                    p.spec.approval,
                    upkeep_api::cluster_upgrade_policy::Approval::Manual
                );
            }
            Resource::AppUpgradeAutomation(a) => {
                assert_eq!(a.spec.interval, "10m", "interval defaults to 10m");
                assert_eq!(
                    a.spec
                        .git
                        .reference
                        .as_ref()
                        .and_then(|r| r.branch.as_deref()),
                    Some("main")
                );
            }
            Resource::Cluster(c) => {
                assert_eq!(c.namespace.as_deref(), Some("org-acme"));
                assert_eq!(
                    c.release_version.as_deref(),
                    Some("29.4.0"),
                    "release label read"
                );
                assert_eq!(
                    c.topology_version.as_deref(),
                    Some("v1.31.2"),
                    "topology version read"
                );
                assert_eq!(
                    c.annotations
                        .get("upkeep.dev/freeze-until")
                        .map(String::as_str),
                    Some("2025-02-01T00:00:00Z")
                );
            }
            Resource::Other { api_version, .. } => {
                assert_eq!(
                    api_version, "application.giantswarm.io/v1alpha1",
                    "other kinds are passed through, not errors"
                );
            }
        }
    }
}

#[test]
fn defaults_match_the_design() {
    let text = format!("{SCHEDULE_HEAD}  alwaysAllowed: true\n");
    let loaded = load(&text);
    let Some(Resource::MaintenanceSchedule { object, .. }) =
        loaded.documents.first().map(|d| &d.resource)
    else {
        panic!("schedule should load: {:?}", loaded.diagnostics);
    };
    assert_eq!(object.spec.time_zone, "UTC", "timeZone defaults to UTC");
    let cu = load(
        "apiVersion: upkeep.dev/v1alpha1\nkind: ClusterUpgrade\nmetadata: {name: u}\nspec:\n  releaseRef: {name: r}\n",
    );
    let Some(Resource::ClusterUpgrade(cu)) = cu.documents.first().map(|d| &d.resource) else {
        panic!("upgrade should load: {:?}", cu.diagnostics);
    };
    assert_eq!(
        cu.spec.trigger,
        upkeep_api::cluster_upgrade::Trigger::Direct,
        "trigger defaults to Direct"
    );
    assert_eq!(cu.spec.version_source, None, "versionSource is optional");
}

/// Four documents; the third has a bad recurrence and the second a bad time zone.
fn multi_doc(newline: &str, bom: bool) -> String {
    let text = "# fleet schedules
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: first}
spec: {alwaysAllowed: true}
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: second}
spec:
  timeZone: Europe/Berln
  alwaysAllowed: true
---
---
apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: third}
spec:
  maintenanceWindows:
    - name: a
      startTime: \"2025-01-07T02:00:00\"
      endTime: \"2025-01-07T04:00:00\"
      recurrence: FREQ=WEEKLY;BYDAY=MO,XX
---
apiVersion: v1
kind: ConfigMap
metadata: {name: last}
";
    let text = text.replace('\n', newline);
    if bom { format!("\u{feff}{text}") } else { text }
}

#[test]
fn multi_document_errors_point_into_the_right_document() {
    let cases = [
        ("\n", false, "plain LF file"),
        (
            "\r\n",
            false,
            "CRLF file: lines and columns must not shift, offsets count the \\r",
        ),
        (
            "\n",
            true,
            "BOM: columns on line 1 unchanged, offsets index the original text",
        ),
        (
            "\r\n",
            true,
            "BOM and CRLF together, as Windows editors save",
        ),
    ];
    for (newline, bom, reason) in cases {
        let text = multi_doc(newline, bom);
        let loaded = load(&text);
        let docs: Vec<_> = loaded
            .documents
            .iter()
            .map(|d| (d.index, d.line, d.resource.name()))
            .collect();
        assert_eq!(
            docs,
            [(0, 2, Some("first")), (4, 25, Some("last"))],
            "{reason}: valid documents load (an empty document still counts in index)"
        );
        let got: Vec<_> = loaded
            .diagnostics
            .iter()
            .map(|d| (d.line, d.column, d.field.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (11, 13, "spec.timeZone"),
                (23, 19, "spec.maintenanceWindows[0].recurrence")
            ],
            "{reason}: document 2's and document 4's errors at their own lines"
        );
        assert!(
            text[loaded.diagnostics[0].offset..].starts_with("Europe/Berln"),
            "{reason}"
        );
        assert!(
            text[loaded.diagnostics[1].offset..].starts_with("FREQ=WEEKLY;BYDAY=MO,XX"),
            "{reason}"
        );
    }
}

#[test]
fn serde_error_in_document_three_points_at_its_line() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\napiVersion: upkeep.dev/v1alpha1\nkind: VersionPolicy\nmetadata: {name: c}\nspec:\n  sourceRef: {name: s}\n  policy: {numerical: {order: descending}}\n";
    let loaded = load(text);
    assert_eq!(
        loaded.documents.len(),
        2,
        "the two good documents still load"
    );
    let d = &loaded.diagnostics[0];
    assert_eq!(
        (d.line, d.field.as_deref()),
        (14, Some("spec.policy.numerical.order")),
        "{d}"
    );
    assert!(d.hint.as_deref().unwrap_or("").contains("asc, desc"), "{d}");
}

#[test]
fn diagnostic_display_is_file_line_column_field_message_and_hint() {
    let text = format!("{SCHEDULE_HEAD}  timeZone: Mars/Olympus\n  alwaysAllowed: true\n");
    let loaded = load(&text);
    assert_eq!(
        loaded.diagnostics[0].to_string(),
        "fleet/schedules.yaml:6:13: spec.timeZone: unknown time zone \"Mars/Olympus\"\nhint: an IANA name such as Europe/Berlin",
        "the format editors and CI logs recognise"
    );
}

#[test]
fn non_resources_and_empty_documents_are_skipped() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("", 0, 0, "an empty file"),
        ("---\n---\n# only a comment\n", 0, 0, "empty documents"),
        (
            "replicaCount: 2\nimage: {tag: 1.2.3}\n",
            0,
            0,
            "a Helm values file in a GitOps tree is not a resource",
        ),
        ("- a\n- b\n", 0, 0, "a top-level list is not a resource"),
        (
            "kind: MaintenanceSchedule\nmetadata: {name: x}\n",
            0,
            1,
            "a resource with kind but no apiVersion is a mistake",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\n",
            1,
            0,
            "any other kind passes through",
        ),
    ];
    for &(text, docs, diags, reason) in cases {
        let loaded = load(text);
        assert_eq!(
            (loaded.documents.len(), loaded.diagnostics.len()),
            (docs, diags),
            "{reason}: {:?}",
            loaded.diagnostics
        );
    }
}

#[test]
fn load_path_walks_directories_in_sorted_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tree");
    let loaded = load_path(&root);
    let names: Vec<_> = loaded
        .documents
        .iter()
        .filter_map(|d| d.resource.name())
        .collect();
    assert_eq!(
        names,
        ["a-schedule", "b-policy", "c-nested", "d-yml"],
        "sorted by path, recursive, .yml included; hidden dirs and non-YAML files skipped"
    );
    assert_eq!(loaded.diagnostics.len(), 1, "{:?}", loaded.diagnostics);
    let d = &loaded.diagnostics[0];
    assert!(
        d.file.ends_with("testdata/tree/sub/z-bad.yaml"),
        "diagnostics name the file: {d}"
    );
    assert_eq!(
        (d.line, d.field.as_deref()),
        (5, Some("spec.interval")),
        "{d}"
    );

    let single = load_path(&root.join("a.yaml"));
    assert_eq!(single.documents.len(), 1, "a file path loads that file");
    let missing = load_path(&root.join("nope.yaml"));
    assert!(
        missing.diagnostics[0].message.starts_with("cannot read"),
        "a missing file is a diagnostic, not a panic"
    );
}

#[test]
fn truncated_input_never_panics() {
    // Every prefix of a valid multi-kind file (cut mid-key, mid-value, mid-document) must
    // come back as documents and diagnostics, never a panic; and a cut file is never silently
    // accepted with more documents than it has.
    let mut boundaries: Vec<usize> = VALID.char_indices().map(|(i, _)| i).step_by(13).collect();
    boundaries.push(VALID.len());
    for cut in boundaries {
        let loaded = load(&VALID[..cut]);
        assert!(loaded.documents.len() <= 10, "cut at {cut}");
        for d in &loaded.diagnostics {
            assert!(
                d.offset <= cut && d.line >= 1 && d.column >= 1,
                "cut at {cut}: {d}"
            );
        }
    }
}

#[test]
fn crds_are_generated_for_every_kind() {
    let crds = upkeep_api::crds();
    let names: Vec<_> = crds
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "chartsources.upkeep.dev",
            "versionpolicies.upkeep.dev",
            "appupgradeautomations.upkeep.dev",
            "maintenanceschedules.upkeep.dev",
            "clusterupgrades.upkeep.dev",
            "clusterupgradepolicies.upkeep.dev",
            "clusterupgraderecords.upkeep.dev",
        ],
        "one namespaced CRD per kind in group upkeep.dev"
    );
    assert!(
        crds.iter()
            .all(|c| c.spec.scope == "Namespaced" && c.spec.versions[0].name == "v1alpha1")
    );
}

/// The design notes' (RFC 0015 "Automatic workload cluster upgrades") ClusterUpgrade, verbatim
/// but for our apiVersion and kind (the RFC leaves `apiVersion:` empty): it loads, and
/// `releaseRef` keeps the apiVersion and kind the RFC wrote, naming a Giant Swarm Release.
/// (Kept in `tests/data/` so the controller's tests apply the same text to a real server.)
pub const RFC_EXAMPLE: &str = include_str!("data/rfc0015_cluster_upgrade.yaml");

#[test]
fn the_rfc_example_loads_unchanged() {
    let loaded = load(RFC_EXAMPLE);
    assert!(loaded.is_ok(), "{:?}", loaded.diagnostics);
    let Some(Resource::ClusterUpgrade(cu)) = loaded.documents.first().map(|d| &d.resource) else {
        panic!("a ClusterUpgrade: {:?}", loaded.documents);
    };
    let r = cu.spec.release_ref.as_ref().expect("releaseRef");
    assert_eq!(
        (r.api_version.as_deref(), r.kind.as_deref(), r.name.as_str()),
        (
            Some("application.giantswarm.io/v1alpha1"),
            Some("Release"),
            "v1.20.0"
        ),
        "apiVersion and kind are kept as written"
    );
    assert_eq!(r.release_name(), Some("v1.20.0"), "a Giant Swarm Release");
    assert_eq!(
        cu.spec.start_time.as_deref(),
        Some("2021-03-10T07:00:00Z"),
        "an unquoted timestamp is read as its text"
    );
    assert_eq!(cu.spec.matchers.len(), 2);
    assert!(cu.spec.matchers[1].is_regex && cu.spec.matchers[1].key.as_deref() == Some("stage"));
}

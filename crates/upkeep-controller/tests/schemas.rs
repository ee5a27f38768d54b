//! What a platform engineer's kubectl makes of upkeep's CRDs on a real kube-apiserver 1.20.2
//! (upkeep-testenv): a typo at any nesting level of any kind is refused, naming the field;
//! `kubectl explain` lists every nested field with its type; the defaults that matter are in
//! the stored object; and the printer columns read right (`kubectl get upkeep`).
//!
//! The 1.20 server has no server-side field validation, so kubectl validates on the client
//! against the OpenAPI v2 the server publishes for each CRD — Debian's kubectl 1.20 (the
//! testenv's) by default, a current one (the `kubectl` on `PATH`, when 1.25 or later) with
//! `--validate=strict` too — which is why a field published untyped (`nullable`, see
//! `upkeep_api::crds`) let every typo below it through. The objects are generated from the published schemas, not written by hand, so a
//! new field or kind is covered without touching this file.

mod support;
use support::{Running, api_server_with_crds, client, eventually};

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};
use upkeep_api::MaintenanceSchedule;
use upkeep_controller::framework::Context;
use upkeep_controller::schedule::run_schedules;
use upkeep_testenv::KubeUser;

/// One step from an object schema to a nested object schema.
#[derive(Clone, Debug)]
enum Step {
    Field(String),
    /// The (first) item of an array of objects.
    Item,
}

/// The paths from `schema` to every object-typed node below it (itself included): properties
/// and array items, not map values (a map's keys are free, so no key is a typo).
fn object_levels(schema: &Value, path: &[Step], out: &mut Vec<Vec<Step>>) {
    if schema["type"] == "object" && schema["properties"].is_object() {
        out.push(path.to_vec());
        for (name, child) in schema["properties"].as_object().into_iter().flatten() {
            let mut p = path.to_vec();
            p.push(Step::Field(name.clone()));
            object_levels(child, &p, out);
        }
    }
    if schema["type"] == "array" {
        let mut p = path.to_vec();
        p.push(Step::Item);
        object_levels(&schema["items"], &p, out);
    }
}

/// The smallest value `schema` accepts: required properties only, the first enum value, a
/// valid date-time.
fn minimal(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") => {
            let mut out = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().expect("a property name");
                out.insert(name.to_owned(), minimal(&schema["properties"][name]));
            }
            Value::Object(out)
        }
        Some("array") => json!([]),
        Some("string") if schema["format"] == "date-time" => json!("2026-01-01T00:00:00Z"),
        Some("string") => json!("x"),
        Some("integer") => json!(1),
        Some("number") => json!(1.5),
        Some("boolean") => json!(false),
        other => panic!("an untyped schema ({other:?}): {schema}"),
    }
}

/// Makes sure `value` (valid for `schema`) reaches down `path`, creating the minimal object
/// (or a one-item array) at each step, and returns the object at its end.
fn reach<'a>(value: &'a mut Value, schema: &Value, path: &[Step]) -> &'a mut Map<String, Value> {
    let Some((step, rest)) = path.split_first() else {
        return value.as_object_mut().expect("an object level");
    };
    match step {
        Step::Field(name) => {
            let child = &schema["properties"][name];
            let object = value.as_object_mut().expect("an object");
            let next = object.entry(name.clone()).or_insert_with(|| minimal(child));
            reach(next, child, rest)
        }
        Step::Item => {
            let items = &schema["items"];
            let array = value.as_array_mut().expect("an array");
            if array.is_empty() {
                array.push(minimal(items));
            }
            reach(&mut array[0], items, rest)
        }
    }
}

/// How kubectl names a level in a validation error: `ClusterUpgrade.spec.strategy.stages[0]`.
fn kubectl_path(kind: &str, path: &[Step]) -> String {
    let mut out = kind.to_owned();
    for step in path {
        match step {
            Step::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Step::Item => out.push_str("[0]"),
        }
    }
    out
}

/// The objects to apply for one CRD: for each level, `(kubectl's name of the level, the
/// object without a typo, the object with the unknown field `typo` at that level)`.
fn objects(crd: &Value) -> Vec<(String, String, Value, Value)> {
    let kind = crd["spec"]["names"]["kind"].as_str().expect("kind");
    let api_version = format!(
        "{}/{}",
        crd["spec"]["group"].as_str().expect("group"),
        crd["spec"]["versions"][0]["name"]
            .as_str()
            .expect("version")
    );
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut levels = Vec::new();
    object_levels(schema, &[], &mut levels);
    levels
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let mut valid = minimal(schema);
            reach(&mut valid, schema, path);
            valid["apiVersion"] = json!(api_version);
            valid["kind"] = json!(kind);
            valid["metadata"] = json!({
                "name": format!("{}-{i}", kind.to_lowercase()),
                "namespace": "default",
            });
            let mut typo = valid.clone();
            let typo_name = format!("upkeepTypo{i}");
            reach(&mut typo, schema, path).insert(typo_name.clone(), json!("x"));
            (kubectl_path(kind, path), typo_name, valid, typo)
        })
        .collect()
}

/// The `kubectl` on `PATH` when it is 1.25 or later (it knows `--validate=strict`): users
/// run current kubectls against old servers. `None` (and a note) when there is none.
#[allow(
    clippy::print_stderr,
    reason = "says which kubectls the test tried, where cargo test shows it"
)]
fn current_kubectl() -> Option<String> {
    let out = std::process::Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    let version: Value = serde_json::from_slice(&out.stdout).ok()?;
    let minor: u32 = version["clientVersion"]["minor"]
        .as_str()?
        .trim_end_matches('+')
        .parse()
        .ok()?;
    if minor >= 25 {
        Some("kubectl".to_owned())
    } else {
        eprintln!("note: no kubectl 1.25+ on PATH; only Debian's kubectl 1.20 is tried");
        None
    }
}

/// Runs `kubectl` (a path or a name on `PATH`) against `server` as the admin, `stdin` fed in:
/// whether it succeeded, and its stdout and stderr.
fn run(
    kubectl: &str,
    server: &upkeep_testenv::KubeApiServer,
    args: &[&str],
    stdin: &str,
) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(server.admin_kubeconfig())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("kubectl ends");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Waits until the server's OpenAPI document has every upkeep kind: the server publishes a
/// CRD's schema a moment after the CRD is Established, and kubectl validates against it.
async fn openapi_published(server: &upkeep_testenv::KubeApiServer) {
    for crd in upkeep_api::crds() {
        let kind = crd.spec.names.singular.clone().unwrap_or_default();
        eventually(
            async || server.kubectl(&["explain", &kind]).is_ok(),
            |ok| *ok,
            &format!("kubectl explain {kind}"),
        )
        .await;
    }
}

fn documents(objects: impl Iterator<Item = Value>) -> String {
    objects
        .map(|o| format!("---\n{o}\n"))
        .collect::<Vec<_>>()
        .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_refuses_a_typo_at_every_level_of_every_kind() {
    let server = api_server_with_crds().await;
    openapi_published(&server).await;
    let current = current_kubectl();
    let mut levels = 0;
    for crd in upkeep_api::crds() {
        let crd = serde_json::to_value(&crd).expect("json");
        let objects = objects(&crd);
        levels += objects.len();

        // Without the typos: every object is accepted (the server's own checks included).
        let applied = server
            .kubectl_stdin(
                &["apply", "--dry-run=server", "-o", "name", "-f", "-"],
                &documents(objects.iter().map(|o| o.2.clone())),
            )
            .unwrap_or_else(|e| panic!("the valid objects apply: {e}"));
        assert_eq!(applied.lines().count(), objects.len(), "{applied}");

        // With one: refused, naming the field and where it is — by Debian's kubectl 1.20
        // (validation on by default), and by a current kubectl with `--validate=strict` (the
        // server has no field validation, so it validates on the client too). kubectl stops
        // at the first invalid document, so one object per call.
        for (at, field, _, typo) in &objects {
            let wanted = format!("ValidationError({at}): unknown field \"{field}\"");
            let refused = match server
                .kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &typo.to_string())
            {
                Err(upkeep_testenv::TestEnvError::Invalid { text, .. }) => text,
                other => panic!("kubectl 1.20: a typo at {at} is refused: {other:?}"),
            };
            assert!(
                refused.contains(&wanted),
                "kubectl 1.20: {wanted} in\n{refused}"
            );
            // (Since 1.25 `--validate=true` means `strict`.)
            if let Some(kubectl) = &current {
                let (ok, refused) = run(
                    kubectl,
                    &server,
                    &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
                    &typo.to_string(),
                );
                assert!(
                    !ok && refused.contains(&wanted),
                    "{kubectl} --validate=strict: {wanted} in\n{refused}"
                );
            }
        }
    }
    // ChartSource alone has spec, status, status.lastScan, status.conditions[]: the walk
    // reached the nested levels (ClusterUpgrade has more than 30).
    assert!(levels > 60, "{levels} levels");
}

/// The `<type>` kubectl explain (OpenAPI v2) shows for `schema`.
fn explain_type(schema: &Value) -> String {
    match schema["type"].as_str().expect("typed") {
        "object" if schema["additionalProperties"].is_object() => format!(
            "map[string]{}",
            explain_type(&schema["additionalProperties"])
        ),
        "object" => "Object".to_owned(),
        "array" => format!("[]{}", explain_type(&schema["items"])),
        other => other.to_owned(),
    }
}

/// `(name, type)` of every property below `schema`, at any depth.
fn fields(schema: &Value, out: &mut Vec<(String, String)>) {
    for (name, child) in schema["properties"].as_object().into_iter().flatten() {
        out.push((name.clone(), explain_type(child)));
        fields(child, out);
    }
    if schema["items"].is_object() {
        fields(&schema["items"], out);
    }
}

/// Whether `explain` has a line `name <type>`.
fn lists(explain: &str, name: &str, ty: &str) -> bool {
    explain.lines().any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some(name) && words.next() == Some(&format!("<{ty}>"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_shows_every_nested_field_with_its_type() {
    let server = api_server_with_crds().await;
    openapi_published(&server).await;
    for crd in upkeep_api::crds() {
        let crd = serde_json::to_value(&crd).expect("json");
        let kind = crd["spec"]["names"]["singular"].as_str().expect("singular");
        let explain = server
            .kubectl(&["explain", kind, "--recursive"])
            .expect("explain");
        let mut all = Vec::new();
        fields(
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            &mut all,
        );
        for (name, ty) in all {
            assert!(
                lists(&explain, &name, &ty),
                "{kind}: {name} <{ty}> in\n{explain}"
            );
        }
    }

    // Deep paths, with their descriptions.
    // (path, field, type, words of its description, reason)
    let cases = [
        (
            "clusterupgrade.spec.strategy",
            "timeout",
            "string",
            "default `2h`",
            "the issue's example: strategy showed nothing",
        ),
        (
            "clusterupgrade.spec.strategy.stages.matchers",
            "isRegex",
            "boolean",
            "must match the whole",
            "three levels below a nullable field once",
        ),
        (
            "maintenanceschedule.spec.maintenanceWindows",
            "recurrence",
            "string",
            "RFC 5545 RRULE",
            "recurrence showed <>",
        ),
        (
            "maintenanceschedule.status",
            "summary",
            "string",
            "at a glance",
            "the WINDOW column's field",
        ),
        (
            "versionpolicy.spec.policy",
            "semver",
            "Object",
            "SemVer range",
            "a one-of-three choice is typed",
        ),
    ];
    for (path, field, ty, words, why) in cases {
        let explain = server.kubectl(&["explain", path]).expect("explain");
        assert!(lists(&explain, field, ty), "{why}: {path}\n{explain}");
        assert!(explain.contains(words), "{why}: {path}\n{explain}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_and_nulls_on_the_real_server() {
    let server = api_server_with_crds().await;
    let client = client(&server, KubeUser::Admin).await;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::discovery::ApiResource::erase::<upkeep_api::ClusterUpgrade>(&()),
    );
    // Without a strategy, and with an explicit null (a client that writes absent fields as
    // null): the stored object has the strategy's defaults and no null.
    let object: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "upkeep.dev/v1alpha1", "kind": "ClusterUpgrade",
        "metadata": {"name": "plain", "namespace": "default"},
        "spec": {"matchers": [{"name": "all", "value": ".*", "isRegex": true}],
                 "targetVersion": "30.1.0", "startTime": null},
    }))
    .expect("object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
    let stored = api.get("plain").await.expect("get");
    assert_eq!(
        stored.data["spec"]["strategy"],
        json!({"timeout": "2h", "failurePolicy": "Halt"}),
        "the defaults that apply are in the stored object"
    );
    assert!(
        stored.data["spec"].get("startTime").is_none(),
        "a null is pruned, not stored: {}",
        stored.data["spec"]
    );
    // A strategy given in part keeps what was given and gets the rest.
    api.patch(
        "plain",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"strategy": {"timeout": "45m", "maxConcurrency": 2}}})),
    )
    .await
    .expect("patch");
    let stored = api.get("plain").await.expect("get");
    assert_eq!(
        stored.data["spec"]["strategy"],
        json!({"timeout": "45m", "maxConcurrency": 2, "failurePolicy": "Halt"})
    );
    // A merge patch's null deletes a key (how status writes clear a field).
    let typed: Api<upkeep_api::ClusterUpgrade> = Api::namespaced(client.clone(), "default");
    typed
        .patch_status(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": "Running", "toRelease": "30.1.0"}})),
        )
        .await
        .expect("status");
    typed
        .patch_status(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": null}})),
        )
        .await
        .expect("status with a null");
    let status = typed
        .get("plain")
        .await
        .expect("get")
        .status
        .expect("status");
    assert_eq!(
        (status.state, status.to_release.as_deref()),
        (None, Some("30.1.0"))
    );
}

/// The rows of a `kubectl get` table, each cell cut at its header's column (cells hold
/// blanks: `open until 12:00`).
fn table(text: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for word in header.split("   ").map(str::trim).filter(|w| !w.is_empty()) {
        let i = header[at..].find(word).expect("in the header") + at;
        starts.push((i, word));
        at = i + word.len();
    }
    lines
        .map(|line| {
            starts
                .iter()
                .enumerate()
                .map(|(n, (start, name))| {
                    let end = starts.get(n + 1).map_or(line.len(), |s| s.0);
                    let cell = line.get(*start..end.min(line.len())).unwrap_or_default();
                    ((*name).to_owned(), cell.trim().to_owned())
                })
                .collect()
        })
        .collect()
}

fn cell<'a>(rows: &'a [Vec<(String, String)>], name: &str, column: &str) -> &'a str {
    rows.iter()
        .find(|r| {
            r.first()
                .is_some_and(|c| c.1 == name || c.1.ends_with(&format!("/{name}")))
        })
        .and_then(|r| r.iter().find(|c| c.0 == column))
        .map_or_else(|| panic!("{name} {column} in {rows:?}"), |c| c.1.as_str())
}

fn schedule(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {{name: {name}, namespace: default}}
spec: {spec}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printer_columns_read_right() {
    let server = api_server_with_crds().await;
    let client = client(&server, KubeUser::Admin).await;
    let windows = "{timeZone: Europe/Berlin, maintenanceWindows: [{name: tuesday-night, \
                   startTime: 2026-01-06T22:00:00, endTime: 2026-01-07T02:00:00, \
                   recurrence: FREQ=WEEKLY;BYDAY=TU}]}";
    let yaml = [
        schedule("always", "{alwaysAllowed: true}"),
        schedule("weekly", windows),
        schedule(
            "frozen",
            "{timeZone: Europe/Berlin, alwaysAllowed: true, freeze: {until: 2026-12-01T09:00:00}}",
        ),
        schedule(
            "past",
            "{maintenanceWindows: [{name: once, startTime: 2020-01-01T00:00:00, endTime: 2020-01-01T01:00:00}]}",
        ),
    ]
    .join("---\n");
    support::apply(&server, &yaml);

    // Sunday 2026-11-22 16:30Z: the Tuesday window opens at 21:00Z, in 2d 4h 30m.
    let now: Timestamp = "2026-11-22T16:30:00Z".parse().unwrap();
    let ctx = Arc::new(Context::new(client.clone()).with_clock(move || now));
    let controller = Running::spawn(|shutdown| run_schedules(ctx, shutdown));
    let api: Api<MaintenanceSchedule> = Api::namespaced(client.clone(), "default");
    for name in ["always", "weekly", "frozen", "past"] {
        eventually(
            async || api.get(name).await.expect("get").status,
            |s| s.as_ref().is_some_and(|s| s.summary.is_some()),
            name,
        )
        .await;
    }
    let got = server
        .kubectl(&["get", "maintenanceschedules", "-n", "default"])
        .expect("get");
    let rows = table(&got);
    // (schedule, WINDOW, reason)
    let cases = [
        (
            "always",
            "always",
            "alwaysAllowed: not <unknown> from 0001-01-01",
        ),
        ("weekly", "in 2d 4h", "a future window: not <invalid>"),
        (
            "frozen",
            "frozen until 2026-12-01 09:00",
            "a freeze, in Berlin time",
        ),
        ("past", "none", "nothing ahead"),
    ];
    for (name, window, why) in cases {
        assert_eq!(cell(&rows, name, "WINDOW"), window, "{why}\n{got}");
        assert_eq!(cell(&rows, name, "READY"), "True", "{why}\n{got}");
        assert!(!cell(&rows, name, "TIME ZONE").is_empty(), "{got}");
    }
    controller.stop().await;

    // Tuesday 22:30 Berlin: the window is open, until 02:00 tomorrow there.
    let now: Timestamp = "2026-11-24T21:30:00Z".parse().unwrap();
    let ctx = Arc::new(Context::new(client.clone()).with_clock(move || now));
    let controller = Running::spawn(|shutdown| run_schedules(ctx, shutdown));
    eventually(
        async || api.get("weekly").await.expect("get").status,
        |s| s.as_ref().and_then(|s| s.summary.as_deref()) != Some("in 2d 4h"),
        "the open window",
    )
    .await;
    controller.stop().await;

    // A ClusterUpgrade as its controller leaves it, to see its columns.
    support::apply(
        &server,
        "apiVersion: upkeep.dev/v1alpha1
kind: ClusterUpgrade
metadata: {name: to-30, namespace: default}
spec:
  matchers: [{name: all, value: '.*', isRegex: true}]
  releaseRef: {name: aws-latest}
",
    );
    let upgrades: Api<upkeep_api::ClusterUpgrade> = Api::namespaced(client.clone(), "default");
    upgrades
        .patch_status(
            "to-30",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": "Running", "toRelease": "30.1.0"}})),
        )
        .await
        .expect("status");

    // `kubectl get upkeep`: every kind of the category, each in its own table.
    let got = server
        .kubectl(&["get", "upkeep", "-n", "default"])
        .expect("get upkeep");
    let tables: Vec<&str> = got.split("\n\n").collect();
    let schedules = table(
        tables
            .iter()
            .find(|t| t.contains("maintenanceschedule.upkeep.dev/"))
            .expect("schedules"),
    );
    assert_eq!(
        cell(&schedules, "weekly", "WINDOW"),
        "open until 2026-11-25 02:00",
        "{got}"
    );
    let upgrades = tables
        .iter()
        .find(|t| t.contains("clusterupgrade.upkeep.dev/"))
        .expect("upgrades");
    let header: Vec<&str> = upgrades
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "TARGET", "STATE", "PROGRESS", "REASON", "AGE"],
        "{got}"
    );
    let rows = table(upgrades);
    assert_eq!(
        (
            cell(&rows, "to-30", "TARGET"),
            cell(&rows, "to-30", "STATE")
        ),
        ("30.1.0", "Running"),
        "the resolved target and the state\n{got}"
    );
}

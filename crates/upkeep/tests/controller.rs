//! `upkeep controller` as a process against a real kube-apiserver 1.20.2: it takes the Lease
//! under its pod name, logs JSON lines, and on SIGTERM releases the Lease and exits 0 within
//! seconds. Against an audited API server: every request it sends carries the User-Agent
//! `upkeep/<version>` and every write its field manager, an invalid spec is one Warning Event
//! and one warn line, and `--log-format text` into a file has no colour codes.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upkeep_testenv::{KubeApiServer, KubeUser, upkeep_crds};

fn lease_holder(server: &KubeApiServer) -> String {
    server
        .kubectl(&[
            "get",
            "lease",
            "upkeep-controller",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_lease_and_exits_zero() {
    let server = KubeApiServer::start_with_crds(&[&upkeep_crds()])
        .await
        .expect("kube-apiserver with the CRDs established");
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "controller",
            "--lease-namespace",
            "default",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("POD_NAME", "upkeep-test-pod")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn upkeep controller");

    let deadline = Instant::now() + Duration::from_secs(30);
    while lease_holder(&server) != "upkeep-test-pod" {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the controller exited early"
        );
        assert!(
            Instant::now() < deadline,
            "the controller never took the Lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stopping = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(8),
            "the controller did not exit within seconds of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit code 0 on SIGTERM: {status:?}");
    assert_eq!(
        lease_holder(&server),
        "",
        "the Lease is released so a successor takes it at once"
    );

    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
        })
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for (wanted, why) in [
        ("campaigning for the Lease", "the start is logged"),
        ("leading: starting controllers", "winning is logged"),
        ("shutting down", "the signal is logged"),
        ("released the Lease", "the release is logged"),
        ("stopped", "the end is logged"),
    ] {
        assert!(
            messages.contains(&wanted),
            "{why}: {wanted:?} not in {messages:?}"
        );
    }
    assert!(
        lines.iter().all(|l| l["level"].is_string()),
        "every line has a level"
    );
}

/// A MaintenanceSchedule whose time zone does not exist: an invalid spec.
const INVALID_SCHEDULE: &str = "apiVersion: upkeep.dev/v1alpha1
kind: MaintenanceSchedule
metadata: {name: mars, namespace: default}
spec:
  timeZone: Mars/Olympus_Mons
  maintenanceWindows:
    - {name: w, startTime: 2026-01-06T22:00:00, endTime: 2026-01-07T02:00:00, recurrence: FREQ=WEEKLY}
";

/// `kubectl get … -o json` as a value.
fn get_json(server: &KubeApiServer, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&server.kubectl(&all).expect("kubectl get")).expect("json")
}

/// The managers of an object's `managedFields`.
fn managers(object: &serde_json::Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m["manager"].as_str().map(str::to_owned))
        .collect()
}

/// The InvalidSpec Warning Events about the schedule `mars`.
fn invalid_spec_events(server: &KubeApiServer) -> Vec<serde_json::Value> {
    get_json(server, &["events.events.k8s.io", "-n", "default"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["reason"] == "InvalidSpec" && e["regarding"]["name"] == "mars")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_name_upkeep_and_an_invalid_spec_is_one_warning() {
    let server = KubeApiServer::start_audited_with_crds(&[&upkeep_crds()])
        .await
        .expect("an audited kube-apiserver with the CRDs established");
    // The controller runs as its own user, so the audit log tells its requests from kubectl's.
    server
        .kubectl(&[
            "create",
            "clusterrolebinding",
            "upkeep-controller-test",
            "--clusterrole=cluster-admin",
            &format!("--user={}", KubeUser::Controller.name()),
        ])
        .expect("bind the controller user");
    server
        .kubectl_stdin(&["apply", "-f", "-"], INVALID_SCHEDULE)
        .expect("schedule applied");
    let tmp = tempfile::tempdir().expect("tempdir");
    let kubeconfig = tmp.path().join("controller.kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, KubeUser::Controller)
        .expect("kubeconfig");
    let log = tmp.path().join("controller.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "controller",
            "--lease-namespace",
            "default",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAME", "upkeep-ua-pod")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn upkeep controller");

    let deadline = Instant::now() + Duration::from_secs(60);
    let stalled = |server: &KubeApiServer| {
        get_json(server, &["maintenanceschedules", "mars", "-n", "default"])["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Stalled" && c["status"] == "True")
            })
    };
    while !(stalled(&server)
        && !invalid_spec_events(&server).is_empty()
        && lease_holder(&server) == "upkeep-ua-pod")
    {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the controller exited early"
        );
        assert!(
            Instant::now() < deadline,
            "no Stalled status, InvalidSpec Event and Lease: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A change that is no new generation reconciles the schedule again: no second Warning.
    server
        .kubectl(&[
            "annotate",
            "maintenanceschedules",
            "mars",
            "-n",
            "default",
            "touched=1",
        ])
        .expect("annotate");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the controller exits on SIGTERM");
    assert!(status.success(), "{status:?}");

    // Logs into a file: plain text, no ANSI escape codes; the invalid spec logged once at warn.
    let bytes = std::fs::read(&log).expect("log");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !bytes.contains(&0x1b),
        "no escape codes in a log file: {text}"
    );
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("stalled: the spec must change"))
        .collect();
    assert_eq!(
        warned.len(),
        1,
        "one warn line for the invalid spec: {text}"
    );
    assert!(
        warned[0].contains("WARN") && warned[0].contains("Mars/Olympus_Mons"),
        "at warn, with the field's problem: {}",
        warned[0]
    );

    // One Warning Event, with the field and the hint, written as the controller.
    let events = invalid_spec_events(&server);
    assert_eq!(events.len(), 1, "one Warning Event: {events:#?}");
    assert_eq!(events[0]["type"], "Warning");
    assert!(
        events[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains("spec.timeZone")),
        "the note names the field: {}",
        events[0]["note"]
    );

    // Every write names its field manager: the status, the Event, the Lease.
    let schedule = get_json(&server, &["maintenanceschedules", "mars", "-n", "default"]);
    let lease = get_json(&server, &["lease", "upkeep-controller", "-n", "default"]);
    for (what, object) in [
        ("schedule status", &schedule),
        ("Event", &events[0]),
        ("Lease", &lease),
    ] {
        let managers = managers(object);
        let ours: Vec<&String> = managers
            .iter()
            .filter(|m| !m.starts_with("kubectl"))
            .collect();
        assert!(
            !ours.is_empty() && ours.iter().all(|m| *m == "upkeep-controller"),
            "{what}: written as upkeep-controller, not as the User-Agent's `upkeep` or nobody: {managers:?}"
        );
    }

    // Every request of the controller, as the API server saw it, says who sent it.
    let agent = format!("upkeep/{}", env!("CARGO_PKG_VERSION"));
    let audit = server.audit_events();
    let mine: Vec<&serde_json::Value> = audit
        .iter()
        .filter(|e| e["user"]["username"] == KubeUser::Controller.name())
        .collect();
    let verbs: std::collections::BTreeSet<&str> =
        mine.iter().filter_map(|e| e["verb"].as_str()).collect();
    for verb in ["create", "patch", "update", "list", "watch"] {
        assert!(
            verbs.contains(verb),
            "the controller's {verb} requests were audited: {verbs:?}"
        );
    }
    let strangers: Vec<String> = mine
        .iter()
        .filter(|e| e["userAgent"] != agent.as_str())
        .map(|e| format!("{} {} ({})", e["verb"], e["requestURI"], e["userAgent"]))
        .collect();
    assert!(
        strangers.is_empty(),
        "requests without User-Agent {agent}: {strangers:#?}"
    );
}

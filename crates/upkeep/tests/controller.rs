//! `upkeep controller` as a process against a real kube-apiserver 1.20.2: it takes the Lease
//! under its pod name, logs JSON lines, and on SIGTERM releases the Lease and exits 0 within
//! seconds.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upkeep_testenv::{KubeApiServer, upkeep_crds};

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

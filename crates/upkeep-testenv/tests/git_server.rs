//! The Git-over-HTTP fixture leaves nothing running: fcgiwrap forks worker processes (and they
//! fork `git http-backend`), and every one of them must end with the server.

use std::path::Path;
use std::time::{Duration, Instant};

use upkeep_testenv::{GitServer, git};

/// The processes whose command line names `needle`.
fn processes_naming(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn dropping_the_git_server_ends_fcgiwrap_and_all_its_workers() {
    let server = GitServer::start(None).await.expect("git server");
    let url = server
        .create_repo("fleet", &[("a.yaml", b"a: 1\n")])
        .expect("repo");
    // A clone makes fcgiwrap's workers run git http-backend.
    let tmp = tempfile::tempdir().expect("tempdir");
    git(&["clone", "-q", &url, "clone"], Some(tmp.path())).expect("clone");
    let socket = server
        .bare_path("fleet")
        .parent()
        .and_then(Path::parent)
        .expect("the server's directory")
        .join("fcgiwrap.sock");
    let needle = format!("unix:{}", socket.display());
    let running = processes_naming(&needle);
    assert!(
        running.len() >= 2,
        "fcgiwrap and its workers run while the server does: {running:?}"
    );
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_naming(&needle);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind after the server was dropped: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! What the CLI tests that write into repositories share: the quickstart fleet copied into a
//! scratch directory, and the real `upkeep` binary run on it.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use upkeep_testenv::git;

/// At this time the dev automation may write two upgrades and production is held.
pub(crate) const AT: &str = "2026-11-21T10:00:00Z";

pub(crate) fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart")
}

pub(crate) fn upkeep(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("UPKEEP_STORE")
        .output()
        .expect("the upkeep binary runs")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file of the example fleet, as (path, contents); `edit` may change one.
pub(crate) fn fleet_files(edit: impl Fn(&str, String) -> String) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("read fleet") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("prefix");
                out.push((
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&p).expect("read"),
                ));
            }
        }
    }
    let root = examples().join("fleet");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out.into_iter()
        .map(|(p, b)| {
            let t = edit(&p, String::from_utf8(b).expect("utf-8"));
            (p, t.into_bytes())
        })
        .collect()
}

/// A scratch directory with `charts` linked in, so `oci-layout:../../charts/…` resolves from
/// `<dir>/<checkout>/upkeep/sources.yaml`.
pub(crate) fn scratch() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        std::fs::canonicalize(examples().join("charts")).expect("charts"),
        tmp.path().join("charts"),
    )
    .expect("link charts");
    tmp
}

pub(crate) fn write_tree(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (p, b) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, b).expect("write");
    }
}

pub(crate) fn git_in(dir: &Path, args: &[&str]) -> String {
    git(args, Some(dir)).expect("git")
}

/// The quickstart fleet written to `<tmp>/fleet` (with `edit` applied), committed on `main`
/// when `git` is true; its path.
pub(crate) fn fleet_in(tmp: &Path, git: bool, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let fleet = tmp.join("fleet");
    write_tree(&fleet, &fleet_files(edit));
    if git {
        commit_all(&fleet, "import");
    }
    fleet
}

/// `git init` (once) and a commit of everything in `dir`.
pub(crate) fn commit_all(dir: &Path, message: &str) {
    if !dir.join(".git").exists() {
        git_in(dir, &["init", "-q", "-b", "main"]);
    }
    git_in(dir, &["add", "-A"]);
    git_in(
        dir,
        &[
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "commit",
            "-qm",
            message,
        ],
    );
}

/// The real binary under coreutils' `timeout`, so a hang fails the test instead of the suite.
pub(crate) fn upkeep_within(secs: u32, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new("timeout")
        .arg("-s")
        .arg("KILL")
        .arg(secs.to_string())
        .arg(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env_remove("UPKEEP_STORE")
        .env_remove("UPKEEP_FAILPOINT")
        .envs(env.iter().copied())
        .output()
        .expect("the upkeep binary runs")
}

/// `path` as UTF-8 (test paths are).
pub(crate) fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Standard base64 with padding (a `kubernetes.io/dockerconfigjson` Secret's data, a Docker
/// `auths` entry), written here so the tests need no encoder crate.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A current-thread runtime for starting the test servers (they run as processes; the
/// runtime only drives their start-up and pushes).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `upkeep run --once` over the remote `url` (plain HTTP allowed: the test servers), checked
/// out in `workdir`, recording in `store`, deciding at `at`.
pub(crate) fn run_once(
    url: &str,
    workdir: &Path,
    store: &Path,
    at: &str,
    env: &[(&str, &str)],
) -> Output {
    upkeep(
        &[
            "run",
            "--once",
            "--repo",
            url,
            "--workdir",
            workdir.to_str().expect("utf-8"),
            "--at",
            at,
            "--store",
            store.to_str().expect("utf-8"),
            "--allow-insecure-http",
        ],
        env,
    )
}

//! What the CLI tests that write into repositories share: the quickstart fleet copied into a
//! scratch directory, and the real `upkeep` binary run on it.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use upkeep_testenv::git;

pub(crate) mod clusters;

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

/// Asserts that `out` exited with `code`; the message says `what` was expected and shows
/// both streams.
#[track_caller]
pub(crate) fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The arguments of `upkeep apply --repo <repo> --at <at> --store <store>`.
pub(crate) fn apply_args<'a>(repo: &'a Path, at: &'a str, store: &'a Path) -> [&'a str; 7] {
    ["apply", "--repo", s(repo), "--at", at, "--store", s(store)]
}

/// The arguments of `upkeep plan --repo <repo> --at <at> -o json`.
pub(crate) fn plan_json_args<'a>(repo: &'a Path, at: &'a str) -> [&'a str; 7] {
    ["plan", "--repo", s(repo), "--at", at, "-o", "json"]
}

/// `files` as the borrowed (path, contents) pairs the test servers take.
pub(crate) fn borrowed(files: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect()
}

/// The git CLI on a bare repository of a test server: what really landed there.
pub(crate) fn bare_git(bare: &Path, args: &[&str]) -> String {
    let mut all = vec!["--git-dir", s(bare)];
    all.extend_from_slice(args);
    git(&all, None).expect("git")
}

/// Asserts that `branch` on the server (`bare`) is one commit on top of `main_before` and
/// that `main` is still `main_before`.
#[track_caller]
pub(crate) fn assert_one_commit_on(bare: &Path, branch: &str, main_before: &str) {
    assert_eq!(
        bare_git(bare, &["rev-parse", "main"]),
        main_before,
        "main is not touched"
    );
    assert_eq!(
        bare_git(bare, &["rev-parse", &format!("{branch}~1")]),
        main_before,
        "one commit on top of main"
    );
}

/// The non-empty lines of `git show --name-only --format=<format> <rev>` on the server:
/// the commit's `format`ted header and the files it changed.
pub(crate) fn shown_lines(bare: &Path, format: &str, rev: &str) -> Vec<String> {
    bare_git(
        bare,
        &["show", "--name-only", &format!("--format={format}"), rev],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(ToOwned::to_owned)
    .collect()
}

/// Clones `url` into `dest` with `user:password` in the URL (as people do), then sets
/// `origin` back to `url`, so the checkout holds no password.
pub(crate) fn clone_then_forget_password(url: &str, user: &str, password: &str, dest: &Path) {
    git(
        &[
            "clone",
            "-q",
            &format!(
                "http://{user}:{password}@{}",
                url.trim_start_matches("http://")
            ),
            s(dest),
        ],
        None,
    )
    .expect("clone");
    git_in(dest, &["remote", "set-url", "origin", url]);
}

/// Makes `dir` a Git repository on `main` whose committer is `Test <test@example.com>` (in
/// its config, so upkeep's own commits there have an identity too) and commits all its files
/// as `message`.
pub(crate) fn init_and_commit(dir: &Path, message: &str) {
    git_in(dir, &["init", "-q", "-b", "main"]);
    git_in(dir, &["config", "user.name", "Test"]);
    git_in(dir, &["config", "user.email", "test@example.com"]);
    git_in(dir, &["add", "-A"]);
    git_in(dir, &["commit", "-q", "-m", message]);
}

/// Clones a test server's bare repository `bare` by path into `dest`, then points `origin` at
/// the server's `url` (what upkeep pushes to).
pub(crate) fn clone_bare(bare: &Path, url: &str, dest: &Path) {
    git(
        &[
            "clone",
            "-q",
            &format!("file://{}", bare.display()),
            s(dest),
        ],
        None,
    )
    .expect("clone");
    git_in(dest, &["remote", "set-url", "origin", url]);
}

/// Every file of the example fleet, as (path, contents); `edit` may change one.
pub(crate) fn fleet_files(edit: impl Fn(&str, String) -> String) -> Vec<(String, Vec<u8>)> {
    let mut out = upkeep_testenv::read_tree(&examples().join("fleet"));
    out.sort();
    out.into_iter()
        .map(|(p, b)| {
            let t = edit(&p, String::from_utf8(b).expect("utf-8"));
            (p, t.into_bytes())
        })
        .collect()
}

/// The example fleet with the first `from` in the dev automation
/// (`upkeep/automation.yaml`) replaced by `to`.
pub(crate) fn fleet_with_automation_edit(from: &str, to: &str) -> Vec<(String, Vec<u8>)> {
    fleet_files(|p, t| {
        if p == "upkeep/automation.yaml" {
            t.replacen(from, to, 1)
        } else {
            t
        }
    })
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

/// `git init -b main` in `dir` and one commit `import` of everything in it, by the git
/// identity of upkeep-testenv's `git` (the user's commit, under upkeep's).
pub(crate) fn git_import(dir: &Path) {
    git_in(dir, &["init", "-q", "-b", "main"]);
    git_in(dir, &["add", "-A"]);
    git_in(dir, &["commit", "-qm", "import"]);
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
/// `auths` entry): the same encoder the test servers use.
pub(crate) fn base64(bytes: &[u8]) -> String {
    upkeep_testenv::base64(bytes)
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

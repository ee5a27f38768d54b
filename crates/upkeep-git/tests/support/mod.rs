//! What the tests against real repositories share: a bare `origin` with a clone of it, the git
//! CLI on the bare side (to see what really landed), and the two scenarios that every transport
//! must pass the same way (a push race, and a refusal from a server-side hook).
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};

use upkeep_git::{Auth, Author, Oid, PushOutcome, Repo};
use upkeep_testenv::{create_bare_repo, git};

/// The manifest the transport tests change.
pub(crate) const FILE: &str = "apps/podinfo.yaml";

pub(crate) fn author() -> Author {
    Author {
        name: "upkeep".to_owned(),
        email: "upkeep@example.invalid".to_owned(),
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A bare `origin` holding `files` on `main`, and a clone of it over `file://`.
pub(crate) struct Fixture {
    /// Kept so the directories live as long as the fixture.
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) bare: PathBuf,
    pub(crate) repo: Repo,
}

impl Fixture {
    pub(crate) fn new(files: &[(&str, &[u8])]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bare = tmp.path().join("origin.git");
        create_bare_repo(&bare, files).expect("bare");
        let url = format!("file://{}", bare.display());
        let repo = Repo::clone_or_open(&url, &tmp.path().join("clone"), "main", &Auth::none())
            .expect("clone");
        Fixture { tmp, bare, repo }
    }
}

pub(crate) fn bare_git(bare: &Path, args: &[&str]) -> String {
    let dir = bare.to_str().expect("utf-8 path");
    let mut all = vec!["--git-dir", dir];
    all.extend_from_slice(args);
    git(&all, None).expect("git CLI on the bare repository")
}

pub(crate) fn tip(bare: &Path, branch: &str) -> String {
    bare_git(bare, &["rev-parse", branch]).trim().to_owned()
}

pub(crate) fn show(bare: &Path, rev: &str) -> String {
    bare_git(bare, &["show", rev])
}

/// Appends a line to FILE in `repo` and commits it with `message`.
pub(crate) fn change(repo: &Repo, line: &str, message: &str) -> Oid {
    let mut contents = std::fs::read(repo.workdir().join(FILE)).expect("read");
    contents.extend_from_slice(line.as_bytes());
    repo.write_file(FILE, &contents).expect("write");
    repo.commit("upkeep", "upkeep@example.invalid", message)
        .expect("commit")
        .expect("something changed")
}

/// Two clones of `url` (in `dir`) each commit; the first push wins, the second is rejected
/// (with a reason) and `main` on the server (`bare`) keeps the first commit. Returns the
/// rejected clone and the first commit.
pub(crate) fn race(url: &str, auth: &Auth, dir: &Path, bare: &Path) -> (Repo, Oid) {
    let first = Repo::clone_or_open(url, &dir.join("a"), "main", auth).expect("a");
    let second = Repo::clone_or_open(url, &dir.join("b"), "main", auth).expect("b");

    let a = change(&first, "# from a\n", "writer a");
    change(&second, "# from b\n", "writer b");
    assert_eq!(
        first.push("main", "main", auth).expect("push a"),
        PushOutcome::Pushed
    );
    let outcome = second
        .push("main", "main", auth)
        .expect("push b reaches the server");
    assert!(
        matches!(&outcome, PushOutcome::Rejected { reason } if !reason.is_empty()),
        "the second writer must be rejected, got {outcome:?}"
    );
    assert_eq!(
        bare_git(bare, &["rev-parse", "main"]).trim(),
        a.to_string(),
        "a's commit kept"
    );
    (second, a)
}

/// The rest of the retry upkeep runs after a rejection (the caller has fetched): reset to the
/// remote, re-apply, push. The new commit lands on top of `a`; nothing is lost.
pub(crate) fn retry_on_top(second: &Repo, auth: &Auth, bare: &Path, a: Oid) {
    second.reset_to_remote("main").expect("reset");
    let b = change(second, "# from b\n", "writer b, again");
    assert_eq!(
        second.push("main", "main", auth).expect("push b"),
        PushOutcome::Pushed
    );
    let log = bare_git(bare, &["log", "--format=%H", "main"]);
    let ids: Vec<&str> = log.lines().take(2).collect();
    assert_eq!(
        ids,
        [b.to_string(), a.to_string()],
        "b on top of a, nothing lost"
    );
}

/// Installs an `update` hook in `bare` that refuses every ref, then pushes a commit from a
/// clone of `url` (in `dir`): the refusal, which libgit2 reports only through the push
/// callback, must come back as a rejection naming the ref.
pub(crate) fn assert_hook_refusal_is_a_rejection(url: &str, auth: &Auth, dir: &Path, bare: &Path) {
    let hook = bare.join("hooks/update");
    std::fs::write(&hook, "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n").expect("hook");
    let mut permissions = std::fs::metadata(&hook).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&hook, permissions).expect("chmod");

    let repo = Repo::clone_or_open(url, &dir.join("c"), "main", auth).expect("clone");
    change(&repo, "# x\n", "declined by the hook");
    let outcome = repo
        .push("main", "main", auth)
        .expect("push reaches the server");
    assert!(
        matches!(&outcome, PushOutcome::Rejected { reason } if reason.contains("refs/heads/main")),
        "the update hook refused the ref (libgit2 says so only in the callback): {outcome:?}"
    );
}

//! The write loop against real bare repositories (over `file://`, pushed to by libgit2 and,
//! for the "other writers", by the git CLI): commits built in memory on the remote tip,
//! fast-forward pushes to the checkout branch, upgrade branches rebuilt with a lease, races
//! and rejections retried a bounded number of times, foreign commits never rewritten.

use std::path::Path;

use upkeep_git::{
    Auth, Branches, GitError, Lease, Oid, Prepared, PushOutcome, Repo, Written, write_and_push,
};
use upkeep_testenv::git;

mod support;
use support::{FILE, Fixture, author, bare_git, runtime, show, tip};

const OTHER: &str = "apps/other.yaml";
const V1: &str = "version: 6.5.0 # {\"$upkeep\": \"flux-system:podinfo\"}\n";

/// A bare `origin` with `main` holding FILE and OTHER, and a clone of it. Force pushes are
/// allowed on the server (as on GitHub for unprotected branches) unless `deny_force`.
fn fixture(deny_force: bool) -> Fixture {
    let f = Fixture::new(&[(FILE, V1.as_bytes()), (OTHER, b"other: 1\n")]);
    bare_git(
        &f.bare,
        &[
            "config",
            "receive.denyNonFastForwards",
            if deny_force { "true" } else { "false" },
        ],
    );
    f
}

/// Another writer: clones `branch` with the git CLI, writes `file`, commits as someone else
/// and pushes.
fn other_writer_commits(bare: &Path, branch: &str, file: &str, contents: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", bare.display());
    git(
        &["clone", "--quiet", "--branch", branch, &url, "w"],
        Some(work.path()),
    )
    .expect("clone");
    let w = work.path().join("w");
    std::fs::write(w.join(file), contents).expect("write");
    git(&["commit", "--quiet", "-am", "someone else"], Some(&w)).expect("commit");
    git(&["push", "--quiet", "origin", branch], Some(&w)).expect("push");
}

/// The edit upkeep makes: the version field of FILE set to `version`, computed from the file
/// as it is in `start`.
fn set_version(version: &str) -> impl Fn(&Repo, Oid) -> Result<Prepared, GitError> {
    let version = version.to_owned();
    move |repo, start| {
        let text = repo
            .read_file_at(start, FILE)?
            .map(|b| String::from_utf8(b).expect("utf-8"))
            .unwrap_or_default();
        let new: String = text
            .lines()
            .map(
                |l| match l.strip_prefix("version: ").and_then(|r| r.split_once(' ')) {
                    Some((_, marker)) => format!("version: {version} {marker}\n"),
                    None => format!("{l}\n"),
                },
            )
            .collect();
        Ok(Prepared {
            files: if new == text {
                Vec::new()
            } else {
                vec![(FILE.to_owned(), new.into_bytes())]
            },
            message: format!("Upgrade podinfo to {version}\n"),
        })
    }
}

fn main_branch() -> Branches<'static> {
    Branches {
        checkout: "main",
        push: "main",
    }
}

fn upgrade_branch() -> Branches<'static> {
    Branches {
        checkout: "main",
        push: "upkeep/podinfo",
    }
}

#[test]
fn set_version_helper_rewrites_only_the_version() {
    let f = fixture(true);
    f.repo.fetch(&Auth::none()).expect("fetch");
    let base = f.repo.remote_branch("main").expect("ref").expect("main");
    let prepared = set_version("6.6.0")(&f.repo, base).expect("prepare");
    assert_eq!(
        String::from_utf8(prepared.files[0].1.clone()).expect("utf-8"),
        "version: 6.6.0 # {\"$upkeep\": \"flux-system:podinfo\"}\n"
    );
}

#[test]
fn pushes_to_the_checkout_branch_once_and_then_is_up_to_date() {
    let f = fixture(true);
    let before = tip(&f.bare, "main");
    let written = write_and_push(
        &f.repo,
        &Auth::none(),
        main_branch(),
        &author(),
        3,
        set_version("6.6.0"),
    )
    .expect("write");
    let Written::Pushed {
        commit, attempts, ..
    } = written
    else {
        panic!("a change was due: {written:?}")
    };
    assert_eq!(attempts, 1);
    assert_eq!(tip(&f.bare, "main"), commit.to_string());
    let shown = show(&f.bare, "main");
    assert!(
        shown.contains("Author: upkeep <upkeep@example.invalid>"),
        "{shown}"
    );
    assert!(shown.contains("Upgrade podinfo to 6.6.0"), "{shown}");
    assert!(shown.contains("+version: 6.6.0"), "{shown}");
    assert_eq!(
        bare_git(&f.bare, &["rev-parse", "main~1"]).trim(),
        before,
        "one commit on top of the old tip, nothing rewritten"
    );
    assert!(
        f.repo.workdir().join(FILE).exists()
            && std::fs::read_to_string(f.repo.workdir().join(FILE)).expect("read") == V1,
        "the local work tree is not touched by a push"
    );

    let again = write_and_push(
        &f.repo,
        &Auth::none(),
        main_branch(),
        &author(),
        3,
        set_version("6.6.0"),
    )
    .expect("write again");
    assert!(
        matches!(again, Written::UpToDate { .. }),
        "a second run with nothing new makes no commit: {again:?}"
    );
    assert_eq!(tip(&f.bare, "main"), commit.to_string());
}

#[test]
fn a_race_on_the_checkout_branch_is_retried_on_the_new_tip_without_force() {
    let f = fixture(true);
    let mut raced = false;
    let bare = f.bare.clone();
    let inner = set_version("6.6.0");
    let written = write_and_push(
        &f.repo,
        &Auth::none(),
        main_branch(),
        &author(),
        3,
        |repo: &Repo, start: Oid| {
            if !raced {
                // Someone pushes between our fetch and our push.
                raced = true;
                other_writer_commits(&bare, "main", OTHER, "other: 2\n");
            }
            inner(repo, start)
        },
    )
    .expect("write");
    let Written::Pushed { attempts, .. } = written else {
        panic!("{written:?}")
    };
    assert_eq!(
        attempts, 2,
        "the first push was rejected, the second went through"
    );
    let log = bare_git(&f.bare, &["log", "--format=%s", "main"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["Upgrade podinfo to 6.6.0", "someone else", "initial commit"],
        "the other writer's commit is kept under ours"
    );
}

#[test]
fn a_writer_that_keeps_losing_gives_up_after_the_bound() {
    let f = fixture(true);
    let bare = f.bare.clone();
    let inner = set_version("6.6.0");
    let mut n = 0;
    let err = write_and_push(
        &f.repo,
        &Auth::none(),
        main_branch(),
        &author(),
        3,
        |repo: &Repo, start: Oid| {
            n += 1;
            other_writer_commits(&bare, "main", OTHER, &format!("other: {}\n", n + 1));
            inner(repo, start)
        },
    )
    .expect_err("never wins the race");
    assert!(
        matches!(err, GitError::PushRetriesExhausted { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(n, 3, "exactly the bounded number of attempts");
    assert!(err.hint().is_some());
    let log = bare_git(&f.bare, &["log", "--format=%s", "main"]);
    assert!(
        !log.contains("Upgrade podinfo"),
        "nothing of ours landed: {log}"
    );
}

#[test]
fn an_upgrade_branch_is_created_from_the_checkout_branch() {
    let f = fixture(false);
    let main_before = tip(&f.bare, "main");
    let written = write_and_push(
        &f.repo,
        &Auth::none(),
        upgrade_branch(),
        &author(),
        3,
        set_version("6.6.0"),
    )
    .expect("write");
    assert!(
        matches!(written, Written::Pushed { rebuilt: false, .. }),
        "{written:?}"
    );
    assert_eq!(tip(&f.bare, "main"), main_before, "main is untouched");
    assert_eq!(
        bare_git(&f.bare, &["rev-parse", "upkeep/podinfo~1"]).trim(),
        main_before
    );
}

#[test]
fn an_upgrade_branch_behind_main_is_rebuilt_with_a_lease_only_when_there_is_something_new() {
    let f = fixture(false);
    write_and_push(
        &f.repo,
        &Auth::none(),
        upgrade_branch(),
        &author(),
        3,
        set_version("6.6.0"),
    )
    .expect("first write");
    let first = tip(&f.bare, "upkeep/podinfo");
    other_writer_commits(&f.bare, "main", OTHER, "other: 2\n");

    let same = write_and_push(
        &f.repo,
        &Auth::none(),
        upgrade_branch(),
        &author(),
        3,
        set_version("6.6.0"),
    )
    .expect("same target");
    assert!(
        matches!(same, Written::UpToDate { .. }),
        "main moved but the branch still holds the edit: no churn ({same:?})"
    );
    assert_eq!(tip(&f.bare, "upkeep/podinfo"), first);

    let newer = write_and_push(
        &f.repo,
        &Auth::none(),
        upgrade_branch(),
        &author(),
        3,
        set_version("6.7.0"),
    )
    .expect("newer target");
    let Written::Pushed { rebuilt, base, .. } = newer else {
        panic!("6.7.0 is new: {newer:?}")
    };
    assert!(rebuilt, "upkeep's own old commit is replaced");
    assert_eq!(base.to_string(), tip(&f.bare, "main"));
    assert_eq!(
        bare_git(&f.bare, &["rev-parse", "upkeep/podinfo~1"]).trim(),
        tip(&f.bare, "main"),
        "the branch now sits on main's new tip with one commit"
    );
    assert_eq!(
        tip(&f.bare, "main"),
        base.to_string(),
        "main itself is untouched"
    );
}

#[test]
fn an_upgrade_branch_with_someone_elses_commit_is_never_rewritten() {
    let f = fixture(false);
    write_and_push(
        &f.repo,
        &Auth::none(),
        upgrade_branch(),
        &author(),
        3,
        set_version("6.6.0"),
    )
    .expect("first write");
    other_writer_commits(&f.bare, "upkeep/podinfo", OTHER, "reviewer fix\n");
    let reviewer = tip(&f.bare, "upkeep/podinfo");
    other_writer_commits(&f.bare, "main", OTHER, "main moved\n");

    let written = write_and_push(
        &f.repo,
        &Auth::none(),
        upgrade_branch(),
        &author(),
        3,
        set_version("6.7.0"),
    )
    .expect("write");
    let Written::Pushed {
        foreign_commits,
        rebuilt,
        ..
    } = written
    else {
        panic!("{written:?}")
    };
    assert!(foreign_commits && !rebuilt, "{written:?}");
    assert_eq!(
        bare_git(&f.bare, &["rev-parse", "upkeep/podinfo~1"]).trim(),
        reviewer,
        "our commit goes on top of the reviewer's"
    );
}

#[test]
fn a_lease_broken_between_fetch_and_push_is_a_rejection() {
    let f = fixture(false);
    write_and_push(
        &f.repo,
        &Auth::none(),
        upgrade_branch(),
        &author(),
        3,
        set_version("6.6.0"),
    )
    .expect("first write");
    f.repo.fetch(&Auth::none()).expect("fetch");
    let seen = f
        .repo
        .remote_branch("upkeep/podinfo")
        .expect("ref")
        .expect("branch");
    let base = f.repo.remote_branch("main").expect("ref").expect("main");
    // Someone pushes to the branch after upkeep looked at it.
    other_writer_commits(&f.bare, "upkeep/podinfo", OTHER, "late\n");
    let late = tip(&f.bare, "upkeep/podinfo");
    let prepared = set_version("6.7.0")(&f.repo, base).expect("prepare");
    let commit = f
        .repo
        .commit_files(base, &prepared.files, &author(), &prepared.message)
        .expect("commit")
        .expect("changed");
    let outcome = f
        .repo
        .push_commit(
            commit,
            "upkeep/podinfo",
            Lease::Expect(Some(seen)),
            &Auth::none(),
        )
        .expect("push reaches the server");
    assert!(
        matches!(&outcome, PushOutcome::Rejected { reason } if reason.contains(&late)),
        "{outcome:?}"
    );
    assert_eq!(
        tip(&f.bare, "upkeep/podinfo"),
        late,
        "the late commit survives"
    );
}

/// libgit2 pushes to `file://` by writing the refs itself (no receive-pack, so no server
/// config or hooks): a server's own refusal needs the real `git http-backend`.
#[test]
fn a_server_that_refuses_force_pushes_is_a_rejection_not_a_rewrite() {
    let rt = runtime();
    let server = rt
        .block_on(upkeep_testenv::GitServer::start(None))
        .expect("git server");
    let url = server
        .create_repo("fleet", &[(FILE, V1.as_bytes()), (OTHER, b"other: 1\n")])
        .expect("repo");
    let bare = server.bare_path("fleet");
    let tmp = tempfile::tempdir().expect("tempdir");
    let auth = Auth::none().allow_insecure_http();
    let repo = Repo::clone_or_open(&url, &tmp.path().join("c"), "main", &auth).expect("clone");
    write_and_push(
        &repo,
        &auth,
        upgrade_branch(),
        &author(),
        3,
        set_version("6.6.0"),
    )
    .expect("first write");
    let first = tip(&bare, "upkeep/podinfo");
    other_writer_commits(&bare, "main", OTHER, "other: 2\n");
    let err = write_and_push(
        &repo,
        &auth,
        upgrade_branch(),
        &author(),
        2,
        set_version("6.7.0"),
    )
    .expect_err("the server denies non-fast-forward updates");
    assert!(
        matches!(err, GitError::PushRetriesExhausted { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(tip(&bare, "upkeep/podinfo"), first);
}

#[test]
fn only_existing_regular_files_can_be_committed() {
    let f = fixture(true);
    f.repo.fetch(&Auth::none()).expect("fetch");
    let base = f.repo.remote_branch("main").expect("ref").expect("main");
    let cases = [
        ("apps/new.yaml", "a file the tree does not have"),
        ("../outside.yaml", "a path climbing out"),
        ("apps", "a directory"),
    ];
    for (path, reason) in cases {
        let err = f
            .repo
            .commit_files(base, &[(path.to_owned(), b"x\n".to_vec())], &author(), "m")
            .expect_err(reason);
        assert!(
            matches!(err, GitError::PathEscapes { .. }),
            "{reason}: {err:?}"
        );
    }
    assert_eq!(
        f.repo
            .commit_files(
                base,
                &[(FILE.to_owned(), V1.as_bytes().to_vec())],
                &author(),
                "m"
            )
            .expect("same contents"),
        None,
        "unchanged contents make no commit"
    );
}

//! The write loop: edit on top of the remote branch, commit, push, and on a rejection fetch,
//! edit again and retry, a bounded number of times.
//!
//! Why it is shaped this way:
//! - The caller's edit is a function of a starting commit, not a patch: after a rejection the
//!   remote has moved, and the right edit is recomputed from what is there now (someone may
//!   already have bumped the version, or changed the line next to it). Nothing from the
//!   failed attempt is reused, so nothing can be lost or duplicated.
//! - Pushing to the checkout branch is always a plain fast-forward push. An upgrade branch
//!   (a different push branch) is built on the checkout branch: on top of the existing
//!   upgrade branch while that still contains the checkout branch's tip, else rebuilt from
//!   the checkout branch and replaced with a lease ([`Lease::Expect`]) — but only when every
//!   commit on it that is not on the checkout branch was written by upkeep's author. A branch
//!   someone else committed to is never rewritten; upkeep adds its commit on top and says so.
//! - "Nothing to change" is a result, not an error, so a run every few minutes is idempotent:
//!   no empty commits, no pushes.

use git2::Oid;

use crate::{Auth, Author, GitError, Lease, PushOutcome, Repo};

/// The branch upkeep starts from and the branch it pushes to (the same, or an upgrade branch).
#[derive(Debug, Clone, Copy)]
pub struct Branches<'a> {
    pub checkout: &'a str,
    pub push: &'a str,
}

/// New contents for existing files, and the commit message for them.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub files: Vec<(String, Vec<u8>)>,
    pub message: String,
}

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The push branch already holds every edit; nothing was pushed.
    UpToDate {
        /// The checkout branch's tip.
        base: Oid,
        /// The commit the edits were computed on (the push branch's tip, or `base`).
        tip: Oid,
    },
    /// A new commit is on the push branch.
    Pushed {
        commit: Oid,
        /// The checkout branch's tip at the time.
        base: Oid,
        attempts: u32,
        /// The upgrade branch was rebuilt from the checkout branch (replacing upkeep's earlier
        /// commits on it).
        rebuilt: bool,
        /// The upgrade branch carries commits by someone else, so upkeep added its commit on
        /// top instead of rebuilding it.
        foreign_commits: bool,
    },
}

/// Where one attempt starts and what the push must find on the remote.
struct Start {
    base: Oid,
    tip: Oid,
    lease: Lease,
    rebuilt: bool,
    foreign: bool,
}

fn start(repo: &Repo, branches: Branches<'_>, author: &Author) -> Result<Start, GitError> {
    let base = repo
        .remote_branch(branches.checkout)?
        .ok_or_else(|| GitError::BranchNotFound {
            branch: branches.checkout.to_owned(),
        })?;
    let plain = Start {
        base,
        tip: base,
        lease: Lease::FastForward,
        rebuilt: false,
        foreign: false,
    };
    if branches.push == branches.checkout {
        return Ok(plain);
    }
    let Some(existing) = repo.remote_branch(branches.push)? else {
        return Ok(Start {
            lease: Lease::Expect(None),
            ..plain
        });
    };
    if repo.is_ancestor(base, existing)? {
        return Ok(Start {
            tip: existing,
            ..plain
        });
    }
    let authors = repo.authors_between(base, existing)?;
    if authors.iter().all(|email| *email == author.email) {
        Ok(Start {
            lease: Lease::Expect(Some(existing)),
            rebuilt: !authors.is_empty(),
            ..plain
        })
    } else {
        Ok(Start {
            tip: existing,
            foreign: true,
            ..plain
        })
    }
}

/// Fetches, computes the edit with `prepare` on the right starting commit, commits it and
/// pushes; on a rejection starts over, at most `max_attempts` times in all.
pub fn write_and_push<E: From<GitError>>(
    repo: &Repo,
    auth: &Auth,
    branches: Branches<'_>,
    author: &Author,
    max_attempts: u32,
    mut prepare: impl FnMut(&Repo, Oid) -> Result<Prepared, E>,
) -> Result<Written, E> {
    let mut last_reason = String::new();
    for attempt in 1..=max_attempts.max(1) {
        repo.fetch(auth)?;
        let s = start(repo, branches, author)?;
        if let Lease::Expect(Some(existing)) = s.lease {
            // Rebuilding replaces the branch; not needed while it already holds every edit.
            if prepare(repo, existing)?.files.is_empty() {
                return Ok(Written::UpToDate {
                    base: s.base,
                    tip: existing,
                });
            }
        }
        let prepared = prepare(repo, s.tip)?;
        let commit = if prepared.files.is_empty() {
            None
        } else {
            repo.commit_files(s.tip, &prepared.files, author, &prepared.message)?
        };
        let Some(commit) = commit else {
            return Ok(Written::UpToDate {
                base: s.base,
                tip: s.tip,
            });
        };
        match repo.push_commit(commit, branches.push, s.lease, auth)? {
            PushOutcome::Pushed => {
                crate::failpoint("push");
                return Ok(Written::Pushed {
                    commit,
                    base: s.base,
                    attempts: attempt,
                    rebuilt: s.rebuilt,
                    foreign_commits: s.foreign,
                });
            }
            PushOutcome::Rejected { reason } => last_reason = reason,
        }
    }
    Err(GitError::PushRetriesExhausted {
        branch: branches.push.to_owned(),
        attempts: max_attempts.max(1),
        reason: last_reason,
    }
    .into())
}

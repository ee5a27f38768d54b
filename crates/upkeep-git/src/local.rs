//! Committing in the user's checkout, so that the commit is the unit: after any crash the
//! branch either has upkeep's commit and the work tree and index agree with it, or it has
//! neither and the work tree is as it was.
//!
//! Why it is shaped this way:
//! - The commit object is built first, from `HEAD`'s tree in memory ([`Repo::commit_files`]):
//!   nothing the user sees changes until the files are written.
//! - A **journal** (`<git dir>/upkeep-journal.json`, written durably) names the branch, the
//!   old and the new commit and every file's old and new blob *before* any file is touched.
//!   Then the files are replaced (atomically each, mode kept), the index is updated, and the
//!   branch is moved with a **compare-and-swap** on the old tip (`git update-ref <ref> <new>
//!   <old>`, libgit2's `reference_matching`): a branch someone moved meanwhile is never
//!   overwritten, and upkeep puts the files back instead. The journal is removed last.
//! - [`Repo::recover`] runs before any later write (under the same lock): with a journal
//!   present, a branch that reached the new commit is rolled *forward* (the remaining files and
//!   index entries get the new blobs), otherwise the change is rolled *back* (files that hold
//!   the new bytes get the old ones). Either way only files still holding exactly one of the
//!   two journaled blobs are touched, so nothing a person wrote since is overwritten.
//! - Lock files libgit2 leaves when killed mid-write (`index.lock`, `<ref>.lock`) are removed
//!   by recovery only when they are younger than the journal and older than this process
//!   (within the 50 ms the start time can be read off by): they belong to the interrupted
//!   run, not to a Git command running now.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::Oid;
use serde::{Deserialize, Serialize};

use crate::failpoint::failpoint;
use crate::lock::{WorkTreeLock, lock_file};
use crate::{Author, GitError, Repo, atomic, paths};

const JOURNAL: &str = "upkeep-journal.json";

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    /// The process that wrote it (for messages).
    pid: u32,
    /// `refs/heads/<branch>`, or `HEAD` when detached.
    reference: String,
    old: String,
    new: String,
    files: Vec<JournalFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct JournalFile {
    path: String,
    old: String,
    new: String,
    mode: u32,
}

/// What [`Repo::recover`] did with an interrupted commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// The branch had reached the commit: the work tree and index now agree with it.
    Finished { commit: Oid, files: usize },
    /// The branch had not moved: the files were put back as they were.
    RolledBack { commit: Oid, files: usize },
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> GitError {
    move |source| GitError::Io { what, source }
}

fn oid(s: &str) -> Result<Oid, GitError> {
    Oid::from_str(s).map_err(|e| GitError::git("reading the journal", &e))
}

impl Repo {
    fn journal_path(&self) -> PathBuf {
        self.inner.path().join(JOURNAL)
    }

    /// Takes the checkout's upkeep lock (`<git dir>/upkeep.lock`), waiting up to `wait`.
    pub fn lock_work_tree(
        &self,
        wait: Duration,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<WorkTreeLock, GitError> {
        lock_file(&self.inner.path().join("upkeep.lock"), wait, on_wait)
    }

    /// The index as it is on disk now (libgit2 shares one in-memory index per repository).
    fn fresh_index(&self) -> Result<git2::Index, GitError> {
        let mut index = self
            .inner
            .index()
            .map_err(|e| GitError::git("reading the index", &e))?;
        index
            .read(true)
            .map_err(|e| GitError::git("reading the index", &e))?;
        Ok(index)
    }

    /// The reference `HEAD` names (`refs/heads/<branch>`), or `HEAD` when detached.
    fn head_reference(&self) -> Result<String, GitError> {
        let head = self
            .inner
            .find_reference("HEAD")
            .map_err(|e| GitError::git("reading HEAD", &e))?;
        Ok(match head.symbolic_target().ok().flatten() {
            Some(t) => t.to_owned(),
            None => "HEAD".to_owned(),
        })
    }

    /// Finishes or undoes a commit an earlier process was killed in the middle of (see the
    /// module docs); `None` when there was nothing to do. Call it under
    /// [`Repo::lock_work_tree`], before planning.
    pub fn recover(&self) -> Result<Option<Recovery>, GitError> {
        let path = self.journal_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        let Ok(journal) = serde_json::from_slice::<Journal>(&bytes) else {
            // Written durably in one rename: an unreadable journal is not ours to act on.
            return Err(GitError::Git {
                what: format!("reading {}", path.display()),
                message: "not an upkeep journal; move it away to continue".to_owned(),
            });
        };
        self.remove_stale_locks(&path, &journal.reference);
        let new = oid(&journal.new)?;
        let current = self.inner.refname_to_id(&journal.reference).ok();
        let forward = match current {
            Some(c) => c == new || self.is_ancestor(new, c)?,
            None => false,
        };
        self.settle(&journal, forward)?;
        std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
        let files = journal.files.len();
        Ok(Some(if forward {
            Recovery::Finished { commit: new, files }
        } else {
            Recovery::RolledBack { commit: new, files }
        }))
    }

    fn remove_stale_locks(&self, journal: &Path, reference: &str) {
        let Ok(since) = std::fs::metadata(journal).and_then(|m| m.modified()) else {
            return;
        };
        let started = process_start().unwrap_or_else(SystemTime::now);
        for lock in [
            self.inner.path().join("index.lock"),
            self.inner.path().join(format!("{reference}.lock")),
        ] {
            let stale = std::fs::metadata(&lock)
                .and_then(|m| m.modified())
                .is_ok_and(|t| left_by_the_interrupted_run(t, since, started));
            if stale {
                let _ = std::fs::remove_file(&lock);
            }
        }
    }

    /// Puts every journaled file (work tree and index) at its new blob (`forward`) or its old
    /// one, touching only files that hold exactly the other journaled blob.
    fn settle(&self, journal: &Journal, forward: bool) -> Result<(), GitError> {
        let mut index = self.fresh_index()?;
        let mut changed_index = false;
        for f in &journal.files {
            let (want, other) = if forward {
                (oid(&f.new)?, oid(&f.old)?)
            } else {
                (oid(&f.old)?, oid(&f.new)?)
            };
            let path = paths::inside(self.workdir(), &f.path)?;
            remove_temporaries(&path);
            let on_disk = std::fs::read(&path)
                .ok()
                .and_then(|b| Oid::hash_object(git2::ObjectType::Blob, &b).ok());
            let meta = if on_disk == Some(other) {
                let contents = self.read_blob(want)?;
                Some(
                    atomic::replace_file(&path, &contents)
                        .map_err(io(format!("writing {}", path.display())))?,
                )
            } else if on_disk == Some(want) {
                std::fs::symlink_metadata(&path).ok()
            } else {
                None
            };
            let staged = index.get_path(Path::new(&f.path), 0).map(|e| e.id);
            if let Some(meta) = meta
                && (staged == Some(other) || staged == Some(want))
            {
                let mode = i32::try_from(f.mode).unwrap_or(0o100_644);
                index
                    .add(&crate::tree::index_entry(&f.path, want, mode, &meta))
                    .map_err(|e| GitError::git("staging a file", &e))?;
                changed_index = true;
            }
        }
        if changed_index {
            index
                .write()
                .map_err(|e| GitError::git("writing the index", &e))?;
        }
        Ok(())
    }

    /// Commits new contents of existing, tracked files on top of `expected` — which must be
    /// where `HEAD`'s branch points — writes them into the work tree and index, and moves the
    /// branch with a compare-and-swap. `Ok(None)` when the contents are what `expected`
    /// holds. Call under [`Repo::lock_work_tree`], after [`Repo::recover`].
    ///
    /// A file whose bytes on disk are no longer `expected`'s blob is [`GitError::FileChanged`],
    /// a branch that moved is [`GitError::RefMoved`]; in both cases nothing is left changed.
    pub fn commit_in_work_tree(
        &self,
        expected: Oid,
        files: &[(String, Vec<u8>)],
        author: &Author,
        message: &str,
    ) -> Result<Option<Oid>, GitError> {
        let reference = self.head_reference()?;
        let current = self.inner.refname_to_id(&reference).ok();
        if current != Some(expected) {
            return Err(GitError::RefMoved {
                reference,
                expected: expected.to_string(),
                found: current.map_or_else(|| "nothing".to_owned(), |c| c.to_string()),
            });
        }
        let Some((commit, old)) = self.build_commit(expected, files, author, message)? else {
            return Ok(None);
        };
        failpoint("commit");
        let mut journal = Journal {
            pid: std::process::id(),
            reference: reference.clone(),
            old: expected.to_string(),
            new: commit.to_string(),
            files: Vec::with_capacity(files.len()),
        };
        let mut targets = Vec::with_capacity(files.len());
        for ((p, contents), (old_id, old_mode)) in files.iter().zip(old) {
            let path = paths::inside(self.workdir(), p)?;
            let on_disk =
                std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
            let disk_id = Oid::hash_object(git2::ObjectType::Blob, &on_disk)
                .map_err(|e| GitError::git("hashing a file", &e))?;
            if disk_id != old_id {
                return Err(GitError::FileChanged { path: p.clone() });
            }
            let new = Oid::hash_object(git2::ObjectType::Blob, contents)
                .map_err(|e| GitError::git("hashing a file", &e))?;
            journal.files.push(JournalFile {
                path: p.clone(),
                old: old_id.to_string(),
                new: new.to_string(),
                mode: old_mode,
            });
            targets.push((path, new, i32::try_from(old_mode).unwrap_or(0o100_644)));
        }
        let journal_path = self.journal_path();
        let bytes = serde_json::to_vec(&journal).map_err(|e| GitError::Git {
            what: "writing the journal".to_owned(),
            message: e.to_string(),
        })?;
        atomic::write_durably(&journal_path, &bytes)
            .map_err(io(format!("writing {}", journal_path.display())))?;
        failpoint("journal");
        let written = (|| {
            let mut index = self.fresh_index()?;
            for ((p, contents), (path, new, mode)) in files.iter().zip(&targets) {
                let meta = atomic::replace_file(path, contents)
                    .map_err(io(format!("writing {}", path.display())))?;
                failpoint("write");
                index
                    .add(&crate::tree::index_entry(p, *new, *mode, &meta))
                    .map_err(|e| GitError::git("staging a file", &e))?;
            }
            index
                .write()
                .map_err(|e| GitError::git("writing the index", &e))?;
            failpoint("index");
            self.inner
                .reference_matching(&reference, commit, true, expected, "upkeep: commit")
                .map_err(|e| {
                    let found = self
                        .inner
                        .refname_to_id(&reference)
                        .map_or_else(|_| "nothing".to_owned(), |c| c.to_string());
                    if found == expected.to_string() {
                        GitError::git(format!("updating {reference}"), &e)
                    } else {
                        GitError::RefMoved {
                            reference: reference.clone(),
                            expected: expected.to_string(),
                            found,
                        }
                    }
                })
        })();
        if let Err(e) = written {
            // Put the files back (the branch did not move), then forget the attempt.
            self.settle(&journal, false)?;
            let _ = std::fs::remove_file(&journal_path);
            return Err(e);
        }
        failpoint("ref");
        std::fs::remove_file(&journal_path)
            .map_err(io(format!("removing {}", journal_path.display())))?;
        Ok(Some(commit))
    }
}

/// Removes the temporary files a killed writer left beside `path`
/// (`.<name>.upkeep-write-<pid>-<n>`, see `atomic.rs`).
fn remove_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}.upkeep-write-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// When this process started (from `/proc/self/stat` and the boot time), to tell lock files
/// an interrupted earlier run left from ones a command running now holds.
/// How far this process's start, as [`process_start`] reads it, may lie before the real one:
/// `/proc/self/stat` counts in 10 ms ticks (rounded down), and file times come from the
/// kernel's coarse clock (up to one jiffy behind, 10 ms at worst). A run killed while libgit2
/// wrote `index.lock`, and rerun at once, leaves a lock a few milliseconds older than the new
/// process (seen: the crash test's rerun refused "the index is locked").
const START_SLACK: Duration = Duration::from_millis(50);

/// Whether a lock file last written at `lock` was left by the run that wrote the journal at
/// `journal`: written after the journal and before this process started. A Git command
/// running now wrote its lock after that.
fn left_by_the_interrupted_run(lock: SystemTime, journal: SystemTime, started: SystemTime) -> bool {
    lock >= journal && lock <= started + START_SLACK
}

fn process_start() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 22 (starttime, clock ticks since boot) follows the parenthesised command name.
    let after = stat.rsplit_once(')')?.1;
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // Linux reports starttime in USER_HZ, which is 100 on every architecture it supports.
    #[allow(clippy::cast_precision_loss)]
    let age = uptime - ticks as f64 / 100.0;
    SystemTime::now().checked_sub(Duration::from_secs_f64(age.max(0.0)))
}

/// One of upkeep's commits read back from Git: what the history records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCommit {
    pub commit: Oid,
    /// The committer time.
    pub time: jiff::Timestamp,
    pub changes: Vec<crate::ChangeRecord>,
}

impl Repo {
    /// The commit `reference` (`HEAD`, `refs/heads/x`, `refs/remotes/origin/x`) points at.
    pub fn resolve_reference(&self, reference: &str) -> Option<Oid> {
        self.inner
            .revparse_single(reference)
            .ok()?
            .peel_to_commit()
            .ok()
            .map(|c| c.id())
    }

    /// The commits reachable from `tip` and not from `known`, oldest first, whose messages
    /// carry [`crate::CHANGE_TRAILER`] lines: the history upkeep wrote into Git. A `known`
    /// commit that no longer exists (a rewritten branch) is ignored.
    pub fn upkeep_commits(
        &self,
        tip: Oid,
        known: Option<Oid>,
    ) -> Result<Vec<RecordedCommit>, GitError> {
        let wrap = |e: git2::Error| GitError::git("walking history", &e);
        let mut walk = self.inner.revwalk().map_err(wrap)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .map_err(wrap)?;
        walk.push(tip).map_err(wrap)?;
        if let Some(k) = known
            && self.inner.find_commit(k).is_ok()
        {
            walk.hide(k).map_err(wrap)?;
        }
        let needle = format!("{}: ", crate::CHANGE_TRAILER);
        let mut out = Vec::new();
        for oid in walk {
            let oid = oid.map_err(wrap)?;
            let commit = self.inner.find_commit(oid).map_err(wrap)?;
            let raw = commit.message_raw_bytes();
            if !raw.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                continue;
            }
            let message = String::from_utf8_lossy(raw);
            let changes = crate::changes_in_message(&message);
            if changes.is_empty() {
                continue;
            }
            out.push(RecordedCommit {
                commit: oid,
                time: jiff::Timestamp::from_second(commit.time().seconds())
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                changes,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::left_by_the_interrupted_run;

    #[test]
    fn which_locks_the_interrupted_run_left() {
        let journal = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let started = journal + Duration::from_secs(5);
        let ms = Duration::from_millis;
        // (lock written at, left by the interrupted run?, why)
        let cases = [
            (
                journal - ms(1),
                false,
                "older than the journal: not the interrupted run's",
            ),
            (journal, true, "written with the journal"),
            (
                journal + ms(2000),
                true,
                "while the interrupted run wrote files",
            ),
            (started - ms(3), true, "just before this process started"),
            (
                started + ms(8),
                true,
                "a rerun started at once reads its start up to a tick early",
            ),
            (
                started + ms(500),
                false,
                "after this process started: a Git command running now",
            ),
        ];
        for (lock, want, why) in cases {
            assert_eq!(
                left_by_the_interrupted_run(lock, journal, started),
                want,
                "{why}"
            );
        }
    }
}

//! Commits built from a commit's tree in memory, and pushes of a given commit with a lease.
//!
//! Why it is shaped this way:
//! - Pushing upgrades never needs a work tree: upkeep reads the blobs of the remote branch's
//!   tip, edits the few marked files, writes new blobs and a new tree through an in-memory
//!   index, and commits on top of that tip. The user's checkout (its branch, index and
//!   uncommitted changes) is never touched, and a retry after a rejected push is just "read the
//!   new tip, edit again": there is no work-tree state to reset.
//! - Only *existing regular files* of the parent tree can be edited ([`Repo::commit_files`]):
//!   a path in a tree cannot leave the repository, and symlinks, submodules and new files are
//!   refused, so an edit can never write outside what the repository already tracks.
//! - [`Lease`] says what the remote branch must hold for the push to go through. `FastForward`
//!   is git's default (the server keeps the old history); `Expect` replaces the branch only if
//!   it still points where upkeep last saw it — `git push --force-with-lease`. libgit2 has no
//!   lease, so it is checked in the `push_negotiation` callback against the tip the server
//!   advertised on this very connection, which the server then re-checks atomically when it
//!   updates the ref (the protocol sends the old id). Callers use `Expect` only for upgrade
//!   branches, never for the branch people work on.

use std::cell::{Cell, RefCell};
use std::path::Path;

use git2::{Oid, PushOptions, RemoteCallbacks, Repository};

use crate::repo::{REMOTE, check_branch, check_url};
use crate::transport::with_session;
use crate::{Auth, GitError, PushOutcome, Repo};

/// A regular file in a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path from the repository root, `/`-separated.
    pub path: String,
    pub blob: Oid,
}

/// What the remote branch must hold for a push to replace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Only a fast-forward: the remote tip must be an ancestor of the pushed commit.
    FastForward,
    /// Replace the branch (even when not a fast-forward) only if it points at this commit, or
    /// does not exist when `None`.
    Expect(Option<Oid>),
}

/// The author (and committer) of upkeep's commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

fn wrap(what: &'static str) -> impl Fn(git2::Error) -> GitError {
    move |e| GitError::git(what, &e)
}

const TEMP_REF_PREFIX: &str = "refs/upkeep/push/";

/// The trees of `new` (and their subtrees) that `old` does not have at the same place, into
/// `out`: the trees a commit on top of `old` adds.
fn new_trees(
    repo: &Repository,
    new: &git2::Tree<'_>,
    old: Option<&git2::Tree<'_>>,
    out: &mut Vec<Oid>,
) -> Result<(), GitError> {
    if old.is_some_and(|o| o.id() == new.id()) {
        return Ok(());
    }
    out.push(new.id());
    for entry in new {
        if entry.kind() != Some(git2::ObjectType::Tree) {
            continue;
        }
        let same = old
            .and_then(|o| entry.name().ok().and_then(|n| o.get_name(n)))
            .map(|e| e.id());
        if same == Some(entry.id()) {
            continue;
        }
        let sub = repo
            .find_tree(entry.id())
            .map_err(|e| GitError::git("reading a tree", &e))?;
        let old_sub = same.and_then(|id| repo.find_tree(id).ok());
        new_trees(repo, &sub, old_sub.as_ref(), out)?;
    }
    Ok(())
}

/// A commit built by [`Repo::build_commit`]: its id, and each file's old blob and mode.
pub(crate) type BuiltCommit = (Oid, Vec<(Oid, u32)>);

/// Numbers the temporary refs of this process's pushes.
static PUSHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// An index entry for a file just written: the stat data Git compares to notice changes.
pub(crate) fn index_entry(
    path: &str,
    id: Oid,
    mode: i32,
    meta: &std::fs::Metadata,
) -> git2::IndexEntry {
    use std::os::unix::fs::MetadataExt;
    let time = |secs: i64, nanos: i64| {
        git2::IndexTime::new(
            i32::try_from(secs).unwrap_or(i32::MAX),
            u32::try_from(nanos).unwrap_or(0),
        )
    };
    // Truncation is what Git does: the index stores 32-bit stat fields.
    #[allow(clippy::cast_possible_truncation)]
    git2::IndexEntry {
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        dev: meta.dev() as u32,
        ino: meta.ino() as u32,
        mode: u32::try_from(mode).unwrap_or(0o100_644),
        uid: meta.uid(),
        gid: meta.gid(),
        file_size: meta.size() as u32,
        id,
        flags: u16::try_from(path.len().min(0xfff)).unwrap_or(0xfff),
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

impl Repo {
    /// Opens an existing checkout (any remote, or none).
    pub fn open(dir: &Path) -> Result<Self, GitError> {
        let inner = Repository::open(dir)
            .map_err(|e| GitError::git(format!("opening {}", dir.display()), &e))?;
        let url = inner
            .find_remote(REMOTE)
            .ok()
            .and_then(|r| r.url().ok().map(str::to_owned));
        Self::from_repository(inner, url, dir)
    }

    /// Creates a repository in `dir` (which may hold files already) with `branch` as its
    /// unborn initial branch and no remote.
    pub fn init(dir: &Path, branch: &str) -> Result<Self, GitError> {
        check_branch(branch)?;
        let mut options = git2::RepositoryInitOptions::new();
        options.initial_head(branch);
        let inner = Repository::init_opts(dir, &options).map_err(|e| {
            GitError::git(format!("creating a repository in {}", dir.display()), &e)
        })?;
        Self::from_repository(inner, None, dir)
    }

    /// The author Git's configuration names for this repository (`user.name`/`user.email`).
    pub fn configured_author(&self) -> Option<Author> {
        let signature = self.inner.signature().ok()?;
        Some(Author {
            name: signature.name().ok()?.to_owned(),
            email: signature.email().ok()?.to_owned(),
        })
    }

    /// The full message of a commit (given as a hex id).
    pub fn commit_message(&self, commit: &str) -> Option<String> {
        let oid = Oid::from_str(commit).ok()?;
        let c = self.inner.find_commit(oid).ok()?;
        c.message().ok().map(str::to_owned)
    }

    /// The URL of `origin`, when the checkout has one.
    pub fn origin_url(&self) -> Option<&str> {
        (!self.url.is_empty()).then_some(self.url.as_str())
    }

    pub(crate) fn require_origin(&self) -> Result<(), GitError> {
        if self.url.is_empty() {
            return Err(GitError::InvalidUrl {
                url: String::new(),
                reason: format!("{} has no `origin` remote", self.workdir().display()),
            });
        }
        Ok(())
    }

    /// The branch `HEAD` is on (`None` when detached).
    pub fn head_branch(&self) -> Option<String> {
        let head = self.inner.head().ok()?;
        if head.is_branch() {
            head.shorthand().ok().map(str::to_owned)
        } else {
            None
        }
    }

    /// The commit `HEAD` points at (`None` in an empty repository).
    pub fn head_commit(&self) -> Option<Oid> {
        self.inner
            .head()
            .ok()?
            .peel_to_commit()
            .ok()
            .map(|c| c.id())
    }

    /// Where `origin/<branch>` points after the last fetch.
    pub fn remote_branch(&self, branch: &str) -> Result<Option<Oid>, GitError> {
        check_branch(branch)?;
        match self
            .inner
            .refname_to_id(&format!("refs/remotes/{REMOTE}/{branch}"))
        {
            Ok(oid) => Ok(Some(oid)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(GitError::git(format!("reading origin/{branch}"), &e)),
        }
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: Oid, descendant: Oid) -> Result<bool, GitError> {
        if ancestor == descendant {
            return Ok(true);
        }
        self.inner
            .graph_descendant_of(descendant, ancestor)
            .map_err(wrap("comparing commits"))
    }

    /// The author emails of the commits reachable from `tip` but not from `base`, newest first.
    pub fn authors_between(&self, base: Oid, tip: Oid) -> Result<Vec<String>, GitError> {
        let mut walk = self.inner.revwalk().map_err(wrap("walking history"))?;
        walk.push(tip).map_err(wrap("walking history"))?;
        walk.hide(base).map_err(wrap("walking history"))?;
        let mut out = Vec::new();
        for oid in walk {
            let oid = oid.map_err(wrap("walking history"))?;
            let commit = self
                .inner
                .find_commit(oid)
                .map_err(wrap("reading a commit"))?;
            out.push(commit.author().email().unwrap_or_default().to_owned());
        }
        Ok(out)
    }

    /// The tree id of `commit`.
    pub fn tree_of(&self, commit: Oid) -> Result<Oid, GitError> {
        Ok(self
            .inner
            .find_commit(commit)
            .map_err(|e| GitError::git(format!("reading commit {commit}"), &e))?
            .tree_id())
    }

    /// The regular files (not symlinks or submodules) of `commit`'s tree under the directory
    /// `under` (`""` or `"."` for all), sorted by path.
    pub fn files(&self, commit: Oid, under: &str) -> Result<Vec<TreeFile>, GitError> {
        let tree = self
            .inner
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| GitError::git(format!("reading the tree of {commit}"), &e))?;
        let prefix = under.trim_start_matches("./").trim_matches('/');
        let prefix = if prefix == "." { "" } else { prefix };
        let root = if prefix.is_empty() {
            tree
        } else {
            let Ok(entry) = tree.get_path(Path::new(prefix)) else {
                return Ok(Vec::new());
            };
            match entry.to_object(&self.inner).map(git2::Object::into_tree) {
                Ok(Ok(subtree)) => subtree,
                _ => return Ok(Vec::new()),
            }
        };
        let mut out = Vec::new();
        root.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            let regular = matches!(entry.filemode(), 0o100_644 | 0o100_755);
            if entry.kind() == Some(git2::ObjectType::Blob)
                && regular
                && let Ok(name) = entry.name()
            {
                let path = if prefix.is_empty() {
                    format!("{dir}{name}")
                } else {
                    format!("{prefix}/{dir}{name}")
                };
                out.push(TreeFile {
                    path,
                    blob: entry.id(),
                });
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(wrap("walking the tree"))?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The paths whose contents differ between two commits' trees.
    pub fn changed_files(&self, from: Oid, to: Oid) -> Result<Vec<String>, GitError> {
        let tree = |c: Oid| {
            self.inner
                .find_commit(c)
                .and_then(|c| c.tree())
                .map_err(|e| GitError::git(format!("reading the tree of {c}"), &e))
        };
        let (a, b) = (tree(from)?, tree(to)?);
        let diff = self
            .inner
            .diff_tree_to_tree(Some(&a), Some(&b), None)
            .map_err(wrap("comparing trees"))?;
        let mut out: Vec<String> = diff
            .deltas()
            .filter_map(|d| d.new_file().path().or_else(|| d.old_file().path()))
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The contents of a blob.
    pub fn read_blob(&self, blob: Oid) -> Result<Vec<u8>, GitError> {
        Ok(self
            .inner
            .find_blob(blob)
            .map_err(|e| GitError::git(format!("reading blob {blob}"), &e))?
            .content()
            .to_vec())
    }

    /// The contents of `path` in `commit`, when it is a regular file there.
    pub fn read_file_at(&self, commit: Oid, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let tree = self
            .inner
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| GitError::git(format!("reading the tree of {commit}"), &e))?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        if !matches!(entry.filemode(), 0o100_644 | 0o100_755) {
            return Ok(None);
        }
        self.read_blob(entry.id()).map(Some)
    }

    /// Commits new contents for existing regular files of `parent`'s tree, on top of `parent`,
    /// without touching any branch, the index or the work tree. `None` when the contents are
    /// what `parent` already has.
    pub fn commit_files(
        &self,
        parent: Oid,
        files: &[(String, Vec<u8>)],
        author: &Author,
        message: &str,
    ) -> Result<Option<Oid>, GitError> {
        Ok(self
            .build_commit(parent, files, author, message)?
            .map(|(commit, _)| commit))
    }

    /// [`Repo::commit_files`], also returning each file's entry in `parent` (its old blob and
    /// mode), in the order of `files`.
    pub(crate) fn build_commit(
        &self,
        parent: Oid,
        files: &[(String, Vec<u8>)],
        author: &Author,
        message: &str,
    ) -> Result<Option<BuiltCommit>, GitError> {
        // The new objects (blobs, trees, the commit) are written into memory through a second
        // handle on the repository and then stored as one pack: one file instead of one per
        // object, which is most of what committing a thousand files costs. Until the pack is
        // written nothing refers to them, so a crash in between leaves nothing behind.
        let writer = Repository::open(self.inner.path())
            .map_err(|e| GitError::git("opening the repository for writing", &e))?;
        let odb = writer.odb().map_err(wrap("opening the object database"))?;
        let _mempack = odb
            .add_new_mempack_backend(1000)
            .map_err(wrap("opening the object database"))?;
        let made = Self::build_commit_in(&writer, parent, files, author, message)?;
        if let Some((commit, _)) = &made {
            // Only the new objects: the commit, the trees that differ from the parent's, and
            // the blobs (a mempack's own dump would pack the whole tree).
            let new_commit = writer
                .find_commit(*commit)
                .map_err(wrap("reading the new commit"))?;
            let old_tree = writer
                .find_commit(parent)
                .and_then(|c| c.tree())
                .map_err(wrap("reading the tree"))?;
            let new_tree = new_commit.tree().map_err(wrap("reading the tree"))?;
            let mut ids = vec![*commit];
            new_trees(&writer, &new_tree, Some(&old_tree), &mut ids)?;
            let mut blobs = std::collections::HashSet::new();
            for (_, contents) in files {
                let id = Oid::hash_object(git2::ObjectType::Blob, contents)
                    .map_err(wrap("hashing a file"))?;
                if blobs.insert(id) {
                    ids.push(id);
                }
            }
            let main = self
                .inner
                .odb()
                .map_err(wrap("opening the object database"))?;
            crate::pack::store(&odb, &main, &ids)?;
        }
        Ok(made)
    }

    fn build_commit_in(
        repo: &Repository,
        parent: Oid,
        files: &[(String, Vec<u8>)],
        author: &Author,
        message: &str,
    ) -> Result<Option<BuiltCommit>, GitError> {
        let parent_commit = repo
            .find_commit(parent)
            .map_err(|e| GitError::git(format!("reading commit {parent}"), &e))?;
        let parent_tree = parent_commit.tree().map_err(wrap("reading the tree"))?;
        let mut index = git2::Index::new().map_err(wrap("creating an index"))?;
        index
            .read_tree(&parent_tree)
            .map_err(wrap("reading the tree"))?;
        let mut old = Vec::with_capacity(files.len());
        for (path, contents) in files {
            let escapes = |reason: &str| GitError::PathEscapes {
                path: path.clone(),
                reason: reason.to_owned(),
            };
            let plain = !path.is_empty()
                && path.split('/').all(|c| {
                    !c.is_empty() && c != "." && c != ".." && !c.eq_ignore_ascii_case(".git")
                });
            if !plain {
                return Err(escapes("not a plain relative path inside the repository"));
            }
            let Some(mut entry) = index.get_path(Path::new(path), 0) else {
                return Err(escapes(
                    "not a file in the repository (only existing files are edited)",
                ));
            };
            if !matches!(entry.mode, 0o100_644 | 0o100_755) {
                return Err(escapes("not a regular file (a symlink or submodule)"));
            }
            old.push((entry.id, entry.mode));
            entry.id = repo.blob(contents).map_err(wrap("writing a blob"))?;
            entry.file_size = u32::try_from(contents.len()).unwrap_or(u32::MAX);
            index.add(&entry).map_err(wrap("staging a file"))?;
        }
        let tree_id = index
            .write_tree_to(repo)
            .map_err(wrap("writing the tree"))?;
        if tree_id == parent_tree.id() {
            return Ok(None);
        }
        let tree = repo.find_tree(tree_id).map_err(wrap("reading the tree"))?;
        let signature = git2::Signature::now(&author.name, &author.email)
            .map_err(wrap("building the author signature"))?;
        let oid = repo
            .commit(
                None,
                &signature,
                &signature,
                message,
                &tree,
                &[&parent_commit],
            )
            .map_err(wrap("committing"))?;
        Ok(Some((oid, old)))
    }

    /// Paths of `files` (work-tree contents the caller read) whose contents or index entry
    /// differ from `HEAD`: uncommitted changes. Compares object ids in memory; reads only the
    /// index.
    pub fn uncommitted(&self, files: &[(String, &[u8])]) -> Result<Vec<String>, GitError> {
        let Some(head) = self.head_commit() else {
            return Ok(files.iter().map(|(p, _)| p.clone()).collect());
        };
        let tree = self
            .inner
            .find_commit(head)
            .and_then(|c| c.tree())
            .map_err(wrap("reading the tree"))?;
        let mut index = self.inner.index().map_err(wrap("reading the index"))?;
        index.read(false).map_err(wrap("reading the index"))?;
        // What is staged but not committed, in one comparison (the index's tree cache makes it
        // cheap), instead of one tree lookup per file.
        let staged_diff = self
            .inner
            .diff_tree_to_index(Some(&tree), Some(&index), None)
            .map_err(wrap("comparing the index with HEAD"))?;
        let staged: std::collections::HashSet<String> = staged_diff
            .deltas()
            .flat_map(|d| [d.old_file().path(), d.new_file().path()])
            .flatten()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut out = Vec::new();
        for (p, contents) in files {
            let in_index = index.get_path(Path::new(p), 0).map(|e| e.id);
            let worktree = Oid::hash_object(git2::ObjectType::Blob, contents)
                .map_err(wrap("hashing a file"))?;
            if staged.contains(p) || in_index != Some(worktree) {
                out.push(p.clone());
            }
        }
        Ok(out)
    }

    /// Pushes `commit` to `origin`'s `remote_branch` under `lease`; never forces otherwise.
    pub fn push_commit(
        &self,
        commit: Oid,
        remote_branch: &str,
        lease: Lease,
        auth: &Auth,
    ) -> Result<PushOutcome, GitError> {
        self.require_origin()?;
        check_url(&self.url, auth)?;
        check_branch(remote_branch)?;
        // One name per process and push: two upkeeps sharing a clone must never push each
        // other's commit through a shared temporary ref.
        let n = PUSHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = format!(
            "{TEMP_REF_PREFIX}{}-{n}/{remote_branch}",
            std::process::id()
        );
        self.inner
            .reference(&temp, commit, true, "upkeep: push")
            .map_err(|e| GitError::git(format!("creating {temp}"), &e))?;
        let force = if matches!(lease, Lease::Expect(_)) {
            "+"
        } else {
            ""
        };
        let refspec = format!("{force}{temp}:refs/heads/{remote_branch}");
        let result = self.push_refspec(&refspec, lease, auth);
        if let Ok(mut r) = self.inner.find_reference(&temp) {
            // Best effort: a leftover ref under refs/upkeep/ is harmless.
            let _ = r.delete();
        }
        result
    }

    /// Pushes `commit` to `origin`'s `destination` (a full ref name, e.g. `refs/for/main`),
    /// fast-forward only unless `force` (Flux's `push.refspec`).
    pub fn push_commit_to_ref(
        &self,
        commit: Oid,
        destination: &str,
        force: bool,
        auth: &Auth,
    ) -> Result<PushOutcome, GitError> {
        self.require_origin()?;
        check_url(&self.url, auth)?;
        if !destination.starts_with("refs/") || !git2::Reference::is_valid_name(destination) {
            return Err(GitError::git(
                format!("pushing to {destination}"),
                &git2::Error::from_str("not a valid full ref name"),
            ));
        }
        let n = PUSHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = format!("{TEMP_REF_PREFIX}{}-{n}/refspec", std::process::id());
        self.inner
            .reference(&temp, commit, true, "upkeep: push")
            .map_err(|e| GitError::git(format!("creating {temp}"), &e))?;
        let refspec = format!("{}{temp}:{destination}", if force { "+" } else { "" });
        let result = self.push_refspec(&refspec, Lease::FastForward, auth);
        if let Ok(mut r) = self.inner.find_reference(&temp) {
            let _ = r.delete();
        }
        result
    }

    pub(crate) fn push_refspec(
        &self,
        refspec: &str,
        lease: Lease,
        auth: &Auth,
    ) -> Result<PushOutcome, GitError> {
        let mut remote = self
            .inner
            .find_remote(REMOTE)
            .map_err(|e| GitError::git("finding remote origin", &e))?;
        let rejected: RefCell<Option<String>> = RefCell::new(None);
        let lease_broken: RefCell<Option<String>> = RefCell::new(None);
        let lease_slot = &lease_broken;
        let not_fast_forward = Cell::new(false);
        let result = {
            let mut callbacks = RemoteCallbacks::new();
            callbacks.push_update_reference(|reference, status| {
                if let Some(status) = status {
                    rejected
                        .borrow_mut()
                        .get_or_insert_with(|| format!("{reference}: {status}"));
                }
                Ok(())
            });
            if let Lease::Expect(expected) = lease {
                callbacks.push_negotiation(move |updates| {
                    for u in updates {
                        let found = (!u.src().is_zero()).then(|| u.src());
                        if found != expected {
                            let show =
                                |o: Option<Oid>| o.map_or("nothing".to_owned(), |o| o.to_string());
                            *lease_slot.borrow_mut() = Some(format!(
                                "{}: the remote holds {}, expected {}",
                                u.dst_refname().unwrap_or("?"),
                                show(found),
                                show(expected)
                            ));
                            return Err(git2::Error::from_str("lease broken"));
                        }
                    }
                    Ok(())
                });
            }
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            with_session(
                auth,
                || remote.push(&[refspec], Some(&mut options)),
                |e| {
                    if e.code() == git2::ErrorCode::NotFastForward {
                        not_fast_forward.set(true);
                    }
                    GitError::git(format!("pushing to {}", self.url), e)
                },
            )
        };
        if let Some(reason) = lease_broken.into_inner() {
            return Ok(PushOutcome::Rejected { reason });
        }
        match result {
            Ok(()) => Ok(match rejected.into_inner() {
                Some(reason) => PushOutcome::Rejected { reason },
                None => PushOutcome::Pushed,
            }),
            Err(GitError::Git { message, .. }) if not_fast_forward.get() => {
                Ok(PushOutcome::Rejected { reason: message })
            }
            Err(e) => Err(e),
        }
    }
}

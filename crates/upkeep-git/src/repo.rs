//! A clone of a GitOps repository with the few operations upkeep needs.
//!
//! Why it is shaped this way:
//! - The remote is always `origin`, the URL it was cloned from; reopening a directory that is
//!   a clone of another URL is an error rather than a silent switch.
//! - [`Repo::commit`] stages every change in the work tree (respecting `.gitignore`) and
//!   returns `None` when the resulting tree equals `HEAD`'s, so a run that changed nothing makes
//!   no empty commit.
//! - [`Repo::push`] pushes `refs/heads/<local>:refs/heads/<remote>` without `+`: libgit2 then
//!   refuses a non-fast-forward locally (error code `NotFastForward`) and the server may refuse
//!   it too (reported only through `push_update_reference`); both become
//!   [`PushOutcome::Rejected`].

use std::fmt;
use std::path::{Path, PathBuf};

use git2::{FetchOptions, Repository};

use crate::transport::with_session;
use crate::{Auth, GitError, paths};

pub(crate) const REMOTE: &str = "origin";

/// How a push ended when the transport itself worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote branch now points at our commit.
    Pushed,
    /// The remote refused the update (e.g. non-fast-forward); fetch, reset, re-apply, retry.
    Rejected { reason: String },
}

/// A work-tree clone with `origin` as its remote.
pub struct Repo {
    pub(crate) inner: Repository,
    workdir: PathBuf,
    /// `origin`'s URL; empty for a checkout without `origin` (see [`Repo::open`]).
    pub(crate) url: String,
}

impl fmt::Debug for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repo")
            .field("workdir", &self.workdir)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Checks the remote URL: `file://`, `https://`, `http://` only when allowed, `ssh://` or
/// scp-like `user@host:path` (a user name but no password), or a local path; never a password
/// or token in it (credentials belong in [`Auth`]).
pub(crate) fn check_url(url: &str, auth: &Auth) -> Result<(), GitError> {
    let invalid = |reason: &str| GitError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    if !url.contains("://") {
        return if Path::new(url).is_absolute() {
            Ok(())
        } else if crate::ssh::is_scp_like(url) {
            crate::ssh::check_url(url)
        } else {
            Err(invalid("neither a URL nor an absolute path"))
        };
    }
    let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    if parsed.scheme() == "ssh" {
        return crate::ssh::check_url(url);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Do not echo the URL: it holds the credentials.
        return Err(GitError::InvalidUrl {
            url: format!(
                "{}://…@{}",
                parsed.scheme(),
                parsed.host_str().unwrap_or("")
            ),
            reason: "credentials in the URL".to_owned(),
        });
    }
    match parsed.scheme() {
        "file" | "https" => Ok(()),
        "http" if auth.allow_insecure_http => Ok(()),
        "http" => Err(GitError::InsecureHttp {
            url: url.to_owned(),
        }),
        other => Err(invalid(&format!("unsupported scheme `{other}`"))),
    }
}

pub(crate) fn check_branch(branch: &str) -> Result<(), GitError> {
    if git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        Ok(())
    } else {
        Err(GitError::InvalidBranch {
            branch: branch.to_owned(),
        })
    }
}

fn wrap(what: &'static str) -> impl Fn(git2::Error) -> GitError {
    move |e| GitError::git(what, &e)
}

fn fetch_options() -> FetchOptions<'static> {
    let mut options = FetchOptions::new();
    options.update_fetchhead(false);
    options
}

impl Repo {
    /// Opens `dir` when it already is a clone of `url`, else clones `url` into it with
    /// `branch` checked out.
    pub fn clone_or_open(
        url: &str,
        dir: &Path,
        branch: &str,
        auth: &Auth,
    ) -> Result<Self, GitError> {
        check_url(url, auth)?;
        check_branch(branch)?;
        let repo = if dir.join(".git").exists() {
            let repo = Repository::open(dir)
                .map_err(|e| GitError::git(format!("opening {}", dir.display()), &e))?;
            let found = repo
                .find_remote(REMOTE)
                .ok()
                .and_then(|r| r.url().ok().map(str::to_owned))
                .unwrap_or_default();
            if found != url {
                return Err(GitError::RemoteMismatch {
                    dir: dir.display().to_string(),
                    expected: url.to_owned(),
                    found,
                });
            }
            repo
        } else {
            with_session(
                auth,
                || {
                    git2::build::RepoBuilder::new()
                        .branch(branch)
                        .fetch_options(fetch_options())
                        .clone(url, dir)
                },
                |e| GitError::git(format!("cloning {url}"), e),
            )?
        };
        Self::from_repository(repo, Some(url.to_owned()), dir)
    }

    pub(crate) fn from_repository(
        repo: Repository,
        url: Option<String>,
        dir: &Path,
    ) -> Result<Self, GitError> {
        // libgit2 looks up every entry of every tree it writes, to refuse a tree that names a
        // missing object (Git itself does not). upkeep's trees are an existing tree's entries
        // plus blobs it has just written, so the check only costs: one object lookup per file
        // of the repository, per commit (10,000 for the benchmark's repository).
        static RELAXED: std::sync::Once = std::sync::Once::new();
        RELAXED.call_once(|| git2::opts::strict_object_creation(false));
        let workdir = repo.workdir().ok_or_else(|| GitError::Git {
            what: format!("opening {}", dir.display()),
            message: "bare repository has no work tree".to_owned(),
        })?;
        let workdir = std::fs::canonicalize(workdir).map_err(|source| GitError::Io {
            what: format!("resolving {}", workdir.display()),
            source,
        })?;
        Ok(Self {
            inner: repo,
            workdir,
            url: url.unwrap_or_default(),
        })
    }

    /// The work tree (canonical path).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Fetches every branch of `origin` into `refs/remotes/origin/*`.
    pub fn fetch(&self, auth: &Auth) -> Result<(), GitError> {
        self.require_origin()?;
        check_url(&self.url, auth)?;
        let mut remote = self
            .inner
            .find_remote(REMOTE)
            .map_err(|e| GitError::git("finding remote origin", &e))?;
        with_session(
            auth,
            || remote.fetch::<&str>(&[], Some(&mut fetch_options()), None),
            |e| GitError::git(format!("fetching {}", self.url), e),
        )
    }

    /// Points local `branch` at `origin/<branch>`, checks it out and discards every local
    /// change (the starting point for re-applying edits after a rejected push).
    pub fn reset_to_remote(&self, branch: &str) -> Result<(), GitError> {
        check_branch(branch)?;
        let remote_ref = format!("refs/remotes/{REMOTE}/{branch}");
        let oid = self
            .inner
            .refname_to_id(&remote_ref)
            .map_err(|_| GitError::BranchNotFound {
                branch: branch.to_owned(),
            })?;
        let local = format!("refs/heads/{branch}");
        self.inner
            .reference(&local, oid, true, "upkeep: reset to remote")
            .map_err(|e| GitError::git(format!("updating {local}"), &e))?;
        self.inner
            .set_head(&local)
            .map_err(|e| GitError::git(format!("checking out {local}"), &e))?;
        let object = self
            .inner
            .find_object(oid, None)
            .map_err(|e| GitError::git(format!("reading {oid}"), &e))?;
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force().remove_untracked(true);
        self.inner
            .reset(&object, git2::ResetType::Hard, Some(&mut checkout))
            .map_err(|e| GitError::git(format!("resetting to {remote_ref}"), &e))
    }

    /// Writes `contents` to `relative` inside the work tree, creating parent directories;
    /// refuses paths that would leave it (see `paths.rs`).
    pub fn write_file(&self, relative: &str, contents: &[u8]) -> Result<(), GitError> {
        let path = paths::inside(&self.workdir, relative)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| GitError::Io {
                what: format!("creating {}", parent.display()),
                source,
            })?;
        }
        // Directories created just now cannot be symlinks, but re-check in case the tree
        // changed between the check and the write.
        paths::inside(&self.workdir, relative)?;
        std::fs::write(&path, contents).map_err(|source| GitError::Io {
            what: format!("writing {}", path.display()),
            source,
        })
    }

    /// Commits every change in the work tree on the current branch; `None` when nothing
    /// changed.
    pub fn commit(
        &self,
        author_name: &str,
        author_email: &str,
        message: &str,
    ) -> Result<Option<git2::Oid>, GitError> {
        let mut index = self.inner.index().map_err(wrap("reading the index"))?;
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .map_err(wrap("staging changes"))?;
        index
            .update_all(["*"], None)
            .map_err(wrap("staging deletions"))?;
        index.write().map_err(wrap("writing the index"))?;
        let tree_id = index.write_tree().map_err(wrap("writing the tree"))?;
        let parent = match self.inner.head() {
            Ok(head) => Some(head.peel_to_commit().map_err(wrap("reading HEAD"))?),
            Err(e) if e.code() == git2::ErrorCode::UnbornBranch => None,
            Err(e) => return Err(GitError::git("reading HEAD", &e)),
        };
        if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
            return Ok(None);
        }
        let tree = self
            .inner
            .find_tree(tree_id)
            .map_err(wrap("reading the tree"))?;
        let signature = git2::Signature::now(author_name, author_email)
            .map_err(wrap("building the author signature"))?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = self
            .inner
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .map_err(wrap("committing"))?;
        Ok(Some(oid))
    }

    /// Pushes `local_branch` to `remote_branch` on `origin`, never forcing.
    pub fn push(
        &self,
        local_branch: &str,
        remote_branch: &str,
        auth: &Auth,
    ) -> Result<PushOutcome, GitError> {
        check_url(&self.url, auth)?;
        check_branch(local_branch)?;
        check_branch(remote_branch)?;
        let refspec = format!("refs/heads/{local_branch}:refs/heads/{remote_branch}");
        self.push_refspec(&refspec, crate::Lease::FastForward, auth)
    }
}

//! Git for upkeep: clone or open a GitOps repository, fetch, reset to the remote branch, write
//! files inside the work tree, commit only what changed, and push without ever forcing.
//!
//! Why it is shaped this way:
//! - One TLS stack. git2 is built from vendored libgit2 WITHOUT its `https`/`ssh` features
//!   (which would bring OpenSSL and libssh2 next to rustls). `http://` and `https://` remotes go
//!   through upkeep's own smart-HTTP subtransport ([`transport`]) backed by reqwest on rustls;
//!   `ssh://` and scp-like `user@host:path` remotes run the system OpenSSH client (`ssh.rs`,
//!   strict host-key checking, registered with the HTTP one); `file://` and local paths use
//!   libgit2's built-in local transport.
//! - Credentials are per operation ([`Auth`]), handed to the transport through a thread-local
//!   session that lives exactly as long as the libgit2 call; they never appear in URLs, logs,
//!   errors or `Debug` output.
//! - A push that the server (or libgit2's own fast-forward check) turns down is not an error
//!   but [`PushOutcome::Rejected`], because the caller's answer is a plan — fetch, reset,
//!   re-apply, push again — not a failure report. libgit2 reports a server-side rejection only
//!   through the `push_update_reference` callback, so that callback is always installed.
//! - All operations are blocking; call them from a plain thread (or `spawn_blocking`), never
//!   from inside an async task: the HTTP transport drives its own small Tokio runtime.

mod atomic;
mod auth;
pub mod clusters;
mod error;
mod failpoint;
pub mod gotemplate;
mod local;
mod lock;
pub mod marked_fields;
mod message;
mod pack;
mod paths;
pub mod pr;
mod repo;
mod ssh;
pub mod transport;
mod tree;
mod treewalk;
mod writer;

pub use auth::Auth;
pub use error::GitError;
pub use failpoint::failpoint;
pub use git2::Oid;
pub use local::{RecordedCommit, Recovery};
pub use lock::{WorkTreeLock, lock_file, lock_path_for_dir};
pub use message::{
    CHANGE_TRAILER, ChangeRecord, DEFAULT_MESSAGE_TEMPLATE, FLUX_DEFAULT_MESSAGE, MessageTemplate,
    TemplateError, changes_in_message, pull_request_body, with_trailers,
};
pub use pr::{
    PrError, PrRequest, PrTarget, ProviderKind, PullRequest, Token, api_base_for,
    ensure_pull_request,
};
pub use repo::{PushOutcome, Repo};
pub use tree::{Author, Lease, TreeFile};
pub use writer::{Branches, Prepared, Written, write_and_push};

/// Replaces the bytes of the existing regular file `relative` inside `root` (a directory that
/// is not a Git checkout): never outside `root`, never through a symlink leading out, never a
/// symlink itself, atomically, keeping the file's mode and owner.
pub fn replace_file_in(
    root: &std::path::Path,
    relative: &str,
    contents: &[u8],
) -> Result<(), GitError> {
    let root = std::fs::canonicalize(root).map_err(|source| GitError::Io {
        what: format!("resolving {}", root.display()),
        source,
    })?;
    let path = paths::inside(&root, relative)?;
    atomic::replace_file(&path, contents)
        .map(drop)
        .map_err(|source| GitError::Io {
            what: format!("writing {}", path.display()),
            source,
        })
}

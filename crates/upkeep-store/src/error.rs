//! The store's one error type.
//!
//! redb spreads its failures over six error types (database, transaction, table, storage,
//! commit, plus the umbrella `redb::Error`); callers of the store only need to know *what to do*:
//! the file is unreadable (`Io`), not ours or damaged (`Corrupt`), from a newer upkeep
//! (`SchemaTooNew`), or busy (`Locked`). Every variant names the store's path, because the
//! person reading the message usually has several state files and needs to know which one.
//! Variant names are stable: they are used as metric labels.

use std::path::{Path, PathBuf};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("store {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a redb database, not an upkeep store, or is damaged.
    #[error("store {} is not a usable upkeep store: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// The store was written by a newer upkeep whose schema this one does not know.
    #[error(
        "store {} has schema version {found}, newer than the {supported} this upkeep understands",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    /// Another process (or another handle in this one) has the file open.
    #[error("store {} is already open in another process", path.display())]
    Locked { path: PathBuf },
    /// The file uses an older redb file format that must be upgraded first.
    #[error("store {} uses redb file format {format}, which this upkeep cannot open", path.display())]
    FormatTooOld { path: PathBuf, format: u8 },
    /// A run id that the store never handed out.
    #[error("store {}: there is no run {id}", path.display())]
    UnknownRun { path: PathBuf, id: u64 },
    /// `finish_run` on a run that already has an outcome.
    #[error("store {}: run {id} has already finished", path.display())]
    RunAlreadyFinished { path: PathBuf, id: u64 },
    /// Any other database failure (a value too large, a poisoned lock, …).
    #[error("store {}: {detail}", path.display())]
    Database { path: PathBuf, detail: String },
}

impl StoreError {
    /// The path of the store the error is about (`:memory:` for in-memory stores).
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::Corrupt { path, .. }
            | Self::SchemaTooNew { path, .. }
            | Self::Locked { path }
            | Self::FormatTooOld { path, .. }
            | Self::UnknownRun { path, .. }
            | Self::RunAlreadyFinished { path, .. }
            | Self::Database { path, .. } => path,
        }
    }

    /// A suggestion for the person running upkeep, where one can be made.
    pub fn hint(&self) -> Option<String> {
        let p = self.path().display();
        match self {
            Self::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => Some(format!(
                    "create the directory that should hold {p}, or choose another store path"
                )),
                std::io::ErrorKind::PermissionDenied => Some(format!(
                    "make {p} (and its directory) readable and writable by this user"
                )),
                std::io::ErrorKind::IsADirectory => Some(format!(
                    "{p} is a directory; give the path of a file inside it"
                )),
                _ => None,
            },
            Self::Corrupt { .. } => Some(format!(
                "check that {p} is the upkeep state file; to start afresh, move it aside \
                 (first-seen times and history in it will be lost)"
            )),
            Self::SchemaTooNew { .. } => Some(format!(
                "{p} was written by a newer upkeep; upgrade upkeep, or use another store file"
            )),
            Self::Locked { .. } => Some(format!(
                "another upkeep is using {p}; wait for it to finish, or give this one its own store"
            )),
            Self::FormatTooOld { .. } => Some(format!(
                "open {p} once with the upkeep release that wrote it and upgrade it, or move it aside"
            )),
            Self::UnknownRun { .. } | Self::RunAlreadyFinished { .. } | Self::Database { .. } => {
                None
            }
        }
    }

    /// Maps any redb error onto the variants above.
    pub(crate) fn from_redb(path: &Path, err: impl Into<redb::Error>) -> Self {
        let path = path.to_path_buf();
        match err.into() {
            redb::Error::Io(source) => {
                // redb reports a file that does not start with its magic number (including
                // one shorter than that) as `InvalidData`, and a truncated header as
                // `UnexpectedEof`: both mean "not a redb database", not an I/O failure.
                match source.kind() {
                    std::io::ErrorKind::InvalidData => Self::Corrupt {
                        path,
                        detail: "it is not a redb database (it does not start with redb's \
                                 magic number)"
                            .to_owned(),
                    },
                    std::io::ErrorKind::UnexpectedEof => Self::Corrupt {
                        path,
                        detail: "it is too short to be a redb database".to_owned(),
                    },
                    _ => Self::Io { path, source },
                }
            }
            redb::Error::Corrupted(detail) => Self::Corrupt {
                path,
                detail: if detail.contains("magic number") {
                    format!("it is not a redb database ({detail})")
                } else {
                    detail
                },
            },
            redb::Error::DatabaseAlreadyOpen => Self::Locked { path },
            redb::Error::UpgradeRequired(format) => Self::FormatTooOld { path, format },
            other => Self::Database {
                path,
                detail: other.to_string(),
            },
        }
    }
}

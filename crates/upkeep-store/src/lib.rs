//! Embedded state for upkeep's standalone shape (`upkeep run`, `upkeep plan`, `upkeep history`).
//!
//! In-cluster, upkeep keeps its state in resource `status`; standalone, it has no API server,
//! so it keeps the same facts in one redb file: when each tag was first seen (for
//! `minimumReleaseAge`), the digest last reflected per policy (`digestReflectionPolicy:
//! IfNotPresent`), every change it made (for `upkeep history`), the cluster upgrades it
//! triggered (`upkeep history --cluster`), the SEQUENCE of each `upkeep calendar` event, the progress of the ClusterUpgrade campaigns `upkeep run`
//! carries out (the controller's `status.clusters[]`), and its runs with their errors. redb was chosen because it is pure Rust, single-file, and its commits are atomic and
//! crash-safe (copy-on-write B-trees with a double-buffered header): a process killed mid-write
//! leaves the file at the last committed transaction, which `tests/crash.rs` checks by killing
//! a writer.
//!
//! Shape:
//! - Every public operation is one redb transaction, so a batch is all there or not at all.
//! - Nothing here reads the clock: times are parameters, as everywhere in upkeep.
//! - Fixed-width facts (first-seen times, ids) are stored as native redb keys and values;
//!   records that will grow fields over time (changes, runs, run errors) are JSON, so a newer
//!   field can be added with `#[serde(default)]` without a migration. A schema version in the
//!   `meta` table guards the layout itself: a store from a newer upkeep is refused, not misread.
//! - This crate is an adapter: it depends only on `upkeep-core`, for the pure
//!   [`upkeep_core::version::FirstSeenStore`] trait it implements (the HTTP stack of
//!   `upkeep-registry` stays out of it).

mod calendar;
mod campaigns;
mod changes;
mod cluster_upgrades;
mod digests;
mod error;
mod first_seen;
mod runs;

use std::path::{Path, PathBuf};

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

pub use campaigns::{CampaignCluster, CampaignHistory, CampaignStatus, CampaignUpdate};
pub use changes::{Change, ChangeId, NewChange, ObjectRef, cluster_subject};
pub use cluster_upgrades::{ClusterUpgradeRecord, NewClusterUpgrade, UpgradeOutcome};
pub use digests::KnownDigest;
pub use error::StoreError;
pub use runs::{Outcome, Run, RunError, RunId};

/// The layout version this code writes and understands. Bump it when a table changes shape
/// (and teach [`Store::open`] to migrate the older one).
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema_version";
const NEXT_CHANGE_KEY: &str = "next_change_id";
const NEXT_RUN_KEY: &str = "next_run_id";

/// The path reported for stores that live in memory.
pub const MEMORY_PATH: &str = ":memory:";

/// upkeep's standalone state, in one redb file.
///
/// The store is `Send + Sync`; share it behind an `Arc`. Only one process may have a file
/// open at a time ([`StoreError::Locked`] otherwise).
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens the store at `path`, creating it (but not its directory) when it does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        // redb opens a directory "successfully" on some platforms and then fails obscurely.
        if path.is_dir() {
            return Err(StoreError::Io {
                path,
                source: std::io::Error::from(std::io::ErrorKind::IsADirectory),
            });
        }
        Self::create_atomically(&path)?;
        let db = Database::builder()
            .create(&path)
            .map_err(|e| StoreError::from_redb(&path, e))?;
        let store = Self { db, path };
        store.init()?;
        Ok(store)
    }

    /// Creates a missing store under a temporary name and links it into place, so a process
    /// killed while creating it leaves no half-made file that every later run would refuse
    /// ("not a redb database"). An empty file (what such a kill left before this existed) is
    /// replaced the same way: it cannot hold any state.
    fn create_atomically(path: &Path) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(m) if m.len() > 0 => return Ok(()),
            Ok(_) => std::fs::remove_file(path).map_err(io)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.creating-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let made = (|| {
            let db = Database::builder()
                .create(&tmp)
                .map_err(|e| StoreError::from_redb(path, e))?;
            let store = Self {
                db,
                path: path.to_path_buf(),
            };
            store.init()?;
            drop(store);
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            // A hard link fails when another process created the store meanwhile: theirs wins.
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                // File systems without hard links: a rename is atomic too.
                Err(_) => std::fs::rename(&tmp, path).map_err(io),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        made
    }

    /// A store that lives in memory and disappears when dropped (tests, `--dry-run`).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(MEMORY_PATH);
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StoreError::from_redb(&path, e))?;
        let store = Self { db, path };
        store.init()?;
        Ok(store)
    }

    /// The file this store lives in ([`MEMORY_PATH`] for in-memory stores).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let v = meta.get(SCHEMA_KEY).map_err(|e| self.err(e))?;
        Ok(v.map_or(0, |g| g.value()))
    }

    /// Checks the schema version and creates missing tables, in one transaction.
    fn init(&self) -> Result<(), StoreError> {
        let txn = self.write()?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let found = meta
                .get(SCHEMA_KEY)
                .map_err(|e| self.err(e))?
                .map(|g| g.value());
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::SchemaTooNew {
                        path: self.path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(_) => {}
                None => {
                    // A redb file without our version but with tables belongs to someone else.
                    let foreign: Vec<String> = txn
                        .list_tables()
                        .map_err(|e| self.err(e))?
                        .map(|t| redb::TableHandle::name(&t).to_owned())
                        .filter(|n| n != "meta")
                        .collect();
                    if !foreign.is_empty() {
                        return Err(StoreError::Corrupt {
                            path: self.path.clone(),
                            detail: format!(
                                "it is a redb database without an upkeep schema version \
                                 (tables: {})",
                                foreign.join(", ")
                            ),
                        });
                    }
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        first_seen::create_tables(&txn).map_err(|e| self.err(e))?;
        changes::create_tables(&txn).map_err(|e| self.err(e))?;
        runs::create_tables(&txn).map_err(|e| self.err(e))?;
        digests::create_tables(&txn).map_err(|e| self.err(e))?;
        calendar::create_tables(&txn).map_err(|e| self.err(e))?;
        cluster_upgrades::create_tables(&txn).map_err(|e| self.err(e))?;
        campaigns::create_tables(&txn).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::from_redb(&self.path, e)
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(|e| self.err(e))
    }

    fn write(&self) -> Result<WriteTransaction, StoreError> {
        self.db.begin_write().map_err(|e| self.err(e))
    }

    /// Takes the next value of the counter `key` in `meta` (starting at 1).
    fn next_id(&self, txn: &WriteTransaction, key: &str, count: u64) -> Result<u64, StoreError> {
        let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let next = meta
            .get(key)
            .map_err(|e| self.err(e))?
            .map_or(1, |g| g.value());
        meta.insert(key, next + count).map_err(|e| self.err(e))?;
        Ok(next)
    }

    /// Test support: rewrites the recorded schema version (to simulate a newer upkeep).
    #[doc(hidden)]
    pub fn set_schema_version_for_tests(&self, version: u64) -> Result<(), StoreError> {
        let txn = self.write()?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            meta.insert(SCHEMA_KEY, version).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

//! The log of changes upkeep made, for `upkeep history`.
//!
//! An append-only table keyed by a monotonic id (a counter in `meta`, never reused even if
//! entries are pruned later), so "newest first" is a reverse range scan. Records are JSON so
//! fields can be added without a migration. Lookups by repository, file, policy and subject go
//! through one secondary index whose keys are `(field, scope, value, id)`: the id is last so
//! each lookup is one reverse range scan that yields newest first and stops at `limit`.
//!
//! A change's *subject* is a free-form key for "what this change was about" beyond the file:
//! cluster upgrades (a later issue) record `cluster/<name>` through [`cluster_subject`], so
//! [`Store::history_for_cluster`] works without another table.
//!
//! The repository, commit and pull-request fields are redacted ([`upkeep_core::redact`]) on the
//! way in, and so is a repository given to a lookup: a URL with a password or `?token=` must
//! never be written to disk, and looking it up again still finds its changes.

use jiff::Timestamp;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use upkeep_core::redact::redact;

use crate::runs::RunId;
use crate::{NEXT_CHANGE_KEY, Store, StoreError};

const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
const CHANGE_INDEX: TableDefinition<(u8, &str, &str, u64), ()> =
    TableDefinition::new("change_index");

/// `(repository, commit)` → how many changes it recorded: a Git commit is recorded once.
const RECORDED_COMMITS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("recorded_commits");
/// `(repository, reference)` → the tip up to which Git's history was read into the store.
const INDEXED_TIPS: TableDefinition<(&str, &str), &str> = TableDefinition::new("indexed_tips");

const BY_REPOSITORY: u8 = 1;
const BY_FILE: u8 = 2;
const BY_POLICY: u8 = 3;
const BY_SUBJECT: u8 = 4;

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(CHANGES)?;
    txn.open_table(RECORDED_COMMITS)?;
    txn.open_table(INDEXED_TIPS)?;
    txn.open_table(CHANGE_INDEX).map(drop)
}

/// The id of a recorded change; later changes have larger ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChangeId(pub u64);

impl std::fmt::Display for ChangeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What was changed inside the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ObjectRef {
    /// A Kubernetes object (an App CR, a HelmRelease, an Argo CD Application…).
    Resource {
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
    },
    /// A YAML path in a file that is not a Kubernetes object (`Chart.yaml`, values files).
    Path { path: String },
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Resource {
                kind,
                namespace: Some(ns),
                name,
            } => write!(f, "{kind}/{ns}/{name}"),
            Self::Resource {
                kind,
                namespace: None,
                name,
            } => write!(f, "{kind}/{name}"),
            Self::Path { path } => f.write_str(path),
        }
    }
}

/// A change to record; the store assigns its [`ChangeId`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewChange {
    /// When the change was made (committed or applied).
    pub at: Timestamp,
    /// The repository URL or directory.
    pub repository: String,
    /// The file, relative to the repository root.
    pub file: String,
    pub object: ObjectRef,
    pub old: String,
    pub new: String,
    /// The policy that allowed it, as `<namespace>/<policy>`.
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
    /// The run that made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    /// What the change was about beyond the file, e.g. [`cluster_subject`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A recorded change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub id: ChangeId,
    #[serde(flatten)]
    pub change: NewChange,
}

/// `change` with the fields that may hold a URL redacted.
fn redacted(change: &NewChange) -> NewChange {
    let text = |s: &str| redact(s).into_owned();
    NewChange {
        repository: text(&change.repository),
        commit: change.commit.as_deref().map(text),
        pull_request: change.pull_request.as_deref().map(text),
        ..change.clone()
    }
}

/// The subject key under which changes to cluster `name` are recorded.
pub fn cluster_subject(name: &str) -> String {
    format!("cluster/{name}")
}

impl Store {
    /// Appends `changes` in one transaction (all or none) and returns their ids, in order.
    pub fn append_changes(&self, changes: &[NewChange]) -> Result<Vec<ChangeId>, StoreError> {
        let txn = self.write()?;
        let ids = self.append_in(&txn, changes)?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(ids)
    }

    /// Records the changes of Git commit `commit` of `repository`, unless that commit was
    /// recorded before: `Ok(None)` then. One transaction, so a commit's changes are all there
    /// or none, and recording the same commit twice (a rerun after a crash, history rebuilt
    /// from Git) never duplicates them.
    pub fn record_commit(
        &self,
        repository: &str,
        commit: &str,
        changes: &[NewChange],
    ) -> Result<Option<Vec<ChangeId>>, StoreError> {
        let repository = &*redact(repository);
        let txn = self.write()?;
        {
            let mut recorded = txn.open_table(RECORDED_COMMITS).map_err(|e| self.err(e))?;
            if recorded
                .get((repository, commit))
                .map_err(|e| self.err(e))?
                .is_some()
            {
                return Ok(None);
            }
            recorded
                .insert((repository, commit), changes.len() as u64)
                .map_err(|e| self.err(e))?;
        }
        let ids = self.append_in(&txn, changes)?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(Some(ids))
    }

    /// Whether `commit` of `repository` has been recorded.
    pub fn is_commit_recorded(&self, repository: &str, commit: &str) -> Result<bool, StoreError> {
        let repository = &*redact(repository);
        let txn = self.read()?;
        let recorded = txn.open_table(RECORDED_COMMITS).map_err(|e| self.err(e))?;
        Ok(recorded
            .get((repository, commit))
            .map_err(|e| self.err(e))?
            .is_some())
    }

    /// The tip of `reference` in `repository` up to which Git's history has been read into
    /// the store (see [`Store::set_indexed_tip`]).
    pub fn indexed_tip(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, StoreError> {
        let repository = &*redact(repository);
        let txn = self.read()?;
        let tips = txn.open_table(INDEXED_TIPS).map_err(|e| self.err(e))?;
        Ok(tips
            .get((repository, reference))
            .map_err(|e| self.err(e))?
            .map(|g| g.value().to_owned()))
    }

    /// Remembers that every upkeep commit reachable from `commit` on `reference` is recorded.
    pub fn set_indexed_tip(
        &self,
        repository: &str,
        reference: &str,
        commit: &str,
    ) -> Result<(), StoreError> {
        let repository = &*redact(repository);
        let txn = self.write()?;
        {
            let mut tips = txn.open_table(INDEXED_TIPS).map_err(|e| self.err(e))?;
            tips.insert((repository, reference), commit)
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn append_in(
        &self,
        txn: &WriteTransaction,
        changes: &[NewChange],
    ) -> Result<Vec<ChangeId>, StoreError> {
        let changes: Vec<NewChange> = changes.iter().map(redacted).collect();
        let first = self.next_id(txn, NEXT_CHANGE_KEY, changes.len() as u64)?;
        let mut ids = Vec::with_capacity(changes.len());
        {
            let mut table = txn.open_table(CHANGES).map_err(|e| self.err(e))?;
            let mut index = txn.open_table(CHANGE_INDEX).map_err(|e| self.err(e))?;
            for (id, c) in (first..).zip(&changes) {
                let bytes = serde_json::to_vec(c).map_err(|e| StoreError::Database {
                    path: self.path.clone(),
                    detail: format!("change {id} cannot be encoded: {e}"),
                })?;
                table
                    .insert(id, bytes.as_slice())
                    .map_err(|e| self.err(e))?;
                let mut keys = vec![
                    (BY_REPOSITORY, "", c.repository.as_str()),
                    (BY_FILE, c.repository.as_str(), c.file.as_str()),
                    (BY_POLICY, "", c.policy.as_str()),
                ];
                if let Some(s) = &c.subject {
                    keys.push((BY_SUBJECT, "", s.as_str()));
                }
                for (field, scope, value) in keys {
                    index
                        .insert((field, scope, value, id), ())
                        .map_err(|e| self.err(e))?;
                }
                ids.push(ChangeId(id));
            }
        }
        Ok(ids)
    }

    /// Appends one change; see [`Store::append_changes`].
    pub fn append_change(&self, change: &NewChange) -> Result<ChangeId, StoreError> {
        let ids = self.append_changes(std::slice::from_ref(change))?;
        Ok(ids[0])
    }

    /// One change by id.
    pub fn change(&self, id: ChangeId) -> Result<Option<Change>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(CHANGES).map_err(|e| self.err(e))?;
        let got = table.get(id.0).map_err(|e| self.err(e))?;
        got.map(|g| self.decode_change(id.0, g.value())).transpose()
    }

    /// The newest `limit` changes, newest first.
    pub fn changes(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(CHANGES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))?.rev().take(limit) {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            out.push(self.decode_change(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Changes to files of `repository`, newest first.
    pub fn changes_for_repository(
        &self,
        repository: &str,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.indexed(BY_REPOSITORY, "", &redact(repository), limit)
    }

    /// Changes to `file` in `repository`, newest first.
    pub fn changes_for_file(
        &self,
        repository: &str,
        file: &str,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.indexed(BY_FILE, &redact(repository), file, limit)
    }

    /// Changes allowed by `policy` (`<namespace>/<policy>`), newest first.
    pub fn changes_for_policy(
        &self,
        policy: &str,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.indexed(BY_POLICY, "", policy, limit)
    }

    /// Changes recorded with `subject`, newest first.
    pub fn history_for_subject(
        &self,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.indexed(BY_SUBJECT, "", subject, limit)
    }

    /// Changes recorded for cluster `name` (subject [`cluster_subject`]), newest first.
    pub fn history_for_cluster(&self, name: &str, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.history_for_subject(&cluster_subject(name), limit)
    }

    fn indexed(
        &self,
        field: u8,
        scope: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(CHANGE_INDEX).map_err(|e| self.err(e))?;
        let table = txn.open_table(CHANGES).map_err(|e| self.err(e))?;
        let range = index
            .range((field, scope, value, 0)..=(field, scope, value, u64::MAX))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in range.rev().take(limit) {
            let (k, ()) = entry
                .map(|(k, v)| (k, v.value()))
                .map_err(|e| self.err(e))?;
            let id = k.value().3;
            let Some(bytes) = table.get(id).map_err(|e| self.err(e))? else {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("the change index names change {id}, which is missing"),
                });
            };
            out.push(self.decode_change(id, bytes.value())?);
        }
        Ok(out)
    }

    fn decode_change(&self, id: u64, bytes: &[u8]) -> Result<Change, StoreError> {
        let change = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("change {id} cannot be decoded: {e}"),
        })?;
        Ok(Change {
            id: ChangeId(id),
            change,
        })
    }
}

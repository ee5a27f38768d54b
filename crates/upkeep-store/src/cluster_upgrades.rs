//! The log of cluster upgrades the standalone CLI triggered, for `upkeep history --cluster`.
//!
//! Shaped like the change log ([`crate::changes`]): an append-only table keyed by a monotonic
//! id, JSON records (fields can be added with `#[serde(default)]`), and one index keyed
//! `(cluster, id)` so "this cluster's upgrades, newest first" is one reverse range scan. A
//! cluster upgrade is not a file change: it may be a label patch on the management cluster
//! with no commit, and it has an outcome that later observation can add to (a new record with
//! the later outcome, never an update in place: the log only grows).

use jiff::Timestamp;
use redb::{TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use upkeep_core::redact::redact;

use crate::{Store, StoreError};

const UPGRADES: TableDefinition<u64, &[u8]> = TableDefinition::new("cluster_upgrades");
const BY_CLUSTER: TableDefinition<(&str, u64), ()> = TableDefinition::new("cluster_upgrade_index");
pub(crate) const NEXT_UPGRADE_KEY: &str = "next_cluster_upgrade_id";

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(UPGRADES)?;
    txn.open_table(BY_CLUSTER).map(drop)
}

/// How a recorded cluster upgrade stood when it was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpgradeOutcome {
    /// The change was made (committed or patched); the cluster has not been seen upgraded.
    Triggered,
    /// The cluster reported the new version and ready.
    Succeeded,
    /// The cluster reported a failure, or did not finish in time.
    Failed,
}

impl UpgradeOutcome {
    /// The name, as in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeOutcome::Triggered => "Triggered",
            UpgradeOutcome::Succeeded => "Succeeded",
            UpgradeOutcome::Failed => "Failed",
        }
    }
}

/// A cluster upgrade to record; the store assigns its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewClusterUpgrade {
    /// The cluster's name.
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The version before (as written in the manifest or label).
    pub from: String,
    pub to: String,
    /// When it was triggered (or finished, for a later outcome).
    pub at: Timestamp,
    /// `git` (a commit in the repository) or `api` (a patch on the management cluster).
    pub via: String,
    /// The repository directory or URL, or the API server.
    pub target: String,
    /// The file that was changed (git).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
    pub outcome: UpgradeOutcome,
    /// Why (a failure's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the outcome was observed (Succeeded/Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// An outcome record: the id of the record (the trigger) it concludes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<u64>,
}

/// A recorded cluster upgrade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterUpgradeRecord {
    pub id: u64,
    #[serde(flatten)]
    pub upgrade: NewClusterUpgrade,
}

impl Store {
    /// Appends one cluster upgrade and returns its id.
    pub fn append_cluster_upgrade(&self, upgrade: &NewClusterUpgrade) -> Result<u64, StoreError> {
        let txn = self.write()?;
        let id = self.append_cluster_upgrade_in(&txn, upgrade)?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// [`Store::append_cluster_upgrade`] inside a caller's transaction (the campaign table
    /// records a cluster's progress and its history entry together).
    pub(crate) fn append_cluster_upgrade_in(
        &self,
        txn: &WriteTransaction,
        upgrade: &NewClusterUpgrade,
    ) -> Result<u64, StoreError> {
        // The target may be a repository URL, the reason a server's message: redacted before
        // they reach the disk.
        let text = |s: &str| redact(s).into_owned();
        let upgrade = &NewClusterUpgrade {
            target: text(&upgrade.target),
            pull_request: upgrade.pull_request.as_deref().map(text),
            reason: upgrade.reason.as_deref().map(text),
            ..upgrade.clone()
        };
        let id = self.next_id(txn, NEXT_UPGRADE_KEY, 1)?;
        {
            let mut table = txn.open_table(UPGRADES).map_err(|e| self.err(e))?;
            let mut index = txn.open_table(BY_CLUSTER).map_err(|e| self.err(e))?;
            let bytes = serde_json::to_vec(upgrade).map_err(|e| StoreError::Database {
                path: self.path.clone(),
                detail: format!("cluster upgrade {id} cannot be encoded: {e}"),
            })?;
            table
                .insert(id, bytes.as_slice())
                .map_err(|e| self.err(e))?;
            index
                .insert((upgrade.cluster.as_str(), id), ())
                .map_err(|e| self.err(e))?;
        }
        Ok(id)
    }

    /// The recorded upgrade `id`, if it exists (inside a caller's transaction).
    pub(crate) fn cluster_upgrade_in(
        &self,
        txn: &WriteTransaction,
        id: u64,
    ) -> Result<Option<NewClusterUpgrade>, StoreError> {
        let table = txn.open_table(UPGRADES).map_err(|e| self.err(e))?;
        self.decode(&table, id)
    }

    /// Appends the outcome of the upgrade recorded as `id` (a copy of it with `outcome`,
    /// `reason` and `finished_at`, naming `id` in `follows`) and returns the new record's id.
    pub fn conclude_cluster_upgrade(
        &self,
        id: u64,
        outcome: UpgradeOutcome,
        finished_at: Timestamp,
        reason: Option<String>,
    ) -> Result<u64, StoreError> {
        let original = {
            let txn = self.read()?;
            let table = txn.open_table(UPGRADES).map_err(|e| self.err(e))?;
            self.decode(&table, id)?
                .ok_or_else(|| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("cluster upgrade {id} does not exist; it cannot be concluded"),
                })?
        };
        self.append_cluster_upgrade(&NewClusterUpgrade {
            outcome,
            reason,
            finished_at: Some(finished_at),
            follows: Some(id),
            ..original
        })
    }

    fn decode(
        &self,
        table: &impl redb::ReadableTable<u64, &'static [u8]>,
        id: u64,
    ) -> Result<Option<NewClusterUpgrade>, StoreError> {
        let Some(bytes) = table.get(id).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("cluster upgrade {id} cannot be decoded: {e}"),
            })
    }

    /// The upgrades of cluster `name` (any namespace), newest first, each with its latest
    /// outcome folded in (outcome records are not listed on their own).
    pub fn cluster_upgrades(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<ClusterUpgradeRecord>, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(BY_CLUSTER).map_err(|e| self.err(e))?;
        let table = txn.open_table(UPGRADES).map_err(|e| self.err(e))?;
        let range = index
            .range((name, 0)..=(name, u64::MAX))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        // Outcome records are newer than the trigger they conclude: seen first, kept newest.
        let mut outcomes: std::collections::HashMap<u64, NewClusterUpgrade> =
            std::collections::HashMap::new();
        for entry in range.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, _) = entry.map_err(|e| self.err(e))?;
            let id = k.value().1;
            let Some(mut upgrade) = self.decode(&table, id)? else {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("the cluster upgrade index names {id}, which is missing"),
                });
            };
            if let Some(of) = upgrade.follows {
                outcomes.entry(of).or_insert(upgrade);
                continue;
            }
            if let Some(later) = outcomes.remove(&id) {
                upgrade.outcome = later.outcome;
                upgrade.reason = later.reason;
                upgrade.finished_at = later.finished_at;
            }
            out.push(ClusterUpgradeRecord { id, upgrade });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(cluster: &str, to: &str, at: &str) -> NewClusterUpgrade {
        NewClusterUpgrade {
            cluster: cluster.to_owned(),
            namespace: Some("org".to_owned()),
            from: "1.0.0".to_owned(),
            to: to.to_owned(),
            at: at.parse().unwrap(),
            via: "git".to_owned(),
            target: "/repo".to_owned(),
            file: Some("clusters.yaml".to_owned()),
            commit: Some("abc".to_owned()),
            pull_request: None,
            outcome: UpgradeOutcome::Triggered,
            reason: None,
            finished_at: None,
            follows: None,
        }
    }

    #[test]
    fn per_cluster_newest_first() {
        let store = Store::open_in_memory().unwrap();
        store
            .append_cluster_upgrade(&upgrade("a", "1.1.0", "2026-01-01T00:00:00Z"))
            .unwrap();
        store
            .append_cluster_upgrade(&upgrade("ab", "9.9.9", "2026-01-01T00:00:00Z"))
            .unwrap();
        store
            .append_cluster_upgrade(&upgrade("a", "1.2.0", "2026-01-02T00:00:00Z"))
            .unwrap();
        let cases: &[(&str, usize, &[&str], &str)] = &[
            (
                "a",
                10,
                &["1.2.0", "1.1.0"],
                "newest first, a prefix name (ab) not mixed in",
            ),
            ("a", 1, &["1.2.0"], "limit keeps the newest"),
            ("ab", 10, &["9.9.9"], "the other cluster"),
            ("zz", 10, &[], "unknown cluster: empty"),
        ];
        for (name, limit, want, reason) in cases {
            let got: Vec<String> = store
                .cluster_upgrades(name, *limit)
                .unwrap()
                .into_iter()
                .map(|r| r.upgrade.to)
                .collect();
            assert_eq!(got, *want, "{reason}");
        }
    }

    #[test]
    fn outcomes_fold_into_their_trigger() {
        let store = Store::open_in_memory().unwrap();
        let first = store
            .append_cluster_upgrade(&upgrade("a", "1.1.0", "2026-01-01T00:00:00Z"))
            .unwrap();
        let second = store
            .append_cluster_upgrade(&upgrade("a", "1.2.0", "2026-01-02T00:00:00Z"))
            .unwrap();
        let done: Timestamp = "2026-01-02T00:05:00Z".parse().unwrap();
        store
            .conclude_cluster_upgrade(first, UpgradeOutcome::Succeeded, done, None)
            .unwrap();
        store
            .conclude_cluster_upgrade(second, UpgradeOutcome::Failed, done, Some("boom".into()))
            .unwrap();
        let got: Vec<(String, UpgradeOutcome, Option<String>, Option<Timestamp>)> = store
            .cluster_upgrades("a", 10)
            .unwrap()
            .into_iter()
            .map(|r| {
                let u = r.upgrade;
                (u.to, u.outcome, u.reason, u.finished_at)
            })
            .collect();
        let cases = [
            (
                0,
                ("1.2.0", UpgradeOutcome::Failed, Some("boom"), Some(done)),
                "the newest trigger shows its failure and reason",
            ),
            (
                1,
                ("1.1.0", UpgradeOutcome::Succeeded, None, Some(done)),
                "an older trigger concluded later still gets its outcome",
            ),
        ];
        assert_eq!(got.len(), 2, "outcome records are not rows of their own");
        for (i, (to, outcome, reason, finished), why) in cases {
            assert_eq!(
                got[i],
                (to.to_owned(), outcome, reason.map(str::to_owned), finished),
                "{why}"
            );
        }
        assert_eq!(
            store.cluster_upgrades("a", 1).unwrap().len(),
            1,
            "the limit counts upgrades, not outcome records"
        );
        assert!(
            store
                .conclude_cluster_upgrade(99, UpgradeOutcome::Failed, done, None)
                .is_err(),
            "an unknown trigger cannot be concluded"
        );
    }

    #[test]
    fn json_shape() {
        let r = ClusterUpgradeRecord {
            id: 7,
            upgrade: upgrade("a", "1.1.0", "2026-01-01T00:00:00Z"),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["id"], 7, "id beside the flattened fields");
        assert_eq!(v["outcome"], "Triggered");
        assert_eq!(v["cluster"], "a");
        assert!(v.get("pullRequest").is_none(), "absent fields are left out");
    }
}

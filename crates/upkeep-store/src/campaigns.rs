//! The progress of ClusterUpgrade campaigns that `upkeep run` carries out: the standalone
//! shape's `status.clusters[]`.
//!
//! One table keyed `(campaign, cluster)` — `campaign` is `namespace/name` — holding, per
//! cluster, what the controller keeps in the campaign's status: state, triggeredAt, from, to,
//! finishedAt, reason, announcedAt, stage. "This campaign's clusters" is one range scan.
//!
//! Why it is shaped this way:
//! - **Record before act.** [`Store::record_campaign`] writes every cluster's new entry in ONE
//!   transaction; the runner calls it before it commits or patches anything, so a process
//!   killed after it finds `Triggered` on restart and finishes the change (which is
//!   idempotent: the file or label already at the target is not changed again).
//! - **History stays append-only.** A cluster's upgrade also lands in the per-cluster log
//!   ([`crate::cluster_upgrades`], `upkeep history --cluster`): the trigger record once the
//!   change is made (with its commit), an outcome record (`follows` the trigger) when the
//!   cluster finishes. The entry remembers the trigger record's id, so neither is written
//!   twice, and both go in the same transaction as the entry.
//! - **The campaign's own state** (`state`, `outcome`, `finishedAt`: the controller's
//!   `status.state/outcome/finishedAt`) sits in a second table keyed by the campaign, written
//!   in the same transaction as the entries. It is what another campaign's `after` reads
//!   ([`Store::campaign_status`]), exactly as the controller reads the other upgrade's status:
//!   finished only once its state is `Finished`, with its outcome, soaking from its
//!   `finishedAt`.
//! - Entries are JSON (fields can be added with `#[serde(default)]`), like the change log.

use std::collections::BTreeMap;

use jiff::Timestamp;
use redb::{TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use upkeep_core::redact::redact;
use upkeep_core::rollout::{CampaignState, ClusterPhase, Outcome, Progress};

use crate::{NewClusterUpgrade, Store, StoreError, UpgradeOutcome};

const CAMPAIGN_CLUSTERS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("campaign_clusters");

const CAMPAIGNS: TableDefinition<&str, &[u8]> = TableDefinition::new("campaigns");

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(CAMPAIGN_CLUSTERS).map(drop)?;
    txn.open_table(CAMPAIGNS).map(drop)
}

/// A campaign's own state (the controller's `status.state`, `status.outcome`,
/// `status.finishedAt`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignStatus {
    /// The [`CampaignState`] name (`Waiting`, `Running`, `Finished`).
    pub state: String,
    /// The [`Outcome`] name, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl CampaignStatus {
    /// How the campaign ended and when, once its state is `Finished` with an outcome and a
    /// finish time (the controller's `ClusterUpgradeStatus::finished`); `None` otherwise.
    pub fn finished(&self) -> Option<(Outcome, Timestamp)> {
        if self.state != CampaignState::Finished.as_str() {
            return None;
        }
        Some((Outcome::parse(self.outcome.as_deref()?)?, self.finished_at?))
    }
}

/// One cluster's entry in a campaign (the controller's `status.clusters[]` entry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignCluster {
    /// The cluster's state ([`ClusterPhase`] name).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The commit that carried the change (GitOps), once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The id of the trigger record in the cluster-upgrade log, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<u64>,
}

impl CampaignCluster {
    /// What was recorded, as the rollout core reads it; `None` for an unknown state (the
    /// cluster counts as never touched, as in the controller).
    pub fn progress(&self) -> Option<Progress> {
        Some(Progress {
            state: ClusterPhase::parse(&self.state)?,
            triggered_at: self.triggered_at,
            // The standalone shape records no acknowledgement: its timeout counts from the
            // recorded trigger, as it always did.
            acknowledged_at: self.triggered_at,
            finished_at: self.finished_at,
            from: self.from.clone(),
            reason: self.reason.clone(),
            announced_at: self.announced_at,
        })
    }
}

/// What to add to the cluster-upgrade log with an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CampaignHistory {
    /// The change was made: append this trigger record (unless the entry already names one)
    /// and remember its id in the entry.
    Triggered(Box<NewClusterUpgrade>),
    /// The cluster finished: append the outcome of the entry's trigger record (nothing when
    /// the entry names none).
    Finished {
        outcome: UpgradeOutcome,
        at: Timestamp,
        reason: Option<String>,
    },
}

/// One cluster's new entry, and what goes into the log with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignUpdate {
    pub cluster: String,
    pub entry: CampaignCluster,
    pub history: Option<CampaignHistory>,
}

/// The campaign key: `namespace/name`.
fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Store {
    /// Every cluster entry of campaign `namespace/name`, by cluster name.
    pub fn campaign_progress(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, CampaignCluster>, StoreError> {
        let key = key(namespace, name);
        let txn = self.read()?;
        let table = txn.open_table(CAMPAIGN_CLUSTERS).map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        // Cluster names are DNS labels: "" sorts first and "\u{10FFFF}" after every one.
        let range = table
            .range((key.as_str(), "")..=(key.as_str(), "\u{10FFFF}"))
            .map_err(|e| self.err(e))?;
        for entry in range {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let cluster = k.value().1.to_owned();
            let decoded: CampaignCluster =
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("campaign {key} cluster {cluster} cannot be decoded: {e}"),
                })?;
            out.insert(cluster, decoded);
        }
        Ok(out)
    }

    /// The recorded state of campaign `namespace/name` (`None`: never recorded).
    pub fn campaign_status(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<CampaignStatus>, StoreError> {
        let key = key(namespace, name);
        let txn = self.read()?;
        let table = txn.open_table(CAMPAIGNS).map_err(|e| self.err(e))?;
        let Some(v) = table.get(key.as_str()).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("campaign {key} cannot be decoded: {e}"),
            })
    }

    /// Writes the entries of campaign `namespace/name` (and their log records) and, when
    /// given, the campaign's own state, in one transaction: all of them are recorded, or none.
    pub fn record_campaign(
        &self,
        namespace: &str,
        name: &str,
        status: Option<&CampaignStatus>,
        updates: &[CampaignUpdate],
    ) -> Result<(), StoreError> {
        let key = key(namespace, name);
        let txn = self.write()?;
        if let Some(status) = status {
            let bytes = serde_json::to_vec(status).map_err(|e| StoreError::Database {
                path: self.path.clone(),
                detail: format!("campaign {key} cannot be encoded: {e}"),
            })?;
            let mut table = txn.open_table(CAMPAIGNS).map_err(|e| self.err(e))?;
            table
                .insert(key.as_str(), bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        for u in updates {
            let mut entry = CampaignCluster {
                reason: u.entry.reason.as_deref().map(|r| redact(r).into_owned()),
                ..u.entry.clone()
            };
            match &u.history {
                Some(CampaignHistory::Triggered(record)) if entry.history.is_none() => {
                    entry.history = Some(self.append_cluster_upgrade_in(&txn, record)?);
                }
                Some(CampaignHistory::Finished {
                    outcome,
                    at,
                    reason,
                }) => {
                    if let Some(id) = entry.history
                        && let Some(original) = self.cluster_upgrade_in(&txn, id)?
                    {
                        self.append_cluster_upgrade_in(
                            &txn,
                            &NewClusterUpgrade {
                                outcome: *outcome,
                                reason: reason.clone(),
                                finished_at: Some(*at),
                                follows: Some(id),
                                ..original
                            },
                        )?;
                    }
                }
                _ => {}
            }
            let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError::Database {
                path: self.path.clone(),
                detail: format!(
                    "campaign {key} cluster {} cannot be encoded: {e}",
                    u.cluster
                ),
            })?;
            let mut table = txn.open_table(CAMPAIGN_CLUSTERS).map_err(|e| self.err(e))?;
            table
                .insert((key.as_str(), u.cluster.as_str()), bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: &str) -> CampaignCluster {
        CampaignCluster {
            state: state.to_owned(),
            from: Some("1.0.0".into()),
            to: Some("2.0.0".into()),
            ..CampaignCluster::default()
        }
    }

    fn trigger(cluster: &str) -> NewClusterUpgrade {
        NewClusterUpgrade {
            cluster: cluster.to_owned(),
            namespace: Some("org".into()),
            from: "1.0.0".into(),
            to: "2.0.0".into(),
            at: "2026-01-01T00:00:00Z".parse().unwrap(),
            via: "git".into(),
            target: "https://user:secret@git.example/fleet".into(),
            file: None,
            commit: Some("abc".into()),
            pull_request: None,
            outcome: UpgradeOutcome::Triggered,
            reason: None,
            finished_at: None,
            follows: None,
        }
    }

    /// (namespace, name, (cluster, state) recorded, reason)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn entries_are_per_campaign_and_cluster() {
        let store = Store::open_in_memory().unwrap();
        let up = |c: &str, s: &str| CampaignUpdate {
            cluster: c.into(),
            entry: entry(s),
            history: None,
        };
        store
            .record_campaign(
                "org",
                "a",
                None,
                &[up("x", "Waiting"), up("y", "Triggered")],
            )
            .unwrap();
        store
            .record_campaign("org", "ab", None, &[up("x", "Failed")])
            .unwrap();
        store
            .record_campaign("org2", "a", None, &[up("z", "Failed")])
            .unwrap();
        store
            .record_campaign("org", "a", None, &[up("x", "Triggered")])
            .unwrap();
        let cases: &[Case<'_>] = &[
            (
                "org",
                "a",
                &[("x", "Triggered"), ("y", "Triggered")],
                "the later record replaces the entry; a prefix campaign (ab) is not mixed in",
            ),
            (
                "org",
                "ab",
                &[("x", "Failed")],
                "same cluster, other campaign",
            ),
            (
                "org2",
                "a",
                &[("z", "Failed")],
                "same name, other namespace",
            ),
            ("org", "zz", &[], "unknown campaign: nothing recorded"),
        ];
        for (ns, name, want, reason) in cases {
            let got = store.campaign_progress(ns, name).unwrap();
            let got: Vec<(&str, &str)> = got
                .iter()
                .map(|(c, e)| (c.as_str(), e.state.as_str()))
                .collect();
            assert_eq!(got, *want, "{reason}");
        }
    }

    #[test]
    fn history_is_written_once_and_concluded() {
        let store = Store::open_in_memory().unwrap();
        let triggered = CampaignUpdate {
            cluster: "x".into(),
            entry: entry("Triggered"),
            history: Some(CampaignHistory::Triggered(Box::new(trigger("x")))),
        };
        store
            .record_campaign("org", "a", None, std::slice::from_ref(&triggered))
            .unwrap();
        let recorded = store.campaign_progress("org", "a").unwrap()["x"].clone();
        assert!(
            recorded.history.is_some(),
            "the entry names its trigger record"
        );
        // A second pass carrying the trigger again (the entry already names one): no new row.
        store
            .record_campaign(
                "org",
                "a",
                None,
                &[CampaignUpdate {
                    entry: recorded.clone(),
                    ..triggered
                }],
            )
            .unwrap();
        assert_eq!(
            store.cluster_upgrades("x", 10).unwrap().len(),
            1,
            "one trigger record however often the entry is written"
        );
        let at: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        store
            .record_campaign(
                "org",
                "a",
                None,
                &[CampaignUpdate {
                    cluster: "x".into(),
                    entry: CampaignCluster {
                        state: "Failed".into(),
                        finished_at: Some(at),
                        reason: Some("boom".into()),
                        ..recorded
                    },
                    history: Some(CampaignHistory::Finished {
                        outcome: UpgradeOutcome::Failed,
                        at,
                        reason: Some("boom".into()),
                    }),
                }],
            )
            .unwrap();
        let log = store.cluster_upgrades("x", 10).unwrap();
        assert_eq!(log.len(), 1, "the outcome folds into its trigger");
        assert_eq!(log[0].upgrade.outcome, UpgradeOutcome::Failed);
        assert_eq!(log[0].upgrade.reason.as_deref(), Some("boom"));
        assert_eq!(log[0].upgrade.finished_at, Some(at));
        assert!(
            !log[0].upgrade.target.contains("secret"),
            "the repository URL's password never reaches the log: {}",
            log[0].upgrade.target
        );
        let progress = store.campaign_progress("org", "a").unwrap()["x"]
            .progress()
            .unwrap();
        assert_eq!(
            progress.state,
            ClusterPhase::Failed,
            "read back as the core's progress"
        );
        assert_eq!(progress.finished_at, Some(at));
    }

    #[test]
    fn campaign_status_is_recorded_with_the_entries_and_read_as_the_controller_reads_it() {
        let store = Store::open_in_memory().unwrap();
        let at: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let status =
            |state: &str, outcome: Option<&str>, finished_at: Option<Timestamp>| CampaignStatus {
                state: state.to_owned(),
                outcome: outcome.map(ToOwned::to_owned),
                finished_at,
            };
        assert_eq!(
            store.campaign_status("org", "a").unwrap(),
            None,
            "never recorded"
        );
        let update = CampaignUpdate {
            cluster: "x".into(),
            entry: entry("Succeeded"),
            history: None,
        };
        let finished = status("Finished", Some("Succeeded"), Some(at));
        store
            .record_campaign("org", "a", Some(&finished), std::slice::from_ref(&update))
            .unwrap();
        assert_eq!(
            store.campaign_status("org", "a").unwrap().as_ref(),
            Some(&finished),
            "written with the entries"
        );
        assert_eq!(
            store.campaign_status("org", "ab").unwrap(),
            None,
            "per campaign"
        );
        store.record_campaign("org", "a", None, &[update]).unwrap();
        assert_eq!(
            store.campaign_status("org", "a").unwrap().as_ref(),
            Some(&finished),
            "entries alone leave the campaign's state as it was"
        );
        // (status, finished?, reason)
        let cases = [
            (
                status("Finished", Some("Succeeded"), Some(at)),
                Some((Outcome::Succeeded, at)),
                "finished, with outcome and time",
            ),
            (
                status("Finished", Some("Failed"), Some(at)),
                Some((Outcome::Failed, at)),
                "a failed campaign is finished too (the dependant is held, not waiting)",
            ),
            (
                status("Running", None, Some(at)),
                None,
                "running: not finished even with a time",
            ),
            (
                status("Finished", None, Some(at)),
                None,
                "no outcome: not finished (as the controller reads status)",
            ),
            (
                status("Finished", Some("Succeeded"), None),
                None,
                "no finish time: soak cannot count, not finished",
            ),
            (
                status("Finished", Some("Exploded"), Some(at)),
                None,
                "unknown outcome",
            ),
        ];
        for (s, want, reason) in cases {
            assert_eq!(s.finished(), want, "{reason}");
        }
    }

    #[test]
    fn unknown_state_reads_as_never_touched() {
        assert_eq!(
            entry("Exploded").progress(),
            None,
            "as the controller reads status"
        );
    }
}

//! The manifest digest last reflected for each VersionPolicy, for `digestReflectionPolicy:
//! IfNotPresent` (the standalone counterpart of the controller's `status.latestDigest`).
//!
//! Keyed by the policy (`namespace/name`), valued by the image, tag and digest together: a
//! digest is only reused for the same image and tag it was read for, so a policy that moves to
//! another tag, or whose source moves to another image, reads the digest again. Values are
//! JSON, like the other records that may grow fields.

use redb::{TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

const DIGESTS: TableDefinition<&str, &str> = TableDefinition::new("digests");

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(DIGESTS).map(drop)
}

/// A digest as it was reflected: for which image (empty when the source has no image name,
/// e.g. an OCI layout) and tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDigest {
    pub image: String,
    pub tag: String,
    pub digest: String,
}

impl Store {
    /// The digest last recorded for the policy `namespace/name`, if any.
    pub fn known_digest(&self, policy: &str) -> Result<Option<KnownDigest>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(DIGESTS).map_err(|e| self.err(e))?;
        let Some(raw) = table.get(policy).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        serde_json::from_str(raw.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("the digest record of policy {policy:?} is not readable: {e}"),
            })
    }

    /// Records the digests of several policies in one transaction (replacing what was known).
    pub fn record_digests(&self, entries: &[(&str, KnownDigest)]) -> Result<(), StoreError> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(DIGESTS).map_err(|e| self.err(e))?;
            for (policy, known) in entries {
                let json = serde_json::to_string(known).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("encoding the digest record of {policy:?}: {e}"),
                })?;
                table
                    .insert(*policy, json.as_str())
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(tag: &str, digest: &str) -> KnownDigest {
        KnownDigest {
            image: "ghcr.io/org/app".into(),
            tag: tag.into(),
            digest: digest.into(),
        }
    }

    #[test]
    fn digests_survive_reopening_and_are_replaced_per_policy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        {
            let store = Store::open(&path).expect("open");
            assert_eq!(store.known_digest("ns/app").expect("read"), None);
            store
                .record_digests(&[
                    ("ns/app", known("1.0.0", "sha256:aa")),
                    ("ns/other", known("2.0.0", "sha256:bb")),
                ])
                .expect("record");
            store
                .record_digests(&[("ns/app", known("1.1.0", "sha256:cc"))])
                .expect("replace");
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            store.known_digest("ns/app").expect("read"),
            Some(known("1.1.0", "sha256:cc")),
            "the later record replaces the earlier one"
        );
        assert_eq!(
            store.known_digest("ns/other").expect("read"),
            Some(known("2.0.0", "sha256:bb")),
            "other policies keep theirs"
        );
    }
}

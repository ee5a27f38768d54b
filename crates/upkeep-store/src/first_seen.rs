//! First-seen times per (source key, tag), for `minimumReleaseAge`.
//!
//! Keyed by the `(source, tag)` tuple so one source's tags sit together in the B-tree, and
//! valued by nanoseconds since the Unix epoch (`i128`, jiff's own exact representation), so a
//! batch of a hundred thousand tags costs no parsing. A first-seen time only ever moves
//! *earlier*: recording a later time for a known tag is a no-op, so a re-run, a clock that
//! went backwards on another machine, or a re-pushed tag cannot make a version look younger
//! than it is and hold an upgrade back again.

use jiff::Timestamp;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use upkeep_core::redact::redact;
use upkeep_core::version::FirstSeenStore;

use crate::{Store, StoreError};

const FIRST_SEEN: TableDefinition<(&str, &str), i128> = TableDefinition::new("first_seen");

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(FIRST_SEEN).map(drop)
}

impl Store {
    /// The first-seen times of `tags` under `source`, in the same order (`None`: never seen).
    pub fn first_seen_many(
        &self,
        source: &str,
        tags: &[&str],
    ) -> Result<Vec<Option<Timestamp>>, StoreError> {
        let source = &*redact(source);
        let txn = self.read()?;
        let table = txn.open_table(FIRST_SEEN).map_err(|e| self.err(e))?;
        tags.iter()
            .map(|tag| {
                let got = table.get((source, *tag)).map_err(|e| self.err(e))?;
                got.map(|g| self.decode_time(source, tag, g.value()))
                    .transpose()
            })
            .collect()
    }

    /// Records first-seen times in one transaction, keeping the earlier time wherever a tag is
    /// already known (or listed twice). Returns how many entries were written.
    pub fn record_first_seen(
        &self,
        source: &str,
        entries: &[(&str, Timestamp)],
    ) -> Result<usize, StoreError> {
        // Source keys name the source; one with a `?token=` is stored (and looked up) redacted.
        let source = &*redact(source);
        let txn = self.write()?;
        let mut written = 0;
        {
            let mut table = txn.open_table(FIRST_SEEN).map_err(|e| self.err(e))?;
            for (tag, at) in entries {
                let at = at.as_nanosecond();
                let known = table
                    .get((source, *tag))
                    .map_err(|e| self.err(e))?
                    .map(|g| g.value());
                if known.is_none_or(|k| at < k) {
                    table.insert((source, *tag), at).map_err(|e| self.err(e))?;
                    written += 1;
                }
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(written)
    }

    fn decode_time(&self, source: &str, tag: &str, nanos: i128) -> Result<Timestamp, StoreError> {
        Timestamp::from_nanosecond(nanos).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("first-seen time of {source:?} tag {tag:?} is out of range: {e}"),
        })
    }
}

/// The registry's decision path talks to the store through this trait. Unlike the trait's
/// in-memory implementation, this one never moves a known time later (see the module header).
impl FirstSeenStore for Store {
    type Error = StoreError;

    fn get_many(&self, source: &str, tags: &[&str]) -> Result<Vec<Option<Timestamp>>, StoreError> {
        self.first_seen_many(source, tags)
    }

    fn record_many(&self, source: &str, entries: &[(&str, Timestamp)]) -> Result<(), StoreError> {
        self.record_first_seen(source, entries).map(drop)
    }
}

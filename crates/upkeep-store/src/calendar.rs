//! What `upkeep calendar` remembers of each event it wrote: a fingerprint of its start, end
//! and summary, and the SEQUENCE it was given, by UID. Calendar clients replace an event only
//! when its SEQUENCE grows, so a moved window must come with a larger number than the last
//! feed gave it, and never a smaller one ([`upkeep_core::calendar::sequence`] decides; this
//! remembers). Fixed-width values (no JSON): the record never grows fields.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use upkeep_core::calendar::{Memo, sequence};

use crate::{Store, StoreError};

const CALENDAR: TableDefinition<&str, (u64, u32)> = TableDefinition::new("calendar_events");

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(CALENDAR).map(drop)
}

impl Store {
    /// The SEQUENCE of each event `(uid, fingerprint)`, remembering them, in one transaction:
    /// kept when the fingerprint is the one remembered, else `max(last + 1, floor)`, or `floor`
    /// for an event never written.
    pub fn calendar_sequences(
        &self,
        events: &[(&str, u64)],
        floor: u32,
    ) -> Result<Vec<u32>, StoreError> {
        let txn = self.write()?;
        let mut out = Vec::with_capacity(events.len());
        {
            let mut table = txn.open_table(CALENDAR).map_err(|e| self.err(e))?;
            for (uid, fingerprint) in events {
                let memo = table.get(*uid).map_err(|e| self.err(e))?.map(|v| {
                    let (fingerprint, sequence) = v.value();
                    Memo {
                        fingerprint,
                        sequence,
                    }
                });
                let seq = sequence(memo, *fingerprint, floor);
                if memo
                    != Some(Memo {
                        fingerprint: *fingerprint,
                        sequence: seq,
                    })
                {
                    table
                        .insert(*uid, (*fingerprint, seq))
                        .map_err(|e| self.err(e))?;
                }
                out.push(seq);
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_survive_reopening_and_only_grow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.redb");
        {
            let store = Store::open(&path).expect("open");
            let first = store
                .calendar_sequences(&[("a", 1), ("b", 2)], 100)
                .expect("first");
            assert_eq!(first, [100, 100], "new events get the floor");
        }
        let store = Store::open(&path).expect("reopen");
        let second = store
            .calendar_sequences(&[("a", 1), ("b", 3)], 90)
            .expect("second");
        assert_eq!(
            second,
            [100, 101],
            "unchanged keeps its number; moved grows although the floor went back"
        );
        let third = store.calendar_sequences(&[("b", 3)], 500).expect("third");
        assert_eq!(third, [101], "remembered, not bumped to the floor");
    }
}

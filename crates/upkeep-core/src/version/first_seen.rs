//! Where first-seen times are kept, behind a trait: its home differs per shape (redb in the
//! standalone shape, resource status in-cluster). Pure: callers pass the times in.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;

use jiff::Timestamp;

/// Remembers when each (source, tag) was first seen.
pub trait FirstSeenStore {
    type Error: std::error::Error + Send + Sync + 'static;
    /// The recorded times of `tags` under `source`, in the same order.
    fn get_many(&self, source: &str, tags: &[&str]) -> Result<Vec<Option<Timestamp>>, Self::Error>;
    /// Records first sightings. A time already recorded for a tag never moves later: the
    /// earliest time wins.
    fn record_many(&self, source: &str, entries: &[(&str, Timestamp)]) -> Result<(), Self::Error>;
}

/// A process-local store.
#[derive(Debug, Default)]
pub struct MemoryFirstSeen {
    map: Mutex<HashMap<String, HashMap<String, Timestamp>>>,
}

impl MemoryFirstSeen {
    pub fn new() -> Self {
        Self::default()
    }
}

impl FirstSeenStore for MemoryFirstSeen {
    type Error = Infallible;

    fn get_many(&self, source: &str, tags: &[&str]) -> Result<Vec<Option<Timestamp>>, Infallible> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let per = map.get(source);
        Ok(tags
            .iter()
            .map(|t| per.and_then(|p| p.get(*t)).copied())
            .collect())
    }

    fn record_many(&self, source: &str, entries: &[(&str, Timestamp)]) -> Result<(), Infallible> {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let per = map.entry(source.to_owned()).or_default();
        for (t, at) in entries {
            let slot = per.entry((*t).to_owned()).or_insert(*at);
            *slot = (*slot).min(*at);
        }
        Ok(())
    }
}

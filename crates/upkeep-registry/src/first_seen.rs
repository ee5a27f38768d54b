//! First-seen times for `minimumReleaseAge`.
//!
//! The store is a trait because its home differs per shape (redb in the standalone shape,
//! resource status in-cluster); an in-memory implementation serves tests and one-shot runs.
//! Nothing here reads the clock: `now` is a parameter, as everywhere in the decision path.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;

use jiff::Timestamp;
use upkeep_core::version::TagInfo;

use crate::source::TagList;

/// Remembers when each (source, tag) was first seen.
pub trait FirstSeenStore {
    type Error: std::error::Error + Send + Sync + 'static;
    /// The recorded times of `tags` under `source`, in the same order.
    fn get_many(&self, source: &str, tags: &[&str]) -> Result<Vec<Option<Timestamp>>, Self::Error>;
    /// Records (or overwrites) times.
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
            per.insert((*t).to_owned(), *at);
        }
        Ok(())
    }
}

/// A tag with the time `minimumReleaseAge` counts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenTag {
    pub tag: String,
    pub first_seen: Timestamp,
}

impl SeenTag {
    pub fn tag_info(&self) -> TagInfo<'_> {
        TagInfo {
            tag: &self.tag,
            first_seen: Some(self.first_seen),
        }
    }
}

/// `TagInfo`s for `Policy::select`, borrowing from `seen`.
pub fn tag_infos(seen: &[SeenTag]) -> Vec<TagInfo<'_>> {
    seen.iter().map(SeenTag::tag_info).collect()
}

/// Tags of `list` the store has never seen (candidates for [`crate::Source::created_for`]).
pub fn unseen<'a, S: FirstSeenStore>(
    store: &S,
    source: &str,
    list: &'a TagList,
) -> Result<Vec<&'a str>, S::Error> {
    let names: Vec<&str> = list.names().collect();
    let known = store.get_many(source, &names)?;
    Ok(names
        .into_iter()
        .zip(known)
        .filter(|(_, k)| k.is_none())
        .map(|(n, _)| n)
        .collect())
}

/// Merges a listing into the store and returns each tag's first-seen time.
///
/// Rules: a `created` time from the source wins when it is not in the future (`<= now`);
/// otherwise the recorded time stands; a tag never seen before is first seen `now`. Only
/// new or changed times are written.
pub fn merge_first_seen<S: FirstSeenStore>(
    store: &S,
    source: &str,
    list: &TagList,
    now: Timestamp,
) -> Result<Vec<SeenTag>, S::Error> {
    let names: Vec<&str> = list.names().collect();
    let known = store.get_many(source, &names)?;
    let mut out = Vec::with_capacity(names.len());
    let mut writes: Vec<(&str, Timestamp)> = Vec::new();
    for ((tag, recorded), t) in names.iter().zip(known).zip(&list.tags) {
        let at = match (t.created.filter(|c| *c <= now), recorded) {
            (Some(c), _) => c,
            (None, Some(r)) => r,
            (None, None) => now,
        };
        if recorded != Some(at) {
            writes.push((tag, at));
        }
        out.push(SeenTag {
            tag: (*tag).to_owned(),
            first_seen: at,
        });
    }
    if !writes.is_empty() {
        store.record_many(source, &writes)?;
    }
    Ok(out)
}

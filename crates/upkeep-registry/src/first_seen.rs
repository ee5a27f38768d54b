//! First-seen times for `minimumReleaseAge`: merging a listing into a [`FirstSeenStore`].
//!
//! The store trait lives in `upkeep-core` (it is pure), so stores (`upkeep-store`'s redb, an
//! in-memory one, resource status in-cluster) need not depend on this HTTP crate. Nothing here
//! reads the clock: `now` is a parameter, as everywhere in the decision path.

use jiff::Timestamp;
use upkeep_core::version::{FirstSeenStore, TagInfo};

use crate::source::TagList;

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
/// Rules: a `created` time from the source wins when it is not in the future (`<= now`): it is
/// the release time, read afresh on every scan; otherwise the recorded time stands; a tag never
/// seen before is first seen `now`. The store records only first sightings (its times never
/// move), so a scan of known tags writes nothing.
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
        if recorded.is_none() {
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

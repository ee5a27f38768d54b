//! The tags of every scanned ChartSource, in memory, shared by the ChartSource and
//! VersionPolicy reconcilers.
//!
//! Why it is shaped this way:
//! - A registry can hold tens of thousands of tags; writing them into the ChartSource's status
//!   would bloat etcd and every watch event, so status carries only a summary
//!   (`lastScan {time, tagCount, latestTags}`) and the full list lives here, keyed by the
//!   ChartSource object (namespace/name), with the object's uid so a recreated source is not
//!   mistaken for the old one.
//! - First-seen times (for `minimumReleaseAge`) are merged into one [`MemoryFirstSeen`] keyed by
//!   the registry location, so two ChartSources over the same repository agree. They are lost
//!   on restart: tags without a `created` annotation then count as first seen at the restart,
//!   which errs on the side of waiting longer.
//! - A scan replaces its entry atomically (an `Arc`), so a policy reading the cache while a scan
//!   runs sees either the old list or the new one, never half of each.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use kube::ResourceExt;
use upkeep_core::version::Version;
use upkeep_registry::{MemoryFirstSeen, SeenTag};

/// A ChartSource object: its namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    pub namespace: String,
    pub name: String,
}

impl SourceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        SourceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a (namespaced) object.
    pub fn of<K: ResourceExt>(object: &K) -> Self {
        SourceKey::new(object.namespace().unwrap_or_default(), object.name_any())
    }
}

impl std::fmt::Display for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One successful scan of a ChartSource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// The uid of the ChartSource that was scanned.
    pub uid: Option<String>,
    /// Its `metadata.generation` at the time: a new spec means a new scan.
    pub generation: Option<i64>,
    /// The registry location (`upkeep_registry::Source::key`), e.g. `oci://host/repo`.
    pub location: String,
    /// When the scan finished (the controller's clock).
    pub time: Timestamp,
    /// Every tag after exclusions, in the source's order, with its first-seen time.
    pub tags: Arc<[SeenTag]>,
}

/// The cache shared by the discovery reconcilers.
#[derive(Debug, Default)]
pub struct TagCache {
    scans: Mutex<HashMap<SourceKey, Arc<Scan>>>,
    first_seen: MemoryFirstSeen,
}

impl TagCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last successful scan of `key`, if any.
    pub fn get(&self, key: &SourceKey) -> Option<Arc<Scan>> {
        self.lock().get(key).cloned()
    }

    /// Records a scan, replacing the previous one; returns it as stored.
    pub fn insert(&self, key: SourceKey, scan: Scan) -> Arc<Scan> {
        let scan = Arc::new(scan);
        self.lock().insert(key, Arc::clone(&scan));
        scan
    }

    /// Forgets a source (its first-seen times stay: they belong to the location).
    pub fn remove(&self, key: &SourceKey) -> Option<Arc<Scan>> {
        self.lock().remove(key)
    }

    /// How many sources have a scan.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first-seen store scans merge into.
    pub fn first_seen(&self) -> &MemoryFirstSeen {
        &self.first_seen
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SourceKey, Arc<Scan>>> {
        self.scans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `n` newest tags: latest first-seen (release) time first; among equal times (a registry
/// without `created` annotations, first scanned at one moment) the higher version, then the
/// name in reverse order, so the summary is stable from scan to scan.
pub fn newest(tags: &[SeenTag], n: usize) -> Vec<String> {
    let mut order: Vec<(&SeenTag, Option<Version>)> =
        tags.iter().map(|t| (t, Version::parse(&t.tag))).collect();
    order.sort_by(|(a, va), (b, vb)| {
        b.first_seen
            .cmp(&a.first_seen)
            .then_with(|| match (va, vb) {
                (Some(x), Some(y)) => y.cmp(x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| b.tag.cmp(&a.tag))
    });
    order
        .into_iter()
        .take(n)
        .map(|(t, _)| t.tag.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(tag: &str, at: &str) -> SeenTag {
        SeenTag {
            tag: tag.to_owned(),
            first_seen: at.parse().expect("timestamp"),
        }
    }

    #[test]
    fn newest_orders_by_time_then_version() {
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-02-01T00:00:00Z";
        let cases: &[(Vec<SeenTag>, usize, &[&str], &str)] = &[
            (
                vec![seen("1.0.0", t1), seen("2.0.0", t0)],
                2,
                &["1.0.0", "2.0.0"],
                "a later release time wins over a higher version (a backport is news)",
            ),
            (
                vec![seen("1.9.0", t0), seen("1.10.0", t0), seen("1.2.0", t0)],
                3,
                &["1.10.0", "1.9.0", "1.2.0"],
                "same time: by version, not by text (1.10 > 1.9)",
            ),
            (
                vec![seen("latest", t0), seen("1.0.0", t0), seen("beta", t0)],
                3,
                &["1.0.0", "latest", "beta"],
                "versions before non-versions; the rest by name, descending",
            ),
            (
                vec![seen("1.0.0", t0), seen("1.1.0", t0), seen("1.2.0", t0)],
                2,
                &["1.2.0", "1.1.0"],
                "only n tags are kept",
            ),
            (vec![], 5, &[], "no tags, no summary"),
        ];
        for (tags, n, want, reason) in cases {
            assert_eq!(newest(tags, *n), *want, "{reason}");
        }
    }

    #[test]
    fn the_cache_replaces_and_forgets() {
        let cache = TagCache::new();
        let key = SourceKey::new("ns", "podinfo");
        let scan = |tags: &[&str]| Scan {
            uid: Some("u1".into()),
            generation: Some(1),
            location: "oci-layout:/x".into(),
            time: "2026-01-01T00:00:00Z".parse().expect("ts"),
            tags: tags
                .iter()
                .map(|t| seen(t, "2026-01-01T00:00:00Z"))
                .collect(),
        };
        assert!(cache.get(&key).is_none(), "never scanned");
        cache.insert(key.clone(), scan(&["1.0.0"]));
        cache.insert(key.clone(), scan(&["1.0.0", "1.1.0"]));
        assert_eq!(
            cache.get(&key).map(|s| s.tags.len()),
            Some(2),
            "the newer scan replaces the older"
        );
        assert_eq!(cache.len(), 1, "one entry per source");
        cache.remove(&key);
        assert!(cache.is_empty(), "a removed source is forgotten");
    }
}

//! Requests for an immediate scan of a ChartSource: a registry push notification (see
//! `upkeep controller --receiver-addr`) names a repository, and every ChartSource over it
//! should look now rather than at the end of its `interval`.
//!
//! Why it is shaped this way:
//! - A request is a time, kept per ChartSource ([`SourceKey`]): the source reconciler's pure
//!   `next_scan` treats a request newer than the last scan as "due now", and a scan that
//!   started at `t` answers every request made up to `t`. Many pushes in a burst therefore
//!   coalesce into one scan, and a push that lands while a scan runs gets one more scan after
//!   it (the running scan may have listed the tags before the push).
//! - Requests outlive a leadership term (they live in the process, not in the controller): the
//!   [`ScanRequests`] is created once by the binary and handed to each term's `Discovery`.
//! - Waking the ChartSource controller is a `watch` channel (a counter), turned into a stream
//!   of object references for `Controller::reconcile_on`: a new term subscribes afresh, and a
//!   slow controller sees one wake for any number of requests, never a backlog.
//! - The receiver matches pushes against the ChartSources of the running controller's watch
//!   cache, published here by the controller while it runs. Without one (no term running)
//!   [`ScanRequests::request_matching`] returns `None`; the binary serves the receiver only
//!   while leading (a follower's port refuses connections, so senders that retry reach the
//!   leader), and counts that moment at a term's start as no match.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use jiff::Timestamp;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::watch;
use upkeep_api::ChartSource;

use crate::tags::SourceKey;

/// The scan requests of one process (see the module header).
#[derive(Debug)]
pub struct ScanRequests {
    pending: Mutex<HashMap<SourceKey, Timestamp>>,
    wake: watch::Sender<u64>,
    sources: Mutex<Option<Store<ChartSource>>>,
}

impl Default for ScanRequests {
    fn default() -> Self {
        ScanRequests {
            pending: Mutex::default(),
            wake: watch::Sender::new(0),
            sources: Mutex::default(),
        }
    }
}

impl ScanRequests {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for a scan of `key` made at `at` (a later request replaces an earlier one), and
    /// wakes the ChartSource controller.
    pub fn request(&self, key: SourceKey, at: Timestamp) {
        {
            let mut pending = lock(&self.pending);
            let entry = pending.entry(key).or_insert(at);
            *entry = (*entry).max(at);
        }
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The newest open request for `key`, if any.
    pub fn requested(&self, key: &SourceKey) -> Option<Timestamp> {
        lock(&self.pending).get(key).copied()
    }

    /// A scan of `key` that started at `started` answers every request made up to then; a
    /// request made later stays open.
    pub fn answered(&self, key: &SourceKey, started: Timestamp) {
        let mut pending = lock(&self.pending);
        if pending.get(key).is_some_and(|at| *at <= started) {
            pending.remove(key);
        }
    }

    /// How many sources have an open request.
    pub fn len(&self) -> usize {
        lock(&self.pending).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ChartSources with open requests, each time a request arrives (from the moment of
    /// subscribing): the trigger stream of the ChartSource controller.
    pub fn triggers(self: &Arc<Self>) -> BoxStream<'static, ObjectRef<ChartSource>> {
        let mut rx = self.wake.subscribe();
        rx.mark_unchanged();
        let this = Arc::downgrade(self);
        let wakes = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        });
        wakes
            .flat_map(move |()| {
                let refs: Vec<ObjectRef<ChartSource>> = this
                    .upgrade()
                    .map(|r| lock(&r.pending).keys().map(object_ref).collect())
                    .unwrap_or_default();
                futures_util::stream::iter(refs)
            })
            .boxed()
    }

    /// Publishes the watch cache of the running ChartSource controller (`None` when it stops).
    pub fn set_sources(&self, store: Option<Store<ChartSource>>) {
        *lock(&self.sources) = store;
    }

    /// Requests a scan, made at `at`, of every ChartSource of the running controller's cache
    /// that `matches` selects; how many. `None` when no ChartSource controller runs in this
    /// process (not leading, or not started yet).
    pub fn request_matching(
        &self,
        at: Timestamp,
        matches: impl Fn(&ChartSource) -> bool,
    ) -> Option<usize> {
        let store = lock(&self.sources).clone()?;
        let keys: Vec<SourceKey> = store
            .state()
            .iter()
            .filter(|s| matches(s))
            .map(|s| SourceKey::of(s.as_ref()))
            .collect();
        for key in &keys {
            self.request(key.clone(), at);
        }
        Some(keys.len())
    }
}

fn object_ref(key: &SourceKey) -> ObjectRef<ChartSource> {
    ObjectRef::new(&key.name).within(&key.namespace)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    /// (requests made, scan started at, open request after, reason)
    type Case<'a> = (&'a [&'a str], &'a str, Option<&'a str>, &'a str);

    #[test]
    fn a_scan_answers_the_requests_made_before_it_started() {
        let cases: &[Case<'_>] = &[
            (
                &["2026-01-01T10:00:01Z", "2026-01-01T10:00:02Z"],
                "2026-01-01T10:00:03Z",
                None,
                "a burst before the scan: one scan answers all",
            ),
            (
                &["2026-01-01T10:00:01Z", "2026-01-01T10:00:05Z"],
                "2026-01-01T10:00:03Z",
                Some("2026-01-01T10:00:05Z"),
                "a push during the scan: one more scan after it",
            ),
            (
                &["2026-01-01T10:00:05Z", "2026-01-01T10:00:01Z"],
                "2026-01-01T10:00:03Z",
                Some("2026-01-01T10:00:05Z"),
                "an older request arriving late does not hide a newer one",
            ),
            (
                &["2026-01-01T10:00:03Z"],
                "2026-01-01T10:00:03Z",
                None,
                "a request at the scan's very start is answered by it",
            ),
            (
                &[],
                "2026-01-01T10:00:03Z",
                None,
                "no request, nothing open",
            ),
        ];
        for (made, started, open, reason) in cases {
            let requests = ScanRequests::new();
            let key = SourceKey::new("ns", "charts");
            for at in *made {
                requests.request(key.clone(), ts(at));
            }
            requests.answered(&key, ts(started));
            assert_eq!(requests.requested(&key), open.map(ts), "{reason}");
        }
    }

    /// A request wakes the trigger stream with the sources that have open requests; requests
    /// made before subscribing do not (a new controller lists every object anyway).
    #[tokio::test]
    async fn a_request_wakes_the_controller_with_its_source() {
        let requests = Arc::new(ScanRequests::new());
        requests.request(SourceKey::new("ns", "old"), ts("2026-01-01T10:00:00Z"));
        requests.answered(&SourceKey::new("ns", "old"), ts("2026-01-01T10:00:00Z"));
        let mut triggers = Box::pin(requests.triggers());
        requests.request(SourceKey::new("ns", "charts"), ts("2026-01-01T10:00:01Z"));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), triggers.next())
            .await
            .expect("woken")
            .expect("an object");
        assert_eq!(got, ObjectRef::new("charts").within("ns"));
    }

    #[test]
    fn without_a_running_controller_nothing_is_matched() {
        let requests = ScanRequests::new();
        assert_eq!(
            requests.request_matching(ts("2026-01-01T10:00:00Z"), |_| true),
            None,
            "a follower has no cache: None, so the receiver answers 503"
        );
        assert!(requests.is_empty());
    }
}

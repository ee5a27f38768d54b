//! Scanning many sources at once.
//!
//! A global bound caps sources in flight; the shared [`crate::Client`]'s per-host semaphores
//! cap requests per registry underneath it. `buffer_unordered` keeps at most `concurrency`
//! listings alive, so memory is linear in the tags of the results, not in the sources.

use futures_util::StreamExt as _;

use crate::error::RegistryError;
use crate::source::{Source, TagList};

/// The outcome for one source, in input order.
#[derive(Debug)]
pub struct ScanResult {
    /// Index of the source in the input.
    pub index: usize,
    pub key: String,
    pub result: Result<TagList, RegistryError>,
}

/// Lists all `sources` with at most `concurrency` (≥ 1) in flight. `on_done` is called as
/// each finishes (for a progress bar). Results come back in input order.
pub async fn scan_all(
    sources: &[Source],
    concurrency: usize,
    mut on_done: impl FnMut(&ScanResult),
) -> Vec<ScanResult> {
    let mut results: Vec<ScanResult> = futures_util::stream::iter(sources.iter().enumerate())
        .map(|(index, s)| async move {
            ScanResult {
                index,
                key: s.key().to_owned(),
                result: s.list_tags().await,
            }
        })
        .buffer_unordered(concurrency.max(1))
        .inspect(|r| on_done(r))
        .collect()
        .await;
    results.sort_by_key(|r| r.index);
    results
}

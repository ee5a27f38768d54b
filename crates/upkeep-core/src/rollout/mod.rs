//! Rollouts: which cluster of a `ClusterUpgrade` campaign starts, waits, runs or is done, now.
//!
//! (skeleton: the rules are documented with the implementation)

mod types;

pub use types::*;

use jiff::Timestamp;

/// Decides every selected cluster's next step at `now`.
pub fn plan(c: &Campaign, clusters: &[ClusterInput<'_>], now: Timestamp) -> Plan {
    let _ = (c, clusters, now);
    Plan {
        clusters: Vec::new(),
        state: CampaignState::Pending,
        outcome: None,
        finished_at: None,
        next_check: None,
        reason: None,
    }
}

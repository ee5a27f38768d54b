//! The pure domain of upkeep: every decision it makes, and nothing else.
//!
//! upkeep is worth running only if two answers are right every time: *which* version a policy
//! allows, and *when* a change may happen. Both live here, as plain functions over plain
//! values, so that they can be tested exhaustively, simulated over months in milliseconds and
//! shared unchanged by the CLI and the controller.
//!
//! The rules for this crate, and why:
//!
//! - **No I/O, no async, no clock.** Callers gather a snapshot (tags, schedules, clusters)
//!   and pass `now` in. A function here that wanted to read a file or the time would make
//!   `upkeep plan --at T` a lie and every test a race.
//! - **No Kubernetes types.** `upkeep-api` converts resources into the values defined here at
//!   its boundary; a change to a CRD never ripples into a decision.
//! - **Errors are `thiserror` enums** whose variant names are stable enough to become condition
//!   reasons and metric labels.
//!
//! Modules:
//! - [`version`]: tag parsing, the Masterminds/semver constraint language, policies, selection.
//! - [`schedule`]: maintenance windows as RFC 5545 recurrences in IANA time zones, exclusions,
//!   freezes; "is it allowed at t" and "the next N allowed intervals".
//! - [`selector`]: which clusters a matcher or label selector picks.
//! - [`manifest`]: finding the version fields that upkeep markers point at.
//! - [`rollout`]: the cluster-upgrade state machine (stages, soak, windows, concurrency,
//!   failure policy) as one function of a snapshot and `now`.
//! - [`calendar`]: the upgrade calendar's events and their RFC 5545 writer.
//! - [`redact`]: what in a text is a credential, replaced before any text leaves upkeep.

pub mod calendar;
pub mod describe;
pub mod manifest;
pub mod redact;
pub mod rollout;
pub mod schedule;
pub mod selector;
pub mod version;

/// The reason of a regex compile error on one line: the `regex` crate's syntax errors come as a
/// multi-line caret diagram, which does not fit a status condition or an `error:` line.
pub fn regex_error_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => {
            let last = s
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(s)
                .trim();
            last.strip_prefix("error: ").unwrap_or(last).to_owned()
        }
        other => other.to_string(),
    }
}

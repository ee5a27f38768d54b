//! kstatus conditions (`Ready`, `Reconciling`, `Stalled`) as pure functions over a status's
//! condition list: a condition's `lastTransitionTime` changes only when its status does, so a
//! reconcile that finds nothing new writes an identical status (and the API server sees no
//! change).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `Ready`: the object is reconciled and its status is current.
pub const READY: &str = "Ready";
/// `Stalled`: the spec cannot be acted on until it changes.
pub const STALLED: &str = "Stalled";
/// `Reconciling`: work is under way.
pub const RECONCILING: &str = "Reconciling";

/// The conditions of one outcome, replacing `Ready`/`Stalled`/`Reconciling` in `existing` and
/// keeping any other condition.
pub fn with_outcome(
    existing: &[Condition],
    outcome: &Outcome,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let (ready, stalled, reconciling, reason, message) = match outcome {
        Outcome::Ready { reason, message } => ("True", false, false, reason, message),
        Outcome::Stalled { reason, message } => ("False", true, false, reason, message),
        Outcome::Retrying { reason, message } => ("False", false, true, reason, message),
    };
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| c.type_ != READY && c.type_ != STALLED && c.type_ != RECONCILING)
        .cloned()
        .collect();
    out.push(condition(
        existing, READY, ready, reason, message, generation, now,
    ));
    if stalled {
        out.push(condition(
            existing, STALLED, "True", reason, message, generation, now,
        ));
    }
    if reconciling {
        out.push(condition(
            existing,
            RECONCILING,
            "True",
            PROGRESSING_WITH_RETRY,
            message,
            generation,
            now,
        ));
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The `Reconciling` reason of an object that failed transiently and will be retried (Flux's
/// word for it, so dashboards built for Flux read upkeep the same way).
pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";

/// What a reconcile concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: `Ready=True`.
    Ready { reason: String, message: String },
    /// The spec cannot work: `Ready=False`, `Stalled=True`; nothing happens until it changes.
    Stalled { reason: String, message: String },
    /// Something outside the spec failed (a registry, a Secret, a source not scanned yet) and
    /// will be retried: `Ready=False` with the cause, `Reconciling=True`, so kstatus reports
    /// the object as in progress rather than current.
    Retrying { reason: String, message: String },
}

/// `Ready=False` with `Reconciling=True`: something outside the spec is wrong (a registry, a
/// Secret, a source not scanned yet) and may heal by itself, so the object is in progress.
pub fn not_ready(
    existing: &[Condition],
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    with_outcome(
        existing,
        &Outcome::Retrying {
            reason: reason.to_owned(),
            message: message.to_owned(),
        },
        generation,
        now,
    )
}

/// `Stalled` for an invalid spec (reason `InvalidSpec`), with every field error in the message.
pub fn invalid_spec(
    existing: &[Condition],
    errors: &[upkeep_api::FieldError],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    with_outcome(
        existing,
        &Outcome::Stalled {
            reason: "InvalidSpec".into(),
            message: spec_message(errors),
        },
        generation,
        now,
    )
}

/// The message of an invalid spec: every field error with its hint (the API crate's one
/// wording, shared with the CLI).
pub use upkeep_api::spec_message;

fn condition(
    existing: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let since = existing
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        // Messages quote errors; redacted here as well as where the status is written.
        message: upkeep_core::redact::redact(message).into_owned(),
        observed_generation: generation,
        last_transition_time: since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    /// (conditions, Ready status, Stalled status, Reconciling status, Ready since, reason)
    type Case<'a> = (
        &'a [Condition],
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        &'a str,
    );

    #[test]
    fn messages_and_statuses_never_carry_a_credential() {
        let stalled = Outcome::Stalled {
            reason: "InvalidLocation".into(),
            message: "invalid source location `oci://u:cond-pw@h/x`".into(),
        };
        let conditions = with_outcome(&[], &stalled, None, ts("2026-01-01T00:00:00Z"));
        for c in &conditions {
            assert!(!c.message.contains("cond-pw"), "{}: {}", c.type_, c.message);
        }
        let status = serde_json::json!({
            "conditions": [{"message": "GET https://h/i.yaml?token=status-tok"}],
            "lastScan": {"tagCount": 3, "latestTags": ["1.0.0"]},
            "pullRequest": {"url": "https://forge/o/r/pull/1"}
        });
        let redacted = crate::framework::status::redacted_status(status.clone());
        assert_eq!(
            redacted["conditions"][0]["message"], "GET https://h/i.yaml?token=<redacted>",
            "a string deep in the status is redacted"
        );
        assert_eq!(
            redacted["lastScan"], status["lastScan"],
            "numbers and ordinary strings are kept"
        );
        assert_eq!(redacted["pullRequest"], status["pullRequest"]);
        assert_eq!(
            crate::framework::status::redacted_status(redacted.clone()),
            redacted,
            "redacting a written status again changes nothing, so it is not rewritten"
        );
    }

    #[test]
    fn transition_time_moves_only_when_the_status_does() {
        let ready = Outcome::Ready {
            reason: "Open".into(),
            message: "window a".into(),
        };
        let stalled = Outcome::Stalled {
            reason: "InvalidSpec".into(),
            message: "spec.timeZone: unknown".into(),
        };
        let retrying = Outcome::Retrying {
            reason: "RegistryUnavailable".into(),
            message: "connection refused".into(),
        };
        let first = with_outcome(&[], &ready, Some(1), ts("2026-01-01T00:00:00Z"));
        let again = with_outcome(&first, &ready, Some(2), ts("2026-01-02T00:00:00Z"));
        let broken = with_outcome(&again, &stalled, Some(3), ts("2026-01-03T00:00:00Z"));
        let flaky = with_outcome(&first, &retrying, Some(1), ts("2026-01-04T00:00:00Z"));
        let healed = with_outcome(&flaky, &ready, Some(1), ts("2026-01-05T00:00:00Z"));
        let cases: &[Case<'_>] = &[
            (
                &first,
                "True",
                None,
                None,
                "2026-01-01T00:00:00Z",
                "first reconcile: Ready now",
            ),
            (
                &again,
                "True",
                None,
                None,
                "2026-01-01T00:00:00Z",
                "still Ready: the transition time stays",
            ),
            (
                &broken,
                "False",
                Some("True"),
                None,
                "2026-01-03T00:00:00Z",
                "invalid spec: Stalled, Ready false from now",
            ),
            (
                &flaky,
                "False",
                None,
                Some("True"),
                "2026-01-04T00:00:00Z",
                "transient failure: in progress (Reconciling), not Stalled, so kstatus waits",
            ),
            (
                &healed,
                "True",
                None,
                None,
                "2026-01-05T00:00:00Z",
                "healed: Ready again and Reconciling gone",
            ),
        ];
        for (conditions, ready_status, stalled_status, reconciling_status, since, reason) in cases {
            let get = |t: &str| conditions.iter().find(|c| c.type_ == t);
            let r = get(READY).expect("Ready");
            assert_eq!(r.status, *ready_status, "{reason}");
            assert_eq!(r.last_transition_time.0, ts(since), "{reason}");
            assert_eq!(
                get(STALLED).map(|c| c.status.as_str()),
                *stalled_status,
                "{reason}"
            );
            assert_eq!(
                get(RECONCILING).map(|c| c.status.as_str()),
                *reconciling_status,
                "{reason}"
            );
        }
        let r = flaky.iter().find(|c| c.type_ == READY).expect("Ready");
        assert_eq!(
            r.reason, "RegistryUnavailable",
            "Ready carries the cause of a retry"
        );
        assert_eq!(
            again[0].observed_generation,
            Some(2),
            "observedGeneration follows the spec"
        );
    }
}

//! RFC 5545 RRULE, FREQ=DAILY..YEARLY, expanded on wall-clock time with jiff.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRule {
    _p: (),
}

impl RRule {
    /// Parses `FREQ=…;…`, with or without a leading `RRULE:`.
    pub fn parse(s: &str) -> Result<RRule, RRuleError> {
        let _ = s;
        panic!("CONTRACT placeholder")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RRuleError {
    #[error("invalid recurrence: {0}")]
    Invalid(String),
}

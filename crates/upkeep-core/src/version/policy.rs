//! Policies: which of a set of tags is allowed, and why the others are not.

use jiff::{SignedDuration, Timestamp};

use super::Constraints;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone)]
pub enum PolicyKind {
    SemverRange(Constraints),
    Alphabetical(Order),
    Numerical(Order),
}

/// `filterTags {pattern, extract}`.
#[derive(Debug, Clone)]
pub struct TagFilter {
    _p: (),
}

impl TagFilter {
    /// `extract` may reference named groups as `$name` or `${name}`; empty means the whole tag.
    pub fn new(pattern: &str, extract: Option<&str>) -> Result<TagFilter, FilterError> {
        let _ = (pattern, extract);
        panic!("CONTRACT placeholder")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid pattern: {0}")]
    InvalidPattern(String),
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub kind: PolicyKind,
    pub filter: Option<TagFilter>,
    pub minimum_release_age: Option<SignedDuration>,
    pub pin: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct TagInfo<'a> {
    pub tag: &'a str,
    pub first_seen: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Ignored,
    OutsideRange,
    TooYoung { until: Timestamp },
    NotPinned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    pub selected: Option<&'a str>,
    pub considered: usize,
    pub ignored: usize,
}

impl Policy {
    pub fn select<'a>(&self, tags: &[TagInfo<'a>], now: Timestamp) -> Selection<'a> {
        let _ = (tags, now);
        panic!("CONTRACT placeholder")
    }
}

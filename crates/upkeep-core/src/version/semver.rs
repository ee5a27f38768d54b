//! Strict SemVer 2.0 tags with an optional leading `v`, as Flux reads them.

use std::cmp::Ordering;

/// A version parsed from a tag. Precedence follows SemVer 2.0 (build metadata ignored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// Placeholder field; the real representation is up to the implementation.
    original: String,
}

impl Version {
    /// Parses a tag as Flux does: strict SemVer 2.0, optionally prefixed with `v`.
    /// Anything else is `None` (an ignored tag, never an error).
    pub fn parse(tag: &str) -> Option<Version> {
        let _ = tag;
        panic!("CONTRACT placeholder: Version::parse")
    }
    pub fn major(&self) -> u64 {
        panic!("CONTRACT placeholder")
    }
    pub fn minor(&self) -> u64 {
        panic!("CONTRACT placeholder")
    }
    pub fn patch(&self) -> u64 {
        panic!("CONTRACT placeholder")
    }
    /// True when the version has a prerelease part.
    pub fn is_prerelease(&self) -> bool {
        panic!("CONTRACT placeholder")
    }
    /// The tag exactly as given (with its `v`, if any).
    pub fn original(&self) -> &str {
        &self.original
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let _ = other;
        panic!("CONTRACT placeholder")
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// How big a step from one version to another is. Ordered: `Patch < Minor < Major`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UpgradeKind {
    Patch,
    Minor,
    Major,
}

impl UpgradeKind {
    /// The kind of the step `from → to`; `None` when `to` is not greater than `from`.
    /// A change of major (or of minor while major is 0? no: plain SemVer) is `Major`, etc.
    pub fn between(from: &Version, to: &Version) -> Option<UpgradeKind> {
        let _ = (from, to);
        panic!("CONTRACT placeholder")
    }
}

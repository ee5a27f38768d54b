//! Strict SemVer 2.0 tags with an optional leading `v`, as Flux reads them.
//!
//! Flux's `version.ParseVersion` strips one leading lowercase `v` and then demands a strict
//! SemVer 2.0 version (Masterminds `StrictNewVersion`). We do the same, by hand and without a
//! regex, because tag parsing is the hot path of every selection: a registry may hold 100k
//! tags and almost all of them are read once and thrown away.
//!
//! The shape is therefore two-layered:
//! - [`VersionRef`] (crate-private) borrows the tag and holds only integers and sub-slices, so
//!   parsing and comparing allocate nothing;
//! - [`Version`] owns its tag and is only built for what a caller keeps (the winner).
//!
//! Precedence is SemVer 2.0 as Masterminds implements it: build metadata is ignored, numeric
//! prerelease identifiers sort below alphanumeric ones, a shorter prefix sorts lower. A numeric
//! prerelease identifier too large for `u64` is compared as text, as Masterminds does.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A borrowed, allocation-free view of a parsed version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VersionRef<'a> {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) patch: u64,
    /// Prerelease without its `-`; empty when there is none.
    pub(crate) pre: &'a str,
    /// Build metadata without its `+`; empty when there is none.
    pub(crate) build: &'a str,
}

impl<'a> VersionRef<'a> {
    /// Strict SemVer 2.0 after an optional single leading `v` (Flux `ParseVersion`).
    pub(crate) fn parse_tag(tag: &'a str) -> Option<VersionRef<'a>> {
        let s = tag.strip_prefix('v').unwrap_or(tag);
        let (major, rest) = s.split_once('.')?;
        let (minor, rest) = rest.split_once('.')?;
        let (rest, build) = match rest.split_once('+') {
            Some((r, b)) => {
                if !valid_identifiers(b) {
                    return None;
                }
                (r, b)
            }
            None => (rest, ""),
        };
        let (patch, pre) = match rest.split_once('-') {
            Some((p, pre)) => {
                if !valid_prerelease(pre) {
                    return None;
                }
                (p, pre)
            }
            None => (rest, ""),
        };
        Some(VersionRef {
            major: strict_number(major)?,
            minor: strict_number(minor)?,
            patch: strict_number(patch)?,
            pre,
            build,
        })
    }

    /// Masterminds `NewVersion` (coercing): optional `v`, one to three numeric parts (leading
    /// zeros allowed), then an optional prerelease and build metadata.
    pub(crate) fn parse_lenient(s: &'a str) -> Option<VersionRef<'a>> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let (s, build) = match s.split_once('+') {
            Some((r, b)) => {
                if !valid_identifiers(b) {
                    return None;
                }
                (r, b)
            }
            None => (s, ""),
        };
        let (s, pre) = match s.split_once('-') {
            Some((r, p)) => {
                if !valid_prerelease(p) {
                    return None;
                }
                (r, p)
            }
            None => (s, ""),
        };
        let mut nums = [0u64; 3];
        for (n, seg) in s.split('.').enumerate() {
            *nums.get_mut(n)? = loose_number(seg)?;
        }
        Some(VersionRef {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre,
            build,
        })
    }

    pub(crate) fn cmp_precedence(&self, other: &VersionRef<'_>) -> Ordering {
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(self.patch.cmp(&other.patch))
            .then_with(|| compare_prerelease(self.pre, other.pre))
    }
}

/// Digits only, non-empty, no leading zero, fits in `u64`.
fn strict_number(s: &str) -> Option<u64> {
    if s.len() > 1 && s.as_bytes()[0] == b'0' {
        return None;
    }
    loose_number(s)
}

/// Digits only, non-empty, fits in `u64` (leading zeros allowed).
pub(crate) fn loose_number(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s.as_bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Dot-separated, non-empty identifiers of `[0-9A-Za-z-]`.
pub(crate) fn valid_identifiers(s: &str) -> bool {
    s.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(is_ident_byte))
}

/// Valid identifiers, and numeric identifiers without leading zeros.
pub(crate) fn valid_prerelease(s: &str) -> bool {
    valid_identifiers(s)
        && s.split('.').all(|id| {
            !(id.len() > 1 && id.as_bytes()[0] == b'0' && id.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Numeric value of a prerelease identifier; `None` for alphanumerics and for numbers that do
/// not fit in `u64` (which Masterminds compares as text).
fn numeric_identifier(s: &str) -> Option<u64> {
    loose_number(s)
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    match (numeric_identifier(a), numeric_identifier(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.as_bytes().cmp(b.as_bytes()),
    }
}

/// SemVer 2.0 prerelease precedence; an empty prerelease (a release) ranks above any.
pub(crate) fn compare_prerelease(left: &str, right: &str) -> Ordering {
    match (left.is_empty(), right.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut lhs = left.split('.');
    let mut rhs = right.split('.');
    loop {
        match (lhs.next(), rhs.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => match compare_identifier(p, q) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

/// A version parsed from a tag. Precedence follows SemVer 2.0 (build metadata ignored), so two
/// versions that differ only in build metadata or in a leading `v` are equal.
#[derive(Debug, Clone)]
pub struct Version {
    original: String,
    major: u64,
    minor: u64,
    patch: u64,
    /// Byte range of the prerelease in `original` (empty range: none).
    pre: (u32, u32),
    /// Byte range of the build metadata in `original` (empty range: none).
    build: (u32, u32),
}

fn range_in(outer: &str, inner: &str) -> (u32, u32) {
    if inner.is_empty() {
        return (0, 0);
    }
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    // Tags are far shorter than 4 GiB; saturate rather than panic on absurd input.
    let s = u32::try_from(start).unwrap_or(u32::MAX);
    let e = u32::try_from(start + inner.len()).unwrap_or(u32::MAX);
    (s, e)
}

impl Version {
    /// Parses a tag as Flux does: strict SemVer 2.0, optionally prefixed with `v`.
    /// Anything else is `None` (an ignored tag, never an error).
    pub fn parse(tag: &str) -> Option<Version> {
        VersionRef::parse_tag(tag).map(|r| Version::from_ref(tag, &r))
    }

    /// Parses a version the lenient way constraint versions are read (Masterminds
    /// `NewVersion`): optional `v`, `1`, `1.2` or `1.2.3`, leading zeros allowed, then an
    /// optional prerelease and build metadata. Not for tags: use [`Version::parse`].
    pub fn parse_lenient(s: &str) -> Option<Version> {
        VersionRef::parse_lenient(s).map(|r| Version::from_ref(s, &r))
    }

    /// `r` must borrow from `original`.
    pub(crate) fn from_ref(original: &str, r: &VersionRef<'_>) -> Version {
        Version {
            original: original.to_owned(),
            major: r.major,
            minor: r.minor,
            patch: r.patch,
            pre: range_in(original, r.pre),
            build: range_in(original, r.build),
        }
    }

    pub(crate) fn as_ref(&self) -> VersionRef<'_> {
        VersionRef {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: self.prerelease(),
            build: self.build(),
        }
    }

    pub fn major(&self) -> u64 {
        self.major
    }
    pub fn minor(&self) -> u64 {
        self.minor
    }
    pub fn patch(&self) -> u64 {
        self.patch
    }
    /// True when the version has a prerelease part.
    pub fn is_prerelease(&self) -> bool {
        self.pre.0 != self.pre.1
    }
    /// The prerelease without its `-` (empty when there is none).
    pub fn prerelease(&self) -> &str {
        self.original
            .get(self.pre.0 as usize..self.pre.1 as usize)
            .unwrap_or("")
    }
    /// The build metadata without its `+` (empty when there is none).
    pub fn build(&self) -> &str {
        self.original
            .get(self.build.0 as usize..self.build.1 as usize)
            .unwrap_or("")
    }
    /// The tag exactly as given (with its `v`, if any).
    pub fn original(&self) -> &str {
        &self.original
    }
}

/// The canonical form `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, without a `v`.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.is_prerelease() {
            write!(f, "-{}", self.prerelease())?;
        }
        if !self.build().is_empty() {
            write!(f, "+{}", self.build())?;
        }
        Ok(())
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Consistent with `Eq`: build metadata and the `v` do not take part.
        self.major.hash(state);
        self.minor.hash(state);
        self.patch.hash(state);
        self.prerelease().hash(state);
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().cmp_precedence(&other.as_ref())
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
    /// Plain SemVer: a different major is `Major` (also below 1.0), a different minor is
    /// `Minor`, anything else (patch or prerelease only) is `Patch`.
    pub fn between(from: &Version, to: &Version) -> Option<UpgradeKind> {
        if to <= from {
            return None;
        }
        Some(if to.major != from.major {
            UpgradeKind::Major
        } else if to.minor != from.minor {
            UpgradeKind::Minor
        } else {
            UpgradeKind::Patch
        })
    }
}

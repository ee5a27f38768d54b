//! The constraint language of Masterminds/semver v3 (as of v3.4), which Flux uses for
//! `semver.range`.
//!
//! Users paste ranges that already work in Flux, so "close to npm" is not good enough: the
//! grammar and every odd corner must be Masterminds'. Parsing therefore reproduces the
//! upstream pipeline step by step with the same regular expressions (RE2 semantics in both Go
//! and the `regex` crate): hyphen ranges are rewritten textually first, the text is split on
//! `||`, each alternative is validated as a whole and then cut into comparators. Parsing
//! happens once per policy, so regexes cost nothing that matters there.
//!
//! Checking is the hot path (once per tag), so a parsed comparator is plain integers plus an
//! owned prerelease, and [`Constraints::matches`] compares borrowed views: no allocation.
//!
//! Prereleases follow v3.4: a prerelease version can only match an `&&` group (an alternative)
//! in which at least one comparator names a prerelease (`>=1.2.0-0`), unless
//! [`Constraints::with_prereleases`] opts in for everything.
//!
//! Known upstream quirks reproduced on purpose (tests pin them): `^*` only matches `0.0.0`,
//! `<=*` only matches `0.x`, `<` ignores wildcards (`<1.x` is `<1.0.0`), the build metadata of
//! a partial version is dropped, and a bare `1.2` means `~1.2` (`=1.2.x`).

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::semver::{VersionRef, loose_number, valid_prerelease};

/// Go's `\s` (ASCII only), which `regex`'s Unicode `\s` is not.
const WS: &str = r"[\t\n\f\r ]";
/// The operators, in upstream's alternation order (leftmost-first matters).
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
/// A lenient ("constraint") version, as upstream's `cvRegex`. Nine groups.
const CV: &str = concat!(
    r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?",
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?",
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
);

fn compile(pattern: &str) -> Regex {
    // The patterns are constants; a failure here is a bug caught by every test.
    Regex::new(pattern).expect("constraint regex compiles")
}

static COMPARATOR: LazyLock<Regex> =
    LazyLock::new(|| compile(&format!(r"^{WS}*({OPS}){WS}*({CV}){WS}*$")));
static RANGE: LazyLock<Regex> =
    LazyLock::new(|| compile(&format!(r"{WS}*({CV}){WS}+-{WS}+({CV}){WS}*")));
static FIND: LazyLock<Regex> = LazyLock::new(|| compile(&format!(r"({OPS}){WS}*({CV})")));
static VALID: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*$"
    ))
});
static VALID_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*"
    ))
});

fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// The comparison a [`Comparator`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=` or no operator: equal, or `~` when the version has a wildcard or is partial.
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    Greater,
    /// `<`
    Less,
    /// `>=` or `=>`
    GreaterOrEqual,
    /// `<=` or `=<`
    LessOrEqual,
    /// `~` or `~>`
    Tilde,
    /// `^`
    Caret,
}

impl Op {
    fn from_text(op: &str) -> Op {
        match op {
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterOrEqual,
            "<=" | "=<" => Op::LessOrEqual,
            "~" | "~>" => Op::Tilde,
            "^" => Op::Caret,
            _ => Op::Equal,
        }
    }
}

/// One comparison such as `>=1.2` or `~1.x`.
#[derive(Debug, Clone)]
pub struct Comparator {
    op: Op,
    /// The operator as written (`=>` stays `=>`).
    op_text: String,
    /// The version as written (`1.x`, `v1.2.3-rc.1`).
    orig: String,
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    build: String,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

impl Comparator {
    pub fn op(&self) -> Op {
        self.op
    }

    /// The version the comparator compares against, with wildcards and missing parts as 0
    /// (`1.x` → `1.0.0`), as Masterminds reports it.
    pub fn bound(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.pre.is_empty() {
            s.push('-');
            s.push_str(&self.pre);
        }
        if !self.build.is_empty() {
            s.push('+');
            s.push_str(&self.build);
        }
        s
    }

    fn con(&self) -> VersionRef<'_> {
        VersionRef {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: &self.pre,
            build: "",
        }
    }

    /// Masterminds v3.4 `constraint.check`.
    fn check(&self, v: &VersionRef<'_>, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        match self.op {
            Op::Equal => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.cmp_precedence(&self.con()) == Ordering::Equal
                }
            }
            Op::NotEqual => self.not_equal(v),
            Op::Greater => self.greater(v),
            Op::Less => v.cmp_precedence(&self.con()) == Ordering::Less,
            Op::GreaterOrEqual => v.cmp_precedence(&self.con()) != Ordering::Less,
            Op::LessOrEqual => self.less_or_equal(v),
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &VersionRef<'_>) -> bool {
        if self.dirty {
            if self.major != v.major {
                return true;
            }
            if self.minor != v.minor && !self.minor_dirty {
                return true;
            } else if self.minor_dirty {
                return false;
            } else if self.patch != v.patch && !self.patch_dirty {
                return true;
            } else if self.patch_dirty {
                // Only the prerelease can still tell them apart.
                return v.pre != self.pre;
            }
        }
        v.cmp_precedence(&self.con()) != Ordering::Equal
    }

    fn greater(&self, v: &VersionRef<'_>) -> bool {
        if !self.dirty {
            return v.cmp_precedence(&self.con()) == Ordering::Greater;
        }
        if v.major > self.major {
            true
        } else if v.major < self.major || self.minor_dirty {
            // `>11` is not satisfied by 11.1.0: it takes 12 or higher.
            false
        } else if self.patch_dirty {
            v.minor > self.minor
        } else {
            v.cmp_precedence(&self.con()) == Ordering::Greater
        }
    }

    fn less_or_equal(&self, v: &VersionRef<'_>) -> bool {
        if !self.dirty {
            return v.cmp_precedence(&self.con()) != Ordering::Greater;
        }
        if v.major > self.major {
            return false;
        }
        !(v.major == self.major && v.minor > self.minor && !self.minor_dirty)
    }

    // ~1.2.3 → >=1.2.3 <1.3.0; ~1.2 → >=1.2.0 <1.3.0; ~1 → >=1.0.0 <2.0.0; ~0.0.0 and ~* → any.
    fn tilde(&self, v: &VersionRef<'_>) -> bool {
        if v.cmp_precedence(&self.con()) == Ordering::Less {
            return false;
        }
        if self.major == 0
            && self.minor == 0
            && self.patch == 0
            && !self.minor_dirty
            && !self.patch_dirty
        {
            return true;
        }
        if v.major != self.major {
            return false;
        }
        v.minor == self.minor || self.minor_dirty
    }

    // ^1.2.3 → >=1.2.3 <2; ^0.2.3 → >=0.2.3 <0.3; ^0.0.3 → =0.0.3; ^0.0 → <0.1; ^0 → <1.
    fn caret(&self, v: &VersionRef<'_>) -> bool {
        if v.cmp_precedence(&self.con()) == Ordering::Less {
            return false;
        }
        if self.major > 0 || self.minor_dirty {
            return v.major == self.major;
        }
        if v.major > 0 {
            return false;
        }
        if self.minor > 0 || self.patch_dirty {
            return v.minor == self.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == self.patch
    }
}

/// `op` + version as written, like Masterminds' `String()`.
impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op_text, self.orig)
    }
}

#[derive(Debug, Clone)]
struct Group {
    comparators: Vec<Comparator>,
    /// Some comparator names a prerelease: prereleases may match this group.
    has_pre: bool,
}

/// A parsed constraint string such as `>=1.2 <2 || ^3.0.0-0`.
#[derive(Debug, Clone)]
pub struct Constraints {
    original: String,
    groups: Vec<Group>,
    include_prerelease: bool,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

fn parse_comparator(text: &str, whole: &str) -> Result<Comparator, ConstraintError> {
    let invalid_version = |reason: &'static str| ConstraintError::InvalidVersion {
        part: text.trim_matches(is_go_space).to_owned(),
        constraint: whole.to_owned(),
        reason,
    };
    let Some(m) = COMPARATOR.captures(text) else {
        return Err(ConstraintError::InvalidComparator {
            part: text.trim_matches(is_go_space).to_owned(),
            constraint: whole.to_owned(),
        });
    };
    let g = |i: usize| m.get(i).map_or("", |x| x.as_str());
    let (op_text, orig) = (g(1), g(2));
    let (major_t, minor_t, patch_t) = (g(3), g(4), g(5));
    let pre = g(7);
    let minor_s = minor_t.strip_prefix('.').unwrap_or(minor_t);
    let patch_s = patch_t.strip_prefix('.').unwrap_or(patch_t);

    let number = |s: &str| loose_number(s).ok_or_else(|| invalid_version(NUMBER_REASON));
    let (major, minor, patch, build, dirty, minor_dirty, patch_dirty);
    if is_x(major_t) {
        (major, minor, patch) = (0, 0, 0);
        (dirty, minor_dirty, patch_dirty) = (true, false, false);
        build = "";
    } else if minor_t.is_empty() || is_x(minor_s) {
        (major, minor, patch) = (number(major_t)?, 0, 0);
        (dirty, minor_dirty, patch_dirty) = (true, true, false);
        build = "";
    } else if patch_t.is_empty() || is_x(patch_s) {
        (major, minor, patch) = (number(major_t)?, number(minor_s)?, 0);
        (dirty, minor_dirty, patch_dirty) = (true, false, true);
        build = "";
    } else {
        (major, minor, patch) = (number(major_t)?, number(minor_s)?, number(patch_s)?);
        (dirty, minor_dirty, patch_dirty) = (false, false, false);
        build = g(9).strip_prefix('+').unwrap_or("");
    }
    if !pre.is_empty() && !valid_prerelease(pre) {
        return Err(invalid_version(
            "a numeric prerelease identifier has a leading zero",
        ));
    }
    Ok(Comparator {
        op: Op::from_text(op_text),
        op_text: op_text.to_owned(),
        orig: orig.to_owned(),
        major,
        minor,
        patch,
        pre: pre.to_owned(),
        build: build.to_owned(),
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

const NUMBER_REASON: &str =
    "each part must be a number that fits in 64 bits, or exactly one of `x`, `X`, `*`";

/// Masterminds' `rewriteRange`: every `A - B` becomes `>= A, <= B ` in place.
fn rewrite_ranges(s: &str) -> String {
    let mut out = s.to_owned();
    for m in RANGE.captures_iter(s) {
        let whole = m.get(0).map_or("", |x| x.as_str());
        let lo = m.get(1).map_or("", |x| x.as_str());
        let hi = m.get(11).map_or("", |x| x.as_str());
        out = out.replacen(whole, &format!(">= {lo}, <= {hi} "), 1);
    }
    out
}

impl Constraints {
    /// Parses a Masterminds/semver v3 constraint string.
    pub fn parse(s: &str) -> Result<Constraints, ConstraintError> {
        if s.trim_matches(is_go_space).is_empty() {
            return Err(ConstraintError::Empty);
        }
        let rewritten = rewrite_ranges(s);
        let mut groups = Vec::new();
        for (index, alt) in rewritten.split("||").enumerate() {
            if alt.trim_matches(is_go_space).is_empty() {
                return Err(ConstraintError::EmptyAlternative {
                    index,
                    constraint: s.to_owned(),
                });
            }
            if !VALID.is_match(alt) {
                let rest = VALID_PREFIX
                    .find(alt)
                    .map_or(alt, |m| &alt[m.end()..])
                    .trim_matches(is_go_space);
                let part = if rest.is_empty() { alt } else { rest };
                return Err(ConstraintError::InvalidComparator {
                    part: part.trim_matches(is_go_space).to_owned(),
                    constraint: s.to_owned(),
                });
            }
            let comparators = FIND
                .find_iter(alt)
                .map(|m| parse_comparator(m.as_str(), s))
                .collect::<Result<Vec<_>, _>>()?;
            let has_pre = comparators.iter().any(|c| !c.pre.is_empty());
            groups.push(Group {
                comparators,
                has_pre,
            });
        }
        Ok(Constraints {
            original: s.to_owned(),
            groups,
            include_prerelease: false,
        })
    }

    /// Masterminds' `IncludePrerelease`: let prerelease versions match every alternative, not
    /// only those that name a prerelease. Flux does not set it; it is here for completeness.
    #[must_use]
    pub fn with_prereleases(mut self, include: bool) -> Constraints {
        self.include_prerelease = include;
        self
    }

    /// True when `v` satisfies at least one `||` alternative. Does not allocate.
    pub fn matches(&self, v: &super::Version) -> bool {
        self.matches_ref(&v.as_ref())
    }

    pub(crate) fn matches_ref(&self, v: &VersionRef<'_>) -> bool {
        self.groups.iter().any(|g| {
            let include_pre = self.include_prerelease || g.has_pre;
            g.comparators.iter().all(|c| c.check(v, include_pre))
        })
    }

    /// The string as given.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The comparators of each `||` alternative, in order.
    pub fn alternatives(&self) -> impl Iterator<Item = &[Comparator]> {
        self.groups.iter().map(|g| g.comparators.as_slice())
    }

    /// The normal form Masterminds prints: comparators joined by a space, alternatives by
    /// ` || ` (`">= 1.2, <2"` → `">=1.2 <2"`; a hyphen range shows as its two comparators).
    pub fn normalized(&self) -> String {
        self.groups
            .iter()
            .map(|g| {
                g.comparators
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" || ")
    }
}

/// The string as given.
impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// Why a constraint string is invalid. `Display` is one line naming the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// Nothing but whitespace.
    #[error("the version range is empty")]
    Empty,
    /// `1.2 ||` or `|| 1.2`: one `||` alternative is blank.
    #[error("alternative {index} of the version range {constraint:?} is empty")]
    EmptyAlternative { index: usize, constraint: String },
    /// Text that is not `<operator><version>` where a comparator should be.
    #[error("invalid comparator {part:?} in version range {constraint:?}")]
    InvalidComparator { part: String, constraint: String },
    /// A comparator of the right shape whose version is not a version (`1x`, `1.2.3-01`, a
    /// number beyond 64 bits).
    #[error("invalid version in comparator {part:?} of version range {constraint:?}: {reason}")]
    InvalidVersion {
        part: String,
        constraint: String,
        reason: &'static str,
    },
}

impl ConstraintError {
    /// A short hint at the fix, shown after `hint:`.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ConstraintError::Empty => {
                "write a range such as `>=1.2.0 <2.0.0` or `^1.2`; `*` allows every release"
                    .to_owned()
            }
            ConstraintError::EmptyAlternative { .. } => {
                "remove the stray `||`, or put a range on both sides of it".to_owned()
            }
            ConstraintError::InvalidComparator { .. } => {
                "ranges look like `>=1.2.0 <2.0.0` or `^1.2`; separate alternatives with `||`; \
                 operators are = != > < >= <= ~ ~> ^ and hyphen ranges need spaces (`1.2 - 1.4`)"
                    .to_owned()
            }
            ConstraintError::InvalidVersion { .. } => {
                "versions in a range look like `1`, `1.2`, `1.2.3`, `1.2.x` or `1.2.3-rc.1`"
                    .to_owned()
            }
        })
    }
}

//! Policies: which of a set of tags is allowed, and why the others are not.
//!
//! The semantics are Flux image-reflector-controller's `policy` package, so a `VersionPolicy`
//! moved over from an `ImagePolicy` picks the same tag:
//! - `SemverRange`: the highest tag that parses as a (strict, optional `v`) version and
//!   satisfies the range; other tags are ignored.
//! - `Alphabetical(Asc)` picks the last tag in ascending byte order, `Desc` the first.
//! - `Numerical(Asc)` picks the largest tag read as an `f64`, `Desc` the smallest; tags that
//!   are not numbers are ignored (Flux fails the whole policy instead; a registry with one odd
//!   tag should not stop updates).
//! - `filterTags {pattern, extract}`: tags the regex does not match are ignored; with
//!   `extract` the expansion (Go `Regexp.Expand`: `$name`, `${name}`, `$1`, `$$`) is what gets
//!   parsed and ordered, but the original tag is what is returned.
//!
//! On top of Flux, upkeep adds `minimumReleaseAge` (a tag must have been seen for a while) and
//! `pin` (exactly this tag, bypassing range and age).
//!
//! Ties (two tags of equal rank: `v1.2.3` and `1.2.3`, or equal extracted values) go to the
//! one listed first, as Flux's semver policy does.
//!
//! [`Policy::select`] is the hot path: it runs over every tag of a repository, so for tags
//! without `extract` it allocates nothing per tag and only materialises the winner.
//! [`Policy::explain`] re-runs the same evaluation and reports a [`Rejection`] for every tag
//! that was not chosen, which is what `upkeep plan` prints.

use std::borrow::Cow;
use std::cmp::Ordering;

use jiff::{SignedDuration, Timestamp};
use regex::Regex;

use super::Constraints;
use super::Version;
use super::semver::{VersionRef, compare_prerelease};

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

/// One piece of a parsed `extract` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

/// `filterTags {pattern, extract}`.
#[derive(Debug, Clone)]
pub struct TagFilter {
    regex: Regex,
    /// `None`: the whole tag is the value.
    template: Option<Vec<Piece>>,
}

/// Go `regexp.extract`: the name after a `$` (`name`, `{name}`), and the rest of the template.
/// `None` when malformed (then the `$` is literal text).
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let rest = if brace {
        body[end..].strip_prefix('}')?
    } else {
        &body[end..]
    };
    Some((name, rest))
}

/// A group number the way Go reads one: ASCII digits, no leading zero, below 1e8.
fn group_number(name: &str) -> Option<usize> {
    if name.is_empty() || name.len() > 8 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    name.parse().ok()
}

impl TagFilter {
    /// `extract` may reference named groups as `$name` or `${name}`; empty means the whole tag.
    pub fn new(pattern: &str, extract: Option<&str>) -> Result<TagFilter, FilterError> {
        let regex = Regex::new(pattern).map_err(|e| FilterError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: crate::regex_error_reason(&e),
        })?;
        let template = match extract {
            None | Some("") => None,
            Some(t) => Some(Self::parse_template(&regex, t)?),
        };
        Ok(TagFilter { regex, template })
    }

    fn parse_template(regex: &Regex, template: &str) -> Result<Vec<Piece>, FilterError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = template;
        while let Some(i) = rest.find('$') {
            lit.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('$') {
                lit.push('$');
                rest = r;
                continue;
            }
            let Some((name, after)) = template_name(rest) else {
                lit.push('$');
                continue;
            };
            rest = after;
            let index = match group_number(name) {
                Some(n) if n < regex.captures_len() => n,
                Some(_) => None.ok_or_else(|| missing(regex, template, name))?,
                None => regex
                    .capture_names()
                    .position(|n| n == Some(name))
                    .ok_or_else(|| missing(regex, template, name))?,
            };
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Group(index));
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(pieces)
    }

    /// The value to parse/order for `tag`, or `None` when the pattern does not match.
    fn value<'t>(&self, tag: &'t str) -> Option<Cow<'t, str>> {
        let Some(template) = &self.template else {
            return self.regex.is_match(tag).then_some(Cow::Borrowed(tag));
        };
        let caps = self.regex.captures(tag)?;
        let mut out = String::new();
        for p in template {
            match p {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
            }
        }
        Some(Cow::Owned(out))
    }
}

fn missing(regex: &Regex, template: &str, name: &str) -> FilterError {
    let groups: Vec<String> = regex
        .capture_names()
        .enumerate()
        .skip(1)
        .map(|(i, n)| n.map_or_else(|| i.to_string(), ToOwned::to_owned))
        .collect();
    FilterError::MissingGroup {
        name: name.to_owned(),
        extract: template.to_owned(),
        groups,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid filterTags pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    /// `extract` names a group that the pattern does not have.
    #[error(
        "filterTags extract {extract:?} refers to group {name:?}, which the pattern does not define"
    )]
    MissingGroup {
        name: String,
        extract: String,
        /// The groups the pattern does define (names, or numbers for unnamed ones).
        groups: Vec<String>,
    },
}

impl FilterError {
    /// A short hint at the fix, shown after `hint:`.
    pub fn hint(&self) -> Option<String> {
        match self {
            FilterError::InvalidPattern { .. } => Some(
                "the pattern is a regular expression (RE2 syntax, as in Flux), e.g. \
                 `^main-[a-f0-9]+-(?P<ts>[0-9]+)$`"
                    .to_owned(),
            ),
            FilterError::MissingGroup { groups, .. } if groups.is_empty() => Some(
                "the pattern has no groups; name one like `(?P<ts>[0-9]+)` and extract `$ts`"
                    .to_owned(),
            ),
            FilterError::MissingGroup { groups, .. } => Some(format!(
                "the pattern defines: {}; write `${{name}}` when text follows the name",
                groups
                    .iter()
                    .map(|g| format!("${g}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
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
    /// When upkeep first saw the tag; `None` (unknown) counts as "just now".
    pub first_seen: Option<Timestamp>,
}

/// Why a tag was not selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a version for this policy (does not parse, or `filterTags` did not match).
    Ignored,
    /// A version, but outside the semver range.
    OutsideRange,
    /// Allowed, but not seen for `minimumReleaseAge` yet; eligible from `until`.
    TooYoung { until: Timestamp },
    /// A pin is set and this is not the pinned tag.
    NotPinned,
    /// Allowed, but another allowed tag ranks higher (or ties and is listed first).
    Outranked,
}

/// The best candidate that lost only to `minimumReleaseAge`: it ranks above what was selected
/// (or nothing was selected) and becomes eligible at `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held<'a> {
    pub tag: &'a str,
    pub until: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    /// The chosen tag, exactly as listed.
    pub selected: Option<&'a str>,
    /// Tags that passed the filter and parsed for the policy's kind, and so were evaluated.
    pub considered: usize,
    /// Tags that were not versions for this policy (filter did not match, or did not parse).
    pub ignored: usize,
    /// See [`Held`]. `None` when nothing better is waiting (or a pin is set).
    pub held: Option<Held<'a>>,
    /// For `SemverRange`, the winner as a version (parsed from the extracted value when
    /// `filterTags.extract` is set). `None` for the other kinds.
    pub version: Option<Version>,
}

/// What evaluation decided about one tag.
enum Verdict {
    Rejected(Rejection),
    Eligible,
}

/// A parsed value's rank key.
#[derive(Clone, Copy)]
enum Key {
    Semver(u64, u64, u64),
    Text,
    Number(f64),
}

struct Candidate<'a> {
    idx: usize,
    value: Cow<'a, str>,
    key: Key,
    until: Timestamp,
}

struct Outcome<'a> {
    selected: Option<Candidate<'a>>,
    held: Option<Candidate<'a>>,
    considered: usize,
    ignored: usize,
}

fn prerelease_of(value: &str) -> &str {
    VersionRef::parse_tag(value).map_or("", |v| v.pre)
}

impl Policy {
    /// A policy of `kind` with no filter, age or pin.
    pub fn new(kind: PolicyKind) -> Policy {
        Policy {
            kind,
            filter: None,
            minimum_release_age: None,
            pin: None,
        }
    }

    pub fn select<'a>(&self, tags: &[TagInfo<'a>], now: Timestamp) -> Selection<'a> {
        let out = self.evaluate(tags, now, |_, _| {});
        let version = match (&self.kind, &out.selected) {
            (PolicyKind::SemverRange(_), Some(c)) => Version::parse(&c.value),
            _ => None,
        };
        Selection {
            selected: out.selected.as_ref().map(|c| tags[c.idx].tag),
            considered: out.considered,
            ignored: out.ignored,
            held: out.held.map(|c| Held {
                tag: tags[c.idx].tag,
                until: c.until,
            }),
            version,
        }
    }

    /// Why each tag other than the selected one was not chosen, in input order. Consistent
    /// with [`Policy::select`] for the same `tags` and `now`.
    pub fn explain<'a>(&self, tags: &[TagInfo<'a>], now: Timestamp) -> Vec<(&'a str, Rejection)> {
        let mut verdicts: Vec<(usize, Verdict)> = Vec::with_capacity(tags.len());
        let out = self.evaluate(tags, now, |i, v| verdicts.push((i, v)));
        let selected = out.selected.map(|c| c.idx);
        verdicts
            .into_iter()
            .filter(|(i, _)| Some(*i) != selected)
            .map(|(i, v)| {
                let r = match v {
                    Verdict::Rejected(r) => r,
                    Verdict::Eligible => Rejection::Outranked,
                };
                (tags[i].tag, r)
            })
            .collect()
    }

    /// The value's rank key for this policy's kind and whether it is inside the range, or
    /// `None` when the value is not a version here. Parses once.
    fn classify(&self, value: &str) -> Option<(Key, bool)> {
        match &self.kind {
            PolicyKind::SemverRange(c) => {
                let v = VersionRef::parse_tag(value)?;
                Some((Key::Semver(v.major, v.minor, v.patch), c.matches_ref(&v)))
            }
            PolicyKind::Alphabetical(_) => Some((Key::Text, true)),
            PolicyKind::Numerical(_) => value
                .parse::<f64>()
                .ok()
                .filter(|f| !f.is_nan())
                .map(|f| (Key::Number(f), true)),
        }
    }

    /// Does `a` rank strictly above `b`?
    fn better(&self, a: (&str, Key), b: (&str, Key)) -> bool {
        match (&self.kind, a.1, b.1) {
            (PolicyKind::SemverRange(_), Key::Semver(x0, x1, x2), Key::Semver(y0, y1, y2)) => {
                match (x0, x1, x2).cmp(&(y0, y1, y2)) {
                    Ordering::Equal => {
                        compare_prerelease(prerelease_of(a.0), prerelease_of(b.0))
                            == Ordering::Greater
                    }
                    o => o == Ordering::Greater,
                }
            }
            (PolicyKind::Alphabetical(order), _, _) => {
                let o = a.0.as_bytes().cmp(b.0.as_bytes());
                match order {
                    Order::Asc => o == Ordering::Greater,
                    Order::Desc => o == Ordering::Less,
                }
            }
            (PolicyKind::Numerical(order), Key::Number(x), Key::Number(y)) => match order {
                Order::Asc => x > y,
                Order::Desc => x < y,
            },
            _ => false,
        }
    }

    fn is_pinned(&self, pin: &str, tag: &str, value: &str) -> bool {
        if tag == pin || value == pin {
            return true;
        }
        match self.kind {
            // Strict versions have one spelling apart from the `v`: compare without it.
            PolicyKind::SemverRange(_) => {
                value.strip_prefix('v').unwrap_or(value) == pin.strip_prefix('v').unwrap_or(pin)
            }
            _ => false,
        }
    }

    fn evaluate<'a>(
        &self,
        tags: &[TagInfo<'a>],
        now: Timestamp,
        mut report: impl FnMut(usize, Verdict),
    ) -> Outcome<'a> {
        let mut out = Outcome {
            selected: None,
            held: None,
            considered: 0,
            ignored: 0,
        };
        let age = self
            .minimum_release_age
            .filter(SignedDuration::is_positive)
            .unwrap_or(SignedDuration::ZERO);
        for (idx, info) in tags.iter().enumerate() {
            let value: Cow<'a, str> = match &self.filter {
                None => Cow::Borrowed(info.tag),
                Some(f) => {
                    if let Some(v) = f.value(info.tag) {
                        v
                    } else {
                        out.ignored += 1;
                        report(idx, Verdict::Rejected(Rejection::Ignored));
                        continue;
                    }
                }
            };
            let Some((key, in_range)) = self.classify(&value) else {
                out.ignored += 1;
                report(idx, Verdict::Rejected(Rejection::Ignored));
                continue;
            };
            out.considered += 1;

            if let Some(pin) = &self.pin {
                if out.selected.is_none() && self.is_pinned(pin, info.tag, &value) {
                    report(idx, Verdict::Eligible);
                    out.selected = Some(Candidate {
                        idx,
                        value,
                        key,
                        until: now,
                    });
                } else {
                    report(idx, Verdict::Rejected(Rejection::NotPinned));
                }
                continue;
            }

            if !in_range {
                report(idx, Verdict::Rejected(Rejection::OutsideRange));
                continue;
            }

            if !age.is_zero() {
                let first = info.first_seen.unwrap_or(now);
                let until = first.checked_add(age).unwrap_or(Timestamp::MAX);
                if until > now {
                    report(idx, Verdict::Rejected(Rejection::TooYoung { until }));
                    let wins = out
                        .held
                        .as_ref()
                        .is_none_or(|h| self.better((&value, key), (&h.value, h.key)));
                    if wins {
                        out.held = Some(Candidate {
                            idx,
                            value,
                            key,
                            until,
                        });
                    }
                    continue;
                }
            }

            report(idx, Verdict::Eligible);
            let wins = out
                .selected
                .as_ref()
                .is_none_or(|s| self.better((&value, key), (&s.value, s.key)));
            if wins {
                out.selected = Some(Candidate {
                    idx,
                    value,
                    key,
                    until: now,
                });
            }
        }
        // Held only matters when it would have beaten the selection.
        if let (Some(h), Some(s)) = (&out.held, &out.selected)
            && !self.better((&h.value, h.key), (&s.value, s.key))
        {
            out.held = None;
        }
        out
    }
}

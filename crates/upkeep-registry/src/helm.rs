//! Helm repository `index.yaml`: versions and `created` of one chart.
//!
//! Indexes of public repositories reach tens of megabytes and come from servers we do not
//! control, so reading one is bounded in every dimension:
//!
//! - **Memory proportional to what is kept.** The index is walked as a stream of YAML events
//!   (granit-parser); only `entries.<chart>[].version` and `.created` are kept, every other
//!   chart and field is skipped as it streams past. No `Value` tree, no event list (serde_yaml,
//!   used before, loaded a whole document's events first, which took 1.4 GB for 127 MiB).
//! - **Linear time.** granit's scanner does constant work per token; libyaml's grows with the
//!   open flow depth, which made an 800 KB index nested 160k deep take six minutes.
//! - **Caps.** Collections nested deeper than [`MAX_DEPTH`], more versions of the chart than
//!   [`IndexLimits::max_versions`] (the same cap as an OCI tag list), and a parse still
//!   running at [`IndexLimits::deadline`] end with an [`IndexError`]. The body itself was
//!   already capped by the transport.
//!
//! Scalars are read as YAML 1.2's core schema reads them (as upkeep's manifests are, see
//! `upkeep_api::yaml`): a plain `version: 1.10` is the float 1.1, as Helm reads it too (Helm's
//! own `helm repo index` quotes such versions).
//! Aliases are not followed: an aliased `version` counts as missing.

use std::time::Instant;

use granit_parser::{ErrorKind, Event, Options, Parser, ScalarStyle, ScanError, Span, StrInput};
use jiff::Timestamp;

use crate::source::MAX_TAGS;

/// The deepest nesting of collections read in an index (the root mapping is level 1; a real
/// index needs about 8). The same number as the manifest loader's limit.
pub const MAX_DEPTH: usize = 128;

/// One chart version from an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub version: String,
    pub created: Option<Timestamp>,
}

/// Bounds for [`parse_index_with`].
#[derive(Clone, Copy, Debug)]
pub struct IndexLimits {
    /// Most entries (versions) of the chart; more is [`IndexError::TooManyVersions`].
    pub max_versions: usize,
    /// A parse still running at this instant stops with [`IndexError::Deadline`].
    pub deadline: Option<Instant>,
}

impl Default for IndexLimits {
    /// The OCI tag cap ([`MAX_TAGS`], `SourceOptions::max_tags`' default), no deadline.
    fn default() -> Self {
        IndexLimits {
            max_versions: MAX_TAGS,
            deadline: None,
        }
    }
}

/// Why an index could not be read. Positions are 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    #[error("not UTF-8 (at byte {offset})")]
    NotUtf8 { offset: usize },
    #[error("line {line} column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("line {line} column {column}: nested deeper than {MAX_DEPTH} levels")]
    TooDeep { line: usize, column: usize },
    #[error("line {line} column {column}: {detail}")]
    NotAnIndex {
        line: usize,
        column: usize,
        detail: &'static str,
    },
    #[error("the chart has more than {limit} versions")]
    TooManyVersions { limit: usize },
    #[error("reading the index did not finish in time")]
    Deadline,
}

/// Parses `index.yaml` and returns the entries of `chart`, or `Ok(None)` when the index has
/// no such chart, with the default [`IndexLimits`]. Errors are in words, with line and column.
pub fn parse_index(bytes: &[u8], chart: &str) -> Result<Option<Vec<IndexEntry>>, String> {
    parse_index_with(bytes, chart, &IndexLimits::default()).map_err(|e| e.to_string())
}

/// [`parse_index`] within `limits`.
pub fn parse_index_with(
    bytes: &[u8],
    chart: &str,
    limits: &IndexLimits,
) -> Result<Option<Vec<IndexEntry>>, IndexError> {
    let text = std::str::from_utf8(bytes).map_err(|e| IndexError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut events = Events::new(text, limits);
    // StreamStart, then the first document (an index has one; anything after it is not read).
    let mut next = events.next()?;
    if matches!(next.0, Event::StreamStart) {
        next = events.next()?;
    }
    if matches!(next.0, Event::DocumentStart(..)) {
        next = events.next()?;
    }
    match next.0 {
        Event::MappingStart(..) => index(&mut events, chart),
        _ => Err(not_an_index(
            next.1,
            "the top level is not a mapping (expected `apiVersion` and `entries`)",
        )),
    }
}

/// The root mapping, after its start: finds `entries`.
fn index(events: &mut Events<'_>, chart: &str) -> Result<Option<Vec<IndexEntry>>, IndexError> {
    let mut found = None;
    loop {
        let (key, _) = events.next()?;
        if matches!(key, Event::MappingEnd) {
            return Ok(found);
        }
        let is_entries = matches!(&key, Event::Scalar(k, ..) if k == "entries");
        events.skip(&key)?;
        let (value, at) = events.next()?;
        if is_entries {
            found = entries(events, &value, at, chart)?;
        } else {
            events.skip(&value)?;
        }
    }
}

/// The value of `entries`: a mapping from chart name to versions (or nothing).
fn entries(
    events: &mut Events<'_>,
    value: &Event<'_>,
    at: Span,
    chart: &str,
) -> Result<Option<Vec<IndexEntry>>, IndexError> {
    match value {
        Event::Scalar(v, ScalarStyle::Plain, ..) if resolve_plain(v).is_none() => Ok(None),
        Event::MappingStart(..) => {
            let mut found = None;
            loop {
                let (key, _) = events.next()?;
                if matches!(key, Event::MappingEnd) {
                    return Ok(found);
                }
                let is_chart = matches!(&key, Event::Scalar(k, ..) if k == chart);
                events.skip(&key)?;
                let (value, at) = events.next()?;
                if is_chart {
                    found = Some(versions(events, &value, at)?);
                } else {
                    events.skip(&value)?;
                }
            }
        }
        _ => Err(not_an_index(
            at,
            "`entries` is not a mapping from chart name to a list of versions",
        )),
    }
}

/// The value of `entries.<chart>`: a list of chart versions (or nothing).
fn versions(
    events: &mut Events<'_>,
    value: &Event<'_>,
    at: Span,
) -> Result<Vec<IndexEntry>, IndexError> {
    match value {
        Event::Scalar(v, ScalarStyle::Plain, ..) if resolve_plain(v).is_none() => Ok(Vec::new()),
        Event::SequenceStart(..) => {
            let mut out = Vec::new();
            let mut seen = 0usize;
            loop {
                let (item, at) = events.next()?;
                match item {
                    Event::SequenceEnd => return Ok(out),
                    Event::MappingStart(..) => {
                        seen += 1;
                        if seen > events.limits.max_versions {
                            return Err(IndexError::TooManyVersions {
                                limit: events.limits.max_versions,
                            });
                        }
                        // An entry without a version cannot be selected; it is skipped
                        // rather than failing the index.
                        if let Some(entry) = entry(events)? {
                            out.push(entry);
                        }
                    }
                    _ => {
                        return Err(not_an_index(
                            at,
                            "a chart version is not a mapping (expected `version`)",
                        ));
                    }
                }
            }
        }
        _ => Err(not_an_index(at, "a chart's versions are not a list")),
    }
}

/// One chart version, after its mapping start: `version` and `created`.
fn entry(events: &mut Events<'_>) -> Result<Option<IndexEntry>, IndexError> {
    let mut version = None;
    let mut created = None;
    loop {
        let (key, _) = events.next()?;
        if matches!(key, Event::MappingEnd) {
            return Ok(version.map(|version| IndexEntry { version, created }));
        }
        let field = match &key {
            Event::Scalar(k, ..) if k == "version" => Some(true),
            Event::Scalar(k, ..) if k == "created" => Some(false),
            _ => None,
        };
        events.skip(&key)?;
        let (value, _) = events.next()?;
        let text = scalar(&value);
        events.skip(&value)?;
        match field {
            Some(true) => version = text,
            Some(false) => created = text.and_then(|s| s.parse::<Timestamp>().ok()),
            None => {}
        }
    }
}

/// A scalar as text, as YAML 1.2 reads it into a string: plain scalars resolve (null is
/// `None`, `1.10` is `1.1`), quoted and block scalars are taken as written. Collections and
/// aliases are `None`.
fn scalar(event: &Event<'_>) -> Option<String> {
    match event {
        Event::Scalar(v, ScalarStyle::Plain, _, None) => resolve_plain(v),
        Event::Scalar(v, ..) => Some(v.clone().into_owned()),
        _ => None,
    }
}

/// A plain scalar as YAML 1.2's core schema resolves it (as serde_yaml 0.9 did, which this
/// reader replaced), then formatted as Rust formats the value (numbers and booleans through
/// `to_string`); `None` for null.
fn resolve_plain(v: &str) -> Option<String> {
    if v.is_empty() || matches!(v, "~" | "null" | "Null" | "NULL") {
        return None;
    }
    if matches!(v, "true" | "True" | "TRUE") {
        return Some("true".to_owned());
    }
    if matches!(v, "false" | "False" | "FALSE") {
        return Some("false".to_owned());
    }
    if let Some(int) = resolve_int(v) {
        return Some(int.to_string());
    }
    if !digits_but_not_number(v)
        && let Some(float) = resolve_float(v)
    {
        return Some(float.to_string());
    }
    Some(v.to_owned())
}

/// `[+-]` then `0x`/`0o`/`0b` digits or decimal digits, as YAML 1.2 (and serde_yaml) read
/// integers.
fn resolve_int(v: &str) -> Option<i128> {
    let (negative, unsigned) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let (radix, digits) = if let Some(d) = unsigned.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = unsigned.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = unsigned.strip_prefix("0b") {
        (2, d)
    } else if digits_but_not_number(v) {
        return None;
    } else {
        (10, unsigned)
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A finite float, or `.inf`/`.nan` spelled as YAML does.
fn resolve_float(v: &str) -> Option<f64> {
    let unsigned = match v.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => v,
    };
    match unsigned {
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    unsigned.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Leading zeros followed by digits: a string in YAML 1.2 (`007`), not a number.
fn digits_but_not_number(v: &str) -> bool {
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    v.len() > 1 && v.starts_with('0') && v[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The event stream with the caps applied: depth, deadline, and errors in positions.
struct Events<'t> {
    parser: Parser<'t, StrInput<'t>>,
    limits: &'t IndexLimits,
    depth: usize,
    count: u32,
}

impl<'t> Events<'t> {
    fn new(text: &'t str, limits: &'t IndexLimits) -> Self {
        let mut options = Options::default();
        // Our own count stops at MAX_DEPTH with the collection's position; granit's limits sit
        // above what its scanner can run ahead of the events (a simple key's lookahead).
        let backstop = MAX_DEPTH + options.simple_key_max_lookahead + 1;
        options.flow_nesting_limit = backstop;
        options.block_nesting_limit = backstop;
        options.set_emit_comments(false);
        Events {
            parser: Parser::new_from_str_with_options(text, options),
            limits,
            depth: 0,
            count: 0,
        }
    }

    /// The next event that means something to an index (no comments, no anchor names).
    fn next(&mut self) -> Result<(Event<'t>, Span), IndexError> {
        loop {
            self.count = self.count.wrapping_add(1);
            if self.count.is_multiple_of(4096)
                && self.limits.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Err(IndexError::Deadline);
            }
            let (event, span) = match self.parser.next_event() {
                Some(Ok(next)) => next,
                Some(Err(e)) => return Err(scan_error(&e)),
                None => {
                    return Err(IndexError::Syntax {
                        line: 0,
                        column: 0,
                        message: "the index ends early".to_owned(),
                    });
                }
            };
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(IndexError::TooDeep {
                            line: span.start.line(),
                            column: span.start.col() + 1,
                        });
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    self.depth = self.depth.saturating_sub(1);
                }
                Event::StreamEnd => {
                    return Err(IndexError::Syntax {
                        line: span.start.line(),
                        column: span.start.col() + 1,
                        message: "the index ends early".to_owned(),
                    });
                }
                Event::StreamStart
                | Event::DocumentStart(..)
                | Event::DocumentEnd
                | Event::Alias(_)
                | Event::Scalar(..) => {}
                // Comments, anchor names: not nodes.
                _ => continue,
            }
            return Ok((event, span));
        }
    }

    /// Consumes the rest of the node `first` started (nothing for a scalar or alias).
    fn skip(&mut self, first: &Event<'_>) -> Result<(), IndexError> {
        if !matches!(first, Event::MappingStart(..) | Event::SequenceStart(..)) {
            return Ok(());
        }
        let mut open = 1usize;
        while open > 0 {
            match self.next()?.0 {
                Event::MappingStart(..) | Event::SequenceStart(..) => open += 1,
                Event::MappingEnd | Event::SequenceEnd => open -= 1,
                _ => {}
            }
        }
        Ok(())
    }
}

fn not_an_index(at: Span, detail: &'static str) -> IndexError {
    IndexError::NotAnIndex {
        line: at.start.line(),
        column: at.start.col() + 1,
        detail,
    }
}

fn scan_error(e: &ScanError) -> IndexError {
    let (line, column) = (e.marker().line(), e.marker().col() + 1);
    if matches!(e.kind(), ErrorKind::RecursionLimitExceeded) {
        return IndexError::TooDeep { line, column };
    }
    let message = e.info();
    IndexError::Syntax {
        line,
        column,
        message: if message.is_empty() {
            "not valid YAML".to_owned()
        } else {
            message
        },
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::time::Instant;

    use super::*;

    #[test]
    fn plain_scalars_read_as_yaml_1_2_reads_them() {
        // (plain scalar, the text upkeep reads, reason). upkeep reads the YAML 1.2 core schema
        // (as serde_yaml 0.9 did, which these rows were checked against before it was dropped);
        // where Helm (sigs.k8s.io/yaml, go-yaml v2: YAML 1.1) reads a plain scalar otherwise,
        // the reason says so. `helm repo index` quotes versions, so the two meet only in
        // hand-written indexes.
        let cases = [
            ("1.2.3", Some("1.2.3"), "a version is a string"),
            (
                "1.10",
                Some("1.1"),
                "a float to YAML: 1.1 (Helm reads it so too)",
            ),
            (
                "1.0",
                Some("1"),
                "float 1, formatted as Rust formats 1.0_f64",
            ),
            ("2", Some("2"), "an integer"),
            (
                "007",
                Some("007"),
                "leading zeros: a string in YAML 1.2 (octal 7 in YAML 1.1)",
            ),
            ("-007", Some("-007"), "signed leading zeros too"),
            ("0", Some("0"), "a lone zero is a number"),
            ("0x1F", Some("31"), "hexadecimal"),
            ("-0x10", Some("-16"), "negative hexadecimal"),
            (
                "+0o17",
                Some("15"),
                "octal with a sign (YAML 1.1 has no 0o: a string there)",
            ),
            ("0b101", Some("5"), "binary"),
            ("0x", Some("0x"), "a prefix without digits is a string"),
            ("+-1", Some("+-1"), "two signs: a string"),
            ("-5", Some("-5"), "negative"),
            ("1e3", Some("1000"), "exponent"),
            (".5", Some("0.5"), "leading dot"),
            (".inf", Some("inf"), "YAML infinity"),
            ("-.Inf", Some("-inf"), "negative infinity"),
            (
                "inf",
                Some("inf"),
                "Rust's spelling of infinity is a string to YAML",
            ),
            ("nan", Some("nan"), "and so is Rust's NaN"),
            (
                "1_000",
                Some("1_000"),
                "underscores are a string in YAML 1.2 (1000 in YAML 1.1)",
            ),
            ("true", Some("true"), "a boolean"),
            ("False", Some("false"), "capitalised boolean"),
            (
                "yes",
                Some("yes"),
                "a string in YAML 1.2 (true in YAML 1.1)",
            ),
            ("on", Some("on"), "a string in YAML 1.2 (true in YAML 1.1)"),
            ("~", None, "null"),
            ("null", None, "null"),
            ("NULL", None, "null"),
            ("v1.0.0", Some("v1.0.0"), "a v-prefixed version"),
            (
                "1.0.0-rc.1+build.5",
                Some("1.0.0-rc.1+build.5"),
                "pre-release and build",
            ),
            (
                "18446744073709551615",
                Some("18446744073709551615"),
                "u64::MAX",
            ),
            (
                "-9223372036854775808",
                Some("-9223372036854775808"),
                "i64::MIN",
            ),
        ];
        for (scalar, want, why) in cases {
            assert_eq!(resolve_plain(scalar).as_deref(), want, "{scalar:?}: {why}");
        }
    }

    /// `entries.app` with `versions` entries, then `entries.other` holding `tail` as a value.
    fn index_with(versions: usize, tail: &str) -> String {
        let mut y = String::from("apiVersion: v1\nentries:\n  app:\n");
        for v in 0..versions {
            let _ = writeln!(y, "  - version: 1.0.{v}\n    urls: [a]");
        }
        let _ = writeln!(y, "  other:\n  - version: 9.9.9\n    x: {tail}");
        y
    }

    fn limits(max_versions: usize) -> IndexLimits {
        IndexLimits {
            max_versions,
            deadline: None,
        }
    }

    #[test]
    fn caps_hold_anywhere_in_the_index() {
        // Levels above `x`'s value: the root, `entries`, `other`'s list, the entry: 4.
        let inner = MAX_DEPTH - 4;
        let flow = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let column = "    x: ".len() + 1;
        // (index, max versions, expected, reason)
        let cases: Vec<(String, usize, Result<usize, IndexError>, &str)> = vec![
            (
                index_with(3, "1"),
                3,
                Ok(3),
                "exactly the version cap is read",
            ),
            (
                index_with(4, "1"),
                3,
                Err(IndexError::TooManyVersions { limit: 3 }),
                "one version over the cap",
            ),
            (
                index_with(3, "1").replace("  - version: 1.0.0\n", "  - name: app\n"),
                3,
                Ok(2),
                "entries without a version count against the cap but are not kept",
            ),
            (
                index_with(1, &flow(inner)),
                3,
                Ok(1),
                "exactly MAX_DEPTH, in another chart",
            ),
            (
                index_with(1, &flow(inner + 1)),
                3,
                Err(IndexError::TooDeep {
                    line: 8,
                    column: column + inner,
                }),
                "one level deeper, though the chart is not read: skipping is bounded too",
            ),
            (
                index_with(1, &flow(160_000)),
                3,
                Err(IndexError::TooDeep {
                    line: 8,
                    column: column + inner,
                }),
                "the reported 800 KB index nested 160k deep (six minutes before)",
            ),
            (
                index_with(
                    1,
                    &format!("{}1{}", "{a: ".repeat(inner + 1), "}".repeat(inner + 1)),
                ),
                3,
                Err(IndexError::TooDeep {
                    line: 8,
                    column: column + 4 * inner,
                }),
                "flow mappings count too",
            ),
        ];
        for (yaml, max, want, why) in cases {
            let got = parse_index_with(yaml.as_bytes(), "app", &limits(max))
                .map(|found| found.expect("app is in the index").len());
            assert_eq!(got, want, "{why}");
        }
    }

    #[test]
    fn block_nesting_is_capped_too() {
        let mut y = String::from("entries:\n  other:\n");
        for i in 0..MAX_DEPTH {
            let _ = writeln!(y, "{}k:", " ".repeat(4 + i));
        }
        let got = parse_index_with(y.as_bytes(), "app", &limits(10));
        assert_eq!(
            got,
            // Levels: the root, `entries`, then one per `k:` from line 3 (column 5) on; the
            // first past the limit is the `k:` at level MAX_DEPTH + 1.
            Err(IndexError::TooDeep {
                line: MAX_DEPTH + 1,
                column: MAX_DEPTH + 3,
            }),
            "the first mapping past the limit"
        );
    }

    #[test]
    fn a_parse_stops_at_its_deadline() {
        let big = index_with(20_000, "1");
        let passed = IndexLimits {
            max_versions: usize::MAX,
            deadline: Some(Instant::now()),
        };
        let got = parse_index_with(big.as_bytes(), "app", &passed).map(|f| f.map(|v| v.len()));
        assert_eq!(
            got,
            Err(IndexError::Deadline),
            "a deadline already passed stops the parse"
        );
        let none = IndexLimits {
            deadline: None,
            ..passed
        };
        assert_eq!(
            parse_index_with(big.as_bytes(), "app", &none).map(|f| f.map(|v| v.len())),
            Ok(Some(20_000)),
            "without a deadline the same index is read"
        );
    }

    #[test]
    fn malformed_indexes_are_located() {
        let cases: [(&[u8], IndexError, &str); 4] = [
            (
                b"entries:\n  app: \xff\n",
                IndexError::NotUtf8 { offset: 16 },
                "bytes that are not UTF-8",
            ),
            (
                b"- a\n- b\n",
                IndexError::NotAnIndex {
                    line: 1,
                    column: 1,
                    detail: "the top level is not a mapping (expected `apiVersion` and `entries`)",
                },
                "a list is not an index",
            ),
            (
                b"entries:\n  app:\n  - 1.0.0\n",
                IndexError::NotAnIndex {
                    line: 3,
                    column: 5,
                    detail: "a chart version is not a mapping (expected `version`)",
                },
                "versions are mappings",
            ),
            (
                b"",
                IndexError::Syntax {
                    line: 1,
                    column: 1,
                    message: "the index ends early".to_owned(),
                },
                "an empty file",
            ),
        ];
        for (bytes, want, why) in cases {
            assert_eq!(
                parse_index_with(bytes, "app", &limits(10)),
                Err(want),
                "{why}"
            );
        }
        let truncated = parse_index_with(b"entries:\n  app:\n  - version: [", "app", &limits(10));
        assert!(
            matches!(truncated, Err(IndexError::Syntax { line: 3, .. })),
            "a syntax error has a line: {truncated:?}"
        );
    }
}

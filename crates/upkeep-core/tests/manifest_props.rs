//! Property tests for [`apply`]: "never invalid, never other bytes".
//!
//! The generator writes valid YAML around markers from shapes whose fate is known: plain,
//! single- and double-quoted scalars (tagged, anchored, aliased), multi-line plain and quoted
//! scalars, explicit (`?`) keys, literal block scalars embedding YAML (with `|`, `|-`, `|+`,
//! an indentation indicator), folded blocks, flow mappings and sequences (one line and
//! several), block sequences, nested mappings, anchored mappings with and without aliases and
//! merge keys, comments, blank lines, marker text inside strings; several documents (`---`,
//! `...`), a BOM, CRLF line ends.
//!
//! For every text and every set of updates, [`apply`] must either refuse a field (a per-field
//! error on its line) or return text whose YAML is the original's except the intended
//! scalars. The oracle here is independent of upkeep's checks: it parses both texts with
//! granit-parser and compares the event streams itself (spans aside), requires every edited
//! scalar to be a value (not a key) that no alias repeats, holding exactly the intended value
//! in the same style (for a literal block: the block's text differs only there, and that text
//! parsed as YAML differs only in the intended scalar), and requires the bytes outside the
//! reported ranges to be identical. On top, the generator's expectations: a field built to be
//! safe is edited (or refused only because the version cannot be written in its style), a
//! field built to be unsafe is refused, and a `:name` field never changes.

#![allow(clippy::type_complexity)] // table rows and event lists, read where they are used

use std::collections::BTreeMap;

use granit_parser::{Event, Parser, ScalarStyle};
use proptest::prelude::*;
use upkeep_core::manifest::{ApplyError, Edited, MarkerError, MarkerForm, Update, apply};

const POLICIES: [&str; 3] = ["p0", "p1", "p2"];
/// The image name every update carries (what bare and `:name` markers write).
const IMAGE: &str = "ghcr.io/acme/app";
/// The digest every update carries (what `:digest` markers write, and bare ones append).
const DIGEST: &str = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be";
/// The digest `:digest` fields hold before.
const OLD_DIGEST: &str = "sha256:1234567890abcdef";
const VERSIONS: [&str; 8] = [
    "1.2.3",
    "v2.0.0",
    "10.0.1-rc.1",
    "1.10",
    "it's",
    "a\"b",
    "0.0.1",
    "1.2.3 # not a comment",
];

// ---------------------------------------------------------------------------------------------
// The generator.

/// How a field is marked.
#[derive(Debug, Clone, Copy)]
enum Mark {
    /// `$upkeep`: the whole scalar is the version.
    Upkeep,
    /// `$imagepolicy` with `:tag`.
    FluxTag,
    /// `$imagepolicy` without a suffix: the scalar is `image:tag`.
    FluxImage,
    /// `$imagepolicy` with `:name`: already holds the image name the updates carry.
    FluxName,
    /// `$imagepolicy` with `:digest`: holds an old digest; the updates carry a new one.
    FluxDigest,
}

/// What must happen to a marked field whose policy is updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Edited, or left alone because it already holds the version, or refused only because
    /// the version cannot be written in its quote style.
    Safe,
    /// Refused with an error on its line; never edited.
    Refused,
    /// Never edited (a `:name` field that already holds the image name).
    Untouched,
}

#[derive(Debug, Clone)]
struct Scalar {
    /// 0 plain, 1 single, 2 double.
    style: u8,
    version: String,
    mark: Mark,
    policy: usize,
    gap: String,
}

impl Scalar {
    fn value(&self) -> String {
        match self.mark {
            Mark::FluxImage => format!("{IMAGE}:{}", self.version),
            Mark::FluxName => IMAGE.to_owned(),
            Mark::FluxDigest => OLD_DIGEST.to_owned(),
            _ => self.version.clone(),
        }
    }

    fn text(&self) -> String {
        let v = self.value();
        match self.style {
            0 => v,
            1 => format!("'{v}'"),
            _ => format!("\"{v}\""),
        }
    }

    fn marker(&self) -> String {
        let p = POLICIES[self.policy];
        let gap = &self.gap;
        match self.mark {
            Mark::Upkeep => format!("{gap}# {{\"$upkeep\": \"ns:{p}\"}}"),
            Mark::FluxTag => format!("{gap}# {{\"$imagepolicy\": \"ns:{p}:tag\"}}"),
            Mark::FluxImage => format!("{gap}#{{ \"$imagepolicy\" : \"ns:{p}\" }}"),
            Mark::FluxName => format!("{gap}# {{\"$imagepolicy\": \"ns:{p}:name\"}}"),
            Mark::FluxDigest => format!("{gap}# {{\"$imagepolicy\": \"ns:{p}:digest\"}}"),
        }
    }

    fn expect(&self, safe: bool) -> Expect {
        match (self.mark, safe) {
            (Mark::FluxName, _) => Expect::Untouched,
            (_, true) => Expect::Safe,
            (_, false) => Expect::Refused,
        }
    }
}

#[derive(Debug, Clone)]
enum Shape {
    /// `key: [!!str] [&a] SCALAR # marker` (and `copy: *a` when aliased).
    Field {
        s: Scalar,
        tagged: bool,
        anchored: bool,
        aliased: bool,
    },
    /// A plain (0), single- (1) or double-quoted (2) scalar over two lines, marker on the last.
    MultiLine {
        s: Scalar,
    },
    /// `? key # marker` then `: value`.
    MarkedExplicitKey {
        s: Scalar,
    },
    /// `? key` then `: SCALAR # marker`.
    UnderExplicitKey {
        s: Scalar,
    },
    /// `key: |…` holding `inner: SCALAR # marker` lines (anchored inner fields are refused).
    Literal {
        header: u8,
        lines: Vec<(Scalar, bool)>,
    },
    /// `key: >` holding a marked line.
    Folded {
        s: Scalar,
    },
    /// `key: {v: SCALAR} # marker` or `key: [SCALAR] # marker`.
    Flow {
        s: Scalar,
        seq: bool,
    },
    /// `key: [a, SCALAR] # marker`.
    FlowAmbiguous {
        s: Scalar,
    },
    /// A flow mapping over two lines, the marker on the second.
    FlowMultiLine {
        s: Scalar,
    },
    /// `key:` then `- SCALAR # marker` items.
    Items {
        items: Vec<Scalar>,
        indent: usize,
    },
    /// `key: &d` with a marked field inside, and `use: *d` / `<<: *d` when aliased.
    AnchoredMap {
        s: Scalar,
        aliased: bool,
        merge: bool,
    },
    /// `key:` then nested shapes.
    Nested {
        indent: usize,
        inner: Vec<Shape>,
    },
    /// Lines without markers.
    Comment,
    Blank,
    Unmarked {
        text: String,
    },
    /// A marker's text inside a quoted string: not a marker.
    MarkerInString,
}

/// A rendered text and its marked lines (1-based) with their policy and fate.
#[derive(Debug, Default)]
struct Doc {
    lines: Vec<String>,
    marked: Vec<(usize, usize, Expect)>,
    keys: usize,
}

impl Doc {
    fn key(&mut self) -> String {
        self.keys += 1;
        format!("k{}", self.keys)
    }

    fn push(&mut self, indent: usize, line: &str) {
        self.lines.push(format!("{}{line}", " ".repeat(indent)));
    }

    fn mark(&mut self, s: &Scalar, safe: bool) {
        self.marked
            .push((self.lines.len(), s.policy, s.expect(safe)));
    }

    fn render(&mut self, shape: &Shape, at: usize) {
        match shape {
            Shape::Field {
                s,
                tagged,
                anchored,
                aliased,
            } => {
                let key = self.key();
                let tag = if *tagged { "!!str " } else { "" };
                let anchor = if *anchored {
                    format!("&{key}a ")
                } else {
                    String::new()
                };
                self.push(
                    at,
                    &format!("{key}: {anchor}{tag}{}{}", s.text(), s.marker()),
                );
                self.mark(s, !anchored);
                if *anchored && *aliased {
                    self.push(at, &format!("copy{key}: *{key}a"));
                }
            }
            Shape::MultiLine { s } => {
                let key = self.key();
                let v = s.value();
                let (open, close) = match s.style {
                    0 => ("", ""),
                    1 => ("'", "'"),
                    _ => ("\"", "\""),
                };
                self.push(at, &format!("{key}: {open}first"));
                self.push(at + 2, &format!("{v}{close}{}", s.marker()));
                self.mark(s, false);
            }
            Shape::MarkedExplicitKey { s } => {
                self.push(at, &format!("? {}{}", s.text(), s.marker()));
                self.mark(s, false);
                let key = self.key();
                self.push(at, &format!(": {key}"));
            }
            Shape::UnderExplicitKey { s } => {
                let key = self.key();
                self.push(at, &format!("? {key}"));
                self.push(at, &format!(": {}{}", s.text(), s.marker()));
                self.mark(s, false);
            }
            Shape::Literal { header, lines } => {
                let key = self.key();
                let head = ["|", "|-", "|+", "|2", "|-2"][usize::from(*header) % 5];
                // With an indentation indicator, the block is indented 2 more than `at`.
                self.push(at, &format!("{key}: {head}"));
                for (i, (s, anchored)) in lines.iter().enumerate() {
                    let anchor = if *anchored { "&in " } else { "" };
                    self.push(
                        at + 2,
                        &format!("inner{i}: {anchor}{}{}", s.text(), s.marker()),
                    );
                    self.mark(s, !anchored);
                    if *anchored {
                        self.push(at + 2, &format!("copy{i}: *in"));
                    }
                }
            }
            Shape::Folded { s } => {
                let key = self.key();
                self.push(at, &format!("{key}: >"));
                self.push(at + 2, &format!("inner: {}{}", s.text(), s.marker()));
                self.mark(s, false);
            }
            Shape::Flow { s, seq } => {
                let key = self.key();
                let flow = if *seq {
                    format!("[ {} ]", s.text())
                } else {
                    format!("{{v: {}}}", s.text())
                };
                self.push(at, &format!("{key}: {flow}{}", s.marker()));
                self.mark(s, true);
            }
            Shape::FlowAmbiguous { s } => {
                let key = self.key();
                self.push(at, &format!("{key}: [a, {}]{}", s.text(), s.marker()));
                self.mark(s, false);
            }
            Shape::FlowMultiLine { s } => {
                let key = self.key();
                self.push(at, &format!("{key}: {{a: 1,"));
                self.push(at + 2, &format!("b: {}}}{}", s.text(), s.marker()));
                self.mark(s, false);
            }
            Shape::Items { items, indent } => {
                let key = self.key();
                self.push(at, &format!("{key}:"));
                for s in items {
                    self.push(at + indent, &format!("- {}{}", s.text(), s.marker()));
                    self.mark(s, true);
                }
            }
            Shape::AnchoredMap { s, aliased, merge } => {
                let key = self.key();
                self.push(at, &format!("{key}: &{key}d"));
                self.push(at + 2, &format!("tag: {}{}", s.text(), s.marker()));
                self.mark(s, !aliased);
                if *aliased {
                    if *merge {
                        self.push(at, &format!("use{key}:"));
                        self.push(at + 2, &format!("<<: *{key}d"));
                    } else {
                        self.push(at, &format!("use{key}: *{key}d"));
                    }
                }
            }
            Shape::Nested { indent, inner } => {
                let key = self.key();
                self.push(at, &format!("{key}:"));
                if inner.is_empty() {
                    self.push(at + indent, "x: 1");
                }
                for s in inner {
                    self.render(s, at + indent);
                }
            }
            Shape::Comment => self.push(at, "# a comment: with {\"json\": 1}"),
            Shape::Blank => self.lines.push(String::new()),
            Shape::Unmarked { text } => {
                let key = self.key();
                self.push(at, &format!("{key}: {text}"));
            }
            Shape::MarkerInString => {
                let key = self.key();
                self.push(at, &format!("{key}: 'a # {{\"$upkeep\": \"ns:p0\"}}'"));
            }
        }
    }
}

fn scalar() -> impl Strategy<Value = Scalar> {
    (
        0..3u8,
        "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}",
        prop_oneof![
            4 => Just(Mark::Upkeep),
            2 => Just(Mark::FluxTag),
            2 => Just(Mark::FluxImage),
            1 => Just(Mark::FluxName),
            1 => Just(Mark::FluxDigest),
        ],
        0..POLICIES.len(),
        prop_oneof![Just(" "), Just("  "), Just("\t ")],
    )
        .prop_map(|(style, version, mark, policy, gap)| Scalar {
            style,
            version,
            mark,
            policy,
            gap: gap.to_owned(),
        })
}

fn leaf() -> impl Strategy<Value = Shape> {
    prop_oneof![
        6 => (scalar(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(s, tagged, anchored, aliased)| Shape::Field { s, tagged, anchored, aliased }
        ),
        2 => scalar().prop_map(|s| Shape::MultiLine { s }),
        1 => scalar().prop_map(|s| Shape::MarkedExplicitKey { s }),
        1 => scalar().prop_map(|s| Shape::UnderExplicitKey { s }),
        2 => (0..5u8, prop::collection::vec((scalar(), prop::bool::weighted(0.2)), 1..3))
            .prop_map(|(header, lines)| Shape::Literal { header, lines }),
        1 => scalar().prop_map(|s| Shape::Folded { s }),
        2 => (scalar(), any::<bool>()).prop_map(|(s, seq)| Shape::Flow { s, seq }),
        1 => scalar().prop_map(|s| Shape::FlowAmbiguous { s }),
        1 => scalar().prop_map(|s| Shape::FlowMultiLine { s }),
        2 => (prop::collection::vec(scalar(), 1..3), 0..3usize)
            .prop_map(|(items, indent)| Shape::Items { items, indent }),
        1 => (scalar(), any::<bool>(), any::<bool>())
            .prop_map(|(s, aliased, merge)| Shape::AnchoredMap { s, aliased, merge }),
        1 => Just(Shape::Comment),
        1 => Just(Shape::Blank),
        1 => Just(Shape::MarkerInString),
        2 => prop_oneof![
            Just("plain words"),
            Just("'quoted # not a comment'"),
            Just("\"esc\\\"aped\" # trailing comment"),
            Just("[a, {b: c}]"),
            Just("1.2.3 # pinned by hand"),
        ]
        .prop_map(|t| Shape::Unmarked { text: t.to_owned() }),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    leaf().prop_recursive(2, 24, 6, |inner| {
        (2..5usize, prop::collection::vec(inner, 0..6))
            .prop_map(|(indent, inner)| Shape::Nested { indent, inner })
    })
}

/// A whole file: documents of shapes, joined and dressed (BOM, CRLF, final line break).
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent random switches of one generated file
struct File {
    docs: Vec<Vec<Shape>>,
    explicit_start: bool,
    end_markers: bool,
    bom: bool,
    crlf: bool,
    final_break: bool,
}

fn file() -> impl Strategy<Value = File> {
    (
        prop::collection::vec(prop::collection::vec(shape(), 1..8), 1..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(docs, explicit_start, end_markers, bom, crlf, final_break)| File {
                docs,
                explicit_start,
                end_markers,
                bom,
                crlf,
                final_break,
            },
        )
}

/// The text, and its marked lines by line number: (policy, expectation).
fn render(f: &File) -> (String, BTreeMap<usize, (usize, Expect)>) {
    let mut doc = Doc::default();
    for (i, shapes) in f.docs.iter().enumerate() {
        if i > 0 || f.explicit_start {
            doc.lines.push("---".to_owned());
        }
        for s in shapes {
            doc.render(s, 0);
        }
        if f.end_markers {
            doc.lines.push("...".to_owned());
        }
    }
    let eol = if f.crlf { "\r\n" } else { "\n" };
    let mut text = String::new();
    if f.bom {
        text.push('\u{feff}');
    }
    text.push_str(&doc.lines.join(eol));
    if f.final_break {
        text.push_str(eol);
    }
    let marked = doc
        .marked
        .iter()
        .map(|&(line, policy, expect)| (line, (policy, expect)))
        .collect();
    (text, marked)
}

// ---------------------------------------------------------------------------------------------
// The oracle.

/// A parsed event with the facts the oracle needs.
#[derive(Debug)]
struct Ev<'t> {
    event: Event<'t>,
    span: std::ops::Range<usize>,
    /// A mapping key (at any depth: part of a key counts).
    in_key: bool,
    /// Anchors of this node and every enclosing collection.
    anchors: Vec<usize>,
    doc: usize,
}

fn events(text: &str) -> Result<(Vec<Ev<'_>>, Vec<(usize, usize)>), String> {
    let mut options = granit_parser::options! { emit_anchor_events: true };
    options.set_emit_comments(false);
    let mut out: Vec<Ev<'_>> = Vec::new();
    let mut aliases = Vec::new();
    // (is a mapping, children seen, in a key, anchor)
    let mut stack: Vec<(bool, usize, bool, usize)> = Vec::new();
    let mut doc = 0;
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.map_err(|e| e.to_string())?;
        let span = span.byte_range().ok_or("no byte range")?;
        let mut ev = Ev {
            event,
            span,
            in_key: false,
            anchors: Vec::new(),
            doc,
        };
        let is_node = matches!(
            ev.event,
            Event::Scalar(..)
                | Event::Alias(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        );
        if is_node {
            if let Some((map, seen, in_key, _)) = stack.last_mut() {
                ev.in_key = *in_key || (*map && *seen % 2 == 0);
                *seen += 1;
            }
            ev.anchors = stack.iter().map(|f| f.3).filter(|&a| a != 0).collect();
        }
        match &ev.event {
            Event::Scalar(_, _, a, _) if *a != 0 => ev.anchors.push(*a),
            Event::Alias(id) => aliases.push((doc, *id)),
            Event::MappingStart(_, a, _) | Event::SequenceStart(_, a, _) => {
                stack.push((
                    matches!(ev.event, Event::MappingStart(..)),
                    0,
                    ev.in_key,
                    *a,
                ));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::DocumentEnd => doc += 1,
            _ => {}
        }
        out.push(ev);
    }
    Ok((out, aliases))
}

/// The whole scalar a field of `form` must hold under `u`.
fn intended(form: MarkerForm, u: &Update<'_>) -> String {
    match form {
        MarkerForm::Version | MarkerForm::Tag | MarkerForm::Cluster => u.version.to_owned(),
        MarkerForm::Reference => match u.digest {
            Some(d) => format!("{}:{}@{d}", u.image.unwrap_or_default(), u.version),
            None => format!("{}:{}", u.image.unwrap_or_default(), u.version),
        },
        MarkerForm::Name => u.image.unwrap_or_default().to_owned(),
        MarkerForm::Digest => u.digest.unwrap_or_default().to_owned(),
    }
}

/// The heart of it: outside the reported ranges, input and output are the same bytes.
fn check_outside_ranges(text: &str, edited: &Edited<'_>) -> Result<(), TestCaseError> {
    let out: &str = &edited.text;
    let (mut a, mut b) = (0, 0);
    for c in &edited.changes {
        prop_assert!(
            c.original_range.start >= a && c.range.start >= b,
            "ranges in order"
        );
        prop_assert_eq!(
            &text[a..c.original_range.start],
            &out[b..c.range.start],
            "bytes between changes"
        );
        a = c.original_range.end;
        b = c.range.end;
    }
    prop_assert_eq!(&text[a..], &out[b..], "bytes after the last change");
    if edited.changes.is_empty() {
        prop_assert_eq!(text, out);
    }
    Ok(())
}

/// One change as the oracle sees it: the old and new bytes (inside any quotes) and the value.
struct Expected<'a> {
    old: std::ops::Range<usize>,
    new: std::ops::Range<usize>,
    value: &'a str,
}

/// The start of 1-based line `line`.
fn line_start(text: &str, line: usize) -> usize {
    text.split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum()
}

/// Change `c` as a change of block text line `o` into `n`: both outer lines end with the block
/// lines, and the block line is `o` with the old bytes replaced at the same column. Returns the
/// column in the block line and the new bytes' length.
fn block_edit(
    old_text: &str,
    new_text: &str,
    c: &Expected<'_>,
    o: &str,
    n: &str,
) -> Option<(usize, usize)> {
    let line = old_text[..c.old.start].matches('\n').count() + 1;
    let (os, ns) = (line_start(old_text, line), line_start(new_text, line));
    let outer_old = old_text[os..].split('\n').next()?.trim_end_matches('\r');
    let outer_new = new_text[ns..].split('\n').next()?.trim_end_matches('\r');
    if !outer_old.ends_with(o) || !outer_new.ends_with(n) {
        return None;
    }
    let indent = outer_old.len() - o.len();
    let at = c.old.start.checked_sub(os + indent)?;
    let new_bytes = &new_text[c.new.clone()];
    let rebuilt = format!("{}{new_bytes}{}", o.get(..at)?, o.get(at + c.old.len()..)?);
    (rebuilt == n && c.new.start - ns == c.old.start - os).then_some((at, new_bytes.len()))
}

/// `new` is `old` except the scalars holding `changes`, which hold their values in the same
/// style; no edited scalar is a key or repeated by an alias.
fn same_yaml_except(
    old_text: &str,
    new_text: &str,
    changes: &[Expected<'_>],
) -> Result<(), TestCaseError> {
    let (old, aliases) = events(old_text).map_err(|e| {
        TestCaseError::fail(format!("the original was edited but does not parse: {e}"))
    })?;
    let (new, _) = events(new_text).map_err(|e| {
        TestCaseError::fail(format!("the edited text does not parse: {e}\n{new_text}"))
    })?;
    prop_assert_eq!(old.len(), new.len(), "event count");
    // Which old scalar each change falls in.
    let mut edited: BTreeMap<usize, Vec<&Expected<'_>>> = BTreeMap::new();
    for c in changes {
        let i = old
            .iter()
            .position(|e| {
                matches!(e.event, Event::Scalar(..))
                    && e.span.start <= c.old.start
                    && c.old.end <= e.span.end
            })
            .ok_or_else(|| TestCaseError::fail("a change outside every scalar"))?;
        edited.entry(i).or_default().push(c);
    }
    for (i, (a, b)) in old.iter().zip(&new).enumerate() {
        let Some(cs) = edited.get(&i) else {
            prop_assert_eq!(&a.event, &b.event, "event {} changed", i);
            continue;
        };
        let (Event::Scalar(ov, os, oa, ot), Event::Scalar(nv, ns, na, nt)) = (&a.event, &b.event)
        else {
            return Err(TestCaseError::fail("an edited node is not a scalar"));
        };
        prop_assert_eq!((os, oa, ot), (ns, na, nt), "style, anchor and tag kept");
        prop_assert!(!a.in_key, "an edited scalar is (part of) a key");
        prop_assert!(
            a.anchors.iter().all(|id| !aliases.contains(&(a.doc, *id))) && *oa == 0,
            "an edited scalar is anchored or repeated by an alias"
        );
        match os {
            ScalarStyle::Literal => {
                // The block's text changes only on the edited lines, exactly at the edits; and
                // that text is the same YAML except the intended scalars.
                let (ol, nl): (Vec<&str>, Vec<&str>) =
                    (ov.split('\n').collect(), nv.split('\n').collect());
                prop_assert_eq!(ol.len(), nl.len(), "block line count");
                let mut inner = Vec::new();
                let mut used = vec![false; cs.len()];
                let mut offset = 0;
                for (o, n) in ol.iter().zip(&nl) {
                    if o != n {
                        let k = cs
                            .iter()
                            .enumerate()
                            .position(|(k, c)| {
                                !used[k] && block_edit(old_text, new_text, c, o, n).is_some()
                            })
                            .ok_or_else(|| {
                                TestCaseError::fail(format!(
                                    "block line changed unasked: {o:?} -> {n:?}"
                                ))
                            })?;
                        used[k] = true;
                        let (at, new_len) =
                            block_edit(old_text, new_text, cs[k], o, n).expect("matched");
                        let old_len = cs[k].old.len();
                        inner.push(Expected {
                            old: offset + at..offset + at + old_len,
                            new: offset + at..offset + at + new_len,
                            value: cs[k].value,
                        });
                    }
                    offset += o.len() + 1;
                }
                prop_assert!(used.iter().all(|&u| u), "an edit not in the block text");
                // New offsets shift by the length changes before them.
                let mut shift: isize = 0;
                for e in &mut inner {
                    let grown = e.new.len().cast_signed() - e.old.len().cast_signed();
                    e.new = (e.new.start.cast_signed() + shift).cast_unsigned()
                        ..(e.new.end.cast_signed() + shift).cast_unsigned();
                    shift += grown;
                }
                same_yaml_except(ov, nv, &inner)?;
            }
            ScalarStyle::Folded => return Err(TestCaseError::fail("a folded block was edited")),
            _ => {
                prop_assert_eq!(cs.len(), 1);
                prop_assert_eq!(&**nv, cs[0].value, "the edited scalar reads as intended");
                prop_assert!(
                    b.span.start <= cs[0].new.start && cs[0].new.end <= b.span.end,
                    "the new bytes are the edited scalar"
                );
            }
        }
    }
    Ok(())
}

/// Every invariant of one `apply` call.
fn check(
    text: &str,
    updates: &[Update<'_>],
    marked: Option<&BTreeMap<usize, (usize, Expect)>>,
) -> Result<(), TestCaseError> {
    let edited = match apply(text, updates) {
        Ok(e) => e,
        Err(e @ ApplyError::Verification { .. }) => {
            return Err(TestCaseError::fail(format!("whole-file failure: {e}")));
        }
    };
    check_outside_ranges(text, &edited)?;
    let marker_lines: Vec<usize> = text
        .split('\n')
        .enumerate()
        .filter(|(_, l)| l.contains("$upkeep") || l.contains("$imagepolicy"))
        .map(|(i, _)| i + 1)
        .collect();
    for e in &edited.refused {
        prop_assert!(
            marker_lines.contains(&e.line()),
            "refusal off a marker line: {e}"
        );
        prop_assert!(e.hint().is_some(), "refusal without a hint: {e}");
    }
    let mut changes = Vec::new();
    let mut values = Vec::new();
    for c in &edited.changes {
        prop_assert!(
            marker_lines.contains(&c.line),
            "change off a marker line: {c:?}"
        );
        let u = updates
            .iter()
            .rev()
            .find(|u| u.namespace == c.namespace && u.policy == c.policy)
            .ok_or_else(|| TestCaseError::fail("a change no update asked for"))?;
        prop_assert_eq!(
            c.new.clone(),
            intended(c.form, u),
            "the last update for a policy wins, written as the marker's form says"
        );
        values.push(c);
    }
    let owned: Vec<String> = values.iter().map(|c| c.new.clone()).collect();
    for (c, value) in values.iter().zip(&owned) {
        changes.push(Expected {
            old: c.original_range.clone(),
            new: c.range.clone(),
            value,
        });
    }
    if !changes.is_empty() {
        same_yaml_except(text, &edited.text, &changes)?;
    }
    if let Some(marked) = marked {
        for (&line, &(policy, expect)) in marked {
            let Some(u) = updates.iter().rev().find(|u| u.policy == POLICIES[policy]) else {
                prop_assert!(
                    !edited.changes.iter().any(|c| c.line == line),
                    "line {line} changed without an update"
                );
                continue;
            };
            let changed = edited.changes.iter().any(|c| c.line == line);
            let refusals: Vec<&str> = edited
                .refused
                .iter()
                .filter(|e| e.line() == line)
                .map(MarkerError::kind)
                .collect();
            match expect {
                Expect::Untouched => prop_assert!(!changed, "line {line}: a :name field changed"),
                Expect::Refused => {
                    prop_assert!(!changed, "line {line}: an unsafe field was edited\n{text}");
                    prop_assert!(
                        !refusals.is_empty(),
                        "line {line}: an unsafe field was not refused\n{text}"
                    );
                }
                Expect::Safe => {
                    let noop = !changed && refusals.is_empty() && {
                        let src = text.split('\n').nth(line - 1).unwrap_or_default();
                        src.contains(u.version)
                    };
                    // Held with another field of its policy that could not be written.
                    let held_with = edited.refused.iter().any(|e| match e {
                        MarkerError::HeldTogether { line: l, by } => {
                            *l == line
                                && edited.refused.iter().any(|x| {
                                    x.line() == *by
                                        && !matches!(x, MarkerError::HeldTogether { .. })
                                })
                        }
                        _ => false,
                    });
                    prop_assert!(
                        changed
                            || noop
                            || refusals == ["Unrepresentable"]
                            || (refusals == ["HeldTogether"] && held_with),
                        "line {line}: a safe field was neither edited nor refused for its \
                         version ({refusals:?})\n{text}"
                    );
                }
            }
        }
    }
    Ok(())
}

fn updates() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0..POLICIES.len(), 0..VERSIONS.len()), 0..4)
}

fn to_updates(ups: &[(usize, usize)]) -> Vec<Update<'static>> {
    ups.iter()
        .map(|&(p, v)| Update {
            image: Some(IMAGE),
            digest: Some(DIGEST),
            ..Update::version("ns", POLICIES[p], VERSIONS[v])
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Generated YAML around markers: refuse per field, or the same YAML but the intended
    /// scalars, and the same bytes outside the reported ranges.
    #[test]
    fn edits_are_the_intended_change_or_refused(f in file(), ups in updates()) {
        let (text, marked) = render(&f);
        prop_assert!(events(&text).is_ok(), "generator bug: not YAML\n{text}");
        check(&text, &to_updates(&ups), Some(&marked))?;
    }

    /// Arbitrary text made of YAML's special characters and marker fragments never panics,
    /// and whatever is changed is the intended change only.
    #[test]
    fn arbitrary_text_never_breaks_the_invariant(
        pieces in prop::collection::vec(prop_oneof![
            Just("# {\"$upkeep\": \"ns:p0\"}"),
            Just("# {\"$imagepolicy\": \"ns:p1\"}"),
            Just("\n"), Just("\r\n"), Just("\r"), Just(" "), Just("  "), Just("\t"), Just(": "),
            Just("- "), Just("? "), Just("'"), Just("\""), Just("\\"), Just("{"), Just("}"),
            Just("["), Just("]"), Just(","), Just("#"), Just("&a "), Just("*a"), Just("!!str "),
            Just("|"), Just("|-\n  "), Just(">"), Just("---"), Just("..."), Just("\u{feff}"),
            Just("é"), Just("${X}"), Just("1.2.3"), Just("v"), Just("image:1.0@sha256:ab"),
            Just("key"),
        ], 0..40),
        v in 0..VERSIONS.len(),
    ) {
        let text: String = pieces.concat();
        let ups = [
            Update { image: Some(IMAGE), digest: Some(DIGEST), ..Update::version("ns", "p0", VERSIONS[v]) },
            Update { image: Some(IMAGE), ..Update::version("ns", "p1", "9.9.9") },
        ];
        check(&text, &ups, None)?;
    }
}

/// The oracle catches what it must: a hand-made "edit" that breaks each rule fails it.
#[test]
fn the_oracle_fails_bad_edits() {
    let old = "a: &x 1.0.0\nb: *x\nc: \"1.0.0\"\nd: 1.0.0\n";
    let cases: &[(
        &str,
        std::ops::Range<usize>,
        std::ops::Range<usize>,
        &str,
        &str,
    )] = &[
        (
            "a: &x 2.0.0\nb: *x\nc: \"1.0.0\"\nd: 1.0.0\n",
            6..11,
            6..11,
            "2.0.0",
            "an anchored scalar that an alias repeats",
        ),
        (
            "a: &x 1.0.0\nb: *x\nc: '2.0.0'\nd: 1.0.0\n",
            22..27,
            22..27,
            "2.0.0",
            "the quote style changed",
        ),
        (
            "a: &x 1.0.0\nb: *x\nc: \"1.0.0\"\nd: 2.0.0 x\n",
            32..37,
            32..39,
            "2.0.0",
            "the value is not the intended one",
        ),
        (
            "a: &x 1.0.0\nb: *x\nc: \"1.0.0\"\nd: 2.0.0\ne: 1\n",
            32..37,
            32..37,
            "2.0.0",
            "another node appeared",
        ),
        (
            "a: &x 1.0.0\nb: *x\nc: \"1.0.0\nd: 2.0.0\n",
            32..37,
            31..36,
            "2.0.0",
            "the edit broke the YAML",
        ),
    ];
    for (new, old_range, new_range, value, reason) in cases {
        let got = same_yaml_except(
            old,
            new,
            &[Expected {
                old: old_range.clone(),
                new: new_range.clone(),
                value,
            }],
        );
        assert!(got.is_err(), "{reason}: the oracle passed it");
    }
    let good = "a: &x 1.0.0\nb: *x\nc: \"1.0.0\"\nd: 2.0.0\n";
    same_yaml_except(
        old,
        good,
        &[Expected {
            old: 32..37,
            new: 32..37,
            value: "2.0.0",
        }],
    )
    .expect("a correct edit passes");
}

//! Checking marked scalars, and edits of them, against a real YAML parse.
//!
//! The line reader ([`super::line`]) finds a marker's bytes quickly, but a line is not a YAML
//! node: a quoted or plain scalar may continue on the next line, a `?` makes the next node a
//! key, an anchor makes other nodes repeat the value. So every marker is checked against the
//! event stream of `granit-parser` (spans in bytes, scalar styles, anchors), and every edit is
//! verified by parsing the new text and comparing it with the old one event by event:
//!
//! - **Before**: the marker's bytes (with their quotes) must be exactly one scalar event's span,
//!   on one line, with the style and the value the line reader read, and a mapping value, a
//!   sequence item or a document's root; not a key, not under an explicit (`?`) or complex key,
//!   not anchored, not inside an anchored collection that an alias repeats. A marker on a line
//!   inside a literal block scalar (`|`, kustomize's `patch: |-`) is checked the same way in the
//!   block's text, parsed as the YAML it embeds.
//! - **After**: the new text parses; its events equal the old ones (spans aside) except the
//!   edited scalars, which hold exactly the intended value in the same style at exactly the new
//!   bytes. An edited block scalar's text must equal the old text with the same bytes replaced,
//!   and is verified the same way, recursively.
//!
//! Anything else is refused per field ([`Refusal`]); nothing here guesses.
//!
//! Parsing is linear in the input: collection nesting is limited to [`MAX_DEPTH`] levels (the
//! parser's own flow and block limits, and the combined depth counted here), so a hostile
//! document is a clear error before any deep recursion or quadratic work. Comments are not
//! captured (they are presentation, and the bytes outside the edits are copied unchanged by
//! construction), which keeps a parse at about half the cost.

use std::ops::Range;

use granit_parser::{ErrorKind, Event, Parser, ScalarStyle, ScanError};

use super::Quote;

/// Deepest collection nesting accepted in a manifest (and in YAML embedded in one).
pub const MAX_DEPTH: usize = 1000;

/// How many literal block scalars deep a marker may sit (YAML in YAML in YAML …).
const MAX_EMBEDDING: usize = 4;

const NO_PARENT: u32 = u32::MAX;

/// Where a node sits in its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A document's root node.
    Root,
    /// A sequence item.
    Item,
    /// A mapping key.
    Key,
    /// A mapping value; the key's event index.
    Value(u32),
}

/// One parser event with where it is.
#[derive(Debug)]
struct Node<'t> {
    event: Event<'t>,
    range: Range<usize>,
    /// 1-based line and 0-based column (in characters) of the span's start.
    line: usize,
    col: usize,
    /// Index of the enclosing collection's start event.
    parent: u32,
    slot: Slot,
    /// Where the node's properties (`&anchor`, `!tag`) start, or `range.start`.
    props_start: usize,
    /// 0-based document index (anchor ids are looked up per document).
    doc: u32,
}

/// A parsed YAML text.
#[derive(Debug)]
pub(super) struct Parsed<'t> {
    text: &'t str,
    nodes: Vec<Node<'t>>,
    /// Event indexes of the scalars, by span start.
    scalars: Vec<u32>,
    /// (document, anchor id) of every alias.
    aliased: Vec<(u32, usize)>,
    /// Per event: for collection starts, why nothing inside may be edited.
    blocked: Vec<Blocked>,
}

/// Why a text does not parse. Lines are 1-based, in the outermost text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParseError {
    Invalid { at: usize, reason: String },
    TooDeep { at: usize },
}

/// Why a marker cannot be edited. Lines are 1-based, in the outermost text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    Parse(ParseError),
    MultiLine {
        first: usize,
        last: usize,
    },
    /// A folded block scalar, or YAML embedded too deep.
    Block,
    ExplicitKey,
    NotAValue,
    Anchored(String),
    /// The line reader and the parser disagree about the marked bytes.
    Misread,
}

impl Refusal {
    fn shift(self, lines: usize) -> Self {
        match self {
            Refusal::Parse(ParseError::Invalid { at, reason }) => {
                Refusal::Parse(ParseError::Invalid {
                    at: at + lines,
                    reason,
                })
            }
            Refusal::Parse(ParseError::TooDeep { at }) => {
                Refusal::Parse(ParseError::TooDeep { at: at + lines })
            }
            Refusal::MultiLine { first, last } => Refusal::MultiLine {
                first: first + lines,
                last: last + lines,
            },
            other => other,
        }
    }
}

/// A marked scalar as the line reader saw it, in the coordinates of the text being checked.
#[derive(Debug, Clone)]
pub(super) struct Candidate<'a> {
    /// The scalar's bytes, with its quotes.
    pub(super) outer: Range<usize>,
    /// The `#` that starts the marker comment.
    pub(super) comment_at: usize,
    pub(super) quote: Quote,
    pub(super) value: &'a str,
}

/// One edit to verify: old bytes (with quotes), the new bytes' place in the new text, and the
/// value the new bytes must read as.
#[derive(Debug, Clone)]
pub(super) struct Edit {
    pub(super) old: Range<usize>,
    pub(super) new: Range<usize>,
    pub(super) value: String,
}

fn parse_error(e: &ScanError) -> ParseError {
    let at = e.marker().line();
    match e.kind() {
        ErrorKind::RecursionLimitExceeded => ParseError::TooDeep { at },
        _ => ParseError::Invalid {
            at,
            reason: e.info(),
        },
    }
}

/// Parses `text` into its events, with positions, parents and slots.
pub(super) fn parse(text: &str) -> Result<Parsed<'_>, ParseError> {
    let mut options = granit_parser::options! {
        emit_anchor_events: true,
        flow_nesting_limit: MAX_DEPTH,
        block_nesting_limit: MAX_DEPTH,
    };
    options.set_emit_comments(false);
    let mut nodes: Vec<Node<'_>> = Vec::with_capacity(text.len() / 8);
    let mut scalars = Vec::new();
    let mut aliased = Vec::new();
    // (start event index, is a mapping, children seen, last key index)
    let mut stack: Vec<(u32, bool, usize, u32)> = Vec::new();
    let mut doc = 0u32;
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.map_err(|e| parse_error(&e))?;
        let Some(range) = span.byte_range() else {
            return Err(ParseError::Invalid {
                at: span.start.line(),
                reason: "no byte position".into(),
            });
        };
        let index = u32::try_from(nodes.len()).map_err(|_| ParseError::Invalid {
            at: span.start.line(),
            reason: "too many YAML events".into(),
        })?;
        let mut node = Node {
            event,
            range,
            line: span.start.line(),
            col: span.start.col(),
            parent: NO_PARENT,
            slot: Slot::Root,
            props_start: 0,
            doc,
        };
        node.props_start = node.range.start;
        if let Some(tag) = span.tag_start().and_then(|m| m.byte_offset()) {
            node.props_start = node.props_start.min(tag);
        }
        match &node.event {
            Event::DocumentEnd => {
                doc += 1;
                stack.clear();
            }
            Event::Anchor(..) => {
                // Follows its node directly: the `&name` token is where the node starts.
                let start = node.range.start;
                if let Some(owner) = nodes.last_mut() {
                    owner.props_start = owner.props_start.min(start);
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Scalar(..)
            | Event::Alias(..)
            | Event::UnresolvedAlias(..)
            | Event::MappingStart(..)
            | Event::SequenceStart(..) => {
                if let Some((start, map, seen, last_key)) = stack.last_mut() {
                    node.parent = *start;
                    node.slot = if !*map {
                        Slot::Item
                    } else if *seen % 2 == 0 {
                        *last_key = index;
                        Slot::Key
                    } else {
                        Slot::Value(*last_key)
                    };
                    *seen += 1;
                }
                match &node.event {
                    Event::Scalar(..) => scalars.push(index),
                    Event::Alias(id) => aliased.push((doc, *id)),
                    Event::MappingStart(..) | Event::SequenceStart(..) => {
                        stack.push((
                            index,
                            matches!(node.event, Event::MappingStart(..)),
                            0,
                            NO_PARENT,
                        ));
                        if stack.len() > MAX_DEPTH {
                            return Err(ParseError::TooDeep { at: node.line });
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        nodes.push(node);
    }
    scalars.sort_by_key(|&i| nodes[i as usize].range.start);
    aliased.sort_unstable();
    let mut parsed = Parsed {
        text,
        nodes,
        scalars,
        aliased,
        blocked: Vec::new(),
    };
    parsed.block_collections();
    Ok(parsed)
}

impl<'t> Parsed<'t> {
    fn node(&self, i: u32) -> &Node<'t> {
        &self.nodes[i as usize]
    }

    /// The scalar whose span overlaps `range` (the one containing its start, else the first
    /// one starting inside it).
    fn scalar_at(&self, range: &Range<usize>) -> Option<u32> {
        let after = self
            .scalars
            .partition_point(|&i| self.node(i).range.start <= range.start);
        if let Some(&i) = after.checked_sub(1).and_then(|k| self.scalars.get(k))
            && self.node(i).range.end > range.start
        {
            return Some(i);
        }
        self.scalars
            .get(after)
            .copied()
            .filter(|&i| self.node(i).range.start < range.end)
    }

    /// True when byte `at` is inside a scalar (so a `#` there is not a comment).
    fn inside_scalar(&self, at: usize) -> bool {
        self.scalar_at(&(at..at + 1))
            .is_some_and(|i| self.node(i).range.contains(&at))
    }

    /// The name of the anchor defined on node `i`, if any.
    fn anchor_name(&self, i: u32) -> Option<&str> {
        match self.nodes.get(i as usize + 1).map(|n| &n.event) {
            Some(Event::Anchor(_, name)) => Some(name),
            _ => None,
        }
    }

    fn anchor_id(&self, i: u32) -> usize {
        match &self.node(i).event {
            Event::Scalar(_, _, id, _)
            | Event::MappingStart(_, id, _)
            | Event::SequenceStart(_, id, _) => *id,
            _ => 0,
        }
    }

    /// True unless key `k` is a one-line scalar followed on its line by `:` and not preceded
    /// by a `?` indicator: an implicit key, the only kind a marker's value may have.
    fn explicit_key(&self, k: u32) -> bool {
        let n = self.node(k);
        if !matches!(n.event, Event::Scalar(..)) || n.range.is_empty() {
            return true;
        }
        let b = self.text.as_bytes();
        if b[n.range.clone()].iter().any(|&c| c == b'\n' || c == b'\r') {
            return true;
        }
        let mut j = n.range.end;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if b.get(j) != Some(&b':') {
            return true;
        }
        let mut j = n.props_start;
        while j > 0 && (b[j - 1] == b' ' || b[j - 1] == b'\t') {
            j -= 1;
        }
        j > 0 && b[j - 1] == b'?'
    }

    /// Where node `i` sits must make it a value that may change alone.
    fn check_position(&self, i: u32) -> Result<(), Refusal> {
        let n = self.node(i);
        match n.slot {
            Slot::Key if self.explicit_key(i) => return Err(Refusal::ExplicitKey),
            Slot::Key => return Err(Refusal::NotAValue),
            Slot::Value(k) if self.explicit_key(k) => return Err(Refusal::ExplicitKey),
            _ => {}
        }
        if let Some(name) = self.anchor_name(i) {
            return Err(Refusal::Anchored(name.to_owned()));
        }
        match self.blocked.get(n.parent as usize) {
            None | Some(Blocked::No) => Ok(()),
            Some(Blocked::Key) => Err(Refusal::NotAValue),
            Some(Blocked::ExplicitKey) => Err(Refusal::ExplicitKey),
            Some(Blocked::Anchored(a)) => Err(Refusal::Anchored(
                self.anchor_name(*a).unwrap_or_default().to_owned(),
            )),
        }
    }

    /// Fills [`Parsed::blocked`] for every collection, parents first (one pass, so checking a
    /// marker costs the same at any depth).
    fn block_collections(&mut self) {
        let mut blocked = vec![Blocked::No; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if !matches!(n.event, Event::MappingStart(..) | Event::SequenceStart(..)) {
                continue;
            }
            let inherited = blocked
                .get(n.parent as usize)
                .copied()
                .unwrap_or(Blocked::No);
            #[allow(clippy::cast_possible_truncation)] // event counts fit u32 (checked in parse)
            let index = i as u32;
            blocked[i] = match (inherited, n.slot) {
                (Blocked::No, Slot::Key) => Blocked::Key,
                (Blocked::No, Slot::Value(k)) if self.explicit_key(k) => Blocked::ExplicitKey,
                (Blocked::No, _) => {
                    let id = self.anchor_id(index);
                    if id != 0 && self.aliased.binary_search(&(n.doc, id)).is_ok() {
                        Blocked::Anchored(index)
                    } else {
                        Blocked::No
                    }
                }
                (inherited, _) => inherited,
            };
        }
        self.blocked = blocked;
    }
}

/// Why nothing inside a collection may be edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    No,
    /// It is (part of) a mapping key.
    Key,
    /// It is (inside) the value of an explicit or complex key.
    ExplicitKey,
    /// It is inside this anchored collection, which an alias repeats.
    Anchored(u32),
}

fn style_of(quote: Quote) -> ScalarStyle {
    match quote {
        Quote::Plain => ScalarStyle::Plain,
        Quote::Single => ScalarStyle::SingleQuoted,
        Quote::Double => ScalarStyle::DoubleQuoted,
    }
}

/// Checks that `c` names one scalar that can be edited alone (see the module header).
pub(super) fn check(p: &Parsed<'_>, c: &Candidate<'_>) -> Result<(), Refusal> {
    check_at(p, c, 0)
}

fn check_at(p: &Parsed<'_>, c: &Candidate<'_>, depth: usize) -> Result<(), Refusal> {
    let Some(i) = p.scalar_at(&c.outer) else {
        return Err(Refusal::Misread);
    };
    let n = p.node(i);
    let Event::Scalar(value, style, _, _) = &n.event else {
        return Err(Refusal::Misread);
    };
    let exact = n.range == c.outer;
    match style {
        ScalarStyle::Folded => return Err(Refusal::Block),
        ScalarStyle::Literal if !exact => {
            p.check_position(i)?;
            return check_embedded(p, i, value, c, depth);
        }
        _ => {}
    }
    let bytes = &p.text.as_bytes()[n.range.clone()];
    if bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        let last = n.line + p.text[n.range.clone()].matches('\n').count();
        return Err(Refusal::MultiLine {
            first: n.line,
            last,
        });
    }
    p.check_position(i)?;
    if !exact || *style != style_of(c.quote) || value != c.value || p.inside_scalar(c.comment_at) {
        return Err(Refusal::Misread);
    }
    Ok(())
}

/// A marker on a line inside the literal block scalar `i`: checked in the block's text.
fn check_embedded(
    p: &Parsed<'_>,
    i: u32,
    text: &str,
    c: &Candidate<'_>,
    depth: usize,
) -> Result<(), Refusal> {
    if depth >= MAX_EMBEDDING {
        return Err(Refusal::Block);
    }
    let n = p.node(i);
    let block = BlockText::new(p.text, n, text).ok_or(Refusal::Misread)?;
    let (Some(start), Some(end), Some(comment_at)) = (
        block.inner(c.outer.start),
        block.inner(c.outer.end),
        block.inner(c.comment_at),
    ) else {
        return Err(Refusal::Misread);
    };
    let lines = block.first_line - 1;
    let inner = parse(text).map_err(|e| Refusal::Parse(e).shift(lines))?;
    let c = Candidate {
        outer: start..end,
        comment_at,
        ..c.clone()
    };
    check_at(&inner, &c, depth + 1).map_err(|r| r.shift(lines))
}

/// The text of a literal block scalar, line by line against its source lines.
///
/// A literal block's text is its source lines without the block indentation, joined with
/// `\n`; nothing is escaped or folded. Line `k` of the text is source line `first_line + k`.
/// Every mapping is checked against the bytes (the source line must be the indentation and
/// then exactly the text's line), so a wrong guess about spans refuses, never misplaces.
struct BlockText<'s, 'v> {
    source: &'s str,
    /// The block's first content byte (after the indentation of its first non-empty line).
    start: usize,
    /// Its 1-based line, and the 1-based source line of the text's first line.
    start_line: usize,
    first_line: usize,
    indent: usize,
    text: &'v str,
}

impl<'s, 'v> BlockText<'s, 'v> {
    fn new(source: &'s str, n: &Node<'_>, text: &'v str) -> Option<Self> {
        // Leading empty lines are in the text but not in the span.
        let empty = text.bytes().take_while(|&b| b == b'\n').count();
        let first_line = n.line.checked_sub(empty).filter(|&l| l >= 1)?;
        Some(Self {
            source,
            start: n.range.start,
            start_line: n.line,
            first_line,
            indent: n.col,
            text,
        })
    }

    /// The offset in the block's text of source byte `at`.
    fn inner(&self, at: usize) -> Option<usize> {
        let src = self.source.as_bytes();
        if at < self.start || at > src.len() {
            return None;
        }
        let line_start = self.source[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[at..].find('\n').map_or(src.len(), |i| at + i);
        let line = self.source[line_start..line_end].trim_end_matches('\r');
        let below = self.source[self.start.min(line_start)..line_start]
            .matches('\n')
            .count();
        let k = self.start_line + below - self.first_line;
        let mut off = 0;
        for _ in 0..k {
            off += self.text[off..].find('\n')? + 1;
        }
        let end = self.text[off..]
            .find('\n')
            .map_or(self.text.len(), |i| off + i);
        let col = at - line_start;
        let ok = line.len() >= self.indent
            && line.as_bytes()[..self.indent].iter().all(|&b| b == b' ')
            && line[self.indent..] == self.text[off..end]
            && col >= self.indent
            && col <= line.len();
        ok.then(|| off + col - self.indent)
    }
}

/// Verifies that `new` (the text of `old` with `edits` made, in order) is the same YAML as
/// `old` except that each edited scalar reads as its intended value. On failure, the indexes
/// of the edits that failed: all of them when the difference cannot be pinned on some.
pub(super) fn verify(old: &Parsed<'_>, new: &str, edits: &[Edit]) -> Result<(), Vec<usize>> {
    verify_at(old, new, edits, 0)
}

fn verify_at(
    old: &Parsed<'_>,
    new_text: &str,
    edits: &[Edit],
    depth: usize,
) -> Result<(), Vec<usize>> {
    let all = || (0..edits.len()).collect::<Vec<_>>();
    let new = parse(new_text).map_err(|_| all())?;
    if new.nodes.len() != old.nodes.len() || depth > MAX_EMBEDDING {
        return Err(all());
    }
    // Edits grouped by the old scalar they fall in, in event order.
    let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
    let mut failed = Vec::new();
    for (k, e) in edits.iter().enumerate() {
        match old.scalar_at(&e.old) {
            Some(i) => match groups.iter_mut().find(|(g, _)| *g == i) {
                Some((_, ids)) => ids.push(k),
                None => groups.push((i, vec![k])),
            },
            None => failed.push(k),
        }
    }
    groups.sort_by_key(|(i, _)| *i);
    for (i, ids) in &groups {
        if !verify_scalar(old, &new, *i, ids, edits, depth) {
            failed.extend(ids);
        }
    }
    let mut touched = groups.iter().map(|(i, _)| *i as usize).peekable();
    for (j, (a, b)) in old.nodes.iter().zip(&new.nodes).enumerate() {
        if touched.peek() == Some(&j) {
            touched.next();
            continue;
        }
        if a.event != b.event {
            return Err(all());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        failed.sort_unstable();
        failed.dedup();
        Err(failed)
    }
}

/// The edits `ids` all fall in old scalar `i`: the new scalar at `i` must be what they make.
fn verify_scalar(
    old: &Parsed<'_>,
    new: &Parsed<'_>,
    i: u32,
    ids: &[usize],
    edits: &[Edit],
    depth: usize,
) -> bool {
    let (a, b) = (old.node(i), new.node(i));
    let (
        Event::Scalar(old_value, old_style, old_anchor, old_tag),
        Event::Scalar(value, style, anchor, tag),
    ) = (&a.event, &b.event)
    else {
        return false;
    };
    // The same rules as before the edit: a value nothing else repeats.
    if old_style != style
        || old_anchor != anchor
        || old_tag != tag
        || new.check_position(i).is_err()
    {
        return false;
    }
    if let [k] = ids
        && a.range == edits[*k].old
    {
        let e = &edits[*k];
        return *style != ScalarStyle::Literal
            && *style != ScalarStyle::Folded
            && b.range == e.new
            && *value == e.value;
    }
    if *style != ScalarStyle::Literal {
        return false;
    }
    let (Some(before), Some(after)) = (
        BlockText::new(old.text, a, old_value),
        BlockText::new(new.text, b, value),
    ) else {
        return false;
    };
    // The block's new text must be its old text with exactly these bytes replaced.
    let mut inner = Vec::with_capacity(ids.len());
    let mut expected = String::with_capacity(value.len());
    let mut copied = 0;
    for &k in ids {
        let e = &edits[k];
        let (Some(os), Some(oe), Some(ns), Some(ne)) = (
            before.inner(e.old.start),
            before.inner(e.old.end),
            after.inner(e.new.start),
            after.inner(e.new.end),
        ) else {
            return false;
        };
        if os < copied {
            return false;
        }
        expected.push_str(&old_value[copied..os]);
        expected.push_str(&new.text[e.new.clone()]);
        copied = oe;
        inner.push(Edit {
            old: os..oe,
            new: ns..ne,
            value: e.value.clone(),
        });
    }
    expected.push_str(&old_value[copied..]);
    if expected != **value {
        return false;
    }
    let Ok(embedded) = parse(old_value) else {
        return false;
    };
    verify_at(&embedded, value, &inner, depth + 1).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `verify` on its own (apply never hands it a bad edit, so its refusals are tested
    /// here): each case is an "edit" of `a: 1.0.0` in a small file that breaks one rule.
    #[test]
    fn verify_refuses_anything_but_the_intended_change() {
        let old = "a: 1.0.0\nb: x\nc: |\n  v: 1.0.0\n  w: y\nd: &d 1.0.0\ne: *d\n";
        let parsed = parse(old).expect("parses");
        let edit = |old: Range<usize>, new: Range<usize>, value: &str| Edit {
            old,
            new,
            value: value.to_owned(),
        };
        // (new text, edits, the edit indexes that must fail (empty: passes), reason)
        let cases: Vec<(&str, Vec<Edit>, Vec<usize>, &str)> = vec![
            (
                "a: 2.0.0\nb: x\nc: |\n  v: 1.0.0\n  w: y\nd: &d 1.0.0\ne: *d\n",
                vec![edit(3..8, 3..8, "2.0.0")],
                vec![],
                "the intended change passes",
            ),
            (
                "a: 2.0.0\nb: z\nc: |\n  v: 1.0.0\n  w: y\nd: &d 1.0.0\ne: *d\n",
                vec![edit(3..8, 3..8, "2.0.0")],
                vec![0],
                "another scalar changed too",
            ),
            (
                "a: 2.0.1\nb: x\nc: |\n  v: 1.0.0\n  w: y\nd: &d 1.0.0\ne: *d\n",
                vec![edit(3..8, 3..8, "2.0.0")],
                vec![0],
                "the value is not the intended one",
            ),
            (
                "a: '2.0'\nb: x\nc: |\n  v: 1.0.0\n  w: y\nd: &d 1.0.0\ne: *d\n",
                vec![edit(3..8, 3..8, "2.0")],
                vec![0],
                "the quote style changed",
            ),
            (
                "a: \"2.0.0\nb: x\nc: |\n  v: 1.0.0\n  w: y\nd: &d 1.0.0\ne: *d\n",
                vec![edit(3..8, 3..9, "2.0.0")],
                vec![0],
                "the new text does not parse",
            ),
            (
                "a: 1.0.0\nb: x\nc: |\n  v: 2.0.0\n  w: y\nd: &d 1.0.0\ne: *d\n",
                vec![edit(24..29, 24..29, "2.0.0")],
                vec![],
                "the intended change inside a literal block passes",
            ),
            (
                "a: 1.0.0\nb: x\nc: |\n  v: 2.0.0\n  w: z\nd: &d 1.0.0\ne: *d\n",
                vec![edit(24..29, 24..29, "2.0.0")],
                vec![0],
                "the block's text changed elsewhere too",
            ),
            (
                "a: 1.0.0\nb: x\nc: |\n  v: 2.0.0 # c\n  w: y\nd: &d 1.0.0\ne: *d\n",
                vec![edit(24..29, 24..33, "2.0.0")],
                vec![0],
                "the new bytes are more than the embedded scalar (a comment came with them)",
            ),
            (
                "a: 1.0.0\nb: x\nc: |\n  v: 1.0.0\n  w: y\nd: &d 2.0.0\ne: *d\n",
                vec![edit(43..48, 43..48, "2.0.0")],
                vec![0],
                "an anchored scalar: its alias changes with it",
            ),
        ];
        for (new, edits, want, reason) in cases {
            let got = verify(&parsed, new, &edits);
            assert_eq!(got.err().unwrap_or_default(), want, "{reason}");
        }
    }

    /// The byte mapping of literal block lines refuses when a source line is not the block's
    /// indentation followed by exactly the text's line.
    #[test]
    fn block_text_maps_only_matching_lines() {
        let src = "c: |\n\n  v: 1\n   w: 2\nd: x\n";
        let parsed = parse(src).expect("parses");
        let literal = parsed.scalars.iter().copied().find(|&i| {
            matches!(
                &parsed.node(i).event,
                Event::Scalar(_, ScalarStyle::Literal, ..)
            )
        });
        let node = parsed.node(literal.expect("a literal"));
        let Event::Scalar(text, ..) = &node.event else {
            unreachable!()
        };
        assert_eq!(&**text, "\nv: 1\n w: 2\n");
        let block = BlockText::new(src, node, text).expect("mapping");
        let at = src.find("1\n").expect("v's value");
        assert_eq!(block.inner(at), Some(text.find('1').expect("in text")));
        let w = src.find("w:").expect("w");
        assert_eq!(block.inner(w), Some(text.find("w:").expect("in text")));
        assert_eq!(block.inner(0), None, "before the block");
    }
}

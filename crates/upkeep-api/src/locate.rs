//! Mapping a field path (`spec.maintenanceWindows[0].recurrence`) back to a line and column
//! (and a byte offset back to a field path), each document's own text, and the guard that
//! keeps loading a file linear in its size.
//!
//! serde-saphyr locates its own errors by byte offset, but validation happens after
//! deserialization, on typed values that no longer know where they came from. So the loader
//! first reads each file as YAML events (granit-parser, the parser serde-saphyr is built on)
//! and keeps a small tree of positions per document; a path is walked down that tree, falling
//! back to the deepest part that exists (a missing field is reported at its parent), and an
//! offset is walked down it to name the field serde-saphyr stopped at. The same pass finds
//! where each document's text begins and ends, so each document is read on its own.
//!
//! That first read is also the guard for everything after it: it stops at the first collection
//! deeper than [`MAX_DEPTH`] and at the node past [`MAX_NODES`], and the loader reports these
//! without building any value. (libyaml, under serde_yaml before, did work proportional to the
//! open flow depth for every token, so `[[[[…]]]]` 40,000 deep took tens of seconds; granit is
//! linear, and serde-saphyr's budget repeats both limits as a backstop.) Positions are granit's
//! markers (line, character column, byte offset); nothing here counts characters along a line
//! for every node, which made a long one-line flow collection quadratic.

use std::fmt::Write as _;

use granit_parser::{ErrorKind, Event, Options, Parser, ScanError};

/// The deepest nesting of collections (mappings and sequences, block or flow) the loader
/// reads; the document's root collection is level 1. It was serde_yaml's recursion limit, and
/// it stays: manifests rarely need 20 levels, and deserializing recurses once per level.
pub const MAX_DEPTH: usize = 128;

/// The most YAML nodes (scalars, aliases, collections) the loader reads in one file. Memory
/// while loading grows with nodes, not bytes (serde-saphyr's events and values, the positions
/// tree: about 280 bytes a node), so `[1,1,1,…]` filling [`crate::MAX_FILE_BYTES`] would
/// need 1.2 GB. Real manifests take about 20 bytes a node, so the cap only bites near the
/// byte cap; it bounds a file's loading to about 300 MB.
pub const MAX_NODES: usize = 1_000_000;

/// A 1-based line and column plus the byte offset they correspond to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) offset: usize,
}

/// Line starts of a text, to turn (line, character column) into a byte offset and back.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// The text indexed.
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// Position of 1-based `line` and 1-based character `column`, clamped into the text.
    pub(crate) fn pos(&self, line: usize, column: usize) -> Pos {
        let line = line.clamp(1, self.starts.len());
        let start = self.starts[line - 1];
        let end = self.starts.get(line).copied().unwrap_or(self.text.len());
        let offset = self.text[start..end]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(end, |(i, _)| start + i);
        Pos {
            line,
            column: column.max(1),
            offset,
        }
    }

    /// Position of byte `offset` (clamped into the text, moved back to a character boundary).
    pub(crate) fn at_offset(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        Pos {
            line,
            column: self.text[start..offset].chars().count() + 1,
            offset,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Node {
    /// `plain`: written without quotes or block indicator (so YAML resolves it: `1`, `true`,
    /// `~` are not strings).
    Scalar {
        at: Pos,
        value: String,
        plain: bool,
    },
    Map {
        at: Pos,
        entries: Vec<Entry>,
    },
    Seq {
        at: Pos,
        items: Vec<Node>,
    },
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_at: Pos,
    pub(crate) value: Node,
}

impl Node {
    pub(crate) fn at(&self) -> Pos {
        match self {
            Node::Scalar { at, .. } | Node::Map { at, .. } | Node::Seq { at, .. } => *at,
        }
    }
}

/// Positions of one YAML document.
#[derive(Debug)]
pub(crate) struct DocPositions {
    start: Pos,
    root: Option<Node>,
    /// The bytes of the text that hold this document and nothing of another: from the end of
    /// the previous document's `...` (or its `---`, or the start of the text) to where the next
    /// one begins. Reading this slice alone reads this document alone.
    pub(crate) range: std::ops::Range<usize>,
    /// The deepest nesting of collections in the document (the root collection is 1).
    pub(crate) depth: usize,
}

/// The path of the collection holding `path`'s last segment (`a.b[0]` → `a.b`, `a` → ``).
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.find('[').map_or((part, ""), |i| part.split_at(i));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(close) = stripped.find(']') else {
                break;
            };
            match stripped[..close].parse() {
                Ok(i) => out.push(Segment::Index(i)),
                Err(_) => out.push(Segment::Key(&stripped[..close])),
            }
            rest = &stripped[close + 1..];
        }
    }
    out
}

impl DocPositions {
    /// The document's root node (`None` for an empty document).
    pub(crate) fn root(&self) -> Option<&Node> {
        self.root.as_ref()
    }

    /// Where the document's content starts.
    pub(crate) fn start(&self) -> Pos {
        self.root.as_ref().map_or(self.start, Node::at)
    }

    /// Where `path` was written: a scalar's value, a collection's key (or item); for a path
    /// that does not exist, the deepest existing parent.
    pub(crate) fn locate(&self, path: &str) -> Pos {
        let Some(mut node) = self.root.as_ref() else {
            return self.start;
        };
        let mut best = node.at();
        for seg in segments(path) {
            let next = match (seg, node) {
                (Segment::Key(k), Node::Map { entries, .. }) => entries
                    .iter()
                    .find(|e| e.key == k)
                    .map(|e| (&e.value, e.key_at)),
                (Segment::Index(i), Node::Seq { items, .. }) => items.get(i).map(|n| (n, n.at())),
                _ => None,
            };
            let Some((child, key_at)) = next else {
                return best;
            };
            node = child;
            best = match child {
                Node::Scalar { at, .. } => *at,
                _ => key_at,
            };
        }
        best
    }

    /// The path (`spec.windows[0].name`) of the node written at byte `offset`, or else of the
    /// last node that starts before it; `None` before the first node. A key's offset gives the
    /// path of its entry.
    pub(crate) fn path_at(&self, offset: usize) -> Option<String> {
        fn walk(node: &Node, path: &mut String, offset: usize, best: &mut Option<String>) -> bool {
            if node.at().offset > offset {
                return false;
            }
            *best = Some(path.clone());
            match node {
                Node::Scalar { .. } => {}
                Node::Map { entries, .. } => {
                    for e in entries {
                        if e.key_at.offset > offset {
                            return false;
                        }
                        let len = path.len();
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(&e.key);
                        *best = Some(path.clone());
                        let stop = !walk(&e.value, path, offset, best);
                        path.truncate(len);
                        if stop {
                            return false;
                        }
                    }
                }
                Node::Seq { items, .. } => {
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        let _ = write!(path, "[{i}]");
                        let stop = !walk(item, path, offset, best);
                        path.truncate(len);
                        if stop {
                            return false;
                        }
                    }
                }
            }
            true
        }
        let mut best = None;
        walk(self.root.as_ref()?, &mut String::new(), offset, &mut best);
        best
    }

    /// The path of the mapping that serde-saphyr means when it reports a missing field at byte
    /// `offset`: it places the error at the last key it read, so the mapping is the one holding
    /// the entry at `offset`, or the entry's own value when that is an empty mapping (no key
    /// was read inside it).
    pub(crate) fn mapping_at(&self, offset: usize) -> Option<String> {
        let path = self.path_at(offset)?;
        let node = self.node(&path);
        match node {
            Some(Node::Map { entries, .. }) if entries.is_empty() => Some(path),
            _ => Some(parent(&path).to_owned()),
        }
    }

    /// What is written at byte `offset`, in serde's words for an unexpected value (`map`,
    /// `sequence`, `string "x"`, `integer `3``, `boolean `true``, `unit value`), if a node
    /// starts exactly there.
    pub(crate) fn found_at(&self, offset: usize) -> Option<String> {
        let path = self.path_at(offset)?;
        let node = self.node(&path)?;
        if node.at().offset != offset && !matches!(node, Node::Map { .. }) {
            return None;
        }
        Some(match node {
            Node::Map { .. } => "map".to_owned(),
            Node::Seq { .. } => "sequence".to_owned(),
            Node::Scalar {
                value,
                plain: false,
                ..
            } => format!("string {value:?}"),
            Node::Scalar { value, .. } => match crate::yaml::from_str(value) {
                Ok(crate::yaml::Value::Null) => "unit value".to_owned(),
                Ok(crate::yaml::Value::Bool(b)) => format!("boolean `{b}`"),
                Ok(crate::yaml::Value::Number(_)) => {
                    let digits = value.trim_start_matches(['+', '-']);
                    let integer = digits.starts_with("0x")
                        || digits.starts_with("0o")
                        || digits.bytes().all(|b| b.is_ascii_digit());
                    if integer {
                        format!("integer `{value}`")
                    } else {
                        format!("floating point `{value}`")
                    }
                }
                _ => format!("string {value:?}"),
            },
        })
    }

    /// Where the node at `path` is written (a mapping: its first key), if it exists.
    pub(crate) fn node_pos(&self, path: &str) -> Option<Pos> {
        self.node(path).map(Node::at)
    }

    /// The node at `path`, if it exists.
    fn node(&self, path: &str) -> Option<&Node> {
        let mut node = self.root.as_ref()?;
        for seg in segments(path) {
            node = match (seg, node) {
                (Segment::Key(k), Node::Map { entries, .. }) => {
                    &entries.iter().find(|e| e.key == k)?.value
                }
                (Segment::Index(i), Node::Seq { items, .. }) => items.get(i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The string value at a top-level key of the root mapping, if it is a scalar.
    #[cfg(test)]
    pub(crate) fn scalar(&self, key: &str) -> Option<&str> {
        match &self.root {
            Some(Node::Map { entries, .. }) => entries.iter().find_map(|e| match &e.value {
                Node::Scalar { value, .. } if e.key == key => Some(value.as_str()),
                _ => None,
            }),
            _ => None,
        }
    }
}

enum Frame {
    Map {
        at: Pos,
        entries: Vec<Entry>,
        pending_key: Option<(String, Pos)>,
    },
    Seq {
        at: Pos,
        items: Vec<Node>,
    },
}

struct Builder<'t> {
    lines: &'t LineIndex<'t>,
    nodes: usize,
    docs: Vec<DocPositions>,
    doc_start: Pos,
    /// Where the current document's text begins (see [`DocPositions::range`]).
    doc_from: usize,
    /// The end of the last explicit `...`, if nothing but comments followed it.
    explicit_end: Option<usize>,
    /// The deepest nesting of the current document so far.
    depth: usize,
    stack: Vec<Frame>,
    root: Option<Node>,
}

impl Builder<'_> {
    fn pos(&self, mark: granit_parser::Marker) -> Pos {
        // granit reports 1-based lines, 0-based character columns and byte offsets.
        match mark.byte_offset() {
            Some(offset) => Pos {
                line: mark.line().max(1),
                column: mark.col() + 1,
                offset: offset.min(self.lines.text.len()),
            },
            None => self.lines.pos(mark.line(), mark.col() + 1),
        }
    }

    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => {
                if let Some((key, key_at)) = pending_key.take() {
                    entries.push(Entry {
                        key,
                        key_at,
                        value: node,
                    });
                } else {
                    let at = node.at();
                    let key = match node {
                        Node::Scalar { value, .. } => value,
                        _ => String::new(),
                    };
                    *pending_key = Some((key, at));
                }
            }
        }
    }

    /// Takes one event; `Err` where reading must stop (a collection nested too deep, one
    /// node too many).
    fn on_event(&mut self, ev: Event<'_>, at: Pos, end: usize) -> Result<(), Scan> {
        if matches!(
            ev,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        ) {
            self.nodes += 1;
            if self.nodes > MAX_NODES {
                return Err(Scan::TooManyNodes(at));
            }
        }
        match ev {
            Event::DocumentStart(..) => {
                // The first document's text starts with the file (directives included);
                // another starts after the previous `...`, else at its own `---` (a document
                // ended without `...` can only be followed by `---`).
                self.doc_from = match (self.docs.last_mut(), self.explicit_end.take()) {
                    (None, _) => 0,
                    (Some(prev), end) => {
                        let from = end.unwrap_or(at.offset);
                        prev.range.end = from;
                        from
                    }
                };
                self.doc_start = at;
                self.depth = 0;
                self.root = None;
                self.stack.clear();
            }
            Event::DocumentEnd => {
                self.explicit_end = (end > at.offset).then_some(end);
                self.docs.push(DocPositions {
                    start: self.doc_start,
                    root: self.root.take(),
                    range: self.doc_from..self.lines.text.len(),
                    depth: self.depth,
                });
            }
            Event::Scalar(value, style, ..) => self.push_node(Node::Scalar {
                at,
                value: value.into_owned(),
                plain: matches!(style, granit_parser::ScalarStyle::Plain),
            }),
            Event::Alias(_) => self.push_node(Node::Scalar {
                at,
                value: String::new(),
                plain: false,
            }),
            Event::MappingStart(..) | Event::SequenceStart(..) if self.stack.len() >= MAX_DEPTH => {
                return Err(Scan::TooDeep(at));
            }
            Event::MappingStart(..) => {
                self.stack.push(Frame::Map {
                    at,
                    entries: Vec::new(),
                    pending_key: None,
                });
                self.depth = self.depth.max(self.stack.len());
            }
            Event::SequenceStart(..) => {
                self.stack.push(Frame::Seq {
                    at,
                    items: Vec::new(),
                });
                self.depth = self.depth.max(self.stack.len());
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let node = match self.stack.pop() {
                    // A block mapping's start mark is not always on its first key; the
                    // first key is where a reader looks.
                    Some(Frame::Map { at, entries, .. }) => Node::Map {
                        at: entries.first().map_or(at, |e| e.key_at),
                        entries,
                    },
                    Some(Frame::Seq { at, items }) => Node::Seq { at, items },
                    None => return Ok(()),
                };
                self.push_node(node);
            }
            // Stream markers, and comments and anchor names when another crate turns their
            // events on (they are off in `options`).
            _ => {}
        }
        Ok(())
    }
}

/// What reading a text as YAML events found.
#[derive(Debug)]
pub(crate) enum Scan {
    /// Every document, in stream order.
    Parsed(Vec<DocPositions>),
    /// A collection starts at this position, deeper than [`MAX_DEPTH`]; reading stopped there.
    TooDeep(Pos),
    /// The node at this position is one more than [`MAX_NODES`]; reading stopped there.
    TooManyNodes(Pos),
    /// granit found a syntax error here (`message` says which); it read nothing after it.
    /// `hint` says how to fix it (a continuation line of a quoted scalar not indented deeper
    /// than its key, which libyaml accepted and YAML 1.2 and granit do not, gets its own).
    Invalid {
        at: Pos,
        message: String,
        hint: String,
    },
}

fn options() -> Options {
    let mut options = Options::default();
    // The builder stops at MAX_DEPTH itself, at the first collection too deep. granit's own
    // limits only back it up: its scanner may run up to `simple_key_max_lookahead` characters
    // ahead of the events (`[[[[` could all be keys), so they sit that far above, where they
    // never report a deeper collection first.
    let backstop = MAX_DEPTH + options.simple_key_max_lookahead + 1;
    options.flow_nesting_limit = backstop;
    options.block_nesting_limit = backstop;
    options.set_emit_comments(false);
    options
}

/// Reads every document of `text` as events, building the positions tree, and stops at the
/// first collection nested deeper than [`MAX_DEPTH`], the node past [`MAX_NODES`], or the
/// first syntax error. Linear in the length of `text`.
pub(crate) fn scan(text: &str, lines: &LineIndex<'_>) -> Scan {
    let mut builder = Builder {
        lines,
        nodes: 0,
        docs: Vec::new(),
        doc_start: lines.pos(1, 1),
        doc_from: 0,
        explicit_end: None,
        depth: 0,
        stack: Vec::new(),
        root: None,
    };
    for next in Parser::new_from_str_with_options(text, options()) {
        let result = match next {
            Ok((ev, span)) => {
                let at = builder.pos(span.start);
                let end = builder.pos(span.end).offset;
                builder.on_event(ev, at, end)
            }
            Err(e) => return scan_error(&builder, &e),
        };
        if let Err(stop) = result {
            return stop;
        }
    }
    Scan::Parsed(builder.docs)
}

/// The hint for a file granit cannot read.
const QUOTED_INDENT_HINT: &str = "YAML syntax: check indentation here (continuation lines of a \
     quoted value go deeper than its key), and quote values that contain `: `, `#` or start \
     with a special character";

/// granit's error as the loader reports it. Messages are granit's, except where libyaml (which
/// upkeep read YAML with before) said it otherwise for the same mistake and users and tests
/// know its words: an unclosed `[`/`{` is reported where reading stopped (the end of the text
/// or the next `---`/`...`), as libyaml's `did not find expected ',' or ']'`, and the hint
/// says where the bracket opened. A tab is reported where the tab is.
fn scan_error(builder: &Builder<'_>, e: &ScanError) -> Scan {
    let at = builder.pos(*e.marker());
    match e.kind() {
        ErrorKind::RecursionLimitExceeded => Scan::TooDeep(at),
        ErrorKind::UnclosedFlowCollection { open } => {
            let (close, what) = if *open == '[' {
                (']', "sequence")
            } else {
                ('}', "mapping")
            };
            let text = builder.lines.text;
            let rest = &text[at.offset.min(text.len())..];
            let stop = rest
                .match_indices('\n')
                .map(|(i, _)| i + 1)
                .find(|&i| rest[i..].starts_with("---") || rest[i..].starts_with("..."))
                .map_or(text.len(), |i| at.offset + i);
            Scan::Invalid {
                at: builder.lines.at_offset(stop),
                message: format!(
                    "did not find expected ',' or '{close}', while parsing a flow {what}"
                ),
                hint: format!(
                    "the `{open}` at line {} column {} is not closed; {}",
                    at.line,
                    at.column,
                    crate::yaml::SYNTAX_HINT
                ),
            }
        }
        // granit may place a tab error at the start of the scalar or line it was reading;
        // the tab itself is what to fix.
        ErrorKind::TabNotAllowed
        | ErrorKind::TabInBlockIndentation
        | ErrorKind::TabAtBlockScalarStart
        | ErrorKind::TabInIndentation
        | ErrorKind::TabInPlainScalar => {
            let text = builder.lines.text;
            let tab = text[at.offset.min(text.len())..]
                .find('\t')
                .map_or(at, |i| builder.lines.at_offset(at.offset + i));
            Scan::Invalid {
                at: tab,
                message: e.info(),
                hint: format!("replace the tab with spaces; {}", crate::yaml::SYNTAX_HINT),
            }
        }
        kind => {
            let message = e.info();
            Scan::Invalid {
                at,
                hint: if matches!(kind, ErrorKind::InvalidQuotedScalarIndent) {
                    QUOTED_INDENT_HINT
                } else {
                    crate::yaml::SYNTAX_HINT
                }
                .to_owned(),
                message: if message.is_empty() {
                    "not valid YAML".to_owned()
                } else {
                    message
                },
            }
        }
    }
}

/// Positions of every document in `text`, in stream order; `None` if it cannot be read as
/// YAML (a syntax error, nesting deeper than [`MAX_DEPTH`], more than [`MAX_NODES`] nodes).
pub(crate) fn positions(text: &str, lines: &LineIndex<'_>) -> Option<Vec<DocPositions>> {
    match scan(text, lines) {
        Scan::Parsed(docs) => Some(docs),
        Scan::TooDeep(_) | Scan::TooManyNodes(_) | Scan::Invalid { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        assert_eq!(
            segments("spec.maintenanceWindows[0].recurrence"),
            vec![
                Segment::Key("spec"),
                Segment::Key("maintenanceWindows"),
                Segment::Index(0),
                Segment::Key("recurrence"),
            ]
        );
        assert_eq!(
            segments("a[1][2]"),
            vec![Segment::Key("a"), Segment::Index(1), Segment::Index(2)]
        );
    }

    #[test]
    fn locates_paths() {
        let text = "a: 1\nspec:\n  list:\n  - x: hello\n    y: [1, 2]\n---\nkind: B\n";
        let lines = LineIndex::new(text);
        let docs = positions(text, &lines).unwrap();
        assert_eq!(docs.len(), 2);
        let cases: &[(usize, &str, (usize, usize), &str)] = &[
            (0, "a", (1, 4), "a scalar value is located at the value"),
            (0, "spec.list[0].x", (4, 8), "through a sequence item"),
            (0, "spec.list[0].y[1]", (5, 12), "flow sequences too"),
            (0, "spec.list", (3, 3), "a collection is located at its key"),
            (
                0,
                "spec.list[0].missing",
                (4, 5),
                "missing field falls back to its parent item",
            ),
            (
                0,
                "spec.nothing.deeper",
                (2, 1),
                "missing field falls back to the parent key",
            ),
            (1, "kind", (7, 7), "second document lines are absolute"),
        ];
        for &(doc, path, (line, column), reason) in cases {
            let p = docs[doc].locate(path);
            assert_eq!((p.line, p.column), (line, column), "{path}: {reason}");
            assert_eq!(p.offset, lines.pos(line, column).offset);
        }
        assert_eq!(docs[1].scalar("kind"), Some("B"));
        assert_eq!(docs[1].start().line, 7);
    }
}

//! Mapping a field path (`spec.maintenanceWindows[0].recurrence`) back to a line and column,
//! and the guard that keeps loading a file linear in its size.
//!
//! serde_yaml locates its own errors, but validation happens after deserialization, on typed
//! values that no longer know where they came from. So the loader first reads each file as
//! YAML events (granit-parser) and keeps a small tree of positions per document; a path is
//! walked down that tree, falling back to the deepest part that exists (a missing field is
//! reported at its parent).
//!
//! That first read is also the guard for everything after it. serde_yaml's scanner (libyaml)
//! does work proportional to the depth of open flow collections (`[`, `{`) for every token,
//! so `[[[[…]]]]` 40,000 deep took tens of seconds per read, only for serde_yaml to refuse
//! anything deeper than 128 levels afterwards. granit's scanner is linear, so this pass stops
//! at the first collection deeper than [`MAX_DEPTH`] (the depth serde_yaml can read) and the
//! loader reports it without handing the text to serde_yaml. Positions are granit's markers
//! (line, character column, byte offset); nothing here counts characters along a line, which
//! made a long one-line flow collection quadratic.

use granit_parser::{ErrorKind, Event, Options, Parser, ScanError};

/// The deepest nesting of collections (mappings and sequences, block or flow) the loader
/// reads; the document's root collection is level 1. It is serde_yaml's own recursion limit:
/// a deeper document could never be read, and checking first keeps serde_yaml's per-token
/// cost (proportional to the flow depth) bounded.
pub const MAX_DEPTH: usize = 128;

/// The most YAML nodes (scalars, aliases, collections) the loader reads in one file. Memory
/// while loading grows with nodes, not bytes (serde_yaml's events and values, the positions
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
}

#[derive(Debug)]
pub(crate) enum Node {
    Scalar { at: Pos, value: String },
    Map { at: Pos, entries: Vec<Entry> },
    Seq { at: Pos, items: Vec<Node> },
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
    fn on_event(&mut self, ev: Event<'_>, at: Pos) -> Result<(), Scan> {
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
                self.doc_start = at;
                self.root = None;
                self.stack.clear();
            }
            Event::DocumentEnd => self.docs.push(DocPositions {
                start: self.doc_start,
                root: self.root.take(),
            }),
            Event::Scalar(value, ..) => self.push_node(Node::Scalar {
                at,
                value: value.into_owned(),
            }),
            Event::Alias(_) => self.push_node(Node::Scalar {
                at,
                value: String::new(),
            }),
            Event::MappingStart(..) | Event::SequenceStart(..) if self.stack.len() >= MAX_DEPTH => {
                return Err(Scan::TooDeep(at));
            }
            Event::MappingStart(..) => self.stack.push(Frame::Map {
                at,
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceStart(..) => self.stack.push(Frame::Seq {
                at,
                items: Vec::new(),
            }),
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
    Invalid { at: Pos, message: String },
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
        stack: Vec::new(),
        root: None,
    };
    for next in Parser::new_from_str_with_options(text, options()) {
        let result = match next {
            Ok((ev, span)) => {
                let at = builder.pos(span.start);
                builder.on_event(ev, at)
            }
            Err(e) => return scan_error(&builder, &e),
        };
        if let Err(stop) = result {
            return stop;
        }
    }
    Scan::Parsed(builder.docs)
}

fn scan_error(builder: &Builder<'_>, e: &ScanError) -> Scan {
    let at = builder.pos(*e.marker());
    if matches!(e.kind(), ErrorKind::RecursionLimitExceeded) {
        return Scan::TooDeep(at);
    }
    let message = e.info();
    Scan::Invalid {
        at,
        message: if message.is_empty() {
            "not valid YAML".to_owned()
        } else {
            message
        },
    }
}

/// Whether `rest` (what follows a syntax error granit stopped at) could open more than
/// [`MAX_DEPTH`] flow collections or hold more than [`MAX_NODES`] nodes. serde_yaml accepts a
/// few things granit does not (e.g. continuation lines of a quoted value indented no deeper
/// than its key), so after a syntax error the loader still lets serde_yaml judge the file, but
/// only when this is false. Both counts can only overestimate what serde_yaml would meet: every
/// `[` and `{` is counted, quoted or not, and every node takes at least two bytes. Linear.
pub(crate) fn may_read_too_much(rest: &str) -> bool {
    rest.len() > 2 * MAX_NODES
        || rest
            .bytes()
            .filter(|b| matches!(b, b'[' | b'{'))
            .nth(MAX_DEPTH)
            .is_some()
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

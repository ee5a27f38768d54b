//! Cluster annotations written in a Giant Swarm cluster's values ConfigMap: where `upkeep
//! freeze` puts `upkeep.dev/freeze-until`/`freeze-reason` in Giant Swarm's GitOps layout, and
//! where the repository view reads them back.
//!
//! Why there: in that layout there is no `Cluster` manifest; the cluster chart (`cluster-aws`,
//! `cluster-azure`, … built on giantswarm/cluster) creates the Cluster and copies
//! `global.metadata.annotations` onto it (`cluster.annotations.custom` in its
//! `templates/clusterapi/cluster.yaml`; the schema: "These annotations are added to all
//! Kubernetes resources defining this cluster"). So a freeze written there is the annotation
//! the controller reads on the management cluster's Cluster, and what a Giant Swarm user sees
//! when they look at the cluster. The values are YAML inside the ConfigMap's `data.values: |`
//! literal block scalar, so the edit is made on that inner YAML and spliced back with the
//! block's indentation: only the lines of the annotations change, every other byte of the file
//! (the block's other lines, comments, other documents) stays as it was.
//!
//! Values are always written double-quoted: Helm reads values as YAML 1.1, where a plain
//! `2026-04-01T00:00:00Z` is a timestamp, not the string the chart's `quote` expects.
//!
//! Every edit is checked by reading the result again: the ConfigMap must still be found, its
//! values must parse, and they must equal the values before with exactly the asked annotations
//! set or removed (nothing else in the document differs); otherwise the edit is refused with
//! the file and line, and nothing is written.

use std::collections::BTreeMap;

use crate::cluster_edit::{entry, eol, is_flow, line_start, next_line, scalar};
use crate::locate::{DocPositions, LineIndex, Node, positions};
use crate::yaml::Value;

/// Where the annotations live inside the values.
pub const ANNOTATIONS_PATH: [&str; 3] = ["global", "metadata", "annotations"];

/// Why the annotations cannot be read or written. Variant names are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValuesEditError {
    #[error("{file}: no ConfigMap {configmap} with data.{key}")]
    NotFound {
        file: String,
        configmap: String,
        key: String,
    },
    #[error("{file}: ConfigMap {configmap} with data.{key} is defined more than once (lines {})", lines.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        file: String,
        configmap: String,
        key: String,
        lines: Vec<usize>,
    },
    #[error("{file}: not valid YAML")]
    NotYaml { file: String },
    /// The values inside `data.<key>` are not valid YAML.
    #[error("{file}:{line}: data.{key}: the values are not valid YAML")]
    ValuesNotYaml {
        file: String,
        line: usize,
        key: String,
    },
    /// A layout upkeep does not edit (a folded scalar, a flow mapping, …).
    #[error("{file}:{line}: {field}: {what}")]
    Unsupported {
        file: String,
        line: usize,
        field: String,
        what: String,
    },
}

impl ValuesEditError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        Some(
            match self {
                ValuesEditError::NotFound { .. } => {
                    "the cluster's values ConfigMap needs data.values: | holding the chart values"
                }
                ValuesEditError::Ambiguous { .. } => "keep one definition of the ConfigMap",
                ValuesEditError::NotYaml { .. } | ValuesEditError::ValuesNotYaml { .. } => {
                    "fix the file (`upkeep validate` shows where)"
                }
                ValuesEditError::Unsupported { .. } => {
                    "write data.values as a literal block (|) and global.metadata.annotations in block style, one key per line"
                }
            }
            .to_owned(),
        )
    }

    /// The variant name, for metric labels and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            ValuesEditError::NotFound { .. } => "NotFound",
            ValuesEditError::Ambiguous { .. } => "Ambiguous",
            ValuesEditError::NotYaml { .. } => "NotYaml",
            ValuesEditError::ValuesNotYaml { .. } => "ValuesNotYaml",
            ValuesEditError::Unsupported { .. } => "Unsupported",
        }
    }
}

/// Which ConfigMap of a file: its `metadata.name` (as written, such as
/// `${cluster_name}-userconfig`, or as it reads after substituting `vars`), or `None` for the
/// only ConfigMap of the file holding `data.<key>`.
#[derive(Debug, Clone, Copy)]
pub struct ValuesRef<'a> {
    pub configmap: Option<&'a str>,
    /// The Flux Kustomization's `postBuild.substitute` the name is compared after (`None`: as
    /// written).
    pub vars: Option<&'a crate::cluster_edit::Vars>,
    /// The key under `data` (Giant Swarm: `values`).
    pub key: &'a str,
}

impl ValuesRef<'_> {
    fn shown(&self) -> String {
        self.configmap.unwrap_or("(any)").to_owned()
    }
}

/// The annotations under `global.metadata.annotations` in the values (only string values).
pub fn annotations(
    file: &str,
    text: &str,
    at: ValuesRef<'_>,
) -> Result<BTreeMap<String, String>, ValuesEditError> {
    let block = Block::find(file, text, at)?;
    let values = block.values(file, text, at.key)?;
    let mut node = &values;
    for seg in ANNOTATIONS_PATH {
        match node.get(seg) {
            Some(v) => node = v,
            None => return Ok(BTreeMap::new()),
        }
    }
    Ok(node
        .as_mapping()
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect())
}

/// The file's text with annotations set (`Some`) or removed (`None`), in order, under
/// `global.metadata.annotations` in the values (missing mappings are created). Unchanged text
/// when nothing changes.
pub fn set_annotations(
    file: &str,
    text: &str,
    at: ValuesRef<'_>,
    changes: &[(&str, Option<&str>)],
) -> Result<String, ValuesEditError> {
    let mut out = text.to_owned();
    for (key, value) in changes {
        let block = Block::find(file, &out, at)?;
        out = block.set(file, &out, at.key, key, *value)?;
    }
    if out != text {
        verify(file, text, &out, at, changes)?;
    }
    Ok(out)
}

/// Whether `out` reads as `text` with exactly `changes` made: the same ConfigMap, its values
/// equal to the values before with the annotations set or removed, nothing else of the
/// document different.
fn verify(
    file: &str,
    text: &str,
    out: &str,
    at: ValuesRef<'_>,
    changes: &[(&str, Option<&str>)],
) -> Result<(), ValuesEditError> {
    let before = Block::find(file, text, at)?;
    let refused = |what: &str| ValuesEditError::Unsupported {
        file: file.to_owned(),
        line: before.line,
        field: format!("data.{}", at.key),
        what: what.to_owned(),
    };
    let mut expected = before.values(file, text, at.key)?;
    for (key, value) in changes {
        apply(&mut expected, key, *value);
    }
    let after = Block::find(file, out, at)
        .map_err(|_| refused("the edited file does not read back; nothing was written"))?;
    let values_after = after
        .values(file, out, at.key)
        .map_err(|_| refused("the edited values do not parse; nothing was written"))?;
    if !same(&normalised(expected), &normalised(values_after)) {
        return Err(refused(
            "the edit did not read back as only the annotations changed; nothing was written",
        ));
    }
    if after.doc_without_values(out, at.key) != before.doc_without_values(text, at.key) {
        return Err(refused(
            "the edit changed the ConfigMap outside its values; nothing was written",
        ));
    }
    Ok(())
}

/// The literal block scalar `data.<key>` of one ConfigMap document.
struct Block {
    /// The document's byte range.
    doc: std::ops::Range<usize>,
    /// 1-based line of the `key: |` line.
    line: usize,
    /// Byte offsets of the block's content lines' starts, and where the block ends.
    starts: Vec<usize>,
    end: usize,
    /// Indentation of the content.
    indent: usize,
}

/// Leading spaces of a line, `None` for a blank line.
fn indent_of(line: &str) -> Option<usize> {
    let content = line.trim_end_matches(['\n', '\r']);
    let spaces = content.len() - content.trim_start_matches(' ').len();
    (spaces < content.len()).then_some(spaces)
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Block {
    fn find(file: &str, text: &str, at: ValuesRef<'_>) -> Result<Block, ValuesEditError> {
        let lines = LineIndex::new(text);
        let docs = positions(text, &lines).ok_or_else(|| ValuesEditError::NotYaml {
            file: file.to_owned(),
        })?;
        let matching: Vec<&DocPositions> = docs
            .iter()
            .filter(|d| {
                let Some(root) = d.root() else {
                    return false;
                };
                let meta = entry(root, "metadata").map(|e| &e.value);
                scalar(root, "kind") == Some("ConfigMap")
                    && at.configmap.is_none_or(|name| {
                        meta.and_then(|m| scalar(m, "name")).is_some_and(|written| {
                            written == name
                                || at.vars.is_some_and(|vars| {
                                    crate::cluster_edit::substitute(written, vars).0 == name
                                })
                        })
                    })
                    && entry(root, "data").is_some_and(|d| entry(&d.value, at.key).is_some())
            })
            .collect();
        let doc = match matching.as_slice() {
            [] => {
                return Err(ValuesEditError::NotFound {
                    file: file.to_owned(),
                    configmap: at.shown(),
                    key: at.key.to_owned(),
                });
            }
            [one] => *one,
            many => {
                return Err(ValuesEditError::Ambiguous {
                    file: file.to_owned(),
                    configmap: at.shown(),
                    key: at.key.to_owned(),
                    lines: many.iter().map(|d| d.start().line).collect(),
                });
            }
        };
        let values = doc
            .root()
            .and_then(|r| entry(r, "data"))
            .and_then(|d| entry(&d.value, at.key))
            .ok_or_else(|| ValuesEditError::NotYaml {
                file: file.to_owned(),
            })?;
        let field = format!("data.{}", at.key);
        let unsupported = |what: &str| ValuesEditError::Unsupported {
            file: file.to_owned(),
            line: values.key_at.line,
            field: field.clone(),
            what: what.to_owned(),
        };
        if !matches!(values.value, Node::Scalar { .. }) {
            return Err(unsupported("not a string"));
        }
        // The header: what follows `key:` on its line.
        let header_end = next_line(text, values.key_at.offset);
        let key_line = text[values.key_at.offset..header_end].trim_end_matches(['\n', '\r']);
        let header = key_line
            .find(':')
            .map_or("", |i| key_line[i + 1..].trim_start());
        let Some(indicators) = header.strip_prefix('|') else {
            return Err(unsupported(
                "not a literal block scalar (|); upkeep edits values written as data.values: |",
            ));
        };
        let indicators = indicators.split(" #").next().unwrap_or("").trim();
        if !matches!(indicators, "" | "-" | "+") {
            return Err(unsupported(
                "a block scalar with an explicit indentation indicator",
            ));
        }
        // The content: the lines more indented than the `key:` line (blank lines within).
        let parent_indent = values.key_at.column - 1;
        let limit = doc.range.end.min(text.len());
        let mut starts = Vec::new();
        let mut indent = None;
        let mut offset = header_end;
        let mut end = header_end;
        while offset < limit {
            let next = next_line(text, offset);
            if let Some(i) = indent_of(&text[offset..next]) {
                match indent {
                    None if i > parent_indent => indent = Some(i),
                    Some(n) if i >= n => {}
                    _ => break,
                }
                end = next;
            }
            starts.push(offset);
            offset = next;
        }
        let Some(indent) = indent else {
            return Err(unsupported("empty values"));
        };
        // Blank lines after the last content line are left out (never edited).
        starts.retain(|&s| s < end);
        Ok(Block {
            doc: doc.range.clone(),
            line: values.key_at.line,
            starts,
            end,
            indent,
        })
    }

    /// The values as text, each line without the block's indentation.
    fn inner(&self, text: &str) -> String {
        let mut out = String::new();
        for (i, &s) in self.starts.iter().enumerate() {
            let e = self.starts.get(i + 1).copied().unwrap_or(self.end);
            let line = &text[s..e];
            match indent_of(line) {
                Some(_) => out.push_str(&line[self.indent..]),
                None => out.push_str(&line[line.trim_end_matches(['\n', '\r']).len()..]),
            }
        }
        out
    }

    /// Outer byte offset of inner line `i` (0-based) at inner byte column `col`.
    fn outer(&self, i: usize, col: usize) -> usize {
        match self.starts.get(i) {
            Some(&s) => s + self.indent + col,
            None => self.end,
        }
    }

    /// Outer byte offset of the start of inner line `i` (the whole line, indentation included).
    fn outer_line(&self, i: usize) -> usize {
        self.starts.get(i).copied().unwrap_or(self.end)
    }

    /// The values as read through the whole document, as Kubernetes and then Helm read them.
    fn values(&self, file: &str, text: &str, key: &str) -> Result<Value, ValuesEditError> {
        let not_yaml = || ValuesEditError::ValuesNotYaml {
            file: file.to_owned(),
            line: self.line,
            key: key.to_owned(),
        };
        let doc: Value = crate::yaml::from_str(&text[self.doc.clone()]).map_err(|_| {
            ValuesEditError::NotYaml {
                file: file.to_owned(),
            }
        })?;
        let inner = doc
            .get("data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .ok_or_else(not_yaml)?;
        crate::yaml::from_str(inner).map_err(|_| not_yaml())
    }

    /// The ConfigMap document without `data.<key>`: what must not change.
    fn doc_without_values(&self, text: &str, key: &str) -> Option<Value> {
        let mut doc: Value = crate::yaml::from_str(&text[self.doc.clone()]).ok()?;
        if let Value::Mapping(top) = &mut doc {
            for (k, v) in top.iter_mut() {
                if k.as_str() == Some("data")
                    && let Value::Mapping(data) = v
                {
                    data.retain(|(k, _)| k.as_str() != Some(key));
                }
            }
        }
        Some(doc)
    }

    /// The text with the annotation `key` set to `value` (or removed) in the block.
    fn set(
        &self,
        file: &str,
        text: &str,
        values_key: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<String, ValuesEditError> {
        let inner = self.inner(text);
        let lines = LineIndex::new(&inner);
        let field = format!("data.{values_key}: {}[{key:?}]", ANNOTATIONS_PATH.join("."));
        let unsupported = |inner_line: usize, what: &str| ValuesEditError::Unsupported {
            file: file.to_owned(),
            line: self.line + inner_line,
            field: field.clone(),
            what: what.to_owned(),
        };
        let docs = positions(&inner, &lines).ok_or_else(|| ValuesEditError::ValuesNotYaml {
            file: file.to_owned(),
            line: self.line,
            key: values_key.to_owned(),
        })?;
        let [doc] = docs.as_slice() else {
            return Err(unsupported(1, "not one YAML document"));
        };
        let Some(mut node) = doc.root() else {
            return Err(unsupported(1, "empty values"));
        };
        let mut annotations = None;
        for (depth, seg) in ANNOTATIONS_PATH.iter().enumerate() {
            let Node::Map { entries, at } = node else {
                return Err(unsupported(node.at().line, "not a mapping"));
            };
            let Some(first) = entries.first() else {
                return Err(unsupported(at.line, "an empty flow mapping ({})"));
            };
            if is_flow(&inner, first.key_at.offset) {
                return Err(unsupported(first.key_at.line, "a flow mapping ({…})"));
            }
            if let Some(e) = entry(node, seg) {
                if depth + 1 == ANNOTATIONS_PATH.len() {
                    annotations = Some(e);
                } else {
                    node = &e.value;
                }
                continue;
            }
            // The rest of the path is missing: nothing to remove, or it is inserted as the
            // first keys of the deepest mapping that exists.
            let Some(v) = value else {
                return Ok(text.to_owned());
            };
            let base = first.key_at.column - 1;
            let mut new = Vec::new();
            for (j, s) in ANNOTATIONS_PATH[depth..].iter().enumerate() {
                new.push((base + 2 * j, format!("{s}:")));
            }
            new.push((
                base + 2 * (ANNOTATIONS_PATH.len() - depth),
                format!("{key}: {}", quoted(v)),
            ));
            let at = first.key_at.line - 1;
            return Ok(self.splice_lines(text, at, at, &new));
        }
        let Some(ann) = annotations else {
            return Ok(text.to_owned());
        };
        let ann_line = ann.key_at.line - 1;
        match &ann.value {
            Node::Map { entries, .. } if !entries.is_empty() => {
                let first = &entries[0];
                if is_flow(&inner, first.key_at.offset) {
                    return Err(unsupported(first.key_at.line, "a flow mapping ({…})"));
                }
                let existing = entries.iter().find(|e| e.key == key);
                match (existing, value) {
                    (Some(e), v) => {
                        let Node::Scalar { at, .. } = &e.value else {
                            return Err(unsupported(e.key_at.line, "not a string value"));
                        };
                        if at.line != e.key_at.line {
                            return Err(unsupported(
                                e.key_at.line,
                                "a value on another line than its key",
                            ));
                        }
                        let line = e.key_at.line - 1;
                        match v {
                            Some(v) => {
                                let start = at.offset - line_start(&inner, at.offset);
                                let end = scalar_end(&inner, at.offset)
                                    .ok_or_else(|| unsupported(at.line, "an unterminated quote"))?
                                    - line_start(&inner, at.offset);
                                let new = quoted(v);
                                let old = &inner[at.offset..at.offset + (end - start)];
                                if old == new {
                                    return Ok(text.to_owned());
                                }
                                let (from, to) = (self.outer(line, start), self.outer(line, end));
                                Ok(format!("{}{new}{}", &text[..from], &text[to..]))
                            }
                            None if entries.len() == 1 && line == ann_line + 1 => {
                                // The last one goes with its `annotations:` key.
                                Ok(self.splice_lines(text, ann_line, line + 1, &[]))
                            }
                            None => Ok(self.splice_lines(text, line, line + 1, &[])),
                        }
                    }
                    (None, Some(v)) => {
                        let at = first.key_at.line - 1;
                        let new = [(first.key_at.column - 1, format!("{key}: {}", quoted(v)))];
                        Ok(self.splice_lines(text, at, at, &new))
                    }
                    (None, None) => Ok(text.to_owned()),
                }
            }
            // `annotations: {}` or `annotations:` (null): the line becomes a block mapping.
            Node::Map { .. } | Node::Scalar { .. } => {
                let Some(v) = value else {
                    return Ok(text.to_owned());
                };
                let start = line_start(&inner, ann.key_at.offset);
                let line = &inner[start..next_line(&inner, ann.key_at.offset)];
                let rest = line.trim_end_matches(['\n', '\r']).trim_start()
                    [ANNOTATIONS_PATH[2].len()..]
                    .trim_start_matches(':')
                    .trim();
                if !matches!(rest, "" | "{}" | "~" | "null") {
                    return Err(unsupported(ann.key_at.line, "an unexpected value"));
                }
                let indent = ann.key_at.column - 1;
                let new = [
                    (indent, format!("{}:", ANNOTATIONS_PATH[2])),
                    (indent + 2, format!("{key}: {}", quoted(v))),
                ];
                Ok(self.splice_lines(text, ann_line, ann_line + 1, &new))
            }
            Node::Seq { .. } => Err(unsupported(ann.key_at.line, "a list, not a mapping")),
        }
    }

    /// Replaces inner lines `from..to` (0-based) with `new` (`(indent, content)` each, indented
    /// further by the block's indentation).
    fn splice_lines(&self, text: &str, from: usize, to: usize, new: &[(usize, String)]) -> String {
        let nl = eol(text);
        let mut lines = String::new();
        for (indent, content) in new {
            lines.push_str(&" ".repeat(self.indent + indent));
            lines.push_str(content);
            lines.push_str(nl);
        }
        let (a, b) = (self.outer_line(from), self.outer_line(to));
        format!("{}{lines}{}", &text[..a], &text[b..])
    }
}

/// Where the single-line scalar starting at `start` ends (after its closing quote, or before
/// a comment or the line end for a plain one).
fn scalar_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text[start..];
    let bytes = rest.as_bytes();
    match bytes.first()? {
        b'"' => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(start + i + 1),
                    b'\n' => return None,
                    _ => i += 1,
                }
            }
            None
        }
        b'\'' => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    b'\'' => return Some(start + i + 1),
                    b'\n' => return None,
                    _ => i += 1,
                }
            }
            None
        }
        _ => {
            let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
            let line = line.split(" #").next().unwrap_or(line);
            Some(start + line.trim_end().len())
        }
    }
}

/// `annotations[key] = value` (or removed) in parsed values, creating missing mappings; an
/// `annotations` mapping left empty is removed, as the edit removes its key.
fn apply(values: &mut Value, key: &str, value: Option<&str>) {
    fn child<'v>(node: &'v mut Value, seg: &str, create: bool) -> Option<&'v mut Value> {
        if matches!(node, Value::Null) && create {
            *node = Value::Mapping(Vec::new());
        }
        let Value::Mapping(m) = node else {
            return None;
        };
        let i = match m.iter().position(|(k, _)| k.as_str() == Some(seg)) {
            Some(i) => i,
            None if create => {
                m.push((Value::String(seg.to_owned()), Value::Mapping(Vec::new())));
                m.len() - 1
            }
            None => return None,
        };
        Some(&mut m[i].1)
    }
    let create = value.is_some();
    let mut node = values;
    for seg in ANNOTATIONS_PATH {
        match child(node, seg, create) {
            Some(n) => node = n,
            None => return,
        }
    }
    if matches!(node, Value::Null) {
        *node = Value::Mapping(Vec::new());
    }
    if let Value::Mapping(m) = node {
        m.retain(|(k, _)| k.as_str() != Some(key));
        if let Some(v) = value {
            m.push((Value::String(key.to_owned()), Value::String(v.to_owned())));
        }
    }
}

/// Values with an empty or null `annotations` taken as none (both mean no annotation to the
/// chart).
fn normalised(mut values: Value) -> Value {
    fn strip(node: &mut Value, path: &[&str]) {
        let Value::Mapping(m) = node else {
            return;
        };
        match path {
            [last] => m.retain(|(k, v)| {
                k.as_str() != Some(last)
                    || !(v.is_null() || v.as_mapping().is_some_and(<[_]>::is_empty))
            }),
            [seg, rest @ ..] => {
                for (k, v) in m.iter_mut() {
                    if k.as_str() == Some(seg) {
                        strip(v, rest);
                    }
                }
            }
            [] => {}
        }
    }
    strip(&mut values, &ANNOTATIONS_PATH);
    values
}

/// Equal as YAML data: mappings compared without regard to key order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(k2, _)| k2 == k)
                        .is_some_and(|(_, v2)| same(v, v2))
                })
        }
        (Value::Sequence(x), Value::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

#[cfg(test)]
#[path = "values_annotations_tests.rs"]
mod tests;

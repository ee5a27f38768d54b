//! A key inside YAML embedded in a block scalar: `data.values: |` of the cluster App's values
//! ConfigMap, where Giant Swarm's release-based clusters keep `global.release.version`.
//!
//! Why it is shaped this way: the values are YAML inside YAML, and both layers are written by
//! people. So nothing is re-serialised at either layer. The block's lines are read as the YAML
//! spec reads a literal block (`|`, `|-`, `|+`, an indentation indicator such as `|2`, CRLF
//! line ends), and what that reading gives is compared with the parser's value of the scalar
//! first: a block upkeep would read differently is refused, never guessed. A line of the block
//! is the line of the values with the block's indentation in front, so the one scalar the
//! values edit replaces ([`set_values_key`], the same byte-exact replacement as every other
//! version edit) is replaced at the same bytes of the manifest.
//!
//! Every edit is verified at both layers before it is returned: the values after the edit
//! parse, and equal the values before it with only the key changed (as parsed, so a second
//! copy of the key, an anchor or a flow mapping elsewhere cannot hide a change); and the
//! manifest after the edit parses, and its block reads as exactly the new values.

use std::ops::Range;

use super::object::{ObjectSel, Vars, object_doc};
use super::{ClusterEditError, ValuesPlace, VersionEdit, VersionPlace, entry, replace_scalar};
use crate::locate::{LineIndex, Node, Scan, scan};
use crate::yaml::Value;

/// The scalar at `key_path` in a values text and where it is.
struct Found {
    /// Byte offset of the scalar's first byte.
    offset: usize,
    line: usize,
    value: String,
}

fn split_path(key_path: &str) -> Vec<&str> {
    key_path.split('.').collect()
}

fn values_place(key_path: &str) -> VersionPlace {
    VersionPlace::Values(ValuesPlace {
        key_path: key_path.to_owned(),
        ..ValuesPlace::default()
    })
}

/// Finds `key_path` in the values `text` (named `where_` in errors; its lines are reported as
/// `line_base + line`).
fn find_key(
    where_: &str,
    field: &str,
    text: &str,
    key_path: &str,
    line_base: usize,
) -> Result<Option<Found>, ClusterEditError> {
    let segments = split_path(key_path);
    if segments.iter().any(|s| s.is_empty()) {
        return Err(super::unsupported(
            where_,
            line_base + 1,
            field,
            "the values key is not a dotted path (a.b.c)",
        ));
    }
    let lines = LineIndex::new(text);
    let docs = match scan(text, &lines) {
        Scan::Parsed(docs) => docs,
        Scan::Invalid { at, message, .. } => {
            return Err(ClusterEditError::ValuesNotYaml {
                file: where_.to_owned(),
                line: line_base + at.line,
                field: field.to_owned(),
                reason: message,
            });
        }
        Scan::TooDeep(at) | Scan::TooManyNodes(at) => {
            return Err(ClusterEditError::ValuesNotYaml {
                file: where_.to_owned(),
                line: line_base + at.line,
                field: field.to_owned(),
                reason: "nested too deep, or too many nodes".to_owned(),
            });
        }
    };
    let with_root: Vec<_> = docs.iter().filter(|d| d.root().is_some()).collect();
    let doc = match with_root.as_slice() {
        [] => return Ok(None),
        [doc] => doc,
        [_, second, ..] => {
            return Err(super::unsupported(
                where_,
                line_base + second.start().line,
                field,
                "the values hold more than one YAML document",
            ));
        }
    };
    let mut node = doc.root().expect("filtered");
    for seg in &segments {
        let Node::Map { entries, .. } = node else {
            return Ok(None);
        };
        let hits: Vec<_> = entries.iter().filter(|e| e.key == *seg).collect();
        match hits.as_slice() {
            [] => return Ok(None),
            [one] => node = &one.value,
            [first, ..] => {
                return Err(ClusterEditError::DuplicateKey {
                    file: where_.to_owned(),
                    line: line_base + first.key_at.line,
                    field: field.to_owned(),
                    key: (*seg).to_owned(),
                    lines: hits.iter().map(|e| line_base + e.key_at.line).collect(),
                });
            }
        }
    }
    match node {
        Node::Scalar { at, value, .. } => Ok(Some(Found {
            offset: at.offset,
            line: at.line,
            value: value.clone(),
        })),
        other => Err(super::unsupported(
            where_,
            line_base + other.at().line,
            field,
            "the values key holds a mapping or list, not a version",
        )),
    }
}

/// The line (`line_base` + its line in the values) and value of `key_path` in the values
/// `text` (named `where_` in errors); `None` when it is missing.
pub fn key_line(
    where_: &str,
    text: &str,
    key_path: &str,
    line_base: usize,
) -> Result<Option<(usize, String)>, ClusterEditError> {
    Ok(find_key(where_, key_path, text, key_path, line_base)?
        .map(|f| (line_base + f.line, f.value)))
}

/// The value at `key_path` in the values `text`, as written; `None` when it is missing.
pub fn values_key(text: &str, key_path: &str) -> Result<Option<String>, ClusterEditError> {
    Ok(find_key("values", key_path, text, key_path, 0)?.map(|f| f.value))
}

/// The values as parsed, with `path` set to `new` (`false` when the path is not there).
fn set_path(value: &mut Value, path: &[&str], new: Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        *value = new;
        return true;
    };
    let Value::Mapping(entries) = value else {
        return false;
    };
    match entries.iter_mut().find(|(k, _)| k.as_str() == Some(first)) {
        Some((_, v)) => set_path(v, rest, new),
        None => false,
    }
}

/// The edit of a values text, and the bytes it replaced.
struct ValuesEdit {
    edit: VersionEdit,
    /// The replaced bytes in the old text.
    span: Range<usize>,
    /// What replaced them.
    bytes: String,
}

fn edit_values(
    where_: &str,
    field: &str,
    text: &str,
    key_path: &str,
    version: &str,
    line_base: usize,
) -> Result<ValuesEdit, ClusterEditError> {
    let place = values_place(key_path);
    let Some(found) = find_key(where_, field, text, key_path, line_base)? else {
        return Err(ClusterEditError::ObjectFieldMissing {
            file: where_.to_owned(),
            line: line_base + 1,
            object: "the values".to_owned(),
            field: key_path.to_owned(),
            place: Box::new(place),
        });
    };
    if found.value.contains("${") {
        return Err(ClusterEditError::Substituted {
            file: where_.to_owned(),
            line: line_base + found.line,
            field: field.to_owned(),
            value: found.value,
        });
    }
    let new_text = replace_scalar(
        where_,
        text,
        found.offset,
        line_base + found.line,
        field,
        &found.value,
        version,
        false,
    )?;
    // The replaced span: the scalar's bytes in the old text, and what took their place.
    let (start, old_end, _) = super::scalar_span(text, found.offset).ok_or_else(|| {
        super::unsupported(where_, line_base + found.line, field, "a block scalar")
    })?;
    let new_end = new_text.len() - (text.len() - old_end);
    let bytes = new_text[start..new_end].to_owned();
    verify_values(
        where_,
        field,
        text,
        &new_text,
        key_path,
        version,
        line_base + found.line,
    )?;
    Ok(ValuesEdit {
        edit: VersionEdit {
            new_text,
            old: found.value,
            line: line_base + found.line,
        },
        span: start..old_end,
        bytes,
    })
}

/// The new values parse and equal the old ones with only `key_path` set to `version`.
fn verify_values(
    where_: &str,
    field: &str,
    old: &str,
    new: &str,
    key_path: &str,
    version: &str,
    line: usize,
) -> Result<(), ClusterEditError> {
    let parse = |t: &str| crate::yaml::from_str::<Value>(t);
    let unverified = |what: &str| super::unsupported(where_, line, field, what);
    let mut before = parse(old).map_err(|e| ClusterEditError::ValuesNotYaml {
        file: where_.to_owned(),
        line,
        field: field.to_owned(),
        reason: e.to_string(),
    })?;
    let after = parse(new).map_err(|_| unverified("the edited values do not parse"))?;
    if !set_path(
        &mut before,
        &split_path(key_path),
        Value::String(version.to_owned()),
    ) {
        return Err(unverified("the values key does not read as a key"));
    }
    if before != after {
        return Err(unverified(
            "the edited values differ in more than the key (an anchor or alias?)",
        ));
    }
    Ok(())
}

/// Rewrites the scalar at the dotted `key_path` of the values YAML `text` (a ConfigMap's
/// `data.values` string) to `version`, changing only its bytes; verified by parsing both
/// texts (see the module header). Errors name `values` as the file.
pub fn set_values_key(
    text: &str,
    key_path: &str,
    version: &str,
) -> Result<VersionEdit, ClusterEditError> {
    set_values_key_at("values", text, key_path, version)
}

/// [`set_values_key`], naming the values `where_` in errors (e.g.
/// `ConfigMap org-acme/dev01-userconfig data.values`).
pub fn set_values_key_at(
    where_: &str,
    text: &str,
    key_path: &str,
    version: &str,
) -> Result<VersionEdit, ClusterEditError> {
    edit_values(where_, key_path, text, key_path, version, 0).map(|e| e.edit)
}

/// A literal block scalar read line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesBlock {
    /// The block's text without its indentation: every line, with `\n` line ends.
    pub text: String,
    /// 1-based line of the manifest holding the block's first line.
    pub first_line: usize,
    /// For each line of `text`, the byte offset in the manifest where it starts (`None` for
    /// an empty line shorter than the indentation).
    starts: Vec<Option<usize>>,
}

impl ValuesBlock {
    /// The line of the manifest holding line `k` (0-based) of the values.
    fn manifest_line(&self, k: usize) -> usize {
        self.first_line + k
    }
}

/// The literal block at `data.<data_key>` of the object `sel` in `text`.
pub fn read_block(
    file: &str,
    text: &str,
    sel: &ObjectSel<'_>,
    vars: &Vars,
    data_key: &str,
) -> Result<ValuesBlock, ClusterEditError> {
    let doc = object_doc(file, text, sel, vars)?;
    let field = format!("data.{data_key}");
    let root = doc.root().ok_or_else(|| ClusterEditError::NotYaml {
        file: file.to_owned(),
    })?;
    let data = entry(root, "data");
    let Some(value_entry) = data.and_then(|d| entry(&d.value, data_key)) else {
        return Err(ClusterEditError::ObjectFieldMissing {
            file: file.to_owned(),
            line: data.map_or(doc.start().line, |d| d.key_at.line),
            object: sel.display(),
            field,
            place: Box::new(VersionPlace::Values(ValuesPlace {
                data_key: data_key.to_owned(),
                ..ValuesPlace::default()
            })),
        });
    };
    let Node::Scalar { at, value, .. } = &value_entry.value else {
        return Err(super::unsupported(
            file,
            value_entry.key_at.line,
            &field,
            "not a string",
        ));
    };
    let not_literal = || {
        ClusterEditError::Unsupported {
            file: file.to_owned(),
            line: value_entry.key_at.line,
            field: field.clone(),
            what: "not a literal block scalar (`|`); write the values as `values: |` followed by the YAML, indented".to_owned(),
        }
    };
    // The header (`|`, `|-`, `|2`, …) follows the key's `:`; the parser's mark for a block
    // scalar is where its content starts, so the header is found from the key.
    let Some(header_at) =
        block_header(text, value_entry.key_at.offset, &value_entry.key).filter(|&h| h <= at.offset)
    else {
        return Err(not_literal());
    };
    let header_end = text[header_at..]
        .find('\n')
        .map_or(text.len(), |i| header_at + i);
    let header = text[header_at..header_end].trim_end_matches('\r');
    let Some(indicators) = header.strip_prefix('|') else {
        return Err(not_literal());
    };
    let ind_len = indicators
        .find(|c: char| !(c.is_ascii_digit() || c == '+' || c == '-'))
        .unwrap_or(indicators.len());
    let (ind, after) = indicators.split_at(ind_len);
    if !(after.trim().is_empty()
        || after.starts_with([' ', '\t']) && after.trim_start().starts_with('#'))
    {
        return Err(not_literal());
    }
    let explicit: Option<usize> = ind
        .chars()
        .find(char::is_ascii_digit)
        .and_then(|c| c.to_digit(10))
        .map(|d| d as usize);
    let chomp = if ind.contains('-') {
        '-'
    } else if ind.contains('+') {
        '+'
    } else {
        ' '
    };
    let parent_indent = value_entry.key_at.column - 1;
    let content_start = (header_end + 1).min(text.len());
    let body = &text[content_start..];
    let indent = match explicit {
        Some(n) => parent_indent + n,
        None => body
            .split_inclusive('\n')
            .map(|l| l.trim_end_matches(['\n', '\r']))
            .find(|l| !l.trim_start_matches(' ').is_empty())
            .map_or(parent_indent + 1, |l| {
                l.len() - l.trim_start_matches(' ').len()
            }),
    };
    let mut lines: Vec<&str> = Vec::new();
    let mut starts = Vec::new();
    let mut offset = content_start;
    if indent > parent_indent {
        for raw in body.split_inclusive('\n') {
            let l = raw.trim_end_matches('\n');
            let l = l.strip_suffix('\r').unwrap_or(l);
            let spaces = l.len() - l.trim_start_matches(' ').len();
            if l.trim_start_matches(' ').is_empty() {
                if spaces > indent {
                    lines.push(&l[indent..]);
                    starts.push(Some(offset + indent));
                } else {
                    lines.push("");
                    starts.push(None);
                }
            } else if spaces >= indent {
                lines.push(&l[indent..]);
                starts.push(Some(offset + indent));
            } else {
                break;
            }
            offset += raw.len();
        }
    }
    // Trailing empty lines belong to the block only for chomping; they are not values lines
    // that could be edited, but they stay in `text` so lines map one to one.
    let mut text_out = String::with_capacity(body.len());
    for l in &lines {
        text_out.push_str(l);
        text_out.push('\n');
    }
    let last_content = lines.iter().rposition(|l| !l.is_empty());
    let reads = match (chomp, last_content) {
        (_, None) if chomp != '+' => String::new(),
        ('-', Some(k)) => lines[..=k].join("\n"),
        (' ', Some(k)) => lines[..=k].join("\n") + "\n",
        _ => text_out.clone(),
    };
    if reads != *value {
        return Err(super::unsupported(
            file,
            value_entry.key_at.line,
            &field,
            "the block scalar does not read as upkeep reads a literal block (tabs in its indentation, or a line less indented than its first?)",
        ));
    }
    let first_line = text[..content_start].matches('\n').count() + 1;
    Ok(ValuesBlock {
        text: text_out,
        first_line,
        starts,
    })
}

/// Where the block header of the value of the key written at `key_at` starts: after the key
/// (plain or quoted), blanks, `:` and blanks on the same line; `None` when what follows is not
/// a block header there (a tag, an anchor, a header on another line).
fn block_header(text: &str, key_at: usize, key: &str) -> Option<usize> {
    let rest = &text[key_at..];
    let after_key = match rest.as_bytes().first()? {
        q @ (b'"' | b'\'') => {
            let close = rest[1..].find(char::from(*q))?;
            key_at + 1 + close + 1
        }
        _ if rest.starts_with(key) => key_at + key.len(),
        _ => return None,
    };
    let rest = text[after_key..].trim_start_matches([' ', '\t']);
    let rest_at = text.len() - rest.len();
    let rest = rest.strip_prefix(':')?;
    let header = rest.trim_start_matches([' ', '\t']);
    header
        .starts_with(['|', '>'])
        .then(|| rest_at + 1 + (rest.len() - header.len()))
}

/// Rewrites `key_path` inside the values block `data.<data_key>` of the ConfigMap `sel` in
/// `text` (the manifest `file`) to `version`; every other byte of the manifest is kept, and
/// the edit is verified at both layers (see the module header).
#[allow(clippy::too_many_arguments)]
pub fn set_config_map_values(
    file: &str,
    text: &str,
    sel: &ObjectSel<'_>,
    vars: &Vars,
    data_key: &str,
    key_path: &str,
    version: &str,
) -> Result<VersionEdit, ClusterEditError> {
    let block = read_block(file, text, sel, vars, data_key)?;
    let field = format!("data.{data_key}: {key_path}");
    let line_base = block.first_line - 1;
    let e = edit_values(file, &field, &block.text, key_path, version, line_base)?;
    if e.edit.new_text == block.text {
        return Ok(VersionEdit {
            new_text: text.to_owned(),
            old: e.edit.old,
            line: e.edit.line,
        });
    }
    // The values line of the edit, and its column.
    let k = block.text[..e.span.start].matches('\n').count();
    let line_start = block.text[..e.span.start].rfind('\n').map_or(0, |i| i + 1);
    let unmappable = || super::unsupported(file, e.edit.line, &field, "the edit spans lines");
    if block.text[e.span.clone()].contains('\n') || e.bytes.contains('\n') {
        return Err(unmappable());
    }
    let Some(Some(start)) = block.starts.get(k) else {
        return Err(unmappable());
    };
    let from = start + (e.span.start - line_start);
    let to = from + e.span.len();
    if text.get(from..to) != block.text.get(e.span.clone()) {
        return Err(unmappable());
    }
    let new_text = format!("{}{}{}", &text[..from], e.bytes, &text[to..]);
    // Read the manifest again: the block must read as exactly the new values.
    let again = read_block(file, &new_text, sel, vars, data_key)?;
    if again.text != e.edit.new_text {
        return Err(super::unsupported(
            file,
            e.edit.line,
            &field,
            "the edited block does not read back as the edited values",
        ));
    }
    debug_assert_eq!(block.manifest_line(k), e.edit.line);
    Ok(VersionEdit {
        new_text,
        old: e.edit.old,
        line: e.edit.line,
    })
}

#[cfg(test)]
mod tests;

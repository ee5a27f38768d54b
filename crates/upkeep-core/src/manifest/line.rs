//! Reading one line that carries a marker: where its comment starts, which mapping key it has,
//! and the one scalar the marker addresses.
//!
//! This is a small left-to-right reader of a single YAML line, not a YAML parser: it knows
//! indentation, `- ` sequence entries, plain and quoted keys, node properties (`&anchor`,
//! `!tag`), quoted and plain scalars, and one-line flow collections. That is enough to tell a
//! comment from a `#` inside a quoted string and to find the exact bytes of the value, which
//! is all a byte-level edit needs. Anything it cannot read is reported, never guessed at.

use std::ops::Range;

use super::Quote;

/// A scalar on the line: its quote style, the byte range of its content (inside the quotes)
/// relative to the line, and its value with quoting undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scalar {
    pub(super) quote: Quote,
    pub(super) inner: Range<usize>,
    pub(super) value: String,
}

/// What the line holds before its comment.
#[derive(Debug)]
pub(super) enum Value {
    /// Nothing (`key:` opening a nested block, or a block scalar header `|`, `>`).
    None,
    /// One scalar.
    Scalar(Scalar),
    /// The value scalars of a one-line flow collection, with their keys in a flow mapping.
    Flow(Vec<(Option<String>, Scalar)>),
    /// An alias (`*name`): the value lives elsewhere.
    Alias,
}

/// A line read up to its comment.
#[derive(Debug)]
pub(super) struct Line {
    pub(super) key: Option<String>,
    pub(super) value: Value,
    /// Byte index of the `#` that starts the comment, if any.
    pub(super) comment_at: Option<usize>,
    /// The whole line is a comment (a commented-out field).
    pub(super) comment_only: bool,
}

/// Why a line could not be read; the byte index where reading stopped.
#[derive(Debug)]
pub(super) struct Unreadable(pub(super) usize);

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// True when `:` at `i` is a mapping indicator (followed by whitespace or the end; in flow
/// context also by a flow indicator).
fn is_colon_indicator(b: &[u8], i: usize, flow: bool) -> bool {
    b[i] == b':'
        && (i + 1 == b.len()
            || is_ws(b[i + 1])
            || (flow && matches!(b[i + 1], b',' | b'[' | b']' | b'{' | b'}')))
}

/// Reads one line (without its line break).
pub(super) fn read_line(line: &str) -> Result<Line, Unreadable> {
    let b = line.as_bytes();
    let mut i = 0;
    if line.starts_with('\u{feff}') {
        i = '\u{feff}'.len_utf8();
    }
    // A document marker may carry content on the same line (`--- 1.2.3`).
    if (line[i..].starts_with("---") || line[i..].starts_with("..."))
        && (b.len() == i + 3 || is_ws(b[i + 3]))
    {
        i += 3;
    }
    i = skip_ws(b, i);
    if i < b.len() && b[i] == b'#' {
        return Ok(Line {
            key: None,
            value: Value::None,
            comment_at: Some(i),
            comment_only: true,
        });
    }
    // Sequence entries: `- `, possibly nested (`- - x`).
    while i < b.len() && b[i] == b'-' && (i + 1 == b.len() || is_ws(b[i + 1])) {
        i = skip_ws(b, i + 1);
    }
    let mut key = None;
    // A quoted key, or a quoted value.
    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
        let (s, end) = read_quoted(line, i)?;
        let j = skip_ws(b, end);
        if j < b.len() && is_colon_indicator(b, j, false) {
            key = Some(s.value);
            i = j + 1;
        } else {
            return finish(line, None, Value::Scalar(s), end);
        }
    } else if i < b.len() && b[i] != b'{' && b[i] != b'[' {
        // A plain key ends at the first `: ` before any comment.
        let mut j = i;
        while j < b.len() {
            if b[j] == b'#' && j > 0 && is_ws(b[j - 1]) {
                break;
            }
            if is_colon_indicator(b, j, false) {
                key = Some(line[i..j].trim_end().to_owned());
                i = j + 1;
                break;
            }
            j += 1;
        }
    }
    let (value, end) = read_value(line, i)?;
    finish(line, key, value, end)
}

fn finish(line: &str, key: Option<String>, value: Value, end: usize) -> Result<Line, Unreadable> {
    let b = line.as_bytes();
    let j = skip_ws(b, end);
    if j == b.len() {
        return Ok(Line {
            key,
            value,
            comment_at: None,
            comment_only: false,
        });
    }
    // A comment needs whitespace before its `#`, unless nothing precedes it.
    if b[j] == b'#' && (j == 0 || is_ws(b[j - 1])) {
        return Ok(Line {
            key,
            value,
            comment_at: Some(j),
            comment_only: false,
        });
    }
    Err(Unreadable(j))
}

/// Reads the value part of a block mapping entry or sequence item, starting at `i`.
fn read_value(line: &str, i: usize) -> Result<(Value, usize), Unreadable> {
    let b = line.as_bytes();
    let mut i = skip_ws(b, i);
    // Node properties: `&anchor`, `!tag`, `!!str`, in any order.
    while i < b.len() && (b[i] == b'&' || b[i] == b'!') {
        while i < b.len() && !is_ws(b[i]) {
            i += 1;
        }
        i = skip_ws(b, i);
    }
    if i == b.len() || (b[i] == b'#' && i > 0 && is_ws(b[i - 1])) {
        return Ok((Value::None, i));
    }
    match b[i] {
        b'*' => {
            let mut j = i;
            while j < b.len() && !is_ws(b[j]) {
                j += 1;
            }
            Ok((Value::Alias, j))
        }
        b'|' | b'>' => {
            // Block scalar header: indicators only (`|-`, `>+2`).
            let mut j = i + 1;
            while j < b.len() && (b[j] == b'-' || b[j] == b'+' || b[j].is_ascii_digit()) {
                j += 1;
            }
            Ok((Value::None, j))
        }
        b'"' | b'\'' => {
            let (s, end) = read_quoted(line, i)?;
            Ok((Value::Scalar(s), end))
        }
        b'{' | b'[' => {
            let mut out = Vec::new();
            let end = read_flow(line, i, &mut out)?;
            Ok((Value::Flow(out), end))
        }
        // Indicators that cannot start a plain scalar.
        b'@' | b'`' | b'%' | b',' | b']' | b'}' => Err(Unreadable(i)),
        _ => {
            let mut j = i;
            while j < b.len() && !(b[j] == b'#' && j > i && is_ws(b[j - 1])) {
                // `a: b: c` is not YAML.
                if is_colon_indicator(b, j, false) {
                    return Err(Unreadable(j));
                }
                j += 1;
            }
            let end = i + line[i..j].trim_end_matches([' ', '\t']).len();
            Ok((
                Value::Scalar(Scalar {
                    quote: Quote::Plain,
                    inner: i..end,
                    value: line[i..end].to_owned(),
                }),
                end,
            ))
        }
    }
}

/// Reads a quoted scalar starting at the quote at `i`; returns it and the index after the
/// closing quote. A scalar that does not close on this line is unreadable here.
fn read_quoted(line: &str, i: usize) -> Result<(Scalar, usize), Unreadable> {
    let b = line.as_bytes();
    let quote = b[i];
    let mut j = i + 1;
    let mut value = String::new();
    let mut run = j;
    while j < b.len() {
        if quote == b'\'' && b[j] == b'\'' {
            if b.get(j + 1) == Some(&b'\'') {
                value.push_str(&line[run..=j]);
                j += 2;
                run = j;
                continue;
            }
            value.push_str(&line[run..j]);
            return Ok((
                Scalar {
                    quote: Quote::Single,
                    inner: i + 1..j,
                    value,
                },
                j + 1,
            ));
        }
        if quote == b'"' && b[j] == b'\\' {
            value.push_str(&line[run..j]);
            let Some(&escaped) = b.get(j + 1) else {
                return Err(Unreadable(j));
            };
            match escaped {
                b'"' | b'\\' | b'/' => value.push(char::from(escaped)),
                b't' => value.push('\t'),
                b'n' => value.push('\n'),
                // Other escapes are kept as written (the escaped character, which may be
                // several bytes long, is copied by the next run); versions never hold them.
                _ => {
                    value.push('\\');
                    j += 1;
                    run = j;
                    continue;
                }
            }
            j += 2;
            run = j;
            continue;
        }
        if quote == b'"' && b[j] == b'"' {
            value.push_str(&line[run..j]);
            return Ok((
                Scalar {
                    quote: Quote::Double,
                    inner: i + 1..j,
                    value,
                },
                j + 1,
            ));
        }
        j += 1;
    }
    Err(Unreadable(i))
}

/// Reads a one-line flow collection starting at `{` or `[` at `i`, collecting the value
/// scalars (mapping values and sequence items, not keys); returns the index after its close.
fn read_flow(
    line: &str,
    i: usize,
    out: &mut Vec<(Option<String>, Scalar)>,
) -> Result<usize, Unreadable> {
    let b = line.as_bytes();
    let close = if b[i] == b'{' { b'}' } else { b']' };
    let mut j = i + 1;
    let mut pending_key: Option<String> = None;
    loop {
        j = skip_ws(b, j);
        let Some(&byte) = b.get(j) else {
            return Err(Unreadable(i));
        };
        match byte {
            c if c == close => return Ok(j + 1),
            b',' => {
                // `{key,}`: a key with a null value; nothing to edit.
                pending_key = None;
                j += 1;
            }
            b':' if is_colon_indicator(b, j, true) => j += 1,
            b'{' | b'[' => {
                pending_key = None;
                j = read_flow(line, j, out)?;
            }
            b'}' | b']' | b'#' => return Err(Unreadable(j)),
            _ => {
                let (scalar, end) = if byte == b'"' || byte == b'\'' {
                    read_quoted(line, j)?
                } else {
                    let mut stop = j;
                    while stop < b.len()
                        && !matches!(b[stop], b',' | b'[' | b']' | b'{' | b'}')
                        && !is_colon_indicator(b, stop, true)
                        && (b[stop] != b'#' || !is_ws(b[stop - 1]))
                    {
                        stop += 1;
                    }
                    // Only YAML's blanks end a scalar (`trim_end` would also eat a lone `\r`,
                    // leave an empty scalar and never move on).
                    let end = j + line[j..stop].trim_end_matches([' ', '\t']).len();
                    (
                        Scalar {
                            quote: Quote::Plain,
                            inner: j..end,
                            value: line[j..end].to_owned(),
                        },
                        end,
                    )
                };
                let after = skip_ws(b, end);
                let is_key =
                    after < b.len() && is_colon_indicator(b, after, true) && pending_key.is_none();
                if is_key {
                    pending_key = Some(scalar.value);
                    j = after + 1;
                } else {
                    out.push((pending_key.take(), scalar));
                    j = end;
                }
            }
        }
    }
}

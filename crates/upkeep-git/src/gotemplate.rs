//! Go `text/template`, the subset Flux's `ImageUpdateAutomation` commit message templates use,
//! rendered over the data Flux gives them (`.AutomationObject`, `.Changed`, `.Values`).
//!
//! Why it is shaped this way:
//! - **A subset, refused loudly.** Flux's documentation shows `range` (one or two variables,
//!   `else`), `if`/`else if`/`else`, `with`, variables (`$x :=`, `$x =`), pipelines, trim
//!   markers, comments, `index`, `len`, `print`/`printf`/`println`, comparisons, `and`/`or`/
//!   `not` and a few Sprig functions (`lower`, `contains`, `toString`, `sha256sum`, `trunc`, …).
//!   Those are implemented with Go's semantics; anything else (`define`/`template`/`block`,
//!   other functions, method arguments) is a [`GoTemplateError`] with the template line, and
//!   the caller falls back to Flux's default message. Unknown functions are found when the
//!   template is parsed, as Go does.
//! - **Go's formatting, because messages are compared.** Values print as `fmt` prints them
//!   (`%v`): maps as `map[k:v]` in sorted key order (Go's `fmtsort`: strings by bytes, structs
//!   field by field), structs as `{a b}`, slices as `[a b]`, a missing map key as
//!   `<no value>`, and `types.NamespacedName` through its `String()` (`namespace/name`).
//!   `range` over a map visits keys in the same sorted order.
//! - **Bounded.** A template is user input run by a controller: evaluation stops with an error
//!   after [`MAX_STEPS`] steps or [`MAX_OUTPUT`] bytes, and nesting deeper than [`MAX_DEPTH`]
//!   is refused when parsing, so no template hangs a run, fills memory or overflows the stack.
//! - **Flux's data from upkeep's changes.** [`flux_data`] builds `update.Result` from
//!   [`ChangeRecord`]s: `FileChanges` by file, then by object (`Kind`, `Namespace`, `Name`
//!   parsed from the record's `Kind namespace/name`; `APIVersion` is not known to upkeep and
//!   is empty), each change's `Setter` as `namespace:name` (upkeep does not record the marker's
//!   `:tag`/`:name`/`:digest` suffix). `Changes` and `Objects` are in sorted file order where
//!   Flux's follow Go's random map order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::message::ChangeRecord;

/// Evaluation steps (nodes, commands, iterations) before a template is stopped.
pub const MAX_STEPS: usize = 200_000;
/// The longest message a template may produce, in bytes.
pub const MAX_OUTPUT: usize = 1 << 20;
/// How deep `if`/`range`/`with` blocks and parentheses may nest (parsing and running recurse
/// that deep; a deeper template is refused instead of exhausting the stack).
pub const MAX_DEPTH: usize = 100;

/// A template that does not parse, uses something outside the subset, or fails to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct GoTemplateError {
    /// 1-based line in the template.
    pub line: usize,
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, GoTemplateError> {
    Err(GoTemplateError {
        line,
        message: message.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// Values

/// A value as the template sees it.
#[derive(Debug, Clone)]
pub enum Value {
    /// A missing map entry: prints `<no value>`.
    NoValue,
    Nil,
    Str(Arc<str>),
    Int(i64),
    Bool(bool),
    List(Arc<Vec<Value>>),
    Map(Arc<MapValue>),
    Struct(Arc<StructValue>),
}

/// A Go map: entries in Go's sorted key order, and the element type's zero value (what
/// `index` gives for a missing key).
#[derive(Debug, Clone)]
pub struct MapValue {
    pub entries: Vec<(Value, Value)>,
    pub zero: Value,
}

/// A Go struct: exported fields in declaration order (`embedded` fields promote theirs),
/// methods without arguments, and the result of its `String()` method if it has one.
#[derive(Debug, Clone, Default)]
pub struct StructValue {
    pub type_name: &'static str,
    pub fields: Vec<(&'static str, Value, bool)>,
    pub methods: Vec<(&'static str, Value)>,
    pub stringer: Option<String>,
}

impl Value {
    fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::NoValue | Value::Nil => "nil",
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Bool(_) => "bool",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Struct(s) => s.type_name,
        }
    }

    fn truth(&self) -> bool {
        match self {
            Value::NoValue | Value::Nil => false,
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Bool(b) => *b,
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// `fmt`'s `%v`.
    fn write_v(&self, out: &mut String) {
        match self {
            Value::NoValue => out.push_str("<no value>"),
            Value::Nil => out.push_str("<nil>"),
            Value::Str(s) => out.push_str(s),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_v(out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.entries.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    k.write_v(out);
                    out.push(':');
                    v.write_v(out);
                }
                out.push(']');
            }
            Value::Struct(s) => {
                if let Some(text) = &s.stringer {
                    out.push_str(text);
                    return;
                }
                out.push('{');
                for (i, (_, v, _)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_v(out);
                }
                out.push('}');
            }
        }
    }

    fn to_v(&self) -> String {
        let mut s = String::new();
        self.write_v(&mut s);
        s
    }

    /// A field or method of a struct (promoted through embedded fields), or a map entry.
    fn field(&self, name: &str) -> Option<Value> {
        match self {
            Value::Struct(s) => {
                if let Some((_, v, _)) = s.fields.iter().find(|(n, _, _)| *n == name) {
                    return Some(v.clone());
                }
                if let Some((_, v)) = s.methods.iter().find(|(n, _)| *n == name) {
                    return Some(v.clone());
                }
                s.fields
                    .iter()
                    .filter(|(_, _, embedded)| *embedded)
                    .find_map(|(_, v, _)| v.field(name))
            }
            Value::Map(m) => Some(
                m.entries
                    .iter()
                    .find(|(k, _)| matches!(k, Value::Str(s) if &**s == name))
                    .map_or(Value::NoValue, |(_, v)| v.clone()),
            ),
            _ => None,
        }
    }
}

/// Go's `fmtsort` order for map keys of one type.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Struct(x), Value::Struct(y)) => x
            .fields
            .iter()
            .zip(&y.fields)
            .map(|((_, p, _), (_, q, _))| compare(p, q))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal),
        _ => std::cmp::Ordering::Equal,
    }
}

fn map(mut entries: Vec<(Value, Value)>, zero: Value) -> Value {
    entries.sort_by(|(a, _), (b, _)| compare(a, b));
    Value::Map(Arc::new(MapValue { entries, zero }))
}

fn structure(
    type_name: &'static str,
    fields: Vec<(&'static str, Value, bool)>,
    methods: Vec<(&'static str, Value)>,
    stringer: Option<String>,
) -> Value {
    Value::Struct(Arc::new(StructValue {
        type_name,
        fields,
        methods,
        stringer,
    }))
}

// ---------------------------------------------------------------------------------------------
// Flux's template data

fn change_value(c: &ChangeRecord) -> Value {
    structure(
        "update.Change",
        vec![
            ("OldValue", Value::str(c.old.as_str()), false),
            ("NewValue", Value::str(c.new.as_str()), false),
            ("Setter", Value::str(c.policy.replacen('/', ":", 1)), false),
        ],
        Vec::new(),
        None,
    )
}

/// `(Kind, Namespace, Name)` of a [`ChangeRecord::object`] (`Kind namespace/name`, `Kind
/// name`); a YAML key or file name (not a Kubernetes object) has none, as in Flux.
fn object_parts(object: &str) -> (String, String, String) {
    match object.split_once(' ') {
        Some((kind, rest))
            if kind.starts_with(|c: char| c.is_ascii_uppercase()) && !rest.contains(' ') =>
        {
            let (ns, name) = rest.split_once('/').unwrap_or(("", rest));
            (kind.to_owned(), ns.to_owned(), name.to_owned())
        }
        // An object without a name: its kind alone (`Kustomization`).
        None if object.starts_with(|c: char| c.is_ascii_uppercase())
            && object.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            (object.to_owned(), String::new(), String::new())
        }
        _ => (String::new(), String::new(), String::new()),
    }
}

fn object_identifier(object: &str) -> Value {
    let (kind, namespace, name) = object_parts(object);
    let type_meta = structure(
        "yaml.TypeMeta",
        vec![
            ("APIVersion", Value::str(""), false),
            ("Kind", Value::str(kind), false),
        ],
        Vec::new(),
        None,
    );
    let name_meta = structure(
        "yaml.NameMeta",
        vec![
            ("Name", Value::str(name), false),
            ("Namespace", Value::str(namespace), false),
        ],
        Vec::new(),
        None,
    );
    let resource = structure(
        "yaml.ResourceIdentifier",
        vec![("TypeMeta", type_meta, true), ("NameMeta", name_meta, true)],
        Vec::new(),
        None,
    );
    structure(
        "update.ObjectIdentifier",
        vec![("ResourceIdentifier", resource, true)],
        Vec::new(),
        None,
    )
}

fn empty_list() -> Value {
    Value::List(Arc::new(Vec::new()))
}

fn object_changes(by_object: Vec<(Value, Vec<Value>)>) -> Value {
    map(
        by_object
            .into_iter()
            .map(|(k, v)| (k, Value::List(Arc::new(v))))
            .collect(),
        empty_list(),
    )
}

/// Flux's `TemplateData` for `changes` made by `automation` (`namespace/name`) with the
/// automation's `messageTemplateValues`.
pub fn flux_data(
    automation: &str,
    changes: &[ChangeRecord],
    values: &BTreeMap<String, String>,
) -> Value {
    let (namespace, name) = automation.split_once('/').unwrap_or(("", automation));
    let automation_object = structure(
        "types.NamespacedName",
        vec![
            ("Namespace", Value::str(namespace), false),
            ("Name", Value::str(name), false),
        ],
        Vec::new(),
        Some(automation.to_owned()),
    );
    // file → object → changes, each level sorted as Go's fmtsort sorts.
    let mut files: BTreeMap<&str, Vec<(String, Vec<Value>)>> = BTreeMap::new();
    for c in changes {
        let objects = files.entry(c.file.as_str()).or_default();
        match objects.iter_mut().find(|(o, _)| *o == c.object) {
            Some((_, list)) => list.push(change_value(c)),
            None => objects.push((c.object.clone(), vec![change_value(c)])),
        }
    }
    let mut all_changes: Vec<Value> = Vec::new();
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let mut objects: Vec<(Value, Vec<Value>)> = Vec::new();
    let file_changes = map(
        files
            .iter()
            .map(|(file, objs)| {
                let mut by_object: Vec<(Value, Vec<Value>)> = objs
                    .iter()
                    .map(|(o, list)| (object_identifier(o), list.clone()))
                    .collect();
                by_object.sort_by(|(a, _), (b, _)| compare(a, b));
                for (id, list) in &by_object {
                    for ch in list {
                        let key = (
                            ch.field("OldValue").map(|v| v.to_v()).unwrap_or_default(),
                            ch.field("NewValue").map(|v| v.to_v()).unwrap_or_default(),
                            ch.field("Setter").map(|v| v.to_v()).unwrap_or_default(),
                        );
                        if !seen.contains(&key) {
                            seen.push(key);
                            all_changes.push(ch.clone());
                        }
                    }
                    match objects
                        .iter_mut()
                        .find(|(k, _)| compare(k, id).is_eq() && k.to_v() == id.to_v())
                    {
                        Some((_, l)) => l.extend(list.iter().cloned()),
                        None => objects.push((id.clone(), list.clone())),
                    }
                }
                (Value::str(*file), object_changes(by_object))
            })
            .collect(),
        object_changes(Vec::new()),
    );
    let result = structure(
        "update.Result",
        vec![("FileChanges", file_changes, false)],
        vec![
            ("Changes", Value::List(Arc::new(all_changes))),
            ("Objects", object_changes(objects)),
        ],
        None,
    );
    let values = map(
        values
            .iter()
            .map(|(k, v)| (Value::str(k.as_str()), Value::str(v.as_str())))
            .collect(),
        Value::str(""),
    );
    structure(
        "source.TemplateData",
        vec![
            ("AutomationObject", automation_object, false),
            ("Changed", result, false),
            ("Values", values, false),
        ],
        Vec::new(),
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Syntax

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Var(String),
    Dot,
    Ident(String),
    Str(String),
    Int(i64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty: `.`).
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the data).
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Pipe {
    line: usize,
    /// Variables declared (`:=`) or assigned (`=`).
    vars: Vec<String>,
    declare: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Output(Pipe),
    If(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    With(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    Break(usize),
    Continue(usize),
}

/// One `{{ … }}` with its line, or text.
#[derive(Debug)]
enum Item {
    Text(String),
    Action(usize, Vec<Tok>),
}

const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    // Sprig (Flux registers sprig.HermeticTxtFuncMap); the ones its documentation uses and
    // their closest kin.
    "lower",
    "upper",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "replace",
    "toString",
    "quote",
    "default",
    "join",
    "sha256sum",
    "trunc",
];

/// 1-based line numbers of increasing offsets, counted once over the text.
struct Lines<'a> {
    src: &'a str,
    offset: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, offset: usize) -> usize {
        let from = self.offset.min(offset);
        self.line += self.src[from..offset].matches('\n').count();
        self.offset = offset;
        self.line
    }
}

fn lex(src: &str) -> Result<Vec<Item>, GoTemplateError> {
    let mut items = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    let mut lines = Lines {
        src,
        offset: 0,
        line: 1,
    };
    while rest < src.len() {
        let Some(open) = src[rest..].find("{{").map(|i| i + rest) else {
            let mut text = &src[rest..];
            if trim_next {
                text = text.trim_start_matches(is_space);
            }
            items.push(Item::Text(text.to_owned()));
            break;
        };
        let mut text = &src[rest..open];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let line = lines.at(open);
        let mut inner = open + 2;
        let b = src.as_bytes();
        if b.get(inner) == Some(&b'-') && b.get(inner + 1).is_some_and(|c| is_space(char::from(*c)))
        {
            text = text.trim_end_matches(is_space);
            inner += 2;
        }
        items.push(Item::Text(text.to_owned()));
        // Comments.
        let body_start = src[inner..]
            .find(|c: char| !is_space(c))
            .map_or(src.len(), |i| i + inner);
        if body_start == inner && src[inner..].starts_with("/*") {
            let Some(end) = src[body_start..].find("*/").map(|i| i + body_start + 2) else {
                return err(line, "unclosed comment");
            };
            let after = &src[end..];
            let (trim, len) = if after.starts_with(" -}}") {
                (true, 4)
            } else if after.starts_with("}}") {
                (false, 2)
            } else {
                return err(line, "comment ends before closing delimiter");
            };
            trim_next = trim;
            rest = end + len;
            continue;
        }
        let (toks, end, trim) = lex_action(src, inner, line)?;
        let mut parens = 0usize;
        for t in &toks {
            match t {
                Tok::LParen => {
                    parens += 1;
                    if parens > MAX_DEPTH {
                        return err(
                            line,
                            format!("parentheses nested deeper than {MAX_DEPTH} levels"),
                        );
                    }
                }
                Tok::RParen => parens = parens.saturating_sub(1),
                _ => {}
            }
        }
        items.push(Item::Action(line, toks));
        trim_next = trim;
        rest = end;
    }
    Ok(items)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Tokens of one action starting at `i`; returns them, the offset after `}}` and whether
/// it ended with ` -}}`.
fn lex_action(
    src: &str,
    mut i: usize,
    line: usize,
) -> Result<(Vec<Tok>, usize, bool), GoTemplateError> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    loop {
        while i < bytes.len() && is_space(char::from(bytes[i])) {
            i += 1;
        }
        if i >= bytes.len() {
            return err(line, "unclosed action");
        }
        if src[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        if src[i..].starts_with("-}}") && i > 0 && is_space(char::from(bytes[i - 1])) {
            return Ok((toks, i + 3, true));
        }
        let Some(c) = src[i..].chars().next() else {
            return err(line, "unclosed action");
        };
        let ident_end = |from: usize| {
            src[from..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(src.len(), |e| e + from)
        };
        match c {
            '.' => {
                let end = ident_end(i + 1);
                if end == i + 1 {
                    toks.push(Tok::Dot);
                } else {
                    toks.push(Tok::Field(src[i + 1..end].to_owned()));
                }
                i = end;
            }
            '$' => {
                let end = ident_end(i + 1);
                toks.push(Tok::Var(src[i..end].to_owned()));
                i = end;
            }
            '"' => {
                let mut text = String::new();
                let mut j = i + 1;
                let mut chars = src[j..].char_indices();
                loop {
                    let Some((k, ch)) = chars.next() else {
                        return err(line, "unterminated quoted string");
                    };
                    match ch {
                        '"' => {
                            j += k + 1;
                            break;
                        }
                        '\n' => return err(line, "unterminated quoted string"),
                        '\\' => match chars.next() {
                            Some((_, 'n')) => text.push('\n'),
                            Some((_, 't')) => text.push('\t'),
                            Some((_, 'r')) => text.push('\r'),
                            Some((_, '"')) => text.push('"'),
                            Some((_, '\\')) => text.push('\\'),
                            Some((_, other)) => {
                                return err(
                                    line,
                                    format!("unsupported escape \\{other} in string"),
                                );
                            }
                            None => return err(line, "unterminated quoted string"),
                        },
                        ch => text.push(ch),
                    }
                }
                toks.push(Tok::Str(text));
                i = j;
            }
            '`' => {
                let Some(end) = src[i + 1..].find('`').map(|e| e + i + 1) else {
                    return err(line, "unterminated raw quoted string");
                };
                toks.push(Tok::Str(src[i + 1..end].to_owned()));
                i = end + 1;
            }
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
                // `(…).Field`
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if src[i..].starts_with(":=") => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '-' | '0'..='9' => {
                let end = src[i + 1..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(src.len(), |e| e + i + 1);
                let Ok(n) = src[i..end].parse::<i64>() else {
                    return err(line, format!("bad number syntax: {:?}", &src[i..end]));
                };
                if src[end..].starts_with(['.', 'e', 'E', 'x', 'X']) {
                    return err(line, "only integer numbers are supported");
                }
                toks.push(Tok::Int(n));
                i = end;
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = ident_end(i);
                toks.push(Tok::Ident(src[i..end].to_owned()));
                i = end;
            }
            other => return err(line, format!("unexpected {other:?} in action")),
        }
    }
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    depth: usize,
    /// The line of the last action read (for nesting errors).
    line: usize,
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    /// `{{ end }}`
    End(usize),
    /// `{{ else }}`, or `{{ else if … }}` / `{{ else with … }}` with the rest of the tokens.
    Else(usize, Vec<Tok>),
}

impl Parser {
    fn list(&mut self, in_range: bool) -> Result<(Vec<Node>, Stop), GoTemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.line,
                format!("blocks nested deeper than {MAX_DEPTH} levels"),
            );
        }
        let result = self.list_inner(in_range);
        self.depth -= 1;
        result
    }

    fn list_inner(&mut self, in_range: bool) -> Result<(Vec<Node>, Stop), GoTemplateError> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (line, toks) = match item {
                Item::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t));
                    }
                    continue;
                }
                Item::Action(line, toks) => (line, toks),
            };
            self.line = line;
            let keyword = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                None => return err(line, "missing value for command"),
                _ => "",
            };
            match keyword {
                "end" => {
                    if toks.len() > 1 {
                        return err(line, "unexpected tokens after end");
                    }
                    return Ok((nodes, Stop::End(line)));
                }
                "else" => return Ok((nodes, Stop::Else(line, toks[1..].to_vec()))),
                "if" | "with" => {
                    let node = self.conditional(keyword, line, &toks[1..], in_range)?;
                    nodes.push(node);
                }
                "range" => {
                    let pipe = parse_pipe(line, &toks[1..], true)?;
                    let (body, end) = self.list(true)?;
                    let otherwise = match end {
                        Stop::End(_) => Vec::new(),
                        Stop::Else(l, rest) if rest.is_empty() => match self.list(in_range)? {
                            (nodes, Stop::End(_)) => nodes,
                            _ => return err(l, "expected end after range else"),
                        },
                        Stop::Else(l, _) => return err(l, "unsupported else clause in range"),
                        Stop::Eof => return err(line, "unexpected EOF: range has no end"),
                    };
                    nodes.push(Node::Range(pipe, body, otherwise));
                }
                "break" | "continue" => {
                    if !in_range {
                        return err(line, format!("{{{{{keyword}}}}} outside {{{{range}}}}"));
                    }
                    nodes.push(if keyword == "break" {
                        Node::Break(line)
                    } else {
                        Node::Continue(line)
                    });
                }
                "define" | "template" | "block" => {
                    return err(
                        line,
                        format!(
                            "{keyword:?} is not supported in commit message templates by upkeep"
                        ),
                    );
                }
                _ => nodes.push(Node::Output(parse_pipe(line, &toks, false)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn conditional(
        &mut self,
        keyword: &str,
        line: usize,
        toks: &[Tok],
        in_range: bool,
    ) -> Result<Node, GoTemplateError> {
        let mut branches = Vec::new();
        let mut pipe = parse_pipe(line, toks, false)?;
        loop {
            let (body, end) = self.list(in_range)?;
            branches.push((pipe, body));
            match end {
                Stop::End(_) => {
                    return Ok(build(keyword, branches, Vec::new()));
                }
                Stop::Eof => return err(line, format!("unexpected EOF: {keyword} has no end")),
                Stop::Else(l, rest) if rest.is_empty() => {
                    let (otherwise, end) = self.list(in_range)?;
                    if !matches!(end, Stop::End(_)) {
                        return err(l, format!("expected end after {keyword} else"));
                    }
                    return Ok(build(keyword, branches, otherwise));
                }
                Stop::Else(l, rest) => {
                    if rest.first() != Some(&Tok::Ident(keyword.to_owned())) {
                        return err(l, format!("else {:?} inside {keyword}", rest.first()));
                    }
                    pipe = parse_pipe(l, &rest[1..], false)?;
                }
            }
        }
    }
}

fn build(keyword: &str, branches: Vec<(Pipe, Vec<Node>)>, otherwise: Vec<Node>) -> Node {
    if keyword == "if" {
        Node::If(branches, otherwise)
    } else {
        Node::With(branches, otherwise)
    }
}

fn parse_pipe(line: usize, toks: &[Tok], allow_decl: bool) -> Result<Pipe, GoTemplateError> {
    let mut vars = Vec::new();
    let mut declare = false;
    let mut start = 0;
    // `$a :=`, `$a, $b :=`, `$a =`
    let decl_at = toks
        .iter()
        .position(|t| matches!(t, Tok::Declare | Tok::Assign));
    if let Some(d) = decl_at {
        let names = &toks[..d];
        let ok = match names {
            [Tok::Var(a)] => {
                vars.push(a.clone());
                true
            }
            [Tok::Var(a), Tok::Comma, Tok::Var(b)] if allow_decl => {
                vars.push(a.clone());
                vars.push(b.clone());
                true
            }
            _ => false,
        };
        if !ok {
            return err(line, "bad variable declaration");
        }
        declare = toks[d] == Tok::Declare;
        start = d + 1;
    }
    let mut cmds = Vec::new();
    let mut pos = start;
    let rest = &toks[start..];
    if rest.is_empty() {
        return err(line, "missing value for command");
    }
    let mut cmd = Vec::new();
    while pos < toks.len() {
        if toks[pos] == Tok::Pipe {
            if cmd.is_empty() {
                return err(line, "missing command before |");
            }
            cmds.push(std::mem::take(&mut cmd));
            pos += 1;
        } else {
            let (arg, next) = parse_arg(line, toks, pos)?;
            cmd.push(arg);
            pos = next;
        }
    }
    if cmd.is_empty() {
        return err(line, "missing command after |");
    }
    cmds.push(cmd);
    for (i, c) in cmds.iter().enumerate() {
        let is_func = matches!(c.first(), Some(Arg::Func(_)));
        if !is_func && (c.len() > 1 || i > 0) {
            return err(
                line,
                "only functions take arguments (method calls with arguments are not supported)",
            );
        }
    }
    Ok(Pipe {
        line,
        vars,
        declare,
        cmds,
    })
}

/// Field names following position `pos` (`(…).A.B`, `$x.A`).
fn fields_after(toks: &[Tok], mut pos: usize) -> (Vec<String>, usize) {
    let mut fields = Vec::new();
    while let Some(Tok::Field(f)) = toks.get(pos) {
        fields.push(f.clone());
        pos += 1;
    }
    (fields, pos)
}

fn parse_arg(line: usize, toks: &[Tok], pos: usize) -> Result<(Arg, usize), GoTemplateError> {
    Ok(match &toks[pos] {
        Tok::Dot => (Arg::Field(Vec::new()), pos + 1),
        Tok::Field(_) => {
            let (fields, next) = fields_after(toks, pos);
            (Arg::Field(fields), next)
        }
        Tok::Var(v) => {
            let (fields, next) = fields_after(toks, pos + 1);
            (Arg::Var(v.clone(), fields), next)
        }
        Tok::Str(s) => (Arg::Lit(Value::str(s.as_str())), pos + 1),
        Tok::Int(i) => (Arg::Lit(Value::Int(*i)), pos + 1),
        Tok::Ident(name) => match name.as_str() {
            "true" => (Arg::Lit(Value::Bool(true)), pos + 1),
            "false" => (Arg::Lit(Value::Bool(false)), pos + 1),
            "nil" => (Arg::Lit(Value::Nil), pos + 1),
            f if FUNCTIONS.contains(&f) => (Arg::Func(f.to_owned()), pos + 1),
            f => {
                return err(
                    line,
                    format!("function {f:?} not defined (or not supported by upkeep)"),
                );
            }
        },
        Tok::LParen => {
            let mut depth = 0;
            let mut end = None;
            for (i, t) in toks.iter().enumerate().skip(pos) {
                match t {
                    Tok::LParen => depth += 1,
                    Tok::RParen => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let Some(end) = end else {
                return err(line, "unclosed left paren");
            };
            let inner = parse_pipe(line, &toks[pos + 1..end], false)?;
            if !inner.vars.is_empty() {
                return err(line, "declarations inside parentheses are not supported");
            }
            let (fields, next) = fields_after(toks, end + 1);
            (Arg::Sub(Box::new(inner), fields), next)
        }
        other => return err(line, format!("unexpected {other:?} in operand")),
    })
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// A parsed template.
#[derive(Debug, Clone)]
pub struct GoTemplate {
    nodes: Vec<Node>,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State {
    vars: Vec<(String, Value)>,
    out: String,
    steps: usize,
}

impl GoTemplate {
    /// Parses `source`; anything outside the supported subset is an error with its line.
    pub fn parse(source: &str) -> Result<Self, GoTemplateError> {
        let items = lex(source)?;
        let mut parser = Parser {
            items: items.into_iter(),
            depth: 0,
            line: 1,
        };
        match parser.list(false)? {
            (nodes, Stop::Eof) => Ok(Self { nodes }),
            (_, Stop::End(line)) => err(line, "unexpected {{end}}"),
            (_, Stop::Else(line, _)) => err(line, "unexpected {{else}}"),
        }
    }

    /// Runs the template over `data`.
    pub fn execute(&self, data: &Value) -> Result<String, GoTemplateError> {
        let mut state = State {
            vars: vec![("$".to_owned(), data.clone())],
            out: String::new(),
            steps: 0,
        };
        state.nodes(&self.nodes, data)?;
        Ok(state.out)
    }
}

impl State {
    fn step(&mut self, line: usize) -> Result<(), GoTemplateError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return err(
                line,
                format!("the template takes more than {MAX_STEPS} steps"),
            );
        }
        if self.out.len() > MAX_OUTPUT {
            return err(
                line,
                format!("the message is longer than {MAX_OUTPUT} bytes"),
            );
        }
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, GoTemplateError> {
        for node in nodes {
            match self.node(node, dot)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs `body` in a new variable scope.
    fn scoped(&mut self, body: &[Node], dot: &Value) -> Result<Flow, GoTemplateError> {
        let mark = self.vars.len();
        let flow = self.nodes(body, dot);
        self.vars.truncate(mark);
        flow
    }

    fn node(&mut self, node: &Node, dot: &Value) -> Result<Flow, GoTemplateError> {
        match node {
            Node::Text(t) => {
                self.out.push_str(t);
                self.step(1)?;
            }
            Node::Output(pipe) => {
                self.step(pipe.line)?;
                let v = self.pipe(pipe, dot)?;
                if pipe.vars.is_empty() {
                    v.write_v(&mut self.out);
                }
            }
            Node::If(branches, otherwise) | Node::With(branches, otherwise) => {
                let with = matches!(node, Node::With(..));
                let mark = self.vars.len();
                for (pipe, body) in branches {
                    self.step(pipe.line)?;
                    let v = self.pipe(pipe, dot)?;
                    if v.truth() {
                        let next = if with { v } else { dot.clone() };
                        let flow = self.scoped(body, &next);
                        self.vars.truncate(mark);
                        return flow;
                    }
                }
                let flow = self.scoped(otherwise, dot);
                self.vars.truncate(mark);
                return flow;
            }
            Node::Range(pipe, body, otherwise) => {
                self.step(pipe.line)?;
                let mark = self.vars.len();
                let value = self.pipe_value(pipe, dot)?;
                let items: Vec<(Value, Value)> = match &value {
                    Value::List(l) => l
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Int(i64::try_from(i).unwrap_or(i64::MAX)), v.clone()))
                        .collect(),
                    Value::Map(m) => m.entries.clone(),
                    Value::Int(n) if usize::try_from(*n).is_ok_and(|n| n > MAX_STEPS) => {
                        return err(
                            pipe.line,
                            format!("the template takes more than {MAX_STEPS} steps"),
                        );
                    }
                    Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                    Value::NoValue | Value::Nil => Vec::new(),
                    other => {
                        return err(
                            pipe.line,
                            format!("range can't iterate over {}", other.to_v()),
                        );
                    }
                };
                if items.is_empty() {
                    let flow = self.scoped(otherwise, dot);
                    self.vars.truncate(mark);
                    return flow;
                }
                for (key, elem) in items {
                    self.step(pipe.line)?;
                    let inner = self.vars.len();
                    match pipe.vars.as_slice() {
                        [] => {}
                        [v] => self.vars.push((v.clone(), elem.clone())),
                        [k, v] => {
                            self.vars.push((k.clone(), key));
                            self.vars.push((v.clone(), elem.clone()));
                        }
                        _ => return err(pipe.line, "too many range variables"),
                    }
                    let flow = self.scoped(body, &elem)?;
                    self.vars.truncate(inner);
                    if matches!(flow, Flow::Break) {
                        break;
                    }
                }
                self.vars.truncate(mark);
            }
            Node::Break(line) => {
                self.step(*line)?;
                return Ok(Flow::Break);
            }
            Node::Continue(line) => {
                self.step(*line)?;
                return Ok(Flow::Continue);
            }
        }
        Ok(Flow::Normal)
    }

    /// The value of a range's pipeline (its variables are bound per element, not here).
    fn pipe_value(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, GoTemplateError> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(pipe.line, cmd, dot, value)?);
        }
        Ok(value.unwrap_or(Value::NoValue))
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, GoTemplateError> {
        let value = self.pipe_value(pipe, dot)?;
        if let [name] = pipe.vars.as_slice() {
            if pipe.declare {
                self.vars.push((name.clone(), value.clone()));
            } else {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => return err(pipe.line, format!("undefined variable: {name}")),
                }
            }
        }
        Ok(value)
    }

    fn var(&self, line: usize, name: &str) -> Result<Value, GoTemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .map_or_else(|| err(line, format!("undefined variable: {name}")), Ok)
    }

    fn fields(line: usize, mut v: Value, fields: &[String]) -> Result<Value, GoTemplateError> {
        for f in fields {
            v = match &v {
                Value::NoValue | Value::Nil => {
                    return err(line, format!("nil pointer evaluating {f}"));
                }
                other => match other.field(f) {
                    Some(x) => x,
                    None => {
                        return err(
                            line,
                            format!("can't evaluate field {f} in type {}", other.type_name()),
                        );
                    }
                },
            };
        }
        Ok(v)
    }

    fn arg(&mut self, line: usize, arg: &Arg, dot: &Value) -> Result<Value, GoTemplateError> {
        match arg {
            Arg::Field(fields) => Self::fields(line, dot.clone(), fields),
            Arg::Var(name, fields) => Self::fields(line, self.var(line, name)?, fields),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Sub(pipe, fields) => {
                let v = self.pipe(pipe, dot)?;
                Self::fields(line, v, fields)
            }
            Arg::Func(name) => self.call(line, name, &[], dot, None),
        }
    }

    fn command(
        &mut self,
        line: usize,
        cmd: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, GoTemplateError> {
        match cmd.first() {
            Some(Arg::Func(name)) => self.call(line, name, &cmd[1..], dot, piped),
            Some(arg) => self.arg(line, arg, dot),
            None => err(line, "empty command"),
        }
    }

    fn call(
        &mut self,
        line: usize,
        name: &str,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, GoTemplateError> {
        // `and`/`or` evaluate their arguments lazily.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(piped.is_some());
            if n == 0 {
                return err(
                    line,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.arg(line, a, dot)?;
                if last.truth() == (name == "or") {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for a in args {
            values.push(self.arg(line, a, dot)?);
        }
        if let Some(p) = piped {
            values.push(p);
        }
        call(line, name, &values)
    }
}

fn want(line: usize, name: &str, values: &[Value], n: usize) -> Result<(), GoTemplateError> {
    if values.len() == n {
        Ok(())
    } else {
        err(
            line,
            format!(
                "wrong number of args for {name}: want {n} got {}",
                values.len()
            ),
        )
    }
}

fn as_str(line: usize, name: &str, v: &Value) -> Result<Arc<str>, GoTemplateError> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => err(
            line,
            format!("{name}: expected string; found {}", other.type_name()),
        ),
    }
}

/// Sprig's `toString`/`strval`: strings as they are, everything else as `%v`.
fn strval(v: &Value) -> String {
    v.to_v()
}

fn basic_eq(line: usize, a: &Value, b: &Value) -> Result<bool, GoTemplateError> {
    Ok(match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Nil | Value::NoValue, Value::Nil | Value::NoValue) => true,
        // Go compares a missing value with anything as unequal, without an error.
        (Value::Nil | Value::NoValue, _) | (_, Value::Nil | Value::NoValue) => false,
        _ => return err(line, "incompatible types for comparison"),
    })
}

fn order(line: usize, a: &Value, b: &Value) -> Result<std::cmp::Ordering, GoTemplateError> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        _ => err(line, "invalid type for comparison"),
    }
}

fn call(line: usize, name: &str, v: &[Value]) -> Result<Value, GoTemplateError> {
    use std::cmp::Ordering::{Greater, Less};
    Ok(match name {
        "not" => {
            want(line, name, v, 1)?;
            Value::Bool(!v[0].truth())
        }
        "len" => {
            want(line, name, v, 1)?;
            let n = match &v[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.entries.len(),
                other => return err(line, format!("len of type {}", other.type_name())),
            };
            Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
        }
        "index" => {
            let Some((first, keys)) = v.split_first() else {
                return err(
                    line,
                    "wrong number of args for index: want at least 1 got 0",
                );
            };
            let mut cur = first.clone();
            for key in keys {
                cur = match (&cur, key) {
                    (Value::Map(m), k) => m
                        .entries
                        .iter()
                        .find(|(mk, _)| basic_eq(line, mk, k).unwrap_or(false))
                        .map_or_else(|| m.zero.clone(), |(_, x)| x.clone()),
                    (Value::List(l), Value::Int(i)) => {
                        match usize::try_from(*i).ok().and_then(|i| l.get(i)) {
                            Some(x) => x.clone(),
                            None => {
                                return err(
                                    line,
                                    format!("error calling index: index out of range: {i}"),
                                );
                            }
                        }
                    }
                    (Value::Str(s), Value::Int(i)) => {
                        match usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i)) {
                            Some(b) => Value::Int(i64::from(*b)),
                            None => {
                                return err(
                                    line,
                                    format!("error calling index: index out of range: {i}"),
                                );
                            }
                        }
                    }
                    (c, _) => {
                        return err(
                            line,
                            format!(
                                "error calling index: can't index item of type {}",
                                c.type_name()
                            ),
                        );
                    }
                };
            }
            cur
        }
        "print" => {
            let mut s = String::new();
            for (i, x) in v.iter().enumerate() {
                let is_str = |x: &Value| matches!(x, Value::Str(_));
                if i > 0 && !is_str(x) && !is_str(&v[i - 1]) {
                    s.push(' ');
                }
                x.write_v(&mut s);
            }
            Value::str(s)
        }
        "println" => {
            let mut s = String::new();
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                x.write_v(&mut s);
            }
            s.push('\n');
            Value::str(s)
        }
        "printf" => {
            let Some((format, rest)) = v.split_first() else {
                return err(
                    line,
                    "wrong number of args for printf: want at least 1 got 0",
                );
            };
            Value::str(sprintf(line, &as_str(line, name, format)?, rest)?)
        }
        "eq" => {
            if v.len() < 2 {
                return err(line, "missing argument for comparison");
            }
            let mut any = false;
            for other in &v[1..] {
                any |= basic_eq(line, &v[0], other)?;
            }
            Value::Bool(any)
        }
        "ne" => {
            want(line, name, v, 2)?;
            Value::Bool(!basic_eq(line, &v[0], &v[1])?)
        }
        "lt" | "le" | "gt" | "ge" => {
            want(line, name, v, 2)?;
            let o = order(line, &v[0], &v[1])?;
            Value::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "lower" | "upper" | "trim" | "sha256sum" | "quote" => {
            want(line, name, v, 1)?;
            let s = strval(&v[0]);
            Value::str(match name {
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                "trim" => s.trim().to_owned(),
                "quote" => format!("{s:?}"),
                _ => {
                    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
                    digest.as_ref().iter().fold(String::new(), |mut h, b| {
                        let _ = write!(h, "{b:02x}");
                        h
                    })
                }
            })
        }
        "toString" => {
            want(line, name, v, 1)?;
            Value::str(strval(&v[0]))
        }
        "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix" => {
            want(line, name, v, 2)?;
            let (a, s) = (strval(&v[0]), strval(&v[1]));
            match name {
                "trimPrefix" => Value::str(s.strip_prefix(a.as_str()).unwrap_or(&s)),
                "trimSuffix" => Value::str(s.strip_suffix(a.as_str()).unwrap_or(&s)),
                "contains" => Value::Bool(s.contains(a.as_str())),
                "hasPrefix" => Value::Bool(s.starts_with(a.as_str())),
                _ => Value::Bool(s.ends_with(a.as_str())),
            }
        }
        "replace" => {
            want(line, name, v, 3)?;
            Value::str(strval(&v[2]).replace(&strval(&v[0]), &strval(&v[1])))
        }
        "default" => {
            want(line, name, v, 2)?;
            if v[1].truth() {
                v[1].clone()
            } else {
                v[0].clone()
            }
        }
        "join" => {
            want(line, name, v, 2)?;
            let sep = strval(&v[0]);
            match &v[1] {
                Value::List(l) => {
                    Value::str(l.iter().map(Value::to_v).collect::<Vec<_>>().join(&sep))
                }
                other => Value::str(strval(other)),
            }
        }
        "trunc" => {
            want(line, name, v, 2)?;
            let Value::Int(n) = v[0] else {
                return err(line, "trunc: expected an integer length");
            };
            let s = strval(&v[1]);
            let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
            let cut = |at: i64| usize::try_from(at).unwrap_or(0);
            // Sprig cuts bytes: a negative n keeps the last -n bytes.
            let out = if n < 0 && -n < len {
                s.get(cut(len + n)..).unwrap_or(&s).to_owned()
            } else if n >= 0 && n < len {
                s.get(..cut(n)).unwrap_or(&s).to_owned()
            } else {
                s
            };
            Value::str(out)
        }
        other => return err(line, format!("function {other:?} not defined")),
    })
}

/// Go's `fmt.Sprintf` for the verbs `%s %v %d %q %t %x %X %%` (no flags or widths).
fn sprintf(line: usize, format: &str, args: &[Value]) -> Result<String, GoTemplateError> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if !matches!(verb, 's' | 'v' | 'd' | 'q' | 't' | 'x' | 'X') {
            return err(
                line,
                format!(
                    "printf verb %{verb} is not supported (supported: %s %v %d %q %t %x %X %%)"
                ),
            );
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        let bad = |out: &mut String| {
            let _ = write!(out, "%!{verb}({}={})", arg.type_name(), arg.to_v());
        };
        match (verb, arg) {
            ('s' | 'v', a) => a.write_v(&mut out),
            ('d', Value::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            ('t', Value::Bool(b)) => {
                let _ = write!(out, "{b}");
            }
            ('q', Value::Str(s)) => {
                let _ = write!(out, "{s:?}");
            }
            ('x', Value::Str(s)) => {
                for b in s.bytes() {
                    let _ = write!(out, "{b:02x}");
                }
            }
            ('X', Value::Str(s)) => {
                for b in s.bytes() {
                    let _ = write!(out, "{b:02X}");
                }
            }
            ('x', Value::Int(i)) => {
                let _ = write!(out, "{i:x}");
            }
            ('X', Value::Int(i)) => {
                let _ = write!(out, "{i:X}");
            }
            _ => bad(&mut out),
        }
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", a.type_name(), a.to_v());
        }
        out.push(')');
    }
    Ok(out)
}

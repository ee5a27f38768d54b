//! Manifests: the version fields that upkeep markers point at, and byte-exact rewrites of them.
//!
//! GitOps repositories are edited by people; a tool that reformats their YAML (reorders keys,
//! drops comments, changes quotes) makes every pull request noisy and loses trust. So upkeep
//! never parses and re-serialises a manifest: it finds the *line* a marker comment sits on,
//! reads the scalar on that line, and replaces exactly those bytes, keeping the quote style.
//! Everything else in the file stays byte-identical (CRLF, BOM, comments, indentation,
//! other documents of a multi-document file).
//!
//! Two marker forms are read:
//!
//! - `# {"$upkeep": "<namespace>:<policy>"}` — the whole scalar is the version.
//! - Flux's `# {"$imagepolicy": "<namespace>:<policy>[:tag|:name]"}` so that repositories set
//!   up for Flux image automation work unchanged. Only `:tag` (and the bare form, which sets
//!   `image:tag`) are version fields; `:name` is read but never rewritten by a version policy.
//!
//! Because edits are line-based, the same rules cover every place a version lives: App CR
//! `spec.version`, HelmRelease `spec.chart.spec.version`, Argo CD `targetRevision` (also in
//! `sources[]`), `Chart.yaml` dependency lists, values files, and marked lines *inside block
//! scalars* that embed YAML (kustomize `patch: |-`): such a line is read as the embedded
//! YAML it is, and only the scalar inside the block text changes.
//!
//! Decisions, and why:
//!
//! - **Flow collections.** A marker after `{version: 1.2.3}` or `[1.2.3]` addresses the
//!   collection's single value scalar. With several value scalars (`{name: a, version: 1.2.3}`,
//!   `[a, 1.2.3]`) the marker is [`MarkerError::AmbiguousFlow`]: guessing would rewrite the
//!   wrong field in someone's production repository.
//! - **Digests.** `image: repo:tag@sha256:…` with a bare `$imagepolicy` marker becomes
//!   `repo:<new>`: the old digest names the old image, and a runtime pulls by digest when one
//!   is present, so keeping it would make the update a silent no-op. Flux also replaces the
//!   whole reference. The current version of such a field is the tag without the digest.
//! - **Plain scalars keep their type.** A plain scalar is only written when YAML still reads it
//!   as a string: `1.10` would become the float `1.1`, `20240101` an integer. Such a version
//!   is refused ([`MarkerError::Unrepresentable`], hint: quote the value in the file).
//! - **Unresolved variables.** A marker reference, or a marked value, holding `${…}` (a Flux
//!   post-build substitution) is reported with its line, never skipped and never overwritten.
//! - **Commented-out lines** (`# version: 1.2.3 # {"$upkeep": …}`) are not fields.
//! - **Invalid YAML.** This module is byte-level and does not parse whole files. Each marked
//!   line must read as `key: scalar` (or a sequence item, or a one-line flow collection), or
//!   it is reported ([`MarkerError::Unreadable`]). Whole-file validity is the caller's job:
//!   upkeep-api parses every manifest it loads and reports files that are not valid YAML,
//!   leaving them alone. After an edit, [`apply`] reads the new text back and checks that
//!   every marker is still found with the expected value before returning it.
//! - **All or nothing per file.** [`apply`] changes a file only when every marker in it can be
//!   read and every requested version can be written; otherwise the file is left unchanged and
//!   all problems are reported together.
//!
//! **Speed.** A repository scan reads thousands of files, most without markers. [`find_markers`]
//! and [`apply`] first look for the substrings `$upkeep` and `$imagepolicy` in the whole
//! text (a vectorised substring search, no line splitting, no allocation); a file without
//! them is rejected at memory speed and [`apply`] returns it borrowed, unchanged.

mod line;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use line::{Value, read_line};

/// Which marker syntax a field used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerSyntax {
    Upkeep,
    FluxImagePolicy,
}

/// Which part of the value a Flux marker addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerField {
    /// The whole scalar is the version (`$upkeep`, or `$imagepolicy` with `:tag`).
    Version,
    /// `$imagepolicy` without a suffix: the scalar is `image:tag`; the tag is replaced.
    ImageWithTag,
    /// `$imagepolicy` with `:name`: the image name, not a version.
    ImageName,
}

/// How the scalar is quoted in the file; rewrites keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Plain,
    Single,
    Double,
}

/// A marked field found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// 1-based line number.
    pub line: usize,
    /// 0-based index of the YAML document (`---`-separated) the line belongs to.
    pub document: usize,
    /// The mapping key of the value (`version` in `version: 1.2.3` or `{version: 1.2.3}`).
    pub key: Option<String>,
    /// The scalar's value, without quotes.
    pub value: String,
    /// Byte range of the value (inside the quotes) in the whole text.
    pub value_range: Range<usize>,
    pub quote: Quote,
    pub syntax: MarkerSyntax,
    pub field: MarkerField,
    pub namespace: String,
    pub policy: String,
}

impl Marker {
    /// The version the field holds now: the tag part for `image:tag`, and never a digest.
    pub fn current_version(&self) -> &str {
        match self.field {
            MarkerField::ImageWithTag => split_image_tag(&self.value).1.unwrap_or(""),
            MarkerField::Version => strip_digest(&self.value),
            MarkerField::ImageName => &self.value,
        }
    }

    /// The scalar text (before quoting) that holds `version` in this field, or `None` for a
    /// `:name` field, which no version policy writes.
    pub fn value_for(&self, version: &str) -> Option<String> {
        match self.field {
            MarkerField::Version => Some(version.to_owned()),
            MarkerField::ImageWithTag => {
                Some(format!("{}:{version}", split_image_tag(&self.value).0))
            }
            MarkerField::ImageName => None,
        }
    }
}

/// Why a marker could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    #[error("line {line}: marker reference {reference:?} holds an unresolved variable")]
    UnresolvedVariable { line: usize, reference: String },
    #[error("line {line}: marker reference {reference:?} is not <namespace>:<policy>[:tag|:name]")]
    BadReference { line: usize, reference: String },
    #[error("line {line}: marker has no scalar value before it")]
    NoValue { line: usize },
    #[error("line {line}: value {value:?} cannot be written as a {quote:?} scalar")]
    Unrepresentable {
        line: usize,
        value: String,
        quote: Quote,
    },
    #[error(
        "line {line}: comment {comment:?} names a marker but is not {{\"$upkeep\": \"<namespace>:<policy>\"}}"
    )]
    MalformedMarker { line: usize, comment: String },
    #[error(
        "line {line}: marker follows a flow collection with {count} values; it must mark exactly one"
    )]
    AmbiguousFlow { line: usize, count: usize },
    #[error("line {line}: marked value {value:?} holds an unresolved variable")]
    VariableValue { line: usize, value: String },
    #[error("line {line}: cannot read the value before the marker at {near:?}")]
    Unreadable { line: usize, near: String },
}

impl MarkerError {
    pub fn line(&self) -> usize {
        match self {
            MarkerError::UnresolvedVariable { line, .. }
            | MarkerError::BadReference { line, .. }
            | MarkerError::NoValue { line }
            | MarkerError::Unrepresentable { line, .. }
            | MarkerError::MalformedMarker { line, .. }
            | MarkerError::AmbiguousFlow { line, .. }
            | MarkerError::VariableValue { line, .. }
            | MarkerError::Unreadable { line, .. } => *line,
        }
    }

    /// The variant's name, stable enough for a condition reason or a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            MarkerError::UnresolvedVariable { .. } => "UnresolvedVariable",
            MarkerError::BadReference { .. } => "BadReference",
            MarkerError::NoValue { .. } => "NoValue",
            MarkerError::Unrepresentable { .. } => "Unrepresentable",
            MarkerError::MalformedMarker { .. } => "MalformedMarker",
            MarkerError::AmbiguousFlow { .. } => "AmbiguousFlow",
            MarkerError::VariableValue { .. } => "VariableValue",
            MarkerError::Unreadable { .. } => "Unreadable",
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            MarkerError::UnresolvedVariable { .. } => Some(
                "upkeep reads the repository as committed; write the policy's namespace and name literally".into(),
            ),
            MarkerError::BadReference { .. } | MarkerError::MalformedMarker { .. } => {
                Some(r#"write the marker as # {"$upkeep": "flux-system:my-chart"}"#.into())
            }
            MarkerError::NoValue { .. } => {
                Some("put the marker on the same line as the value it marks".into())
            }
            MarkerError::Unrepresentable {
                quote: Quote::Plain,
                ..
            } => Some(
                "quote the value in the file (version: \"1.10\") so YAML keeps it a string".into(),
            ),
            MarkerError::Unrepresentable { .. } => None,
            MarkerError::AmbiguousFlow { .. } => Some(
                "write the marked field on its own line (block style) so the marker names one value"
                    .into(),
            ),
            MarkerError::VariableValue { .. } => Some(
                "a substituted value is owned by the substitution; mark the variable's definition instead"
                    .into(),
            ),
            MarkerError::Unreadable { .. } => {
                Some("the marked line must be `key: value # marker`; check its quotes".into())
            }
        }
    }
}

/// True when `text` may hold a marker: the cheap rejection every scan starts with.
///
/// Two substring searches over the whole text (no line splitting, no allocation); a file
/// without `$upkeep` or `$imagepolicy` cannot hold a marker.
pub fn may_have_markers(text: &str) -> bool {
    text.contains("$upkeep") || text.contains("$imagepolicy")
}

/// Every marker in `text`, and every marker that could not be read, in file order.
pub fn find_markers(text: &str) -> (Vec<Marker>, Vec<MarkerError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    if !may_have_markers(text) {
        return (found, errors);
    }
    let mut offset = 0;
    let mut docs = Documents::default();
    for (i, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let document = docs.see(line);
        if line.contains("$upkeep") || line.contains("$imagepolicy") {
            match scan_line(line, offset, line_no, document) {
                Some(Ok(m)) => found.push(m),
                Some(Err(e)) => errors.push(e),
                None => {}
            }
        }
        offset += raw_line.len();
    }
    (found, errors)
}

/// Counts `---`-separated documents line by line.
#[derive(Default)]
struct Documents {
    index: usize,
    started: bool,
    ended: bool,
}

impl Documents {
    fn see(&mut self, line: &str) -> usize {
        let marker = |m: &str| {
            line.strip_prefix(m)
                .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
        };
        if marker("---") {
            if self.started {
                self.index += 1;
            }
            self.started = true;
            self.ended = false;
        } else if marker("...") {
            self.ended = true;
        } else {
            let t = line.trim_start_matches('\u{feff}').trim_start();
            if !t.is_empty() && !t.starts_with('#') && !t.starts_with('%') {
                if self.ended {
                    self.index += 1;
                    self.ended = false;
                }
                self.started = true;
            }
        }
        self.index
    }
}

/// Replaces the version in the marked field, changing only the scalar's bytes.
pub fn set_version(text: &str, marker: &Marker, version: &str) -> Result<String, MarkerError> {
    let encoded = encode_for(marker, version)?;
    let mut out = String::with_capacity(text.len() + encoded.len());
    out.push_str(&text[..marker.value_range.start]);
    out.push_str(&encoded);
    out.push_str(&text[marker.value_range.end..]);
    Ok(out)
}

/// The bytes that replace `marker.value_range` to make the field hold `version`.
fn encode_for(marker: &Marker, version: &str) -> Result<String, MarkerError> {
    let unrepresentable = |value: String| MarkerError::Unrepresentable {
        line: marker.line,
        value,
        quote: marker.quote,
    };
    let new_value = marker
        .value_for(version)
        .ok_or_else(|| unrepresentable(version.to_owned()))?;
    encode(&new_value, marker.quote).ok_or_else(|| unrepresentable(new_value))
}

/// A new version for every marker that names `namespace:policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    pub namespace: &'a str,
    pub policy: &'a str,
    pub version: &'a str,
}

impl<'a> Update<'a> {
    /// Reads `namespace:policy=version` (the form golden cases and the CLI use).
    pub fn parse(s: &'a str) -> Option<Self> {
        let (reference, version) = s.split_once('=')?;
        let (namespace, policy) = reference.split_once(':')?;
        (!namespace.is_empty() && !policy.is_empty() && !version.is_empty()).then_some(Update {
            namespace,
            policy,
            version,
        })
    }
}

/// One field [`apply`] rewrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// 1-based line number (the same in the old and the new text).
    pub line: usize,
    /// 0-based document index within the file.
    pub document: usize,
    /// The field's mapping key, if it has one.
    pub key: Option<String>,
    pub namespace: String,
    pub policy: String,
    /// The version the field held (see [`Marker::current_version`]).
    pub old: String,
    /// The version it holds now.
    pub new: String,
    /// Bytes replaced in the old text.
    pub original_range: Range<usize>,
    /// Bytes that replaced them in the new text.
    pub range: Range<usize>,
}

/// The result of [`apply`]: the new text (borrowed when nothing changed) and every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited<'a> {
    pub text: Cow<'a, str>,
    pub changes: Vec<Change>,
}

impl Edited<'_> {
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Why [`apply`] left a file unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("{} unusable marker(s); first: {}", errors.len(), errors.first().map(ToString::to_string).unwrap_or_default())]
    Markers { errors: Vec<MarkerError> },
    #[error("line {line}: the rewritten text no longer reads back as the intended change")]
    Verification { line: usize },
}

impl ApplyError {
    /// The variant's name, stable enough for a condition reason or a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ApplyError::Markers { .. } => "Markers",
            ApplyError::Verification { .. } => "Verification",
        }
    }
}

/// Applies `updates` to every marker of `text` in one pass and reports every change.
///
/// Markers naming a policy not in `updates`, `:name` markers, and fields that already hold the
/// new version are left alone. Every byte outside the reported [`Change::original_range`]s is
/// copied unchanged. When any marker in the file cannot be read, or a version cannot be
/// written in a field's quote style, nothing is changed and every problem is returned.
pub fn apply<'a>(text: &'a str, updates: &[Update<'_>]) -> Result<Edited<'a>, ApplyError> {
    let unchanged = || Edited {
        text: Cow::Borrowed(text),
        changes: Vec::new(),
    };
    if !may_have_markers(text) {
        return Ok(unchanged());
    }
    let (markers, mut errors) = find_markers(text);
    let mut planned = Vec::new();
    for m in &markers {
        let Some(u) = updates
            .iter()
            .rev()
            .find(|u| u.namespace == m.namespace && u.policy == m.policy)
        else {
            continue;
        };
        if m.field == MarkerField::ImageName {
            continue;
        }
        match encode_for(m, u.version) {
            Ok(bytes) if bytes == text[m.value_range.clone()] => {}
            Ok(bytes) => planned.push((m, u.version, bytes)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(MarkerError::line);
        return Err(ApplyError::Markers { errors });
    }
    if planned.is_empty() {
        return Ok(unchanged());
    }
    let grown: usize = planned.iter().map(|(_, _, b)| b.len()).sum();
    let mut out = String::with_capacity(text.len() + grown);
    let mut changes = Vec::with_capacity(planned.len());
    let mut copied = 0;
    for (m, version, bytes) in planned {
        out.push_str(&text[copied..m.value_range.start]);
        let start = out.len();
        out.push_str(&bytes);
        copied = m.value_range.end;
        changes.push(Change {
            line: m.line,
            document: m.document,
            key: m.key.clone(),
            namespace: m.namespace.clone(),
            policy: m.policy.clone(),
            old: m.current_version().to_owned(),
            new: version.to_owned(),
            original_range: m.value_range.clone(),
            range: start..out.len(),
        });
    }
    out.push_str(&text[copied..]);
    verify(&markers, &changes, &out)?;
    Ok(Edited {
        text: Cow::Owned(out),
        changes,
    })
}

/// Reads the new text back: the same markers, the changed ones holding their new version.
fn verify(before: &[Marker], changes: &[Change], out: &str) -> Result<(), ApplyError> {
    let (after, errors) = find_markers(out);
    if let Some(e) = errors.first() {
        return Err(ApplyError::Verification { line: e.line() });
    }
    if after.len() != before.len() {
        let line = changes.first().map_or(1, |c| c.line);
        return Err(ApplyError::Verification { line });
    }
    for (a, b) in after.iter().zip(before) {
        let changed = changes.iter().find(|c| c.line == b.line);
        let ok = a.line == b.line
            && a.namespace == b.namespace
            && a.policy == b.policy
            && a.key == b.key
            && match changed {
                Some(c) => a.current_version() == c.new && a.value_range == c.range,
                None => a.value == b.value,
            };
        if !ok {
            return Err(ApplyError::Verification { line: b.line });
        }
    }
    Ok(())
}

/// Values a YAML 1.1 or 1.2 reader resolves to something other than a string when plain.
static NOT_A_STRING: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"(?ix)^(?:
            [-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?(?:e[-+]?[0-9]+)?   # int, float
          | 0x[0-9a-f_]+ | 0o[0-7_]+ | 0b[01_]+                     # based ints
          | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?        # YAML 1.1 sexagesimal
          | [-+]?\.inf | \.nan
          | null | ~ | true | false | yes | no | on | off | y | n
        )$",
    )
    .expect("static regex")
});

fn encode(value: &str, quote: Quote) -> Option<String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-+:/@".contains(c);
    match quote {
        Quote::Plain => (value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.chars().all(safe)
            && !value.ends_with(':')
            && !NOT_A_STRING.is_match(value))
        .then(|| value.to_owned()),
        Quote::Single => (!value.chars().any(char::is_control)).then(|| value.replace('\'', "''")),
        Quote::Double => (!value.chars().any(char::is_control))
            .then(|| value.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

/// `repo:tag@sha256:…` → `repo:tag`: a digest pins the old image.
fn strip_digest(value: &str) -> &str {
    value.split_once('@').map_or(value, |(v, _)| v)
}

fn split_image_tag(value: &str) -> (&str, Option<&str>) {
    let value = strip_digest(value);
    // The tag follows the last ':' after the last '/', so `host:5000/app` has no tag.
    let slash = value.rfind('/').map_or(0, |i| i + 1);
    match value[slash..].rfind(':') {
        Some(i) => (&value[..slash + i], Some(&value[slash + i + 1..])),
        None => (value, None),
    }
}

/// Reads one line that mentions a marker word: `None` when it holds no marker (a commented-out
/// line, or the word inside a quoted string), else the marker or why it is unusable.
fn scan_line(
    line: &str,
    line_start: usize,
    line_no: usize,
    document: usize,
) -> Option<Result<Marker, MarkerError>> {
    let read = match read_line(line) {
        Ok(r) => r,
        Err(line::Unreadable(at)) => {
            // A marker word with no `#` on the line sits inside a value, not in a comment.
            return line.contains('#').then(|| {
                Err(MarkerError::Unreadable {
                    line: line_no,
                    near: line[at..].chars().take(40).collect(),
                })
            });
        }
    };
    if read.comment_only {
        return None;
    }
    let comment_at = read.comment_at?;
    let comment = &line[comment_at + 1..];
    if !(comment.contains("$upkeep") || comment.contains("$imagepolicy")) {
        return None;
    }
    let Some((syntax, reference)) = parse_marker_json(comment) else {
        return Some(Err(MarkerError::MalformedMarker {
            line: line_no,
            comment: comment.trim().to_owned(),
        }));
    };
    Some(parse_marked(
        read, line_start, line_no, document, syntax, reference,
    ))
}

fn parse_marked(
    read: line::Line,
    line_start: usize,
    line_no: usize,
    document: usize,
    syntax: MarkerSyntax,
    reference: &str,
) -> Result<Marker, MarkerError> {
    if reference.contains("${") {
        return Err(MarkerError::UnresolvedVariable {
            line: line_no,
            reference: reference.to_owned(),
        });
    }
    let parts: Vec<&str> = reference.split(':').collect();
    let bad = || MarkerError::BadReference {
        line: line_no,
        reference: reference.to_owned(),
    };
    let (namespace, policy, field) = match (syntax, parts.as_slice()) {
        (MarkerSyntax::Upkeep, [ns, name]) | (MarkerSyntax::FluxImagePolicy, [ns, name, "tag"]) => {
            (*ns, *name, MarkerField::Version)
        }
        (MarkerSyntax::FluxImagePolicy, [ns, name]) => (*ns, *name, MarkerField::ImageWithTag),
        (MarkerSyntax::FluxImagePolicy, [ns, name, "name"]) => (*ns, *name, MarkerField::ImageName),
        _ => return Err(bad()),
    };
    if namespace.is_empty() || policy.is_empty() {
        return Err(bad());
    }
    let (key, scalar) = match read.value {
        Value::Scalar(s) => (read.key, s),
        Value::Flow(mut items) => match items.len() {
            0 => return Err(MarkerError::NoValue { line: line_no }),
            1 => items
                .pop()
                .map(|(k, s)| (k.or(read.key), s))
                .expect("one item"),
            count => {
                return Err(MarkerError::AmbiguousFlow {
                    line: line_no,
                    count,
                });
            }
        },
        Value::None | Value::Alias => return Err(MarkerError::NoValue { line: line_no }),
    };
    if scalar.value.contains("${") {
        return Err(MarkerError::VariableValue {
            line: line_no,
            value: scalar.value,
        });
    }
    Ok(Marker {
        line: line_no,
        document,
        key,
        value: scalar.value,
        value_range: line_start + scalar.inner.start..line_start + scalar.inner.end,
        quote: scalar.quote,
        syntax,
        field,
        namespace: namespace.to_owned(),
        policy: policy.to_owned(),
    })
}

/// Parses `{"$upkeep": "ns:name"}` (whitespace allowed) into its syntax and reference.
fn parse_marker_json(s: &str) -> Option<(MarkerSyntax, &str)> {
    let s = s.trim().strip_prefix('{')?.trim_start();
    let s = s.strip_prefix('"')?;
    let (name, s) = s.split_once('"')?;
    let syntax = match name {
        "$upkeep" => MarkerSyntax::Upkeep,
        "$imagepolicy" => MarkerSyntax::FluxImagePolicy,
        _ => return None,
    };
    let s = s
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let (reference, s) = s.split_once('"')?;
    s.trim_start()
        .strip_prefix('}')?
        .trim()
        .is_empty()
        .then_some((syntax, reference))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_markers_table() {
        // (line, expected (key, value, quote, field, ns, policy) or None, reason)
        type Want<'a> = Option<(
            Option<&'a str>,
            &'a str,
            Quote,
            MarkerField,
            &'a str,
            &'a str,
        )>;
        let cases: &[(&str, Want<'_>, &str)] = &[
            (
                r#"  version: 1.2.3 # {"$upkeep": "default:nginx"}"#,
                Some((
                    Some("version"),
                    "1.2.3",
                    Quote::Plain,
                    MarkerField::Version,
                    "default",
                    "nginx",
                )),
                "App CR spec.version, plain scalar",
            ),
            (
                r#"      version: "1.2.3" # {"$upkeep": "flux-system:podinfo"}"#,
                Some((
                    Some("version"),
                    "1.2.3",
                    Quote::Double,
                    MarkerField::Version,
                    "flux-system",
                    "podinfo",
                )),
                "HelmRelease chart version, double quotes kept",
            ),
            (
                r#"  targetRevision: '0.1.8'   #   {"$upkeep":"argocd:app"}"#,
                Some((
                    Some("targetRevision"),
                    "0.1.8",
                    Quote::Single,
                    MarkerField::Version,
                    "argocd",
                    "app",
                )),
                "Argo CD targetRevision, single quotes, odd spacing in the marker",
            ),
            (
                r#"  - version: 2.0.0 # {"$upkeep": "ns:dep"}"#,
                Some((
                    Some("version"),
                    "2.0.0",
                    Quote::Plain,
                    MarkerField::Version,
                    "ns",
                    "dep",
                )),
                "Chart.yaml dependency in a sequence",
            ),
            (
                r#"    image: ghcr.io/x/app:v1.0.0 # {"$imagepolicy": "flux-system:app"}"#,
                Some((
                    Some("image"),
                    "ghcr.io/x/app:v1.0.0",
                    Quote::Plain,
                    MarkerField::ImageWithTag,
                    "flux-system",
                    "app",
                )),
                "Flux marker without suffix addresses image:tag",
            ),
            (
                r#"    tag: v1.0.0 # {"$imagepolicy": "flux-system:app:tag"}"#,
                Some((
                    Some("tag"),
                    "v1.0.0",
                    Quote::Plain,
                    MarkerField::Version,
                    "flux-system",
                    "app",
                )),
                "Flux :tag marker addresses the whole scalar",
            ),
            (
                "  version: 1.2.3 # pinned by hand",
                None,
                "an ordinary comment is not a marker",
            ),
            (
                r#"  note: 'a # {"$upkeep": "x:y"}'"#,
                None,
                "a marker inside a quoted string is not a comment",
            ),
        ];
        for (line, want, reason) in cases {
            let (found, errors) = find_markers(line);
            assert!(errors.is_empty(), "{reason}: {errors:?}");
            match want {
                None => assert!(found.is_empty(), "{reason}: found {found:?}"),
                Some((key, value, quote, field, ns, policy)) => {
                    assert_eq!(found.len(), 1, "{reason}");
                    let m = &found[0];
                    assert_eq!(m.key.as_deref(), *key, "{reason}");
                    assert_eq!(m.value, *value, "{reason}");
                    assert_eq!(&line[m.value_range.clone()], *value, "{reason}: range");
                    assert_eq!(m.quote, *quote, "{reason}");
                    assert_eq!(m.field, *field, "{reason}");
                    assert_eq!(
                        (m.namespace.as_str(), m.policy.as_str()),
                        (*ns, *policy),
                        "{reason}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_markers_are_reported_with_their_line() {
        let text = "a: 1\nversion: 1.0.0 # {\"$upkeep\": \"${NS}:app\"}\nv: 2 # {\"$upkeep\": \"justname\"}\nx: # {\"$upkeep\": \"a:b\"}\n";
        let (found, errors) = find_markers(text);
        assert!(found.is_empty());
        assert_eq!(errors.len(), 3);
        assert!(matches!(
            errors[0],
            MarkerError::UnresolvedVariable { line: 2, .. }
        ));
        assert!(matches!(
            errors[1],
            MarkerError::BadReference { line: 3, .. }
        ));
        assert!(matches!(errors[2], MarkerError::NoValue { line: 4 }));
        assert!(errors.iter().all(|e| e.hint().is_some()));
    }

    #[test]
    fn set_version_changes_only_the_scalar() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "k: 1\r\n  version: '1.2.3' # {\"$upkeep\": \"a:b\"}\r\ntail\r\n",
                "1.3.0",
                "k: 1\r\n  version: '1.3.0' # {\"$upkeep\": \"a:b\"}\r\ntail\r\n",
                "CRLF and single quotes kept",
            ),
            (
                "\u{feff}version: \"1.2.3\" # {\"$upkeep\": \"a:b\"}\n",
                "10.0.0",
                "\u{feff}version: \"10.0.0\" # {\"$upkeep\": \"a:b\"}\n",
                "BOM kept, double quotes kept, longer value",
            ),
            (
                "image: reg:5000/app:v1 # {\"$imagepolicy\": \"a:b\"}\n",
                "v2",
                "image: reg:5000/app:v2 # {\"$imagepolicy\": \"a:b\"}\n",
                "registry port is not mistaken for the tag",
            ),
        ];
        for (text, new, expected, reason) in cases {
            let (found, _) = find_markers(text);
            let out = set_version(text, &found[0], new).unwrap();
            assert_eq!(&out, expected, "{reason}");
        }
    }

    #[test]
    fn plain_scalars_that_would_change_meaning_are_refused() {
        let text = "version: 1.0.0 # {\"$upkeep\": \"a:b\"}\n";
        let (found, _) = find_markers(text);
        assert!(set_version(text, &found[0], "1.0 # x").is_err());
        assert!(set_version(text, &found[0], "").is_err());
    }
}

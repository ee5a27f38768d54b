//! Manifests: the version fields that upkeep markers point at, and byte-exact rewrites of them.
//!
//! GitOps repositories are edited by people; a tool that reformats their YAML (reorders keys,
//! drops comments, changes quotes) makes every pull request noisy and loses trust. So upkeep
//! never re-serialises a manifest: it finds the *line* a marker comment sits on, reads the
//! scalar on that line, and replaces exactly those bytes, keeping the quote style.
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
//! - **Checked against a real parse, verified after.** A line is not a YAML node: a scalar may
//!   continue on the next line, `? key` makes a key of what looks like a value, an anchored
//!   value is repeated by its aliases. So the line reader's answer is only a candidate:
//!   [`find_markers`] parses the file (granit-parser, events with byte spans) and keeps a
//!   marker only when its bytes are exactly one scalar on one line, in the quote style and with
//!   the value the line reader read, and a mapping value, sequence item or document root — not
//!   a key, not under an explicit or complex key, not anchored, not inside an anchored node an
//!   alias repeats. Anything else is a per-field error ([`MarkerError::MultiLineScalar`],
//!   [`MarkerError::ExplicitKey`], [`MarkerError::NotAValue`], [`MarkerError::AnchoredScalar`],
//!   [`MarkerError::BlockScalar`], [`MarkerError::Misread`], [`MarkerError::InvalidYaml`],
//!   [`MarkerError::TooDeep`]). After editing, [`apply`] parses the new text and compares it
//!   with the old event by event: only the edited scalars may differ, each holding exactly the
//!   intended value in the same style. A marked line inside a literal block scalar is checked
//!   and verified the same way in the block's text, parsed as the YAML it embeds; the block's
//!   new text must be its old text with exactly those bytes replaced. Text that cannot be
//!   verified is never returned.
//! - **Per field, not per file.** A marker that cannot be read or edited is reported with its
//!   line and left alone; the other fields of the same file are still edited, and the new text
//!   is returned only when all of it verifies ([`Edited::refused`]).
//! - **Bounded work.** Parsing is linear; collections nested deeper than [`MAX_DEPTH`] levels
//!   are refused before any deep work ([`MarkerError::TooDeep`]).
//!
//! **Speed.** A repository scan reads thousands of files, most without markers. [`find_markers`]
//! and [`apply`] first look for the substrings `$upkeep` and `$imagepolicy` in the whole
//! text (a vectorised substring search, no line splitting, no allocation); a file without
//! them is rejected at memory speed and [`apply`] returns it borrowed, unchanged. Only files
//! with markers are parsed: [`find_markers`] once, [`apply`] twice (before and after) when it
//! writes anything, and not at all when no field changes.

mod line;
mod structure;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use line::{Value, read_line};
pub use structure::MAX_DEPTH;
use structure::{Candidate, Edit, ParseError, Refusal};

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
    /// Byte offset of the marker comment's `#`.
    comment_at: usize,
}

impl Marker {
    /// The scalar as the line reader saw it, for checking against the parse.
    fn candidate(&self) -> Candidate<'_> {
        let quoted = usize::from(self.quote != Quote::Plain);
        Candidate {
            outer: self.value_range.start - quoted..self.value_range.end + quoted,
            comment_at: self.comment_at,
            quote: self.quote,
            value: &self.value,
        }
    }

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
    #[error(
        "line {line}: the file is not valid YAML (line {at}: {reason}), so the marked value is left alone"
    )]
    InvalidYaml {
        line: usize,
        at: usize,
        reason: String,
    },
    #[error(
        "line {line}: the file nests collections deeper than {MAX_DEPTH} levels (line {at}), so the marked value is left alone"
    )]
    TooDeep { line: usize, at: usize },
    #[error(
        "line {line}: the marked value spans lines {first}-{last}; only a value on one line is edited"
    )]
    MultiLineScalar {
        line: usize,
        first: usize,
        last: usize,
    },
    #[error(
        "line {line}: the marker sits in a folded block scalar (`>`) or in YAML embedded too deep"
    )]
    BlockScalar { line: usize },
    #[error("line {line}: the marked value belongs to an explicit (`?`) or complex mapping key")]
    ExplicitKey { line: usize },
    #[error("line {line}: the marked scalar is a mapping key (or part of one), not a value")]
    NotAValue { line: usize },
    #[error(
        "line {line}: the marked value is anchored, or inside a node an alias repeats (&{anchor}): the aliases would change with it"
    )]
    AnchoredScalar { line: usize, anchor: String },
    #[error("line {line}: the marked line does not read as the YAML parser reads it")]
    Misread { line: usize },
    #[error(
        "line {line}: the edited text did not read back as exactly the intended change, so this field is left alone"
    )]
    Unverified { line: usize },
}

impl MarkerError {
    /// The per-field error for a marker at `line` that the structure check refused.
    fn refused(line: usize, r: Refusal) -> Self {
        match r {
            Refusal::Parse(e) => Self::unparsable(line, e),
            Refusal::MultiLine { first, last } => {
                MarkerError::MultiLineScalar { line, first, last }
            }
            Refusal::Block => MarkerError::BlockScalar { line },
            Refusal::ExplicitKey => MarkerError::ExplicitKey { line },
            Refusal::NotAValue => MarkerError::NotAValue { line },
            Refusal::Anchored(anchor) => MarkerError::AnchoredScalar { line, anchor },
            Refusal::Misread => MarkerError::Misread { line },
        }
    }

    fn unparsable(line: usize, e: ParseError) -> Self {
        match e {
            ParseError::Invalid { at, reason } => MarkerError::InvalidYaml { line, at, reason },
            ParseError::TooDeep { at } => MarkerError::TooDeep { line, at },
        }
    }
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
            | MarkerError::Unreadable { line, .. }
            | MarkerError::InvalidYaml { line, .. }
            | MarkerError::TooDeep { line, .. }
            | MarkerError::MultiLineScalar { line, .. }
            | MarkerError::BlockScalar { line }
            | MarkerError::ExplicitKey { line }
            | MarkerError::NotAValue { line }
            | MarkerError::AnchoredScalar { line, .. }
            | MarkerError::Misread { line }
            | MarkerError::Unverified { line } => *line,
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
            MarkerError::InvalidYaml { .. } => "InvalidYaml",
            MarkerError::TooDeep { .. } => "TooDeep",
            MarkerError::MultiLineScalar { .. } => "MultiLineScalar",
            MarkerError::BlockScalar { .. } => "BlockScalar",
            MarkerError::ExplicitKey { .. } => "ExplicitKey",
            MarkerError::NotAValue { .. } => "NotAValue",
            MarkerError::AnchoredScalar { .. } => "AnchoredScalar",
            MarkerError::Misread { .. } => "Misread",
            MarkerError::Unverified { .. } => "Unverified",
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
            MarkerError::InvalidYaml { at, .. } => Some(format!(
                "fix the YAML at line {at} (`upkeep validate FILE` shows it); until then no marker in the file is edited"
            )),
            MarkerError::TooDeep { .. } => {
                Some("no manifest needs this depth; flatten the document".into())
            }
            MarkerError::MultiLineScalar { .. } => Some(
                r#"write the value on the marker's line: version: 1.2.3 # {"$upkeep": "…"}"#.into(),
            ),
            MarkerError::BlockScalar { .. } => Some(
                "embed YAML in a literal block (`|`), or mark the field outside the block".into(),
            ),
            MarkerError::ExplicitKey { .. } => Some(
                "write the field as `key: value # marker` with a plain one-line key, not `? key`"
                    .into(),
            ),
            MarkerError::NotAValue { .. } => Some(
                "put the marker after the value (`key: value # marker`); keys are never edited"
                    .into(),
            ),
            MarkerError::AnchoredScalar { anchor, .. } => Some(format!(
                "mark the value where it is used, or remove the anchor &{anchor} and its aliases"
            )),
            MarkerError::Misread { .. } => Some(
                "write the marked line as `key: value # marker` with a plain or simply quoted value"
                    .into(),
            ),
            MarkerError::Unverified { .. } => Some(
                "the file is left as it was for this field; please report this line as a bug".into(),
            ),
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

/// Every marker in `text` that can be edited, and every marker that cannot (with its line and
/// why), in file order.
///
/// Reads marked lines, then checks each against a parse of the whole text (see the module
/// header); a file without marker words is not parsed.
pub fn find_markers(text: &str) -> (Vec<Marker>, Vec<MarkerError>) {
    let read = read(text);
    let mut errors = read.line_errors;
    errors.extend(read.refused.into_iter().map(|(_, e)| e));
    errors.sort_by_key(MarkerError::line);
    (read.markers, errors)
}

/// A text read for markers once: what [`find_markers`] finds, and the parse that
/// [`Read::apply`] verifies its edits against, so a planner that lists the fields and then
/// edits them parses the original text once.
#[derive(Debug)]
pub struct Read<'a> {
    text: &'a str,
    parsed: Option<structure::Parsed<'a>>,
    /// Markers that may be edited.
    markers: Vec<Marker>,
    /// Lines the line reader could not read as a marked field.
    line_errors: Vec<MarkerError>,
    /// Markers the parse refused, with their namespace and policy.
    refused: Vec<((String, String), MarkerError)>,
}

/// Reads `text` for markers (see [`find_markers`] and [`Read::apply`]).
pub fn read(text: &str) -> Read<'_> {
    let (mut found, line_errors) = read_markers(text);
    let mut refused = Vec::new();
    let mut parsed = None;
    if !found.is_empty() {
        match structure::parse(text) {
            Ok(p) => {
                found.retain(|m| match structure::check(&p, &m.candidate()) {
                    Ok(()) => true,
                    Err(r) => {
                        refused.push((
                            (m.namespace.clone(), m.policy.clone()),
                            MarkerError::refused(m.line, r),
                        ));
                        false
                    }
                });
                parsed = Some(p);
            }
            Err(e) => refused.extend(found.drain(..).map(|m| {
                (
                    (m.namespace.clone(), m.policy.clone()),
                    MarkerError::unparsable(m.line, e.clone()),
                )
            })),
        }
    }
    Read {
        text,
        parsed,
        markers: found,
        line_errors,
        refused,
    }
}

impl<'a> Read<'a> {
    /// The markers that may be edited, in file order.
    pub fn markers(&self) -> &[Marker] {
        &self.markers
    }

    /// Every marked line that cannot be used, in file order (as [`find_markers`] gives them).
    pub fn errors(&self) -> Vec<MarkerError> {
        let mut errors = self.line_errors.clone();
        errors.extend(self.refused.iter().map(|(_, e)| e.clone()));
        errors.sort_by_key(MarkerError::line);
        errors
    }

    /// [`apply`] on the text read, reusing its parse.
    pub fn apply(&self, updates: &[Update<'_>]) -> Result<Edited<'a>, ApplyError> {
        let text = self.text;
        let wanted = |ns: &str, policy: &str| {
            updates
                .iter()
                .any(|u| u.namespace == ns && u.policy == policy)
        };
        let mut refused: Vec<MarkerError> = self.line_errors.clone();
        refused.extend(
            self.refused
                .iter()
                .filter(|((ns, policy), _)| wanted(ns, policy))
                .map(|(_, e)| e.clone()),
        );
        let unchanged = |mut refused: Vec<MarkerError>| {
            refused.sort_by_key(MarkerError::line);
            Edited {
                text: Cow::Borrowed(text),
                changes: Vec::new(),
                refused,
            }
        };
        let mut planned = Vec::new();
        for m in &self.markers {
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
                Ok(bytes) => planned.push(Planned {
                    marker: m,
                    version: u.version,
                    bytes,
                }),
                Err(e) => refused.push(e),
            }
        }
        let Some(parsed) = &self.parsed else {
            return Ok(unchanged(refused));
        };
        if planned.is_empty() {
            return Ok(unchanged(refused));
        }
        verified(text, parsed, planned, refused)
    }
}

/// The markers the line reader finds, and the lines it cannot read, without parsing the text.
fn read_markers(text: &str) -> (Vec<Marker>, Vec<MarkerError>) {
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

/// Counts `---`-separated documents line by line: [`Documents::see`] gives each line's 0-based
/// document index, the same index [`Marker::document`] and [`Change::document`] carry.
#[derive(Debug, Default)]
pub struct Documents {
    index: usize,
    started: bool,
    ended: bool,
}

impl Documents {
    /// The document `line` (the next line of the text, without its line break) belongs to.
    pub fn see(&mut self, line: &str) -> usize {
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

/// Replaces the version in the marked field, changing only the scalar's bytes, and verifies
/// the result as [`apply`] does (the field must pass the checks of [`find_markers`], and the
/// new text must read back as exactly this change).
pub fn set_version(text: &str, marker: &Marker, version: &str) -> Result<String, MarkerError> {
    let encoded = encode_for(marker, version)?;
    if encoded == text[marker.value_range.clone()] {
        return Ok(text.to_owned());
    }
    let parsed = structure::parse(text).map_err(|e| MarkerError::unparsable(marker.line, e))?;
    structure::check(&parsed, &marker.candidate())
        .map_err(|r| MarkerError::refused(marker.line, r))?;
    let planned = [Planned {
        marker,
        version,
        bytes: encoded,
    }];
    let (out, _, edits) = splice(text, &planned);
    structure::verify(&parsed, &out, &edits)
        .map_err(|_| MarkerError::Unverified { line: marker.line })?;
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

/// The result of [`apply`]: the new text (borrowed when nothing changed), every change, and
/// every field left alone because it could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited<'a> {
    pub text: Cow<'a, str>,
    pub changes: Vec<Change>,
    /// Per-field problems, in line order: every marker that could not be read, and every
    /// marker an update names that could not be edited safely. Those fields are unchanged; the
    /// others are still edited.
    pub refused: Vec<MarkerError>,
}

impl Edited<'_> {
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Why [`apply`] left a whole file unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The edits verify one by one but not together (no known input does this): nothing is
    /// written rather than something unverified.
    #[error("line {line}: the rewritten text no longer reads back as the intended change")]
    Verification { line: usize },
}

impl ApplyError {
    /// The variant's name, stable enough for a condition reason or a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ApplyError::Verification { .. } => "Verification",
        }
    }
}

/// One edit [`apply`] is about to make.
struct Planned<'m, 'v> {
    marker: &'m Marker,
    version: &'v str,
    /// The new bytes (inside the quotes).
    bytes: String,
}

/// Makes `planned` (in file order) in `text`: the new text, the changes, and the edits to verify.
fn splice(text: &str, planned: &[Planned<'_, '_>]) -> (String, Vec<Change>, Vec<Edit>) {
    let grown: usize = planned.iter().map(|p| p.bytes.len()).sum();
    let mut out = String::with_capacity(text.len() + grown);
    let mut changes = Vec::with_capacity(planned.len());
    let mut edits = Vec::with_capacity(planned.len());
    let mut copied = 0;
    for p in planned {
        let m = p.marker;
        out.push_str(&text[copied..m.value_range.start]);
        let start = out.len();
        out.push_str(&p.bytes);
        copied = m.value_range.end;
        let range = start..out.len();
        let quoted = usize::from(m.quote != Quote::Plain);
        edits.push(Edit {
            old: m.value_range.start - quoted..m.value_range.end + quoted,
            new: range.start - quoted..range.end + quoted,
            value: m.value_for(p.version).unwrap_or_default(),
        });
        changes.push(Change {
            line: m.line,
            document: m.document,
            key: m.key.clone(),
            namespace: m.namespace.clone(),
            policy: m.policy.clone(),
            old: m.current_version().to_owned(),
            new: p.version.to_owned(),
            original_range: m.value_range.clone(),
            range,
        });
    }
    out.push_str(&text[copied..]);
    (out, changes, edits)
}

/// Applies `updates` to every marker of `text` in one pass and reports every change.
///
/// Markers naming a policy not in `updates`, `:name` markers, and fields that already hold the
/// new version are left alone. Every byte outside the reported [`Change::original_range`]s is
/// copied unchanged. A field that cannot be edited safely (see [`find_markers`]), or whose
/// quote style cannot hold the version, is left alone and listed in [`Edited::refused`]; the
/// other fields are still edited. The new text is returned only when it verifies: it parses,
/// and differs from the old text only in the edited scalars, each reading as its new value.
pub fn apply<'a>(text: &'a str, updates: &[Update<'_>]) -> Result<Edited<'a>, ApplyError> {
    if !may_have_markers(text) {
        return Ok(Edited {
            text: Cow::Borrowed(text),
            changes: Vec::new(),
            refused: Vec::new(),
        });
    }
    read(text).apply(updates)
}

/// Splices `planned` into `text` and verifies the result against `parsed` (the original's
/// parse), dropping edits that do not verify on their own.
fn verified<'a>(
    text: &'a str,
    parsed: &structure::Parsed<'_>,
    mut planned: Vec<Planned<'_, '_>>,
    mut refused: Vec<MarkerError>,
) -> Result<Edited<'a>, ApplyError> {
    let unchanged = |mut refused: Vec<MarkerError>| {
        refused.sort_by_key(MarkerError::line);
        Edited {
            text: Cow::Borrowed(text),
            changes: Vec::new(),
            refused,
        }
    };
    loop {
        if planned.is_empty() {
            return Ok(unchanged(refused));
        }
        let (out, changes, edits) = splice(text, &planned);
        let failed = match structure::verify(parsed, &out, &edits) {
            Ok(()) => {
                refused.sort_by_key(MarkerError::line);
                return Ok(Edited {
                    text: Cow::Owned(out),
                    changes,
                    refused,
                });
            }
            Err(failed) if failed.len() < planned.len() || planned.len() == 1 => failed,
            // Not pinned on any edit: find the ones that fail on their own.
            Err(_) => {
                let alone: Vec<usize> = (0..planned.len())
                    .filter(|&k| {
                        let (out, _, edits) = splice(text, &planned[k..=k]);
                        structure::verify(parsed, &out, &edits).is_err()
                    })
                    .collect();
                if alone.is_empty() {
                    return Err(ApplyError::Verification {
                        line: planned[0].marker.line,
                    });
                }
                alone
            }
        };
        for &k in failed.iter().rev() {
            let p = planned.remove(k);
            refused.push(MarkerError::Unverified {
                line: p.marker.line,
            });
        }
    }
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
    let comment_at = line_start + read.comment_at.unwrap_or_default();
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
        comment_at,
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
                "k:\r\n  version: '1.2.3' # {\"$upkeep\": \"a:b\"}\r\ntail: x\r\n",
                "1.3.0",
                "k:\r\n  version: '1.3.0' # {\"$upkeep\": \"a:b\"}\r\ntail: x\r\n",
                "CRLF and single quotes kept (valid YAML: set_version verifies)",
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

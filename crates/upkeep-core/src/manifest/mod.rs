//! Manifests: the version fields that upkeep markers point at, and byte-exact rewrites of them.
//!
//! GitOps repositories are edited by people; a tool that reformats their YAML (reorders keys,
//! drops comments, changes quotes) makes every pull request noisy and loses trust. So upkeep
//! never re-serialises a manifest: it finds the *line* a marker comment sits on, reads the
//! scalar on that line, and replaces exactly those bytes, keeping the quote style.
//! Everything else in the file stays byte-identical (CRLF, BOM, comments, indentation,
//! other documents of a multi-document file).
//!
//! Markers, side by side (every form replaces the whole scalar, as Flux's setters do; what is
//! written comes from the policy's decision, an [`Update`]):
//!
//! | marker | writes | example |
//! |---|---|---|
//! | `# {"$upkeep": "ns:policy"}` | the selected version | `version: 1.2.4` |
//! | `# {"$imagepolicy": "ns:policy"}` | `<image>:<tag>`, plus `@<digest>` when the policy reflects digests | `image: ghcr.io/x/app:v1.0.1` |
//! | `# {"$imagepolicy": "ns:policy:tag"}` | the tag | `newTag: v1.0.1` |
//! | `# {"$imagepolicy": "ns:policy:name"}` | the image name | `newName: ghcr.io/x/app` |
//! | `# {"$imagepolicy": "ns:policy:digest"}` | the digest | `newDigest: sha256:…` |
//! | `# {"$upkeep": "cluster:ns/name"}` | the workload cluster's version (a cluster upgrade writes it; app automation leaves it alone) | `cluster_release: "29.1.0"` |
//!
//! Flux's forms mean exactly what image-automation-controller writes (its `setters.go`:
//! `LatestRef.String()`, `.Tag`, `.Name`, `.Digest`), so a repository set up for Flux works
//! unchanged, with the same bytes written. `$upkeep` keeps its meaning: the whole scalar is the
//! version.
//!
//! What upkeep adds, and why:
//!
//! - **A form that needs a part the policy lacks is refused, not guessed**
//!   ([`MarkerError::MissingPart`]): a bare or `:name` marker on a policy whose source has no
//!   image name (a Helm HTTP repository, an OCI layout directory), a `:digest` marker on a
//!   policy that does not reflect digests. Flux would write `:tag` or an empty string there.
//! - **A value that cannot be what its marker writes is refused** ([`MarkerError::WrongShape`];
//!   Flux overwrites whatever is there): a bare `$imagepolicy` on a bare version or tag
//!   (`version: 0.1.0` would become `image:0.1.2`; hint: `:tag`), a `:tag` or `$upkeep` field
//!   holding `/`, `:` or `@` (a whole reference would lose its image name), a `:name` field
//!   holding a tag or digest, a `:digest` field not `<algorithm>:<encoded>`. A plain image name
//!   without a tag (`image: image`) stays a valid bare field (Flux's own golden case writes
//!   over it), and an empty value is a placeholder any form fills.
//! - **The fields of one policy in one file are written together or not at all**
//!   ([`MarkerError::HeldTogether`]): a kustomize `newTag` moved without its `newDigest` would
//!   deploy a mismatched pair, so a field of the policy that cannot be written (any refusal
//!   above or below, or a failed verification) holds the policy's other fields in the file.
//!   Other policies' fields are still written.
//! - **Digests.** A digest in a value is part of the value: a bare field `repo:1.2@sha256:…`
//!   becomes exactly what the policy's reference is (with the new digest when the policy
//!   reflects digests, without one when it does not, as Flux writes it); the old digest names
//!   the old image, so keeping it would make the update a no-op. A `:tag` or `$upkeep` field
//!   holding `v4@sha256:…` was once rewritten to the new tag without its digest; that silently
//!   dropped a pin, so it is now refused with the hint to mark the whole reference.
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
//! - **Per policy, not per file.** A marker that cannot be read or edited is reported with its
//!   line and left alone, with the other fields of its policy in the file; the fields of other
//!   policies in the same file are still edited, and the new text is returned only when all of
//!   it verifies ([`Edited::refused`]).
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
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::LazyLock;

use line::{Value, read_line};
pub use structure::MAX_DEPTH;
use structure::{Candidate, Edit, ParseError, Refusal};

/// The reference word of a cluster marker: `{"$upkeep": "cluster:<namespace>/<name>"}`.
const CLUSTER_MARKER_WORD: &str = "cluster";
/// What a cluster marker's reference starts with.
pub const CLUSTER_MARKER_PREFIX: &str = "cluster:";

/// Which marker syntax a field used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerSyntax {
    Upkeep,
    FluxImagePolicy,
}

/// What a marker writes: the forms Flux's image automation defines, plus upkeep's own.
///
/// Every form replaces the whole scalar, as Flux's setters do; what is written comes from the
/// policy's decision (see [`Update`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerForm {
    /// `{"$upkeep": "ns:policy"}`: the whole scalar is the version (the selected tag).
    Version,
    /// `{"$imagepolicy": "ns:policy"}`: the full image reference `<image>:<tag>`, plus
    /// `@<digest>` when the policy reflects digests.
    Reference,
    /// `{"$imagepolicy": "ns:policy:tag"}`: the tag alone.
    Tag,
    /// `{"$imagepolicy": "ns:policy:name"}`: the image name alone.
    Name,
    /// `{"$imagepolicy": "ns:policy:digest"}`: the digest alone (`sha256:…`).
    Digest,
    /// `{"$upkeep": "cluster:<namespace>/<name>"}`: the whole scalar is a workload cluster's
    /// version. The marker's [`Marker::namespace`] and [`Marker::policy`] hold the cluster's
    /// namespace and name; no app [`Update`] ever matches it (cluster upgrades write it, with
    /// [`set_value`]).
    Cluster,
}

impl MarkerForm {
    /// The suffix the marker reference carries (`""` for the bare forms).
    pub fn suffix(self) -> &'static str {
        match self {
            MarkerForm::Version | MarkerForm::Reference | MarkerForm::Cluster => "",
            MarkerForm::Tag => ":tag",
            MarkerForm::Name => ":name",
            MarkerForm::Digest => ":digest",
        }
    }
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
    pub form: MarkerForm,
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

    /// The marker's reference as written (`ns:policy`, `ns:policy:tag`, `cluster:ns/name`, …).
    pub fn reference(&self) -> String {
        if self.form == MarkerForm::Cluster {
            return format!("{CLUSTER_MARKER_PREFIX}{}/{}", self.namespace, self.policy);
        }
        format!("{}:{}{}", self.namespace, self.policy, self.form.suffix())
    }

    /// Whether this marker names a workload cluster (`cluster:<namespace>/<name>`), not a
    /// policy.
    pub fn is_cluster(&self) -> bool {
        self.form == MarkerForm::Cluster
    }

    /// The tag the field holds now, for the kind of a step: the whole scalar of a `$upkeep` or
    /// `:tag` field, the tag part of a full reference (`None` when it has none), and `None`
    /// for `:name` and `:digest` fields.
    pub fn tag(&self) -> Option<&str> {
        tag_of(self.form, &self.value)
    }

    /// Whether the value the field holds now can be what its form writes (see the module
    /// header); a field that cannot is never rewritten into something else.
    pub fn check_shape(&self) -> Result<(), MarkerError> {
        check_shape(self.form, &self.value).map_err(|()| MarkerError::WrongShape {
            line: self.line,
            value: self.value.clone(),
            form: self.form,
            reference: format!("{}:{}", self.namespace, self.policy),
        })
    }

    /// The scalar (before quoting) this field holds under `update`, or why it cannot be
    /// written: a part the form needs that the policy does not have.
    pub fn target(&self, update: &Update<'_>) -> Result<String, MarkerError> {
        let missing = |part| MarkerError::MissingPart {
            line: self.line,
            part,
            reference: self.reference(),
        };
        match self.form {
            MarkerForm::Version | MarkerForm::Tag | MarkerForm::Cluster => {
                Ok(update.version.to_owned())
            }
            MarkerForm::Reference => {
                let image = update.image.ok_or_else(|| missing(Part::Image))?;
                Ok(match update.digest {
                    Some(d) => format!("{image}:{}@{d}", update.version),
                    None => format!("{image}:{}", update.version),
                })
            }
            MarkerForm::Name => update
                .image
                .map(str::to_owned)
                .ok_or_else(|| missing(Part::Image)),
            MarkerForm::Digest => update
                .digest
                .map(str::to_owned)
                .ok_or_else(|| missing(Part::Digest)),
        }
    }
}

/// A part of the policy's decision that a marker form writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The image name (an `ImageRepository`'s `spec.image`, or an `oci://` ChartSource's
    /// repository).
    Image,
    /// The manifest digest of the selected tag.
    Digest,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Image => "image name",
            Part::Digest => "digest",
        })
    }
}

/// Why a marker could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    #[error("line {line}: marker reference {reference:?} holds an unresolved variable")]
    UnresolvedVariable {
        line: usize,
        reference: String,
        /// The marked scalar as the line reads it (empty when it holds none), so a caller
        /// that lists the field can show its current value.
        value: String,
    },
    #[error(
        "line {line}: marker reference {reference:?} is not <namespace>:<policy>[:tag|:name|:digest]"
    )]
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
    #[error("line {line}: {}", shape_problem(*form, value))]
    WrongShape {
        line: usize,
        value: String,
        form: MarkerForm,
        /// `namespace:policy`.
        reference: String,
    },
    #[error("line {line}: the marker {reference:?} writes the {part}, and the policy has none")]
    MissingPart {
        line: usize,
        part: Part,
        /// The marker's reference as written.
        reference: String,
    },
    #[error(
        "line {line}: held with line {by}: the fields of one policy in a file are written together or not at all"
    )]
    HeldTogether { line: usize, by: usize },
}

/// Why `value` cannot be what a field of `form` holds (the message of
/// [`MarkerError::WrongShape`]).
fn shape_problem(form: MarkerForm, value: &str) -> String {
    match form {
        MarkerForm::Reference => format!(
            "{value:?} looks like a bare version or tag, but a bare $imagepolicy marker writes the full image reference <image>:<tag>"
        ),
        MarkerForm::Tag => format!(
            "{value:?} is not a bare tag (it holds '/', ':' or '@'), but a :tag marker writes the tag alone"
        ),
        MarkerForm::Version | MarkerForm::Cluster => format!(
            "{value:?} is not a bare version (it holds '/', ':' or '@'), but a $upkeep marker writes the version alone"
        ),
        MarkerForm::Name => format!(
            "{value:?} holds a tag or a digest, but a :name marker writes the image name alone"
        ),
        MarkerForm::Digest => format!(
            "{value:?} is not a digest (<algorithm>:<hex>), but a :digest marker writes the digest alone"
        ),
    }
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
            | MarkerError::Unverified { line }
            | MarkerError::WrongShape { line, .. }
            | MarkerError::MissingPart { line, .. }
            | MarkerError::HeldTogether { line, .. } => *line,
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
            MarkerError::WrongShape { .. } => "WrongShape",
            MarkerError::MissingPart { .. } => "MissingPart",
            MarkerError::HeldTogether { .. } => "HeldTogether",
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            MarkerError::UnresolvedVariable { .. } => Some(
                "upkeep reads the repository as committed; write the policy's namespace and name literally".into(),
            ),
            MarkerError::BadReference { reference, .. }
                if reference.starts_with(CLUSTER_MARKER_PREFIX) =>
            {
                Some(r#"a cluster marker is # {"$upkeep": "cluster:<namespace>/<name>"}, e.g. "cluster:org-acme/dev01""#.into())
            }
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
            MarkerError::WrongShape {
                form, reference, ..
            } => Some(match form {
                MarkerForm::Reference => format!(
                    r#"did you mean "{reference}:tag"? ({{"$imagepolicy": "{reference}:tag"}} writes the tag alone)"#
                ),
                MarkerForm::Tag | MarkerForm::Name => format!(
                    r#"did you mean "{reference}"? ({{"$imagepolicy": "{reference}"}} writes the whole reference <image>:<tag>)"#
                ),
                MarkerForm::Version | MarkerForm::Cluster => format!(
                    r#"mark the version's own field, or use {{"$imagepolicy": "{reference}"}} for a whole image reference"#
                ),
                MarkerForm::Digest => format!(
                    r#"mark the field that holds the digest (kustomize newDigest) with "{reference}:digest", and the tag's with "{reference}:tag""#
                ),
            }),
            MarkerError::MissingPart {
                part: Part::Image, ..
            } => Some(
                r#"mark only the tag ("<namespace>:<policy>:tag"): this policy's source is not an image repository"#.into(),
            ),
            MarkerError::MissingPart {
                part: Part::Digest, ..
            } => Some(
                "set digestReflectionPolicy: IfNotPresent or Always on the ImagePolicy".into(),
            ),
            MarkerError::HeldTogether { by, .. } => Some(format!(
                "fix line {by}; a kustomize newTag written without its newDigest would deploy a mismatched pair"
            )),
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
///
/// Cluster markers (`cluster:<namespace>/<name>`, [`MarkerForm::Cluster`]) are listed with the
/// others here; [`Read::markers`] and [`Read::refusals`] leave them out, because app automation
/// leaves them alone.
pub fn find_markers(text: &str) -> (Vec<Marker>, Vec<MarkerError>) {
    let read = read(text);
    let mut errors = read.line_errors;
    errors.extend(read.refused.into_iter().map(|(_, e)| e));
    errors.extend(read.cluster_refused.into_iter().map(|(_, e)| e));
    errors.sort_by_key(MarkerError::line);
    let mut markers = read.markers;
    if !read.clusters.is_empty() {
        markers.extend(read.clusters);
        markers.sort_by_key(|m| m.line);
    }
    (markers, errors)
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
    /// Markers the parse refused, with their namespace, policy and syntax.
    refused: Vec<((String, String, MarkerSyntax), MarkerError)>,
    /// Cluster markers that may be edited (never matched by an app [`Update`]).
    clusters: Vec<Marker>,
    /// Cluster markers the parse refused, with the cluster's namespace and name.
    cluster_refused: Vec<((String, String), MarkerError)>,
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
                            m.is_cluster(),
                            (
                                (m.namespace.clone(), m.policy.clone(), m.syntax),
                                MarkerError::refused(m.line, r),
                            ),
                        ));
                        false
                    }
                });
                parsed = Some(p);
            }
            Err(e) => refused.extend(found.drain(..).map(|m| {
                (
                    m.is_cluster(),
                    (
                        (m.namespace.clone(), m.policy.clone(), m.syntax),
                        MarkerError::unparsable(m.line, e.clone()),
                    ),
                )
            })),
        }
    }
    let (clusters, found): (Vec<Marker>, Vec<Marker>) =
        found.into_iter().partition(Marker::is_cluster);
    let (cluster_refused, refused): (Vec<_>, Vec<_>) =
        refused.into_iter().partition(|(cluster, _)| *cluster);
    let cluster_refused = cluster_refused
        .into_iter()
        .map(|(_, ((ns, name, _), e))| ((ns, name), e))
        .collect();
    let refused = refused.into_iter().map(|(_, r)| r).collect();
    Read {
        text,
        parsed,
        markers: found,
        line_errors,
        refused,
        clusters,
        cluster_refused,
    }
}

impl<'a> Read<'a> {
    /// The markers that may be edited, in file order.
    pub fn markers(&self) -> &[Marker] {
        &self.markers
    }

    /// The cluster markers (`cluster:<namespace>/<name>`) that may be edited, in file order.
    pub fn cluster_markers(&self) -> &[Marker] {
        &self.clusters
    }

    /// The cluster markers the parse refused, with the cluster's namespace and name.
    pub fn cluster_refusals(&self) -> impl Iterator<Item = (&str, &str, &MarkerError)> {
        self.cluster_refused
            .iter()
            .map(|((ns, name), e)| (ns.as_str(), name.as_str(), e))
    }

    /// Every marked line that cannot be used, in file order (as [`find_markers`] gives them).
    pub fn errors(&self) -> Vec<MarkerError> {
        let mut errors = self.line_errors.clone();
        errors.extend(self.refused.iter().map(|(_, e)| e.clone()));
        errors.extend(self.cluster_refused.iter().map(|(_, e)| e.clone()));
        errors.sort_by_key(MarkerError::line);
        errors
    }

    /// The markers the parse refused (a subset of [`Read::errors`]), with the namespace,
    /// policy and syntax each names, in file order.
    pub fn refusals(&self) -> impl Iterator<Item = (&str, &str, MarkerSyntax, &MarkerError)> {
        self.refused
            .iter()
            .map(|((ns, p, syntax), e)| (ns.as_str(), p.as_str(), *syntax, e))
    }

    /// The lines the line reader could not read as a marked field (a subset of
    /// [`Read::errors`]; they name no usable policy).
    pub fn line_errors(&self) -> &[MarkerError] {
        &self.line_errors
    }

    /// [`apply`] on the text read, reusing its parse.
    pub fn apply(&self, updates: &[Update<'_>]) -> Result<Edited<'a>, ApplyError> {
        let text = self.text;
        let update_for = |ns: &str, policy: &str| {
            updates
                .iter()
                .rev()
                .find(|u| u.namespace == ns && u.policy == policy)
        };
        let mut refused: Vec<MarkerError> = self.line_errors.clone();
        // The first line of each named policy that cannot be written: the policy's other
        // fields in this text are held with it.
        let mut blocked: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for ((ns, policy, _), e) in &self.refused {
            if update_for(ns, policy).is_some() {
                refused.push(e.clone());
                let first = blocked.entry((ns, policy)).or_insert(e.line());
                *first = (*first).min(e.line());
            }
        }
        let mut planned = Vec::new();
        for m in &self.markers {
            let Some(u) = update_for(&m.namespace, &m.policy) else {
                continue;
            };
            let value = m.check_shape().and_then(|()| m.target(u));
            match value.and_then(|v| encode_for(m, &v).map(|bytes| (v, bytes))) {
                Ok((_, bytes)) if bytes == text[m.value_range.clone()] => {}
                Ok((value, bytes)) => planned.push(Planned {
                    marker: m,
                    value,
                    bytes,
                }),
                Err(e) => {
                    let first = blocked.entry((&m.namespace, &m.policy)).or_insert(m.line);
                    *first = (*first).min(m.line);
                    refused.push(e);
                }
            }
        }
        planned.retain(|p| {
            match blocked.get(&(p.marker.namespace.as_str(), p.marker.policy.as_str())) {
                Some(&by) => {
                    refused.push(MarkerError::HeldTogether {
                        line: p.marker.line,
                        by,
                    });
                    false
                }
                None => true,
            }
        });
        let unchanged = |mut refused: Vec<MarkerError>| {
            refused.sort_by_key(MarkerError::line);
            Edited {
                text: Cow::Borrowed(text),
                changes: Vec::new(),
                refused,
            }
        };
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

/// Writes `value` as the whole marked scalar, changing only its bytes, and verifies the result
/// as [`apply`] does (the field must pass the checks of [`find_markers`], and the new text must
/// read back as exactly this change). The marker's form is not consulted: this is the raw
/// edit [`apply`] makes once it knows the value.
pub fn set_value(text: &str, marker: &Marker, value: &str) -> Result<String, MarkerError> {
    let encoded = encode_for(marker, value)?;
    if encoded == text[marker.value_range.clone()] {
        return Ok(text.to_owned());
    }
    let parsed = structure::parse(text).map_err(|e| MarkerError::unparsable(marker.line, e))?;
    structure::check(&parsed, &marker.candidate())
        .map_err(|r| MarkerError::refused(marker.line, r))?;
    let planned = [Planned {
        marker,
        value: value.to_owned(),
        bytes: encoded,
    }];
    let (out, _, edits) = splice(text, &planned);
    structure::verify(&parsed, &out, &edits)
        .map_err(|_| MarkerError::Unverified { line: marker.line })?;
    Ok(out)
}

/// The bytes that replace `marker.value_range` to make the field hold `value`.
fn encode_for(marker: &Marker, value: &str) -> Result<String, MarkerError> {
    encode(value, marker.quote).ok_or_else(|| MarkerError::Unrepresentable {
        line: marker.line,
        value: value.to_owned(),
        quote: marker.quote,
    })
}

/// What every marker that names `namespace:policy` is set to: the policy's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update<'a> {
    pub namespace: &'a str,
    pub policy: &'a str,
    /// The selected version (the tag): what `$upkeep` and `:tag` fields hold.
    pub version: &'a str,
    /// The image name (`None` for sources that have none: Helm HTTP repositories, OCI layout
    /// directories); bare `$imagepolicy` and `:name` fields need it.
    pub image: Option<&'a str>,
    /// The selected tag's digest, when the policy reflects digests; `:digest` fields need it.
    pub digest: Option<&'a str>,
}

impl<'a> Update<'a> {
    /// A decision with a version only (no image name, no digest).
    pub fn version(namespace: &'a str, policy: &'a str, version: &'a str) -> Self {
        Update {
            namespace,
            policy,
            version,
            image: None,
            digest: None,
        }
    }

    /// Reads `namespace:policy=<decision>` (the form golden cases use), where the decision is
    /// written as Flux's `LatestRef` prints: `<image>:<tag>[@<digest>]`, or a tag alone
    /// (`<tag>[@<digest>]`, for sources without an image name). A tag never holds `:` or `/`,
    /// so the two cannot be confused.
    pub fn parse(s: &'a str) -> Option<Self> {
        let (reference, decision) = s.split_once('=')?;
        let (namespace, policy) = reference.split_once(':')?;
        let (reference, digest) = match decision.split_once('@') {
            Some((r, d)) => (r, Some(d).filter(|d| !d.is_empty())?.into()),
            None => (decision, None),
        };
        let (image, version) = match split_image_tag(reference) {
            (image, Some(tag)) => (Some(image).filter(|i| !i.is_empty())?.into(), tag),
            (tag, None) if !tag.contains('/') => (None, tag),
            _ => return None,
        };
        (!namespace.is_empty() && !policy.is_empty() && !version.is_empty()).then_some(Update {
            namespace,
            policy,
            version,
            image,
            digest,
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
    /// What the marker writes.
    pub form: MarkerForm,
    /// The whole scalar the field held.
    pub old: String,
    /// The whole scalar it holds now.
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
struct Planned<'m> {
    marker: &'m Marker,
    /// The new scalar (before quoting).
    value: String,
    /// The new bytes (inside the quotes).
    bytes: String,
}

/// Makes `planned` (in file order) in `text`: the new text, the changes, and the edits to verify.
fn splice(text: &str, planned: &[Planned<'_>]) -> (String, Vec<Change>, Vec<Edit>) {
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
            value: p.value.clone(),
        });
        changes.push(Change {
            line: m.line,
            document: m.document,
            key: m.key.clone(),
            namespace: m.namespace.clone(),
            policy: m.policy.clone(),
            form: m.form,
            old: m.value.clone(),
            new: p.value.clone(),
            original_range: m.value_range.clone(),
            range,
        });
    }
    out.push_str(&text[copied..]);
    (out, changes, edits)
}

/// Applies `updates` to every marker of `text` in one pass and reports every change.
///
/// Each marker naming a policy in `updates` gets the whole scalar its form writes
/// ([`Marker::target`]); markers naming other policies, and fields that already hold their
/// new value, are left alone. Every byte outside the reported [`Change::original_range`]s is
/// copied unchanged. A field that cannot be edited safely (see [`find_markers`]), whose value
/// does not fit its form ([`Marker::check_shape`]), whose form needs a part the update lacks,
/// or whose quote style cannot hold the value, is left alone and listed in
/// [`Edited::refused`] — with the other fields of its policy ([`MarkerError::HeldTogether`]);
/// the fields of other policies are still edited. The new text is returned only when it
/// verifies: it parses, and differs from the old text only in the edited scalars, each
/// reading as its new value.
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
    mut planned: Vec<Planned<'_>>,
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
        // A field that does not verify holds the other fields of its policy with it.
        let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
        for &k in &failed {
            let m = planned[k].marker;
            by.entry((m.namespace.clone(), m.policy.clone()))
                .or_insert(m.line);
            refused.push(MarkerError::Unverified { line: m.line });
        }
        let mut k = 0;
        planned.retain(|p| {
            let m = p.marker;
            let keep = if failed.contains(&k) {
                false
            } else if let Some(&first) = by.get(&(m.namespace.clone(), m.policy.clone())) {
                refused.push(MarkerError::HeldTogether {
                    line: m.line,
                    by: first,
                });
                false
            } else {
                true
            };
            k += 1;
            keep
        });
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

/// `repo:tag@sha256:…` → `repo:tag`.
fn strip_digest(value: &str) -> &str {
    value.split_once('@').map_or(value, |(v, _)| v)
}

/// `repo:tag[@digest]` → (`repo`, `Some(tag)`); the tag follows the last ':' after the last
/// '/', so `host:5000/app` has none.
fn split_image_tag(value: &str) -> (&str, Option<&str>) {
    let value = strip_digest(value);
    let slash = value.rfind('/').map_or(0, |i| i + 1);
    match value[slash..].rfind(':') {
        Some(i) => (&value[..slash + i], Some(&value[slash + i + 1..])),
        None => (value, None),
    }
}

/// The tag a field of `form` holding `value` carries (see [`Marker::tag`]).
pub fn tag_of(form: MarkerForm, value: &str) -> Option<&str> {
    match form {
        MarkerForm::Version | MarkerForm::Tag | MarkerForm::Cluster => Some(value),
        MarkerForm::Reference => split_image_tag(value).1,
        MarkerForm::Name | MarkerForm::Digest => None,
    }
}

/// A bare version or tag, as people write them: `0.1.0`, `v1.2`, `1.2.3-rc.1+b5`, `20240101`
/// (but not an image name such as `nginx` or `3scale`).
static VERSION_LIKE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[vV]?[0-9]+(?:[._-][0-9A-Za-z]+)*(?:\+[0-9A-Za-z.-]+)?$")
        .expect("static regex")
});

/// An OCI digest: `<algorithm>:<encoded>` (`sha256:1234567890abcdef`).
static DIGEST: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$").expect("static regex")
});

/// Whether a field of `form` may hold `value` now (see [`Marker::check_shape`]). An empty
/// value is a placeholder any form fills.
fn check_shape(form: MarkerForm, value: &str) -> Result<(), ()> {
    let structured = value.contains(['/', ':', '@']);
    let fits = value.is_empty()
        || match form {
            MarkerForm::Reference => structured || !VERSION_LIKE.is_match(value),
            MarkerForm::Tag | MarkerForm::Version | MarkerForm::Cluster => !structured,
            MarkerForm::Name => !value.contains('@') && split_image_tag(value).1.is_none(),
            MarkerForm::Digest => DIGEST.is_match(value),
        };
    if fits { Ok(()) } else { Err(()) }
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
            value: match &read.value {
                line::Value::Scalar(s) => s.value.clone(),
                _ => String::new(),
            },
        });
    }
    let parts: Vec<&str> = reference.split(':').collect();
    let bad = || MarkerError::BadReference {
        line: line_no,
        reference: reference.to_owned(),
    };
    let (namespace, policy, form) = match (syntax, parts.as_slice()) {
        (MarkerSyntax::Upkeep, [CLUSTER_MARKER_WORD, cluster]) if cluster.contains('/') => {
            match cluster.split_once('/') {
                Some((ns, name)) if !name.contains('/') => (ns, name, MarkerForm::Cluster),
                _ => return Err(bad()),
            }
        }
        (MarkerSyntax::Upkeep, [ns, name]) => (*ns, *name, MarkerForm::Version),
        (MarkerSyntax::FluxImagePolicy, [ns, name]) => (*ns, *name, MarkerForm::Reference),
        (MarkerSyntax::FluxImagePolicy, [ns, name, suffix]) => (
            *ns,
            *name,
            match *suffix {
                "tag" => MarkerForm::Tag,
                "name" => MarkerForm::Name,
                "digest" => MarkerForm::Digest,
                _ => return Err(bad()),
            },
        ),
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
        form,
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
            MarkerForm,
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
                    MarkerForm::Version,
                    "default",
                    "nginx",
                )),
                "App CR spec.version, plain scalar",
            ),
            (
                r#"  version: 29.1.0 # {"$upkeep": "cluster:org-acme/dev01"}"#,
                Some((
                    Some("version"),
                    "29.1.0",
                    Quote::Plain,
                    MarkerForm::Cluster,
                    "org-acme",
                    "dev01",
                )),
                "a cluster marker: the cluster's namespace and name, not a policy",
            ),
            (
                r#"  version: 1.0.0 # {"$upkeep": "cluster:nginx"}"#,
                Some((
                    Some("version"),
                    "1.0.0",
                    Quote::Plain,
                    MarkerForm::Version,
                    "cluster",
                    "nginx",
                )),
                "without a slash it is the policy nginx in the namespace `cluster`, as before",
            ),
            (
                r#"      version: "1.2.3" # {"$upkeep": "flux-system:podinfo"}"#,
                Some((
                    Some("version"),
                    "1.2.3",
                    Quote::Double,
                    MarkerForm::Version,
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
                    MarkerForm::Version,
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
                    MarkerForm::Version,
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
                    MarkerForm::Reference,
                    "flux-system",
                    "app",
                )),
                "bare Flux marker addresses the whole image reference",
            ),
            (
                r#"    tag: v1.0.0 # {"$imagepolicy": "flux-system:app:tag"}"#,
                Some((
                    Some("tag"),
                    "v1.0.0",
                    Quote::Plain,
                    MarkerForm::Tag,
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
                    assert_eq!(m.form, *field, "{reason}");
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
    fn set_value_changes_only_the_scalar() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "k:\r\n  version: '1.2.3' # {\"$upkeep\": \"a:b\"}\r\ntail: x\r\n",
                "1.3.0",
                "k:\r\n  version: '1.3.0' # {\"$upkeep\": \"a:b\"}\r\ntail: x\r\n",
                "CRLF and single quotes kept (valid YAML: set_value verifies)",
            ),
            (
                "\u{feff}version: \"1.2.3\" # {\"$upkeep\": \"a:b\"}\n",
                "10.0.0",
                "\u{feff}version: \"10.0.0\" # {\"$upkeep\": \"a:b\"}\n",
                "BOM kept, double quotes kept, longer value",
            ),
            (
                "image: reg:5000/app:v1 # {\"$imagepolicy\": \"a:b\"}\n",
                "reg:5000/app:v2",
                "image: reg:5000/app:v2 # {\"$imagepolicy\": \"a:b\"}\n",
                "a whole reference with a registry port is written as is",
            ),
        ];
        for (text, new, expected, reason) in cases {
            let (found, _) = find_markers(text);
            let out = set_value(text, &found[0], new).unwrap();
            assert_eq!(&out, expected, "{reason}");
        }
    }

    #[test]
    fn plain_scalars_that_would_change_meaning_are_refused() {
        let text = "version: 1.0.0 # {\"$upkeep\": \"a:b\"}\n";
        let (found, _) = find_markers(text);
        assert!(set_value(text, &found[0], "1.0 # x").is_err());
        assert!(set_value(text, &found[0], "").is_err());
    }
}

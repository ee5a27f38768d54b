//! Loading manifests from YAML text, files and directory trees, with located errors.
//!
//! First an event-level read (granit-parser, see `locate`) finds each document's text and
//! positions, reports syntax errors, and bounds the rest: a file over [`MAX_FILE_BYTES`],
//! nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH) or with more than
//! [`MAX_NODES`](crate::MAX_NODES) nodes is diagnosed and left alone before anything builds
//! values from it. Then each document's text is read twice by serde-saphyr (see [`crate::yaml`])
//! — once into a [`Value`] to learn its `apiVersion` and `kind`, once into the typed resource —
//! because a typed deserializer is the only thing that locates type errors, and it must be
//! chosen before it runs. serde-saphyr's errors carry a byte offset; the positions tree turns
//! it into the field path. Every read is linear in the file's size; being exact about where a
//! mistake is matters more than one parse.
//!
//! Documents that are not Kubernetes objects (no `apiVersion` and no `kind`, e.g. Helm values
//! files in a GitOps tree) are skipped silently; a document with only one of the two is a
//! mistake and reported.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::cluster::{CLUSTER_API_GROUP, RawCluster};
use crate::flux;
use crate::flux_automation;
use crate::locate::{DocPositions, LineIndex, MAX_DEPTH, MAX_NODES, Pos, Scan, scan};
use crate::yaml::{self, FieldAt, Value};
use crate::{
    AppUpgradeAutomation, ChartSource, ClusterUpgrade, ClusterUpgradePolicy, Diagnostic,
    FieldError, MaintenanceSchedule, Resource, VersionPolicy,
};

/// The API group and version of every upkeep kind.
pub const API_VERSION: &str = "upkeep.dev/v1alpha1";
/// The upkeep kinds, as written in `kind:`.
pub const KINDS: [&str; 6] = [
    "ChartSource",
    "VersionPolicy",
    "AppUpgradeAutomation",
    "MaintenanceSchedule",
    "ClusterUpgrade",
    "ClusterUpgradePolicy",
];

/// The largest file the loader reads, in bytes. Loading is linear, but a file is held in memory
/// several times over while it is read (text, events, positions, values), so one huge file
/// in a repository must not decide how much memory upkeep needs. 8 MiB is several times the
/// largest manifests seen in GitOps repositories (complete CRD bundles such as Argo CD's
/// `install.yaml` are 1–2 MiB) and loads in about 200 MB; larger files are left alone with a
/// diagnostic. [`MAX_NODES`](crate::MAX_NODES) bounds what a dense file of that size costs.
pub const MAX_FILE_BYTES: usize = 8 << 20;
const _: () = assert!(MAX_FILE_BYTES as u64 == crate::walk::MAX_MANIFEST_BYTES);

/// Diagnostics reported per document before the rest are summed up in one: a document with
/// thousands of unknown fields gets a bounded report (and bounded work locating them).
const MAX_DIAGNOSTICS_PER_DOCUMENT: usize = 20;

const TOP_LEVEL_KEYS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];

/// One resource read from a file.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: PathBuf,
    /// Position of the document in its file's stream, 0-based (empty documents count).
    pub index: usize,
    /// 1-based line where the document's content starts.
    pub line: usize,
    pub resource: Resource,
}

/// The valid documents and the problems found. A document with any diagnostic is left out.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub documents: Vec<Document>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files that are not valid YAML at all (their diagnostics are in `diagnostics`): callers
    /// that edit files leave these alone.
    pub unparsable: Vec<PathBuf>,
    /// The upkeep (and Flux image) objects that were left out because they are invalid, by
    /// identity, so that what depends on them can be held with a reason while everything
    /// else goes on.
    pub invalid: Vec<InvalidObject>,
    /// Flux `ImageUpdateAutomation`s waiting for their `GitRepository` (see
    /// [`resolve_automations`]).
    pending: Vec<PendingAutomation>,
    /// Flux `GitRepository` objects read, with `file:line`.
    git_repositories: Vec<(flux_automation::GitRepository, String)>,
}

/// An `ImageUpdateAutomation` converted as far as it goes without its `GitRepository`.
#[derive(Debug, Clone)]
struct PendingAutomation {
    prepared: flux_automation::Prepared,
    file: PathBuf,
    index: usize,
    line: usize,
    /// Where `spec.sourceRef` is, for errors found when resolving.
    at_source_ref: Diagnostic,
}

/// An upkeep or Flux object that did not load, as far as it could be identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidObject {
    pub file: PathBuf,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The upkeep kind it stands for (`VersionPolicy` for a Flux `ImagePolicy`, …).
    pub kind: String,
    /// `metadata.namespace` (`None` when not set).
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `spec.path` of an AppUpgradeAutomation, when it is a string.
    pub path: Option<String>,
    /// The first problem found, for messages.
    pub message: String,
}

impl Loaded {
    pub fn is_ok(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// A file left alone for one reason, `diagnostic`.
    fn unparsable(file: &Path, diagnostic: Diagnostic) -> Loaded {
        Loaded {
            documents: Vec::new(),
            diagnostics: vec![diagnostic],
            unparsable: vec![file.to_path_buf()],
            ..Loaded::default()
        }
    }

    fn extend(&mut self, other: Loaded) {
        self.documents.extend(other.documents);
        self.diagnostics.extend(other.diagnostics);
        self.unparsable.extend(other.unparsable);
        self.invalid.extend(other.invalid);
        self.pending.extend(other.pending);
        self.git_repositories.extend(other.git_repositories);
    }
}

/// Context for one file.
struct FileCtx<'a> {
    file: &'a Path,
    lines: LineIndex<'a>,
    /// Byte length of a stripped BOM, added to offsets so they index the original text.
    bom: usize,
    docs: Vec<DocPositions>,
}

impl FileCtx<'_> {
    fn doc(&self, index: usize) -> Option<&DocPositions> {
        self.docs.get(index)
    }

    /// The text of document `index` alone.
    fn text(&self, index: usize) -> &str {
        self.doc(index)
            .and_then(|d| self.lines.text().get(d.range.clone()))
            .unwrap_or("")
    }

    fn diag(
        &self,
        pos: Pos,
        field: Option<String>,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            offset: pos.offset + self.bom,
            field,
            message,
            hint,
        }
    }

    fn doc_start(&self, index: usize) -> Pos {
        self.doc(index)
            .map_or_else(|| self.lines.pos(1, 1), DocPositions::start)
    }

    fn at_path(&self, index: usize, path: &str) -> Pos {
        self.doc(index)
            .map_or_else(|| self.lines.pos(1, 1), |d| d.locate(path))
    }

    fn field_error(&self, index: usize, e: FieldError) -> Diagnostic {
        let pos = self.at_path(index, &e.path);
        self.diag(pos, Some(e.path), e.message, e.hint)
    }

    /// A serde-saphyr error from reading document `index`, located in the file and named by
    /// field path (see [`yaml::describe`] for the wording).
    fn serde_error(&self, index: usize, e: &serde_saphyr::Error) -> Diagnostic {
        let from = self.doc(index).map_or(0, |d| d.range.start);
        let found = |offset: usize| self.doc(index).and_then(|d| d.found_at(from + offset));
        let described = yaml::describe(e, &found);
        let at = described.offset.map(|o| self.lines.at_offset(from + o));
        let path_at = |pos: Pos| {
            self.doc(index)
                .and_then(|d| d.path_at(pos.offset))
                .filter(|p| !p.is_empty())
        };
        let (pos, field) = match (&described.field, at) {
            (FieldAt::Node, Some(at)) => (at, path_at(at)),
            // serde-saphyr places a missing field at the last key it read, inside the mapping
            // the field is missing from or (for an empty mapping) at the key holding it; the
            // field is named in full and reported where its mapping is written.
            (FieldAt::MissingIn(name), Some(at)) => {
                let parent = self.doc(index).and_then(|d| d.mapping_at(at.offset));
                let field = match &parent {
                    Some(p) if !p.is_empty() => format!("{p}.{name}"),
                    _ => name.clone(),
                };
                let pos = parent
                    .and_then(|p| self.doc(index)?.node_pos(&p))
                    .unwrap_or(at);
                (pos, Some(field))
            }
            (FieldAt::Duplicate, Some(at)) => {
                let parent = self.doc(index).and_then(|d| d.mapping_at(at.offset));
                let pos = parent
                    .as_deref()
                    .and_then(|p| self.doc(index)?.node_pos(p))
                    .unwrap_or(at);
                let hint = format!(
                    "written again at line {} column {}; a key may appear once in a mapping, \
                     remove one of the two",
                    at.line, at.column
                );
                let diagnostic = self.diag(
                    pos,
                    parent.filter(|p| !p.is_empty()),
                    described.message,
                    Some(hint),
                );
                return diagnostic;
            }
            (FieldAt::MissingIn(name), None) => (self.doc_start(index), Some(name.clone())),
            (FieldAt::Node | FieldAt::None | FieldAt::Duplicate, None) => {
                (self.doc_start(index), None)
            }
            (FieldAt::None, Some(at)) => (at, None),
        };
        let hint = described
            .hint
            .or_else(|| field.is_none().then(|| yaml::SYNTAX_HINT.to_owned()));
        self.diag(pos, field, described.message, hint)
    }
}

/// The candidate nearest to `name` by edit distance, if near enough to be a typo.
pub(crate) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What the first pass learned about a document.
enum Head {
    /// Empty or not a Kubernetes object: skipped.
    Skip,
    /// Already diagnosed.
    Bad,
    Upkeep(&'static str),
    /// A Flux image kind at a version read as an upkeep kind: (kind, version).
    Flux(&'static str, &'static str),
    Cluster,
    /// A Flux `ImageUpdateAutomation` at a version read (its version).
    FluxAutomation(&'static str),
    /// A Flux `GitRepository` (read for automations, and kept as [`Resource::Other`]).
    GitRepository(Resource),
    Other(Resource),
}

/// `(metadata.namespace, metadata.name, spec.path)` of a document, where they are strings.
fn identity(value: &Value) -> (Option<String>, Option<String>, Option<String>) {
    let meta = |k: &str| {
        value
            .get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(ToOwned::to_owned)
    };
    let path = value
        .get("spec")
        .and_then(|s| s.get("path"))
        .and_then(Value::as_str)
        .map(ToOwned::to_owned);
    (meta("namespace"), meta("name"), path)
}

fn str_field<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

fn head(ctx: &FileCtx<'_>, index: usize, value: &Value, out: &mut Vec<Diagnostic>) -> Head {
    if value.as_mapping().is_none() {
        return Head::Skip;
    }
    let map = value;
    let api_version = str_field(value, "apiVersion");
    let kind = str_field(value, "kind");
    let (api_version, kind) = match (api_version, kind) {
        (Some(a), Some(k)) => (a, k),
        (None, None) if !map.contains_key("apiVersion") && !map.contains_key("kind") => {
            return Head::Skip;
        }
        (a, _) => {
            let missing = if a.is_none() { "apiVersion" } else { "kind" };
            let pos = if map.contains_key(missing) {
                ctx.at_path(index, missing)
            } else {
                ctx.doc_start(index)
            };
            out.push(ctx.diag(
                pos,
                Some(missing.to_owned()),
                format!("missing or non-string `{missing}`"),
                Some("every resource needs apiVersion and kind, e.g. apiVersion: upkeep.dev/v1alpha1".to_owned()),
            ));
            return Head::Bad;
        }
    };
    let (group, version) = api_version.split_once('/').unwrap_or((api_version, ""));
    if group == "upkeep.dev" {
        if version != "v1alpha1" {
            out.push(ctx.diag(
                ctx.at_path(index, "apiVersion"),
                Some("apiVersion".to_owned()),
                format!("unknown upkeep.dev version {version:?}"),
                Some(format!("use apiVersion: {API_VERSION}")),
            ));
            return Head::Bad;
        }
        let Some(known) = KINDS.iter().find(|k| **k == kind) else {
            let hint = match closest(kind, &KINDS) {
                Some(best) => format!(
                    "did you mean {best}? upkeep.dev kinds: {}",
                    KINDS.join(", ")
                ),
                None => format!("upkeep.dev kinds: {}", KINDS.join(", ")),
            };
            out.push(ctx.diag(
                ctx.at_path(index, "kind"),
                Some("kind".to_owned()),
                format!("unknown upkeep.dev kind {kind:?}"),
                Some(hint),
            ));
            return Head::Bad;
        };
        let unknown: Vec<&str> = map
            .as_mapping()
            .unwrap_or_default()
            .iter()
            .map(|(key, _)| key.as_str().unwrap_or("?"))
            .filter(|name| !TOP_LEVEL_KEYS.contains(name))
            .collect();
        let found: Vec<Diagnostic> = unknown
            .iter()
            .take(MAX_DIAGNOSTICS_PER_DOCUMENT)
            .map(|&name| {
                let hint = closest(name, &TOP_LEVEL_KEYS).map_or_else(
                    || format!("expected one of: {}", TOP_LEVEL_KEYS.join(", ")),
                    |b| format!("did you mean `{b}`?"),
                );
                ctx.diag(
                    ctx.at_path(index, name),
                    Some(name.to_owned()),
                    format!("unknown field `{name}`"),
                    Some(hint),
                )
            })
            .collect();
        push_capped(found, unknown.len(), out);
        return if unknown.is_empty() {
            Head::Upkeep(known)
        } else {
            Head::Bad
        };
    }
    if group == flux::GROUP
        && let Some(flux_kind) = flux::KINDS.iter().find(|k| **k == kind)
    {
        if let Some(v) = flux::VERSIONS.iter().find(|v| **v == version) {
            return Head::Flux(flux_kind, v);
        }
        out.push(unsupported_flux_version(ctx, index, group, version, kind));
        return Head::Bad;
    }
    if group == flux::GROUP && kind == flux_automation::KIND {
        if let Some(v) = flux_automation::VERSIONS.iter().find(|v| **v == version) {
            return Head::FluxAutomation(v);
        }
        out.push(unsupported_flux_version(ctx, index, group, version, kind));
        return Head::Bad;
    }
    let git_repository = group == flux_automation::SOURCE_GROUP
        && kind == "GitRepository"
        && flux_automation::SOURCE_VERSIONS.contains(&version);
    if kind == "Cluster"
        && api_version
            .split_once('/')
            .is_some_and(|(g, v)| g == CLUSTER_API_GROUP && (v == "v1beta1" || v == "v1beta2"))
    {
        return Head::Cluster;
    }
    let other = Resource::Other {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(ToOwned::to_owned),
        namespace: value
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(ToOwned::to_owned),
    };
    if git_repository {
        Head::GitRepository(other)
    } else {
        Head::Other(other)
    }
}

/// Reads and prepares an `ImageUpdateAutomation`; its errors are diagnostics.
fn automation(
    ctx: &FileCtx<'_>,
    index: usize,
    version: &str,
    text: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<flux_automation::Prepared> {
    let object: flux_automation::ImageUpdateAutomation = typed(ctx, index, text, out)?;
    match object.prepare(&format!("{}/{version}", flux::GROUP)) {
        Ok(p) => Some(p),
        Err(errors) => {
            let total = errors.len();
            let found = errors
                .into_iter()
                .take(MAX_DIAGNOSTICS_PER_DOCUMENT)
                .map(|e| ctx.field_error(index, e))
                .collect();
            push_capped(found, total, out);
            None
        }
    }
}

fn typed<T: DeserializeOwned>(
    ctx: &FileCtx<'_>,
    index: usize,
    text: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    match yaml::from_str_deep(text) {
        Ok(t) => Some(t),
        Err(e) => {
            out.push(ctx.serde_error(index, &e));
            None
        }
    }
}

fn convert(
    ctx: &FileCtx<'_>,
    index: usize,
    kind: &str,
    version: &str,
    text: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<Resource> {
    let result: Result<Resource, Vec<FieldError>> = match kind {
        "ChartSource" => {
            let object: ChartSource = typed(ctx, index, text, out)?;
            object.to_core().map(|settings| Resource::ChartSource {
                object: Box::new(object),
                settings: Box::new(settings),
            })
        }
        "VersionPolicy" => {
            let object: VersionPolicy = typed(ctx, index, text, out)?;
            object.to_core().map(|policy| Resource::VersionPolicy {
                object: Box::new(object),
                policy: Box::new(policy),
            })
        }
        "AppUpgradeAutomation" => {
            let object: AppUpgradeAutomation = typed(ctx, index, text, out)?;
            object
                .validate()
                .map(|()| Resource::AppUpgradeAutomation(Box::new(object)))
        }
        "MaintenanceSchedule" => {
            let object: MaintenanceSchedule = typed(ctx, index, text, out)?;
            object
                .to_core()
                .map(|schedule| Resource::MaintenanceSchedule {
                    object: Box::new(object),
                    schedule: Box::new(schedule),
                })
        }
        "ClusterUpgrade" => {
            let object: ClusterUpgrade = typed(ctx, index, text, out)?;
            object
                .validate()
                .map(|()| Resource::ClusterUpgrade(Box::new(object)))
        }
        "ClusterUpgradePolicy" => {
            let object: ClusterUpgradePolicy = typed(ctx, index, text, out)?;
            object
                .validate()
                .map(|()| Resource::ClusterUpgradePolicy(Box::new(object)))
        }
        "ImageRepository" => {
            let repository: flux::ImageRepository = typed(ctx, index, text, out)?;
            repository
                .to_core(&format!("{}/{version}", flux::GROUP))
                .map(|(object, settings)| Resource::ChartSource {
                    object: Box::new(object),
                    settings: Box::new(settings),
                })
        }
        "ImagePolicy" => {
            let image_policy: flux::ImagePolicy = typed(ctx, index, text, out)?;
            image_policy
                .to_core(&format!("{}/{version}", flux::GROUP))
                .map(|(object, policy)| Resource::VersionPolicy {
                    object: Box::new(object),
                    policy: Box::new(policy),
                })
        }
        _ => {
            let raw: RawCluster = typed(ctx, index, text, out)?;
            raw.into_object()
                .map(Resource::Cluster)
                .map_err(|e| vec![e])
        }
    };
    match result {
        Ok(r) => Some(r),
        Err(errors) => {
            let total = errors.len();
            let found = errors
                .into_iter()
                .take(MAX_DIAGNOSTICS_PER_DOCUMENT)
                .map(|e| ctx.field_error(index, e))
                .collect();
            push_capped(found, total, out);
            None
        }
    }
}

/// Adds `found` (at most [`MAX_DIAGNOSTICS_PER_DOCUMENT`] of `total` problems of one document)
/// and, when some were left out, one diagnostic saying how many, placed after the last one.
fn push_capped(found: Vec<Diagnostic>, total: usize, out: &mut Vec<Diagnostic>) {
    let more = total.saturating_sub(found.len());
    let last = found.iter().max_by_key(|d| d.offset).cloned();
    out.extend(found);
    if let Some(last) = last.filter(|_| more > 0) {
        out.push(Diagnostic {
            field: None,
            message: format!("… and {more} more problem(s) in this document"),
            hint: Some("fix the ones above and validate again".to_owned()),
            ..last
        });
    }
}

/// Loads every document of one YAML text. `file` is used only in diagnostics. A Flux
/// `ImageUpdateAutomation` is read as an `AppUpgradeAutomation` when its `GitRepository` is in
/// the same text (the directory loaders look in every file).
pub fn load_str(file: &Path, text: &str) -> Loaded {
    let mut loaded = load_text(file, text);
    resolve_automations(&mut loaded);
    loaded
}

/// Completes every pending `ImageUpdateAutomation` with its `GitRepository` from `loaded`:
/// an `AppUpgradeAutomation` document, or a diagnostic on its `spec.sourceRef` and an
/// [`InvalidObject`] (which holds the fields under its path).
fn resolve_automations(loaded: &mut Loaded) {
    for pending in std::mem::take(&mut loaded.pending) {
        let (ns, name) = &pending.prepared.source;
        let found = loaded.git_repositories.iter().find(|(r, _)| {
            r.metadata.name.as_deref() == Some(name.as_str())
                && r.metadata.namespace.as_deref().unwrap_or("default") == ns
        });
        let source = found.map(|(repository, place)| flux_automation::Source { repository, place });
        let path = pending.prepared.object.spec.path.clone();
        let (namespace, object_name) = (
            pending.prepared.object.metadata.namespace.clone(),
            pending.prepared.object.metadata.name.clone(),
        );
        match pending.prepared.complete(source) {
            Ok(object) => loaded.documents.push(Document {
                file: pending.file,
                index: pending.index,
                line: pending.line,
                resource: Resource::AppUpgradeAutomation(Box::new(object)),
            }),
            Err(e) => {
                loaded.invalid.push(InvalidObject {
                    file: pending.file,
                    line: pending.line,
                    kind: "AppUpgradeAutomation".to_owned(),
                    namespace,
                    name: object_name,
                    path,
                    message: e.message.clone(),
                });
                loaded.diagnostics.push(Diagnostic {
                    message: e.message,
                    hint: e.hint,
                    ..pending.at_source_ref
                });
            }
        }
    }
}

fn load_text(file: &Path, text: &str) -> Loaded {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ('\u{feff}'.len_utf8(), rest),
        None => (0, text),
    };
    if let Some(diagnostic) = too_large(file, body.len()) {
        return Loaded::unparsable(file, diagnostic);
    }
    let mut ctx = FileCtx {
        file,
        lines: LineIndex::new(body),
        bom,
        docs: Vec::new(),
    };
    let mut loaded = Loaded::default();
    // The event pass comes first: it is linear, and what serde-saphyr reads next is bounded by
    // what it found (see `locate`). It is the same parser (granit) serde-saphyr reads with, so
    // a text it refuses is refused here, with its position.
    match scan(body, &ctx.lines) {
        Scan::Parsed(docs) => ctx.docs = docs,
        Scan::TooDeep(at) => {
            let diagnostic = ctx.diag(
                at,
                None,
                format!("nested deeper than {MAX_DEPTH} levels"),
                Some(format!(
                    "upkeep reads YAML with at most {MAX_DEPTH} levels of collections inside \
                     collections (manifests rarely need 20); flatten this value. upkeep leaves \
                     this file alone"
                )),
            );
            return Loaded::unparsable(file, diagnostic);
        }
        Scan::TooManyNodes(at) => {
            let diagnostic = ctx.diag(
                at,
                None,
                format!("more than {MAX_NODES} YAML nodes (keys, values and collections)"),
                Some(
                    "upkeep does not read files this large and leaves this one alone; split it \
                     into smaller files"
                        .to_owned(),
                ),
            );
            return Loaded::unparsable(file, diagnostic);
        }
        Scan::Invalid { at, message, hint } => {
            let diagnostic = ctx.diag(at, None, message, Some(hint));
            return Loaded::unparsable(file, diagnostic);
        }
    }

    // Deserializing recurses once per level of nesting; a document deeper than the caller's
    // stack may take is read on a thread with a stack sized for MAX_DEPTH (see `yaml`).
    if ctx.docs.iter().any(|d| d.depth > yaml::INLINE_DEPTH) {
        let read = std::thread::scope(|s| {
            let (ctx, loaded) = (&ctx, &mut loaded);
            std::thread::Builder::new()
                .stack_size(yaml::DEEP_STACK)
                .spawn_scoped(s, move || read_documents(ctx, loaded))
                .is_ok_and(|reader| reader.join().is_ok())
        });
        if !read {
            let diagnostic = ctx.diag(
                ctx.doc_start(0),
                None,
                "could not start a reader for this deeply nested file".to_owned(),
                Some("upkeep leaves this file alone; flatten it or try again".to_owned()),
            );
            return Loaded::unparsable(file, diagnostic);
        }
    } else {
        read_documents(&ctx, &mut loaded);
    }
    loaded.diagnostics.sort_by_key(|d| d.offset);
    loaded
}

/// Reads every document `ctx.docs` found: its head, then its typed resource (see the module
/// header), into `loaded`.
fn read_documents(ctx: &FileCtx<'_>, loaded: &mut Loaded) {
    let file = ctx.file;
    let mut heads = Vec::new();
    let mut identities = Vec::new();
    // `spec.update.path` of ImageUpdateAutomations (their `spec.path` in `identity`).
    let mut update_paths = Vec::new();
    for index in 0..ctx.docs.len() {
        match yaml::from_str_deep::<Value>(ctx.text(index)) {
            Ok(Value::Null) => heads.push(Head::Skip),
            Ok(value) => {
                identities.push((index, identity(&value)));
                update_paths.push((
                    index,
                    value
                        .get("spec")
                        .and_then(|s| s.get("update"))
                        .and_then(|u| u.get("path"))
                        .and_then(Value::as_str)
                        .map(ToOwned::to_owned),
                ));
                heads.push(head(ctx, index, &value, &mut loaded.diagnostics));
            }
            Err(e) => {
                loaded.diagnostics.push(ctx.serde_error(index, &e));
                loaded.unparsable.push(file.to_path_buf());
                heads.push(Head::Bad);
                break;
            }
        }
    }

    for (index, head) in heads.into_iter().enumerate() {
        let text = ctx.text(index);
        let before = loaded.diagnostics.len();
        let flux_automation = matches!(head, Head::FluxAutomation(_));
        let upkeep_kind = match &head {
            Head::Upkeep(k) => Some((*k).to_owned()),
            Head::Flux(k, _) => Some(flux::upkeep_kind(k).to_owned()),
            Head::Cluster => Some("Cluster".to_owned()),
            Head::FluxAutomation(_) => Some("AppUpgradeAutomation".to_owned()),
            _ => None,
        };
        let resource = match head {
            Head::Skip | Head::Bad => continue,
            Head::Other(resource) => Some(resource),
            Head::GitRepository(resource) => {
                if let Ok(repository) = yaml::from_str_deep::<flux_automation::GitRepository>(text)
                    .map_err(|e| {
                        loaded.diagnostics.push(ctx.serde_error(index, &e));
                    })
                {
                    let place = format!("{}:{}", file.display(), ctx.doc_start(index).line);
                    loaded.git_repositories.push((repository, place));
                }
                Some(resource)
            }
            Head::FluxAutomation(version) => {
                match automation(ctx, index, version, text, &mut loaded.diagnostics) {
                    Some(prepared) => {
                        loaded.pending.push(PendingAutomation {
                            prepared,
                            file: file.to_path_buf(),
                            index,
                            line: ctx.doc_start(index).line,
                            at_source_ref: ctx.field_error(
                                index,
                                FieldError::new("spec.sourceRef", String::new()),
                            ),
                        });
                        continue;
                    }
                    None => None,
                }
            }
            Head::Upkeep(kind) => convert(ctx, index, kind, "", text, &mut loaded.diagnostics),
            Head::Flux(kind, version) => {
                convert(ctx, index, kind, version, text, &mut loaded.diagnostics)
            }
            Head::Cluster => convert(ctx, index, "Cluster", "", text, &mut loaded.diagnostics),
        };
        if resource.is_none()
            && let Some(kind) = upkeep_kind
        {
            let mut id = identities
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, id)| id.clone())
                .unwrap_or_default();
            if flux_automation {
                id.2 = update_paths
                    .iter()
                    .find(|(i, _)| *i == index)
                    .and_then(|(_, p)| p.clone());
            }
            loaded.invalid.push(InvalidObject {
                file: file.to_path_buf(),
                line: ctx.doc_start(index).line,
                kind,
                namespace: id.0,
                name: id.1,
                path: id.2,
                message: loaded.diagnostics[before..]
                    .first()
                    .map(|d| d.message.clone())
                    .unwrap_or_default(),
            });
        }
        if let Some(resource) = resource {
            loaded.documents.push(Document {
                file: file.to_path_buf(),
                index,
                line: ctx.doc_start(index).line,
                resource,
            });
        }
    }
}

/// Loads a file, or every `*.yaml`/`*.yml` under a directory (recursively, sorted by path,
/// hidden entries skipped, never outside the directory: see [`crate::walk`]); a directory's
/// objects are placed in the namespaces kustomize gives them and duplicates are rejected
/// ([`crate::placement::resolve`]). Files the walk
/// skips (links out, loops, unreadable, not UTF-8, too large) become diagnostics at line 1 and
/// are listed in `unparsable`, so callers that edit files leave them alone.
pub fn load_path(path: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    if path.is_dir() {
        let walked = crate::walk::walk(path, "");
        for s in walked.skipped {
            let file = path.join(&s.rel);
            loaded.diagnostics.push(skipped(&file, &s.reason));
            loaded.unparsable.push(file);
        }
        for f in walked.files {
            loaded.extend(load_file(&path.join(&f.rel)));
        }
        crate::placement::resolve(path, &mut loaded);
    } else {
        loaded.extend(load_file(path));
    }
    resolve_automations(&mut loaded);
    loaded
}

/// What the `apiVersion` of an object upkeep acts on starts with (its own kinds, Flux's image
/// kinds, Cluster API clusters): a text without any of these cannot hold one. (The API groups
/// alone are not enough: `upkeep.dev/stage` is a common label.)
pub const RESOURCE_API_VERSIONS: [&str; 4] = [
    "upkeep.dev/v",
    "image.toolkit.fluxcd.io/v",
    "cluster.x-k8s.io/v",
    // Flux's GitRepository, which an ImageUpdateAutomation names.
    "source.toolkit.fluxcd.io/v",
];

/// Like [`load_path`], for callers that only need the objects upkeep acts on (upkeep's own
/// kinds, Flux's image kinds, Cluster API clusters): a file whose text names none of their API
/// groups cannot hold one and is not parsed. In a GitOps repository most files are Apps,
/// HelmReleases and values files, so this reads each of those once, at memory speed, instead
/// of parsing it three times; a marked field in such a file is checked by the writer itself
/// (`upkeep_core::manifest`). Files that cannot be read are reported as by [`load_path`].
pub fn load_resources(path: &Path) -> Loaded {
    load_resources_keeping(path, &|_| false).loaded
}

/// What [`load_resources_keeping`] read.
#[derive(Debug, Default)]
pub struct Resources {
    pub loaded: Loaded,
    /// `(real path from the directory, text, stamp when read)` of the files `keep` chose.
    pub kept: Vec<(String, String, crate::walk::Stamp)>,
    /// Every manifest file of the directory, when the walk met no symlink: then the files
    /// under any of its directories are exactly these files under that path, and a caller
    /// need not walk again.
    pub files: Option<Vec<crate::walk::WalkedFile>>,
    /// Temporary files a killed upkeep left (see [`crate::walk::Walk::leftovers`]).
    pub leftovers: Vec<PathBuf>,
}

/// A file's text and stamp, or why it could not be read.
type ReadResult = Result<(String, crate::walk::Stamp), crate::walk::SkipReason>;

/// Reads each walked file (see [`crate::walk::read_walked`]).
fn read_all(files: &[crate::walk::WalkedFile]) -> Vec<(&crate::walk::WalkedFile, ReadResult)> {
    files
        .iter()
        .map(|f| (f, crate::walk::read_walked(&f.path)))
        .collect()
}

/// [`load_resources`], also handing back the text of every file for which `keep` holds (by
/// its real path from `path`, `/`-separated), so a caller that needs those files next (the
/// planner: files with markers) does not read them a second time. Files are read by two
/// threads: reading 10,000 small files is system calls, and this machine kind has two cores.
pub fn load_resources_keeping(path: &Path, keep: &(dyn Fn(&str) -> bool + Sync)) -> Resources {
    let groups = RESOURCE_API_VERSIONS;
    let mut loaded = Loaded::default();
    let mut kept = Vec::new();
    if !path.is_dir() {
        match read_manifest(path) {
            Ok(text) if groups.iter().any(|g| text.contains(g)) => {
                loaded.extend(load_str(path, &text));
            }
            Ok(_) => {}
            Err(diagnostic) => loaded.extend(Loaded::unparsable(path, *diagnostic)),
        }
        return Resources {
            loaded,
            kept,
            files: None,
            leftovers: Vec::new(),
        };
    }
    let walked = crate::walk::walk(path, "");
    let half = walked.files.len() / 2;
    let (first, second) = walked.files.split_at(half);
    let results = std::thread::scope(|s| {
        let other = s.spawn(|| read_all(second));
        let mut mine = read_all(first);
        mine.extend(other.join().unwrap_or_default());
        mine
    });
    for (f, result) in results {
        let file = path.join(&f.rel);
        match result {
            Ok((text, stamp)) => {
                if groups.iter().any(|g| text.contains(g)) {
                    loaded.extend(load_text(&file, &text));
                }
                if keep(&text) {
                    kept.push((f.rel.clone(), text, stamp));
                }
            }
            Err(reason) => loaded.extend(Loaded::unparsable(&file, skipped(&file, &reason))),
        }
    }
    for s in &walked.skipped {
        let file = path.join(&s.rel);
        loaded.diagnostics.push(skipped(&file, &s.reason));
        loaded.unparsable.push(file);
    }
    crate::placement::resolve(path, &mut loaded);
    resolve_automations(&mut loaded);
    Resources {
        loaded,
        kept,
        files: (walked.links == 0).then_some(walked.files),
        leftovers: walked.leftovers,
    }
}

fn skipped(file: &Path, reason: &crate::walk::SkipReason) -> Diagnostic {
    let line = match reason {
        crate::walk::SkipReason::NotUtf8 { line, .. } => *line,
        _ => 1,
    };
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column: 1,
        offset: 0,
        field: None,
        message: reason.to_string(),
        hint: reason.hint().map(str::to_owned),
    }
}

/// Reads a manifest file as the loader does, for callers that read files themselves before
/// [`load_str`]: only a regular file (a FIFO would block forever), at most [`MAX_FILE_BYTES`],
/// UTF-8 (see [`crate::walk::read_text`]). The error is the diagnostic the loader reports.
pub fn read_manifest(path: &Path) -> Result<String, Box<Diagnostic>> {
    crate::walk::read_text(path).map_err(|reason| Box::new(skipped(path, &reason)))
}

/// The diagnostic for a text of `len` bytes, if that is over [`MAX_FILE_BYTES`].
fn too_large(file: &Path, len: usize) -> Option<Diagnostic> {
    (len > MAX_FILE_BYTES).then(|| Diagnostic {
        file: file.to_path_buf(),
        line: 1,
        column: 1,
        offset: 0,
        field: None,
        message: format!(
            "file is larger than {} MiB ({len} bytes)",
            MAX_FILE_BYTES >> 20
        ),
        hint: Some(
            "upkeep does not read manifests this large and leaves the file alone; split it into \
             smaller files"
                .to_owned(),
        ),
    })
}

fn load_file(path: &Path) -> Loaded {
    match read_manifest(path) {
        Ok(text) => load_text(path, &text),
        Err(diagnostic) => Loaded::unparsable(path, *diagnostic),
    }
}

/// The located error of a Flux kind at an API version upkeep does not read (Flux removed the
/// older ones), with the hint to migrate.
fn unsupported_flux_version(
    ctx: &FileCtx<'_>,
    index: usize,
    group: &str,
    version: &str,
    kind: &str,
) -> Diagnostic {
    ctx.diag(
        ctx.at_path(index, "apiVersion"),
        Some("apiVersion".to_owned()),
        format!("unsupported {group} version {version:?} for {kind}"),
        Some(format!(
            "upkeep reads {kind} at {group}/v1 and {group}/v1beta2; Flux removed older versions \
             (run `flux migrate`), change apiVersion to {group}/v1"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_only_suggests_near_misses() {
        let cands = ["maintenanceWindows", "timeZone", "freeze"];
        assert_eq!(
            closest("maintenanceWindow", &cands),
            Some("maintenanceWindows")
        );
        assert_eq!(
            closest("timezone", &cands),
            Some("timeZone"),
            "case differences are typos"
        );
        assert_eq!(
            closest("banana", &cands),
            None,
            "unrelated names get no suggestion"
        );
    }
}

//! The one YAML reader: serde-saphyr, which kube already brings and which is built on
//! granit-parser, the parser [`crate::locate`] (and `upkeep_core::manifest`, and the Helm index
//! reader) reads events and positions with. Every YAML text upkeep deserializes goes through
//! [`options`], so every caller reads a scalar the same way, and every error serde-saphyr
//! reports becomes upkeep's wording in one place, [`describe`].
//!
//! How text is read (each case is a row of the table tests in `tests/yaml.rs`):
//!
//! - **Scalars are YAML 1.2** (the core schema), as upkeep read them before: `yes`, `on`, `y`
//!   are strings, only `true`/`True`/`TRUE` and the same spellings of false are booleans. A
//!   plain scalar read into a string field is its text (`1.10` stays `1.10`). Kubernetes reads
//!   manifests through sigs.k8s.io/yaml, which is YAML 1.1: there `alwaysAllowed: yes` is
//!   `true`. upkeep refuses it with a located error (`expected a boolean`) rather than guess,
//!   so a file means one thing to both.
//! - **Duplicate keys are errors**, reported at their mapping as before, the hint naming where
//!   the second one is (Kubernetes' strict decoding refuses them too).
//! - **Anchors, aliases and merge keys (`<<`)** are expanded, as Kubernetes expands them;
//!   alias replay is bounded by serde-saphyr's alias limits (a "billion laughs" file ends in
//!   an error, not in memory).
//! - **Bounds.** The event pass in [`crate::locate`] runs first and refuses nesting deeper
//!   than [`MAX_DEPTH`] and more than [`MAX_NODES`] nodes; the budget here repeats those
//!   limits, and files upkeep only looks into (kustomizations, patches) are read at most
//!   [`INLINE_DEPTH`] deep (see there why).

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy};

use crate::locate::{MAX_DEPTH, MAX_NODES};

/// The deepest nesting read on the caller's stack. Deserializing recurses once per level, and
/// serde-saphyr's frames are large: on a 2 MiB stack (a test or tokio thread) an unoptimised
/// build overflows between 64 and 100 levels. Files upkeep only looks into (kustomizations,
/// patches) are refused deeper than this; the loader reads deeper documents (up to
/// [`MAX_DEPTH`]) on a thread with [`DEEP_STACK`] of stack.
pub(crate) const INLINE_DEPTH: usize = 32;

/// Stack for reading a document nested up to [`MAX_DEPTH`]: 4 MiB is enough in an unoptimised
/// build (measured); eight times that is reserved, not used, memory.
pub(crate) const DEEP_STACK: usize = 32 << 20;

/// The options every YAML read in upkeep uses (see the module header), refusing nesting deeper
/// than `max_depth`.
pub(crate) fn options(max_depth: usize) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: max_depth,
            max_nodes: MAX_NODES + 1,
            // Events: a node is at most two (start, end), plus the stream and document events.
            max_events: 2 * MAX_NODES + 8,
            // One document per read in the loader; other callers read small files.
            max_documents: MAX_NODES,
        },
        // Comments are checked as syntax either way; nothing upkeep reads keeps them.
        emit_comments: false,
        strict_booleans: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Merge,
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        with_snippet: false,
    }
}

/// Reads one document of `text` as `T`, nested at most [`INLINE_DEPTH`] deep.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options(INLINE_DEPTH))
}

/// Reads one document of `text` as `T`, nested at most [`MAX_DEPTH`] deep: only on a thread
/// with [`DEEP_STACK`] of stack when it may be deeper than [`INLINE_DEPTH`].
pub(crate) fn from_str_deep<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options(MAX_DEPTH + 1))
}

/// Reads every document of `text` as `T` (each nested at most [`INLINE_DEPTH`] deep); empty
/// documents are left out.
pub fn from_str_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_saphyr::Error> {
    serde_saphyr::from_multiple_with_options(text, options(INLINE_DEPTH))
}

/// The non-empty documents of `text` that read as values; a document that does not is left
/// out (for files upkeep only looks into, such as kustomize patches). The event pass of
/// [`crate::locate`] finds the documents and bounds the text first.
pub(crate) fn documents(text: &str) -> Vec<Value> {
    let lines = crate::locate::LineIndex::new(text);
    let Some(docs) = crate::locate::positions(text, &lines) else {
        return Vec::new();
    };
    docs.iter()
        .filter_map(|d| from_str::<Value>(text.get(d.range.clone())?).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// A YAML node as read by [`options`], for code that looks into a document before it knows its
/// type (the loader's `apiVersion`/`kind`, kustomization files). Mappings keep their order and
/// any key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Integers and floats (precision beyond an `f64` is not kept: nothing upkeep looks
    /// into this way needs it).
    Number(f64),
    String(String),
    Sequence(Vec<Value>),
    Mapping(Vec<(Value, Value)>),
}

impl Value {
    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_mapping()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&[Value]> {
        match self {
            Value::Sequence(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_mapping(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether a mapping has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::String(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Mapping(entries))
    }
}

/// A serde-saphyr error in upkeep's words: what is wrong, where serde-saphyr saw it (a byte
/// offset into the text it read, when it knows), and how to find the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described {
    /// Where the field is relative to the node at `offset`.
    pub(crate) field: FieldAt,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    /// Byte offset in the text read.
    pub(crate) offset: Option<usize>,
}

/// How the field of an error relates to the node serde-saphyr located it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldAt {
    /// The node at the offset is the field (a value of the wrong type, a key that is unknown
    /// or repeated).
    Node,
    /// The field is `name`, missing from the mapping that holds the node at the offset.
    MissingIn(String),
    /// The node at the offset is a key written twice; the field is its mapping.
    Duplicate,
    /// Not a field: the text itself (syntax, limits).
    None,
}

/// The generic hint for a text that is not valid YAML.
pub(crate) const SYNTAX_HINT: &str = "YAML syntax: check indentation, and quote values that contain `: `, `#` or start with a special character";

/// serde-saphyr's error in upkeep's words, the same whichever reader found it. The wording is
/// the one upkeep printed before (serde_yaml's, with the location taken out of the text):
/// `unknown field `x`` with a "did you mean", `missing field `x``, `invalid type: <what is
/// written>` with the hint `expected <what fits>`, `unknown value `x``. `found` says what is
/// written at a byte offset of the text read (see `DocPositions::found_at`), because several of
/// serde-saphyr's type errors name only what was expected.
pub(crate) fn describe(
    e: &serde_saphyr::Error,
    found: &dyn Fn(usize) -> Option<String>,
) -> Described {
    use serde_saphyr::Error as E;
    let e = e.without_snippet();
    if let E::AliasError { error, .. } = e {
        return describe(error, found);
    }
    let offset = e
        .location()
        .and_then(|l| l.span().byte_offset())
        .and_then(|o| usize::try_from(o).ok());
    let written = || offset.and_then(found).unwrap_or_else(|| "value".to_owned());
    let invalid = |expected: &str| {
        (
            FieldAt::Node,
            format!("invalid type: {}", written()),
            Some(format!("expected {expected}")),
        )
    };
    let (field, message, hint) = match e {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            let hint = match crate::load::closest(field, expected) {
                Some(best) => Some(format!("did you mean `{best}`?")),
                None if expected.is_empty() => None,
                None => Some(format!("expected one of: {}", expected.join(", "))),
            };
            (FieldAt::Node, format!("unknown field `{field}`"), hint)
        }
        E::SerdeMissingField { field, .. } => (
            FieldAt::MissingIn((*field).to_owned()),
            format!("missing field `{field}`"),
            Some(format!("add `{field}`")),
        ),
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let hint = crate::load::closest(variant, expected).map_or_else(
                || {
                    (!expected.is_empty())
                        .then(|| format!("expected one of: {}", expected.join(", ")))
                },
                |best| {
                    Some(format!(
                        "did you mean `{best}`? (one of: {})",
                        expected.join(", ")
                    ))
                },
            );
            (FieldAt::Node, format!("unknown value `{variant}`"), hint)
        }
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            FieldAt::Node,
            format!("invalid type: {unexpected}"),
            Some(format!("expected {expected}")),
        ),
        // serde-saphyr names only what it expected; serde_yaml named what was written too.
        E::Unexpected { expected, .. } => invalid(match *expected {
            "string scalar" => "a string",
            "sequence start" => "a sequence",
            "mapping start" => "a map",
            other => other,
        }),
        E::InvalidBooleanStrict { .. } => invalid("a boolean"),
        E::NullIntoString { .. } => invalid("a string"),
        E::InvalidScalar { ty, .. } => invalid(ty),
        // Reported at the mapping, named by the mapping's path, as before; the hint says where
        // the second one is.
        E::DuplicateMappingKey { key, .. } => (
            FieldAt::Duplicate,
            match key {
                Some(k) => format!("duplicate entry with key {k:?}"),
                None => "duplicate entry".to_owned(),
            },
            None,
        ),
        E::Budget { breach, .. } => {
            let what = format!("{breach:?}");
            if what.contains("Alias") || what.contains("Anchor") || what.contains("Merge") {
                alias_bomb(&what)
            } else {
                (
                    FieldAt::None,
                    format!("YAML too large to read ({what})"),
                    Some(format!(
                        "upkeep reads at most {MAX_DEPTH} levels of nesting and {MAX_NODES} \
                         nodes; split or flatten this file"
                    )),
                )
            }
        }
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => alias_bomb(&strip_location(&e.to_string())),
        other => {
            let text = strip_location(&other.to_string());
            // Messages of the types' own parsers (`invalid value: …, expected …`) keep their
            // expectation as the hint, as before.
            match text.split_once(", expected ") {
                Some((m, want)) => (
                    FieldAt::Node,
                    m.to_owned(),
                    Some(format!("expected {want}")),
                ),
                None => (FieldAt::Node, text, None),
            }
        }
    };
    Described {
        field,
        message,
        hint,
        offset,
    }
}

/// An error for aliases that expand to more than upkeep reads.
fn alias_bomb(what: &str) -> (FieldAt, String, Option<String>) {
    (
        FieldAt::None,
        format!("aliases expand to more than upkeep reads ({what})"),
        Some(
            "anchors and aliases (`&a`, `*a`) here repeat more than a million nodes; write the \
             values out or use fewer aliases. upkeep leaves this file alone"
                .to_owned(),
        ),
    )
}

/// Removes serde-saphyr's ` at line L, column C` from a message (the position is reported on
/// its own).
fn strip_location(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

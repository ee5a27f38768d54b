//! Small shapes shared by several kinds: references by name and the checks every kind needs
//! (durations, regexes), so that all kinds word the same mistake the same way.

use jiff::SignedDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::duration::parse_duration;

/// A reference to an object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRef {
    /// The object's name.
    pub name: String,
}

/// A reference to an object, by default in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespacedRef {
    /// The object's name.
    pub name: String,
    /// The object's namespace (default: the referring object's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Parses a duration field, pushing a located error on failure.
pub(crate) fn duration(
    path: &str,
    value: &str,
    errors: &mut Vec<FieldError>,
) -> Option<SignedDuration> {
    match parse_duration(value) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(FieldError::new(path, e.to_string()).with_hint(e.hint()));
            None
        }
    }
}

/// Parses an optional duration field.
pub(crate) fn opt_duration(
    path: &str,
    value: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<SignedDuration> {
    value.and_then(|v| duration(path, v, errors))
}

/// Compiles a regex field, pushing a located error on failure. `anchored` wraps the pattern so
/// that the whole value must match.
pub(crate) fn regex(
    path: &str,
    pattern: &str,
    anchored: bool,
    errors: &mut Vec<FieldError>,
) -> Option<regex::Regex> {
    let compiled = if anchored {
        regex::Regex::new(&format!("^(?:{pattern})$"))
    } else {
        regex::Regex::new(pattern)
    };
    match compiled {
        Ok(r) => Some(r),
        Err(e) => {
            let detail = upkeep_core::regex_error_reason(&e);
            errors.push(
                FieldError::new(path, format!("invalid regex {pattern:?}: {detail}")).with_hint(
                    Some("regexes use Rust/RE2 syntax; escape literal characters such as . ( [ with \\"),
                ),
            );
            None
        }
    }
}

/// Checks the object name, which every kind needs to be referenced.
pub(crate) fn check_name(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    errors: &mut Vec<FieldError>,
) {
    if meta.name.as_deref().is_none_or(str::is_empty) {
        errors.push(
            FieldError::new("metadata.name", "missing object name")
                .with_hint(Some("add metadata.name")),
        );
    }
}

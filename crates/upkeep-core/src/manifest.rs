//! Manifests: the version fields that upkeep markers point at, and byte-exact rewrites of them.
//!
//! GitOps repositories are edited by people; a tool that reformats their YAML (reorders keys,
//! drops comments, changes quotes) makes every pull request noisy and loses trust. So upkeep
//! never parses and re-serialises a manifest: it finds the *line* a marker comment sits on,
//! locates the scalar on that line, and replaces exactly those bytes, keeping the quote style.
//! Everything else in the file stays byte-identical (CRLF, BOM, comments, indentation).
//!
//! Two marker forms are read:
//!
//! - `# {"$upkeep": "<namespace>:<policy>"}` — the whole scalar is the version.
//! - Flux's `# {"$imagepolicy": "<namespace>:<policy>[:tag|:name]"}` so that repositories set
//!   up for Flux image automation work unchanged. Only `:tag` (and the bare form, which sets
//!   `image:tag`) are version fields; `:name` is read but never rewritten by a version policy.
//!
//! A marker whose reference still holds `${…}` (a Flux post-build substitution that was never
//! resolved) is reported, never silently skipped.

use std::ops::Range;

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
    /// The mapping key on the line (`version` in `version: 1.2.3`), if any.
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
    /// The version the field holds now (the tag part for `image:tag`).
    pub fn current_version(&self) -> &str {
        match self.field {
            MarkerField::ImageWithTag => split_image_tag(&self.value).1.unwrap_or(""),
            _ => &self.value,
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
}

impl MarkerError {
    pub fn line(&self) -> usize {
        match self {
            MarkerError::UnresolvedVariable { line, .. }
            | MarkerError::BadReference { line, .. }
            | MarkerError::NoValue { line }
            | MarkerError::Unrepresentable { line, .. } => *line,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            MarkerError::UnresolvedVariable { .. } => Some(
                "upkeep reads the repository as committed; write the policy's namespace and name literally".into(),
            ),
            MarkerError::BadReference { .. } => {
                Some(r#"write the marker as # {"$upkeep": "flux-system:my-chart"}"#.into())
            }
            MarkerError::NoValue { .. } => {
                Some("put the marker on the same line as the value it marks".into())
            }
            MarkerError::Unrepresentable { .. } => None,
        }
    }
}

/// Every marker in `text`, and every marker that could not be read, in file order.
pub fn find_markers(text: &str) -> (Vec<Marker>, Vec<MarkerError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut offset = 0;
    for (i, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let line = raw_line.trim_end_matches(['\n', '\r']);
        if let Some(m) = scan_line(line, offset, line_no) {
            match m {
                Ok(m) => found.push(m),
                Err(e) => errors.push(e),
            }
        }
        offset += raw_line.len();
    }
    (found, errors)
}

/// Replaces the version in the marked field, changing only the scalar's bytes.
pub fn set_version(text: &str, marker: &Marker, version: &str) -> Result<String, MarkerError> {
    let new_value = match marker.field {
        MarkerField::Version => version.to_owned(),
        MarkerField::ImageWithTag => format!("{}:{version}", split_image_tag(&marker.value).0),
        MarkerField::ImageName => {
            return Err(MarkerError::Unrepresentable {
                line: marker.line,
                value: version.to_owned(),
                quote: marker.quote,
            });
        }
    };
    let encoded = encode(&new_value, marker.quote).ok_or_else(|| MarkerError::Unrepresentable {
        line: marker.line,
        value: new_value.clone(),
        quote: marker.quote,
    })?;
    let mut out = String::with_capacity(text.len() + encoded.len());
    out.push_str(&text[..marker.value_range.start]);
    out.push_str(&encoded);
    out.push_str(&text[marker.value_range.end..]);
    Ok(out)
}

fn encode(value: &str, quote: Quote) -> Option<String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-+:/@".contains(c);
    match quote {
        Quote::Plain => (!value.is_empty() && value.chars().all(safe) && !value.ends_with(':'))
            .then(|| value.to_owned()),
        Quote::Single => Some(value.replace('\'', "''")),
        Quote::Double => value
            .chars()
            .all(|c| c != '"' && c != '\\' && !c.is_control())
            .then(|| value.to_owned()),
    }
}

fn split_image_tag(value: &str) -> (&str, Option<&str>) {
    // The tag follows the last ':' after the last '/', so `host:5000/app` has no tag.
    let slash = value.rfind('/').map_or(0, |i| i + 1);
    match value[slash..].rfind(':') {
        Some(i) => (&value[..slash + i], Some(&value[slash + i + 1..])),
        None => (value, None),
    }
}

/// Looks for a marker comment on one line and, if there is one, the scalar before it.
fn scan_line(line: &str, line_start: usize, line_no: usize) -> Option<Result<Marker, MarkerError>> {
    let (comment_at, syntax, reference) = find_marker_comment(line)?;
    Some(parse_marked(
        line, line_start, line_no, comment_at, syntax, reference,
    ))
}

fn parse_marked(
    line: &str,
    line_start: usize,
    line_no: usize,
    comment_at: usize,
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

    let before = &line[..comment_at];
    let (key, value_start) = split_key(before);
    let rest = &before[value_start..];
    let lead = rest.len() - rest.trim_start().len();
    let scalar = rest.trim();
    if scalar.is_empty() {
        return Err(MarkerError::NoValue { line: line_no });
    }
    let scalar_start = value_start + lead;
    let (quote, inner, inner_start) =
        if scalar.len() >= 2 && scalar.starts_with('"') && scalar.ends_with('"') {
            (
                Quote::Double,
                &scalar[1..scalar.len() - 1],
                scalar_start + 1,
            )
        } else if scalar.len() >= 2 && scalar.starts_with('\'') && scalar.ends_with('\'') {
            (
                Quote::Single,
                &scalar[1..scalar.len() - 1],
                scalar_start + 1,
            )
        } else {
            (Quote::Plain, scalar, scalar_start)
        };
    let value = match quote {
        Quote::Single => inner.replace("''", "'"),
        _ => inner.to_owned(),
    };
    Ok(Marker {
        line: line_no,
        key,
        value,
        value_range: line_start + inner_start..line_start + inner_start + inner.len(),
        quote,
        syntax,
        field,
        namespace: namespace.to_owned(),
        policy: policy.to_owned(),
    })
}

/// Splits `  - key: value` into the key and the byte index where the value starts.
fn split_key(before: &str) -> (Option<String>, usize) {
    let trimmed = before.trim_start();
    let mut start = before.len() - trimmed.len();
    let mut body = trimmed;
    // A sequence item: `- value` or `- key: value`.
    while let Some(rest) = body.strip_prefix("- ") {
        start += 2;
        body = rest;
    }
    // A key ends at the first ": " outside quotes (keys are plain here).
    if !body.starts_with(['"', '\''])
        && let Some(i) = body.find(": ")
    {
        return (Some(body[..i].trim().to_owned()), start + i + 2);
    }
    (None, start)
}

/// Finds `# {"$upkeep": "…"}` or `# {"$imagepolicy": "…"}` outside quotes.
fn find_marker_comment(line: &str) -> Option<(usize, MarkerSyntax, &str)> {
    let bytes = line.as_bytes();
    let mut in_single = false;
    let mut in_double = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !in_double => in_single = !in_single,
            b'"' if !in_single => in_double = !in_double,
            b'#' if !in_single
                && !in_double
                && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') =>
            {
                return parse_marker_json(&line[i + 1..]).map(|(s, r)| (i, s, r));
            }
            _ => {}
        }
    }
    None
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
    s.trim_start().strip_prefix('}')?;
    Some((syntax, reference))
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
                r#"  note: "a # {"$upkeep": "x:y"}""#,
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

//! One scalar of one object in a manifest file: the cluster App's `spec.version`, a Flux
//! Kustomization's `spec.postBuild.substitute.<variable>`.
//!
//! Objects in a Giant Swarm GitOps repository are written with Flux post-build variables
//! (`metadata.name: ${cluster_name}`, `namespace: org-${organization}`), so an object is
//! matched by its group, kind, name and namespace *after* substituting the variables of the
//! Kustomization that renders it ([`substitute`], Flux's `${var}`, `${var:=default}`,
//! `${var:-default}` and the `$${var}` escape). The edit itself is the byte-exact scalar
//! replacement of the parent module, read back before it is returned; a value that is itself
//! a variable (`spec.version: ${cluster_release}`) is refused, because the substitution owns
//! it ([`ClusterEditError::Substituted`]).

use std::collections::BTreeMap;

use super::{ClusterEditError, VersionEdit, VersionPlace, entry, replace_scalar, scalar};
use crate::locate::{DocPositions, LineIndex, Node, positions};

/// Flux post-build variables: name → value.
pub type Vars = BTreeMap<String, String>;

/// Which object a file holds: by API group, kind, name and namespace (compared after
/// substituting [`Vars`]). A manifest without `metadata.namespace` matches any namespace (a
/// kustomization or the Kustomization's `targetNamespace` sets it later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectSel<'a> {
    /// The API group (`application.giantswarm.io`; `""` for the core group, `v1`).
    pub group: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    /// `None`: any namespace.
    pub namespace: Option<&'a str>,
}

impl ObjectSel<'_> {
    /// `Kind namespace/name`, for messages.
    pub fn display(&self) -> String {
        match self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// `text` with Flux's post-build variables replaced: `${var}`, `${var:=default}`,
/// `${var:-default}` (the default when `var` is unset or empty), `${var=default}`,
/// `${var-default}` (the default when unset), and `$${var}` for a literal `${var}`. Also the
/// names of the variables that were unset with no default (replaced by nothing, as Flux does
/// without `strict`).
pub fn substitute(text: &str, vars: &Vars) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            // `$${var}` → `${var}`.
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(close) = body.find('}') else {
            out.push('$');
            rest = after;
            continue;
        };
        let inner = &body[..close];
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_len);
        let value = vars.get(name).map(String::as_str);
        let replaced = match op {
            "" => value.map(str::to_owned),
            _ if op.starts_with(":=") || op.starts_with(":-") => Some(
                value
                    .filter(|v| !v.is_empty())
                    .unwrap_or(&op[2..])
                    .to_owned(),
            ),
            _ if op.starts_with('=') || op.starts_with('-') => {
                Some(value.unwrap_or(&op[1..]).to_owned())
            }
            // Not a form this reads (`${var^}`, `${var:1}`): left as written.
            _ => {
                out.push_str(&rest[i..=i + 2 + close]);
                rest = &body[close + 1..];
                continue;
            }
        };
        if name.is_empty() {
            out.push_str(&rest[i..=i + 2 + close]);
        } else if let Some(v) = replaced {
            out.push_str(&v);
        } else {
            missing.push(name.to_owned());
        }
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    (out, missing)
}

/// Whether a document is the object `sel`.
pub(crate) fn is_object(doc: &DocPositions, sel: &ObjectSel<'_>, vars: &Vars) -> bool {
    let Some(root) = doc.root() else {
        return false;
    };
    let api = scalar(root, "apiVersion").unwrap_or_default();
    let group = api.rsplit_once('/').map_or("", |(g, _)| g);
    let Some(meta) = entry(root, "metadata").map(|e| &e.value) else {
        return false;
    };
    let subst = |s: &str| substitute(s, vars).0;
    group == sel.group
        && scalar(root, "kind") == Some(sel.kind)
        && scalar(meta, "name").map(subst).as_deref() == Some(sel.name)
        && sel.namespace.is_none_or(|ns| {
            scalar(meta, "namespace")
                .map(subst)
                .is_none_or(|written| written == ns)
        })
}

/// The one document of `text` that is `sel`.
pub(crate) fn object_doc(
    file: &str,
    text: &str,
    sel: &ObjectSel<'_>,
    vars: &Vars,
) -> Result<DocPositions, ClusterEditError> {
    let lines = LineIndex::new(text);
    let docs = positions(text, &lines).ok_or_else(|| ClusterEditError::NotYaml {
        file: file.to_owned(),
    })?;
    let mut matching: Vec<DocPositions> = docs
        .into_iter()
        .filter(|d| is_object(d, sel, vars))
        .collect();
    match matching.len() {
        0 => Err(ClusterEditError::ObjectNotFound {
            object: sel.display(),
            where_: file.to_owned(),
        }),
        1 => Ok(matching.remove(0)),
        _ => Err(ClusterEditError::ObjectAmbiguous {
            object: sel.display(),
            places: matching
                .iter()
                .map(|d| format!("{file}:{}", d.start().line))
                .collect(),
        }),
    }
}

/// Which of `files` (`(path, text)`) holds `sel`: its index.
pub fn find_object(
    files: &[(String, String)],
    sel: &ObjectSel<'_>,
    vars: &Vars,
    where_: &str,
) -> Result<usize, ClusterEditError> {
    let mut found = Vec::new();
    for (i, (path, text)) in files.iter().enumerate() {
        if !text.contains(sel.kind) {
            continue;
        }
        let lines = LineIndex::new(text);
        let Some(docs) = positions(text, &lines) else {
            continue;
        };
        for doc in docs.iter().filter(|d| is_object(d, sel, vars)) {
            found.push((i, format!("{path}:{}", doc.start().line)));
        }
    }
    match found.as_slice() {
        [] => Err(ClusterEditError::ObjectNotFound {
            object: sel.display(),
            where_: where_.to_owned(),
        }),
        [(i, _)] => Ok(*i),
        _ => Err(ClusterEditError::ObjectAmbiguous {
            object: sel.display(),
            places: found.into_iter().map(|(_, p)| p).collect(),
        }),
    }
}

/// Why [`field_node`] found no single scalar.
#[derive(Debug)]
pub(crate) enum NoField {
    /// Missing (or not a scalar): the line of the deepest existing part.
    Missing(usize),
    /// A key on the path written more than once: the key and its lines.
    Duplicate(String, Vec<usize>),
}

/// The scalar at `path` under the document's root.
pub(crate) fn field_node<'d>(doc: &'d DocPositions, path: &[&str]) -> Result<&'d Node, NoField> {
    let mut node = doc.root().ok_or(NoField::Missing(doc.start().line))?;
    let mut line = doc.start().line;
    for seg in path {
        let Node::Map { entries, .. } = node else {
            return Err(NoField::Missing(line));
        };
        let hits: Vec<_> = entries.iter().filter(|e| e.key == *seg).collect();
        match hits.as_slice() {
            [] => return Err(NoField::Missing(line)),
            [e] => {
                node = &e.value;
                line = e.key_at.line;
            }
            many => {
                return Err(NoField::Duplicate(
                    (*seg).to_owned(),
                    many.iter().map(|e| e.key_at.line).collect(),
                ));
            }
        }
    }
    match node {
        Node::Scalar { .. } => Ok(node),
        _ => Err(NoField::Missing(line)),
    }
}

/// The value at `path` of the object `sel` in `text`, as written (variables not substituted);
/// `None` when the object has no scalar there.
pub fn current_field(
    file: &str,
    text: &str,
    sel: &ObjectSel<'_>,
    vars: &Vars,
    path: &[&str],
) -> Result<Option<String>, ClusterEditError> {
    let doc = object_doc(file, text, sel, vars)?;
    Ok(match field_node(&doc, path) {
        Ok(Node::Scalar { value, .. }) => Some(value.clone()),
        _ => None,
    })
}

/// Rewrites the scalar at `path` of the object `sel` to `version`, changing only its bytes;
/// `place` names what the field is, for errors and hints.
pub fn set_field(
    file: &str,
    text: &str,
    sel: &ObjectSel<'_>,
    vars: &Vars,
    path: &[&str],
    place: &VersionPlace,
    version: &str,
) -> Result<VersionEdit, ClusterEditError> {
    let doc = object_doc(file, text, sel, vars)?;
    let field = path.join(".");
    let (at, old) = match field_node(&doc, path) {
        Ok(Node::Scalar { at, value, .. }) => (at, value),
        Err(NoField::Duplicate(key, lines)) => {
            return Err(ClusterEditError::DuplicateKey {
                file: file.to_owned(),
                line: lines[0],
                field,
                key,
                lines,
            });
        }
        Ok(_) | Err(NoField::Missing(_)) => {
            let line = match field_node(&doc, path) {
                Err(NoField::Missing(line)) => line,
                _ => doc.start().line,
            };
            return Err(ClusterEditError::ObjectFieldMissing {
                file: file.to_owned(),
                line,
                object: sel.display(),
                field,
                place: Box::new(place.clone()),
            });
        }
    };
    if old.contains("${") {
        return Err(ClusterEditError::Substituted {
            file: file.to_owned(),
            line: at.line,
            field,
            value: old.clone(),
        });
    }
    let (at, old) = (*at, old.clone());
    let new_text = replace_scalar(file, text, at.offset, at.line, &field, &old, version, false)?;
    let check = current_field(file, &new_text, sel, vars, path)?;
    if check.as_deref() != Some(version) {
        return Err(super::unsupported(
            file,
            at.line,
            &field,
            "the edit did not read back",
        ));
    }
    Ok(VersionEdit {
        new_text,
        old,
        line: at.line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn substitution_as_flux_does_it() {
        let v = vars(&[("cluster_name", "dev01"), ("empty", ""), ("org", "acme")]);
        let cases = [
            ("${cluster_name}", "dev01", &[][..], "a plain variable"),
            ("org-${org}", "org-acme", &[], "inside a word"),
            ("${missing:=29.1.0}", "29.1.0", &[], ":= default when unset"),
            ("${empty:=x}", "x", &[], ":= default when empty"),
            ("${empty=x}", "", &[], "= default only when unset"),
            ("${missing-x}", "x", &[], "- default when unset"),
            ("${cluster_name:-x}", "dev01", &[], "a set variable wins"),
            ("$${cluster_name}", "${cluster_name}", &[], "$$ escapes"),
            (
                "$cluster_name",
                "$cluster_name",
                &[],
                "no braces: left alone",
            ),
            (
                "${missing}",
                "",
                &["missing"],
                "unset without default: empty, reported",
            ),
            (
                "${org^}",
                "${org^}",
                &[],
                "an unknown form is left as written",
            ),
            ("a ${unclosed", "a ${unclosed", &[], "no closing brace"),
            ("${a}${org}", "acme", &["a"], "two in a row"),
        ];
        for (text, want, missing, why) in cases {
            let (got, m) = substitute(text, &v);
            assert_eq!(got, want, "{why}");
            assert_eq!(m, missing, "{why}");
        }
    }

    const APP: &str = "\
# the cluster App
apiVersion: application.giantswarm.io/v1alpha1
kind: App
metadata:
  name: ${cluster_name}
  namespace: org-${organization}
spec:
  catalog: cluster
  name: cluster-aws
  version: \"2.3.0\"   # pinned
";

    #[test]
    fn an_object_field_is_edited_after_substitution() {
        let v = vars(&[("cluster_name", "dev01"), ("organization", "acme")]);
        let sel = ObjectSel {
            group: "application.giantswarm.io",
            kind: "App",
            name: "dev01",
            namespace: Some("org-acme"),
        };
        let place = VersionPlace::App(super::super::ObjectRef::default());
        let e = set_field(
            "app.yaml",
            APP,
            &sel,
            &v,
            &["spec", "version"],
            &place,
            "2.4.0",
        )
        .expect("edited");
        assert_eq!(e.new_text, APP.replace("\"2.3.0\"", "\"2.4.0\""));
        assert_eq!((e.old.as_str(), e.line), ("2.3.0", 10));
        let other = ObjectSel {
            name: "prod01",
            ..sel
        };
        let err = set_field(
            "app.yaml",
            APP,
            &other,
            &v,
            &["spec", "version"],
            &place,
            "2",
        )
        .expect_err("another cluster");
        assert_eq!(err.kind(), "ObjectNotFound");
        let err = set_field(
            "app.yaml",
            &APP.replace("\"2.3.0\"", "${cluster_release}"),
            &sel,
            &v,
            &["spec", "version"],
            &place,
            "2.4.0",
        )
        .expect_err("a variable");
        assert_eq!(err.kind(), "Substituted", "{err}");
        assert!(err.hint().expect("hint").contains("Substitute"), "{err:?}");
        let err = set_field(
            "app.yaml",
            APP,
            &sel,
            &v,
            &["spec", "release"],
            &place,
            "2.4.0",
        )
        .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "app.yaml:7: App org-acme/dev01 has no spec.release"
        );
    }
}

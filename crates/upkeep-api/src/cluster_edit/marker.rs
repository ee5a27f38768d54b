//! Scalars marked `# {"$upkeep": "cluster:<namespace>/<name>"}`: a cluster's version wherever
//! a layout we did not foresee keeps it.
//!
//! The marker grammar, its checks (one scalar on one line, not a key, not anchored, inside a
//! literal block read as the YAML it embeds) and the verified write are the core's
//! ([`upkeep_core::manifest`]); this module only picks the markers naming one cluster and maps
//! the core's errors to [`ClusterEditError`]s with the file and a hint. Every marker of the
//! cluster in a file is written, or none.

use upkeep_core::manifest::{MarkerError, read, set_value};

use super::{ClusterEditError, VersionEdit};

fn bad(file: &str, e: &MarkerError) -> ClusterEditError {
    let message = e.to_string();
    let prefix = format!("line {}: ", e.line());
    ClusterEditError::BadMarker {
        file: file.to_owned(),
        line: e.line(),
        message: message.strip_prefix(&prefix).unwrap_or(&message).to_owned(),
        hint: e.hint(),
    }
}

/// The scalars of `text` marked for the cluster `namespace/name`: `(line, value)` in file
/// order; a marker for it that cannot be used is an error.
pub fn cluster_marker_values(
    file: &str,
    text: &str,
    namespace: &str,
    name: &str,
) -> Result<Vec<(usize, String)>, ClusterEditError> {
    if !text.contains("$upkeep") {
        return Ok(Vec::new());
    }
    let r = read(text);
    if let Some((_, _, e)) = r
        .cluster_refusals()
        .find(|(ns, n, _)| *ns == namespace && *n == name)
    {
        return Err(bad(file, e));
    }
    Ok(r.cluster_markers()
        .iter()
        .filter(|m| m.namespace == namespace && m.policy == name)
        .map(|m| (m.line, m.value.clone()))
        .collect())
}

/// Writes `version` into every scalar of `text` marked for the cluster `namespace/name`,
/// through the core's verified path; [`ClusterEditError::MarkerNotFound`] when there is none.
/// The edit's `old` and `line` are the first marker's.
pub fn set_marked(
    file: &str,
    text: &str,
    namespace: &str,
    name: &str,
    version: &str,
) -> Result<VersionEdit, ClusterEditError> {
    let found = cluster_marker_values(file, text, namespace, name)?;
    let Some((line, old)) = found.first().cloned() else {
        return Err(ClusterEditError::MarkerNotFound {
            cluster: format!("{namespace}/{name}"),
            where_: file.to_owned(),
        });
    };
    let mut out = text.to_owned();
    for k in 0..found.len() {
        let r = read(&out);
        let Some(m) = r
            .cluster_markers()
            .iter()
            .filter(|m| m.namespace == namespace && m.policy == name)
            .nth(k)
        else {
            return Err(ClusterEditError::BadMarker {
                file: file.to_owned(),
                line,
                message: "the markers moved while being written".to_owned(),
                hint: None,
            });
        };
        m.check_shape().map_err(|e| bad(file, &e))?;
        let next = set_value(&out, m, version).map_err(|e| bad(file, &e))?;
        out = next;
    }
    Ok(VersionEdit {
        new_text: out,
        old,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_of_the_cluster_or_none() {
        let text = "\
a: 29.1.0 # {\"$upkeep\": \"cluster:org-acme/dev01\"}
b: '29.1.0' # {\"$upkeep\": \"cluster:org-acme/dev01\"}
c: 29.1.0 # {\"$upkeep\": \"cluster:org-acme/prod01\"}
d: 1.0.0 # {\"$upkeep\": \"org-acme:dev01\"}
";
        let e = set_marked("f.yaml", text, "org-acme", "dev01", "29.2.0").expect("written");
        assert_eq!(
            e.new_text,
            text.replacen("29.1.0", "29.2.0", 2),
            "both markers of dev01, not prod01's, not the policy's"
        );
        assert_eq!((e.old.as_str(), e.line), ("29.1.0", 1));
        let err = set_marked("f.yaml", text, "org-other", "dev01", "29.2.0").expect_err("none");
        assert_eq!(err.kind(), "MarkerNotFound");
        assert!(
            err.hint()
                .expect("hint")
                .contains("cluster:org-other/dev01")
        );
        let bad_value = "a: 29.1.0 # {\"$upkeep\": \"cluster:org-acme/dev01\"}\nb: x/y # {\"$upkeep\": \"cluster:org-acme/dev01\"}\n";
        let err = set_marked("f.yaml", bad_value, "org-acme", "dev01", "29.2.0")
            .expect_err("a value that is no version");
        assert_eq!(err.kind(), "BadMarker");
        assert!(err.to_string().starts_with("f.yaml:2: "), "{err}");
        let plain_float = "a: 29.1.0 # {\"$upkeep\": \"cluster:org-acme/dev01\"}\n";
        let err = set_marked("f.yaml", plain_float, "org-acme", "dev01", "30.0")
            .expect_err("would read as a float");
        assert_eq!(err.kind(), "BadMarker", "{err}");
    }
}

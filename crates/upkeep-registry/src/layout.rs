//! OCI image-layout directories (`oci-layout:<dir>`).
//!
//! Tags are the `org.opencontainers.image.ref.name` annotations of `index.json`'s
//! descriptors. `created` comes from the descriptor's annotations or, failing that, from the
//! manifest blob, whose path is built only from a validated digest so that it stays inside
//! the directory. Files are read with size caps, like network responses.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;

use crate::error::RegistryError;

pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const CREATED: &str = "org.opencontainers.image.created";

#[derive(Deserialize)]
struct LayoutFile {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

#[derive(Deserialize)]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// Something with annotations (a manifest or an index).
#[derive(Deserialize)]
pub(crate) struct Annotated {
    #[serde(default)]
    pub(crate) annotations: std::collections::BTreeMap<String, String>,
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, RegistryError> {
    let io = |detail: String| RegistryError::Io {
        path: path.to_owned(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
    if meta.len() > cap {
        return Err(io(format!("larger than the limit of {cap} bytes")));
    }
    std::fs::read(path).map_err(|e| io(e.to_string()))
}

/// The tag in a `ref.name`: `1.0.0`, `chart:1.0.0` or `host:5000/repo/chart:1.0.0`.
/// Returns `(name, tag)` where `name` is what precedes the tag, if anything.
pub fn split_ref_name(r: &str) -> (Option<&str>, &str) {
    match r.rfind(':') {
        Some(i) if !r[i + 1..].contains('/') => (Some(&r[..i]), &r[i + 1..]),
        _ => (None, r),
    }
}

/// Path of a blob for `digest` (`alg:hex`), or `None` when the digest is malformed.
pub fn blob_path(dir: &Path, digest: &str) -> Option<PathBuf> {
    let (alg, hex) = digest.split_once(':')?;
    let alg_ok = !alg.is_empty()
        && alg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    (alg_ok && hex_ok).then(|| dir.join("blobs").join(alg).join(hex))
}

/// Lists `(tag, created)` from a layout directory. `chart` keeps only references named
/// `chart:tag` (or `…/chart:tag`) plus bare tags.
pub(crate) fn list(
    dir: &Path,
    chart: Option<&str>,
    cap: u64,
) -> Result<Vec<(String, Option<Timestamp>)>, RegistryError> {
    let layout_path = dir.join("oci-layout");
    let layout_bytes = read_capped(&layout_path, 64 << 10).map_err(|e| match e {
        RegistryError::Io { path, detail } => RegistryError::Io {
            path,
            detail: format!("not an OCI image layout ({detail})"),
        },
        other => other,
    })?;
    let layout: LayoutFile =
        serde_json::from_slice(&layout_bytes).map_err(|e| RegistryError::Io {
            path: layout_path.clone(),
            detail: format!("not an OCI layout marker file: {e}"),
        })?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(RegistryError::Io {
            path: layout_path,
            detail: format!(
                "unsupported imageLayoutVersion `{}` (expected 1.x)",
                layout.image_layout_version
            ),
        });
    }
    let index_path = dir.join("index.json");
    let index: Index =
        serde_json::from_slice(&read_capped(&index_path, cap)?).map_err(|e| RegistryError::Io {
            path: index_path.clone(),
            detail: format!("not an OCI image index: {e}"),
        })?;
    let mut out = Vec::new();
    for d in &index.manifests {
        let Some(r) = d.annotations.get(REF_NAME) else {
            continue;
        };
        let (name, tag) = split_ref_name(r);
        if let (Some(c), Some(n)) = (chart, name)
            && n != c
            && !n.ends_with(&format!("/{c}"))
        {
            continue;
        }
        if tag.is_empty() {
            continue;
        }
        let created = match d.annotations.get(CREATED) {
            Some(c) => c.parse::<Timestamp>().ok(),
            None => manifest_created(dir, &d.digest, cap),
        };
        out.push((tag.to_owned(), created));
    }
    Ok(out)
}

/// The digest of the manifest tagged `tag` in `index.json` (the descriptor whose
/// `org.opencontainers.image.ref.name` is `tag`, or `<name>:tag` with `<name>` the chart when
/// `chart` is given, as [`list`] reads them). `Ok(None)` when no descriptor has that tag; an
/// error when the file cannot be read or the digest is not a valid one (it is written into
/// files).
pub(crate) fn digest(
    dir: &Path,
    chart: Option<&str>,
    tag: &str,
    cap: u64,
) -> Result<Option<String>, RegistryError> {
    let index_path = dir.join("index.json");
    let index: Index =
        serde_json::from_slice(&read_capped(&index_path, cap)?).map_err(|e| RegistryError::Io {
            path: index_path.clone(),
            detail: format!("not an OCI image index: {e}"),
        })?;
    for d in &index.manifests {
        let Some(r) = d.annotations.get(REF_NAME) else {
            continue;
        };
        let (name, t) = split_ref_name(r);
        if t != tag {
            continue;
        }
        if let (Some(c), Some(n)) = (chart, name)
            && n != c
            && !n.ends_with(&format!("/{c}"))
        {
            continue;
        }
        if !crate::source::is_digest(&d.digest) {
            return Err(RegistryError::Io {
                path: index_path,
                detail: format!(
                    "the descriptor of tag `{tag}` has no valid digest (`{}`)",
                    upkeep_core::redact::excerpt_with(d.digest.as_bytes(), 80, &[])
                ),
            });
        }
        return Ok(Some(d.digest.clone()));
    }
    Ok(None)
}

/// `created` from the manifest blob; a missing or unreadable blob just means "unknown".
fn manifest_created(dir: &Path, digest: &str, cap: u64) -> Option<Timestamp> {
    let path = blob_path(dir, digest)?;
    let bytes = read_capped(&path, cap).ok()?;
    let m: Annotated = serde_json::from_slice(&bytes).ok()?;
    m.annotations.get(CREATED)?.parse().ok()
}

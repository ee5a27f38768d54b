//! Real, minimal Helm charts as OCI artifacts: a gzip'd ustar archive holding
//! `<name>/Chart.yaml`, the Helm config blob (Chart.yaml as JSON) and the OCI manifest.
//!
//! The archive is written by hand (ustar headers, deflate "stored" blocks, CRC-32) instead of
//! pulling in compression crates: the bytes are a valid `.tgz` that `tar -xzf` and Helm read,
//! and they are deterministic, so the same chart always has the same digest.

use std::fmt::Write as _;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::TestEnvError;

/// Media type of Helm's config blob.
pub const HELM_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Media type of Helm's chart layer.
pub const HELM_CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Media type of OCI image manifests.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The blobs and manifest of one chart.
#[derive(Debug, Clone)]
pub(crate) struct ChartArtifact {
    pub(crate) config: Vec<u8>,
    pub(crate) layer: Vec<u8>,
    pub(crate) manifest: Vec<u8>,
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Builds the artifact for chart `name` at `version`.
pub(crate) fn build(
    name: &str,
    version: &str,
    created: Option<&str>,
) -> Result<ChartArtifact, TestEnvError> {
    let name_ok = !name.is_empty()
        && name.len() <= 90
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if !name_ok {
        return Err(TestEnvError::invalid(
            "chart name (want [a-z0-9._-]{1,90})",
            name,
        ));
    }
    if version.is_empty()
        || version
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'"' || b == b'\\')
    {
        return Err(TestEnvError::invalid("chart version", version));
    }
    let chart_yaml = format!(
        "apiVersion: v2\nname: {name}\nversion: \"{version}\"\ndescription: upkeep test chart\ntype: application\n"
    );
    let config = json!({
        "apiVersion": "v2",
        "name": name,
        "version": version,
        "description": "upkeep test chart",
        "type": "application",
    })
    .to_string()
    .into_bytes();
    let layer = gzip(&tar(&[(
        format!("{name}/Chart.yaml"),
        chart_yaml.into_bytes(),
    )])?);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": HELM_CONFIG_MEDIA_TYPE,
            "digest": sha256_digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": HELM_CHART_LAYER_MEDIA_TYPE,
            "digest": sha256_digest(&layer),
            "size": layer.len(),
        }],
    });
    if let Some(created) = created {
        manifest["annotations"] = json!({ "org.opencontainers.image.created": created });
    }
    Ok(ChartArtifact {
        config,
        layer,
        manifest: manifest.to_string().into_bytes(),
    })
}

/// Writes an OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`) holding
/// chart `name` once per `(version, tag)`, each manifest named by the
/// `org.opencontainers.image.ref.name` annotation as `skopeo copy … oci:dir:tag` names it.
/// The bytes are the ones [`crate::Registry::push_chart`] pushes, so a layout and a registry
/// given the same charts report the same digests. Returns the manifest digest of each tag.
pub fn write_layout(
    dir: &std::path::Path,
    name: &str,
    versions: &[(&str, &str)],
) -> Result<Vec<String>, TestEnvError> {
    let io = |e| TestEnvError::io(format!("writing the OCI layout {}", dir.display()), e);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io)?;
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for (version, tag) in versions {
        let artifact = build(name, version, None)?;
        for blob in [&artifact.config, &artifact.layer, &artifact.manifest] {
            let digest = sha256_digest(blob);
            std::fs::write(blobs.join(&digest["sha256:".len()..]), blob).map_err(io)?;
        }
        let digest = sha256_digest(&artifact.manifest);
        entries.push(json!({
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "digest": digest,
            "size": artifact.manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }));
        digests.push(digest);
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    let index = json!({ "schemaVersion": 2, "manifests": entries });
    std::fs::write(dir.join("index.json"), index.to_string()).map_err(io)?;
    Ok(digests)
}

/// A ustar archive of regular files (mode 0644, uid/gid 0, mtime 0).
pub(crate) fn tar(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, TestEnvError> {
    let mut out = Vec::new();
    for (path, data) in files {
        if path.len() > 100 || !path.is_ascii() {
            return Err(TestEnvError::invalid(
                "tar entry name (ASCII, at most 100 bytes)",
                path.clone(),
            ));
        }
        let mut header = [0u8; 512];
        header[..path.len()].copy_from_slice(path.as_bytes());
        put_octal(&mut header[100..108], 0o644);
        put_octal(&mut header[108..116], 0);
        put_octal(&mut header[116..124], 0);
        put_octal(&mut header[124..136], data.len() as u64);
        put_octal(&mut header[136..148], 0);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|b| u64::from(*b)).sum();
        put_octal(&mut header[148..155], sum);
        header[155] = b' ';
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    Ok(out)
}

/// Writes `value` as zero-padded octal followed by NUL into `field`.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// A gzip member holding `data` in deflate stored (uncompressed) blocks.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition.
    #[allow(clippy::cast_possible_truncation)]
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected, as gzip uses).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_layout_holds_each_tag_with_the_digest_a_push_reports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let digests = write_layout(
            dir.path(),
            "hello",
            &[("0.1.0", "0.1.0"), ("0.2.0", "v0.2.0")],
        )
        .expect("layout");
        let index: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("index.json")).expect("index.json"),
        )
        .expect("json");
        let manifests = index["manifests"].as_array().expect("manifests");
        assert_eq!(manifests.len(), 2);
        assert_eq!(
            manifests[1]["annotations"]["org.opencontainers.image.ref.name"], "v0.2.0",
            "the tag, not the version, names the manifest"
        );
        for (m, digest) in manifests.iter().zip(&digests) {
            assert_eq!(&m["digest"], digest);
            let blob = std::fs::read(
                dir.path()
                    .join("blobs/sha256")
                    .join(&digest["sha256:".len()..]),
            )
            .expect("the manifest blob is there");
            assert_eq!(&sha256_digest(&blob), digest, "the blob hashes to its name");
        }
        let pushed = sha256_digest(&build("hello", "0.2.0", None).expect("chart").manifest);
        assert_eq!(digests[1], pushed, "the bytes push_chart pushes");
    }

    use super::*;

    #[test]
    fn crc32_matches_published_check_values() {
        let cases: [(&[u8], u32, &str); 3] = [
            (b"", 0, "empty input has CRC 0"),
            (b"123456789", 0xcbf4_3926, "the standard CRC-32 check value"),
            (
                b"The quick brown fox jumps over the lazy dog",
                0x414f_a339,
                "a widely published vector",
            ),
        ];
        for (input, want, reason) in cases {
            assert_eq!(crc32(input), want, "{reason}");
        }
    }

    #[test]
    fn bad_chart_names_and_versions_are_errors() {
        let cases = [
            ("", "1.0.0", false, "an empty name is not a chart"),
            (
                "My Chart",
                "1.0.0",
                false,
                "spaces and capitals are not allowed in chart names",
            ),
            ("app", "1.0.0\"", false, "a quote would break Chart.yaml"),
            ("app", "", false, "an empty version is not a version"),
            (
                "app-1.x",
                "1.0.0+build.1",
                true,
                "dots, dashes and build metadata are fine",
            ),
        ];
        for (name, version, ok, reason) in cases {
            assert_eq!(
                build(name, version, None).is_ok(),
                ok,
                "{name}/{version}: {reason}"
            );
        }
    }

    #[test]
    fn the_same_chart_always_has_the_same_digest() {
        let a = build("app", "1.0.0", Some("2024-01-02T03:04:05Z")).unwrap();
        let b = build("app", "1.0.0", Some("2024-01-02T03:04:05Z")).unwrap();
        let c = build("app", "1.0.1", None).unwrap();
        assert_eq!(
            sha256_digest(&a.manifest),
            sha256_digest(&b.manifest),
            "deterministic bytes"
        );
        assert_ne!(
            sha256_digest(&a.layer),
            sha256_digest(&c.layer),
            "another version is another chart"
        );
    }
}

//! Manifest digests, as Flux's `:digest` setter and `ns:name` (`image:tag@digest`) write them,
//! against the real registry of `upkeep-testenv` in every auth set-up, and against a real OCI
//! layout written by `skopeo copy` from that registry. The expected digests are what the
//! registry answered to the push (its `Docker-Content-Digest`) and what `skopeo inspect`
//! reports: two peers, neither of them upkeep.

use std::process::Command;
use std::time::Duration;

use upkeep_registry::{Client, ClientConfig, Credentials, RegistryError, Source, SourceOptions};
use upkeep_testenv::{Fault, FaultProxy, Registry, RegistryKind};

mod support;
use support::{credentials_for, options_for};

const LIMIT: Duration = Duration::from_secs(180);

fn client() -> Client {
    Client::new(ClientConfig {
        max_attempts: 2,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        ..ClientConfig::default()
    })
}

/// `skopeo` with the options this registry needs (plain HTTP or its CA, its credentials).
fn skopeo(reg: &Registry, args: &[&str]) -> String {
    let mut cmd = Command::new("skopeo");
    cmd.args(args);
    let out = cmd.output().expect("skopeo runs (Debian package `skopeo`)");
    assert!(
        out.status.success(),
        "skopeo {args:?} ({:?}): {}",
        reg.kind,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn skopeo_source_flags(reg: &Registry) -> Vec<String> {
    let mut flags = Vec::new();
    match reg.ca_pem_path() {
        Some(ca) => flags.push(format!(
            "--src-cert-dir={}",
            ca.parent().expect("CA file has a directory").display()
        )),
        None => flags.push("--src-tls-verify=false".to_owned()),
    }
    if let Some((user, pass)) = reg.credentials() {
        flags.push(format!("--src-creds={user}:{pass}"));
    }
    flags
}

#[tokio::test]
async fn registry_digests_are_the_pushed_manifest_digests_in_every_auth_kind() {
    tokio::time::timeout(LIMIT, async {
        for kind in RegistryKind::ALL {
            let reg = Registry::start(kind).await.expect("registry starts");
            let repo = "charts/app";
            let one = reg
                .push_chart(repo, "app", "1.0.0", "1.0.0", None)
                .await
                .expect("push 1.0.0");
            let two = reg
                .push_chart(repo, "app", "1.1.0", "1.1.0", Some("2024-01-02T03:04:05Z"))
                .await
                .expect("push 1.1.0");
            assert_ne!(one, two, "two charts, two manifests");
            let src = Source::new(
                &client(),
                &format!("oci://{}/{repo}", reg.host()),
                None,
                options_for(&reg),
                &credentials_for(&reg),
            )
            .expect("source");
            assert_eq!(
                src.image_name().as_deref(),
                Some(format!("{}/{repo}", reg.host()).as_str()),
                "{kind:?}: the image name is host/repository"
            );
            for (tag, want) in [("1.0.0", &one), ("1.1.0", &two)] {
                let got = src
                    .digest_for(tag)
                    .await
                    .unwrap_or_else(|e| panic!("{kind:?} {tag}: {e} (hint: {:?})", e.hint()));
                assert_eq!(got.as_ref(), Some(want), "{kind:?} {tag}: the pushed digest");
            }
            let missing = src.digest_for("9.9.9").await;
            assert!(
                matches!(missing, Err(RegistryError::NotFound { ref request, .. }) if request.starts_with("HEAD ")),
                "{kind:?}: a missing tag is NotFound for the HEAD request, got {missing:?}"
            );
            if reg.credentials().is_some() {
                let anon = Source::new(
                    &client(),
                    &format!("oci://{}/{repo}", reg.host()),
                    None,
                    options_for(&reg),
                    &Credentials::Anonymous,
                )
                .expect("source")
                .digest_for("1.0.0")
                .await;
                assert!(
                    matches!(anon, Err(RegistryError::Unauthorized { .. })),
                    "{kind:?}: anonymous HEAD of a private manifest is Unauthorized, got {anon:?}"
                );
            }
        }
    })
    .await
    .expect("within the time limit");
}

#[tokio::test]
async fn skopeo_agrees_and_an_oci_layout_gives_the_same_digest() {
    tokio::time::timeout(LIMIT, async {
        let reg = Registry::start(RegistryKind::Htpasswd)
            .await
            .expect("registry starts");
        let repo = "charts/app";
        let pushed = reg
            .push_chart(repo, "app", "2.0.0", "2.0.0", None)
            .await
            .expect("push");
        reg.push_chart(repo, "app", "2.1.0", "2.1.0", None)
            .await
            .expect("push another");
        let reference = format!("docker://{}/{repo}:2.0.0", reg.host());
        let mut inspect: Vec<String> = vec!["inspect".into(), "--raw".into()];
        for f in skopeo_source_flags(&reg) {
            inspect.push(f.replace("--src-", "--"));
        }
        inspect.push(reference.clone());
        let raw = skopeo(
            &reg,
            &inspect.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let mut digest_args: Vec<String> = vec![
            "manifest-digest".into(),
            std::env::temp_dir()
                .join(format!("upkeep-digest-{}.json", std::process::id()))
                .display()
                .to_string(),
        ];
        std::fs::write(&digest_args[1], raw.as_bytes()).expect("write manifest");
        let skopeo_digest = skopeo(
            &reg,
            &digest_args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let _ = std::fs::remove_file(digest_args.remove(1));
        assert_eq!(
            skopeo_digest.trim(),
            pushed,
            "skopeo and the registry agree"
        );

        let src = Source::new(
            &client(),
            &format!("oci://{}/{repo}", reg.host()),
            None,
            options_for(&reg),
            &credentials_for(&reg),
        )
        .expect("source");
        assert_eq!(
            src.digest_for("2.0.0").await.expect("digest").as_deref(),
            Some(skopeo_digest.trim())
        );

        // A real OCI layout: skopeo copies both tags into one directory.
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = dir.path().join("app");
        for tag in ["2.0.0", "2.1.0"] {
            let mut copy: Vec<String> = vec!["copy".into(), "--quiet".into()];
            copy.extend(skopeo_source_flags(&reg));
            copy.push(format!("docker://{}/{repo}:{tag}", reg.host()));
            copy.push(format!("oci:{}:{tag}", layout.display()));
            skopeo(&reg, &copy.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let in_layout = Source::new(
            &client(),
            &format!("oci-layout:{}", layout.display()),
            None,
            SourceOptions::default(),
            &Credentials::Anonymous,
        )
        .expect("layout source");
        assert_eq!(in_layout.image_name(), None, "a layout has no image name");
        assert_eq!(
            in_layout
                .digest_for("2.0.0")
                .await
                .expect("layout digest")
                .as_deref(),
            Some(pushed.as_str()),
            "the layout's index.json names the same manifest"
        );
        assert_eq!(
            in_layout.digest_for("3.0.0").await.expect("no such tag"),
            None,
            "a tag the layout does not have has no digest"
        );
    })
    .await
    .expect("within the time limit");
}

#[tokio::test]
async fn a_helm_repository_has_neither_image_name_nor_digest() {
    let src = Source::new(
        &client(),
        "https://charts.example.invalid/stable",
        Some("app"),
        SourceOptions::default(),
        &Credentials::Anonymous,
    )
    .expect("source");
    assert_eq!(src.image_name(), None);
    // No request is made: the host does not resolve, and the answer is still `None`.
    assert_eq!(src.digest_for("1.0.0").await.expect("no request"), None);
}

#[tokio::test]
async fn without_a_digest_header_the_manifest_is_hashed_and_a_forged_header_is_refused() {
    tokio::time::timeout(LIMIT, async {
        let reg = Registry::start(RegistryKind::Plain)
            .await
            .expect("registry starts");
        let repo = "charts/app";
        let pushed = reg
            .push_chart(repo, "app", "1.0.0", "1.0.0", None)
            .await
            .expect("push");
        let proxy = FaultProxy::for_registry(&reg, Fault::NoManifestDigest);
        let src = Source::new(
            &client(),
            &format!("oci://{}/{repo}", proxy.host()),
            None,
            SourceOptions {
                insecure: true,
                ..options_for(&reg)
            },
            &credentials_for(&reg),
        )
        .expect("source");
        assert_eq!(
            src.digest_for("1.0.0").await.expect("digest").as_deref(),
            Some(pushed.as_str()),
            "HEAD refused, no header on GET: the SHA-256 of the manifest is its digest"
        );
        let manifests: Vec<(String, u16)> = proxy
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/manifests/") && r.status != 401)
            .map(|r| (r.method, r.status))
            .collect();
        assert_eq!(
            manifests,
            [("HEAD".to_owned(), 405), ("GET".to_owned(), 200)],
            "HEAD first, then GET"
        );

        for forged in ["sha256:not-hex", "md5:0123456789abcdef0123456789abcdef", "sha256:ABC"] {
            proxy.set_fault(Fault::ForgedManifestDigest(forged.to_owned()));
            let got = src.digest_for("1.0.0").await;
            assert!(
                matches!(&got, Err(RegistryError::InvalidResponse { detail, .. }) if detail.contains("Docker-Content-Digest")),
                "{forged}: refused, never passed on: {got:?}"
            );
        }
    })
    .await
    .expect("within the time limit");
}

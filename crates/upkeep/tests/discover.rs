//! `upkeep versions SOURCE` and `upkeep scan` as a user runs them, against the real registry
//! (Debian's docker-registry, started by upkeep-testenv on 127.0.0.1).

use std::path::Path;
use std::process::{Command, Output};

use upkeep_testenv::{Registry, RegistryKind, TEST_PASSWORD};

mod support;
use support::{assert_exit, text};

fn upkeep(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .current_dir(cwd)
        .env("HOME", cwd) // no stray ~/.docker/config.json
        .env_remove("DOCKER_CONFIG")
        .output()
        .expect("the upkeep binary runs")
}

async fn registry_with_podinfo(kind: RegistryKind) -> Registry {
    let reg = Registry::start(kind)
        .await
        .expect("the test registry starts");
    for tag in ["6.5.4", "6.6.0", "6.7.0-rc.1", "v6.6.1", "latest"] {
        let version = tag.trim_start_matches('v');
        let version = if version == "latest" {
            "6.6.1"
        } else {
            version
        };
        reg.push_chart("charts/podinfo", "podinfo", version, tag, None)
            .await
            .expect("push");
    }
    reg.push_chart("charts/podinfo", "podinfo", "6.6.1", "sha256-abc.sig", None)
        .await
        .expect("push a signature-like tag");
    reg
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_lists_a_plain_registry_newest_first_with_the_selection() {
    let reg = registry_with_podinfo(RegistryKind::Plain).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/charts/podinfo", reg.host());

    let out = upkeep(
        &[
            "versions",
            &url,
            "--insecure",
            "--range",
            "^6.5",
            "--output",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["selected"], "v6.6.1",
        "highest stable in range, original tag"
    );
    assert_eq!(json["considered"], 4);
    assert_eq!(json["ignored"], 1, "`latest` is not a version");
    assert_eq!(
        json["tags"],
        serde_json::json!(["6.7.0-rc.1", "v6.6.1", "6.6.0", "6.5.4", "latest"]),
        "newest first, the .sig tag excluded by the default exclusion list"
    );

    let out = upkeep(
        &["versions", &url, "--insecure", "--range", "^6.5"],
        dir.path(),
    );
    assert!(
        text(&out.stdout).contains("v6.6.1  <- selected"),
        "{}",
        text(&out.stdout)
    );

    let plain_http = format!("oci://{}/charts/podinfo", reg.host());
    let out = upkeep(&["versions", &plain_http], dir.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "plain HTTP without --insecure is refused"
    );
    let err = text(&out.stderr);
    assert!(err.contains("hint:") && err.contains("--insecure"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_uses_the_ca_file_for_tls() {
    let reg = registry_with_podinfo(RegistryKind::Tls).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/charts/podinfo", reg.host());
    let ca = reg.ca_pem_path().unwrap().to_str().unwrap().to_owned();

    let out = upkeep(
        &["versions", &url, "--ca-file", &ca, "--output", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["selected"], "v6.6.1");

    let out = upkeep(&["versions", &url], dir.path());
    assert_eq!(out.status.code(), Some(2), "an unknown CA is refused");
    assert!(
        text(&out.stderr).to_lowercase().contains("tls"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_reads_docker_config_credentials_and_never_prints_them() {
    for kind in [RegistryKind::Htpasswd, RegistryKind::Token] {
        let reg = registry_with_podinfo(kind).await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("oci://{}/charts/podinfo", reg.host());
        let config = dir.path().join("config.json");
        std::fs::write(&config, reg.docker_config_json().to_string()).unwrap();
        let config = config.to_str().unwrap().to_owned();

        let out = upkeep(
            &[
                "versions",
                &url,
                "--insecure",
                "--docker-config",
                &config,
                "--output",
                "json",
            ],
            dir.path(),
        );
        assert_exit(&out, 0, &format!("{kind:?}"));
        assert!(
            text(&out.stdout).contains("\"selected\":\"v6.6.1\""),
            "{kind:?}"
        );

        let out = upkeep(&["versions", &url, "--insecure"], dir.path());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{kind:?}: anonymous access is refused"
        );
        assert!(
            text(&out.stderr).contains("Unauthorized")
                || text(&out.stderr).contains("unauthorized"),
            "{kind:?}: {}",
            text(&out.stderr)
        );

        // A wrong password: the error names the server, never the secret.
        let wrong = "s3cret-not-the-password";
        let (user, _) = reg.credentials().unwrap();
        let bad = serde_json::json!({"auths": {reg.host(): {"username": user, "password": wrong}}});
        let bad_config = dir.path().join("bad.json");
        std::fs::write(&bad_config, bad.to_string()).unwrap();
        let out = upkeep(
            &[
                "versions",
                &url,
                "--insecure",
                "--docker-config",
                bad_config.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{kind:?}");
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !all.contains(wrong) && !all.contains(TEST_PASSWORD),
            "{kind:?}: a credential leaked: {all}"
        );
        // Basic auth is refused by the registry; a token request by the token server.
        let realm_host = reg.token_realm().map(|r| {
            r.trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        });
        assert!(
            all.contains(reg.host()) || realm_host.is_some_and(|h| all.contains(&h)),
            "{kind:?}: the error names the server that refused: {all}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_lists_every_chart_source_and_reports_failures() {
    let reg = registry_with_podinfo(RegistryKind::Plain).await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = format!(
        r#"apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: podinfo, namespace: apps}}
spec:
  url: oci://{host}/charts/podinfo
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: ChartSource
metadata: {{name: missing, namespace: apps}}
spec:
  url: oci://{host}/charts/does-not-exist
  insecure: true
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: podinfo-stable, namespace: apps}}
spec:
  sourceRef: {{name: podinfo}}
  policy: {{semver: {{range: ">=6.0.0"}}}}
---
apiVersion: upkeep.dev/v1alpha1
kind: VersionPolicy
metadata: {{name: podinfo-rc, namespace: apps}}
spec:
  sourceRef: {{name: podinfo}}
  policy: {{semver: {{range: ">=6.0.0-0"}}}}
"#,
        host = reg.host()
    );
    std::fs::write(dir.path().join("sources.yaml"), manifests).unwrap();

    let out = upkeep(&["scan", "--dir", ".", "--output", "json"], dir.path());
    assert_exit(&out, 1, "one source failed");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let missing = rows.iter().find(|r| r["source"] == "apps/missing").unwrap();
    assert_eq!(missing["errorKind"], "NotFound", "{missing}");
    let podinfo = rows.iter().find(|r| r["source"] == "apps/podinfo").unwrap();
    assert_eq!(podinfo["tags"], 5);
    assert_eq!(podinfo["excluded"], 1);
    assert_eq!(
        podinfo["policies"],
        serde_json::json!([
            {"policy": "apps/podinfo-stable", "selected": "v6.6.1"},
            {"policy": "apps/podinfo-rc", "selected": "6.7.0-rc.1"},
        ])
    );

    let out = upkeep(&["scan", "--dir", "."], dir.path());
    let table = text(&out.stdout);
    assert!(table.starts_with("SOURCE"), "a summary table: {table}");
    assert!(table.contains("apps/podinfo-rc=6.7.0-rc.1"), "{table}");
    assert!(
        text(&out.stderr).contains("scanned 2 source(s), 1 failed"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_gets_credentials_from_a_docker_credential_helper() {
    use std::os::unix::fs::PermissionsExt as _;
    let reg = registry_with_podinfo(RegistryKind::Htpasswd).await;
    let dir = tempfile::tempdir().unwrap();
    let (user, password) = reg.credentials().unwrap();
    // A real helper executable, as `docker login` with a credential store leaves behind: it
    // reads the server on stdin and prints {"Username", "Secret"}; it logs what it was asked.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-upkeeptest");
    let log = dir.path().join("helper.log");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\necho \"$server\" >> {log}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{password}\"}}' \"$server\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let url = format!("oci://{}/charts/podinfo", reg.host());

    // (config, why)
    let cases = [
        (
            serde_json::json!({"credHelpers": {reg.host(): "upkeeptest"}}),
            "credHelpers for this registry",
        ),
        (
            serde_json::json!({"credsStore": "upkeeptest"}),
            "credsStore for every registry",
        ),
    ];
    for (config, why) in cases {
        let file = dir.path().join("config.json");
        std::fs::write(&file, config.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args([
                "versions",
                &url,
                "--insecure",
                "--docker-config",
                file.to_str().unwrap(),
                "--output",
                "json",
            ])
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{why}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("\"selected\":\"v6.6.1\""),
            "{why}"
        );
        assert!(
            !text(&out.stderr).contains(&password),
            "{why}: the secret never shows"
        );
        let asked = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            asked.contains(reg.host()),
            "{why}: the helper was asked for the registry: {asked}"
        );
        std::fs::remove_file(&log).ok();
    }
}

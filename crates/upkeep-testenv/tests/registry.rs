//! Every registry kind against the real Debian `docker-registry`: it starts, a real Helm chart
//! pushes, its tags list through a plain reqwest call (auth done by hand here, independently of
//! the library's pusher), and wrong credentials are refused.

use std::time::Duration;

use base64::Engine as _;
use upkeep_testenv::{
    HELM_CHART_LAYER_MEDIA_TYPE, HELM_CONFIG_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, Registry, RegistryKind,
};

trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
    }
}

async fn start(kind: RegistryKind) -> Registry {
    Registry::start(kind).await.unwrap_or_else(|e| panic!("{kind:?}: {e}"))
}

/// An `Authorization` value for `scope` on `registry`, obtained by hand (no library pusher).
async fn authorization(registry: &Registry, scope: &str, credentials: Option<(&str, &str)>) -> Option<String> {
    let client = registry.client().unwrap();
    match registry.kind {
        RegistryKind::Plain | RegistryKind::Tls => None,
        RegistryKind::Htpasswd => credentials.map(|(u, p)| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        }),
        RegistryKind::Token => {
            let realm = registry.token_realm().unwrap();
            let mut request = client.get(format!("{realm}?service={}&scope={scope}", upkeep_testenv::TOKEN_SERVICE));
            if let Some((u, p)) = credentials {
                request = request.basic_auth(u, Some(p));
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "token server answers the test user");
            let json: serde_json::Value = response.json_value().await;
            assert_eq!(json["token"], json["access_token"], "both token fields carry the token");
            assert_eq!(json["expires_in"], 300);
            Some(format!("Bearer {}", json["token"].as_str().unwrap()))
        }
    }
}

async fn get(registry: &Registry, path: &str, auth: Option<&str>, accept: Option<&str>) -> reqwest::Response {
    let mut request = registry.client().unwrap().get(format!("{}{path}", registry.base_url()));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn every_kind_starts_pushes_a_chart_and_lists_its_tags() {
    let cases = [
        (RegistryKind::Plain, "http://", false, false, "anonymous plain HTTP"),
        (RegistryKind::Htpasswd, "http://", true, false, "basic auth from a bcrypt htpasswd file"),
        (RegistryKind::Tls, "https://", false, true, "HTTPS with a self-signed CA"),
        (RegistryKind::Token, "http://", true, false, "token auth verified by the registry itself"),
    ];
    for (kind, scheme, has_credentials, has_ca, reason) in cases {
        let registry = start(kind).await;
        assert!(registry.base_url().starts_with(scheme), "{kind:?}: {reason}");
        assert_eq!(registry.base_url(), format!("{scheme}{}", registry.host()), "{kind:?}");
        assert_eq!(registry.credentials().is_some(), has_credentials, "{kind:?}: {reason}");
        assert_eq!(registry.ca_pem_path().is_some(), has_ca, "{kind:?}: {reason}");

        let digest = registry
            .push_chart("charts/demo", "demo", "1.2.3", "1.2.3", Some("2024-05-06T07:08:09Z"))
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: push: {e}\n{}", registry.log_tail()));
        registry
            .push_chart("charts/demo", "demo", "1.3.0", "1.3.0", None)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: second push: {e}"));

        let creds = registry.credentials();
        let creds = creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let auth = authorization(&registry, "repository:charts/demo:pull", creds).await;
        let tags = get(&registry, "/v2/charts/demo/tags/list", auth.as_deref(), None).await;
        assert_eq!(tags.status(), 200, "{kind:?}: {reason}");
        let tags: serde_json::Value = tags.json_value().await;
        assert_eq!(tags["name"], "charts/demo", "{kind:?}");
        let mut listed: Vec<String> = serde_json::from_value(tags["tags"].clone()).unwrap();
        listed.sort();
        assert_eq!(listed, ["1.2.3", "1.3.0"], "{kind:?}: both pushes listed");

        let manifest = get(
            &registry,
            "/v2/charts/demo/manifests/1.2.3",
            auth.as_deref(),
            Some(OCI_MANIFEST_MEDIA_TYPE),
        )
        .await;
        assert_eq!(manifest.status(), 200, "{kind:?}");
        assert_eq!(
            manifest.headers()["docker-content-digest"].to_str().unwrap(),
            digest,
            "{kind:?}: push_chart returns the registry's manifest digest"
        );
        let manifest: serde_json::Value = manifest.json_value().await;
        assert_eq!(manifest["config"]["mediaType"], HELM_CONFIG_MEDIA_TYPE, "{kind:?}");
        assert_eq!(manifest["layers"][0]["mediaType"], HELM_CHART_LAYER_MEDIA_TYPE, "{kind:?}");
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.created"], "2024-05-06T07:08:09Z",
            "{kind:?}: the created annotation is kept"
        );
    }
}

#[tokio::test]
async fn the_chart_layer_is_a_real_tgz_holding_chart_yaml() {
    let registry = start(RegistryKind::Plain).await;
    registry.push_chart("charts/app", "app", "0.1.0", "0.1.0", None).await.unwrap();
    let manifest: serde_json::Value = get(&registry, "/v2/charts/app/manifests/0.1.0", None, Some(OCI_MANIFEST_MEDIA_TYPE))
        .await
        .json_value()
        .await;
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = get(&registry, &format!("/v2/charts/app/blobs/{layer}"), None, None).await.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("app-0.1.0.tgz");
    std::fs::write(&tgz, &blob).unwrap();
    // Real `tar` (with gzip) reads the archive: the bytes are a valid .tgz, not just "some bytes".
    let output = std::process::Command::new("tar").arg("-xzOf").arg(&tgz).arg("app/Chart.yaml").output().unwrap();
    assert!(output.status.success(), "tar: {}", String::from_utf8_lossy(&output.stderr));
    let chart_yaml = String::from_utf8(output.stdout).unwrap();
    for line in ["apiVersion: v2", "name: app", "version: \"0.1.0\""] {
        assert!(chart_yaml.lines().any(|l| l == line), "Chart.yaml has {line:?}: {chart_yaml}");
    }
    let config = manifest["config"]["digest"].as_str().unwrap();
    let config: serde_json::Value =
        get(&registry, &format!("/v2/charts/app/blobs/{config}"), None, None).await.json_value().await;
    assert_eq!((config["name"].as_str(), config["version"].as_str()), (Some("app"), Some("0.1.0")), "Helm config is Chart.yaml as JSON");
}

#[tokio::test]
async fn wrong_credentials_get_401() {
    let cases = [
        (RegistryKind::Htpasswd, "wrong password on the registry itself"),
        (RegistryKind::Token, "wrong password at the token server"),
    ];
    for (kind, reason) in cases {
        let registry = start(kind).await;
        let (user, _) = registry.credentials().unwrap();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:not-the-password"))
        );
        let url = match kind {
            RegistryKind::Token => format!(
                "{}?service={}&scope=repository:charts/demo:pull",
                registry.token_realm().unwrap(),
                upkeep_testenv::TOKEN_SERVICE
            ),
            _ => format!("{}/v2/", registry.base_url()),
        };
        let response = registry.client().unwrap().get(url).header("authorization", basic).send().await.unwrap();
        assert_eq!(response.status(), 401, "{kind:?}: {reason}");
        let anonymous = get(&registry, "/v2/", None, None).await;
        assert_eq!(anonymous.status(), 401, "{kind:?}: no credentials at all is refused too");
        assert!(
            anonymous.headers().contains_key("www-authenticate"),
            "{kind:?}: the 401 carries a challenge"
        );
    }
}

#[tokio::test]
async fn the_real_registry_verifies_token_scopes_and_signatures() {
    let registry = start(RegistryKind::Token).await;
    registry.push_chart("charts/private", "private", "1.0.0", "1.0.0", None).await.unwrap();
    registry.push_chart("public/open", "open", "2.0.0", "2.0.0", None).await.unwrap();
    let (user, pass) = registry.credentials().unwrap();
    let creds = Some((user.as_str(), pass.as_str()));

    let own = authorization(&registry, "repository:charts/private:pull", creds).await.unwrap();
    let other = authorization(&registry, "repository:charts/elsewhere:pull", creds).await.unwrap();
    let anonymous_public = authorization(&registry, "repository:public/open:pull", None).await.unwrap();
    let anonymous_private = authorization(&registry, "repository:charts/private:pull", None).await.unwrap();
    // Flip a character well inside the signature (the last one only carries padding bits).
    let at = own.len() - 10;
    let flipped = if &own[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &own[..at], &own[at + 1..]);

    let cases = [
        ("/v2/charts/private/tags/list", own.as_str(), 200, "the test user's token pulls"),
        ("/v2/charts/private/tags/list", other.as_str(), 401, "a token for another repository does not"),
        ("/v2/public/open/tags/list", anonymous_public.as_str(), 200, "anonymous may pull public/…"),
        ("/v2/charts/private/tags/list", anonymous_private.as_str(), 401, "anonymous gets nothing elsewhere"),
        ("/v2/charts/private/tags/list", tampered.as_str(), 401, "a broken signature is refused by the registry"),
        ("/v2/charts/private/tags/list", "Bearer not-a-jwt", 401, "garbage is refused"),
    ];
    for (path, auth, want, reason) in cases {
        let response = get(&registry, path, Some(auth), None).await;
        assert_eq!(response.status(), want, "{path}: {reason}\n{}", registry.log_tail());
    }
}

#[tokio::test]
async fn push_tags_puts_one_manifest_under_many_tags() {
    let registry = start(RegistryKind::Token).await;
    let tags: Vec<String> = (0..300).map(|i| format!("1.0.{i}")).collect();
    let digest = registry.push_tags("charts/many", &tags).await.unwrap();
    let auth = authorization(
        &registry,
        "repository:charts/many:pull",
        registry.credentials().as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
    )
    .await;
    let listed: serde_json::Value =
        get(&registry, "/v2/charts/many/tags/list", auth.as_deref(), None).await.json_value().await;
    let mut listed: Vec<String> = serde_json::from_value(listed["tags"].clone()).unwrap();
    listed.sort();
    let mut want = tags.clone();
    want.sort();
    assert_eq!(listed, want, "every tag is listed exactly once");
    let head = registry
        .client()
        .unwrap()
        .head(format!("{}/v2/charts/many/manifests/1.0.299", registry.base_url()))
        .header("authorization", auth.unwrap())
        .header("accept", OCI_MANIFEST_MEDIA_TYPE)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(head.headers()["docker-content-digest"].to_str().unwrap(), digest, "the last tag points at the same manifest");
}

#[tokio::test]
async fn docker_config_json_carries_the_credentials() {
    let cases = [
        (RegistryKind::Plain, None, "anonymous kinds have no auths entry"),
        (RegistryKind::Htpasswd, Some(format!("{}:{}", upkeep_testenv::TEST_USER, upkeep_testenv::TEST_PASSWORD)), "basic auth"),
    ];
    for (kind, want, reason) in cases {
        let registry = start(kind).await;
        let config = registry.docker_config_json();
        let auth = config["auths"][registry.host()]["auth"].as_str().map(|a| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(a).unwrap()).unwrap()
        });
        assert_eq!(auth, want, "{kind:?}: {reason}");
        assert!(config["auths"].is_object(), "{kind:?}: auths is always an object");
    }
}

#[test]
fn a_missing_binary_names_the_package_and_the_test_command() {
    let error = upkeep_testenv::TestEnvError::MissingBinary {
        binary: "docker-registry".to_owned(),
        package: "docker-registry".to_owned(),
        looked: "/usr/bin/docker-registry".to_owned(),
    };
    assert!(
        error.to_string().contains("install docker-registry (the README test command ./scripts/test does)"),
        "{error}"
    );
}

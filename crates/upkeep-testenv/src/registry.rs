//! The real OCI registry: Debian's `docker-registry` (CNCF distribution 2.8) on a free
//! 127.0.0.1 port, storage in a tempdir, in four set-ups (plain, htpasswd, TLS, token), and
//! optionally with `notifications.endpoints` ([`RegistryOptions`]) so tests see the registry's
//! own push notifications.
//!
//! Process handling (watchdog, free port with retry, readiness against a deadline) is shared
//! with the other process-backed components in [`crate::process`]; this module only writes the
//! registry's configuration and knows how to push to it.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::TestEnvError;
use crate::pki::TestCa;
use crate::process::{
    Launch, Watched, find_binary, htpasswd_line, server_tempdir, start_on_free_port, tail, write,
};
use crate::push::Pusher;
use crate::token::TokenServer;

/// User name the `Htpasswd` and `Token` kinds accept.
pub const TEST_USER: &str = "upkeep-test";
/// Password the `Htpasswd` and `Token` kinds accept.
pub const TEST_PASSWORD: &str = "upkeep-test-password";
/// `auth.token.service` of the `Token` kind (the `aud` of its tokens).
pub const TOKEN_SERVICE: &str = "upkeep-testenv-registry";
/// `auth.token.issuer` of the `Token` kind (the `iss` of its tokens).
pub const TOKEN_ISSUER: &str = "upkeep-testenv-token-server";

/// How the registry is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryKind {
    /// Plain HTTP, anonymous.
    Plain,
    /// Plain HTTP, basic auth from an htpasswd file (bcrypt), user [`TEST_USER`].
    Htpasswd,
    /// HTTPS with a certificate from a fresh self-signed CA ([`Registry::ca_pem_path`]), anonymous.
    Tls,
    /// Plain HTTP, `auth.token` pointing at a token server of the test environment that grants
    /// the test user everything and anonymous callers `pull` on `public/…` only.
    Token,
}

impl RegistryKind {
    /// Every kind, for table tests.
    pub const ALL: [Self; 4] = [Self::Plain, Self::Htpasswd, Self::Tls, Self::Token];
}

/// One `notifications.endpoints` entry: where the registry POSTs its event envelopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationEndpoint {
    /// Endpoint name in the configuration.
    pub name: String,
    /// e.g. `http://127.0.0.1:PORT/hook/distribution`.
    pub url: String,
    /// Headers sent with every request, e.g. `("Authorization", "Bearer …")`.
    pub headers: Vec<(String, String)>,
    /// Request timeout.
    pub timeout: Duration,
    /// Failures before the endpoint backs off.
    pub threshold: u32,
    /// Wait after `threshold` failures.
    pub backoff: Duration,
    /// Media types whose events are not sent (e.g. blob layers).
    pub ignored_media_types: Vec<String>,
}

impl NotificationEndpoint {
    /// An endpoint named `upkeep` at `url`, 1 s timeout, threshold 3, 1 s backoff.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            name: "upkeep".to_owned(),
            url: url.into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            threshold: 3,
            backoff: Duration::from_secs(1),
            ignored_media_types: Vec::new(),
        }
    }

    /// An endpoint posting to an upkeep receiver at `addr` (`host:port`): its distribution
    /// path, with `secret` as the Bearer token the receiver checks.
    pub fn upkeep_receiver(addr: &str, secret: &str) -> Self {
        Self::new(format!("http://{addr}/hook/distribution"))
            .header("Authorization", format!("Bearer {secret}"))
    }

    /// Adds a header sent with every notification.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The endpoint's YAML (under `notifications.endpoints`); strings are JSON-quoted, which
    /// YAML reads as the same strings.
    fn yaml(&self) -> String {
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let mut out = format!(
            "    - name: {}\n      url: {}\n      timeout: {}ms\n      threshold: {}\n      backoff: {}ms\n",
            q(&self.name),
            q(&self.url),
            self.timeout.as_millis(),
            self.threshold,
            self.backoff.as_millis()
        );
        if !self.headers.is_empty() {
            out.push_str("      headers:\n");
            for (name, value) in &self.headers {
                let _ = writeln!(out, "        {}: [{}]", q(name), q(value));
            }
        }
        if !self.ignored_media_types.is_empty() {
            out.push_str("      ignoredmediatypes:\n");
            for t in &self.ignored_media_types {
                let _ = writeln!(out, "        - {}", q(t));
            }
        }
        out
    }
}

/// Optional parts of a registry's configuration ([`Registry::start_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryOptions {
    /// `notifications.endpoints`; none when empty.
    pub notifications: Vec<NotificationEndpoint>,
}

impl RegistryOptions {
    fn yaml(&self) -> String {
        if self.notifications.is_empty() {
            return String::new();
        }
        let mut out = String::from("notifications:\n  endpoints:\n");
        for endpoint in &self.notifications {
            out.push_str(&endpoint.yaml());
        }
        out
    }
}

/// A running registry; dropping it stops the process and deletes its storage.
#[derive(Debug)]
pub struct Registry {
    /// The set-up of this registry.
    pub kind: RegistryKind,
    host: String,
    base_url: String,
    credentials: Option<(String, String)>,
    ca_pem_path: Option<PathBuf>,
    log_path: PathBuf,
    _process: Watched,
    token_server: Option<TokenServer>,
    // Dropped last: the storage and log live here.
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry of the given kind and waits until `GET /v2/` answers (200 or 401).
    pub async fn start(kind: RegistryKind) -> Result<Self, TestEnvError> {
        Self::start_with(kind, RegistryOptions::default()).await
    }

    /// Like [`Registry::start`], with the optional parts of the configuration in `options`
    /// (e.g. notification endpoints).
    pub async fn start_with(
        kind: RegistryKind,
        options: RegistryOptions,
    ) -> Result<Self, TestEnvError> {
        crate::install_crypto_provider();
        let binary = find_binary(
            "UPKEEP_TESTENV_DOCKER_REGISTRY",
            &["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"],
            "docker-registry",
            "docker-registry",
        )?;
        let dir = server_tempdir("upkeep-registry-", "registry")?;
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("storage"))
            .map_err(|e| TestEnvError::io("creating the registry storage dir", e))?;

        let mut credentials = None;
        let mut ca_pem_path = None;
        let mut token_server = None;
        let mut auth_yaml = String::new();
        let mut tls_yaml = String::new();
        match kind {
            RegistryKind::Plain => {}
            RegistryKind::Htpasswd => {
                let path = root.join("htpasswd");
                write(&path, htpasswd_line(TEST_USER, TEST_PASSWORD)?.as_bytes())?;
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: upkeep-testenv\n    path: {}\n",
                    path.display()
                );
                credentials = Some((TEST_USER.to_owned(), TEST_PASSWORD.to_owned()));
            }
            RegistryKind::Tls => {
                let ca = TestCa::new("upkeep testenv registry CA")?;
                let leaf = ca.issue("127.0.0.1", &["127.0.0.1", "localhost"])?;
                let (ca_path, cert_path, key_path) = (
                    root.join("ca.pem"),
                    root.join("server.pem"),
                    root.join("server-key.pem"),
                );
                write(&ca_path, ca.pem.as_bytes())?;
                write(&cert_path, leaf.cert_pem.as_bytes())?;
                write(&key_path, leaf.key_pem.as_bytes())?;
                tls_yaml = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert_path.display(),
                    key_path.display()
                );
                ca_pem_path = Some(ca_path);
            }
            RegistryKind::Token => {
                let ca = TestCa::new("upkeep testenv token CA")?;
                let signer = ca.issue("upkeep testenv token signer", &[])?;
                let bundle = root.join("token-ca.pem");
                write(&bundle, ca.pem.as_bytes())?;
                let server = TokenServer::start(
                    &signer,
                    TOKEN_ISSUER,
                    TOKEN_SERVICE,
                    TEST_USER,
                    TEST_PASSWORD,
                )?;
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    server.realm(),
                    bundle.display()
                );
                token_server = Some(server);
                credentials = Some((TEST_USER.to_owned(), TEST_PASSWORD.to_owned()));
            }
        }

        let scheme = if kind == RegistryKind::Tls {
            "https"
        } else {
            "http"
        };
        let client = crate::http_client(ca_pem_path.as_deref(), Duration::from_secs(2))?;
        let notifications_yaml = options.yaml();
        let log_path = root.join("registry.log");
        let config_path = root.join("config.yml");
        let launch = Launch {
            component: "docker-registry",
            log_path: &log_path,
            client: &client,
            scheme,
            probe_path: "/v2/",
            ready: |status| matches!(status, 200 | 401),
        };
        let started = start_on_free_port(&launch, |host, attempt| {
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {host}\n  secret: upkeep-testenv-secret\n{tls_yaml}{auth_yaml}{notifications_yaml}",
                root.join("storage").display()
            );
            write(&config_path, config.as_bytes())?;
            Watched::spawn(
                &binary,
                &[OsString::from("serve"), config_path.clone().into_os_string()],
                &log_path,
                &format!("start attempt {attempt} on {host}"),
            )
        })
        .await?;
        Ok(Self {
            kind,
            host: started.host,
            base_url: started.base_url,
            credentials,
            ca_pem_path,
            log_path,
            _process: started.process,
            token_server,
            dir,
        })
    }

    /// `127.0.0.1:PORT`, as used in image references and Docker's `auths`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The set-up of this registry.
    pub fn kind(&self) -> RegistryKind {
        self.kind
    }

    /// The test user and password for kinds with auth (`Htpasswd`, `Token`).
    pub fn credentials(&self) -> Option<(String, String)> {
        self.credentials.clone()
    }

    /// The CA certificate (PEM) the `Tls` kind's server certificate chains to.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem_path.as_deref()
    }

    /// The token server's realm URL (`Token` kind only).
    pub fn token_realm(&self) -> Option<String> {
        self.token_server.as_ref().map(TokenServer::realm)
    }

    /// The tempdir holding storage, configuration and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A Docker `config.json` for this registry: `{"auths": {HOST: {"auth": base64(user:pass)}}}`
    /// with credentials, `{"auths": {}}` without.
    pub fn docker_config_json(&self) -> serde_json::Value {
        match &self.credentials {
            Some((user, pass)) => json!({
                "auths": {
                    self.host.clone(): {
                        "auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")),
                    }
                }
            }),
            None => json!({ "auths": {} }),
        }
    }

    /// The last 40 lines of the registry's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path, 40)
    }

    /// A reqwest client that trusts this registry's CA (if any); no auth attached.
    pub fn client(&self) -> Result<reqwest::Client, TestEnvError> {
        crate::http_client(self.ca_pem_path(), Duration::from_secs(30))
    }

    fn pusher(&self, repo: &str) -> Result<Pusher, TestEnvError> {
        Pusher::new(
            self.client()?,
            &self.base_url,
            repo,
            self.credentials.clone(),
            self.kind == RegistryKind::Htpasswd,
        )
    }

    /// Pushes a real minimal Helm chart (`name` at `version`) to `repo` under `tag`, with the
    /// `org.opencontainers.image.created` annotation when `created` is given. Returns the
    /// manifest digest (`sha256:…`).
    pub async fn push_chart(
        &self,
        repo: &str,
        name: &str,
        version: &str,
        tag: &str,
        created: Option<&str>,
    ) -> Result<String, TestEnvError> {
        let artifact = crate::chart::build(name, version, created)?;
        self.pusher(repo)?.push(&artifact, tag).await
    }

    /// Pushes one chart (named after the last segment of `repo`, version = first tag) once and
    /// then puts the same manifest under every tag, a few requests at a time. Returns the
    /// manifest digest. Fast enough for 10,000 tags.
    pub async fn push_tags(&self, repo: &str, tags: &[String]) -> Result<String, TestEnvError> {
        let Some(first) = tags.first() else {
            return Err(TestEnvError::invalid("tag list", "empty"));
        };
        let name = repo.rsplit('/').next().unwrap_or(repo);
        let artifact = crate::chart::build(name, first, None)?;
        let mut pusher = self.pusher(repo)?;
        let digest = pusher.push(&artifact, first).await?;
        pusher.tag_all(&artifact.manifest, &tags[1..]).await?;
        Ok(digest)
    }

    /// Like [`Registry::push_tags`], but only the first tag goes through the API; the others
    /// are written straight into the registry's filesystem storage as the tag links
    /// distribution itself writes (`_manifests/tags/<tag>/{current,index/sha256/<hex>}/link`).
    /// The registry then lists and serves them like pushed tags. Seconds faster for 10,000 tags
    /// (the API path costs about 2–3 ms of registry CPU per tag).
    pub async fn seed_tags(&self, repo: &str, tags: &[String]) -> Result<String, TestEnvError> {
        let Some(first) = tags.first() else {
            return Err(TestEnvError::invalid("tag list", "empty"));
        };
        let name = repo.rsplit('/').next().unwrap_or(repo);
        let artifact = crate::chart::build(name, first, None)?;
        let digest = self.pusher(repo)?.push(&artifact, first).await?;
        let hex = digest.trim_start_matches("sha256:");
        let tags_dir = self
            .dir
            .path()
            .join("storage/docker/registry/v2/repositories")
            .join(repo)
            .join("_manifests/tags");
        for tag in &tags[1..] {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !valid {
                return Err(TestEnvError::invalid("tag", tag.clone()));
            }
            for dir in [
                tags_dir.join(tag).join("current"),
                tags_dir.join(tag).join("index/sha256").join(hex),
            ] {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| TestEnvError::io(format!("creating {}", dir.display()), e))?;
                write(&dir.join("link"), digest.as_bytes())?;
            }
        }
        Ok(digest)
    }
}

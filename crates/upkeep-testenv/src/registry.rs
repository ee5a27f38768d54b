//! The real OCI registry: Debian's `docker-registry` (CNCF distribution 2.8) on a free
//! 127.0.0.1 port, storage in a tempdir, in four set-ups (plain, htpasswd, TLS, token).
//!
//! The process runs under a tiny `sh` watchdog that holds our end of a pipe: when the
//! `Registry` is dropped — or the test process dies — the pipe closes and the watchdog kills
//! the registry, so no registry outlives its test binary. A port taken between choosing and
//! binding it is retried with another port.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

use crate::TestEnvError;
use crate::background::bind_free;
use crate::pki::TestCa;
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

const READY_DEADLINE: Duration = Duration::from_secs(15);
const READY_POLL: Duration = Duration::from_millis(25);
const START_ATTEMPTS: u32 = 3;

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

/// The watchdog shell; dropping it closes the pipe (which kills the registry) and reaps it.
#[derive(Debug)]
struct Watched(Child);

impl Drop for Watched {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// The watchdog: starts the registry, kills it when stdin (our pipe) reaches EOF, and exits
/// with the registry's status when the registry exits on its own.
const WATCHDOG: &str = r#"exec 3<&0
"$0" serve "$1" </dev/null 3<&- &
pid=$!
( cat <&3 >/dev/null 2>&1; kill -9 "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid""#;

fn find_binary(
    env: &str,
    candidates: &[&str],
    package: &str,
    name: &str,
) -> Result<PathBuf, TestEnvError> {
    let mut looked = Vec::new();
    if let Ok(path) = std::env::var(env) {
        if Path::new(&path).is_file() {
            return Ok(PathBuf::from(path));
        }
        looked.push(format!("${env}={path}"));
    }
    for candidate in candidates {
        if Path::new(candidate).is_file() {
            return Ok(PathBuf::from(candidate));
        }
        looked.push((*candidate).to_owned());
    }
    Err(TestEnvError::MissingBinary {
        binary: name.to_owned(),
        package: package.to_owned(),
        looked: looked.join(", "),
    })
}

fn write(path: &Path, contents: &[u8]) -> Result<(), TestEnvError> {
    std::fs::write(path, contents)
        .map_err(|e| TestEnvError::io(format!("writing {}", path.display()), e))
}

fn htpasswd_line(user: &str, password: &str) -> Result<String, TestEnvError> {
    let bin = find_binary(
        "UPKEEP_TESTENV_HTPASSWD",
        &["/usr/bin/htpasswd", "/usr/local/bin/htpasswd"],
        "apache2-utils",
        "htpasswd",
    )?;
    let output = std::process::Command::new(&bin)
        .args(["-Bbn", user, password])
        .output()
        .map_err(|e| TestEnvError::io(format!("running {}", bin.display()), e))?;
    let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !line.starts_with(&format!("{user}:$2")) {
        return Err(TestEnvError::invalid(
            "htpasswd output",
            format!("{line} {}", String::from_utf8_lossy(&output.stderr)),
        ));
    }
    Ok(line + "\n")
}

/// The last `lines` lines of a log file (empty when unreadable).
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Registry {
    /// Starts a registry of the given kind and waits until `GET /v2/` answers (200 or 401).
    pub async fn start(kind: RegistryKind) -> Result<Self, TestEnvError> {
        crate::install_crypto_provider();
        let binary = find_binary(
            "UPKEEP_TESTENV_DOCKER_REGISTRY",
            &["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"],
            "docker-registry",
            "docker-registry",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("upkeep-registry-")
            .tempdir()
            .map_err(|e| TestEnvError::io("creating the registry tempdir", e))?;
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
        let log_path = root.join("registry.log");
        let mut last_error = None;
        for attempt in 0..START_ATTEMPTS {
            let port = bind_free()?
                .local_addr()
                .map_err(|e| TestEnvError::io("reading a free port", e))?
                .port();
            let host = format!("127.0.0.1:{port}");
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {host}\n  secret: upkeep-testenv-secret\n{tls_yaml}{auth_yaml}",
                root.join("storage").display()
            );
            let config_path = root.join("config.yml");
            write(&config_path, config.as_bytes())?;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| TestEnvError::io(format!("opening {}", log_path.display()), e))?;
            let _ = writeln!(
                log,
                "--- upkeep-testenv: start attempt {} on {host} ---",
                attempt + 1
            );
            let log_err = log
                .try_clone()
                .map_err(|e| TestEnvError::io("duplicating the log file handle", e))?;
            let child = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(WATCHDOG)
                .arg(&binary)
                .arg(&config_path)
                .stdin(Stdio::piped())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .map_err(|e| TestEnvError::io(format!("starting {}", binary.display()), e))?;
            let mut process = Watched(child);
            let base_url = format!("{scheme}://{host}");
            match wait_ready(&client, &base_url, &mut process, &log_path).await {
                Ok(()) => {
                    return Ok(Self {
                        kind,
                        host,
                        base_url,
                        credentials,
                        ca_pem_path,
                        log_path,
                        _process: process,
                        token_server,
                        dir,
                    });
                }
                Err(e @ TestEnvError::Exited { .. })
                    if tail(&log_path, 5).contains("address already in use") =>
                {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| TestEnvError::invalid("registry start", "no attempt made")))
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
}

async fn wait_ready(
    client: &reqwest::Client,
    base_url: &str,
    process: &mut Watched,
    log_path: &Path,
) -> Result<(), TestEnvError> {
    let started = Instant::now();
    let url = format!("{base_url}/v2/");
    loop {
        if let Ok(Some(status)) = process.0.try_wait() {
            return Err(TestEnvError::Exited {
                component: "docker-registry".to_owned(),
                status: status.to_string(),
                log_tail: tail(log_path, 40),
            });
        }
        if let Ok(response) = client.get(&url).send().await
            && matches!(response.status().as_u16(), 200 | 401)
        {
            return Ok(());
        }
        if started.elapsed() > READY_DEADLINE {
            return Err(TestEnvError::NotReady {
                component: "docker-registry".to_owned(),
                url,
                waited_ms: started.elapsed().as_millis(),
                log_tail: tail(log_path, 40),
            });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

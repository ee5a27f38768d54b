//! A real Kubernetes API server for tests: Debian's `etcd` plus `kube-apiserver` v1.20.2 built
//! from Debian's source package by `scripts/kube-apiserver`, both on free 127.0.0.1 ports with
//! everything they write in one tempdir.
//!
//! Why it is shaped this way:
//! - The API server is not packaged for Debian 12, only its source is; building it takes
//!   minutes, so the build lives in a script that caches it outside the repository and the
//!   tests only look it up (`$UPKEEP_TESTENV_KUBE_APISERVER`, then the script's cache path). A
//!   missing build is [`TestEnvError::NotBuilt`], naming the script, never a skipped test.
//! - It runs with exactly the flags of DESIGN.md ("The test API server, step by step"): token
//!   authentication from a CSV file and RBAC authorization, so a test can run a controller with
//!   the unprivileged [`KubeUser::Controller`] and grant it precisely the permissions the test
//!   means to (the admin is in `system:masters`). The service-account key pair comes from
//!   rcgen; the serving certificate is the server's own self-signed one from `--cert-dir`,
//!   which is read back and trusted ([`KubeApiServer::ca_pem`]), so TLS is checked for real.
//! - Both processes run under the shared watchdog of [`crate::process`], so a killed test takes
//!   them down too. etcd is probed on `/health`; the API server is ready only when `/readyz`
//!   answers 200 to the admin, i.e. after its bootstrap hooks (RBAC roles included) ran, and
//!   the `default` and `kube-system` namespaces exist (they appear a moment later).
//! - [`KubeApiServer::stop_apiserver`] / [`KubeApiServer::restart_apiserver`] stop and start
//!   only the API server, on the same port against the same etcd (and the same serving
//!   certificate, which stays in `--cert-dir`), for tests where the API goes away and comes back
//!   with its objects intact.
//! - [`KubeApiServer::start_audited`] adds the API server's audit log (`Metadata` level, one
//!   JSON line per answered request, read back by [`KubeApiServer::audit_events`]): the
//!   server's own record of who sent what with which User-Agent. Opt-in, because it costs a
//!   write per request that benchmarks must not pay.
//! - `kubectl` is Debian's (`kubernetes-client`), run with its own `--cache-dir` in the tempdir
//!   so a discovery cache from an earlier server on the same port can never leak in.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::{CertificateParams, DnType, KeyPair};

use crate::TestEnvError;
use crate::process::{
    Launch, Watched, find_binary, free_addr, free_port, server_tempdir, start_on_free_port, tail,
    write,
};

/// The API server version the tests run (and `scripts/kube-apiserver` builds).
pub const KUBE_APISERVER_VERSION: &str = "v1.20.2";
/// The user name of the admin token (group `system:masters`).
pub const KUBE_ADMIN_USER: &str = "upkeep-admin";
/// The user name of the controller token (no groups beyond `system:authenticated`).
pub const KUBE_CONTROLLER_USER: &str = "upkeep-controller";

const APISERVER_ENV: &str = "UPKEEP_TESTENV_KUBE_APISERVER";
const BUILD_SCRIPT: &str = "scripts/kube-apiserver";
/// The cache directory of `scripts/kube-apiserver`, below the upkeep cache root.
const CACHE_SUBDIR: &str = "kube-apiserver-1.20.2";
/// Where the script leaves the binary, below [`CACHE_SUBDIR`].
const CACHED_BINARY: &str = "kubernetes/_output/bin/kube-apiserver";
/// Where the script unpacks Debian's kubectl when another package owns `/usr/bin/kubectl`.
const CACHED_KUBECTL: &str = "kubernetes-client/usr/bin/kubectl";

/// Start-up is a few seconds on an idle machine; the deadline allows for a busy CI box.
const APISERVER_READY_DEADLINE: Duration = Duration::from_secs(90);
const APISERVER_POLL: Duration = Duration::from_millis(50);
const START_ATTEMPTS: u32 = 3;
/// Ready means each of these answered 200 to the admin: `/readyz` (the bootstrap hooks ran,
/// RBAC roles included), then the namespaces every cluster has, which the bootstrap controller
/// creates a moment *after* `/readyz` first says ok (tests put objects into `default` at once).
const READY_PROBES: &[&str] = &[
    "/readyz",
    "/api/v1/namespaces/default",
    "/api/v1/namespaces/kube-system",
];
const LOG_TAIL_LINES: usize = 40;

/// Which token a kubeconfig carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KubeUser {
    /// [`KUBE_ADMIN_USER`], in `system:masters`: may do everything.
    Admin,
    /// [`KUBE_CONTROLLER_USER`]: authenticated, but may do only what a test grants it by RBAC.
    Controller,
}

impl KubeUser {
    /// The user name the API server sees.
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => KUBE_ADMIN_USER,
            Self::Controller => KUBE_CONTROLLER_USER,
        }
    }
}

/// A running etcd and API server; dropping it stops both and deletes the tempdir.
#[derive(Debug)]
pub struct KubeApiServer {
    url: String,
    port: u16,
    etcd_url: String,
    binary: PathBuf,
    ca_pem: String,
    admin_token: String,
    controller_token: String,
    log_path: PathBuf,
    etcd_log_path: PathBuf,
    admin_kubeconfig: PathBuf,
    /// `Some(path)`: the API server writes an audit log (one JSON line per request, at the
    /// `Metadata` level: who, which verb on what, with which User-Agent) to `path`.
    audit_log: Option<PathBuf>,
    // Drop order matters: the API server goes first, then etcd, then the tempdirs.
    apiserver: Option<Watched>,
    _etcd: Watched,
    /// etcd's data directory when it is not below `dir` (see [`etcd_data_dir`]).
    _etcd_data: Option<tempfile::TempDir>,
    dir: tempfile::TempDir,
}

/// Where etcd keeps its data: `$UPKEEP_TESTENV_ETCD_DIR`, else a fresh directory in
/// `/dev/shm` when that is a writable directory, else below the server's tempdir. etcd
/// `fsync`s every commit; on this VM's disk that, not the API server or upkeep, bounded how
/// many writes a second the test server takes (the cluster benchmark writes two per cluster).
/// Durability across a machine crash is nothing a test server needs; its data lives as long
/// as the handle.
fn etcd_data_dir(root: &Path) -> Result<(PathBuf, Option<tempfile::TempDir>), TestEnvError> {
    let in_dir = |base: &Path| {
        tempfile::Builder::new()
            .prefix("upkeep-etcd-")
            .tempdir_in(base)
    };
    if let Some(base) = env_var("UPKEEP_TESTENV_ETCD_DIR").filter(|v| !v.is_empty()) {
        let dir = in_dir(Path::new(&base)).map_err(|e| {
            TestEnvError::io(
                format!("creating etcd's data directory in {base} ($UPKEEP_TESTENV_ETCD_DIR)"),
                e,
            )
        })?;
        return Ok((dir.path().join("data"), Some(dir)));
    }
    // /dev/shm when it takes a directory; the disk otherwise.
    match in_dir(Path::new("/dev/shm")) {
        Ok(dir) => Ok((dir.path().join("data"), Some(dir))),
        Err(_) => Ok((root.join("etcd"), None)),
    }
}

/// The upkeep cache root as `scripts/kube-apiserver` computes it:
/// `${UPKEEP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/upkeep}` (empty counts as unset).
fn cache_root(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("UPKEEP_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = match set("XDG_CACHE_HOME") {
        Some(xdg) => PathBuf::from(xdg),
        None => PathBuf::from(set("HOME")?).join(".cache"),
    };
    Some(base.join("upkeep"))
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `$UPKEEP_TESTENV_KUBE_APISERVER` if it names a file, else the script's cache path if the
/// binary is there; else [`TestEnvError::NotBuilt`] listing both.
fn locate_apiserver(
    env_value: Option<&str>,
    cache_root: Option<&Path>,
) -> Result<PathBuf, TestEnvError> {
    let mut looked = Vec::new();
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        if Path::new(value).is_file() {
            return Ok(PathBuf::from(value));
        }
        looked.push(format!("${APISERVER_ENV}={value}"));
    }
    match cache_root {
        Some(root) => {
            let cached = root.join(CACHE_SUBDIR).join(CACHED_BINARY);
            if cached.is_file() {
                return Ok(cached);
            }
            looked.push(cached.display().to_string());
        }
        None => looked.push(
            "the upkeep cache (neither UPKEEP_CACHE_DIR, XDG_CACHE_HOME nor HOME is set)"
                .to_owned(),
        ),
    }
    Err(TestEnvError::NotBuilt {
        binary: "kube-apiserver".to_owned(),
        script: BUILD_SCRIPT.to_owned(),
        looked: looked.join(", "),
    })
}

/// Debian's kubectl: `$UPKEEP_TESTENV_KUBECTL`, the copy `scripts/kube-apiserver` unpacks into
/// its cache when `/usr/bin/kubectl` belongs to another package, then `/usr/bin/kubectl`.
fn find_kubectl() -> Result<PathBuf, TestEnvError> {
    let cached = cache_root(env_var)
        .map(|root| root.join(CACHE_SUBDIR).join(CACHED_KUBECTL))
        .map(|p| p.display().to_string());
    let mut candidates: Vec<&str> = cached.iter().map(String::as_str).collect();
    candidates.push("/usr/bin/kubectl");
    find_binary(
        "UPKEEP_TESTENV_KUBECTL",
        &candidates,
        "kubernetes-client",
        "kubectl",
    )
}

/// 32 random bytes as hex: a bearer token nobody can guess.
fn random_token() -> Result<String, TestEnvError> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| TestEnvError::Certificate("no randomness for a token".to_owned()))?;
    let mut hex = String::with_capacity(64);
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    Ok(hex)
}

/// Whether the log's last lines say the port was taken (then another port is tried).
fn port_taken(log_path: &Path) -> bool {
    tail(log_path, 10)
        .to_ascii_lowercase()
        .contains("address already in use")
}

impl KubeApiServer {
    /// Starts etcd and then the API server, and waits until `/readyz` answers 200 to the admin
    /// and the `default` and `kube-system` namespaces exist.
    pub async fn start() -> Result<Self, TestEnvError> {
        Self::start_with(false).await
    }

    /// [`KubeApiServer::start`] with an audit log ([`KubeApiServer::audit_events`]): the
    /// server's own record of every request, for tests of what a client sends (its
    /// User-Agent, its verbs). Opt-in: the log costs a write per request, which benchmarks
    /// must not pay.
    pub async fn start_audited() -> Result<Self, TestEnvError> {
        Self::start_with(true).await
    }

    /// [`KubeApiServer::start_audited`] with `crds` applied and Established (see
    /// [`KubeApiServer::start_with_crds`]).
    pub async fn start_audited_with_crds(crds: &[&str]) -> Result<Self, TestEnvError> {
        let server = Self::start_audited().await?;
        server.apply_crds(&crds.join("\n---\n"))?;
        Ok(server)
    }

    async fn start_with(audit: bool) -> Result<Self, TestEnvError> {
        crate::install_crypto_provider();
        let binary = locate_apiserver(
            env_var(APISERVER_ENV).as_deref(),
            cache_root(env_var).as_deref(),
        )?;
        let etcd_binary = find_binary(
            "UPKEEP_TESTENV_ETCD",
            &["/usr/bin/etcd", "/usr/local/bin/etcd"],
            "etcd-server",
            "etcd",
        )?;
        let dir = server_tempdir("upkeep-kube-", "kube-apiserver")?;
        let root = dir.path().to_path_buf();

        // Tokens: `token,user,uid,"groups"`; the controller gets no group column at all.
        let admin_token = random_token()?;
        let controller_token = random_token()?;
        write(
            &root.join("tokens.csv"),
            format!(
                "{admin_token},{KUBE_ADMIN_USER},uid-{KUBE_ADMIN_USER},\"system:masters\"\n{controller_token},{KUBE_CONTROLLER_USER},uid-{KUBE_CONTROLLER_USER}\n"
            )
            .as_bytes(),
        )?;
        // The service-account key pair: a key and a self-signed certificate carrying its public
        // half (what `openssl req -x509` would make).
        let sa_key = KeyPair::generate()?;
        let mut sa_params = CertificateParams::new(Vec::<String>::new())?;
        sa_params
            .distinguished_name
            .push(DnType::CommonName, "upkeep testenv service accounts");
        let sa_cert = sa_params.self_signed(&sa_key)?;
        write(&root.join("sa.key"), sa_key.serialize_pem().as_bytes())?;
        write(&root.join("sa.crt"), sa_cert.pem().as_bytes())?;
        if audit {
            // One line per request once it is answered (not again when received).
            write(
                &root.join("audit-policy.yaml"),
                b"apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
            )?;
        }

        let etcd_log_path = root.join("etcd.log");
        let etcd_client = crate::http_client(None, Duration::from_secs(2))?;
        let launch = Launch {
            component: "etcd",
            log_path: &etcd_log_path,
            client: &etcd_client,
            scheme: "http",
            probe_path: "/health",
            ready: |status| status == 200,
        };
        let (data_dir, etcd_data) = etcd_data_dir(&root)?;
        let etcd = start_on_free_port(&launch, |host, attempt| {
            let peer = free_addr()?;
            // A failed attempt may have initialised the data dir for other URLs.
            let _ = std::fs::remove_dir_all(&data_dir);
            let client_url = format!("http://{host}");
            let args: Vec<OsString> = vec![
                "--data-dir".into(),
                data_dir.clone().into_os_string(),
                "--listen-client-urls".into(),
                client_url.clone().into(),
                "--advertise-client-urls".into(),
                client_url.into(),
                "--listen-peer-urls".into(),
                format!("http://{peer}").into(),
            ];
            Watched::spawn(
                &etcd_binary,
                &args,
                &etcd_log_path,
                &format!("etcd start attempt {attempt} on {host}"),
            )
        })
        .await?;

        let mut server = Self {
            url: String::new(),
            port: 0,
            etcd_url: etcd.base_url,
            binary,
            ca_pem: String::new(),
            admin_token,
            controller_token,
            log_path: root.join("kube-apiserver.log"),
            etcd_log_path,
            admin_kubeconfig: root.join("admin.kubeconfig"),
            audit_log: audit.then(|| root.join("audit.log")),
            apiserver: None,
            _etcd: etcd.process,
            _etcd_data: etcd_data,
            dir,
        };
        let mut last_error = None;
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            server.port = port;
            server.url = format!("https://127.0.0.1:{port}");
            match server.launch_apiserver(attempt).await {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(e @ TestEnvError::Exited { .. }) if port_taken(&server.log_path) => {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = last_error {
            return Err(e);
        }
        server.write_kubeconfig(&server.admin_kubeconfig, KubeUser::Admin)?;
        Ok(server)
    }

    /// Spawns the API server on `self.port` and waits for `/readyz`; on success keeps the
    /// process and the serving certificate.
    async fn launch_apiserver(&mut self, attempt: u32) -> Result<(), TestEnvError> {
        let root = self.dir.path();
        let path = |name: &str| root.join(name).into_os_string();
        let flag = |name: &str, value: OsString| {
            let mut arg = OsString::from(format!("--{name}="));
            arg.push(value);
            arg
        };
        let mut args: Vec<OsString> = vec![
            flag("etcd-servers", self.etcd_url.clone().into()),
            flag("bind-address", "127.0.0.1".into()),
            flag("advertise-address", "127.0.0.1".into()),
            flag("secure-port", self.port.to_string().into()),
            flag("cert-dir", path("certs")),
            flag(
                "service-account-issuer",
                "https://kubernetes.default.svc".into(),
            ),
            flag("service-account-key-file", path("sa.crt")),
            flag("service-account-signing-key-file", path("sa.key")),
            flag("token-auth-file", path("tokens.csv")),
            flag("authorization-mode", "RBAC".into()),
            flag("service-cluster-ip-range", "10.0.0.0/24".into()),
            flag("disable-admission-plugins", "ServiceAccount".into()),
        ];
        if let Some(log) = &self.audit_log {
            args.push(flag("audit-policy-file", path("audit-policy.yaml")));
            args.push(flag("audit-log-path", log.clone().into_os_string()));
        }
        let mut process = Watched::spawn(
            &self.binary,
            &args,
            &self.log_path,
            &format!(
                "kube-apiserver start attempt {attempt} on 127.0.0.1:{}",
                self.port
            ),
        )?;
        self.ca_pem = self.wait_ready(&mut process).await?;
        self.apiserver = Some(process);
        Ok(())
    }

    /// Polls [`READY_PROBES`] as the admin until all answer 200, trusting the serving
    /// certificate the server wrote to `--cert-dir` (re-read whenever it changes, in case it
    /// was read half-written). Returns that certificate bundle.
    async fn wait_ready(&self, process: &mut Watched) -> Result<String, TestEnvError> {
        let started = Instant::now();
        let cert_path = self.dir.path().join("certs/apiserver.crt");
        let mut trusted: Option<(String, reqwest::Client)> = None;
        let mut probes = READY_PROBES.iter().peekable();
        loop {
            if let Some(status) = process.exit_status() {
                return Err(TestEnvError::Exited {
                    component: "kube-apiserver".to_owned(),
                    status: status.to_string(),
                    log_tail: tail(&self.log_path, LOG_TAIL_LINES),
                });
            }
            if let Ok(pem) = std::fs::read_to_string(&cert_path)
                && trusted.as_ref().is_none_or(|(seen, _)| *seen != pem)
                && let Ok(client) = client_trusting(&pem, Duration::from_secs(2))
            {
                trusted = Some((pem, client));
            }
            // Probes pass in order; each is asked until it answers 200, then the next.
            while let (Some((pem, client)), Some(probe)) = (&trusted, probes.peek()) {
                let ok = client
                    .get(format!("{}{probe}", self.url))
                    .bearer_auth(&self.admin_token)
                    .send()
                    .await
                    .is_ok_and(|response| response.status().as_u16() == 200);
                if !ok {
                    break;
                }
                probes.next();
                if probes.peek().is_none() {
                    return Ok(pem.clone());
                }
            }
            if started.elapsed() > APISERVER_READY_DEADLINE {
                return Err(TestEnvError::NotReady {
                    component: "kube-apiserver".to_owned(),
                    url: format!("{}{}", self.url, probes.peek().copied().unwrap_or(&"")),
                    waited_ms: started.elapsed().as_millis(),
                    log_tail: tail(&self.log_path, LOG_TAIL_LINES),
                });
            }
            tokio::time::sleep(APISERVER_POLL).await;
        }
    }

    /// `https://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http://127.0.0.1:PORT` of the etcd behind the API server.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// The serving certificate bundle (PEM: the server certificate and the self-signed CA that
    /// issued it) from `--cert-dir`; trust it to talk to [`KubeApiServer::url`].
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Bearer token of [`KubeUser::Admin`].
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Bearer token of [`KubeUser::Controller`].
    pub fn controller_token(&self) -> &str {
        &self.controller_token
    }

    /// The bearer token of `user`.
    pub fn token(&self, user: KubeUser) -> &str {
        match user {
            KubeUser::Admin => &self.admin_token,
            KubeUser::Controller => &self.controller_token,
        }
    }

    /// The tempdir holding etcd's data, certificates, tokens, kubeconfigs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The admin kubeconfig [`KubeApiServer::kubectl`] uses.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// A reqwest client trusting the serving certificate; no token attached.
    pub fn client(&self) -> Result<reqwest::Client, TestEnvError> {
        client_trusting(&self.ca_pem, Duration::from_secs(30))
    }

    /// The kubeconfig of `user` (cluster with `certificate-authority-data`, user with a token),
    /// as understood by kubectl and kube-rs.
    pub fn kubeconfig(&self, user: KubeUser) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let name = user.name();
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: upkeep-testenv
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: {name}
  user:
    token: {token}
contexts:
- name: {name}@upkeep-testenv
  context:
    cluster: upkeep-testenv
    user: {name}
current-context: {name}@upkeep-testenv
",
            url = self.url,
            token = self.token(user),
        )
    }

    /// Writes [`KubeApiServer::kubeconfig`] of `user` to `path`.
    pub fn write_kubeconfig(&self, path: &Path, user: KubeUser) -> Result<(), TestEnvError> {
        write(path, self.kubeconfig(user).as_bytes())
    }

    /// Runs Debian's `kubectl args…` as the admin and returns its stdout; a failure is an error
    /// carrying stderr.
    ///
    /// `kubectl wait --for=condition=…` on an object that has no `status.conditions` yet (a
    /// CRD read in the instant after its creation) fails at once with "accessor error: <nil>
    /// is of the type <nil>" instead of waiting; that answer is retried for up to 30 s, as
    /// the wait the caller asked for.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, TestEnvError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match self.run_kubectl(&self.admin_kubeconfig, args, None) {
                Err(TestEnvError::Invalid { text, .. })
                    if args.first() == Some(&"wait")
                        && text.contains("is of the type <nil>")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// Applies the CustomResourceDefinitions in `yaml` (one or more documents) and waits until
    /// every CRD the server has is `Established` (up to 60 s): the set-up every test with
    /// custom resources starts with.
    pub fn apply_crds(&self, yaml: &str) -> Result<(), TestEnvError> {
        self.kubectl_stdin(&["apply", "-f", "-"], yaml)?;
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ])?;
        Ok(())
    }

    /// A fresh API server with `crds` (YAML documents, e.g. [`upkeep_crds`] and
    /// [`crate::cluster_api::crd_yaml`]) applied and Established: the one setup every test and
    /// benchmark that needs custom resources starts from.
    pub async fn start_with_crds(crds: &[&str]) -> Result<Self, TestEnvError> {
        let server = Self::start().await?;
        server.apply_crds(&crds.join("\n---\n"))?;
        Ok(server)
    }

    /// Applies the CRD manifests at `path` (a file or a directory such as `deploy/crds`) as a
    /// user would, `kubectl apply -f`, and waits until they are Established; kubectl's
    /// output (`-o name`) is returned.
    pub fn apply_crd_files(&self, path: &Path) -> Result<String, TestEnvError> {
        let path = path.to_string_lossy();
        let applied = self.kubectl(&["apply", "-o", "name", "-f", &path])?;
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "-f",
            &path,
            "--timeout=60s",
        ])?;
        Ok(applied)
    }

    /// Like [`KubeApiServer::kubectl`], with `stdin` fed to kubectl (`apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Result<String, TestEnvError> {
        self.run_kubectl(&self.admin_kubeconfig, args, Some(stdin))
    }

    /// Like [`KubeApiServer::kubectl`], but as `user`, through a kubeconfig written for it
    /// (`<dir>/<user>.kubeconfig`).
    pub fn kubectl_as(&self, user: KubeUser, args: &[&str]) -> Result<String, TestEnvError> {
        let kubeconfig = self.dir.path().join(format!("{}.kubeconfig", user.name()));
        self.write_kubeconfig(&kubeconfig, user)?;
        self.run_kubectl(&kubeconfig, args, None)
    }

    fn run_kubectl(
        &self,
        kubeconfig: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, TestEnvError> {
        let bin = find_kubectl()?;
        let what = || format!("kubectl {}", args.join(" "));
        let mut child = std::process::Command::new(&bin)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"))
            .args(args)
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| TestEnvError::io(format!("running {}", what()), e))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .map_err(|e| TestEnvError::io(format!("writing the stdin of {}", what()), e))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| TestEnvError::io(format!("waiting for {}", what()), e))?;
        if !output.status.success() {
            return Err(TestEnvError::invalid(
                format!("{} ({})", what(), output.status),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The audit log so far, one JSON object per request (`user.username`, `verb`,
    /// `objectRef`, `userAgent`, `responseStatus.code`, …); empty unless started by
    /// [`KubeApiServer::start_audited`]. A line still being written is skipped.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        let Some(path) = &self.audit_log else {
            return Vec::new();
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The last 40 lines of the API server's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path, LOG_TAIL_LINES)
    }

    /// The last 40 lines of etcd's log.
    pub fn etcd_log_tail(&self) -> String {
        tail(&self.etcd_log_path, LOG_TAIL_LINES)
    }

    /// Whether the API server process is running (it is, unless stopped).
    pub fn apiserver_running(&self) -> bool {
        self.apiserver.is_some()
    }

    /// Kills the API server (etcd keeps running) and waits until it is gone: from now on
    /// connections to [`KubeApiServer::url`] are refused.
    pub fn stop_apiserver(&mut self) {
        // Dropping the handle kills the process and reaps it.
        drop(self.apiserver.take());
    }

    /// Starts the API server again (stopping it first if it runs) on the same port, against
    /// the same etcd and with the same serving certificate, and waits until it is ready.
    pub async fn restart_apiserver(&mut self) -> Result<(), TestEnvError> {
        self.stop_apiserver();
        self.launch_apiserver(0).await
    }
}

/// A reqwest client trusting every certificate in `pem` (the API server's bundle holds its
/// leaf and the CA that issued it; only the CA can anchor the chain).
fn client_trusting(pem: &str, timeout: Duration) -> Result<reqwest::Client, TestEnvError> {
    crate::install_crypto_provider();
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| TestEnvError::http("parsing the kube-apiserver serving certificate", e))?;
    if certs.is_empty() {
        return Err(TestEnvError::invalid(
            "kube-apiserver serving certificate (no PEM certificate)",
            pem,
        ));
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .tls_certs_merge(certs)
        .build()
        .map_err(|e| TestEnvError::http("building an HTTP client for kube-apiserver", e))
}

/// upkeep's CRDs (every kind of `upkeep-api`), as one multi-document YAML text.
pub fn upkeep_crds() -> String {
    upkeep_api::crds_yaml()
        .into_iter()
        .map(|(_, yaml)| yaml)
        .collect()
}

#[cfg(test)]
mod tests {
    // Table rows are tuples of (input, expected, reason); naming each tuple type adds nothing.
    #![allow(clippy::type_complexity)]

    use super::*;

    #[test]
    fn cache_root_follows_the_script() {
        let cases: &[(&[(&str, &str)], Option<&str>, &str)] = &[
            (
                &[
                    ("UPKEEP_CACHE_DIR", "/c"),
                    ("XDG_CACHE_HOME", "/x"),
                    ("HOME", "/h"),
                ],
                Some("/c"),
                "UPKEEP_CACHE_DIR wins and is used as is",
            ),
            (
                &[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")],
                Some("/x/upkeep"),
                "XDG_CACHE_HOME next, with upkeep/ below it",
            ),
            (
                &[("HOME", "/h")],
                Some("/h/.cache/upkeep"),
                "HOME/.cache is the XDG default",
            ),
            (
                &[
                    ("UPKEEP_CACHE_DIR", ""),
                    ("XDG_CACHE_HOME", ""),
                    ("HOME", "/h"),
                ],
                Some("/h/.cache/upkeep"),
                "empty values count as unset, like ${X:-…} in bash",
            ),
            (&[], None, "nothing set: no cache to look in"),
        ];
        for (vars, want, why) in cases {
            let got = cache_root(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            });
            assert_eq!(got, want.map(PathBuf::from), "{why}");
        }
    }

    #[test]
    fn locating_the_apiserver() {
        let cache = tempfile::tempdir().unwrap();
        let empty_cache = tempfile::tempdir().unwrap();
        let cached = cache.path().join(CACHE_SUBDIR).join(CACHED_BINARY);
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::write(&cached, b"").unwrap();
        let elsewhere = cache.path().join("elsewhere-kube-apiserver");
        std::fs::write(&elsewhere, b"").unwrap();
        let elsewhere_text = elsewhere.display().to_string();
        let cases: &[(Option<&str>, &Path, Option<&Path>, &str)] = &[
            (
                Some(&elsewhere_text),
                cache.path(),
                Some(&elsewhere),
                "the environment variable comes first",
            ),
            (
                Some("/nonexistent/kube-apiserver"),
                cache.path(),
                Some(&cached),
                "a variable naming no file falls back to the cache",
            ),
            (
                None,
                cache.path(),
                Some(&cached),
                "the cache path of the script",
            ),
            (
                Some(""),
                cache.path(),
                Some(&cached),
                "an empty variable counts as unset",
            ),
            (
                Some("/nonexistent/kube-apiserver"),
                empty_cache.path(),
                None,
                "nothing built: an error naming the script",
            ),
        ];
        for (env, root, want, why) in cases {
            match (locate_apiserver(*env, Some(root)), want) {
                (Ok(got), Some(want)) => assert_eq!(got, *want, "{why}"),
                (Err(e), None) => {
                    assert!(matches!(e, TestEnvError::NotBuilt { .. }), "{why}: {e}");
                    let text = e.to_string();
                    assert!(text.contains(BUILD_SCRIPT), "{why}: {text}");
                    assert!(
                        text.contains("/nonexistent/kube-apiserver"),
                        "{why}: {text}"
                    );
                    assert!(text.contains(&root.display().to_string()), "{why}: {text}");
                    assert!(e.hint().unwrap().contains(BUILD_SCRIPT), "{why}");
                }
                (got, want) => panic!("{why}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b, "two tokens must differ");
    }
}

//! Dev-only test environment: starts the REAL components upkeep's tests talk to on
//! 127.0.0.1 — never mocks of them.
//!
//! Why it is shaped this way:
//! - Each component is a value whose `Drop` stops it, so a test owns exactly what it started
//!   and nothing outlives the test binary (process-backed components — the registry, nginx, sshd,
//!   etcd and kube-apiserver — are additionally watched through a pipe, so even a killed test
//!   process takes them down; see `process.rs`, shared by all of them).
//! - The helper servers written here (the token server, the fault proxy) run on their own thread
//!   with their own Tokio runtime. A component may therefore be shared between `#[tokio::test]`s
//!   (each of which has its own runtime) and keeps working after the runtime that started it
//!   is gone.
//! - Readiness is polled against a deadline, never waited for with fixed sleeps, and start errors
//!   carry the tail of the component's log.
//! - Missing Debian packages are errors that say which package to install, so tests fail with a
//!   fix instead of skipping.

mod alertmanager;
mod background;
mod captured;
mod chart;
mod error;
mod git_server;
mod kube;
mod nginx;
mod pki;
mod pr_standin;
mod process;
mod proxy;
mod push;
mod registry;
mod ssh_server;
mod static_files;
mod token;

/// Cluster API in tests: the `Cluster` CRD fixture and the test provider loop.
pub mod cluster_api;
/// Giant Swarm's cluster Apps in tests: the App and Release CRD fixtures and the chart loop.
pub mod cluster_app;
/// A webhook sink: our own receiver that records POSTed JSON.
pub mod webhook;

pub use alertmanager::Alertmanager;
pub use captured::Captured;
pub use chart::{
    HELM_CHART_LAYER_MEDIA_TYPE, HELM_CONFIG_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, write_layout,
};
pub use error::TestEnvError;
pub use git_server::{GitServer, create_bare_repo, git};
pub use kube::{
    KUBE_ADMIN_USER, KUBE_APISERVER_VERSION, KUBE_CONTROLLER_USER, KubeApiServer, KubeUser,
    upkeep_crds,
};
pub use pr_standin::{ForgeFlavor, InjectedFailure, PrStandIn, StandInPr, StandInPrState};
pub use proxy::{Fault, FaultProxy, LinkStyle, RequestRecord};
pub use registry::{
    NotificationEndpoint, Registry, RegistryKind, RegistryOptions, TEST_PASSWORD, TEST_USER,
    TOKEN_ISSUER, TOKEN_SERVICE,
};
pub use ssh_server::{SshServer, generate_ssh_key};
pub use static_files::StaticServer;

/// Installs rustls' ring crypto provider as the process default (once; a provider installed
/// earlier by anyone else is kept). reqwest is built with `rustls-no-provider`, so every
/// client in tests needs this before it is built.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is exactly what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Standard base64 with padding, as a `kubernetes.io/dockerconfigjson` Secret's data and a
/// Docker `auths` entry hold it; the encoder of the registry's own `config.json`.
#[must_use]
pub fn base64(bytes: &[u8]) -> String {
    use ::base64::Engine as _;
    ::base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every file under `root` as `(path relative to root, bytes)`, directories walked in sorted
/// order: a fixture tree read for a test Git server's `create_repo` or a repository view.
///
/// # Panics
///
/// When the tree cannot be read (a test fixture that is missing is a broken test).
#[must_use]
pub fn read_tree(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_string_lossy();
                out.push((rel.into_owned(), std::fs::read(&p).expect("read file")));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// A reqwest client for tests: trusts the given CA PEM file (if any) in addition to nothing
/// else that matters here, does not follow redirects, and times out after `timeout`.
pub fn http_client(
    ca_pem_path: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, TestEnvError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(5));
    if let Some(path) = ca_pem_path {
        let pem = std::fs::read(path).map_err(|source| TestEnvError::Io {
            what: format!("reading CA file {}", path.display()),
            source,
        })?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|source| TestEnvError::Http {
            what: format!("parsing CA file {}", path.display()),
            source,
        })?;
        builder = builder.tls_certs_merge([cert]);
    }
    builder.build().map_err(|source| TestEnvError::Http {
        what: "building an HTTP client".to_owned(),
        source,
    })
}

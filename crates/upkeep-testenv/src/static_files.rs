//! A static file server: Debian's nginx serving a directory, optionally behind basic auth.
//! Helm HTTP chart repositories are exactly this (an `index.yaml` and `.tgz` files), so their
//! tests talk to a real web server instead of a stand-in.
//!
//! [`StaticServer::start`] serves a directory the caller owns; [`StaticServer::with_files`]
//! writes the given files into a directory of its own (no tempdir bookkeeping in tests).
//! The directory is served as it is on disk at the time of each request, so a test may change
//! files while the server runs. Basic auth uses an htpasswd file made by Debian's `htpasswd -B`
//! (bcrypt; nginx checks it through libxcrypt), so the credentials path is the same one a
//! production nginx would take. Missing files answer 404, directory listings 403.
//! [`StaticServer::with_files_at_rate`] sends bodies slowly (nginx's `limit_rate`), the way a
//! congested or hostile server trickles them.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::nginx::{Nginx, quote_path};
use crate::process::{nginx_basic_auth, write};
use crate::{RequestRecord, TestEnvError};

/// A running static file server; dropping it stops nginx and deletes its configuration and
/// logs (and the directory of [`StaticServer::with_files`]; never a directory passed to
/// [`StaticServer::start`], which the caller owns).
#[derive(Debug)]
pub struct StaticServer {
    nginx: Nginx,
    root: PathBuf,
    credentials: Option<(String, String)>,
}

impl StaticServer {
    /// Serves `root` (an existing directory) at `/` on a free 127.0.0.1 port; with
    /// `basic_auth = Some((user, password))` every request needs those credentials and gets
    /// `401` with `WWW-Authenticate: Basic realm="upkeep-testenv"` otherwise.
    ///
    /// Fails with [`TestEnvError::MissingBinary`] when nginx (or, with auth, `htpasswd`) is not
    /// installed.
    pub async fn start(
        root: &Path,
        basic_auth: Option<(&str, &str)>,
    ) -> Result<Self, TestEnvError> {
        Self::start_in(Nginx::tempdir()?, root, basic_auth, None).await
    }

    /// Writes `files` (relative path → contents; parent directories are created) into a
    /// directory the server owns and serves it as [`StaticServer::start`] does. The directory
    /// is [`StaticServer::root`] and goes away with the server.
    pub async fn with_files(
        files: &[(&str, &[u8])],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<Self, TestEnvError> {
        Self::with_files_at_rate(files, basic_auth, None).await
    }

    /// [`StaticServer::with_files`], with every response body sent at most
    /// `bytes_per_second` fast (nginx's `limit_rate`, from the first byte): a server that
    /// trickles, for testing that clients end slow transfers at their time limits.
    pub async fn with_files_at_rate(
        files: &[(&str, &[u8])],
        basic_auth: Option<(&str, &str)>,
        bytes_per_second: Option<u32>,
    ) -> Result<Self, TestEnvError> {
        let dir = Nginx::tempdir()?;
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root)
            .map_err(|e| TestEnvError::io(format!("creating {}", root.display()), e))?;
        for (relative, contents) in files {
            let path = Path::new(relative);
            let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
            if relative.is_empty() || !plain {
                return Err(TestEnvError::invalid(
                    "served file path (must be relative, without `..`)",
                    *relative,
                ));
            }
            let target = root.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| TestEnvError::io(format!("creating {}", parent.display()), e))?;
            }
            write(&target, contents)?;
        }
        Self::start_in(dir, &root, basic_auth, bytes_per_second).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        root: &Path,
        basic_auth: Option<(&str, &str)>,
        bytes_per_second: Option<u32>,
    ) -> Result<Self, TestEnvError> {
        let root = std::fs::canonicalize(root)
            .map_err(|e| TestEnvError::io(format!("resolving {}", root.display()), e))?;
        if !root.is_dir() {
            return Err(TestEnvError::invalid(
                "static server root (not a directory)",
                root.display().to_string(),
            ));
        }
        let mut auth = nginx_basic_auth(dir.path(), basic_auth, "upkeep-testenv")?;
        if let Some(rate) = bytes_per_second {
            let _ = write!(
                auth,
                "            limit_rate {};\n            limit_rate_after 0;\n",
                rate.max(1)
            );
        }
        let server_body = format!(
            "        root {};\n        location / {{\n            autoindex off;\n{auth}        }}",
            quote_path(&root)?
        );
        let nginx = Nginx::start(dir, &server_body).await?;
        Ok(Self {
            nginx,
            root,
            credentials: basic_auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
        })
    }

    /// The directory served at `/` (canonical path).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        self.nginx.base_url()
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        self.nginx.host()
    }

    /// The user and password required, if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.credentials.clone()
    }

    /// The last 40 lines of nginx's error log (auth failures and missing files are logged
    /// there).
    pub fn log_tail(&self) -> String {
        self.nginx.log_tail()
    }

    /// Every request nginx has answered so far (from its access log), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.nginx.requests()
    }

    /// Like [`StaticServer::requests`], but first waits (polling, up to 5 s) until at least
    /// `count` are logged: nginx writes the log line just after the answer leaves.
    pub async fn wait_for_requests(&self, count: usize) -> Vec<RequestRecord> {
        self.nginx.wait_for_requests(count).await
    }
}

//! A Git smart-HTTP server: Debian's `git http-backend` run by Debian's `fcgiwrap` behind
//! Debian's nginx, optionally with basic auth — the set-up Git's own documentation describes
//! for serving repositories, so upkeep-git's transport talks to the real protocol
//! implementation.
//!
//! Why it is shaped this way:
//! - fcgiwrap listens on a unix socket inside nginx's tempdir and runs under the same watchdog
//!   as every other process here ([`crate::process`]), so nothing outlives the test.
//! - nginx passes `GIT_PROJECT_ROOT`, `GIT_HTTP_EXPORT_ALL` and `REMOTE_USER` to http-backend;
//!   `auth_basic` covers the whole `/git/` location (reads and pushes), as on a private server.
//! - Each bare repository gets `http.receivepack true` (pushes allowed even without auth) and
//!   `receive.denyNonFastForwards true` (the server refuses what a force-push would do).
//! - [`GitServer::start_tls`] serves the same over HTTPS with a certificate from a fresh test
//!   CA, so the client's custom-CA path is tested against nginx's real TLS.
//! - Repositories are prepared with the `git` CLI ([`create_bare_repo`]); that is set-up, not
//!   the code under test.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::nginx::{Nginx, quote_path};
use crate::process::{Watched, check_repo_name, find_binary, nginx_basic_auth, tail, write};
use crate::{RequestRecord, TestEnvError};

const SOCKET_DEADLINE: Duration = Duration::from_secs(10);
const SOCKET_POLL: Duration = Duration::from_millis(10);

/// A running Git smart-HTTP server; dropping it stops nginx and fcgiwrap and deletes the
/// repositories.
#[derive(Debug)]
pub struct GitServer {
    // Dropped first: nginx (owns the tempdir with the repositories) goes after fcgiwrap.
    _fcgiwrap: Watched,
    nginx: Nginx,
    root: PathBuf,
}

/// Runs `git args…` (the CLI) and returns its stdout; errors carry stderr.
pub fn git(args: &[&str], cwd: Option<&Path>) -> Result<String, TestEnvError> {
    let bin = find_binary(
        "UPKEEP_TESTENV_GIT",
        &["/usr/bin/git", "/usr/local/bin/git"],
        "git",
        "git",
    )?;
    let mut command = std::process::Command::new(&bin);
    command
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "upkeep-testenv")
        .env("GIT_AUTHOR_EMAIL", "testenv@upkeep.invalid")
        .env("GIT_COMMITTER_NAME", "upkeep-testenv")
        .env("GIT_COMMITTER_EMAIL", "testenv@upkeep.invalid");
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = command
        .output()
        .map_err(|e| TestEnvError::io(format!("running git {}", args.join(" ")), e))?;
    if !output.status.success() {
        return Err(TestEnvError::invalid(
            format!("git {} ({})", args.join(" "), output.status),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Creates a bare repository at `path` whose branch `main` holds one commit with `files`
/// (relative path → contents), configured for pushes over HTTP and refusing non-fast-forward
/// updates.
pub fn create_bare_repo(path: &Path, files: &[(&str, &[u8])]) -> Result<(), TestEnvError> {
    let path_text = path.to_str().ok_or_else(|| {
        TestEnvError::invalid("repository path (not UTF-8)", path.display().to_string())
    })?;
    git(
        &["init", "--bare", "--initial-branch=main", path_text],
        None,
    )?;
    for (key, value) in [
        ("http.receivepack", "true"),
        ("receive.denyNonFastForwards", "true"),
    ] {
        git(&["--git-dir", path_text, "config", key, value], None)?;
    }
    let work = tempfile::tempdir().map_err(|e| TestEnvError::io("creating a work tree", e))?;
    for (relative, contents) in files {
        let plain = Path::new(relative)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if relative.is_empty() || !plain {
            return Err(TestEnvError::invalid(
                "file path in a test repository",
                *relative,
            ));
        }
        let target = work.path().join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| TestEnvError::io(format!("creating {}", parent.display()), e))?;
        }
        write(&target, contents)?;
    }
    let cwd = Some(work.path());
    git(&["init", "--initial-branch=main"], cwd)?;
    git(&["add", "-A"], cwd)?;
    git(&["commit", "--allow-empty", "-m", "initial commit"], cwd)?;
    git(&["push", path_text, "main:main"], cwd)?;
    Ok(())
}

impl GitServer {
    /// Starts fcgiwrap and nginx serving the (initially empty) repository root at
    /// `/git/<name>.git`; with `basic_auth` every request needs those credentials.
    ///
    /// Fails with [`TestEnvError::MissingBinary`] when nginx, fcgiwrap, git (http-backend) or,
    /// with auth, htpasswd is not installed.
    pub async fn start(basic_auth: Option<(&str, &str)>) -> Result<Self, TestEnvError> {
        Self::start_with(basic_auth, false).await
    }

    /// Like [`GitServer::start`], but over HTTPS only (`https://127.0.0.1:PORT/git/…`), with a
    /// certificate for `127.0.0.1` and `localhost` from a fresh test CA: clients must trust
    /// [`GitServer::ca_pem`].
    pub async fn start_tls(basic_auth: Option<(&str, &str)>) -> Result<Self, TestEnvError> {
        Self::start_with(basic_auth, true).await
    }

    async fn start_with(basic_auth: Option<(&str, &str)>, tls: bool) -> Result<Self, TestEnvError> {
        let fcgiwrap = find_binary(
            "UPKEEP_TESTENV_FCGIWRAP",
            &["/usr/sbin/fcgiwrap", "/usr/bin/fcgiwrap"],
            "fcgiwrap",
            "fcgiwrap",
        )?;
        let backend = find_binary(
            "UPKEEP_TESTENV_GIT_HTTP_BACKEND",
            &[
                "/usr/lib/git-core/git-http-backend",
                "/usr/local/libexec/git-core/git-http-backend",
            ],
            "git",
            "git-http-backend",
        )?;
        let dir = Nginx::tempdir()?;
        let root = dir.path().join("repos");
        std::fs::create_dir_all(&root)
            .map_err(|e| TestEnvError::io(format!("creating {}", root.display()), e))?;
        let socket = dir.path().join("fcgiwrap.sock");
        let log_path = dir.path().join("fcgiwrap.log");
        let args: Vec<OsString> = vec![
            "-c".into(),
            "4".into(),
            "-s".into(),
            format!("unix:{}", socket.display()).into(),
        ];
        let process = Watched::spawn(&fcgiwrap, &args, &log_path, "fcgiwrap")?;
        let started = Instant::now();
        while !socket.exists() {
            if started.elapsed() > SOCKET_DEADLINE {
                return Err(TestEnvError::NotReady {
                    component: "fcgiwrap".to_owned(),
                    url: socket.display().to_string(),
                    waited_ms: started.elapsed().as_millis(),
                    log_tail: tail(&log_path, 40),
                });
            }
            tokio::time::sleep(SOCKET_POLL).await;
        }
        let auth = nginx_basic_auth(dir.path(), basic_auth, "upkeep-testenv-git")?;
        let server_body = format!(
            "        location ~ ^/git(/.*)$ {{
{auth}            client_max_body_size 0;
            fastcgi_pass unix:{socket};
            fastcgi_param SCRIPT_FILENAME {backend};
            fastcgi_param GIT_PROJECT_ROOT {root};
            fastcgi_param GIT_HTTP_EXPORT_ALL \"\";
            fastcgi_param PATH_INFO $1;
            fastcgi_param REMOTE_USER $remote_user;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
        }}",
            socket = quote_path(&socket)?.trim_matches('"'),
            backend = quote_path(&backend)?,
            root = quote_path(&root)?,
        );
        let nginx = if tls {
            Nginx::start_tls(dir, &server_body).await?
        } else {
            Nginx::start(dir, &server_body).await?
        };
        Ok(Self {
            _fcgiwrap: process,
            nginx,
            root,
        })
    }

    /// Creates the bare repository `<name>.git` (see [`create_bare_repo`]) and returns its
    /// URL.
    pub fn create_repo(&self, name: &str, files: &[(&str, &[u8])]) -> Result<String, TestEnvError> {
        check_repo_name(name)?;
        create_bare_repo(&self.bare_path(name), files)?;
        Ok(self.url(name))
    }

    /// `http://127.0.0.1:PORT/git/<name>.git` (`https://…` when started with TLS).
    pub fn url(&self, name: &str) -> String {
        format!("{}/git/{name}.git", self.nginx.base_url())
    }

    /// The CA certificate (PEM) that signed the server's certificate; `None` without TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.nginx.ca_pem()
    }

    /// Where the bare repository `<name>.git` is on disk.
    pub fn bare_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.git"))
    }

    /// Every request nginx has logged so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.nginx.requests()
    }

    /// The last lines of nginx's error log.
    pub fn log_tail(&self) -> String {
        self.nginx.log_tail()
    }
}

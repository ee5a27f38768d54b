//! Debian's nginx as a test component, run as the current user on a free 127.0.0.1 port with
//! everything it writes (pid, error and access logs, temp paths) inside one tempdir.
//!
//! Why it is shaped this way:
//! - Callers supply only the body of the `server { … }` block ([`Nginx::start`]); this module
//!   owns the rest of the configuration, so every nginx-backed component (static files today,
//!   `git http-backend` over FastCGI next) starts, logs and stops the same way.
//! - `master_process off` keeps nginx a single foreground process: the shared watchdog in
//!   [`crate::process`] can then stop it with one `SIGKILL` and no worker is left behind
//!   holding the port. Without a master nothing switches user, so no `user` directive is
//!   needed even when the tests run as root.
//! - `-g 'daemon off;'` keeps it in the foreground under the watchdog; `-e` points the start-up error log into the tempdir too (Debian's compiled-in default is
//!   stderr, which we capture anyway), and all five `*_temp_path`s are set because Debian's
//!   defaults under `/var/lib/nginx` are not writable by an ordinary user.
//! - TLS ([`Nginx::start_tls`]) uses a fresh CA from [`crate::pki`] per server and a
//!   certificate for `127.0.0.1` and `localhost`; the readiness probe trusts exactly that CA,
//!   so a server that came up with a broken TLS set-up fails its start, not the test after it.
//! - The access log uses a fixed three-field format (`status method uri`) so tests can read
//!   what nginx really served as [`RequestRecord`]s.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::pki::TestCa;
use crate::process::{Launch, Watched, find_binary, start_on_free_port, tail, write};
use crate::{RequestRecord, TestEnvError};

/// Answered `204` without auth and without an access-log line, so readiness probes neither
/// need credentials nor show up in [`Nginx::requests`].
const READY_PATH: &str = "/.upkeep-testenv-ready";
const REQUESTS_DEADLINE: Duration = Duration::from_secs(5);
const REQUESTS_POLL: Duration = Duration::from_millis(10);

const NGINX_CANDIDATES: &[&str] = &["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"];

/// `$UPKEEP_TESTENV_NGINX`, else the first of `candidates` that exists; else an error telling
/// to install Debian's `nginx`.
fn find_nginx(candidates: &[&str]) -> Result<PathBuf, TestEnvError> {
    find_binary("UPKEEP_TESTENV_NGINX", candidates, "nginx", "nginx")
}

/// A running nginx; dropping it stops the process and deletes its tempdir.
#[derive(Debug)]
pub(crate) struct Nginx {
    host: String,
    base_url: String,
    /// The CA that signed the server certificate (PEM), when serving TLS.
    ca_pem: Option<String>,
    log_path: PathBuf,
    access_log_path: PathBuf,
    _process: Watched,
    // Dropped last: configuration, logs and whatever the caller put there live here.
    _dir: tempfile::TempDir,
}

/// Quotes a path for nginx's configuration, refusing characters that would need escaping or
/// that nginx would expand (`$` starts a variable in `root`/`alias`).
pub(crate) fn quote_path(path: &Path) -> Result<String, TestEnvError> {
    let text = path.to_str().ok_or_else(|| {
        TestEnvError::invalid("path for nginx (not UTF-8)", path.display().to_string())
    })?;
    if text
        .chars()
        .any(|c| matches!(c, '"' | '\\' | '$' | '{' | '}' | ';') || c.is_control())
    {
        return Err(TestEnvError::invalid(
            "path for nginx (contains a quote, backslash, `$`, brace, `;` or control character)",
            text,
        ));
    }
    Ok(format!("\"{text}\""))
}

impl Nginx {
    /// Creates the tempdir nginx will own; callers put their files (htpasswd, content) in it
    /// before [`Nginx::start`].
    pub(crate) fn tempdir() -> Result<tempfile::TempDir, TestEnvError> {
        crate::process::server_tempdir("upkeep-nginx-", "nginx")
    }

    /// Starts nginx with `server_body` inside its only `server` block (the `listen` line and
    /// the readiness location are added here) and waits until it answers the probe.
    pub(crate) async fn start(
        dir: tempfile::TempDir,
        server_body: &str,
    ) -> Result<Self, TestEnvError> {
        Self::start_with(dir, server_body, false).await
    }

    /// Like [`Nginx::start`], but serving HTTPS only, with a certificate for `127.0.0.1` and
    /// `localhost` issued by a fresh test CA ([`Nginx::ca_pem`]).
    pub(crate) async fn start_tls(
        dir: tempfile::TempDir,
        server_body: &str,
    ) -> Result<Self, TestEnvError> {
        Self::start_with(dir, server_body, true).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        server_body: &str,
        tls: bool,
    ) -> Result<Self, TestEnvError> {
        let binary = find_nginx(NGINX_CANDIDATES)?;
        let root = dir.path().to_path_buf();
        let (mut ca_pem, mut ca_path, mut listen_suffix, mut tls_lines) =
            (None, None, "", String::new());
        if tls {
            let ca = TestCa::new("upkeep testenv nginx CA")?;
            let leaf = ca.issue("127.0.0.1", &["127.0.0.1", "localhost"])?;
            let (ca_file, cert_file, key_file) = (
                root.join("ca.pem"),
                root.join("server.pem"),
                root.join("server-key.pem"),
            );
            write(&ca_file, ca.pem.as_bytes())?;
            write(&cert_file, leaf.cert_pem.as_bytes())?;
            write(&key_file, leaf.key_pem.as_bytes())?;
            tls_lines = format!(
                "        ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.2 TLSv1.3;\n",
                quote_path(&cert_file)?,
                quote_path(&key_file)?
            );
            listen_suffix = " ssl";
            ca_pem = Some(ca.pem);
            ca_path = Some(ca_file);
        }
        let temp = root.join("temp");
        std::fs::create_dir_all(&temp)
            .map_err(|e| TestEnvError::io("creating the nginx temp dir", e))?;
        let log_path = root.join("nginx.log");
        let access_log_path = root.join("access.log");
        let config_path = root.join("nginx.conf");
        let (q_log, q_access, q_pid) = (
            quote_path(&log_path)?,
            quote_path(&access_log_path)?,
            quote_path(&root.join("nginx.pid"))?,
        );
        let mut temp_paths = String::new();
        for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let _ = writeln!(
                temp_paths,
                "    {kind}_temp_path {};",
                quote_path(&temp.join(kind))?
            );
        }
        let client = crate::http_client(ca_path.as_deref(), Duration::from_secs(2))?;
        let launch = Launch {
            component: "nginx",
            log_path: &log_path,
            client: &client,
            scheme: if tls { "https" } else { "http" },
            probe_path: READY_PATH,
            ready: |status| status == 204,
        };
        let started = start_on_free_port(&launch, |host, attempt| {
            let config = format!(
                "# Written by upkeep-testenv for one test; see crates/upkeep-testenv/src/nginx.rs.
master_process off;
pid {q_pid};
error_log {q_log} info;
events {{
    worker_connections 256;
}}
http {{
    log_format upkeep '$status $request_method $request_uri';
    access_log {q_access} upkeep;
{temp_paths}    types {{
        text/yaml yaml yml;
        application/json json;
        text/plain txt;
        application/gzip tgz gz;
    }}
    default_type application/octet-stream;
    server_tokens off;
    server {{
        listen {host}{listen_suffix};
        server_name 127.0.0.1;
{tls_lines}        location = {READY_PATH} {{
            access_log off;
            return 204;
        }}
{server_body}
    }}
}}
"
            );
            write(&config_path, config.as_bytes())?;
            let args: Vec<OsString> = vec![
                "-g".into(),
                "daemon off;".into(),
                "-e".into(),
                log_path.clone().into_os_string(),
                "-p".into(),
                root.clone().into_os_string(),
                "-c".into(),
                config_path.clone().into_os_string(),
            ];
            Watched::spawn(
                &binary,
                &args,
                &log_path,
                &format!("start attempt {attempt} on {host}"),
            )
        })
        .await?;
        Ok(Self {
            host: started.host,
            base_url: started.base_url,
            ca_pem,
            log_path,
            access_log_path,
            _process: started.process,
            _dir: dir,
        })
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The CA certificate (PEM) clients must trust, when serving TLS.
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The last 40 lines of nginx's error log (start-up output included).
    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log_path, 40)
    }

    /// Every request nginx has logged so far, oldest first.
    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        std::fs::read_to_string(&self.access_log_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ' ');
                let status = fields.next()?.parse().ok()?;
                let method = fields.next()?.to_owned();
                let path = fields.next()?.to_owned();
                Some(RequestRecord {
                    method,
                    path,
                    status,
                })
            })
            .collect()
    }

    /// Waits (polling, up to 5 s) until at least `count` requests are logged, then returns
    /// them all. nginx logs a request just after sending its answer, so a client can see the
    /// answer a moment before the log line exists.
    pub(crate) async fn wait_for_requests(&self, count: usize) -> Vec<RequestRecord> {
        let started = Instant::now();
        loop {
            let requests = self.requests();
            if requests.len() >= count || started.elapsed() > REQUESTS_DEADLINE {
                return requests;
            }
            tokio::time::sleep(REQUESTS_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_nginx_says_how_to_install_it() {
        let err = find_nginx(&["/nonexistent/sbin/nginx"]).expect_err("no such binary");
        assert!(
            err.to_string()
                .contains("install nginx (the README test command ./scripts/test does)"),
            "{err}"
        );
        assert!(err.to_string().contains("/nonexistent/sbin/nginx"), "{err}");
    }

    #[test]
    fn quoting_paths() {
        let cases = [
            (
                "/tmp/upkeep-nginx-x/www",
                Some("\"/tmp/upkeep-nginx-x/www\""),
                "plain path",
            ),
            (
                "/tmp/a b",
                Some("\"/tmp/a b\""),
                "spaces are fine inside quotes",
            ),
            ("/tmp/a\"b", None, "a quote would end the string"),
            ("/tmp/$x", None, "`$` starts a variable in root/alias"),
            (
                "/tmp/a;b",
                None,
                "`;` is refused to keep the configuration readable",
            ),
            ("/tmp/a\nb", None, "a newline would split the directive"),
        ];
        for (path, want, reason) in cases {
            let got = quote_path(Path::new(path)).ok();
            assert_eq!(got.as_deref(), want, "{path:?}: {reason}");
        }
    }
}

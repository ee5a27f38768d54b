//! Running a Debian binary as a test component: finding it, starting it on a free 127.0.0.1
//! port, waiting for it to answer, and stopping it. Shared by every process-backed component
//! (the registry, nginx) so they all behave the same way.
//!
//! Why it is shaped this way:
//! - The process runs under a tiny `sh` watchdog that holds our end of a pipe: when the handle
//!   ([`Watched`]) is dropped — or the test process dies — the pipe closes and the watchdog
//!   kills the component's whole process group with `SIGKILL`, so nothing it started outlives
//!   its test binary (fcgiwrap's worker processes used to: ~76 per suite run). Components must
//!   run in the foreground (nginx: `master_process off`).
//! - A free port is chosen by binding port 0 and releasing it, so another process can take it
//!   before the component binds it; [`start_on_free_port`] retries with another port when the
//!   log says "address already in use", and fails with the log tail for anything else.
//! - Readiness is polled against a deadline (never a fixed sleep); a process that exits while
//!   we wait is reported at once with its exit status and log tail.
//! - A missing binary is an error that names the Debian package, so tests fail with a fix.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::TestEnvError;
use crate::background::bind_free;

const READY_DEADLINE: Duration = Duration::from_secs(15);
const READY_POLL: Duration = Duration::from_millis(25);
const START_ATTEMPTS: u32 = 3;

/// The watchdog: starts `$0 "$@"` in a session (and process group) of its own, kills that
/// whole group when stdin (our pipe) reaches EOF — the component *and every process it forked*
/// (fcgiwrap's workers, git http-backend) — and exits with the component's status when the
/// component exits on its own.
const WATCHDOG: &str = r#"exec 3<&0
setsid "$0" "$@" </dev/null 3<&- &
pid=$!
( cat <&3 >/dev/null 2>&1; kill -9 "-$pid" 2>/dev/null; kill -9 "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid""#;

/// A component process under the watchdog; dropping it closes the pipe (which kills the
/// component) and reaps the watchdog. (`kill -9 "-$pid"`: dash's `kill` takes a negative pid
/// for a process group but refuses `--`.)
#[derive(Debug)]
pub(crate) struct Watched(Child);

impl Drop for Watched {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

impl Watched {
    /// Starts `program args…` under the watchdog with stdout and stderr appended to `log_path`
    /// (after a marker line naming `note`).
    pub(crate) fn spawn(
        program: &Path,
        args: &[OsString],
        log_path: &Path,
        note: &str,
    ) -> Result<Self, TestEnvError> {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| TestEnvError::io(format!("opening {}", log_path.display()), e))?;
        let _ = writeln!(log, "--- upkeep-testenv: {note} ---");
        let log_err = log
            .try_clone()
            .map_err(|e| TestEnvError::io("duplicating the log file handle", e))?;
        let child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| TestEnvError::io(format!("starting {}", program.display()), e))?;
        Ok(Self(child))
    }

    pub(crate) fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

/// Looks for a binary: `$env` first, then each candidate path.
pub(crate) fn find_binary(
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

/// A tempdir for one server's files, `prefix`ed so a leftover one says whose it was; `what`
/// names the server in the error.
pub(crate) fn server_tempdir(prefix: &str, what: &str) -> Result<tempfile::TempDir, TestEnvError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| TestEnvError::io(format!("creating the {what} tempdir"), e))
}

/// A port that is free on 127.0.0.1 now (it may be taken again before it is used: callers
/// retry with another one).
pub(crate) fn free_port() -> Result<u16, TestEnvError> {
    Ok(free_addr()?.port())
}

/// An address on 127.0.0.1 whose port is free now; see [`free_port`].
pub(crate) fn free_addr() -> Result<std::net::SocketAddr, TestEnvError> {
    bind_free()?
        .local_addr()
        .map_err(|e| TestEnvError::io("reading a free port", e))
}

/// The nginx lines that ask for basic auth in `realm`, with the htpasswd file written into
/// `dir`; empty without `basic_auth`. The user name must be one htpasswd can hold.
pub(crate) fn nginx_basic_auth(
    dir: &Path,
    basic_auth: Option<(&str, &str)>,
    realm: &str,
) -> Result<String, TestEnvError> {
    let Some((user, password)) = basic_auth else {
        return Ok(String::new());
    };
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
        return Err(TestEnvError::invalid("basic-auth user name", user));
    }
    let htpasswd = dir.join("htpasswd");
    write(&htpasswd, htpasswd_line(user, password)?.as_bytes())?;
    Ok(format!(
        "            auth_basic \"{realm}\";\n            auth_basic_user_file {};\n",
        crate::nginx::quote_path(&htpasswd)?
    ))
}

/// A repository name the test servers accept: ASCII letters, digits and `-`, so it is one
/// path segment in every URL form.
pub(crate) fn check_repo_name(name: &str) -> Result<(), TestEnvError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(TestEnvError::invalid("repository name", name));
    }
    Ok(())
}

/// Writes a file, naming it in the error.
pub(crate) fn write(path: &Path, contents: &[u8]) -> Result<(), TestEnvError> {
    std::fs::write(path, contents)
        .map_err(|e| TestEnvError::io(format!("writing {}", path.display()), e))
}

/// One htpasswd line (`user:$2y$…`, bcrypt) made by Debian's `htpasswd -B`. Both
/// distribution and nginx (through glibc's libxcrypt) accept bcrypt.
pub(crate) fn htpasswd_line(user: &str, password: &str) -> Result<String, TestEnvError> {
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
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// How to start one component and tell that it is ready.
pub(crate) struct Launch<'a> {
    /// Name in errors (`docker-registry`, `nginx`).
    pub(crate) component: &'a str,
    /// Where the process's output (and, ideally, its own log) goes.
    pub(crate) log_path: &'a Path,
    /// Client for the readiness probe (trusting the component's CA, if any).
    pub(crate) client: &'a reqwest::Client,
    /// `http` or `https`.
    pub(crate) scheme: &'a str,
    /// Path probed for readiness, e.g. `/v2/`.
    pub(crate) probe_path: &'a str,
    /// Which probe statuses mean "ready".
    pub(crate) ready: fn(u16) -> bool,
}

/// A component that answered its readiness probe.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) process: Watched,
    /// `127.0.0.1:PORT`.
    pub(crate) host: String,
    /// `scheme://127.0.0.1:PORT`.
    pub(crate) base_url: String,
}

/// Picks a free port, lets `spawn(host, attempt)` write the configuration and start the
/// process, and waits until the probe answers; retries with another port when the port was
/// taken in between.
pub(crate) async fn start_on_free_port(
    launch: &Launch<'_>,
    mut spawn: impl FnMut(&str, u32) -> Result<Watched, TestEnvError>,
) -> Result<Started, TestEnvError> {
    let mut last_error = None;
    for attempt in 1..=START_ATTEMPTS {
        let port = free_port()?;
        let host = format!("127.0.0.1:{port}");
        let mut process = spawn(&host, attempt)?;
        let base_url = format!("{}://{host}", launch.scheme);
        match wait_ready(launch, &base_url, &mut process).await {
            Ok(()) => {
                return Ok(Started {
                    process,
                    host,
                    base_url,
                });
            }
            Err(e @ TestEnvError::Exited { .. })
                if tail(launch.log_path, 5)
                    .to_ascii_lowercase()
                    .contains("address already in use") =>
            {
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        TestEnvError::invalid(format!("{} start", launch.component), "no attempt made")
    }))
}

async fn wait_ready(
    launch: &Launch<'_>,
    base_url: &str,
    process: &mut Watched,
) -> Result<(), TestEnvError> {
    let started = Instant::now();
    let url = format!("{base_url}{}", launch.probe_path);
    loop {
        if let Some(status) = process.exit_status() {
            return Err(TestEnvError::Exited {
                component: launch.component.to_owned(),
                status: status.to_string(),
                log_tail: tail(launch.log_path, 40),
            });
        }
        if let Ok(response) = launch.client.get(&url).send().await
            && (launch.ready)(response.status().as_u16())
        {
            return Ok(());
        }
        if started.elapsed() > READY_DEADLINE {
            return Err(TestEnvError::NotReady {
                component: launch.component.to_owned(),
                url,
                waited_ms: started.elapsed().as_millis(),
                log_tail: tail(launch.log_path, 40),
            });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

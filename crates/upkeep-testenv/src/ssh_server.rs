//! A Git server over SSH: Debian's OpenSSH server (`/usr/sbin/sshd`) on a free 127.0.0.1 port,
//! serving bare repositories from a tempdir to one generated client key — the real thing
//! upkeep-git's ssh transport runs `ssh … git-upload-pack '/path'` against.
//!
//! Why it is shaped this way:
//! - sshd runs in the foreground (`-D -e -f CONFIG`) under the shared watchdog
//!   ([`crate::process`]), logging to stderr, which goes to a log file whose tail is in every
//!   start error. Its configuration, host key, `authorized_keys` and pid file all live in one
//!   tempdir; the system's `/etc/ssh` is never read.
//! - Readiness is "the port answers with an `SSH-2.0-` banner", polled against a deadline;
//!   a start that lost its port to another process ("Address already in use") is retried on
//!   another port, as for the HTTP components.
//! - Keys are made with `ssh-keygen -t ed25519 -N ''` (fast, no passphrase). The known_hosts
//!   file holds the server's host key as `[127.0.0.1]:PORT ssh-ed25519 …`, so clients can keep
//!   strict host-key checking on.
//! - Only public-key authentication (`PasswordAuthentication no`, `UsePAM no`); `StrictModes
//!   no` because the tempdir's modes are not sshd's business here. The login user is the user
//!   running the tests (root in CI); sshd then needs its privilege-separation directory
//!   `/run/sshd`, which is created when missing.

use std::ffi::OsString;
use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::TestEnvError;
use crate::git_server::create_bare_repo;
use crate::process::{
    Watched, check_repo_name, find_binary, free_port, server_tempdir, tail, write,
};

const READY_DEADLINE: Duration = Duration::from_secs(15);
const READY_POLL: Duration = Duration::from_millis(25);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const START_ATTEMPTS: u32 = 3;

/// A running sshd serving Git repositories; dropping it stops sshd and deletes the keys and
/// repositories.
#[derive(Debug)]
pub struct SshServer {
    _process: Watched,
    port: u16,
    user: String,
    client_key: PathBuf,
    known_hosts: PathBuf,
    repos: PathBuf,
    log_path: PathBuf,
    // Dropped last: configuration, keys, log and repositories live here.
    _dir: tempfile::TempDir,
}

/// Generates an ed25519 key pair without passphrase at `path` (private) and `path.pub`.
pub fn generate_ssh_key(path: &Path) -> Result<(), TestEnvError> {
    let keygen = find_binary(
        "UPKEEP_TESTENV_SSH_KEYGEN",
        &["/usr/bin/ssh-keygen", "/usr/local/bin/ssh-keygen"],
        "openssh-client",
        "ssh-keygen",
    )?;
    let output = std::process::Command::new(&keygen)
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "upkeep-testenv",
            "-f",
        ])
        .arg(path)
        .output()
        .map_err(|e| TestEnvError::io(format!("running {}", keygen.display()), e))?;
    if !output.status.success() {
        return Err(TestEnvError::invalid(
            format!("ssh-keygen for {} ({})", path.display(), output.status),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    Ok(())
}

/// The name of the user running the tests (sshd's login user).
fn current_user() -> Result<String, TestEnvError> {
    let output = std::process::Command::new("id")
        .arg("-un")
        .output()
        .map_err(|e| TestEnvError::io("running id -un", e))?;
    let user = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || user.is_empty() {
        return Err(TestEnvError::invalid(
            "output of id -un",
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    Ok(user)
}

/// The first two fields (`type base64`) of a public key file.
fn public_key(path: &Path) -> Result<String, TestEnvError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TestEnvError::io(format!("reading {}", path.display()), e))?;
    let fields: Vec<&str> = text.split_whitespace().take(2).collect();
    if fields.len() != 2 {
        return Err(TestEnvError::invalid("public key file", text));
    }
    Ok(fields.join(" "))
}

/// Whether something on `addr` answers with an SSH banner.
fn answers_ssh(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
        return false;
    };
    if stream.set_read_timeout(Some(PROBE_TIMEOUT)).is_err() {
        return false;
    }
    let mut banner = [0u8; 8];
    stream.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-2.0-")
}

impl SshServer {
    /// Generates the host and client keys and starts sshd on a free port.
    ///
    /// Fails with [`TestEnvError::MissingBinary`] when `sshd` (openssh-server), `ssh-keygen`
    /// (openssh-client) or git is not installed.
    pub fn start() -> Result<Self, TestEnvError> {
        let sshd = find_binary(
            "UPKEEP_TESTENV_SSHD",
            &["/usr/sbin/sshd", "/usr/local/sbin/sshd"],
            "openssh-server",
            "sshd",
        )?;
        let dir = server_tempdir("upkeep-sshd-", "sshd")?;
        let root = dir.path().to_path_buf();
        if root
            .to_str()
            .is_none_or(|s| s.contains(char::is_whitespace))
        {
            return Err(TestEnvError::invalid(
                "sshd tempdir (not UTF-8 or with spaces)",
                root.display().to_string(),
            ));
        }
        let repos = root.join("repos");
        std::fs::create_dir_all(&repos)
            .map_err(|e| TestEnvError::io(format!("creating {}", repos.display()), e))?;
        let (host_key, client_key) = (root.join("host_ed25519"), root.join("client_ed25519"));
        generate_ssh_key(&host_key)?;
        generate_ssh_key(&client_key)?;
        let authorized = root.join("authorized_keys");
        write(
            &authorized,
            format!("{}\n", public_key(&client_key.with_extension("pub"))?).as_bytes(),
        )?;
        let host_public = public_key(&host_key.with_extension("pub"))?;
        let privsep = Path::new("/run/sshd");
        if !privsep.exists() {
            // Only root can (and only root needs to); sshd says so in its log otherwise.
            let _ = std::fs::create_dir_all(privsep);
        }
        let user = current_user()?;
        let log_path = root.join("sshd.log");
        let config_path = root.join("sshd_config");
        let known_hosts = root.join("known_hosts");

        let mut last_error = None;
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            let config = format!(
                "# Written by upkeep-testenv for one test; see crates/upkeep-testenv/src/ssh_server.rs.
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {pid}
AuthorizedKeysFile {authorized}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
UseDNS no
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
LogLevel VERBOSE
MaxStartups 100
",
                host_key = host_key.display(),
                pid = root.join("sshd.pid").display(),
                authorized = authorized.display(),
            );
            write(&config_path, config.as_bytes())?;
            let args: Vec<OsString> = vec![
                "-D".into(),
                "-e".into(),
                "-f".into(),
                config_path.clone().into_os_string(),
            ];
            let mut process = Watched::spawn(
                &sshd,
                &args,
                &log_path,
                &format!("start attempt {attempt} on 127.0.0.1:{port}"),
            )?;
            match wait_ready(&mut process, port, &log_path) {
                Ok(()) => {
                    write(
                        &known_hosts,
                        format!("[127.0.0.1]:{port} {host_public}\n").as_bytes(),
                    )?;
                    return Ok(Self {
                        _process: process,
                        port,
                        user,
                        client_key,
                        known_hosts,
                        repos,
                        log_path,
                        _dir: dir,
                    });
                }
                Err(e @ TestEnvError::Exited { .. })
                    if tail(&log_path, 5)
                        .to_ascii_lowercase()
                        .contains("address already in use") =>
                {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| TestEnvError::invalid("sshd start", "no attempt made")))
    }

    /// Creates the bare repository `<name>.git` (see [`create_bare_repo`]) and returns its
    /// `ssh://` URL.
    pub fn create_repo(&self, name: &str, files: &[(&str, &[u8])]) -> Result<String, TestEnvError> {
        check_repo_name(name)?;
        create_bare_repo(&self.bare_path(name), files)?;
        Ok(self.url(name))
    }

    /// `ssh://USER@127.0.0.1:PORT/ABSOLUTE/PATH/<name>.git`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.bare_path(name).display()
        )
    }

    /// The scp-like form `USER@127.0.0.1:/ABSOLUTE/PATH/<name>.git`. It cannot carry the port:
    /// the client has to add `-p` [`SshServer::port`] itself.
    pub fn scp_url(&self, name: &str) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.bare_path(name).display())
    }

    /// The port sshd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login user (the user running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The private key sshd accepts (no passphrase).
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// A known_hosts file with the server's host key (`[127.0.0.1]:PORT ssh-ed25519 …`).
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// Where the bare repository `<name>.git` is on disk.
    pub fn bare_path(&self, name: &str) -> PathBuf {
        self.repos.join(format!("{name}.git"))
    }

    /// The last lines of sshd's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path, 40)
    }
}

fn wait_ready(process: &mut Watched, port: u16, log_path: &Path) -> Result<(), TestEnvError> {
    let started = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Some(status) = process.exit_status() {
            return Err(TestEnvError::Exited {
                component: "sshd".to_owned(),
                status: status.to_string(),
                log_tail: tail(log_path, 40),
            });
        }
        if answers_ssh(addr) {
            return Ok(());
        }
        if started.elapsed() > READY_DEADLINE {
            return Err(TestEnvError::NotReady {
                component: "sshd".to_owned(),
                url: format!("ssh://{addr}"),
                waited_ms: started.elapsed().as_millis(),
                log_tail: tail(log_path, 40),
            });
        }
        std::thread::sleep(READY_POLL);
    }
}

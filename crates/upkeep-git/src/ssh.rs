//! Git over SSH for libgit2, carried by the system OpenSSH client (`ssh`), so libgit2 needs no
//! libssh2 and SSH behaves exactly as the operator's `ssh` does (its key formats, its
//! known_hosts handling, its algorithms).
//!
//! Why it is shaped this way:
//! - The SSH protocol is *stateful* for git: `git-upload-pack`/`git-receive-pack` run once on
//!   the server and talk over one pipe. The transport is therefore registered with
//!   `rpc = false`: libgit2 asks for a stream for the `…-ls` action, and git2 hands the same
//!   stream back for the following `git-upload-pack`/`git-receive-pack` action, so one `ssh`
//!   process serves the advertisement and the exchange after it.
//! - The command line is fixed and strict: `BatchMode=yes` (never prompt), `IdentitiesOnly=yes`
//!   with the one key file of [`Auth::ssh_key`](crate::Auth::ssh_key), and host keys always
//!   checked (`StrictHostKeyChecking=yes`, or `accept-new` only when asked). Host and user
//!   names starting with `-` are refused and the destination comes after `--`, so a URL can
//!   never turn into an ssh option; the repository path is single-quoted for the remote shell.
//! - ssh's stderr is drained by a thread into a small ring (its last bytes only), so a chatty
//!   server can never block ssh on a full pipe; when stdout ends or a write fails, the exit
//!   status and the last lines of stderr become a precise [`GitError`] (Unauthorized, HostKey,
//!   SshKey, …) stored in the operation's session, as the HTTP transport does.
//! - Nothing can hang for ever: ssh gets `ConnectTimeout` and keep-alives, waiting for its exit
//!   is bounded, and dropping the stream closes ssh's stdin, waits briefly, then kills it.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::GitError;
use crate::auth::SshSettings;
use crate::transport::{Session, current_session};

/// How much of ssh's stderr is kept (the end of it).
const STDERR_KEEP: usize = 16 * 1024;
/// How many of its last lines go into an error.
const STDERR_LINES: usize = 4;
/// How long to wait for ssh to exit once its output ended (or, on drop, its input closed).
const EXIT_WAIT: Duration = Duration::from_secs(10);
const EXIT_POLL: Duration = Duration::from_millis(5);
const CONNECT_TIMEOUT_SECS: u32 = 30;

/// libgit2 transport factory for `ssh://` (and scp-like) remotes.
pub(crate) fn transport(
    remote: &git2::Remote<'_>,
) -> Result<git2::transport::Transport, git2::Error> {
    git2::transport::Transport::smart(remote, false, SshSubtransport)
}

/// Checks an `ssh://` or scp-like remote URL (no password, a sane host, a path).
pub(crate) fn check_url(url: &str) -> Result<(), GitError> {
    Target::parse(url).map(drop)
}

/// Whether `url` (not an absolute path, no `://`) is scp-like `[user@]host:path`: Git's own
/// rule is a `:` with no `/` before it.
pub(crate) fn is_scp_like(url: &str) -> bool {
    match url.find(':') {
        Some(colon) => !url[..colon].contains('/') && colon > 0,
        None => false,
    }
}

/// Where to connect and what to run there.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    /// The repository path as the server's git gets it (not yet quoted).
    path: String,
}

impl Target {
    fn parse(full: &str) -> Result<Self, GitError> {
        let invalid = |shown: &str, reason: &str| GitError::InvalidUrl {
            url: shown.to_owned(),
            reason: reason.to_owned(),
        };
        // What errors may show: the URL without a `user:password@` part.
        let redacted = upkeep_core::redact::redact(full);
        let url = &*redacted;
        let (user, host, port, path) = if let Some(rest) = full.strip_prefix("ssh://") {
            let parsed = url::Url::parse(full).map_err(|e| invalid(url, &e.to_string()))?;
            if parsed.password().is_some() {
                // Do not echo the URL: it holds the password.
                let host = rest.rsplit_once('@').map_or("", |(_, host)| host);
                return Err(invalid(
                    &format!("ssh://…@{}", host.split('/').next().unwrap_or("")),
                    "a password in the URL (SSH uses a key file, see Auth::ssh_key)",
                ));
            }
            let user = match parsed.username() {
                "" => None,
                name => Some(percent_decode(name).ok_or_else(|| invalid(url, "bad user name"))?),
            };
            let host = parsed
                .host_str()
                .ok_or_else(|| invalid(url, "no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let path = percent_decode(parsed.path())
                .ok_or_else(|| invalid(url, "the path is not valid percent-encoded UTF-8"))?;
            // `ssh://host/~user/repo` means a path relative to a home directory, as in Git.
            let path = match path.strip_prefix("/~") {
                Some(home) => format!("~{home}"),
                None => path,
            };
            (user, host, parsed.port(), path)
        } else {
            if !is_scp_like(full) {
                return Err(invalid(url, "neither ssh://… nor scp-like user@host:path"));
            }
            let (left, path) = if let Some(bracketed) = full.strip_prefix('[') {
                // `[::1]:path` — an IPv6 address in scp-like syntax.
                let (host, rest) = bracketed
                    .split_once("]:")
                    .ok_or_else(|| invalid(url, "unclosed `[` in the host"))?;
                (host, rest)
            } else {
                full.split_once(':')
                    .ok_or_else(|| invalid(url, "no `:` before the path"))?
            };
            let (user, host) = match left.rsplit_once('@') {
                Some((user, host)) => (Some(user.to_owned()), host.to_owned()),
                None => (None, left.to_owned()),
            };
            // `user:password@host:path` parses as host `user` with the path
            // `password@host:path`; refuse it without echoing the password.
            let before_slash = path.split('/').next().unwrap_or("");
            if user.is_none() && before_slash.contains('@') && before_slash.contains(':') {
                return Err(invalid(
                    &format!("…@{}", before_slash.rsplit('@').next().unwrap_or("")),
                    "looks like a password in the URL (SSH uses a key file, see Auth::ssh_key)",
                ));
            }
            (user, host, None, path.to_owned())
        };
        for (what, name) in [("host", Some(&host)), ("user name", user.as_ref())] {
            let Some(name) = name else { continue };
            if name.is_empty()
                || name.starts_with('-')
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "'\"\\`$;&|<>".contains(c))
            {
                return Err(invalid(
                    url,
                    &format!("unsafe or empty {what} `{name}` (it must not start with `-`)"),
                ));
            }
        }
        if path.is_empty() || path == "/" {
            return Err(invalid(url, "no repository path"));
        }
        if path.chars().any(char::is_control) {
            return Err(invalid(url, "control character in the path"));
        }
        Ok(Self {
            user,
            host,
            port,
            path,
        })
    }

    /// `host:port` for errors.
    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port.unwrap_or(22))
    }
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8. (Also
/// reads the values of `Upkeep-Change` commit trailers, see `message.rs`.)
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Quotes `text` for a POSIX shell (and csh): single quotes, with `'` and `!` spelled
/// `'\''` and `'\!'` — Git's own quoting for the path it sends over ssh.
fn shell_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' || c == '!' {
            quoted.push_str("'\\");
            quoted.push(c);
            quoted.push('\'');
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// Escapes ssh's `%` tokens in a path given to `-i` or `UserKnownHostsFile`.
fn ssh_path(path: &Path) -> String {
    path.display().to_string().replace('%', "%%")
}

/// The arguments of the `ssh` command line (without the program).
fn ssh_args(
    settings: &SshSettings,
    target: &Target,
    service: &str,
) -> Result<Vec<String>, GitError> {
    let mut args: Vec<String> = Vec::new();
    let mut option = |value: String| {
        args.push("-o".to_owned());
        args.push(value);
    };
    option("BatchMode=yes".to_owned());
    option("IdentitiesOnly=yes".to_owned());
    option(format!(
        "StrictHostKeyChecking={}",
        if settings.accept_new_host_keys {
            "accept-new"
        } else {
            "yes"
        }
    ));
    option(format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"));
    option("ServerAliveInterval=15".to_owned());
    option("ServerAliveCountMax=4".to_owned());
    if let Some(known_hosts) = &settings.known_hosts {
        let text = ssh_path(known_hosts);
        if text.contains('"') {
            return Err(GitError::Ssh {
                server: target.server(),
                message: format!("known_hosts path `{text}` contains a double quote"),
            });
        }
        // Quoted: ssh splits option values at white space.
        option(format!("UserKnownHostsFile=\"{text}\""));
    }
    if let Some(key) = &settings.key {
        args.push("-i".to_owned());
        args.push(ssh_path(key));
    }
    if let Some(port) = target.port {
        args.push("-p".to_owned());
        args.push(port.to_string());
    }
    args.push("--".to_owned());
    args.push(match &target.user {
        Some(user) => format!("{user}@{}", target.host),
        None => target.host.clone(),
    });
    args.push(format!("{service} {}", shell_quote(&target.path)));
    Ok(args)
}

struct SshSubtransport;

impl git2::transport::SmartSubtransport for SshSubtransport {
    fn action(
        &self,
        url: &str,
        action: git2::transport::Service,
    ) -> Result<Box<dyn git2::transport::SmartSubtransportStream>, git2::Error> {
        use git2::transport::Service;
        let session = current_session().ok_or_else(|| {
            git2::Error::from_str("upkeep's SSH transport used outside an upkeep-git operation")
        })?;
        let service = match action {
            Service::UploadPackLs | Service::UploadPack => "git-upload-pack",
            Service::ReceivePackLs | Service::ReceivePack => "git-receive-pack",
        };
        let stream = Target::parse(url)
            .and_then(|target| SshStream::spawn(session.clone(), &target, service))
            .map_err(|e| git2::Error::from_str(&session.fail(e).to_string()))?;
        Ok(Box::new(stream))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// One `ssh … git-upload-pack '/path'` (or receive-pack) process.
struct SshStream {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: StderrTail,
    session: Session,
    server: String,
    host: String,
    port: u16,
    /// Set once ssh has exited and that was judged (so it is judged only once).
    ended: Option<Result<(), String>>,
}

impl SshStream {
    fn spawn(session: Session, target: &Target, service: &str) -> Result<Self, GitError> {
        let settings = &session.ssh;
        if let Some(key) = &settings.key {
            std::fs::File::open(key).map_err(|e| GitError::SshKey {
                path: key.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let args = ssh_args(settings, target, service)?;
        let program = settings.program.clone().unwrap_or_else(|| "ssh".into());
        let mut child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| {
                if source.kind() == io::ErrorKind::NotFound {
                    GitError::SshNotFound {
                        program: program.display().to_string(),
                    }
                } else {
                    GitError::Io {
                        what: format!("starting {}", program.display()),
                        source,
                    }
                }
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(GitError::Ssh {
                server: target.server(),
                message: "ssh started without its pipes".to_owned(),
            });
        };
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout,
            stderr: StderrTail::start(stderr),
            server: target.server(),
            host: target.host.clone(),
            port: target.port.unwrap_or(22),
            session,
            ended: None,
        })
    }

    /// Waits (bounded) for ssh to exit; kills it when it does not.
    fn wait_exit(&mut self) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if started.elapsed() < EXIT_WAIT => std::thread::sleep(EXIT_POLL),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return None;
                }
            }
        }
    }

    /// Called when stdout ended or a pipe failed: `Ok` when ssh exited successfully, else the
    /// error (recorded in the session) made from its exit status and stderr.
    fn conclude(&mut self, pipe_error: Option<&io::Error>) -> io::Result<()> {
        if self.ended.is_none() {
            drop(self.stdin.take());
            let status = self.wait_exit();
            let stderr = self.stderr.finish();
            let failed = pipe_error.is_some() || !status.is_some_and(|s| s.success());
            self.ended = Some(if failed {
                let error = classify(
                    &stderr,
                    status,
                    pipe_error,
                    &self.session.ssh,
                    &self.server,
                    &self.host,
                    self.port,
                );
                Err(self.session.fail(error).to_string())
            } else {
                Ok(())
            });
        }
        match &self.ended {
            Some(Err(message)) => Err(io::Error::other(message.clone())),
            _ => Ok(()),
        }
    }
}

impl Read for SshStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(Err(message)) = &self.ended {
            return Err(io::Error::other(message.clone()));
        }
        match self.stdout.read(buf) {
            Ok(0) => self.conclude(None).map(|()| 0),
            Ok(n) => Ok(n),
            Err(e) => {
                self.conclude(Some(&e))?;
                Err(e)
            }
        }
    }
}

impl Write for SshStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let result = match self.stdin.as_mut() {
            Some(stdin) => stdin.write(data),
            None => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "ssh's input is already closed",
            )),
        };
        match result {
            Ok(n) => Ok(n),
            Err(e) => {
                self.conclude(Some(&e))?;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.stdin.as_mut() {
            Some(stdin) => stdin.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for SshStream {
    fn drop(&mut self) {
        // Closing stdin ends upload-pack/receive-pack on the server, and with them ssh.
        drop(self.stdin.take());
        if self.ended.is_none() {
            let _ = self.wait_exit();
        }
    }
}

/// ssh's stderr, drained by a thread; only the last [`STDERR_KEEP`] bytes are kept.
struct StderrTail {
    buffer: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl StderrTail {
    fn start(mut stderr: std::process::ChildStderr) -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let shared = Arc::clone(&buffer);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                if let Ok(mut kept) = shared.lock() {
                    kept.extend_from_slice(&chunk[..n]);
                    let excess = kept.len().saturating_sub(STDERR_KEEP);
                    kept.drain(..excess);
                }
            }
            let _ = tx.send(());
        });
        Self { buffer, done }
    }

    /// Everything kept so far, after waiting (bounded) for stderr to end.
    fn finish(&self) -> String {
        let _ = self.done.recv_timeout(Duration::from_secs(2));
        let kept = self.buffer.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&kept).into_owned()
    }
}

/// The last meaningful lines of ssh's stderr, trimmed and joined; the notice that accept-new
/// added a host key is left out (it is not the failure).
fn last_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("Warning: Permanently added"))
        .collect();
    lines[lines.len().saturating_sub(STDERR_LINES)..].join("; ")
}

/// Turns a failed ssh run into the most precise [`GitError`].
fn classify(
    stderr: &str,
    status: Option<ExitStatus>,
    pipe_error: Option<&io::Error>,
    settings: &SshSettings,
    server: &str,
    host: &str,
    port: u16,
) -> GitError {
    let mut message = last_lines(stderr);
    if message.is_empty() {
        message = match (status, pipe_error) {
            (Some(status), None) => format!("ssh {status} without a message"),
            (Some(status), Some(e)) => format!("{e} (ssh {status})"),
            (None, Some(e)) => format!("{e} (ssh did not exit and was killed)"),
            (None, None) => "ssh did not exit and was killed".to_owned(),
        };
    }
    let key_path = || {
        settings
            .key
            .as_ref()
            .map_or_else(|| "(ssh's default)".to_owned(), |k| k.display().to_string())
    };
    if stderr.contains("Host key verification failed")
        || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || (stderr.contains("host key is known for") && stderr.contains("strict checking"))
    {
        GitError::HostKey {
            host: host.to_owned(),
            port,
            known_hosts: settings.known_hosts.as_ref().map_or_else(
                || "~/.ssh/known_hosts".to_owned(),
                |path| path.display().to_string(),
            ),
            message,
        }
    } else if stderr.contains("UNPROTECTED PRIVATE KEY FILE")
        || stderr.contains("Load key")
        || stderr.contains("not accessible: No such file")
    {
        GitError::SshKey {
            path: key_path(),
            message,
        }
    } else if stderr.contains("Permission denied (") {
        GitError::Unauthorized {
            server: server.to_owned(),
            detail: message,
        }
    } else {
        GitError::Ssh {
            server: server.to_owned(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: Option<&str>, host: &str, port: Option<u16>, path: &str) -> Target {
        Target {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        }
    }

    #[test]
    fn parsing_remote_urls() {
        let cases = [
            (
                "ssh://git@example.com:2222/srv/git/fleet.git",
                Some(target(
                    Some("git"),
                    "example.com",
                    Some(2222),
                    "/srv/git/fleet.git",
                )),
                "user, port and absolute path",
            ),
            (
                "ssh://example.com/fleet.git",
                Some(target(None, "example.com", None, "/fleet.git")),
                "no user: ssh's default user; no port: 22",
            ),
            (
                "ssh://git@example.com/~git/fleet.git",
                Some(target(Some("git"), "example.com", None, "~git/fleet.git")),
                "`/~` is a path relative to a home directory, as in Git",
            ),
            (
                "ssh://git@[::1]:22/a%20b.git",
                Some(target(Some("git"), "::1", Some(22), "/a b.git")),
                "IPv6 without brackets for ssh; the path is percent-decoded",
            ),
            (
                "git@github.com:acme/fleet.git",
                Some(target(Some("git"), "github.com", None, "acme/fleet.git")),
                "scp-like: the path is relative to the home directory",
            ),
            (
                "git@127.0.0.1:/srv/fleet.git",
                Some(target(Some("git"), "127.0.0.1", None, "/srv/fleet.git")),
                "scp-like with an absolute path",
            ),
            (
                "ssh://-oProxyCommand=touch%20pwned/x.git",
                None,
                "a host starting with `-` would be an ssh option",
            ),
            (
                "-oProxyCommand=x:repo.git",
                None,
                "the same through the scp-like syntax",
            ),
            (
                "ssh://git:secret@example.com/x.git",
                None,
                "a password in an ssh URL",
            ),
            (
                "git:secret@example.com:x.git",
                None,
                "user:password@host in scp-like syntax",
            ),
            ("ssh://git@example.com/", None, "no repository path"),
            ("git@example.com:", None, "no repository path (scp-like)"),
        ];
        for (url, want, reason) in cases {
            let got = Target::parse(url);
            match (&got, &want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{url}: {reason}"),
                (Err(e), None) => {
                    assert!(
                        !e.to_string().contains("secret"),
                        "{url}: {reason}: echoes the password: {e}"
                    );
                }
                _ => panic!("{url}: {reason}: got {got:?}"),
            }
        }
    }

    #[test]
    fn scp_like_detection() {
        let cases = [
            ("git@host:repo.git", true, "user@host:path"),
            (
                "host:repo.git",
                true,
                "host:path without a user is scp-like in Git too",
            ),
            (
                "./dir:x/repo",
                false,
                "a `/` before the `:` makes it a path",
            ),
            ("relative/path", false, "no `:` at all"),
            (":repo", false, "no host"),
        ];
        for (url, want, reason) in cases {
            assert_eq!(is_scp_like(url), want, "{url}: {reason}");
        }
    }

    #[test]
    fn quoting_for_the_remote_shell() {
        let cases = [
            ("/srv/git/fleet.git", "'/srv/git/fleet.git'", "plain path"),
            (
                "/srv/it's.git",
                r"'/srv/it'\''s.git'",
                "an embedded quote is closed, escaped, reopened",
            ),
            (
                "/srv/$(rm -rf ~)`x`;y",
                "'/srv/$(rm -rf ~)`x`;y'",
                "shell syntax stays literal",
            ),
            (
                "/srv/wow!.git",
                r"'/srv/wow'\!'.git'",
                "`!` is escaped for csh, as Git does",
            ),
        ];
        for (path, want, reason) in cases {
            assert_eq!(shell_quote(path), want, "{path}: {reason}");
        }
    }

    #[test]
    fn the_command_line_is_strict() {
        let settings = SshSettings {
            key: Some("/keys/id_ed25519".into()),
            known_hosts: Some("/etc/upkeep/known hosts".into()),
            accept_new_host_keys: false,
            program: None,
        };
        let args = ssh_args(
            &settings,
            &target(Some("git"), "example.com", Some(2222), "/srv/a.git"),
            "git-receive-pack",
        )
        .expect("args");
        let line = args.join(" ");
        for (part, reason) in [
            ("-o BatchMode=yes", "never prompt"),
            ("-o IdentitiesOnly=yes", "only the given key"),
            (
                "-o StrictHostKeyChecking=yes",
                "host keys are always checked",
            ),
            (
                "-o UserKnownHostsFile=\"/etc/upkeep/known hosts\"",
                "quoted: ssh splits values at spaces",
            ),
            ("-i /keys/id_ed25519", "the key file"),
            (
                "-p 2222 -- git@example.com git-receive-pack '/srv/a.git'",
                "port, end of options, destination, quoted command",
            ),
        ] {
            assert!(line.contains(part), "{reason}: `{part}` in `{line}`");
        }
        let accept = SshSettings {
            accept_new_host_keys: true,
            ..SshSettings::default()
        };
        let args = ssh_args(&accept, &target(None, "h", None, "r"), "git-upload-pack")
            .expect("args")
            .join(" ");
        assert!(args.contains("StrictHostKeyChecking=accept-new"), "{args}");
        assert!(!args.contains("-i "), "no key: ssh's defaults: {args}");
    }

    /// ssh's stderr, the expected error, why.
    type Case = (&'static str, fn(&GitError) -> bool, &'static str);

    #[test]
    fn classifying_ssh_failures() {
        let settings = SshSettings {
            key: Some("/k/id".into()),
            known_hosts: Some("/k/known_hosts".into()),
            ..SshSettings::default()
        };
        let cases: [Case; 5] = [
            (
                "git@127.0.0.1: Permission denied (publickey).\n",
                |e| matches!(e, GitError::Unauthorized { detail, .. } if detail.contains("Permission denied (publickey)")),
                "a refused key is Unauthorized and keeps ssh's words",
            ),
            (
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.\n",
                |e| matches!(e, GitError::HostKey { port: 2222, .. }),
                "an unknown host key",
            ),
            (
                "@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n",
                |e| matches!(e, GitError::HostKey { .. }),
                "a changed host key",
            ),
            (
                "Load key \"/k/id\": invalid format\ngit@h: Permission denied (publickey).\n",
                |e| matches!(e, GitError::SshKey { path, .. } if path == "/k/id"),
                "an unreadable key is the key's fault, not the server's",
            ),
            (
                "fatal: '/nope.git' does not appear to be a git repository\n",
                |e| matches!(e, GitError::Ssh { message, .. } if message.contains("/nope.git")),
                "anything else keeps the remote's message",
            ),
        ];
        for (stderr, expected, reason) in cases {
            let error = classify(
                stderr,
                None,
                None,
                &settings,
                "127.0.0.1:2222",
                "127.0.0.1",
                2222,
            );
            assert!(expected(&error), "{reason}: {error:?}");
            assert!(error.hint().is_some(), "{reason}: has a hint");
        }
        let host_key = classify(
            "Host key verification failed.\n",
            None,
            None,
            &settings,
            "127.0.0.1:2222",
            "127.0.0.1",
            2222,
        );
        assert_eq!(
            host_key
                .hint()
                .as_deref()
                .map(|h| h.contains("`ssh-keyscan -p 2222 127.0.0.1 >> /k/known_hosts`")),
            Some(true),
            "the hint spells out the command: {:?}",
            host_key.hint()
        );
    }
}

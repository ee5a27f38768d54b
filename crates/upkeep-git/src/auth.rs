//! What a remote operation may use to reach the server: basic-auth credentials (a password or
//! a token), an extra CA certificate and whether plain `http://` is allowed (HTTP remotes), or
//! a private key file, a known_hosts file and the host-key policy (SSH remotes).
//!
//! Passed per operation rather than stored in the repository so a credential lives only as
//! long as the caller holds it. `Debug` redacts the secret; nothing here is ever formatted into
//! an error. The SSH key is a *path*: upkeep never reads the key itself — the system `ssh`
//! client does — so its contents can never end up in a message.

use std::fmt;
use std::path::{Path, PathBuf};

/// Access settings for one remote operation.
#[derive(Clone, Default)]
pub struct Auth {
    pub(crate) basic: Option<(String, String)>,
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) allow_insecure_http: bool,
    pub(crate) ssh: SshSettings,
}

/// The SSH part of [`Auth`], handed to the `ssh` subtransport.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct SshSettings {
    /// `-i KEY` with `IdentitiesOnly=yes`; `None`: ssh's default identity files.
    pub(crate) key: Option<PathBuf>,
    /// `UserKnownHostsFile`; `None`: ssh's default (`~/.ssh/known_hosts`).
    pub(crate) known_hosts: Option<PathBuf>,
    /// `StrictHostKeyChecking=accept-new` instead of `yes`.
    pub(crate) accept_new_host_keys: bool,
    /// The client to run; `None`: `ssh` from `PATH`.
    pub(crate) program: Option<PathBuf>,
}

impl Auth {
    /// No credentials, system trust roots, `https://` only.
    pub fn none() -> Self {
        Self::default()
    }

    /// Basic auth: a user name and a password or access token.
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            basic: Some((user.into(), password.into())),
            ..Self::default()
        }
    }

    /// SSH with the private key in the file `key` (and only that key: `IdentitiesOnly=yes`).
    /// The key must not need a passphrase: ssh runs with `BatchMode=yes`, never prompting.
    pub fn ssh_key(key: impl Into<PathBuf>) -> Self {
        Self {
            ssh: SshSettings {
                key: Some(key.into()),
                ..SshSettings::default()
            },
            ..Self::default()
        }
    }

    /// Trusts the CA certificate(s) in `pem` in addition to the system roots.
    #[must_use]
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Allows plain `http://` remotes (credentials then travel unencrypted).
    #[must_use]
    pub fn allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Verifies SSH host keys against `known_hosts` instead of the user's
    /// `~/.ssh/known_hosts`. Host keys are always checked (`StrictHostKeyChecking=yes`).
    #[must_use]
    pub fn with_known_hosts(mut self, known_hosts: impl Into<PathBuf>) -> Self {
        self.ssh.known_hosts = Some(known_hosts.into());
        self
    }

    /// Trusts and records the host key of an SSH server not yet in the known_hosts file
    /// (`StrictHostKeyChecking=accept-new`: first contact only — a *changed* key is still
    /// refused).
    #[must_use]
    pub fn accept_new_host_keys(mut self) -> Self {
        self.ssh.accept_new_host_keys = true;
        self
    }

    /// Runs `program` instead of `ssh` from `PATH` (it must take OpenSSH's options).
    #[must_use]
    pub fn with_ssh_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.ssh.program = Some(program.into());
        self
    }

    /// The SSH private key file, if one is set.
    pub fn ssh_key_path(&self) -> Option<&Path> {
        self.ssh.key.as_deref()
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.basic.as_ref().map(|(user, _)| user))
            .field("password", &self.basic.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("ssh_key", &self.ssh.key)
            .field("known_hosts", &self.ssh.known_hosts)
            .field("accept_new_host_keys", &self.ssh.accept_new_host_keys)
            .field("ssh_program", &self.ssh.program)
            .finish()
    }
}

//! What a remote operation may use to reach the server: basic-auth credentials (a password or
//! a token), an extra CA certificate, and whether plain `http://` is allowed.
//!
//! Passed per operation rather than stored in the repository so a credential lives only as
//! long as the caller holds it. `Debug` redacts the secret; nothing here is ever formatted into
//! an error.

use std::fmt;

/// Access settings for one remote operation.
#[derive(Clone, Default)]
pub struct Auth {
    pub(crate) basic: Option<(String, String)>,
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) allow_insecure_http: bool,
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
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.basic.as_ref().map(|(user, _)| user))
            .field("password", &self.basic.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

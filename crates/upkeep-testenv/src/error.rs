//! Errors of the test environment. Stable variant names; messages name what failed and carry
//! the component's log tail where there is one, because a test failure is read once, in CI.

/// Everything that can go wrong while starting or driving a test component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestEnvError {
    /// A binary from a Debian package is not installed.
    #[error(
        "`{binary}` not found (looked at {looked}): install {package} (the README test command ./scripts/test does)"
    )]
    MissingBinary {
        binary: String,
        package: String,
        looked: String,
    },
    /// A component that is built from source (not packaged) has not been built yet.
    #[error("`{binary}` not found (looked at {looked}): build it with {script}")]
    NotBuilt {
        binary: String,
        script: String,
        looked: String,
    },
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Generating test certificates or keys failed.
    #[error("generating test certificates: {0}")]
    Certificate(String),
    /// The component exited before it became ready.
    #[error("{component} exited before it was ready ({status}); log tail:\n{log_tail}")]
    Exited {
        component: String,
        status: String,
        log_tail: String,
    },
    /// The component did not become ready before the deadline.
    #[error("{component} at {url} was not ready within {waited_ms} ms; log tail:\n{log_tail}")]
    NotReady {
        component: String,
        url: String,
        waited_ms: u128,
        log_tail: String,
    },
    /// An HTTP request could not be made or its answer not read.
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// A server answered with an unexpected status.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    /// An argument or an answer was not what it must be.
    #[error("invalid {what}: {text:?}")]
    Invalid { what: String, text: String },
}

impl TestEnvError {
    /// A suggested fix, where one is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::MissingBinary { package, .. } => Some(format!(
                "run ./scripts/test once, or `apt-get install -y {package}`"
            )),
            Self::NotBuilt { script, .. } => Some(format!(
                "run {script} once (about 5 minutes; ./scripts/test does it), or point the environment variable named above at a binary"
            )),
            Self::Exited { .. } | Self::NotReady { .. } => {
                Some("read the log tail above; a port clash is retried, anything else is a setup problem".to_owned())
            }
            Self::Status { status: 401, .. } => {
                Some("check the credentials or the token flow of this registry kind".to_owned())
            }
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn http(what: impl Into<String>, source: reqwest::Error) -> Self {
        Self::Http {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, text: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            text: text.into(),
        }
    }
}

impl From<rcgen::Error> for TestEnvError {
    fn from(e: rcgen::Error) -> Self {
        Self::Certificate(e.to_string())
    }
}

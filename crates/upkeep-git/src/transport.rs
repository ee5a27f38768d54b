//! Git's smart-HTTP protocol for libgit2, carried by reqwest on rustls (ring), so upkeep has
//! exactly one TLS stack and libgit2 needs neither OpenSSL nor libssh2.
//!
//! Why it is shaped this way:
//! - libgit2 asks a *subtransport* for one stream per service request. The `…-ls` services
//!   are a `GET {url}/info/refs?service=…`; `git-upload-pack` and `git-receive-pack` are a
//!   `POST {url}/{service}` whose body libgit2 writes before it reads the answer. The stream
//!   therefore buffers every write and sends the request on the first read (stateless RPC).
//! - Registering a transport with libgit2 is `unsafe` (a global table, not thread-safe, must
//!   happen before any transport use), so it happens exactly once, behind a `Once`, in
//!   [`ensure_registered`] — the only `unsafe` in the crate. The same registration installs
//!   the `ssh` transport of `ssh.rs` (the system OpenSSH client).
//! - Per-operation settings (credentials, CA, insecure http, the SSH key and host-key policy)
//!   reach the stream through a thread-local [`Session`], shared by the HTTP and SSH
//!   transports: libgit2 calls the subtransport on the thread that started the operation, so
//!   concurrent operations on other threads never see each other's secrets. A failure the
//!   stream can name precisely (401, an untrusted certificate, ssh's "Permission denied") is
//!   stored in the session and returned instead of libgit2's generic message.
//! - Each session owns a current-thread Tokio runtime on which the async reqwest client runs
//!   (reqwest's `blocking` feature is not enabled in the workspace; a runtime per session keeps
//!   the client's connection pool alive for all requests of one fetch or push).
//! - Redirects are followed only to the same host and port, never from https to http, and the
//!   credentials are sent only to the remote's own host.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, Once};

use crate::auth::SshSettings;
use crate::{Auth, GitError};

const MAX_REDIRECTS: usize = 5;

/// How rustls' errors begin (its `Display`), for causes whose type is hidden behind a box.
const RUSTLS_WORDING: &[&str] = &[
    "invalid peer certificate",
    "received fatal alert",
    "peer is incompatible",
    "peer misbehaved",
    "no server certificate chain",
];

static REGISTER: Once = Once::new();

/// Registers upkeep's transports with libgit2 — smart HTTP for `http://` and `https://`, and
/// the system `ssh` client for `ssh://` (libgit2 also routes scp-like `user@host:path` remotes
/// to the `ssh` transport) — safe to call any number of times from any thread (only the first
/// call registers).
pub fn ensure_registered() {
    REGISTER.call_once(|| {
        // SAFETY: `git2::transport::register` is unsafe because libgit2's transport table is a
        // global that is not synchronised and must be set before any transport is used. These
        // three calls run exactly once per process (inside `Once::call_once`, which blocks
        // every other caller until it is done), one after the other on one thread, and every
        // upkeep-git operation calls `ensure_registered` before touching a remote.
        #[allow(unsafe_code)]
        let registered = unsafe {
            [
                git2::transport::register("http", http_transport),
                git2::transport::register("https", http_transport),
                git2::transport::register("ssh", crate::ssh::transport),
            ]
        };
        // Registration fails only when the prefix is taken, i.e. someone else registered it
        // first; libgit2 then uses theirs and our operations will say so on use.
        drop(registered);
    });
}

fn http_transport(remote: &git2::Remote<'_>) -> Result<git2::transport::Transport, git2::Error> {
    git2::transport::Transport::smart(remote, true, HttpSubtransport)
}

/// Settings and failure slot of one remote operation on this thread.
#[derive(Clone)]
pub(crate) struct Session {
    client: reqwest::Client,
    runtime: Arc<tokio::runtime::Runtime>,
    basic: Option<(String, String)>,
    allow_insecure_http: bool,
    pub(crate) ssh: SshSettings,
    failure: Arc<Mutex<Option<GitError>>>,
}

impl Session {
    /// Records `error` as the operation's failure (the first one wins) and returns an
    /// `io::Error` with the same message for libgit2.
    pub(crate) fn fail(&self, error: GitError) -> io::Error {
        let message = error.to_string();
        if let Ok(mut slot) = self.failure.lock() {
            slot.get_or_insert(error);
        }
        io::Error::other(message)
    }
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// The session of the upkeep-git operation running on this thread, if any.
pub(crate) fn current_session() -> Option<Session> {
    SESSION.with(|slot| slot.borrow().clone())
}

/// Runs `operation` (a libgit2 call) with `auth` available to the HTTP transport on this
/// thread. When the operation fails and the transport recorded a precise failure, that
/// failure is returned; otherwise `describe` turns the libgit2 error into a [`GitError`].
pub(crate) fn with_session<T>(
    auth: &Auth,
    operation: impl FnOnce() -> Result<T, git2::Error>,
    describe: impl FnOnce(&git2::Error) -> GitError,
) -> Result<T, GitError> {
    ensure_registered();
    let session = new_session(auth)?;
    let failure = Arc::clone(&session.failure);
    let previous = SESSION.with(|slot| slot.replace(Some(session)));
    let result = operation();
    SESSION.with(|slot| {
        // Dropping the session drops its runtime; that is fine here (no async context).
        drop(slot.replace(previous));
    });
    result.map_err(|error| {
        failure
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or_else(|| describe(&error))
    })
}

fn new_session(auth: &Auth) -> Result<Session, GitError> {
    // An error means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        let next = attempt.url();
        let same_host = next.host_str() == first.host_str()
            && next.port_or_known_default() == first.port_or_known_default();
        let downgrade = first.scheme() == "https" && next.scheme() != "https";
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if !same_host || downgrade {
            attempt.error("redirect to another host or to plain http refused")
        } else {
            attempt.follow()
        }
    });
    let mut builder = reqwest::Client::builder()
        .redirect(policy)
        .connect_timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("upkeep-git/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &auth.ca_pem {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| GitError::InvalidCa {
                message: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(GitError::InvalidCa {
                message: "no certificate found".to_owned(),
            });
        }
        builder = builder.tls_certs_merge(certs);
    }
    let client = builder.build().map_err(|e| GitError::Http {
        server: "-".to_owned(),
        message: format!("building the HTTP client: {e}"),
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| GitError::Io {
            what: "starting the HTTP runtime".to_owned(),
            source,
        })?;
    Ok(Session {
        client,
        runtime: Arc::new(runtime),
        basic: auth.basic.clone(),
        allow_insecure_http: auth.allow_insecure_http,
        ssh: auth.ssh.clone(),
        failure: Arc::new(Mutex::new(None)),
    })
}

/// `host:port` of a URL, for errors (never the user info or path).
fn server_of(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "-".to_owned(),
    }
}

/// A failed request as a [`GitError`]: [`GitError::Tls`] when rustls refused the handshake
/// (an untrusted certificate, most often), else [`GitError::Http`]. reqwest's own message is
/// only "error sending request", so the causes are appended (hyper's, then rustls' or the
/// socket's), which is where "invalid peer certificate: UnknownIssuer" is.
fn request_failure(server: String, error: reqwest::Error) -> GitError {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut tls = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&error);
    while let Some(current) = cause {
        let io_inner = current
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref());
        let text = current.to_string();
        // The type when it is reachable; rustls' own wording when a wrapper hides it.
        if current.is::<rustls::Error>()
            || io_inner.is_some_and(<dyn std::error::Error + Send + Sync>::is::<rustls::Error>)
            || RUSTLS_WORDING.iter().any(|w| text.contains(w))
        {
            tls = true;
        }
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = current.source();
    }
    if tls {
        GitError::Tls { server, message }
    } else {
        GitError::Http { server, message }
    }
}

struct HttpSubtransport;

impl git2::transport::SmartSubtransport for HttpSubtransport {
    fn action(
        &self,
        url: &str,
        action: git2::transport::Service,
    ) -> Result<Box<dyn git2::transport::SmartSubtransportStream>, git2::Error> {
        use git2::transport::Service;
        let session = current_session().ok_or_else(|| {
            git2::Error::from_str("upkeep's HTTP transport used outside an upkeep-git operation")
        })?;
        let base = url.trim_end_matches('/');
        let (method, target, service) = match action {
            Service::UploadPackLs => (
                reqwest::Method::GET,
                format!("{base}/info/refs?service=git-upload-pack"),
                "git-upload-pack",
            ),
            Service::ReceivePackLs => (
                reqwest::Method::GET,
                format!("{base}/info/refs?service=git-receive-pack"),
                "git-receive-pack",
            ),
            Service::UploadPack => (
                reqwest::Method::POST,
                format!("{base}/git-upload-pack"),
                "git-upload-pack",
            ),
            Service::ReceivePack => (
                reqwest::Method::POST,
                format!("{base}/git-receive-pack"),
                "git-receive-pack",
            ),
        };
        let target = reqwest::Url::parse(&target)
            .map_err(|e| git2::Error::from_str(&format!("invalid remote URL `{base}`: {e}")))?;
        if target.scheme() == "http" && !session.allow_insecure_http {
            let error = session.fail(GitError::InsecureHttp {
                url: base.to_owned(),
            });
            return Err(git2::Error::from_str(&error.to_string()));
        }
        Ok(Box::new(HttpStream {
            session,
            method,
            url: target,
            service,
            body: Vec::new(),
            response: None,
            pending: Vec::new(),
            finished: false,
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// One request/response of the smart protocol.
struct HttpStream {
    session: Session,
    method: reqwest::Method,
    url: reqwest::Url,
    service: &'static str,
    body: Vec<u8>,
    response: Option<reqwest::Response>,
    /// Bytes received but not yet handed to libgit2 (front first).
    pending: Vec<u8>,
    finished: bool,
}

impl HttpStream {
    fn send(&mut self) -> io::Result<()> {
        let mut request = self
            .session
            .client
            .request(self.method.clone(), self.url.clone());
        if self.method == reqwest::Method::POST {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("application/x-{}-request", self.service),
                )
                .header(
                    reqwest::header::ACCEPT,
                    format!("application/x-{}-result", self.service),
                )
                .body(std::mem::take(&mut self.body));
        }
        if let Some((user, password)) = &self.session.basic {
            request = request.basic_auth(user, Some(password));
        }
        let server = server_of(&self.url);
        let response = self
            .session
            .runtime
            .block_on(request.send())
            .map_err(|e| self.session.fail(request_failure(server.clone(), e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(self.session.fail(GitError::Unauthorized {
                server,
                detail: "HTTP 401".to_owned(),
            }));
        }
        if !status.is_success() {
            let mut shown = self.url.clone();
            shown.set_query(None);
            return Err(self.session.fail(GitError::HttpStatus {
                url: shown.to_string(),
                status: status.as_u16(),
            }));
        }
        let expected = if self.method == reqwest::Method::GET {
            format!("application/x-{}-advertisement", self.service)
        } else {
            format!("application/x-{}-result", self.service)
        };
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if content_type != expected {
            let mut shown = self.url.clone();
            shown.set_query(None);
            return Err(self.session.fail(GitError::NotSmartHttp {
                url: shown.to_string(),
                content_type,
            }));
        }
        self.response = Some(response);
        Ok(())
    }
}

impl Read for HttpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.response.is_none() && !self.finished {
            self.send()?;
        }
        while self.pending.is_empty() && !self.finished {
            let Some(response) = self.response.as_mut() else {
                self.finished = true;
                break;
            };
            let server = server_of(&self.url);
            match self.session.runtime.block_on(response.chunk()) {
                Ok(Some(chunk)) => self.pending.extend_from_slice(&chunk),
                Ok(None) => self.finished = true,
                Err(e) => return Err(self.session.fail(request_failure(server, e))),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

impl Write for HttpStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.response.is_some() {
            return Err(io::Error::other(
                "smart HTTP: write after the response started",
            ));
        }
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

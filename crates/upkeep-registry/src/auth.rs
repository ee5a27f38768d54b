//! Credentials: Docker's `config.json`, credential helpers and HTTP auth challenges.
//!
//! Secrets live only in [`Secret`], whose `Debug` prints `<redacted>` and which has no
//! `Display`, so a secret cannot reach a log line or an error message by accident. Host
//! matching follows the Docker CLI: keys may carry `https://`/`http://` and a path, and the
//! Docker Hub aliases (`docker.io`, `index.docker.io`, `registry-1.docker.io`) are one host.
//! Challenges (`WWW-Authenticate`) are parsed by hand because their values may contain quoted
//! commas (`scope="repository:a:pull,push"`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::error::RegistryError;

/// A secret string. `Debug` is redacted; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is sent to a server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A username and password (or token used as password).
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: Secret,
}

impl BasicAuth {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        BasicAuth {
            username: username.into(),
            password: Secret::new(password),
        }
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Where a source's credentials come from.
#[derive(Clone, Debug, Default)]
pub enum Credentials {
    /// No credentials; bearer challenges are answered anonymously.
    #[default]
    Anonymous,
    /// The same username/password for the source's host.
    Basic(BasicAuth),
    /// Docker's `config.json` (a `kubernetes.io/dockerconfigjson` Secret has the same shape).
    DockerConfig(std::sync::Arc<DockerConfig>),
}

impl Credentials {
    /// Resolves the credentials for `host` (`name[:port]`), running a credential helper if the
    /// Docker config says so. `Ok(None)` means anonymous.
    pub async fn resolve(
        &self,
        host: &str,
        helper_timeout: Duration,
    ) -> Result<Option<BasicAuth>, RegistryError> {
        match self {
            Credentials::Anonymous => Ok(None),
            Credentials::Basic(b) => Ok(Some(b.clone())),
            Credentials::DockerConfig(c) => c.resolve(host, helper_timeout).await,
        }
    }
}

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// A parsed Docker `config.json`.
#[derive(Clone)]
pub struct DockerConfig {
    /// host key as written → credentials
    auths: Vec<(String, BasicAuth)>,
    cred_helpers: Vec<(String, String)>,
    creds_store: Option<String>,
    /// Where to look for `docker-credential-*` first (tests; default: PATH only).
    helper_dir: Option<PathBuf>,
    origin: String,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("origin", &self.origin)
            .field("auths", &self.auths)
            .field("cred_helpers", &self.cred_helpers)
            .field("creds_store", &self.creds_store)
            .finish_non_exhaustive()
    }
}

impl DockerConfig {
    /// Parses `config.json` bytes; `origin` names the file or Secret in errors.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self, RegistryError> {
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|e| RegistryError::Credentials {
                path: origin.to_owned(),
                // Only the category and position: serde_json's message quotes the offending
                // value (`invalid type: string "…"`), which may be a password.
                detail: format!(
                    "not valid Docker config JSON ({} error at line {}, column {})",
                    match e.classify() {
                        serde_json::error::Category::Io => "read",
                        serde_json::error::Category::Syntax => "syntax",
                        serde_json::error::Category::Data => "type",
                        serde_json::error::Category::Eof => "unexpected end",
                    },
                    e.line(),
                    e.column()
                ),
            })?;
        let mut auths = Vec::new();
        for (key, a) in raw.auths {
            let basic = if let (Some(u), Some(p)) = (&a.username, &a.password) {
                Some(BasicAuth::new(u.clone(), p.clone()))
            } else if let Some(auth) = a.auth.as_deref().filter(|s| !s.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| RegistryError::Credentials {
                        path: origin.to_owned(),
                        detail: format!("auths.\"{key}\".auth is not base64 of `user:password`"),
                    })?;
                let (u, p) = decoded
                    .split_once(':')
                    .ok_or_else(|| RegistryError::Credentials {
                        path: origin.to_owned(),
                        detail: format!(
                            "auths.\"{key}\".auth does not decode to `user:password` (no colon)"
                        ),
                    })?;
                Some(BasicAuth::new(u, p))
            } else {
                None
            };
            if let Some(b) = basic {
                auths.push((key, b));
            }
        }
        Ok(DockerConfig {
            auths,
            cred_helpers: raw.cred_helpers.into_iter().collect(),
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
            helper_dir: None,
            origin: origin.to_owned(),
        })
    }

    /// Reads and parses a `config.json` file.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let bytes = std::fs::read(path).map_err(|e| RegistryError::Io {
            path: path.to_owned(),
            detail: format!("cannot read Docker config: {e}"),
        })?;
        Self::from_json(&bytes, &path.display().to_string())
    }

    /// Looks for `docker-credential-*` programs in `dir` before PATH.
    #[must_use]
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// Static `auths` entry for `host`, if any (no helper is run).
    pub fn lookup_auths(&self, host: &str) -> Option<&BasicAuth> {
        if let Some((_, b)) = self.auths.iter().find(|(k, _)| k == host) {
            return Some(b);
        }
        let want = normalize_host(host);
        self.auths
            .iter()
            .find(|(k, _)| normalize_host(k) == want)
            .map(|(_, b)| b)
    }

    /// The helper to run for `host`: `credHelpers[host]`, else `credsStore`.
    pub fn helper_for(&self, host: &str) -> Option<&str> {
        let want = normalize_host(host);
        self.cred_helpers
            .iter()
            .find(|(k, _)| normalize_host(k) == want)
            .map(|(_, h)| h.as_str())
            .or(self.creds_store.as_deref())
    }

    async fn resolve(
        &self,
        host: &str,
        helper_timeout: Duration,
    ) -> Result<Option<BasicAuth>, RegistryError> {
        if let Some(helper) = self.helper_for(host) {
            let server = helper_server_name(host);
            // `None`: the helper has nothing for this host; fall back to `auths`.
            if let Some(b) =
                run_helper(helper, &server, self.helper_dir.as_deref(), helper_timeout).await?
            {
                return Ok(Some(b));
            }
        }
        Ok(self.lookup_auths(host).cloned())
    }
}

const DOCKER_HUB_ALIASES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Reduces a config key or registry host to the form Docker compares: no scheme, no path,
/// Docker Hub aliases folded into `docker.io`.
pub fn normalize_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&k.as_str()) {
        "docker.io".to_owned()
    } else {
        k
    }
}

/// What Docker passes to a helper on stdin for a host.
fn helper_server_name(host: &str) -> String {
    if normalize_host(host) == "docker.io" {
        "https://index.docker.io/v1/".to_owned()
    } else {
        host.to_owned()
    }
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

async fn run_helper(
    helper: &str,
    server: &str,
    dir: Option<&Path>,
    timeout: Duration,
) -> Result<Option<BasicAuth>, RegistryError> {
    let err = |detail: String| RegistryError::CredentialHelper {
        helper: helper.to_owned(),
        server: server.to_owned(),
        detail,
    };
    if helper.is_empty() || helper.contains(['/', '\\']) {
        return Err(err("the helper name must be a plain name".to_owned()));
    }
    let program = format!("docker-credential-{helper}");
    let path = dir
        .map(|d| d.join(&program))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(&program));
    let mut child = match tokio::process::Command::new(&path)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(err(format!("`{program}` not found on PATH")));
        }
        Err(e) => return Err(err(format!("cannot run `{program}`: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is fine; its exit status tells the story.
        let _ = stdin.write_all(server.as_bytes()).await;
        drop(stdin);
    }
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(err(format!("waiting for `{program}` failed: {e}"))),
        Err(_) => {
            return Err(err(format!(
                "`{program}` did not finish within {}s",
                timeout.as_secs()
            )));
        }
    };
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // Helpers print short diagnostics, never the secret itself; keep one line.
        let first = text.lines().next().unwrap_or("").chars().take(200);
        return Err(err(format!(
            "`{program} get` failed ({}): {}",
            out.status,
            first.collect::<String>()
        )));
    }
    let parsed: HelperOutput = serde_json::from_slice(&out.stdout).map_err(|_| {
        err(format!(
            "`{program} get` did not print {{\"Username\": …, \"Secret\": …}}"
        ))
    })?;
    if parsed.username == "<token>" {
        return Err(err(
            "the helper returned an identity token, which upkeep does not support".to_owned(),
        ));
    }
    Ok(Some(BasicAuth::new(parsed.username, parsed.secret)))
}

/// One `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased scheme (`bearer`, `basic`).
    pub scheme: String,
    /// Parameters with lower-cased names.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges (RFC 7235: quoted strings
/// with backslash escapes; several challenges may share one header, separated by commas).
pub fn parse_www_authenticate(value: &str) -> Vec<Challenge> {
    let b = value.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let is_tchar = |c: u8| !matches!(c, b' ' | b'\t' | b',' | b'=' | b'"');
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        // a token: either a new scheme or a parameter name
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        let token = &value[start..i];
        if token.is_empty() {
            i += 1; // stray '=' or '"': skip it
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        let is_param = j < b.len() && b[j] == b'=' && !out.is_empty() && {
            // `token68` (e.g. `Basic abc==`) ends in '='s; a param has a value after '='
            let mut k = j;
            while k < b.len() && b[k] == b'=' {
                k += 1;
            }
            k - j == 1
        };
        if is_param {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let mut val = String::new();
            if i < b.len() && b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = utf8_len(b[i]);
                    val.push_str(&value[i..(i + ch_len).min(b.len())]);
                    i += ch_len;
                }
                i += 1; // closing quote
            } else {
                let s = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' {
                    i += 1;
                }
                val.push_str(&value[s..i]);
            }
            if let Some(last) = out.last_mut() {
                last.params.push((token.to_ascii_lowercase(), val));
            }
        } else if j < b.len() && b[j] == b'=' {
            // a padded token68 credential (`Basic abc==`): not a scheme, skip it
            i = j;
            while i < b.len() && b[i] == b'=' {
                i += 1;
            }
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: Vec::new(),
            });
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_docker_config_errors_never_quote_the_content() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"auths": "s3cr3t-pa55"}"#,
                "type",
                "a value of the wrong type is quoted by serde_json; the error must not be",
            ),
            (
                r#"{"auths": {"r.example": {"password": 123, "username": "s3cr3t-pa55"}}}"#,
                "type",
                "a number where a password string belongs",
            ),
            (
                r#"{"auths": {"s3cr3t-pa55""#,
                "unexpected end",
                "a truncated file",
            ),
        ];
        for (json, category, reason) in cases {
            let err =
                DockerConfig::from_json(json.as_bytes(), "secret ns/creds").expect_err(reason);
            let text = format!("{err} {err:?}");
            assert!(!text.contains("s3cr3t"), "{reason}: {text}");
            assert!(
                text.contains(category) && text.contains("ns/creds"),
                "{reason}: {text}"
            );
        }
    }
}

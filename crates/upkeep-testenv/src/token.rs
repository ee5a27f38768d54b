//! The Docker token server the `Token` registry kind delegates to: `GET /token?service=…&scope=…`
//! with optional basic auth, answering `{"token", "access_token", "expires_in", "issued_at"}`.
//!
//! Tokens are ES256 JWTs whose signing certificate (issued by the registry's test CA) travels in
//! the `x5c` header, which is how CNCF distribution 2.8 verifies them against
//! `auth.token.rootcertbundle`. The real registry does the verifying; this server only signs.
//!
//! Grants: the test user gets every requested action among pull/push/delete/`*`; anonymous
//! callers get `pull` on repositories under `public/` and nothing else; a wrong password is 401.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

use crate::TestEnvError;
use crate::background::{Background, BoxFuture, bind_free, respond};
use crate::pki::Leaf;

/// Seconds a token stays valid.
pub(crate) const TOKEN_LIFETIME_SECS: u64 = 300;

struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    x5c: String,
    issuer: String,
    service: String,
    user: String,
    password: String,
    counter: AtomicU64,
}

/// A running token server.
pub(crate) struct TokenServer {
    server: Background,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("addr", &self.server.addr())
            .finish()
    }
}

impl TokenServer {
    pub(crate) fn start(
        signing: &Leaf,
        issuer: &str,
        service: &str,
        user: &str,
        password: &str,
    ) -> Result<Self, TestEnvError> {
        let rng = SystemRandom::new();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &signing.key_pkcs8, &rng)
                .map_err(|e| {
                    TestEnvError::Certificate(format!("loading the token signing key: {e}"))
                })?;
        let signer = Arc::new(Signer {
            key,
            rng,
            x5c: STANDARD.encode(&signing.cert_der),
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
            counter: AtomicU64::new(0),
        });
        let handler = Arc::new(
            move |req: hyper::Request<hyper::body::Incoming>| -> BoxFuture {
                let signer = signer.clone();
                Box::pin(async move { signer.answer(&req) })
            },
        );
        let server = Background::spawn("token-server", bind_free()?, handler)?;
        Ok(Self { server })
    }

    /// The realm URL the registry points clients to.
    pub(crate) fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr())
    }
}

impl Signer {
    fn answer<B>(
        &self,
        req: &hyper::Request<B>,
    ) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
        if req.uri().path() != "/token" {
            return respond(404, "text/plain", "not found\n");
        }
        let query = parse_query(req.uri().query().unwrap_or(""));
        let account = match req.headers().get(http::header::AUTHORIZATION) {
            None => None,
            Some(value) => match parse_basic(value.to_str().unwrap_or("")) {
                Some((user, pass)) if user == self.user && pass == self.password => Some(user),
                _ => {
                    let mut r = respond(
                        401,
                        "application/json",
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}"#,
                    );
                    r.headers_mut().insert(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Basic realm=\"upkeep-testenv\""),
                    );
                    return r;
                }
            },
        };
        if let Some(service) = query.iter().find(|(k, _)| k == "service").map(|(_, v)| v)
            && service != &self.service
        {
            return respond(
                400,
                "application/json",
                format!(
                    r#"{{"errors":[{{"code":"INVALID","message":"unknown service {service:?}"}}]}}"#
                ),
            );
        }
        let access: Vec<serde_json::Value> = query
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' '))
            .filter_map(|scope| grant(scope, account.is_some()))
            .collect();
        match self.sign(account.as_deref().unwrap_or(""), access) {
            Ok(token) => respond(
                200,
                "application/json",
                json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": TOKEN_LIFETIME_SECS,
                })
                .to_string(),
            ),
            Err(message) => respond(500, "text/plain", message),
        }
    }

    fn sign(&self, subject: &str, access: Vec<serde_json::Value>) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME_SECS,
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": format!("{now:x}-{:x}", self.counter.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|e| format!("signing a token: {e}"))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// Turns one requested scope (`repository:NAME:pull,push`) into a granted access entry.
fn grant(scope: &str, authenticated: bool) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let allowed: Vec<&str> = actions
        .split(',')
        .filter(|a| {
            if authenticated {
                matches!(*a, "pull" | "push" | "delete" | "*")
            } else {
                kind == "repository" && *a == "pull" && name.starts_with("public/")
            }
        })
        .collect();
    Some(json!({"type": kind, "name": name, "actions": allowed}))
}

/// `user:password` from a `Basic …` header value.
pub(crate) fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Decoded `key=value` pairs of a query string, in order (repeated keys kept).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'%' => bytes
                .get(i + 1)
                .copied()
                .and_then(hex)
                .zip(bytes.get(i + 2).copied().and_then(hex))
                .map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (decoded, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_follow_the_documented_policy() {
        let cases: &[(&str, bool, Option<&[&str]>, &str)] = &[
            (
                "repository:charts/app:pull,push",
                true,
                Some(&["pull", "push"]),
                "the test user gets what it asks for",
            ),
            (
                "repository:charts/app:pull,push",
                false,
                Some(&[]),
                "anonymous gets nothing outside public/",
            ),
            (
                "repository:public/app:pull,push",
                false,
                Some(&["pull"]),
                "anonymous may pull public repositories",
            ),
            (
                "registry:catalog:*",
                true,
                Some(&["*"]),
                "the catalog scope is granted to the test user",
            ),
            (
                "garbage",
                true,
                None,
                "a scope without type/name/actions grants nothing",
            ),
        ];
        for (scope, authenticated, want, reason) in cases {
            let got = grant(scope, *authenticated).map(|v| v["actions"].clone());
            let want = want.map(|w| json!(w));
            assert_eq!(got, want, "{scope}: {reason}");
        }
    }

    #[test]
    fn queries_decode_percent_escapes() {
        let cases = [
            (
                "scope=repository%3Aa%2Fb%3Apull&service=s",
                vec![("scope", "repository:a/b:pull"), ("service", "s")],
                "clients escape ':' and '/'",
            ),
            (
                "scope=a&scope=b",
                vec![("scope", "a"), ("scope", "b")],
                "repeated scopes are all kept",
            ),
            (
                "x=%zz",
                vec![("x", "%zz")],
                "a broken escape is kept literally",
            ),
            ("x=100%", vec![("x", "100%")], "a trailing percent is kept"),
        ];
        for (query, want, reason) in cases {
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(parse_query(query), want, "{query}: {reason}");
        }
    }
}

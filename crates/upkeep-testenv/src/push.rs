//! Pushing charts through the distribution API as a client would: HEAD to skip blobs that
//! exist, monolithic upload (POST, then PUT `?digest=`), PUT of the manifest. Auth follows the
//! registry's answer: basic credentials are sent up front where the kind uses them, and a
//! `401` with a `Bearer` challenge fetches a `pull,push` token from the challenge's realm.

use bytes::Bytes;
use reqwest::{Method, StatusCode, Url};

use crate::TestEnvError;
use crate::chart::{ChartArtifact, OCI_MANIFEST_MEDIA_TYPE, sha256_digest};

/// Manifest PUTs in flight at once in `push_tags`.
const TAG_CONCURRENCY: usize = 8;

#[derive(Clone)]
pub(crate) struct Pusher {
    client: reqwest::Client,
    base: Url,
    repo: String,
    credentials: Option<(String, String)>,
    /// The `Authorization` value in use (basic up front, or a bearer token once fetched).
    authorization: Option<String>,
}

impl Pusher {
    pub(crate) fn new(
        client: reqwest::Client,
        base_url: &str,
        repo: &str,
        credentials: Option<(String, String)>,
        basic_up_front: bool,
    ) -> Result<Self, TestEnvError> {
        let valid_repo = !repo.is_empty()
            && repo.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    })
            });
        if !valid_repo {
            return Err(TestEnvError::invalid("repository name", repo));
        }
        let base = Url::parse(&format!("{}/", base_url.trim_end_matches('/')))
            .map_err(|_| TestEnvError::invalid("registry base URL", base_url))?;
        let authorization = match (&credentials, basic_up_front) {
            (Some((user, pass)), true) => Some(basic(user, pass)),
            _ => None,
        };
        Ok(Self {
            client,
            base,
            repo: repo.to_owned(),
            credentials,
            authorization,
        })
    }

    fn url(&self, path: &str) -> Result<Url, TestEnvError> {
        self.base
            .join(&format!("v2/{}/{path}", self.repo))
            .map_err(|_| TestEnvError::invalid("registry path", path))
    }

    async fn send(
        &mut self,
        method: Method,
        url: Url,
        content_type: Option<&str>,
        body: Option<Bytes>,
        what: &str,
    ) -> Result<reqwest::Response, TestEnvError> {
        let mut fetched_token = false;
        loop {
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(value) = &self.authorization {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            if let Some(ct) = content_type {
                request = request.header(reqwest::header::CONTENT_TYPE, ct);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|e| TestEnvError::http(what, e))?;
            if response.status() != StatusCode::UNAUTHORIZED || fetched_token {
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let Some(params) = challenge.strip_prefix("Bearer ") else {
                return Ok(response);
            };
            self.fetch_token(params).await?;
            fetched_token = true;
        }
    }

    async fn fetch_token(&mut self, challenge: &str) -> Result<(), TestEnvError> {
        let params = parse_challenge(challenge);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| TestEnvError::invalid("Bearer challenge without realm", challenge))?;
        let mut url =
            Url::parse(&realm).map_err(|_| TestEnvError::invalid("token realm", realm.clone()))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &format!("repository:{}:pull,push", self.repo));
        }
        let mut request = self.client.get(url);
        if let Some((user, pass)) = &self.credentials {
            request = request.basic_auth(user, Some(pass));
        }
        let response = request
            .send()
            .await
            .map_err(|e| TestEnvError::http("fetching a registry token", e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| TestEnvError::http("reading a registry token", e))?;
        if !status.is_success() {
            return Err(TestEnvError::Status {
                what: "fetching a registry token".to_owned(),
                status: status.as_u16(),
                body,
            });
        }
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|_| TestEnvError::invalid("token response", body.clone()))?;
        let token = json["token"]
            .as_str()
            .or_else(|| json["access_token"].as_str())
            .ok_or_else(|| TestEnvError::invalid("token response without token", body.clone()))?;
        self.authorization = Some(format!("Bearer {token}"));
        Ok(())
    }

    async fn push_blob(&mut self, bytes: &[u8]) -> Result<(), TestEnvError> {
        let digest = sha256_digest(bytes);
        let head = self
            .send(
                Method::HEAD,
                self.url(&format!("blobs/{digest}"))?,
                None,
                None,
                "checking a blob",
            )
            .await?;
        if head.status().is_success() {
            return Ok(());
        }
        let start = self
            .send(
                Method::POST,
                self.url("blobs/uploads/")?,
                None,
                None,
                "starting a blob upload",
            )
            .await?;
        let location = expect(start, StatusCode::ACCEPTED, "starting a blob upload")
            .await?
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| TestEnvError::invalid("upload answer without Location", ""))?;
        let mut url = self
            .base
            .join(&location)
            .map_err(|_| TestEnvError::invalid("upload Location", location.clone()))?;
        url.query_pairs_mut().append_pair("digest", &digest);
        let put = self
            .send(
                Method::PUT,
                url,
                Some("application/octet-stream"),
                Some(Bytes::copy_from_slice(bytes)),
                "uploading a blob",
            )
            .await?;
        expect(put, StatusCode::CREATED, "uploading a blob").await?;
        Ok(())
    }

    async fn put_manifest(&mut self, tag: &str, manifest: Bytes) -> Result<(), TestEnvError> {
        let what = format!("putting the manifest for tag {tag}");
        let response = self
            .send(
                Method::PUT,
                self.url(&format!("manifests/{tag}"))?,
                Some(OCI_MANIFEST_MEDIA_TYPE),
                Some(manifest),
                &what,
            )
            .await?;
        expect(response, StatusCode::CREATED, &what).await?;
        Ok(())
    }

    /// Pushes the artifact's blobs and its manifest under `tag`; returns the manifest digest.
    pub(crate) async fn push(
        &mut self,
        artifact: &ChartArtifact,
        tag: &str,
    ) -> Result<String, TestEnvError> {
        self.push_blob(&artifact.config).await?;
        self.push_blob(&artifact.layer).await?;
        self.put_manifest(tag, Bytes::copy_from_slice(&artifact.manifest))
            .await?;
        Ok(sha256_digest(&artifact.manifest))
    }

    /// PUTs the same manifest under every tag, `TAG_CONCURRENCY` at a time.
    pub(crate) async fn tag_all(
        &mut self,
        manifest: &[u8],
        tags: &[String],
    ) -> Result<(), TestEnvError> {
        let manifest = Bytes::copy_from_slice(manifest);
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = tags.iter();
        loop {
            while tasks.len() < TAG_CONCURRENCY {
                let Some(tag) = next.next() else { break };
                let mut pusher = self.clone();
                let (tag, manifest) = (tag.clone(), manifest.clone());
                tasks.spawn(async move { pusher.put_manifest(&tag, manifest).await });
            }
            match tasks.join_next().await {
                None => return Ok(()),
                Some(Ok(result)) => result?,
                Some(Err(e)) => return Err(TestEnvError::invalid("tagging task", e.to_string())),
            }
        }
    }
}

async fn expect(
    response: reqwest::Response,
    want: StatusCode,
    what: &str,
) -> Result<reqwest::Response, TestEnvError> {
    if response.status() == want {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Err(TestEnvError::Status {
        what: what.to_owned(),
        status,
        body,
    })
}

pub(crate) fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// `key="value"` pairs of a `WWW-Authenticate` challenge (after the scheme).
pub(crate) fn parse_challenge(params: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (
                quoted[..end].to_owned(),
                quoted.get(end + 1..).unwrap_or(""),
            )
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_like_distribution_writes_them() {
        let cases = [
            (
                r#"realm="http://127.0.0.1:1/token",service="svc",scope="repository:a/b:pull,push""#,
                vec![
                    ("realm", "http://127.0.0.1:1/token"),
                    ("service", "svc"),
                    ("scope", "repository:a/b:pull,push"),
                ],
                "distribution's exact format, with a comma inside the quoted scope",
            ),
            (
                r#"realm=https://x/t, service=svc"#,
                vec![("realm", "https://x/t"), ("service", "svc")],
                "unquoted values and spaces after commas",
            ),
            ("", vec![], "an empty challenge has no parameters"),
        ];
        for (input, want, reason) in cases {
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(parse_challenge(input), want, "{input}: {reason}");
        }
    }
}

//! Helm HTTP repositories. A Helm repository is only static files (`index.yaml`), and the
//! test environment has no static file server, so these tests use a minimal stand-in HTTP/1.1
//! server written here that serves one `index.yaml`, optionally behind basic auth. It
//! implements only what a chart repository does: GET of a file, 401 with a `Basic` challenge.

// Table rows are tuples of (input, expected, reason); naming each tuple type adds nothing.
#![allow(clippy::type_complexity)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use upkeep_registry::{
    BasicAuth, Client, ClientConfig, Credentials, RegistryError, SizeLimits, Source, SourceOptions,
};

const LIMIT: Duration = Duration::from_secs(60);

struct StandIn {
    base: String,
    hits: Arc<AtomicUsize>,
}

/// Serves `body` at `/charts/index.yaml`; with `auth`, requires that `Authorization` value.
async fn serve(body: String, auth: Option<String>) -> StandIn {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            let auth = auth.clone();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                let authorized = auth.as_ref().is_none_or(|want| {
                    text.lines().any(|l| {
                        l.to_ascii_lowercase().starts_with("authorization:")
                            && l[14..].trim() == want
                    })
                });
                let (status, extra, payload) = if !authorized {
                    (
                        "401 Unauthorized",
                        "WWW-Authenticate: Basic realm=\"charts\"\r\n",
                        String::new(),
                    )
                } else if path == "/charts/index.yaml" {
                    ("200 OK", "", body.to_string())
                } else {
                    ("404 Not Found", "", String::new())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(payload.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    StandIn { base, hits }
}

fn index() -> String {
    let mut y = String::from("apiVersion: v1\nentries:\n");
    for chart in ["alpha", "app", "zeta"] {
        let _ = writeln!(y, "  {chart}:");
        for v in ["1.0.0", "1.1.0", "2.0.0-rc.1"] {
            let _ = writeln!(
                y,
                "  - name: {chart}\n    version: {v}\n    created: \"2024-03-0{}T10:00:00.123456789+02:00\"\n    urls: [https://example.invalid/{chart}-{v}.tgz]",
                v.len() % 9
            );
        }
    }
    y.push_str("  app-sig:\n  - version: 9.9.9\n");
    y
}

fn opts() -> SourceOptions {
    SourceOptions {
        insecure: true,
        request_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(20),
        ..SourceOptions::default()
    }
}

fn client() -> Client {
    Client::new(ClientConfig {
        backoff_base: Duration::from_millis(5),
        ..ClientConfig::default()
    })
}

#[tokio::test]
async fn helm_repository_lists_one_chart() {
    tokio::time::timeout(LIMIT, async {
        let server = serve(index(), None).await;
        let src = Source::new(
            &client(),
            &format!("{}/charts/", server.base),
            Some("app"),
            opts(),
            &Credentials::Anonymous,
        )
        .expect("source");
        let list = src.list_tags().await.expect("lists");
        let got: Vec<(&str, String)> = list
            .tags
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.created.map(|c| c.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("1.0.0", "2024-03-05T08:00:00.123456789Z".to_owned()),
                ("1.1.0", "2024-03-05T08:00:00.123456789Z".to_owned()),
                ("2.0.0-rc.1", "2024-03-01T08:00:00.123456789Z".to_owned()),
            ],
            "only `app`, with created times converted to UTC"
        );
        assert_eq!(src.key(), format!("{}/charts#app", server.base));

        let cases: &[(&str, &str, fn(&RegistryError) -> bool, &str)] = &[
            (
                "/charts",
                "nope",
                |e| matches!(e, RegistryError::NotFound { detail, .. } if detail.contains("nope")),
                "chart not in the index",
            ),
            (
                "/elsewhere",
                "app",
                |e| matches!(e, RegistryError::NotFound { .. }),
                "no index.yaml there",
            ),
        ];
        for (path, chart, check, why) in cases {
            let src = Source::new(
                &client(),
                &format!("{}{path}", server.base),
                Some(chart),
                opts(),
                &Credentials::Anonymous,
            )
            .expect("source");
            let err = src.list_tags().await.expect_err(why);
            assert!(check(&err), "{why}: {err:?}");
        }

        let small = SourceOptions {
            limits: SizeLimits {
                index: 100,
                ..SizeLimits::default()
            },
            ..opts()
        };
        let src = Source::new(
            &client(),
            &format!("{}/charts", server.base),
            Some("app"),
            small,
            &Credentials::Anonymous,
        )
        .expect("source");
        let err = src.list_tags().await.expect_err("index over the cap");
        assert!(
            matches!(err, RegistryError::TooLarge { limit: 100, .. }),
            "{err:?}"
        );
    })
    .await
    .expect("test finished within its time limit");
}

#[tokio::test]
async fn helm_repository_basic_auth_challenge() {
    tokio::time::timeout(LIMIT, async {
        let secret = "helm-p4ss";
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("chartuser:{secret}"))
        );
        let server = serve(index(), Some(want)).await;
        let url = format!("{}/charts", server.base);
        let ok = Source::new(
            &client(),
            &url,
            Some("app"),
            opts(),
            &Credentials::Basic(BasicAuth::new("chartuser", secret)),
        )
        .expect("source")
        .list_tags()
        .await
        .expect("basic auth after the challenge");
        assert_eq!(ok.tags.len(), 3);
        let hits_before = server.hits.load(Ordering::SeqCst);
        assert!(hits_before >= 2, "challenge then authorized request");

        let wrong = Credentials::Basic(BasicAuth::new("chartuser", "wrong-s3cret"));
        let err = Source::new(&client(), &url, Some("app"), opts(), &wrong)
            .expect("source")
            .list_tags()
            .await
            .expect_err("wrong password");
        assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
        for text in [
            err.to_string(),
            format!("{err:?}"),
            err.hint().unwrap_or_default(),
        ] {
            assert!(
                !text.contains("wrong-s3cret") && !text.contains(secret),
                "leak: {text}"
            );
        }
        let anon = Source::new(
            &client(),
            &url,
            Some("app"),
            opts(),
            &Credentials::Anonymous,
        )
        .expect("source")
        .list_tags()
        .await
        .expect_err("anonymous");
        assert!(
            matches!(anon, RegistryError::Unauthorized { .. }),
            "{anon:?}"
        );
    })
    .await
    .expect("test finished within its time limit");
}

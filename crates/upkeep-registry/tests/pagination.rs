//! Tag-list pagination against registries that really paginate.
//!
//! Debian's `docker-registry` (distribution 2.8) ignores `n` and `last` and always returns
//! every tag, so the paginating behaviours of newer registries (distribution 3, GHCR, Harbor,
//! Quay…) cannot be produced by the real server. This file uses a minimal stand-in that
//! implements only `GET /v2/<name>/tags/list` with `n`/`last` over a sorted tag list, in the
//! variants registries actually ship: relative `Link`, absolute `Link`, no `Link` at all,
//! a hard page cap, a `Link` to another host.

// Table rows are tuples of (input, expected, reason); naming each tuple type adds nothing.
#![allow(clippy::type_complexity)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use upkeep_registry::{Client, ClientConfig, Credentials, RegistryError, Source, SourceOptions};

#[derive(Clone, Copy, Debug)]
enum Mode {
    RelativeLink,
    AbsoluteLink,
    NoLink,
    Cap(usize),
    ForeignLink,
}

async fn serve(tags: Arc<Vec<String>>, mode: Mode, hits: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    let me = host.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tags = tags.clone();
            let me = me.clone();
            hits.fetch_add(1, Ordering::SeqCst);
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
                let target = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                let url = url::Url::parse(&format!("http://x{target}")).expect("request target");
                let q = |k: &str| {
                    url.query_pairs()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.to_string())
                };
                let mut n = q("n").and_then(|n| n.parse::<usize>().ok()).unwrap_or(100);
                if let Mode::Cap(c) = mode {
                    n = n.min(c);
                }
                let start =
                    q("last").map_or(0, |l| tags.partition_point(|t| t.as_str() <= l.as_str()));
                let page: Vec<&String> = tags.iter().skip(start).take(n).collect();
                let more = start + page.len() < tags.len();
                let body = serde_json::json!({"name": "p/app", "tags": page}).to_string();
                let next = format!(
                    "/v2/p/app/tags/list?n={n}&last={}",
                    page.last().map_or("", |s| s.as_str())
                );
                let link = match mode {
                    _ if !more => String::new(),
                    Mode::NoLink => String::new(),
                    Mode::RelativeLink | Mode::Cap(_) => {
                        format!("Link: <{next}>; rel=\"next\"\r\n")
                    }
                    Mode::AbsoluteLink => format!("Link: <http://{me}{next}>; rel=\"next\"\r\n"),
                    Mode::ForeignLink => {
                        format!("Link: <http://elsewhere.invalid{next}>; rel=\"next\"\r\n")
                    }
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{link}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    host
}

#[tokio::test]
async fn paginating_registries_list_everything() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut tags: Vec<String> = (0..2345)
            .map(|i| format!("1.{}.{}", i / 100, i % 100))
            .collect();
        tags.sort();
        let tags = Arc::new(tags);
        let client = Client::new(ClientConfig::default());
        let cases: &[(Mode, Option<u32>, Result<usize, &str>, &str)] = &[
            (
                Mode::RelativeLink,
                Some(100),
                Ok(24),
                "relative Link (distribution 3)",
            ),
            (
                Mode::AbsoluteLink,
                Some(1000),
                Ok(3),
                "absolute Link on the same host",
            ),
            (
                Mode::NoLink,
                Some(500),
                Ok(5),
                "no Link: full pages continue with last=, the short page ends it",
            ),
            (
                Mode::NoLink,
                Some(469),
                Ok(6),
                "no Link and the total a multiple of n: an empty page ends it",
            ),
            (
                Mode::Cap(50),
                Some(1000),
                Ok(47),
                "registry caps n at 50 but sends Link",
            ),
            (
                Mode::Cap(50),
                None,
                Ok(47),
                "no n asked: the registry's default page size and Link",
            ),
            (
                Mode::ForeignLink,
                Some(100),
                Err("another host"),
                "a Link to another host is refused",
            ),
        ];
        for (mode, page_size, want, why) in cases {
            let hits = Arc::new(AtomicUsize::new(0));
            let host = serve(tags.clone(), *mode, hits.clone()).await;
            let opts = SourceOptions {
                insecure: true,
                page_size: *page_size,
                ..SourceOptions::default()
            };
            let src = Source::new(
                &client,
                &format!("oci://{host}/p/app"),
                None,
                opts,
                &Credentials::Anonymous,
            )
            .expect("source");
            let r = src.list_tags().await;
            match (r, want) {
                (Ok(list), Ok(pages)) => {
                    let got: Vec<&str> = list.names().collect();
                    assert!(
                        got.iter().copied().eq(tags.iter().map(String::as_str)),
                        "{why}: all tags in order"
                    );
                    assert_eq!(list.pages, *pages, "{why}: pages");
                    assert_eq!(
                        hits.load(Ordering::SeqCst),
                        *pages,
                        "{why}: one request per page"
                    );
                }
                (Err(e), Err(w)) => {
                    assert!(
                        matches!(e, RegistryError::InvalidResponse { .. }),
                        "{why}: {e:?}"
                    );
                    assert!(e.to_string().contains(w), "{why}: {e}");
                }
                (r, _) => panic!("{why}: unexpected {r:?}"),
            }
        }
    })
    .await
    .expect("test finished within its time limit");
}

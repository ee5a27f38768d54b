//! Helm HTTP repositories against a real web server: Debian's nginx, started by
//! `upkeep-testenv` (`StaticServer`) on 127.0.0.1, serving `index.yaml` files written into its
//! own directory, optionally behind basic auth (an htpasswd file checked by nginx). A Helm repository
//! is only static files, so this is the same server shape as a production chart repository;
//! nothing here is a stand-in.

// Table rows are tuples of (input, expected, reason); naming each tuple type adds nothing.
#![allow(clippy::type_complexity)]

use std::fmt::Write as _;
use std::time::Duration;

use upkeep_registry::{
    BasicAuth, Client, ClientConfig, Credentials, RegistryError, SizeLimits, Source, SourceOptions,
};
use upkeep_testenv::StaticServer;

const LIMIT: Duration = Duration::from_secs(60);

/// Serves `body` at `/charts/index.yaml` through nginx; with `auth`, behind basic auth.
async fn serve(body: &str, auth: Option<(&str, &str)>) -> StaticServer {
    StaticServer::with_files(&[("charts/index.yaml", body.as_bytes())], auth)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "starting nginx: {e}{}",
                e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default()
            )
        })
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
        let served = serve(&index(), None).await;
        let base = served.base_url();
        let src = Source::new(
            &client(),
            &format!("{base}/charts/"),
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
        assert_eq!(src.key(), format!("{base}/charts#app"));

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
                &format!("{base}{path}"),
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
            &format!("{base}/charts"),
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
        let served = serve(&index(), Some(("chartuser", secret))).await;
        let url = format!("{}/charts", served.base_url());
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
        let seen: Vec<(u16, String)> = served
            .wait_for_requests(2)
            .await
            .into_iter()
            .map(|r| (r.status, r.path))
            .collect();
        assert!(
            seen.len() >= 2,
            "challenge then authorized request: {seen:?}\n{}",
            served.log_tail()
        );
        assert_eq!(
            seen.first(),
            Some(&(401, "/charts/index.yaml".to_owned())),
            "the first request is challenged"
        );
        assert_eq!(
            seen.last(),
            Some(&(200, "/charts/index.yaml".to_owned())),
            "the answer to the challenge is served"
        );

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

/// An index where `app` has `versions` versions and `other` carries `tail` as a value.
fn index_with(versions: usize, tail: &str) -> String {
    let mut y = String::from("apiVersion: v1\nentries:\n  app:\n");
    for v in 0..versions {
        let _ = writeln!(
            y,
            "  - version: 1.0.{v}\n    urls: [https://example.invalid/app-1.0.{v}.tgz]"
        );
    }
    let _ = writeln!(y, "  other:\n  - version: 9.9.9\n    x: {tail}");
    y
}

#[tokio::test]
async fn helm_index_caps_hold_against_a_real_server() {
    tokio::time::timeout(LIMIT, async {
        let secret = "caps-p4ss";
        // (index.yaml, max versions, expected, reason)
        let deep = format!("{}{}", "[".repeat(160_000), "]".repeat(160_000));
        let cases: Vec<(String, usize, fn(&Result<usize, RegistryError>, &str) -> bool, &str)> = vec![
            (
                index_with(5, "1"),
                5,
                |r, _| matches!(r, Ok(5)),
                "exactly the version cap is listed",
            ),
            (
                index_with(5, "1"),
                4,
                |r, url| matches!(r, Err(e @ RegistryError::TooLarge { limit: 4, .. })
                    if e.to_string().contains(url)
                        && e.to_string().contains("4 versions")
                        && e.hint().is_some()),
                "one over the cap (the OCI tag cap, max_tags) names the URL and the cap, with a hint",
            ),
            (
                index_with(1, &deep),
                5,
                |r, url| matches!(r, Err(e @ RegistryError::InvalidResponse { detail, .. })
                    if detail.contains(&format!("nested deeper than {} levels", upkeep_registry::INDEX_MAX_DEPTH))
                        && e.to_string().contains(url)),
                "the reported 800 KB index nested 160k deep in another chart (362 s, exit 0, before)",
            ),
        ];
        for (body, max_tags, check, why) in cases {
            let served = serve(&body, Some(("chartuser", secret))).await;
            let url = format!("{}/charts/index.yaml", served.base_url());
            let options = SourceOptions {
                max_tags,
                ..opts()
            };
            let got = Source::new(
                &client(),
                &format!("{}/charts", served.base_url()),
                Some("app"),
                options,
                &Credentials::Basic(BasicAuth::new("chartuser", secret)),
            )
            .expect("source")
            .list_tags()
            .await
            .map(|list| list.tags.len());
            assert!(check(&got, &url), "{why}: {got:?}");
            if let Err(e) = &got {
                let text = format!("{e} {e:?} {}", e.hint().unwrap_or_default());
                assert!(!text.contains(secret), "{why}: no credentials in {text}");
            }
        }
    })
    .await
    .expect("test finished within its time limit");
}

#[tokio::test]
async fn a_trickling_helm_server_ends_at_the_time_caps() {
    // nginx sends the 64 KiB index at 512 bytes a second: two minutes for the whole body.
    // Each documented cap must end the listing on its own, with a Timeout naming the server
    // and the request.
    tokio::time::timeout(LIMIT, async {
        let body = index_with(1_000, "1");
        assert!(body.len() > 64 << 10, "big enough to trickle for minutes");
        let served = StaticServer::with_files_at_rate(
            &[("charts/index.yaml", body.as_bytes())],
            None,
            Some(512),
        )
        .await
        .expect("nginx with limit_rate");
        let host = served.host().to_owned();
        let source = format!("{}/charts", served.base_url());
        // (request timeout, overall timeout, attempts, expected `request`, reason)
        let cases = [
            (
                Duration::from_secs(30),
                Duration::from_secs(2),
                4,
                format!("list tags of {source}#app"),
                "the whole call's cap (SourceOptions::timeout) ends it, mid-body",
            ),
            (
                Duration::from_secs(1),
                Duration::from_secs(50),
                2,
                format!("GET {source}/index.yaml"),
                "the per-request cap (reading the body included) ends each attempt",
            ),
        ];
        for (request_timeout, timeout, attempts, request, why) in cases {
            let client = Client::new(ClientConfig {
                max_attempts: attempts,
                backoff_base: Duration::from_millis(5),
                ..ClientConfig::default()
            });
            let options = SourceOptions {
                request_timeout,
                timeout,
                ..opts()
            };
            let err = Source::new(&client, &source, Some("app"), options, &Credentials::Anonymous)
                .expect("source")
                .list_tags()
                .await
                .expect_err(why);
            assert!(
                matches!(&err, RegistryError::Timeout { server, request: r, .. } if *server == host && *r == request),
                "{why}: {err:?}"
            );
            assert!(err.to_string().contains(&host), "{why}: {err}");
        }
    })
    .await
    .expect("test finished within its time limit");
}

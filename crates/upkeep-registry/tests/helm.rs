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

//! Integration tests against a real Debian `docker-registry` (via `upkeep-testenv`): every
//! auth set-up, 10,000 tags, and each fault of the injecting proxy. Every test runs under a
//! tokio timeout so a hang fails instead of blocking the suite.

// Table rows are tuples of (input, expected, reason); naming each tuple type adds nothing.
#![allow(clippy::type_complexity)]

use std::time::Duration;

use upkeep_registry::{
    BasicAuth, Client, ClientConfig, Credentials, RegistryError, Source, SourceOptions, scan_all,
};
use upkeep_testenv::{Fault, FaultProxy, Registry, RegistryKind};

mod support;
use support::{credentials_for, options_for};

type Check = fn(&Result<Vec<String>, RegistryError>, &[String]) -> bool;

const LIMIT: Duration = Duration::from_secs(120);

fn fast_client() -> Client {
    Client::new(ClientConfig {
        max_attempts: 3,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        retry_after_cap: Duration::from_secs(5),
        ..ClientConfig::default()
    })
}

fn tags(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

async fn list_sorted(
    client: &Client,
    host: &str,
    repo: &str,
    options: SourceOptions,
    creds: &Credentials,
) -> Result<Vec<String>, RegistryError> {
    let src = Source::new(
        client,
        &format!("oci://{host}/{repo}"),
        None,
        options,
        creds,
    )?;
    let list = src.list_tags().await?;
    let mut names: Vec<String> = list.names().map(str::to_owned).collect();
    names.sort();
    Ok(names)
}

#[tokio::test]
async fn every_auth_kind_lists_tags() {
    tokio::time::timeout(LIMIT, async {
        for kind in RegistryKind::ALL {
            let reg = Registry::start(kind).await.expect("registry starts");
            // Token kind: the test user may push anywhere; anonymous only pulls `public/…`.
            let repo = "charts/app";
            for (v, created) in [("1.0.0", Some("2024-01-02T03:04:05Z")), ("1.1.0", None)] {
                reg.push_chart(repo, "app", v, v, created)
                    .await
                    .expect("push chart");
            }
            reg.push_chart(repo, "app", "1.1.0", "sha256-abc.sig", None)
                .await
                .expect("push signature tag");
            let client = fast_client();
            let creds = credentials_for(&reg);
            let src = Source::new(
                &client,
                &format!("oci://{}/{repo}", reg.host()),
                None,
                options_for(&reg),
                &creds,
            )
            .expect("source");
            let list = src
                .list_tags()
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {e} (hint: {:?})", e.hint()));
            let mut names: Vec<&str> = list.names().collect();
            names.sort_unstable();
            assert_eq!(names, ["1.0.0", "1.1.0"], "{kind:?}: tags after exclusions");
            assert_eq!(
                list.excluded, 1,
                "{kind:?}: the .sig tag is excluded by default"
            );
            let created = src.created_for("1.0.0").await.expect("manifest readable");
            assert_eq!(
                created.map(|t| t.to_string()),
                Some("2024-01-02T03:04:05Z".to_owned()),
                "{kind:?}: created annotation read from the manifest"
            );
            assert_eq!(src.created_for("1.1.0").await.expect("manifest"), None);

            if let Some((user, pass)) = reg.credentials() {
                // Anonymous is refused on a private repository.
                let anon = list_sorted(
                    &client,
                    reg.host(),
                    repo,
                    options_for(&reg),
                    &Credentials::Anonymous,
                )
                .await;
                assert!(
                    matches!(anon, Err(RegistryError::Unauthorized { .. })),
                    "{kind:?}: anonymous must be Unauthorized, got {anon:?}"
                );
                // A wrong password is Unauthorized and never shows up anywhere.
                let wrong = format!("{pass}-WRONG-s3cr3t");
                let bad = Credentials::Basic(BasicAuth::new(user.clone(), wrong.clone()));
                let err = list_sorted(&fast_client(), reg.host(), repo, options_for(&reg), &bad)
                    .await
                    .expect_err("wrong password must fail");
                assert!(
                    matches!(err, RegistryError::Unauthorized { .. }),
                    "{kind:?}: {err:?}"
                );
                for text in [
                    err.to_string(),
                    format!("{err:?}"),
                    err.hint().unwrap_or_default(),
                    format!("{bad:?}"),
                ] {
                    assert!(
                        !text.contains(&wrong),
                        "{kind:?}: secret leaked in `{text}`"
                    );
                    assert!(
                        !text.contains(&pass),
                        "{kind:?}: password leaked in `{text}`"
                    );
                }
                // Basic credentials given directly work too.
                let direct = Credentials::Basic(BasicAuth::new(user, pass));
                let ok = list_sorted(&client, reg.host(), repo, options_for(&reg), &direct).await;
                assert_eq!(ok.expect("direct basic").len(), 2, "{kind:?}");
            }
        }
    })
    .await
    .expect("test finished within its time limit");
}

#[tokio::test]
async fn tls_without_ca_is_a_tls_error_and_plain_http_needs_insecure() {
    tokio::time::timeout(LIMIT, async {
        let reg = Registry::start(RegistryKind::Tls).await.expect("registry");
        reg.push_chart("x/app", "app", "1.0.0", "1.0.0", None)
            .await
            .expect("push");
        let opts = SourceOptions {
            ca: None,
            ..options_for(&reg)
        };
        let err = list_sorted(
            &fast_client(),
            reg.host(),
            "x/app",
            opts,
            &Credentials::Anonymous,
        )
        .await
        .expect_err("self-signed CA is not trusted");
        assert!(matches!(err, RegistryError::Tls { .. }), "{err:?}");
        assert!(err.hint().is_some());

        let plain = Registry::start(RegistryKind::Plain)
            .await
            .expect("registry");
        let opts = SourceOptions {
            insecure: false,
            ..options_for(&plain)
        };
        // https to a plain-HTTP server fails (no silent downgrade).
        let err = list_sorted(
            &fast_client(),
            plain.host(),
            "x/app",
            opts,
            &Credentials::Anonymous,
        )
        .await
        .expect_err("https against plain http must fail");
        assert!(
            matches!(
                err,
                RegistryError::Tls { .. } | RegistryError::Connect { .. }
            ),
            "{err:?}"
        );
        let err = Source::new(
            &fast_client(),
            &format!("{}/charts", plain.base_url()),
            Some("app"),
            SourceOptions::default(),
            &Credentials::Anonymous,
        )
        .expect_err("http:// Helm URL without insecure");
        assert!(
            matches!(err, RegistryError::InvalidLocation { .. }),
            "{err:?}"
        );
        assert!(err.hint().unwrap_or_default().contains("insecure"));
    })
    .await
    .expect("test finished within its time limit");
}

#[tokio::test]
async fn ten_thousand_tags_list_completely() {
    tokio::time::timeout(Duration::from_secs(600), async {
        let reg = Registry::start(RegistryKind::Plain)
            .await
            .expect("registry");
        let mut pushed = tags("1.0.", 10_000);
        reg.push_tags("big/app", &pushed)
            .await
            .expect("push 10k tags");
        pushed.sort();
        let client = fast_client();
        for page_size in [None, Some(1000), Some(10_000)] {
            let opts = SourceOptions {
                page_size,
                ..options_for(&reg)
            };
            let got = list_sorted(
                &client,
                reg.host(),
                "big/app",
                opts,
                &Credentials::Anonymous,
            )
            .await
            .expect("list 10k");
            assert_eq!(got.len(), pushed.len(), "page size {page_size:?}: count");
            assert!(
                got == pushed,
                "page size {page_size:?}: same tags as pushed"
            );
        }
        // Through a proxy that caps n at 700 (distribution 2.8 ignores n and last, so the real
        // paginating behaviour is covered by tests/pagination.rs): the listing stays complete.
        let proxy = FaultProxy::for_registry(&reg, Fault::CapPageSize(700));
        let got = list_sorted(
            &client,
            proxy.host(),
            "big/app",
            SourceOptions {
                insecure: true,
                ..SourceOptions::default()
            },
            &Credentials::Anonymous,
        )
        .await
        .expect("list through capping proxy");
        assert!(got == pushed, "capped pages: all tags");
    })
    .await
    .expect("test finished within its time limit");
}

/// One row per fault: what the proxy does, and what listing must end in.
#[tokio::test]
async fn faults_end_in_the_right_result() {
    tokio::time::timeout(LIMIT, async {
        let reg = Registry::start(RegistryKind::Plain).await.expect("registry");
        let mut pushed = tags("2.0.", 40);
        reg.push_tags("f/app", &pushed).await.expect("push");
        pushed.sort();
        let proxy = FaultProxy::for_registry(&reg, Fault::None);
        let ok: Check = |r, p| r.as_ref().is_ok_and(|t| t == p);
        let cases: Vec<(Fault, Option<u32>, Check, &str)> = vec![
            (Fault::None, None, ok, "no fault: plain listing"),
            (Fault::ServerError { times: 2 }, None, ok, "two 500s are retried away (3 attempts)"),
            (
                Fault::ServerError { times: 100 },
                None,
                |r, _| matches!(r, Err(RegistryError::Status { status: 500, .. })),
                "persistent 500 ends in Status 500 after bounded attempts",
            ),
            (
                Fault::RateLimited { times: 1, retry_after_secs: 1 },
                None,
                ok,
                "one 429 with Retry-After: 1 is waited out",
            ),
            (
                Fault::RateLimited { times: 100, retry_after_secs: 0 },
                None,
                |r, _| matches!(r, Err(RegistryError::RateLimited { .. })),
                "persistent 429 ends in RateLimited",
            ),
            (
                Fault::RateLimited { times: 1, retry_after_secs: 3600 },
                None,
                |r, _| matches!(r, Err(RegistryError::RateLimited { retry_after: Some(d), .. }) if d.as_secs() == 3600),
                "a Retry-After beyond the cap fails at once instead of sleeping an hour",
            ),
            (
                Fault::TruncatedJson,
                None,
                |r, _| matches!(r, Err(RegistryError::InvalidResponse { .. })),
                "truncated JSON is InvalidResponse",
            ),
            (
                Fault::Stall,
                None,
                |r, _| matches!(r, Err(RegistryError::Timeout { .. })),
                "a stalled response ends in Timeout",
            ),
            (
                Fault::LinkLoop,
                None,
                |r, _| matches!(r, Err(RegistryError::InvalidResponse { detail, .. }) if detail.contains("pagination loop")),
                "a Link to the same page is a pagination loop",
            ),
            (Fault::CapPageSize(7), Some(1000), ok, "n capped at 7 (distribution 2.8 ignores n, so this checks we accept pages larger than asked)"),
            (Fault::CapPageSize(7), None, ok, "n forced when we ask none: still one complete listing"),
            (Fault::IgnorePageSize, Some(10), ok, "a registry ignoring n still lists all"),
        ];
        for (fault, page_size, check, reason) in cases {
            proxy.set_fault(fault.clone());
            proxy.clear_requests();
            let opts = SourceOptions {
                insecure: true,
                page_size,
                request_timeout: Duration::from_millis(800),
                timeout: Duration::from_secs(20),
                ..SourceOptions::default()
            };
            let r = list_sorted(&fast_client(), proxy.host(), "f/app", opts, &Credentials::Anonymous).await;
            assert!(check(&r, &pushed), "{reason}: {fault:?} gave {r:?}");
            let lists = proxy.requests().iter().filter(|q| q.is_tags_list()).count();
            assert!(lists <= 20, "{reason}: {lists} tag requests is not bounded");
            if let Err(e) = &r {
                assert!(!e.to_string().is_empty() && e.to_string().contains(proxy.host()), "{reason}: error names the server: {e}");
            }
        }
    })
    .await
    .expect("test finished within its time limit");
}

#[tokio::test]
async fn scan_many_repositories_with_bounded_connections() {
    tokio::time::timeout(LIMIT, async {
        let reg = Registry::start(RegistryKind::Plain)
            .await
            .expect("registry");
        for i in 0..12 {
            reg.push_tags(&format!("many/r{i}"), &tags("0.", i + 1))
                .await
                .expect("push");
        }
        let proxy = FaultProxy::for_registry(&reg, Fault::ServerError { times: 3 });
        let client = Client::new(ClientConfig {
            per_host_concurrency: 2,
            backoff_base: Duration::from_millis(5),
            ..ClientConfig::default()
        });
        let opts = SourceOptions {
            insecure: true,
            ..SourceOptions::default()
        };
        let mut sources: Vec<Source> = (0..12)
            .map(|i| {
                Source::new(
                    &client,
                    &format!("oci://{}/many/r{i}", proxy.host()),
                    None,
                    opts.clone(),
                    &Credentials::Anonymous,
                )
                .expect("source")
            })
            .collect();
        sources.push(
            Source::new(
                &client,
                &format!("oci://{}/many/missing", proxy.host()),
                None,
                opts,
                &Credentials::Anonymous,
            )
            .expect("source"),
        );
        let mut done = 0;
        let results = scan_all(&sources, 8, |_| done += 1).await;
        assert_eq!(done, 13);
        for (i, r) in results.iter().enumerate().take(12) {
            assert_eq!(r.index, i, "results in input order");
            let n = r.result.as_ref().map(|l| l.tags.len());
            assert_eq!(n.ok(), Some(i + 1), "repository {i}: {:?}", r.result);
        }
        assert!(
            matches!(results[12].result, Err(RegistryError::NotFound { .. })),
            "{:?}",
            results[12].result
        );
        assert_eq!(
            client.available_permits(proxy.host()),
            2,
            "all permits returned"
        );
    })
    .await
    .expect("test finished within its time limit");
}

#[tokio::test]
async fn caps_and_overall_timeout() {
    tokio::time::timeout(LIMIT, async {
        let reg = Registry::start(RegistryKind::Plain)
            .await
            .expect("registry");
        reg.push_tags("c/app", &tags("3.0.", 30))
            .await
            .expect("push");
        let proxy = FaultProxy::for_registry(&reg, Fault::None);
        let base = SourceOptions {
            insecure: true,
            ..SourceOptions::default()
        };
        let cases: Vec<(SourceOptions, Fault, fn(&RegistryError) -> bool, &str)> = vec![
            (
                SourceOptions {
                    limits: upkeep_registry::SizeLimits {
                        tags_page: 64,
                        ..Default::default()
                    },
                    ..base.clone()
                },
                Fault::None,
                |e| {
                    matches!(
                        e,
                        RegistryError::TooLarge {
                            unit: "bytes",
                            limit: 64,
                            ..
                        }
                    )
                },
                "a tags page over its byte cap is TooLarge, not buffered",
            ),
            (
                SourceOptions {
                    max_pages: 1,
                    page_size: Some(30),
                    ..base.clone()
                },
                Fault::None,
                |e| matches!(e, RegistryError::TooLarge { unit: "pages", .. }),
                "a full page of 30 asks for a second page (last=), beyond a 1-page cap",
            ),
            (
                SourceOptions {
                    max_tags: 10,
                    ..base.clone()
                },
                Fault::None,
                |e| matches!(e, RegistryError::TooLarge { unit: "tags", .. }),
                "more tags than max_tags",
            ),
            (
                SourceOptions {
                    request_timeout: Duration::from_secs(60),
                    timeout: Duration::from_millis(500),
                    ..base.clone()
                },
                Fault::Stall,
                |e| matches!(e, RegistryError::Timeout { after, .. } if after.as_millis() == 500),
                "the overall timeout ends a stall even when the request timeout is long",
            ),
        ];
        for (opts, fault, check, why) in cases {
            proxy.set_fault(fault);
            let err = list_sorted(
                &fast_client(),
                proxy.host(),
                "c/app",
                opts,
                &Credentials::Anonymous,
            )
            .await
            .expect_err(why);
            assert!(check(&err), "{why}: {err:?}");
        }
    })
    .await
    .expect("test finished within its time limit");
}

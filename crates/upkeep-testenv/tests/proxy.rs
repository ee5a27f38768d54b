//! The fault proxy in front of the real registry: each fault behaves as named, the request log
//! records what happened, and faults can be switched while the proxy runs.

use std::time::Duration;

use upkeep_testenv::{Fault, FaultProxy, Registry, RegistryKind, RequestRecord};

const TAGS: [&str; 5] = ["0.1.0", "0.2.0", "0.3.0", "1.0.0", "1.1.0"];

async fn registry_with_tags(kind: RegistryKind) -> Registry {
    let registry = Registry::start(kind)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let tags: Vec<String> = TAGS.iter().map(|t| (*t).to_owned()).collect();
    registry.push_tags("charts/demo", &tags).await.unwrap();
    registry
}

fn client(timeout: Duration) -> reqwest::Client {
    upkeep_testenv::http_client(None, timeout).unwrap()
}

async fn get(proxy: &FaultProxy, path_and_query: &str) -> reqwest::Response {
    client(Duration::from_secs(10))
        .get(format!("{}{path_and_query}", proxy.base_url()))
        .send()
        .await
        .unwrap()
}

fn tags_of(body: &[u8]) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    let mut tags: Vec<String> = serde_json::from_value(json["tags"].clone()).unwrap();
    tags.sort();
    tags
}

fn statuses(records: &[RequestRecord]) -> Vec<u16> {
    records
        .iter()
        .filter(|r| r.is_tags_list())
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn error_faults_fail_the_first_n_listings_then_pass() {
    let registry = registry_with_tags(RegistryKind::Plain).await;
    let cases = [
        (
            Fault::ServerError { times: 2 },
            vec![500, 500, 200, 200],
            None,
            "500 twice, then the real answer",
        ),
        (
            Fault::RateLimited {
                times: 1,
                retry_after_secs: 7,
            },
            vec![429, 200, 200, 200],
            Some("7"),
            "429 with Retry-After once",
        ),
        (
            Fault::None,
            vec![200, 200, 200, 200],
            None,
            "no fault passes everything",
        ),
    ];
    let proxy = FaultProxy::start(registry.base_url(), Fault::None);
    for (fault, want, retry_after, reason) in cases {
        proxy.set_fault(fault.clone());
        proxy.clear_requests();
        let mut seen_retry_after = None;
        for _ in 0..want.len() {
            let response = get(&proxy, "/v2/charts/demo/tags/list").await;
            if let Some(v) = response.headers().get("retry-after") {
                seen_retry_after = Some(v.to_str().unwrap().to_owned());
            }
        }
        assert_eq!(statuses(&proxy.requests()), want, "{fault:?}: {reason}");
        assert_eq!(
            seen_retry_after.as_deref(),
            retry_after,
            "{fault:?}: {reason}"
        );
        // Other endpoints are never faulted.
        let v2 = get(&proxy, "/v2/").await;
        assert_eq!(v2.status(), 200, "{fault:?}: /v2/ passes");
    }
}

#[tokio::test]
async fn truncated_json_cuts_the_body_in_half() {
    let registry = registry_with_tags(RegistryKind::Plain).await;
    let proxy = FaultProxy::start(registry.base_url(), Fault::None);
    let full = get(&proxy, "/v2/charts/demo/tags/list")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&full).len(),
        TAGS.len(),
        "unfaulted body is complete"
    );
    proxy.set_fault(Fault::TruncatedJson);
    let cut = get(&proxy, "/v2/charts/demo/tags/list")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        cut.len(),
        full.len() / 2,
        "half the body arrives, with a matching length"
    );
    assert_eq!(
        &cut[..],
        &full[..cut.len()],
        "the first half is the real body"
    );
    assert!(
        serde_json::from_slice::<serde_json::Value>(&cut).is_err(),
        "and it is not valid JSON"
    );
}

#[tokio::test]
async fn stall_never_answers_so_only_the_client_timeout_ends_it() {
    let registry = registry_with_tags(RegistryKind::Plain).await;
    let proxy = FaultProxy::start(registry.base_url(), Fault::Stall);
    let result = client(Duration::from_millis(300))
        .get(format!("{}/v2/charts/demo/tags/list", proxy.base_url()))
        .send()
        .await;
    let error = result.expect_err("a stalled listing cannot succeed");
    assert!(error.is_timeout(), "the client's timeout ends it: {error}");
    let records = proxy.requests();
    assert_eq!(statuses(&records), vec![0], "logged as never answered");
    assert_eq!(
        get(&proxy, "/v2/").await.status(),
        200,
        "other endpoints still answer"
    );
}

#[tokio::test]
async fn link_loop_points_every_page_back_at_itself() {
    let registry = registry_with_tags(RegistryKind::Plain).await;
    let proxy = FaultProxy::start(registry.base_url(), Fault::LinkLoop);
    let cases = [
        (
            "/v2/charts/demo/tags/list?n=2",
            "the first page links to itself",
        ),
        (
            "/v2/charts/demo/tags/list?n=2&last=0.2.0",
            "a later page links to itself too",
        ),
        (
            "/v2/charts/demo/tags/list",
            "even an unpaginated listing carries the link",
        ),
    ];
    for (path, reason) in cases {
        let response = get(&proxy, path).await;
        assert_eq!(response.status(), 200, "{path}: {reason}");
        let link = response.headers()["link"].to_str().unwrap().to_owned();
        assert_eq!(link, format!("<{path}>; rel=\"next\""), "{path}: {reason}");
    }
}

#[tokio::test]
async fn page_size_faults_cap_or_drop_n() {
    let registry = registry_with_tags(RegistryKind::Plain).await;
    let proxy = FaultProxy::start(registry.base_url(), Fault::None);
    let cases = [
        (
            Fault::None,
            "/v2/charts/demo/tags/list?n=2",
            2,
            true,
            "the real registry honours n and links on",
        ),
        (
            Fault::CapPageSize(3),
            "/v2/charts/demo/tags/list?n=100",
            3,
            true,
            "a capped registry returns fewer than asked, with a Link",
        ),
        (
            Fault::CapPageSize(3),
            "/v2/charts/demo/tags/list?n=2",
            2,
            true,
            "a smaller n than the cap is kept",
        ),
        (
            Fault::IgnorePageSize,
            "/v2/charts/demo/tags/list?n=2",
            TAGS.len(),
            false,
            "n is ignored: everything, no Link",
        ),
    ];
    for (fault, path, want_len, want_link, reason) in cases {
        proxy.set_fault(fault.clone());
        let response = get(&proxy, path).await;
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.bytes().await.unwrap();
        assert_eq!(tags_of(&body).len(), want_len, "{fault:?} {path}: {reason}");
        assert_eq!(
            link.is_some(),
            want_link,
            "{fault:?} {path}: {reason} (Link: {link:?})"
        );
        if let Some(link) = link {
            assert!(
                link.starts_with("</v2/charts/demo/tags/list?"),
                "{fault:?}: the link stays relative to the proxy: {link}"
            );
        }
        let logged = proxy.requests().last().cloned().unwrap();
        assert_eq!(
            logged.path, path,
            "{fault:?}: the log shows what the client asked for"
        );
    }
}

#[tokio::test]
async fn following_links_lists_every_tag_exactly_once() {
    let registry = registry_with_tags(RegistryKind::Plain).await;
    let proxy = FaultProxy::start(registry.base_url(), Fault::None);
    let mut next = Some("/v2/charts/demo/tags/list?n=2".to_owned());
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        assert!(pages <= TAGS.len(), "pagination terminates");
        let response = get(&proxy, &path).await;
        next = response.headers().get("link").map(|v| {
            let v = v.to_str().unwrap();
            v[1..v.find('>').unwrap()].to_owned()
        });
        let json: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        seen.extend(
            json["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(
        seen, TAGS,
        "pages are in lexical order, none repeated or lost"
    );
    assert_eq!(pages, 3, "5 tags at n=2 are 3 pages");
}

#[tokio::test]
async fn the_proxy_fronts_tls_and_token_registries() {
    let cases = [
        (
            RegistryKind::Tls,
            200,
            "HTTPS behind, plain HTTP in front, the registry's CA trusted",
        ),
        (
            RegistryKind::Token,
            401,
            "the token challenge passes through unchanged",
        ),
    ];
    for (kind, want, reason) in cases {
        let registry = registry_with_tags(kind).await;
        let proxy = FaultProxy::for_registry(&registry, Fault::ServerError { times: 1 });
        assert_eq!(
            get(&proxy, "/v2/charts/demo/tags/list").await.status(),
            500,
            "{kind:?}: the fault comes first"
        );
        let response = get(&proxy, "/v2/charts/demo/tags/list").await;
        assert_eq!(response.status(), want, "{kind:?}: {reason}");
        if kind == RegistryKind::Token {
            let challenge = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(
                challenge.contains(&registry.token_realm().unwrap()),
                "{kind:?}: {challenge}"
            );
        }
    }
}

#[test]
fn a_bad_upstream_url_is_an_error_not_a_panic() {
    let cases = [
        ("not a url", "garbage"),
        ("ftp://127.0.0.1:1", "only http and https can be proxied"),
    ];
    for (url, reason) in cases {
        assert!(
            FaultProxy::try_start(url, None, Fault::None).is_err(),
            "{url}: {reason}"
        );
    }
}

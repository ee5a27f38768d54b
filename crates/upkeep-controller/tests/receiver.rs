//! The push-notification receiver over real HTTP on 127.0.0.1: every answer (202, 400, 401,
//! 404, 405, 408, 413, 415, 429), authentication for each sender, rate limiting and recovery,
//! the body limit, slow clients, and the real thing — Debian's `docker-registry` configured
//! with `notifications.endpoints` pointing at the receiver, a chart pushed to it, and the
//! receiver's `on_push` seeing the registry host, repository and tag a ChartSource matches.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use upkeep_controller::receiver::{OnPush, RateLimit, ReceiverSettings, serve_receiver};
use upkeep_controller::shutdown::{Shutdown, ShutdownTrigger};
use upkeep_registry::notification::{self, Pushed, matches};
use upkeep_testenv::{NotificationEndpoint, Registry, RegistryKind, RegistryOptions};

const SECRET: &str = "receiver-test-secret-0123456789";

/// path, headers, body, expected status, why.
type AuthCase<'a> = (&'a str, Vec<(&'static str, String)>, &'a str, u16, &'a str);

/// A running receiver; `stop` ends it and waits for the server task.
struct Receiver {
    addr: SocketAddr,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
    seen: Arc<Mutex<Vec<Pushed>>>,
}

impl Receiver {
    /// Starts a receiver whose `on_push` records pushes and counts those matching `sources`.
    async fn start(settings: ReceiverSettings, sources: Vec<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Pushed>>> = Arc::default();
        let log = seen.clone();
        let on_push: OnPush = Arc::new(move |pushed: &[Pushed]| {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(pushed);
            sources
                .iter()
                .filter(|s| pushed.iter().any(|p| matches(s, p)))
                .count()
        });
        let (trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(serve_receiver(
            listener,
            settings,
            on_push,
            shutdown.signal(),
        ));
        Self {
            addr,
            trigger,
            task,
            seen,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Pushed> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the receiver stops")
            .expect("the receiver task did not panic");
    }
}

fn settings() -> ReceiverSettings {
    let mut settings = ReceiverSettings::new(SECRET, "test").expect("secret");
    // Generous: only the rate-limit test wants to hit the limits.
    settings.per_client = RateLimit {
        per_second: 1000.0,
        burst: 1000.0,
    };
    settings.global = settings.per_client;
    settings
}

fn client() -> reqwest::Client {
    upkeep_registry::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the answer is JSON")
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Answer {
        status,
        headers,
        body,
    }
}

fn distribution_push(host: &str, repository: &str, tag: &str) -> String {
    json!({"events": [{
        "id": "1", "timestamp": "2026-12-06T09:00:00Z", "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
                   "repository": repository, "tag": tag,
                   "url": format!("http://{host}/v2/{repository}/manifests/{tag}")},
        "request": {"host": host, "method": "PUT"}
    }]})
    .to_string()
}

fn bearer() -> String {
    format!("Bearer {SECRET}")
}

#[tokio::test]
async fn every_answer_over_http() {
    let mut s = settings();
    s.max_body = 4096;
    let receiver = Receiver::start(s, vec!["oci://reg.example:5000/charts/app".to_owned()]).await;
    let http = client();
    let good = distribution_push("reg.example:5000", "charts/app", "1.0.0");
    let post = |path: &str| http.post(receiver.url(path));

    let accepted = send(
        post("/hook/distribution")
            .header("authorization", bearer())
            .header(
                "content-type",
                "application/vnd.docker.distribution.events.v1+json",
            )
            .body(good.clone()),
    )
    .await;
    assert_eq!(accepted.status, 202, "a good push: {}", accepted.body);
    assert_eq!(accepted.json(), json!({"events": 1, "matched": 1}));

    let unmatched = send(
        post("/hook/distribution")
            .header("authorization", bearer())
            .body(distribution_push(
                "reg.example:5000",
                "charts/other",
                "1.0.0",
            )),
    )
    .await;
    assert_eq!(
        (unmatched.status, unmatched.json()),
        (202, json!({"events": 1, "matched": 0})),
        "a push no source watches is accepted and matches nothing"
    );

    let not_found = send(post("/hook/gitlab").body(good.clone())).await;
    assert_eq!(not_found.status, 404, "unknown sender");
    let not_found = send(post("/hook/dockerhub").body(good.clone())).await;
    assert_eq!(not_found.status, 404, "dockerhub without its token");

    let get = send(http.get(receiver.url("/hook/github"))).await;
    assert_eq!(get.status, 405, "GET on a hook");
    assert_eq!(
        get.headers.get("allow").map(http::HeaderValue::as_bytes),
        Some(&b"POST"[..])
    );

    let text = send(
        post("/hook/harbor")
            .header("content-type", "text/plain")
            .body(good.clone()),
    )
    .await;
    assert_eq!(
        text.status, 415,
        "a body that is not JSON is refused with a hint"
    );
    assert!(text.body.contains("application/json"), "{}", text.body);
    let form = send(
        post("/hook/acr")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("payload=%7B%7D"),
    )
    .await;
    assert_eq!(form.status, 415, "only GitHub sends forms");

    let big = "x".repeat(5000);
    let declared = send(
        post("/hook/distribution")
            .header("authorization", bearer())
            .body(big.clone()),
    )
    .await;
    assert_eq!(declared.status, 413, "a declared length over the limit");
    let chunks = vec![
        Ok::<_, std::io::Error>(big[..2500].to_owned()),
        Ok(big[2500..].to_owned()),
    ];
    let streamed = send(
        post("/hook/distribution")
            .header("authorization", bearer())
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
    )
    .await;
    assert_eq!(
        streamed.status, 413,
        "a chunked body that grows over the limit"
    );

    let malformed = send(
        post("/hook/distribution")
            .header("authorization", bearer())
            .body("{\"events\": 5}"),
    )
    .await;
    assert_eq!(malformed.status, 400, "not the envelope shape");
    assert!(
        malformed.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("`events`")),
        "{}",
        malformed.body
    );

    let unauthenticated = send(post("/hook/distribution").body("{\"events\": 5}")).await;
    assert_eq!(
        unauthenticated.status, 401,
        "authentication comes before parsing"
    );

    let events_seen = receiver.seen().len();
    assert_eq!(
        events_seen, 2,
        "only the two accepted pushes reached on_push"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn each_sender_authenticates() {
    let receiver = Receiver::start(settings(), Vec::new()).await;
    let http = client();
    let token = notification::path_token(SECRET.as_bytes());
    let hub_body =
        json!({"push_data": {"tag": "1.0.0"}, "repository": {"repo_name": "org/app"}}).to_string();
    let acr_body = json!({"action": "push", "target": {"repository": "app", "tag": "1.0.0",
        "mediaType": "application/vnd.oci.image.manifest.v1+json"}, "request": {"host": "x.azurecr.io"}})
    .to_string();
    let harbor_body = json!({"type": "PUSH_ARTIFACT", "event_data": {"resources": [
        {"tag": "1.0.0", "resource_url": "harbor.example/proj/app:1.0.0"}],
        "repository": {"repo_full_name": "proj/app"}}})
    .to_string();
    let gh_body = json!({"zen": "Design for failure.", "hook_id": 1}).to_string();
    let gh_form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &gh_body)
        .finish();
    let form_sig = notification::signature(SECRET.as_bytes(), gh_form.as_bytes());
    let dist_body = distribution_push("reg.example", "app", "1.0.0");
    let gh_sig = notification::signature(SECRET.as_bytes(), gh_body.as_bytes());
    let wrong_sig = notification::signature(b"not-the-secret-at-all", gh_body.as_bytes());
    let dist_sig = notification::signature(SECRET.as_bytes(), dist_body.as_bytes());
    let hub_path = format!("/hook/dockerhub/{token}");
    let secret_path = format!("/hook/dockerhub/{SECRET}");
    let cases: Vec<AuthCase> = vec![
        (
            "/hook/distribution",
            vec![("authorization", bearer())],
            &dist_body,
            202,
            "distribution: bearer",
        ),
        (
            "/hook/distribution",
            vec![("x-signature", dist_sig)],
            &dist_body,
            202,
            "distribution: generic HMAC",
        ),
        (
            "/hook/distribution",
            vec![("authorization", "Bearer wrong".into())],
            &dist_body,
            401,
            "distribution: wrong",
        ),
        (
            "/hook/distribution",
            vec![],
            &dist_body,
            401,
            "distribution: missing",
        ),
        (
            "/hook/acr",
            vec![("authorization", bearer())],
            &acr_body,
            202,
            "acr: bearer",
        ),
        (
            "/hook/acr",
            vec![("authorization", "Bearer wrong".into())],
            &acr_body,
            401,
            "acr: wrong",
        ),
        ("/hook/acr", vec![], &acr_body, 401, "acr: missing"),
        (
            "/hook/harbor",
            vec![("authorization", SECRET.into())],
            &harbor_body,
            202,
            "harbor: verbatim",
        ),
        (
            "/hook/harbor",
            vec![("authorization", bearer())],
            &harbor_body,
            202,
            "harbor: bearer",
        ),
        (
            "/hook/harbor",
            vec![("authorization", "wrong".into())],
            &harbor_body,
            401,
            "harbor: wrong",
        ),
        ("/hook/harbor", vec![], &harbor_body, 401, "harbor: missing"),
        (
            "/hook/github",
            vec![
                ("x-github-event", "ping".into()),
                ("x-hub-signature-256", gh_sig),
            ],
            &gh_body,
            202,
            "github: signed ping",
        ),
        (
            "/hook/github",
            vec![
                ("x-github-event", "ping".into()),
                ("x-hub-signature-256", wrong_sig),
            ],
            &gh_body,
            401,
            "github: wrong key",
        ),
        (
            "/hook/github",
            vec![
                ("x-github-event", "ping".into()),
                ("authorization", bearer()),
            ],
            &gh_body,
            401,
            "github: unsigned",
        ),
        (
            "/hook/github",
            vec![
                ("x-github-event", "ping".into()),
                ("x-hub-signature-256", form_sig),
                ("content-type", "application/x-www-form-urlencoded".into()),
            ],
            &gh_form,
            202,
            "github: a signed ping in GitHub's default form encoding",
        ),
        (&hub_path, vec![], &hub_body, 202, "dockerhub: token path"),
        (
            "/hook/dockerhub/0123abcd",
            vec![],
            &hub_body,
            401,
            "dockerhub: wrong token",
        ),
        (
            &secret_path,
            vec![],
            &hub_body,
            401,
            "dockerhub: the secret is not the token",
        ),
    ];
    for (path, headers, body, status, why) in cases {
        let mut request = http.post(receiver.url(path)).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer = send(request).await;
        assert_eq!(answer.status, status, "{why}: {}", answer.body);
        assert!(
            !answer.body.contains(SECRET) && !answer.body.contains(&token),
            "{why}: the answer shows no secret: {}",
            answer.body
        );
    }
    let seen = receiver.seen();
    assert_eq!(
        seen.len(),
        6,
        "one push per accepted request but the ping: {seen:?}"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn rate_limited_then_recovers() {
    let mut s = settings();
    s.per_client = RateLimit {
        per_second: 2.0,
        burst: 2.0,
    };
    let receiver = Receiver::start(s, Vec::new()).await;
    let http = client();
    let push = || {
        http.post(receiver.url("/hook/distribution"))
            .header("authorization", bearer())
            .body(json!({"events": []}).to_string())
    };
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let answer = send(push()).await;
        statuses.push(answer.status);
        if answer.status == 429 {
            retry_after = answer.headers.get("retry-after").cloned();
        }
    }
    assert_eq!(statuses, [202, 202, 429], "a burst of 2, then refused");
    let seconds: u64 = retry_after
        .expect("429 carries Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(seconds >= 1, "Retry-After is whole seconds, at least 1");
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let answer = send(push()).await;
    assert_eq!(answer.status, 202, "accepted again after Retry-After");
    receiver.stop().await;
}

/// Reads what the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let mut s = settings();
    s.header_timeout = Duration::from_millis(500);
    s.body_timeout = Duration::from_millis(500);
    let receiver = Receiver::start(s, Vec::new()).await;

    let mut headers_only = TcpStream::connect(receiver.addr).await.expect("connect");
    headers_only
        .write_all(b"POST /hook/acr HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let answer = read_to_close(&mut headers_only).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "headers that never end: closed: {answer:?}"
    );

    let mut idle = TcpStream::connect(receiver.addr).await.expect("connect");
    let answer = read_to_close(&mut idle).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "a connection that sends nothing: closed: {answer:?}"
    );

    let mut stalled_body = TcpStream::connect(receiver.addr).await.expect("connect");
    let request = format!(
        "POST /hook/acr HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 100\r\n\r\n{{\"act",
        bearer()
    );
    stalled_body
        .write_all(request.as_bytes())
        .await
        .expect("write");
    let answer = read_to_close(&mut stalled_body).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a body that stalls: {answer:?}"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn real_registry_notifies_the_receiver() {
    let receiver = Receiver::start(settings(), Vec::new()).await;
    let endpoint = NotificationEndpoint::new(receiver.url("/hook/distribution"))
        .header("Authorization", bearer());
    let options = RegistryOptions {
        notifications: vec![endpoint],
    };
    let registry = Registry::start_with(RegistryKind::Plain, options)
        .await
        .expect("registry with notifications");
    registry
        .push_chart("charts/app", "app", "1.2.3", "1.2.3", None)
        .await
        .expect("push");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let pushed = loop {
        if let Some(p) = receiver
            .seen()
            .into_iter()
            .find(|p| p.tag.as_deref() == Some("1.2.3"))
        {
            break p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no push notification arrived; registry log:\n{}",
            registry.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        pushed.registry.as_deref(),
        Some(registry.host()),
        "{pushed:?}"
    );
    assert_eq!(pushed.repository, "charts/app");
    assert!(
        pushed
            .digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{pushed:?}"
    );
    let source = format!("oci://{}/charts/app", registry.host());
    assert!(matches(&source, &pushed), "{source} matches {pushed:?}");
    assert!(
        receiver
            .seen()
            .iter()
            .all(|p| p.repository == "charts/app" && p.tag.as_deref() == Some("1.2.3")),
        "only the manifest push is reported (no blob uploads): {:?}",
        receiver.seen()
    );
    drop(registry);
    receiver.stop().await;
}

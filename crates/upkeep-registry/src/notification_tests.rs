//! Table tests of notification parsing, authentication and matching. Payloads are the
//! vendors' documented examples (shortened where a field does not matter), plus adversarial
//! bodies; every case says why it is there.

use http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"test-secret-0123456789";

/// Request headers of a case.
type Hdrs = &'static [(&'static str, &'static str)];
/// sender, headers, body, the pushes it reports, why.
type ParseCase = (Sender, Hdrs, serde_json::Value, Vec<Pushed>, &'static str);
/// sender, headers, body, the field the error names, why.
type BadCase = (Sender, Hdrs, String, &'static str, &'static str);
/// sender, headers, path token, accepted, why.
type AuthCase<'a> = (
    Sender,
    Vec<(&'static str, &'a str)>,
    Option<&'a str>,
    bool,
    &'a str,
);
const GH: Hdrs = &[("x-github-event", "package")];

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).expect("header value"));
    }
    map
}

fn pushed(
    registry: Option<&str>,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&str>,
) -> Pushed {
    Pushed {
        registry: registry.map(str::to_owned),
        repository: repository.to_owned(),
        tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    }
}

const D1: &str = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf";

/// distribution's documented envelope: a manifest push by tag, a blob push, a pull.
fn distribution_doc() -> serde_json::Value {
    json!({"events": [
        {
            "id": "asdf-asdf-asdf-asdf-0",
            "timestamp": "2006-01-02T15:04:05Z",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.v1+json",
                "length": 1,
                "digest": D1,
                "repository": "library/test",
                "url": "http://example.com/v2/library/test/manifests/sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5",
                "tag": "latest"
            },
            "request": {"id": "asdfasdf", "addr": "client.local", "host": "registrycluster.local",
                        "method": "PUT", "useragent": "test/0.1"},
            "actor": {"name": "test-actor"},
            "source": {"addr": "hostname.local:port"}
        },
        {
            "id": "asdf-asdf-asdf-asdf-1",
            "timestamp": "2006-01-02T15:04:05Z",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.docker.container.image.rootfs.diff+x-gtar",
                "length": 2,
                "digest": "sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5",
                "repository": "library/test",
                "url": "http://example.com/v2/library/test/blobs/sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5"
            },
            "request": {"id": "asdfasdf", "addr": "client.local", "host": "registrycluster.local",
                        "method": "PUT", "useragent": "test/0.1"},
            "actor": {"name": "test-actor"},
            "source": {"addr": "hostname.local:port"}
        },
        {
            "id": "asdf-asdf-asdf-asdf-2",
            "timestamp": "2006-01-02T15:04:05Z",
            "action": "pull",
            "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.v1+json",
                "digest": D1, "repository": "library/test", "tag": "latest",
                "url": "http://example.com/v2/library/test/manifests/latest"
            },
            "request": {"host": "registrycluster.local", "method": "GET"}
        }
    ]})
}

/// ACR's documented image push.
fn acr_push() -> serde_json::Value {
    json!({
        "id": "cb8c3971-9adc-488b-xxxx-43cbb4974ff5",
        "timestamp": "2017-11-17T16:52:01.343145347Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 524,
            "digest": "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d",
            "length": 524,
            "repository": "hello-world",
            "tag": "v1"
        },
        "request": {
            "id": "3cbb6949-7549-4fa1-xxxx-a6d5451dffc7",
            "host": "myregistry.azurecr.io",
            "method": "PUT",
            "useragent": "docker/17.09.0-ce go/go1.8.3 git-commit/afdb6d4 kernel/4.10.0-27-generic os/Linux arch/amd64"
        }
    })
}

/// ACR's documented (legacy Helm repository) chart push.
fn acr_chart_push() -> serde_json::Value {
    json!({
        "id": "6356e9e0-627f-4fed-xxxx-d9059b5143ac",
        "timestamp": "2019-03-05T23:45:31.2614267Z",
        "action": "chart_push",
        "target": {
            "mediaType": "application/vnd.acr.helm.chart",
            "size": 25265,
            "digest": "sha256:b35b7da4ca0d2b9dfbd5a6ecb1dc6b8b3d0c0a9d7f0e77e2cd3ea5bd2a8ad3b8",
            "repository": "repo",
            "tag": "wordpress-5.4.0.tgz",
            "name": "wordpress",
            "version": "5.4.0.tgz"
        },
        "request": {"id": "", "host": "mycontainerregistry.azurecr.io", "method": "PUT"}
    })
}

/// Harbor's documented default-format push.
fn harbor_push() -> serde_json::Value {
    json!({
        "type": "PUSH_ARTIFACT",
        "occur_at": 1_586_922_308,
        "operator": "admin",
        "event_data": {
            "resources": [{
                "digest": "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8",
                "tag": "latest",
                "resource_url": "hub.harbor.com/test-webhook/debian:latest"
            }],
            "repository": {
                "date_created": 1_586_922_308,
                "name": "debian",
                "namespace": "test-webhook",
                "repo_full_name": "test-webhook/debian",
                "repo_type": "private"
            }
        }
    })
}

/// Harbor's CloudEvents format of the same push.
fn harbor_cloudevents() -> serde_json::Value {
    json!({
        "specversion": "1.0",
        "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2",
        "requestid": "e4df2d4d-2a7f-4c2d-b7c4-4c5f0a2b8e1a",
        "source": "/projects/1/webhook/policies/1",
        "type": "harbor.artifact.pushed",
        "datacontenttype": "application/json",
        "time": "2023-03-06T06:08:43Z",
        "data": {
            "resources": [{
                "digest": "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c",
                "tag": "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c",
                "resource_url": "harbor.dev/library/busybox@sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"
            }],
            "repository": {"date_created": 1_677_053_165, "name": "busybox", "namespace": "library",
                           "repo_full_name": "library/busybox", "repo_type": "public"}
        },
        "operator": "robot$library+scanner"
    })
}

/// GitHub's `package` event for a ghcr.io container (a Helm chart pushed with `helm push`).
fn github_package(action: &str, package_type: &str) -> serde_json::Value {
    json!({
        "action": action,
        "package": {
            "id": 1_234_567,
            "name": "charts/app",
            "namespace": "Octo-Org",
            "ecosystem": "CONTAINER",
            "package_type": package_type,
            "html_url": "https://github.com/orgs/Octo-Org/packages/container/package/charts%2Fapp",
            "package_version": {
                "id": 7_654_321,
                "version": "sha256:3f5bbbd1e5b1d6c4c6b1f1d4e7c0bb0cf2a7e0dfe0c9e2f4b2b4d5c1a2e3f4a5",
                "name": "sha256:3f5bbbd1e5b1d6c4c6b1f1d4e7c0bb0cf2a7e0dfe0c9e2f4b2b4d5c1a2e3f4a5",
                "package_url": "ghcr.io/octo-org/charts/app:1.2.3",
                "container_metadata": {
                    "tag": {"name": "1.2.3",
                            "digest": "sha256:3f5bbbd1e5b1d6c4c6b1f1d4e7c0bb0cf2a7e0dfe0c9e2f4b2b4d5c1a2e3f4a5"},
                    "labels": {}, "manifest": {}
                }
            },
            "registry": {"about_url": "https://docs.github.com/packages", "name": "GitHub CONTAINER registry",
                         "type": "CONTAINER", "url": "https://ghcr.io/octo-org", "vendor": "GitHub Inc"}
        },
        "repository": {"full_name": "Octo-Org/app"},
        "sender": {"login": "octocat"}
    })
}

/// Docker Hub's documented payload.
fn dockerhub_doc(repo_name: &str) -> serde_json::Value {
    json!({
        "callback_url": "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
        "push_data": {"pushed_at": 1_417_566_161, "pusher": "trustedbuilder", "tag": "latest"},
        "repository": {
            "comment_count": 0, "date_created": 1_417_494_799, "description": "",
            "is_official": false, "is_private": true, "is_trusted": true,
            "name": "testhook", "namespace": "svendowideit", "owner": "svendowideit",
            "repo_name": repo_name,
            "repo_url": "https://registry.hub.docker.com/u/svendowideit/testhook/",
            "star_count": 0, "status": "Active"
        }
    })
}

fn with(mut v: serde_json::Value, pointer: &str, new: serde_json::Value) -> serde_json::Value {
    *v.pointer_mut(pointer).expect("pointer exists") = new;
    v
}

fn without(mut v: serde_json::Value, pointer: &str) -> serde_json::Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    v.pointer_mut(parent)
        .and_then(|p| p.as_object_mut())
        .expect("parent object")
        .remove(key);
    v
}

#[test]
fn documented_payloads_parse() {
    let gh_registry = json!({"action": "published", "registry_package": github_package("published", "CONTAINER")["package"].clone()});
    let cases: Vec<ParseCase> = vec![
        (
            Sender::Distribution,
            &[],
            distribution_doc(),
            vec![pushed(
                Some("registrycluster.local"),
                "library/test",
                Some("latest"),
                Some(D1),
            )],
            "distribution: the manifest push counts; the blob push and the pull are ignored",
        ),
        (
            Sender::Distribution,
            &[],
            json!({"events": []}),
            vec![],
            "distribution: an envelope without events is fine",
        ),
        (
            Sender::Distribution,
            &[],
            with(
                distribution_doc(),
                "/events/0/target/tag",
                serde_json::Value::Null,
            ),
            vec![pushed(
                Some("registrycluster.local"),
                "library/test",
                None,
                Some(D1),
            )],
            "distribution: a push by digest is a manifest push without a tag",
        ),
        (
            Sender::Distribution,
            &[],
            with(
                distribution_doc(),
                "/events/0/request/host",
                json!("Registry.Example:5000"),
            ),
            vec![pushed(
                Some("registry.example:5000"),
                "library/test",
                Some("latest"),
                Some(D1),
            )],
            "distribution: the host keeps its port and is lower-cased",
        ),
        (
            Sender::Acr,
            &[],
            acr_push(),
            vec![pushed(
                Some("myregistry.azurecr.io"),
                "hello-world",
                Some("v1"),
                Some("sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d"),
            )],
            "acr: the documented image push",
        ),
        (
            Sender::Acr,
            &[],
            acr_chart_push(),
            vec![pushed(
                Some("mycontainerregistry.azurecr.io"),
                "repo",
                Some("5.4.0"),
                Some("sha256:b35b7da4ca0d2b9dfbd5a6ecb1dc6b8b3d0c0a9d7f0e77e2cd3ea5bd2a8ad3b8"),
            )],
            "acr: a legacy chart push names the chart version without .tgz",
        ),
        (
            Sender::Acr,
            &[],
            with(acr_push(), "/action", json!("delete")),
            vec![],
            "acr: a delete is not a push",
        ),
        (
            Sender::Acr,
            &[],
            with(acr_push(), "/action", json!("ping")),
            vec![],
            "acr: `az acr webhook ping` is accepted with no events",
        ),
        (
            Sender::Harbor,
            &[],
            harbor_push(),
            vec![pushed(
                Some("hub.harbor.com"),
                "test-webhook/debian",
                Some("latest"),
                Some("sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"),
            )],
            "harbor: the documented default-format push",
        ),
        (
            Sender::Harbor,
            &[],
            harbor_cloudevents(),
            vec![pushed(
                Some("harbor.dev"),
                "library/busybox",
                None,
                Some("sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"),
            )],
            "harbor: CloudEvents; a digest in `tag` means no tag",
        ),
        (
            Sender::Harbor,
            &[],
            with(harbor_push(), "/type", json!("PULL_ARTIFACT")),
            vec![],
            "harbor: a pull is not a push",
        ),
        (
            Sender::GitHub,
            GH,
            github_package("published", "CONTAINER"),
            vec![pushed(
                Some("ghcr.io"),
                "octo-org/charts/app",
                Some("1.2.3"),
                Some("sha256:3f5bbbd1e5b1d6c4c6b1f1d4e7c0bb0cf2a7e0dfe0c9e2f4b2b4d5c1a2e3f4a5"),
            )],
            "github: a published container version, nested package name",
        ),
        (
            Sender::GitHub,
            GH,
            github_package("updated", "container"),
            vec![pushed(
                Some("ghcr.io"),
                "octo-org/charts/app",
                Some("1.2.3"),
                Some("sha256:3f5bbbd1e5b1d6c4c6b1f1d4e7c0bb0cf2a7e0dfe0c9e2f4b2b4d5c1a2e3f4a5"),
            )],
            "github: `updated` counts too",
        ),
        (
            Sender::GitHub,
            &[("x-github-event", "registry_package")],
            gh_registry,
            vec![pushed(
                Some("ghcr.io"),
                "octo-org/charts/app",
                Some("1.2.3"),
                Some("sha256:3f5bbbd1e5b1d6c4c6b1f1d4e7c0bb0cf2a7e0dfe0c9e2f4b2b4d5c1a2e3f4a5"),
            )],
            "github: the registry_package event has the same package under another key",
        ),
        (
            Sender::GitHub,
            GH,
            without(
                github_package("published", "CONTAINER"),
                "/package/package_version/package_url",
            ),
            vec![pushed(
                Some("ghcr.io"),
                "octo-org/charts/app",
                Some("1.2.3"),
                Some("sha256:3f5bbbd1e5b1d6c4c6b1f1d4e7c0bb0cf2a7e0dfe0c9e2f4b2b4d5c1a2e3f4a5"),
            )],
            "github: without package_url, registry.url and the name give the repository",
        ),
        (
            Sender::GitHub,
            GH,
            github_package("published", "npm"),
            vec![],
            "github: a non-container package is not a registry push",
        ),
        (
            Sender::GitHub,
            GH,
            github_package("deleted", "CONTAINER"),
            vec![],
            "github: a deletion is not a push",
        ),
        (
            Sender::GitHub,
            &[("x-github-event", "ping")],
            json!({"zen": "Keep it logically awesome.", "hook_id": 1}),
            vec![],
            "github: ping is accepted with no events",
        ),
        (
            Sender::DockerHub,
            &[],
            dockerhub_doc("svendowideit/testhook"),
            vec![pushed(
                Some("docker.io"),
                "svendowideit/testhook",
                Some("latest"),
                None,
            )],
            "dockerhub: the documented payload",
        ),
        (
            Sender::DockerHub,
            &[],
            dockerhub_doc("nginx"),
            vec![pushed(
                Some("docker.io"),
                "library/nginx",
                Some("latest"),
                None,
            )],
            "dockerhub: a one-segment name is library/<name>",
        ),
    ];
    for (sender, hdrs, body, want, why) in cases {
        let got = parse(sender, &headers(hdrs), body.to_string().as_bytes());
        assert_eq!(got, Ok(want), "{why}");
    }
}

#[test]
fn bad_payloads_are_refused_by_field() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<BadCase> = vec![
        (
            Sender::Distribution,
            &[],
            String::new(),
            "body",
            "distribution: an empty body",
        ),
        (
            Sender::Distribution,
            &[],
            "{\"events\": [".into(),
            "body",
            "distribution: truncated JSON",
        ),
        (
            Sender::Distribution,
            &[],
            "null".into(),
            "body",
            "distribution: JSON null",
        ),
        (
            Sender::Distribution,
            &[],
            deep.clone(),
            "body",
            "distribution: 10,000 nested arrays hit the nesting limit",
        ),
        (
            Sender::Distribution,
            &[],
            "{}".into(),
            "events",
            "distribution: no `events`",
        ),
        (
            Sender::Distribution,
            &[],
            json!({"events": {}}).to_string(),
            "events",
            "distribution: `events` not an array",
        ),
        (
            Sender::Distribution,
            &[],
            json!({"events": [1]}).to_string(),
            "events[0]",
            "distribution: an event that is not an object",
        ),
        (
            Sender::Distribution,
            &[],
            without(distribution_doc(), "/events/0/target/repository").to_string(),
            "events[0].target.repository",
            "distribution: a push without a repository",
        ),
        (
            Sender::Distribution,
            &[],
            with(distribution_doc(), "/events/0/target/repository", json!(7)).to_string(),
            "events[0].target.repository",
            "distribution: a repository of the wrong type",
        ),
        (
            Sender::Distribution,
            &[],
            with(
                distribution_doc(),
                "/events/0/target/repository",
                json!("chärts/äpp"),
            )
            .to_string(),
            "events[0].repository",
            "distribution: a repository with unicode letters",
        ),
        (
            Sender::Distribution,
            &[],
            with(distribution_doc(), "/events/0/target/tag", json!("v1 ✓")).to_string(),
            "events[0].tag",
            "distribution: a tag with a space and unicode",
        ),
        (
            Sender::Distribution,
            &[],
            with(
                distribution_doc(),
                "/events/0/target/digest",
                json!("sha256:zz"),
            )
            .to_string(),
            "events[0].digest",
            "distribution: a digest that is not hex",
        ),
        (
            Sender::Distribution,
            &[],
            with(
                distribution_doc(),
                "/events/0/request/host",
                json!("evil host/x"),
            )
            .to_string(),
            "events[0].registry",
            "distribution: a host with a space and a slash",
        ),
        (
            Sender::Distribution,
            &[],
            without(distribution_doc(), "/events/0/action").to_string(),
            "events[0].action",
            "distribution: an event without an action",
        ),
        (
            Sender::Acr,
            &[],
            json!([acr_push()]).to_string(),
            "body",
            "acr: an array is not an ACR event",
        ),
        (
            Sender::Acr,
            &[],
            without(acr_push(), "/target").to_string(),
            "target",
            "acr: a push without a target",
        ),
        (
            Sender::Harbor,
            &[],
            json!({"type": 5}).to_string(),
            "type",
            "harbor: `type` of the wrong type",
        ),
        (
            Sender::Harbor,
            &[],
            without(harbor_push(), "/event_data/repository").to_string(),
            "event_data.repository",
            "harbor: a push without a repository",
        ),
        (
            Sender::Harbor,
            &[],
            with(harbor_push(), "/event_data/resources", json!("x")).to_string(),
            "event_data.resources",
            "harbor: resources not an array",
        ),
        (
            Sender::Harbor,
            &[],
            distribution_doc().to_string(),
            "type",
            "harbor: a distribution envelope is not Harbor's shape",
        ),
        (
            Sender::GitHub,
            &[],
            github_package("published", "CONTAINER").to_string(),
            "X-GitHub-Event",
            "github: the event header is missing",
        ),
        (
            Sender::GitHub,
            GH,
            without(
                github_package("published", "CONTAINER"),
                "/package/package_version",
            )
            .to_string(),
            "package.package_version",
            "github: a published package without a version",
        ),
        (
            Sender::GitHub,
            GH,
            json!({"action": "published"}).to_string(),
            "package",
            "github: no package object",
        ),
        (
            Sender::DockerHub,
            &[],
            without(dockerhub_doc("a/b"), "/push_data").to_string(),
            "push_data",
            "dockerhub: no push_data",
        ),
        (
            Sender::DockerHub,
            &[],
            with(dockerhub_doc("a/b"), "/push_data/tag", json!(["x"])).to_string(),
            "push_data.tag",
            "dockerhub: a tag of the wrong type",
        ),
    ];
    for (sender, hdrs, body, field, why) in cases {
        match parse(sender, &headers(hdrs), body.as_bytes()) {
            Err(NotificationError::Malformed {
                field: got,
                sender: s,
                ..
            }) => {
                assert_eq!((s, got.as_str()), (sender, field), "{why}");
            }
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[test]
fn github_form_encoding() {
    let json = github_package("published", "CONTAINER").to_string();
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish();
    let hdrs = headers(&[
        ("x-github-event", "package"),
        ("content-type", "application/x-www-form-urlencoded"),
    ]);
    let got = parse(Sender::GitHub, &hdrs, form.as_bytes()).expect("the payload field parses");
    assert_eq!(got.len(), 1, "the same push as in JSON: {got:?}");
    assert_eq!(got[0].repository, "octo-org/charts/app");
    let missing = parse(Sender::GitHub, &hdrs, b"other=1");
    assert!(
        matches!(missing, Err(NotificationError::Malformed { ref field, .. }) if field == "payload"),
        "a form without `payload`: {missing:?}"
    );
}

#[test]
fn unsupported_github_events_are_refused() {
    let body = json!({"ref": "refs/heads/main"}).to_string();
    let got = parse(
        Sender::GitHub,
        &headers(&[("x-github-event", "push")]),
        body.as_bytes(),
    );
    assert!(
        matches!(got, Err(NotificationError::Unsupported { ref event, .. }) if event == "push"),
        "a repository push event is not a package event: {got:?}"
    );
}

#[test]
fn errors_do_not_echo_values() {
    let secretish = "tok3n-in-the-body";
    let body = with(
        distribution_doc(),
        "/events/0/target/repository",
        json!(secretish),
    )
    .to_string();
    let body = body.replace("tok3n-in-the-body", "TOK3N-IN-THE-BODY");
    let error =
        parse(Sender::Distribution, &HeaderMap::new(), body.as_bytes()).expect_err("upper case");
    assert!(
        !error.to_string().to_lowercase().contains(secretish),
        "{error}"
    );
}

#[test]
fn routes() {
    let cases = [
        (
            "/hook/distribution",
            Some((Sender::Distribution, None)),
            "distribution",
        ),
        ("/hook/harbor", Some((Sender::Harbor, None)), "harbor"),
        ("/hook/github", Some((Sender::GitHub, None)), "github"),
        ("/hook/acr", Some((Sender::Acr, None)), "acr"),
        (
            "/hook/dockerhub/abc",
            Some((Sender::DockerHub, Some("abc"))),
            "dockerhub with its token",
        ),
        ("/hook/dockerhub", None, "dockerhub needs its token"),
        ("/hook/dockerhub/", None, "an empty token"),
        ("/hook/dockerhub/a/b", None, "a token with a slash"),
        (
            "/hook/github/abc",
            None,
            "only dockerhub has a token segment",
        ),
        ("/hook/gitlab", None, "an unknown sender"),
        ("/hook/", None, "no sender"),
        ("/metrics", None, "another path"),
    ];
    for (path, want, why) in cases {
        assert_eq!(Sender::from_path(path), want, "{why}");
    }
}

#[test]
fn authentication() {
    let body = br#"{"events":[]}"#;
    let sig = signature(SECRET, body);
    let wrong_sig = signature(b"another-secret-0123456", body);
    let token = path_token(SECRET);
    let bearer = format!("Bearer {}", std::str::from_utf8(SECRET).expect("utf8"));
    let bare = std::str::from_utf8(SECRET).expect("utf8").to_owned();
    let cases: Vec<AuthCase> = vec![
        (
            Sender::GitHub,
            vec![("x-hub-signature-256", &sig)],
            None,
            true,
            "github: the right HMAC",
        ),
        (
            Sender::GitHub,
            vec![("x-hub-signature-256", &wrong_sig)],
            None,
            false,
            "github: an HMAC under another key",
        ),
        (Sender::GitHub, vec![], None, false, "github: no signature"),
        (
            Sender::GitHub,
            vec![("x-hub-signature-256", "sha1=abcd")],
            None,
            false,
            "github: another algorithm",
        ),
        (
            Sender::GitHub,
            vec![("x-hub-signature-256", "sha256=zz")],
            None,
            false,
            "github: not hex",
        ),
        (
            Sender::GitHub,
            vec![("authorization", &bearer)],
            None,
            false,
            "github: a bearer token is not a signature",
        ),
        (
            Sender::Distribution,
            vec![("authorization", &bearer)],
            None,
            true,
            "distribution: the bearer token",
        ),
        (
            Sender::Distribution,
            vec![("authorization", "Bearer nope")],
            None,
            false,
            "distribution: a wrong token",
        ),
        (
            Sender::Distribution,
            vec![("authorization", &bare)],
            None,
            false,
            "distribution: the secret without `Bearer`",
        ),
        (
            Sender::Distribution,
            vec![],
            None,
            false,
            "distribution: nothing",
        ),
        (
            Sender::Distribution,
            vec![("x-signature", &sig)],
            None,
            true,
            "distribution: the generic HMAC header",
        ),
        (
            Sender::Distribution,
            vec![("x-signature", &wrong_sig), ("authorization", &bearer)],
            None,
            false,
            "distribution: a wrong signature is not rescued by a token",
        ),
        (
            Sender::Acr,
            vec![("authorization", &bearer)],
            None,
            true,
            "acr: the bearer token",
        ),
        (
            Sender::Acr,
            vec![("authorization", "bearer nope")],
            None,
            false,
            "acr: a wrong token",
        ),
        (
            Sender::Harbor,
            vec![("authorization", &bare)],
            None,
            true,
            "harbor: the auth header verbatim",
        ),
        (
            Sender::Harbor,
            vec![("authorization", &bearer)],
            None,
            true,
            "harbor: `Bearer <secret>`",
        ),
        (
            Sender::Harbor,
            vec![("authorization", "Basic Zm9vOmJhcg==")],
            None,
            false,
            "harbor: something else",
        ),
        (Sender::Harbor, vec![], None, false, "harbor: no header"),
        (
            Sender::DockerHub,
            vec![],
            Some(&token),
            true,
            "dockerhub: sha256 of the secret in the path",
        ),
        (
            Sender::DockerHub,
            vec![],
            Some(&bare),
            false,
            "dockerhub: the secret itself is not the token",
        ),
        (
            Sender::DockerHub,
            vec![],
            Some("0000"),
            false,
            "dockerhub: a wrong token",
        ),
        (
            Sender::DockerHub,
            vec![],
            None,
            false,
            "dockerhub: no token",
        ),
        (
            Sender::DockerHub,
            vec![("authorization", &bearer)],
            None,
            false,
            "dockerhub: headers do not count",
        ),
    ];
    for (sender, hdrs, path, ok, why) in cases {
        let got = authenticate(sender, SECRET, &headers(&hdrs), path, body);
        assert_eq!(got.is_ok(), ok, "{why}: {got:?}");
        if let Err(error) = got {
            let text = error.to_string();
            assert!(
                matches!(error, NotificationError::Unauthenticated { .. }),
                "{why}"
            );
            assert!(
                !text.contains(&bare) && !text.contains(&token),
                "{why}: {text}"
            );
        }
    }
    let empty = authenticate(
        Sender::Harbor,
        b"",
        &headers(&[("authorization", "")]),
        None,
        body,
    );
    assert!(
        empty.is_err(),
        "an empty secret accepts nothing, not even an empty header"
    );
    let tampered = br#"{"events":[1]}"#;
    assert!(
        authenticate(
            Sender::GitHub,
            SECRET,
            &headers(&[("x-hub-signature-256", &sig)]),
            None,
            tampered
        )
        .is_err(),
        "github: a signature of another body"
    );
}

#[test]
fn path_token_is_sha256_hex() {
    // printf %s "abc" | sha256sum
    assert_eq!(
        path_token(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn matching() {
    let p = |registry: Option<&str>, repo: &str| pushed(registry, repo, Some("1.0.0"), None);
    let cases = [
        (
            "oci://127.0.0.1:5000/charts/app",
            p(Some("127.0.0.1:5000"), "charts/app"),
            true,
            "same host and path",
        ),
        (
            "oci://Registry.Example.com/charts/app",
            p(Some("registry.example.com"), "charts/app"),
            true,
            "hosts compare case-insensitively",
        ),
        (
            "oci://127.0.0.1:5000/charts/app",
            p(Some("127.0.0.1:5001"), "charts/app"),
            false,
            "another port is another registry",
        ),
        (
            "oci://127.0.0.1:5000/charts/app",
            p(Some("127.0.0.1:5000"), "charts/other"),
            false,
            "another repository",
        ),
        (
            "oci://127.0.0.1:5000/charts/app",
            p(Some("127.0.0.1:5000"), "charts/app/sub"),
            false,
            "a deeper path is another repository",
        ),
        (
            "oci://127.0.0.1:5000/charts/app",
            p(Some("127.0.0.1:5000"), "charts"),
            false,
            "a parent path is another repository",
        ),
        (
            "oci://127.0.0.1:5000/charts/app",
            p(None, "charts/app"),
            true,
            "a push without host matches by repository",
        ),
        (
            "oci://docker.io/library/nginx",
            p(Some("docker.io"), "library/nginx"),
            true,
            "docker hub, full path",
        ),
        (
            "oci://index.docker.io/library/nginx",
            p(Some("docker.io"), "library/nginx"),
            true,
            "index.docker.io is docker.io",
        ),
        (
            "oci://registry-1.docker.io/nginx",
            p(Some("docker.io"), "library/nginx"),
            true,
            "registry-1 alias and a one-segment name",
        ),
        (
            "oci://docker.io/nginx",
            p(Some("index.docker.io"), "nginx"),
            true,
            "one segment on both sides",
        ),
        (
            "oci://quay.io/nginx",
            p(Some("quay.io"), "library/nginx"),
            false,
            "library/ is Docker Hub's only",
        ),
        (
            "oci://ghcr.io/octo-org/charts/app",
            p(Some("ghcr.io"), "octo-org/charts/app"),
            true,
            "ghcr nested path",
        ),
        (
            "oci://ghcr.io/octo-org/charts/app:1.0.0",
            p(Some("ghcr.io"), "octo-org/charts/app"),
            false,
            "a source with a tag is not a source",
        ),
        (
            "oci://ghcr.io/octo-org/charts/app@sha256:abcd",
            p(Some("ghcr.io"), "octo-org/charts/app"),
            false,
            "a source with a digest is not a source",
        ),
        (
            "https://charts.example.com",
            p(Some("charts.example.com"), "app"),
            false,
            "a Helm repository never matches",
        ),
        (
            "oci-layout:./charts/app",
            p(None, "charts/app"),
            false,
            "a layout directory never matches",
        ),
        ("", p(None, "charts/app"), false, "an empty URL"),
        ("oci://", p(None, "charts/app"), false, "no host"),
    ];
    for (url, pushed, want, why) in cases {
        assert_eq!(matches(url, &pushed), want, "{why}: {url} vs {pushed:?}");
    }
}

//! Unit tests of the parsers and pure rules, as tables with a reason per case.

// Table rows are tuples of (input, expected, reason); naming each tuple type adds nothing.
#![allow(clippy::type_complexity)]

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use crate::*;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("upkeep-registry-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn link_header_next() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            r#"</v2/a/tags/list?n=100&last=x>; rel="next""#,
            Some("/v2/a/tags/list?n=100&last=x"),
            "distribution's relative form",
        ),
        (
            r#"<https://r.example/v2/a/tags/list?last=x>; rel="next""#,
            Some("https://r.example/v2/a/tags/list?last=x"),
            "absolute URL",
        ),
        ("</p?last=x>; rel=next", Some("/p?last=x"), "unquoted rel"),
        (
            r#"</first>; rel="prev", </second>; rel="next""#,
            Some("/second"),
            "next is not the first link",
        ),
        (
            r#"</x>; title="a, b"; rel="last next""#,
            Some("/x"),
            "several relation types and a quoted comma",
        ),
        (r#"</x>; REL="Next""#, Some("/x"), "case-insensitive"),
        (r#"</x>; rel="prev""#, None, "only prev"),
        ("", None, "empty header"),
        ("garbage", None, "no angle brackets"),
        ("<unterminated; rel=next", None, "unterminated target"),
    ];
    for (input, want, why) in cases {
        assert_eq!(parse_link_next(input).as_deref(), *want, "{why}: {input}");
    }
}

#[test]
fn www_authenticate_challenges() {
    type Want = &'static [(&'static str, &'static [(&'static str, &'static str)])];
    let cases: &[(&str, Want, &str)] = &[
        (
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
            &[(
                "bearer",
                &[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:samalba/my-app:pull,push"),
                ],
            )],
            "Docker Hub's form with a comma inside a quoted scope",
        ),
        (
            r#"Basic realm="Registry Realm""#,
            &[("basic", &[("realm", "Registry Realm")])],
            "basic with a space in the quoted realm",
        ),
        (
            "bearer realm=https://t.example/token, service=reg",
            &[(
                "bearer",
                &[("realm", "https://t.example/token"), ("service", "reg")],
            )],
            "unquoted values, lower-case scheme, spaces after commas",
        ),
        (
            r#"Basic realm="a", Bearer realm="b",scope="s""#,
            &[
                ("basic", &[("realm", "a")]),
                ("bearer", &[("realm", "b"), ("scope", "s")]),
            ],
            "two challenges in one header",
        ),
        (
            r#"Bearer realm="say \"hi\"""#,
            &[("bearer", &[("realm", r#"say "hi""#)])],
            "escaped quotes",
        ),
        (
            "Negotiate abc==",
            &[("negotiate", &[])],
            "a padded token68 is not a second scheme",
        ),
        ("", &[], "empty"),
    ];
    for (input, want, why) in cases {
        let got = parse_www_authenticate(input);
        let got: Vec<(String, Vec<(String, String)>)> =
            got.into_iter().map(|c| (c.scheme, c.params)).collect();
        let want: Vec<(String, Vec<(String, String)>)> = want
            .iter()
            .map(|(s, ps)| {
                (
                    (*s).to_owned(),
                    ps.iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(got, want, "{why}: {input}");
    }
}

#[test]
fn docker_config_host_matching() {
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let json = format!(
        r#"{{"auths": {{
            "https://index.docker.io/v1/": {{"auth": "{hub}"}},
            "registry.example:5000": {{"auth": "{ex}"}},
            "http://plain.example/": {{"username": "p", "password": "pw"}},
            "https://ghcr.io": {{"auth": "{gh}"}},
            "empty.example": {{}}
        }}}}"#,
        hub = b64("hub:hubpw"),
        ex = b64("ex:expw"),
        gh = b64("gh:gh:pw:with:colons"),
    );
    let cfg = DockerConfig::from_json(json.as_bytes(), "config.json").expect("parses");
    let cases: &[(&str, Option<(&str, &str)>, &str)] = &[
        (
            "docker.io",
            Some(("hub", "hubpw")),
            "Docker Hub alias docker.io",
        ),
        (
            "index.docker.io",
            Some(("hub", "hubpw")),
            "Docker Hub alias index.docker.io",
        ),
        (
            "registry-1.docker.io",
            Some(("hub", "hubpw")),
            "Docker Hub API host",
        ),
        (
            "registry.example:5000",
            Some(("ex", "expw")),
            "exact key with port",
        ),
        ("registry.example", None, "port matters"),
        (
            "plain.example",
            Some(("p", "pw")),
            "http:// prefix and path stripped; username/password form",
        ),
        (
            "ghcr.io",
            Some(("gh", "gh:pw:with:colons")),
            "https:// prefix; password keeps its colons",
        ),
        (
            "GHCR.IO",
            Some(("gh", "gh:pw:with:colons")),
            "host names are case-insensitive",
        ),
        ("empty.example", None, "entry without credentials"),
        ("other.example", None, "unknown host"),
    ];
    for (host, want, why) in cases {
        let got = cfg
            .lookup_auths(host)
            .map(|b| (b.username.as_str(), b.password.expose()));
        assert_eq!(got, *want, "{why}: {host}");
    }
}

#[test]
fn docker_config_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("{", "not valid Docker config JSON", "broken JSON"),
        (
            r#"{"auths": {"h": {"auth": "***"}}}"#,
            "not base64",
            "auth not base64",
        ),
        (
            r#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#,
            "no colon",
            "auth without a colon",
        ),
    ];
    for (json, want, why) in cases {
        let err = DockerConfig::from_json(json.as_bytes(), "cfg").expect_err(why);
        assert!(
            matches!(err, RegistryError::Credentials { .. }),
            "{why}: {err:?}"
        );
        assert!(err.to_string().contains(want), "{why}: {err}");
    }
}

#[test]
fn retry_after_forms() {
    let now = ts("2015-10-21T07:28:00Z");
    let cases: &[(&str, Option<u64>, &str)] = &[
        ("120", Some(120), "delay-seconds"),
        (" 5 ", Some(5), "whitespace around seconds"),
        ("0", Some(0), "zero"),
        (
            "Wed, 21 Oct 2015 07:28:30 GMT",
            Some(30),
            "HTTP-date 30 s ahead",
        ),
        (
            "Wed, 21 Oct 2015 07:27:00 GMT",
            Some(0),
            "HTTP-date in the past means now",
        ),
        ("-1", None, "negative is invalid"),
        ("soon", None, "garbage"),
        ("", None, "empty"),
    ];
    for (input, want, why) in cases {
        assert_eq!(
            parse_retry_after(input, now).map(|d| d.as_secs()),
            *want,
            "{why}: {input:?}"
        );
    }
}

#[test]
fn backoff_is_bounded_and_grows() {
    let cfg = ClientConfig {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        ..ClientConfig::default()
    };
    let cases: &[(u32, u64, Duration, &str)] = &[
        (
            1,
            u64::MAX,
            Duration::from_millis(100),
            "first retry: at most the base",
        ),
        (
            3,
            u64::MAX,
            Duration::from_millis(400),
            "doubles per attempt",
        ),
        (
            30,
            u64::MAX,
            Duration::from_secs(1),
            "capped at backoff_max, no overflow",
        ),
    ];
    for (attempt, random, max, why) in cases {
        let d = backoff(&cfg, *attempt, *random);
        assert!(d <= *max, "{why}: {d:?} > {max:?}");
        assert!(d >= Duration::from_millis(1), "{why}: never zero");
    }
    assert_eq!(
        backoff(&cfg, 2, 0),
        Duration::from_millis(1),
        "jitter can pick the floor"
    );
}

#[test]
fn helm_index_small_cases() {
    let cases: &[(&str, &str, Option<&[(&str, Option<&str>)]>, &str)] = &[
        (
            "apiVersion: v1\nentries:\n  app:\n  - version: 1.2.3\n    created: \"2016-10-06T16:23:20.499814565-06:00\"\n    urls: [a]\n  - version: 1.10\n  other:\n  - version: 9.9.9\ngenerated: x\n",
            "app",
            Some(&[
                ("1.2.3", Some("2016-10-06T22:23:20.499814565Z")),
                ("1.1", None),
            ]),
            "created with offset; unquoted 1.10 is a YAML float (Helm quotes such versions)",
        ),
        (
            "entries:\n  other:\n  - version: 1.0.0\n",
            "app",
            None,
            "chart missing",
        ),
        ("entries:\n", "app", None, "empty entries"),
        (
            "entries:\n  app:\n  - name: app\n  - version: '2.0.0'\n    created: not-a-time\n",
            "app",
            Some(&[("2.0.0", None)]),
            "entries without version skipped; bad created is unknown",
        ),
        (
            "{\"entries\": {\"app\": [{\"version\": \"0.1.0\"}]}}",
            "app",
            Some(&[("0.1.0", None)]),
            "JSON is YAML",
        ),
    ];
    for (yaml, chart, want, why) in cases {
        let got = parse_index(yaml.as_bytes(), chart).unwrap_or_else(|e| panic!("{why}: {e}"));
        let want = want.map(|w| {
            w.iter()
                .map(|(v, c)| IndexEntry {
                    version: (*v).to_owned(),
                    created: c.map(ts),
                })
                .collect::<Vec<_>>()
        });
        assert_eq!(got, want, "{why}");
    }
    for (yaml, why) in [
        ("entries: [1, 2]", "entries is a list"),
        ("- a\n- b\n", "top level is a list"),
        ("entries:\n  app: {version: 1}\n", "versions are a mapping"),
        ("entries:\n  app:\n  - version: [", "truncated"),
    ] {
        assert!(parse_index(yaml.as_bytes(), "app").is_err(), "{why}");
    }
}

#[test]
fn helm_index_large_generated() {
    use std::fmt::Write as _;
    let mut y = String::from("apiVersion: v1\nentries:\n");
    for c in 0..2000 {
        let _ = writeln!(y, "  chart{c}:");
        for v in 0..25 {
            let _ = writeln!(
                y,
                "  - apiVersion: v2\n    name: chart{c}\n    version: {v}.0.{c}\n    created: \"2024-01-{:02}T00:00:00Z\"\n    digest: abcdef\n    urls:\n    - https://example.invalid/chart{c}-{v}.tgz\n    description: \"a chart with a: colon\"",
                v % 28 + 1
            );
        }
    }
    y.push_str("generated: \"2024-02-01T00:00:00Z\"\n");
    let got = parse_index(y.as_bytes(), "chart1234")
        .expect("parses")
        .expect("chart present");
    assert_eq!(
        got.len(),
        25,
        "all versions of the chart, none of the others"
    );
    assert!(got.iter().all(|e| e.version.ends_with(".0.1234")));
    assert_eq!(got[3].created, Some(ts("2024-01-04T00:00:00Z")));
}

#[test]
fn locations() {
    let ok: &[(&str, Option<&str>, bool, Location, &str)] = &[
        (
            "oci://ghcr.io/org/charts/app",
            None,
            false,
            Location::Oci {
                host: "ghcr.io".into(),
                repository: "org/charts/app".into(),
            },
            "nested path",
        ),
        (
            "oci://Localhost:5000/app/",
            None,
            false,
            Location::Oci {
                host: "localhost:5000".into(),
                repository: "app".into(),
            },
            "port, host case folded, trailing slash",
        ),
        (
            "oci-layout:./charts/app",
            None,
            false,
            Location::Layout {
                dir: "./charts/app".into(),
            },
            "relative layout",
        ),
        (
            "http://charts.local/repo",
            Some("app"),
            true,
            Location::Helm {
                url: url::Url::parse("http://charts.local/repo").expect("url"),
                chart: "app".into(),
            },
            "plain HTTP when insecure",
        ),
    ];
    for (loc, chart, insecure, want, why) in ok {
        assert_eq!(
            Location::parse(loc, *chart, *insecure).as_ref().ok(),
            Some(want),
            "{why}"
        );
    }
    let bad: &[(&str, Option<&str>, bool, &str, &str)] = &[
        ("oci://ghcr.io", None, false, "no repository", "host only"),
        (
            "oci://ghcr.io/app:1.0",
            None,
            false,
            "tag or digest",
            "tag in the path",
        ),
        (
            "oci://ghcr.io/App",
            None,
            false,
            "lower-case",
            "upper case repository",
        ),
        (
            "oci://ghcr.io/a//b",
            None,
            false,
            "segment",
            "empty segment",
        ),
        (
            "https://charts.example",
            None,
            false,
            "chart name",
            "Helm without chart",
        ),
        (
            "http://charts.example",
            Some("a"),
            false,
            "plain HTTP",
            "http without insecure",
        ),
        ("ftp://x/y", None, false, "unknown scheme", "unknown scheme"),
        ("oci-layout:", None, false, "directory", "empty layout"),
        (
            "https://u:hunter2@charts.example",
            Some("a"),
            false,
            "credentials in the URL",
            "userinfo refused",
        ),
        (
            "oci://u:hunter2@ghcr.io/org/app",
            None,
            false,
            "credentials in the URL",
            "OCI userinfo refused as such, not as a bad host that is then quoted",
        ),
        (
            "oci://u:hun/ter2@ghcr.io/org/app",
            None,
            false,
            "credentials in the URL",
            "a raw / in an OCI password",
        ),
        (
            "https://u:hun ter2@charts.example",
            Some("a"),
            false,
            "credentials in the URL",
            "a password the URL parser rejects is still recognised as one",
        ),
        (
            "oci://ghcr.io/org/app:1.0?token=hunter2",
            None,
            false,
            "tag or digest",
            "a query token in an invalid OCI location",
        ),
    ];
    for (loc, chart, insecure, want, why) in bad {
        let err = Location::parse(loc, *chart, *insecure).expect_err(why);
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(shown.contains(want), "{why}: {shown}");
            for part in ["hunter2", "ter2"] {
                assert!(!shown.contains(part), "{why}: secret in {shown}");
            }
        }
        assert!(err.hint().is_some(), "{why}: has a hint");
    }
}

#[test]
fn layout_helpers() {
    let refs: &[(&str, (Option<&str>, &str), &str)] = &[
        ("1.0.0", (None, "1.0.0"), "bare tag"),
        ("app:1.0.0", (Some("app"), "1.0.0"), "name:tag"),
        (
            "localhost:5000/x/app:1.0",
            (Some("localhost:5000/x/app"), "1.0"),
            "full reference with port",
        ),
        (
            "localhost:5000/x/app",
            (None, "localhost:5000/x/app"),
            "a port is not a tag",
        ),
    ];
    for (r, want, why) in refs {
        assert_eq!(split_ref_name(r), *want, "{why}");
    }
    let dir = std::path::Path::new("/d");
    let hex = "a".repeat(64);
    let digests: &[(String, bool, &str)] = &[
        (format!("sha256:{hex}"), true, "normal digest"),
        (format!("sha256:../../{hex}"), false, "traversal in hex"),
        (format!("../sha256:{hex}"), false, "traversal in algorithm"),
        ("sha256:abc".to_owned(), false, "too short"),
        (hex.clone(), false, "no algorithm"),
    ];
    for (d, ok, why) in digests {
        let p = blob_path(dir, d);
        assert_eq!(p.is_some(), *ok, "{why}");
        if let Some(p) = p {
            assert!(p.starts_with(dir), "{why}: stays inside");
        }
    }
}

fn write_layout(dir: &std::path::Path) {
    let hex_a = "a".repeat(64);
    let hex_b = "b".repeat(64);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(
        dir.join("blobs/sha256").join(&hex_b),
        r#"{"schemaVersion":2,"annotations":{"org.opencontainers.image.created":"2023-05-06T07:08:09Z"}}"#,
    )
    .expect("write");
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[
          {{"digest":"sha256:{hex_a}","annotations":{{"org.opencontainers.image.ref.name":"1.0.0","org.opencontainers.image.created":"2022-01-01T00:00:00Z"}}}},
          {{"digest":"sha256:{hex_b}","annotations":{{"org.opencontainers.image.ref.name":"app:1.1.0"}}}},
          {{"digest":"sha256:../../../etc/passwd","annotations":{{"org.opencontainers.image.ref.name":"1.2.0"}}}},
          {{"digest":"sha256:{hex_a}","annotations":{{"org.opencontainers.image.ref.name":"sha256-x.sig"}}}},
          {{"digest":"sha256:{hex_a}","annotations":{{"org.opencontainers.image.ref.name":"other:9.0.0"}}}},
          {{"digest":"sha256:{hex_a}"}}
        ]}}"#
    );
    std::fs::write(dir.join("index.json"), index).expect("write");
}

#[tokio::test]
async fn oci_layout_directory() {
    let tmp = TempDir::new("layout");
    write_layout(&tmp.0);
    let client = Client::default();
    let src = Source::new(
        &client,
        &format!("oci-layout:{}", tmp.0.display()),
        Some("app"),
        SourceOptions::default(),
        &Credentials::Anonymous,
    )
    .expect("source");
    let list = src.list_tags().await.expect("lists");
    let got: Vec<(&str, Option<String>)> = list
        .tags
        .iter()
        .map(|t| (t.name.as_str(), t.created.map(|c| c.to_string())))
        .collect();
    assert_eq!(
        got,
        [
            ("1.0.0", Some("2022-01-01T00:00:00Z".to_owned())),
            ("1.1.0", Some("2023-05-06T07:08:09Z".to_owned())),
            ("1.2.0", None),
        ],
        "descriptor created, manifest-blob created, unsafe digest gives no created; other chart filtered"
    );
    assert_eq!(list.excluded, 1, ".sig excluded");

    // A relative path resolves against base_dir; a directory without `oci-layout` is an Io error.
    let rel = Source::new(
        &client,
        "oci-layout:missing",
        None,
        SourceOptions {
            base_dir: Some(tmp.0.clone()),
            ..SourceOptions::default()
        },
        &Credentials::Anonymous,
    )
    .expect("source");
    let err = rel.list_tags().await.expect_err("no layout there");
    assert!(matches!(err, RegistryError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("not an OCI image layout"), "{err}");
}

#[test]
fn bad_exclusion_is_an_option_error() {
    let err = Source::new(
        &Client::default(),
        "oci-layout:x",
        None,
        SourceOptions {
            exclusions: vec!["(".to_owned()],
            ..SourceOptions::default()
        },
        &Credentials::Anonymous,
    )
    .expect_err("bad regex");
    assert!(
        matches!(err, RegistryError::InvalidOption { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains('('), "{err}");
    assert!(err.hint().is_some());
}

#[test]
fn first_seen_merge_rules() {
    let now = ts("2024-06-01T00:00:00Z");
    let earlier = ts("2024-05-01T00:00:00Z");
    let created = ts("2024-04-01T00:00:00Z");
    let future = ts("2030-01-01T00:00:00Z");
    let store = MemoryFirstSeen::new();
    store
        .record_many("src", &[("known", earlier), ("known-created", earlier)])
        .expect("infallible");
    let list = TagList {
        tags: vec![
            Tag {
                name: "new".into(),
                created: None,
            },
            Tag {
                name: "known".into(),
                created: None,
            },
            Tag {
                name: "new-created".into(),
                created: Some(created),
            },
            Tag {
                name: "known-created".into(),
                created: Some(created),
            },
            Tag {
                name: "future-created".into(),
                created: Some(future),
            },
        ],
        excluded: 0,
        pages: 1,
    };
    let cases: &[(&str, Timestamp, &str)] = &[
        ("new", now, "never seen: first seen now"),
        ("known", earlier, "seen before: the record stands"),
        ("new-created", created, "created annotation wins over now"),
        (
            "known-created",
            created,
            "created annotation wins over a later record",
        ),
        (
            "future-created",
            now,
            "a created time in the future is not trusted",
        ),
    ];
    let merged = merge_first_seen(&store, "src", &list, now).expect("infallible");
    let again = merge_first_seen(&store, "src", &list, ts("2024-07-01T00:00:00Z")).expect("ok");
    for (tag, want, why) in cases {
        let got = merged.iter().find(|s| s.tag == *tag).map(|s| s.first_seen);
        assert_eq!(got, Some(*want), "{why}");
        let later = again.iter().find(|s| s.tag == *tag).map(|s| s.first_seen);
        assert_eq!(later, Some(*want), "{why} (stable on the next scan)");
    }
    let infos = tag_infos(&merged);
    assert_eq!(infos.len(), 5);
    assert_eq!(infos[0].tag, "new");
    assert_eq!(infos[0].first_seen, Some(now));
    let other = TagList {
        tags: vec![Tag {
            name: "x".into(),
            created: None,
        }],
        ..TagList::default()
    };
    assert_eq!(
        unseen(&store, "src", &other).expect("ok"),
        ["x"],
        "unknown tags are unseen"
    );
    assert_eq!(
        unseen(&store, "other-source", &list).expect("ok").len(),
        5,
        "keys are per source"
    );
}

#[test]
fn secrets_never_in_errors_or_debug() {
    const SECRET: &str = "s3cr3t-P4ssw0rd";
    let basic = BasicAuth::new("user", SECRET);
    let cfg = DockerConfig::from_json(
        format!(r#"{{"auths":{{"h":{{"username":"u","password":"{SECRET}"}}}}}}"#).as_bytes(),
        "cfg",
    )
    .expect("parses");
    let s = || "srv".to_owned();
    let r = || "GET https://srv/v2/x/tags/list".to_owned();
    let errors = vec![
        RegistryError::Unauthorized {
            server: s(),
            request: r(),
            detail: String::new(),
        },
        RegistryError::Forbidden {
            server: s(),
            request: r(),
            detail: "denied".into(),
        },
        RegistryError::NotFound {
            server: s(),
            request: r(),
            detail: String::new(),
        },
        RegistryError::RateLimited {
            server: s(),
            request: r(),
            retry_after: Some(Duration::from_secs(3)),
        },
        RegistryError::Timeout {
            server: s(),
            request: r(),
            after: Duration::from_millis(1500),
        },
        RegistryError::Connect {
            server: s(),
            request: r(),
            detail: "refused".into(),
        },
        RegistryError::Tls {
            server: s(),
            request: r(),
            detail: "unknown issuer".into(),
        },
        RegistryError::Status {
            server: s(),
            request: r(),
            status: 502,
            detail: String::new(),
        },
        RegistryError::InvalidResponse {
            server: s(),
            request: r(),
            detail: "x".into(),
        },
        RegistryError::TooLarge {
            server: s(),
            request: r(),
            limit: 10,
            unit: "bytes",
        },
        RegistryError::InvalidLocation {
            location: upkeep_core::redact::redact(&format!("https://u:{SECRET}@h/x")).into_owned(),
            detail: "d".into(),
        },
        RegistryError::InvalidOption {
            option: "o".into(),
            detail: "d".into(),
        },
        RegistryError::Credentials {
            path: "p".into(),
            detail: "d".into(),
        },
        RegistryError::CredentialHelper {
            helper: "pass".into(),
            server: s(),
            detail: "`docker-credential-pass` not found on PATH".into(),
        },
        RegistryError::Io {
            path: "/x".into(),
            detail: "d".into(),
        },
    ];
    let mut texts = vec![
        format!("{basic:?}"),
        format!("{:?}", Secret::new(SECRET)),
        format!("{:?}", Credentials::Basic(basic.clone())),
        format!("{cfg:?}"),
        format!(
            "{:?}",
            Credentials::DockerConfig(std::sync::Arc::new(cfg.clone()))
        ),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for e in &errors {
        assert!(
            kinds.insert(e.kind()),
            "kind names are distinct: {}",
            e.kind()
        );
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
        texts.extend(e.hint());
    }
    for t in &texts {
        assert!(!t.contains(SECRET), "secret leaked in `{t}`");
    }
    assert!(
        texts.iter().any(|t| t.contains("<redacted>")),
        "redaction is visible"
    );
    assert_eq!(kinds.len(), 15, "every variant formatted");
}

#[tokio::test]
async fn credential_helpers() {
    let tmp = TempDir::new("helpers");
    let write_helper = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        let p = tmp.0.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write helper");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    write_helper(
        "good",
        r#"read server; [ "$1" = get ] || exit 3; printf '{"ServerURL":"%s","Username":"u-%s","Secret":"helper-s3cret"}' "$server" "$server""#,
    );
    write_helper(
        "none",
        r#"echo "credentials not found in native keychain"; exit 1"#,
    );
    write_helper("broken", r#"echo "boom: keyring locked" >&2; exit 2"#);
    write_helper("garbage", r#"echo "not json""#);
    let cfg = |helpers: &str, store: &str| {
        let json = format!(
            r#"{{"auths":{{"fallback.example":{{"username":"fb","password":"fbpw"}}}},"credHelpers":{{{helpers}}}{store}}}"#
        );
        Credentials::DockerConfig(std::sync::Arc::new(
            DockerConfig::from_json(json.as_bytes(), "cfg")
                .expect("parses")
                .with_helper_dir(&tmp.0),
        ))
    };
    let t = Duration::from_secs(10);
    let cases: &[(Credentials, &str, Result<Option<&str>, &str>, &str)] = &[
        (
            cfg(r#""reg.example":"good""#, ""),
            "reg.example",
            Ok(Some("u-reg.example")),
            "credHelpers entry runs the helper with the host on stdin",
        ),
        (
            cfg("", r#","credsStore":"good""#),
            "docker.io",
            Ok(Some("u-https://index.docker.io/v1/")),
            "credsStore; Docker Hub is asked as its v1 URL",
        ),
        (
            cfg(r#""fallback.example":"none""#, ""),
            "fallback.example",
            Ok(Some("fb")),
            "helper has nothing: fall back to auths",
        ),
        (
            cfg(r#""x.example":"none""#, ""),
            "x.example",
            Ok(None),
            "helper has nothing and no auths: anonymous",
        ),
        (
            cfg(r#""x.example":"missing""#, ""),
            "x.example",
            Err("docker-credential-missing` not found"),
            "missing helper is named",
        ),
        (
            cfg(r#""x.example":"broken""#, ""),
            "x.example",
            Err("keyring locked"),
            "failing helper's message is kept",
        ),
        (
            cfg(r#""x.example":"garbage""#, ""),
            "x.example",
            Err("did not print"),
            "bad helper output",
        ),
        (
            cfg(r#""x.example":"../evil""#, ""),
            "x.example",
            Err("plain name"),
            "helper names cannot be paths",
        ),
        (
            cfg(r#""x.example":"good""#, ""),
            "other.example",
            Ok(None),
            "helper only for its host",
        ),
    ];
    for (creds, host, want, why) in cases {
        let got = creds.resolve(host, t).await;
        match (got, want) {
            (Ok(b), Ok(w)) => assert_eq!(b.as_ref().map(|b| b.username.as_str()), *w, "{why}"),
            (Err(e), Err(w)) => {
                assert!(
                    matches!(e, RegistryError::CredentialHelper { .. }),
                    "{why}: {e:?}"
                );
                assert!(e.to_string().contains(w), "{why}: {e}");
                assert!(!e.to_string().contains("helper-s3cret"), "{why}");
            }
            (got, want) => panic!("{why}: got {got:?}, want {want:?}"),
        }
    }
    let missing = cfg(r#""x.example":"missing""#, "")
        .resolve("x.example", t)
        .await
        .expect_err("missing");
    assert!(
        missing.hint().unwrap_or_default().contains("install"),
        "{missing:?}"
    );
}

#[test]
fn sources_are_send_and_sync_and_docker_hub_maps_to_its_api_host() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<Source>();
    assert_sync::<Client>();
    let src = Source::new(
        &Client::default(),
        "oci://docker.io/bitnamicharts/nginx",
        None,
        SourceOptions::default(),
        &Credentials::Anonymous,
    )
    .expect("source");
    // The listing future must be spawnable on a multi-threaded runtime (controller, scan).
    let fut = src.list_tags();
    assert_send(&fut);
    drop(fut);
    assert_eq!(
        src.host().as_deref(),
        Some("registry-1.docker.io"),
        "Docker Hub API host"
    );
    assert_eq!(
        src.key(),
        "oci://docker.io/bitnamicharts/nginx",
        "key keeps the user's name"
    );
}

#[test]
fn error_bodies_are_bounded_sanitised_and_redacted() {
    let long = format!(
        r#"{{"errors":[{{"code":"DENIED","message":"{}"}}]}}"#,
        "x".repeat(10_000)
    );
    let cases: &[(&[u8], &[&str], &str, &str)] = &[
        (
            br#"{"errors":[{"code":"DENIED","message":"you sent Authorization: Basic dXNlcjpodW50ZXIy"}]}"#,
            &[],
            "DENIED: you sent Authorization: Basic <redacted>",
            "a registry that echoes the Authorization header",
        ),
        (
            br#"{"errors":[{"code":"DENIED","message":"password hunter2 is wrong"}]}"#,
            &["hunter2"],
            "DENIED: password <redacted> is wrong",
            "the password upkeep sent, echoed in a form no pattern knows",
        ),
        (
            b"{\"errors\":[{\"code\":\"X\",\"message\":\"line1\\nline2\\u001b[31m\"}]}",
            &[],
            "X: line1 line2 [31m",
            "one line, no terminal escapes",
        ),
        (
            b"<html>401 Authorization: Basic dXNlcjpodW50ZXIy</html>",
            &[],
            "",
            "a body in another format is not quoted at all",
        ),
    ];
    for (body, known, want, why) in cases {
        assert_eq!(crate::transport::error_message(body, known), *want, "{why}");
    }
    let cut = crate::transport::error_message(long.as_bytes(), &[]);
    assert_eq!(cut.chars().count(), 301, "bounded, with an ellipsis: {cut}");
}

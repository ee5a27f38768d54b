use super::*;

/// (input, expected output, why)
type Case = (&'static str, &'static str, &'static str);

fn check(cases: &[Case]) {
    for (input, want, why) in cases {
        let got = redact(input);
        assert_eq!(got, *want, "{why}\n input: {input}");
        assert_eq!(
            redact(&got),
            got,
            "{why}: redacting twice changes nothing\n input: {input}"
        );
    }
}

#[test]
fn url_userinfo() {
    check(&[
        (
            "https://user:s3cret@host/org/x.git",
            "https://user:<redacted>@host/org/x.git",
            "the password goes, the user name stays to help reading the error",
        ),
        (
            "oci://user:PASSWD1@127.0.0.1:5000/x/podinfo",
            "oci://user:<redacted>@127.0.0.1:5000/x/podinfo",
            "oci:// is not a URL to the url crate, but its userinfo is still a password",
        ),
        (
            "git+ssh://git:hunter2@example.com/org/repo",
            "git+ssh://git:<redacted>@example.com/org/repo",
            "a compound scheme",
        ),
        (
            "error: cannot reach https://u:pw@host/x.",
            "error: cannot reach https://u:<redacted>@host/x.",
            "a URL at the end of a sentence keeps its full stop",
        ),
        (
            "source `oci://u:p4ss@h/c` failed",
            "source `oci://u:<redacted>@h/c` failed",
            "in backquotes",
        ),
        (
            r#"{"url":"https://u:pw@h/x","n":1}"#,
            r#"{"url":"https://u:<redacted>@h/x","n":1}"#,
            "inside a JSON string: the quote ends the URL and the JSON stays valid",
        ),
        (
            "(see 'http://a:b@c/d')",
            "(see 'http://a:<redacted>@c/d')",
            "in single quotes and parentheses",
        ),
        (
            "https://user:p%40ss%2Fword@host/x",
            "https://user:<redacted>@host/x",
            "a percent-encoded @ and / stay inside the password",
        ),
        (
            "https://user:p@ss@host/x",
            "https://user:<redacted>@host/x",
            "a raw @ in the password: the last @ of the authority ends the userinfo",
        ),
        (
            "https://user:pa/ss@host/x",
            "https://user:<redacted>@host/x",
            "a raw / in the password: a non-numeric port means the userinfo goes on",
        ),
        (
            "http://u:pw@[::1]:8080/x",
            "http://u:<redacted>@[::1]:8080/x",
            "an IPv6 host keeps its brackets and port",
        ),
        (
            "http://[::1]:8080/a@b",
            "http://[::1]:8080/a@b",
            "an IPv6 host with an @ in the path: no userinfo",
        ),
        (
            "https://host:8080/@scope/pkg",
            "https://host:8080/@scope/pkg",
            "an @ in the path after a numeric port is not userinfo",
        ),
        (
            "https://host/a@b:c",
            "https://host/a@b:c",
            "an @ in the path is not userinfo",
        ),
        (
            "ssh://git@host/org/x.git",
            "ssh://git@host/org/x.git",
            "a bare user name is no secret",
        ),
        (
            "https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r",
            "https://<redacted>@github.com/o/r",
            "a token used as the user name (GitHub allows it)",
        ),
        (
            "https://3f2a9c1b7e6d5a4f3e2d1c0b9a8f7e6d5c4b3a29@gitea.example/o/r.git",
            "https://<redacted>@gitea.example/o/r.git",
            "a 40-hex Gitea token as the user name: long, letters and digits",
        ),
        (
            "https://x-access-token:ghs_abcdefghijklmnop1234@github.com/o/r",
            "https://x-access-token:<redacted>@github.com/o/r",
            "GitHub App style: the user name is a fixed word, the password the token",
        ),
        (
            "https://oauth2:glpat-abcdefghij123456@gitlab.example/g/p.git",
            "https://oauth2:<redacted>@gitlab.example/g/p.git",
            "GitLab style",
        ),
        (
            "https://user:@host/x",
            "https://user:@host/x",
            "an empty password has nothing to hide",
        ),
        (
            "a=https://u:p1@h/x?next=https://v:p2@k/y",
            "a=https://u:<redacted>@h/x?next=https://v:<redacted>@k/y",
            "two URLs in one word",
        ),
        (
            "HTTPS://User:Pw@Host/x",
            "HTTPS://User:<redacted>@Host/x",
            "scheme case does not matter",
        ),
    ]);
}

#[test]
fn userinfo_without_a_scheme() {
    check(&[
        (
            "`user:PASSWD1@127.0.0.1:1` is not a registry host",
            "`user:<redacted>@127.0.0.1:1` is not a registry host",
            "a host split off an oci:// URL still carries the password",
        ),
        (
            "user:pass@host:org/repo.git",
            "user:<redacted>@host:org/repo.git",
            "scp-like remote with a password",
        ),
        (
            "git@github.com:org/repo.git",
            "git@github.com:org/repo.git",
            "the usual scp-like remote has no password",
        ),
        (
            "url=user:pw@host/x",
            "url=user:<redacted>@host/x",
            "after `=`",
        ),
        (
            "image nginx:1.25@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "image nginx:1.25@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "an image reference with a digest is not userinfo",
        ),
        (
            "ghcr.io/org/chart:1.0@sha256:abc",
            "ghcr.io/org/chart:1.0@sha256:abc",
            "a / before the @: a path, not userinfo",
        ),
        (
            "upkeep <upkeep@example.com>",
            "upkeep <upkeep@example.com>",
            "an e-mail address has no password",
        ),
        (
            "mailto:someone@example.com",
            "mailto:someone@example.com",
            "mailto: is a scheme, not a user",
        ),
    ]);
}

#[test]
fn secret_parameters() {
    check(&[
        (
            "GET https://charts.example/index.yaml?token=TOKQ1",
            "GET https://charts.example/index.yaml?token=<redacted>",
            "?token= in a query",
        ),
        (
            "https://h/x?a=1&access_token=abc&b=2",
            "https://h/x?a=1&access_token=<redacted>&b=2",
            "other parameters stay",
        ),
        (
            "https://acct.blob.core.windows.net/c/b?sv=2021-08-06&se=2026-01-01&sp=r&sig=abc%2Bdef%3D",
            "https://acct.blob.core.windows.net/c/b?sv=2021-08-06&se=2026-01-01&sp=r&sig=<redacted>",
            "an Azure SAS signature (a short name, only inside a URL)",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA1%2F2026&X-Amz-Signature=deadbeef&X-Amz-Security-Token=zzz",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=<redacted>&X-Amz-Signature=<redacted>&X-Amz-Security-Token=<redacted>",
            "an S3 pre-signed URL",
        ),
        (
            "https://h/cb#access_token=abc123&token_type=bearer",
            "https://h/cb#access_token=<redacted>&token_type=bearer",
            "a token in the fragment (OAuth implicit flow); token_type names no secret",
        ),
        (
            "https://h/x?password=hunter2.",
            "https://h/x?password=<redacted>.",
            "end of sentence",
        ),
        (
            "https://h/x?key=AIzaSyA1234",
            "https://h/x?key=<redacted>",
            "`key` inside a URL",
        ),
        (
            "retry with --password=hunter2 or client_secret=abc",
            "retry with --password=<redacted> or client_secret=<redacted>",
            "strong names in free text",
        ),
        (
            "key=upkeep.dev/stage code=200",
            "key=upkeep.dev/stage code=200",
            "short names outside a URL are ordinary words",
        ),
        (
            "secretRef=regcred tokenFile=/var/run/token passwordPath=/x",
            "secretRef=regcred tokenFile=/var/run/token passwordPath=/x",
            "names of where a secret is kept are not the secret",
        ),
        (
            "flux-system/vault-token=1.2.0, flux-system/sealed-secrets=2.15.0",
            "flux-system/vault-token=1.2.0, flux-system/sealed-secrets=2.15.0",
            "`policy=version` in upkeep's own tables: after a `/` it is no parameter",
        ),
        (
            "sealed-secrets=2.15.0 external-secrets=0.9.0 tokens=3",
            "sealed-secrets=2.15.0 external-secrets=0.9.0 tokens=3",
            "plurals and chart names are not secrets",
        ),
        (
            "X-Api-Key=abc secret_id=def",
            "X-Api-Key=<redacted> secret_id=<redacted>",
            "names whose last two words make the secret",
        ),
        (
            "https://h/x?access%5Ftoken=abc",
            "https://h/x?access%5Ftoken=<redacted>",
            "a percent-encoded name",
        ),
        (
            "oci-layout:./dir?token=abc",
            "oci-layout:./dir?token=<redacted>",
            "no scheme with //",
        ),
    ]);
}

#[test]
fn headers_and_schemes() {
    check(&[
        (
            "you sent Authorization: Basic dXNlcjpodW50ZXIy",
            "you sent Authorization: Basic <redacted>",
            "an echoed Authorization header keeps its scheme",
        ),
        (
            "Authorization: Bearer abc\nNext: x",
            "Authorization: Bearer <redacted>\nNext: x",
            "only up to the end of the line, even for a short token",
        ),
        (
            r#"{"headers":{"authorization":["Bearer abc"],"accept":["*/*"]}}"#,
            r#"{"headers":{"authorization":["Bearer <redacted>"],"accept":["*/*"]}}"#,
            "Go's http.Header as JSON",
        ),
        (
            "map[Authorization:[token abcd] Accept:[x]]",
            "map[Authorization:[token <redacted>] Accept:[x]]",
            "Go's http.Header printed with %v",
        ),
        (
            "Private-Token: glpat-xyz",
            "Private-Token: <redacted>",
            "GitLab's token header without a scheme",
        ),
        (
            "Proxy-Authorization: Basic Zm9vOmJhcg==",
            "Proxy-Authorization: Basic <redacted>",
            "proxy credentials",
        ),
        (
            "Cookie: session=abc; theme=dark",
            "Cookie: <redacted>",
            "a Cookie header goes whole",
        ),
        (
            "401 Authorization Required",
            "401 Authorization Required",
            "nginx's page title: no header value",
        ),
        (
            "failed: bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl was refused",
            "failed: bearer <redacted> was refused",
            "a bearer token in prose",
        ),
        (
            r#"WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry""#,
            r#"WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry""#,
            "a Bearer challenge carries no credential",
        ),
        (
            "uses a Bearer token or Basic auth",
            "uses a Bearer token or Basic auth",
            "the words themselves are not credentials",
        ),
        (
            "Basic dXNlcjpodW50ZXIy",
            "Basic <redacted>",
            "base64 of user:password in prose",
        ),
        (
            "Basic realm=\"registry\"",
            "Basic realm=\"registry\"",
            "a Basic challenge",
        ),
    ]);
}

#[test]
fn json_members_and_known_tokens() {
    check(&[
        (
            r#"{"auths":{"h":{"auth":"dXNlcjpwdw=="}}}"#,
            r#"{"auths":{"h":{"auth":"<redacted>"}}}"#,
            "Docker's config.json",
        ),
        (
            r#"{"token": "abc", "expires_in": 300, "access_token":"def"}"#,
            r#"{"token": "<redacted>", "expires_in": 300, "access_token":"<redacted>"}"#,
            "a token endpoint's answer",
        ),
        (
            r#"{"password":"a\"b","user":"u"}"#,
            r#"{"password":"<redacted>","user":"u"}"#,
            "an escaped quote inside the value",
        ),
        (
            r#"{"secretRef":{"name":"regcred"},"key":"oci://h/x"}"#,
            r#"{"secretRef":{"name":"regcred"},"key":"oci://h/x"}"#,
            "upkeep's own JSON: a Secret's name and a source key are not secrets",
        ),
        (
            r#"{"sealed-secrets": "2.15.0", "flux-system/vault-token": "1.0.0"}"#,
            r#"{"sealed-secrets": "2.15.0", "flux-system/vault-token": "1.0.0"}"#,
            "policy names as keys (observedPolicies)",
        ),
        (
            r#"{"identitytoken":"abc","registrytoken":"def"}"#,
            r#"{"identitytoken":"<redacted>","registrytoken":"<redacted>"}"#,
            "Docker's other config.json secrets",
        ),
        (
            "token ghp_abcdefghij1234567890 expired",
            "token <redacted> expired",
            "a GitHub token anywhere",
        ),
        (
            "xghp_abcdefghij1234567890",
            "xghp_abcdefghij1234567890",
            "a prefix inside a longer word is not a token start",
        ),
        (
            "token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1cGtlZXAifQ.sig-nat_ure",
            "token: <redacted>",
            "a JWT",
        ),
    ]);
}

#[test]
fn text_without_secrets_is_unchanged_and_borrowed() {
    let inputs = [
        "",
        "6.5.4 → 6.7.0-rc.2 (minor) held: window closed until 2026-11-22T02:00Z",
        "oci://ghcr.io/stefanprodan/charts/podinfo: 42 tags",
        r#"{"$upkeep": "flux-system:podinfo"}"#,
        "apps/dev/podinfo.yaml:12: version: 6.5.4 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}",
        "commit 2edcd71 by upkeep <upkeep@example.com>",
        "ünïcödé ✓ text with = and @ and : in it",
    ];
    for input in inputs {
        assert!(
            matches!(redact(input), Cow::Borrowed(_)),
            "unchanged: {input}"
        );
    }
}

#[test]
fn known_secrets_are_replaced_verbatim() {
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "bad request; you sent user:pw-plain",
            &["pw-plain"],
            "bad request; you sent user:<redacted>",
            "an echo no pattern recognises",
        ),
        (
            "abcdef and abc",
            &["abc", "abcdef"],
            "<redacted> and <redacted>",
            "the longer secret first",
        ),
        (
            "nothing here",
            &[""],
            "nothing here",
            "an empty secret is ignored",
        ),
    ];
    for (input, secrets, want, why) in cases {
        assert_eq!(redact_known(input, secrets), *want, "{why}");
    }
}

#[test]
fn excerpts_are_bounded_one_line_and_redacted() {
    // The cut falls inside the credential: 40 + 21 + 4 characters.
    let long = format!("{}Authorization: Basic dXNlcjpodW50ZXIy", "x ".repeat(20));
    let cases: &[(&[u8], usize, &str, &str)] = &[
        (
            b"{\"message\":\n  \"Bad\"}\r\n",
            200,
            "{\"message\": \"Bad\"}",
            "newlines and indentation collapse",
        ),
        (b"", 200, "", "an empty body"),
        (b"abcdef", 3, "abc\u{2026}", "cut and marked"),
        (
            b"a\x1b[31mred\x00\x07b",
            200,
            "a [31mred b",
            "control characters go (no terminal escapes reach a log)",
        ),
        (
            "a\u{202E}b\u{200B}c".as_bytes(),
            200,
            "abc",
            "bidi overrides and zero-width spaces go",
        ),
        (
            b"denied: Authorization: Basic dXNlcjpodW50ZXIy\nnext",
            200,
            "denied: Authorization: Basic <redacted> next",
            "an echoed header",
        ),
        (
            long.as_bytes(),
            65,
            "x x x x x x x x x x x x x x x x x x x x Authorization: Basic <red\u{2026}",
            "redacted before cutting: no prefix of the secret survives the cut",
        ),
        (
            b"\xff\xfeb\x00a\x00d\x00",
            200,
            "\u{fffd}\u{fffd}b a d",
            "invalid UTF-8 and NUL bytes",
        ),
    ];
    for (body, max, want, why) in cases {
        assert_eq!(excerpt(body, *max), *want, "{why}");
    }
    let huge = vec![b'a'; 10 << 20];
    assert_eq!(
        excerpt(&huge, 10).chars().count(),
        11,
        "a huge body: the cap and the ellipsis"
    );
    assert_eq!(
        excerpt_with(
            b"{\"message\":\"you sent user:pw-plain\"}",
            200,
            &["pw-plain"]
        ),
        "{\"message\":\"you sent user:<redacted>\"}",
        "a known secret in an excerpt"
    );
}

#[test]
fn secret_names() {
    let cases = [
        ("token", false, true, "the plain word"),
        ("access_token", false, true, "OAuth"),
        ("X-Amz-Signature", false, true, "S3"),
        ("apiKey", false, true, "camel case"),
        ("sig", true, true, "short names in a URL"),
        ("sig", false, false, "short names elsewhere"),
        ("secretRef", false, false, "a reference"),
        ("token_type", false, false, "a type"),
        ("expires_in", false, false, "a lifetime"),
        ("author", true, false, "not `auth`"),
        ("sealed-secrets", false, false, "a chart, not a secret"),
        ("passwordHash", false, false, "the last word decides"),
        ("monkey", true, false, "not `key`"),
        ("", true, false, "nothing"),
    ];
    for (name, in_url, want, why) in cases {
        assert_eq!(is_secret_name(name, in_url), want, "{name}: {why}");
    }
}

#[test]
fn adversarial_input_is_linear() {
    // Shapes that make naive scanners quadratic: many `://`, many `=`, many quotes, many `@`.
    // Not a timing assertion: the result is checked, and a quadratic scan of these 1 MiB
    // inputs would not finish in the test's lifetime.
    for unit in [
        "a://", "a=", "\"", "u:p@", "Bearer ", "eyJ", "ghp_", "[:", "\"a\":",
    ] {
        let input = unit.repeat((1 << 20) / unit.len());
        let once = redact(&input).into_owned();
        assert_eq!(
            redact(&once),
            once,
            "{unit}: redacting twice changes nothing"
        );
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Text around a planted secret: words, punctuation and the delimiters the scanner knows.
    fn filler() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                "[a-z]{1,6}".prop_map(|s| s),
                Just(" ".to_owned()),
                Just("\n".to_owned()),
                Just(": ".to_owned()),
                Just(", ".to_owned()),
                Just(". ".to_owned()),
                Just("\"".to_owned()),
                Just("`".to_owned()),
                Just("(".to_owned()),
                Just(")".to_owned()),
                Just("{".to_owned()),
                Just("=".to_owned()),
                Just("@".to_owned()),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    /// A delimiter that may separate the filler from the secret's carrier.
    fn gap() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just(" "),
            Just("\n"),
            Just("\""),
            Just("'"),
            Just("`"),
            Just("("),
            Just("<"),
            Just(", "),
        ]
    }

    /// Where a secret `s` may be carried.
    fn carrier(s: &str, shape: u8) -> String {
        match shape % 9 {
            0 => format!("https://user:{s}@host.example/x"),
            1 => format!("oci://u:{s}@127.0.0.1:5000/charts/c"),
            2 => format!("u:{s}@[::1]:22"),
            3 => format!("https://h/index.yaml?a=1&token={s}&b=2"),
            4 => format!("http://h/x?sig={s}"),
            5 => format!("Authorization: Basic {s}"),
            6 => format!("Authorization: Bearer {s}"),
            7 => format!("{{\"password\": \"{s}\"}}"),
            _ => format!("access_token={s}"),
        }
    }

    proptest! {
        #[test]
        fn a_planted_secret_never_survives(
            before in filler(),
            after in filler(),
            open in gap(),
            close in gap(),
            secret in "[A-Za-z0-9]{6,24}",
            shape in 0u8..9,
        ) {
            // The Basic shape is base64 of user:password, as a client sends it.
            let secret = if shape % 9 == 5 {
                let user_pass = format!("user:{secret}");
                base64(user_pass.as_bytes())
            } else {
                format!("Z9{secret}")
            };
            let text = format!("{before}{open}{}{close}{after}", carrier(&secret, shape));
            let out = redact(&text);
            prop_assert!(!out.contains(&secret), "leaked in {out:?} (from {text:?})");
            prop_assert_eq!(redact(&out), out.clone(), "idempotent");
        }
    }

    fn base64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

//! Redaction: credentials never leave upkeep in text.
//!
//! Every message upkeep prints, logs, writes into a status, an Event, a commit or the store may
//! carry text it did not write itself: a URL from a manifest, a path, a server's error body, a
//! library's error chain. This module is the one place that decides what in such text is a
//! credential and replaces it with [`REDACTED`]. It is pure and linear in the length of the
//! text, so it is applied at every boundary (error `Display`, CLI output, status, Events, the
//! store, log lines) rather than trusted to each call site.
//!
//! What is replaced:
//!
//! - **URL userinfo** (any scheme: `https://`, `oci://`, `git+ssh://`, …): the password of
//!   `user:password@host`; the user name too when it looks like a token (see below). Without a
//!   scheme the same holds for `user:password@host[:path]` (scp-like remotes, or a host that
//!   was split off a URL); a digest (`name:1.0@sha256:…`) is not userinfo. The authority ends
//!   at the first `/`, `?` or `#` as in RFC 3986, so a password must be percent-encoded there —
//!   except that an authority whose "port" is not a number (`user:pa/ss@host`) is read as
//!   userinfo up to the last `@`, since no client would take it as a host.
//! - **Secret-looking parameters**: `name=value` at the start of a word or after `?`, `&`, `;`
//!   or `#`, where the name's last word ends in token, secret, password, passwd, pwd, apikey,
//!   signature, credential(s), passphrase, sessionid or privatekey, or its last two words are
//!   api/private/secret key, secret id or session id (`token=`, `access_token=`,
//!   `private_token=`, `X-Amz-Signature=`, `client_secret=`, `--password=`, …); inside a URL's
//!   query or fragment also the short names `key`, `sig`, `pass`, `pw`, `pwd`, `auth`, `code`,
//!   `session`, `jwt`, `sas`, `otp`, `sid`. Only the last word counts, so `secretRef`,
//!   `token_type`, `expires_in`, `tokens` and chart names such as `sealed-secrets` or
//!   `secrets-store-csi-driver` are kept, and `flux-system/vault-token=1.0` (a policy and its
//!   version) is not a parameter.
//! - **JSON members** `"<secret-looking name>": "value"` (the names above and `auth`, as in
//!   Docker's `config.json`).
//! - **Header values**: `Authorization:`, `Proxy-Authorization:`, `Private-Token:`,
//!   `X-Api-Key:`, `Cookie:`, … (also as `name=` and as JSON members) keep their scheme word
//!   (`Basic`, `Bearer`, `token`) and lose the credential.
//! - **`Bearer <token>`** (8+ characters with a digit, or 20+) and **`Basic <base64>`** (when it
//!   decodes to `user:password`) anywhere.
//! - **Well-known token shapes**: GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`,
//!   `github_pat_`), GitLab (`glpat-`, `gldt-`, `glrt-`, `glptt-`), Slack (`xox?-`) and JWTs
//!   (`eyJ….eyJ….…`), wherever they appear.
//!
//! A user name "looks like a token" when it has one of those shapes, or is 20+ characters of
//! letters, digits and `_.~+/=-` with at least one letter and one digit (GitHub and Gitea take a
//! token as the user name of `https://<token>@host`). Ordinary names (`git`, `oauth2`,
//! `x-access-token`, `robot$ci`) are kept: they help reading the error and are not secret.
//!
//! Where the exact secret is known (a password from the environment, a token upkeep sends),
//! [`redact_known`] replaces it verbatim first: that catches echoes no pattern can recognise
//! (a server quoting the decoded password). [`excerpt`] is the only way a server's response body
//! may reach a message: bounded, one line, without control or invisible characters, redacted.

use std::borrow::Cow;

/// What a credential is replaced with.
pub const REDACTED: &str = "<redacted>";

/// How many bytes past the excerpt's length are still read (so a secret that starts inside the
/// excerpt and ends after it is still recognised and replaced as a whole).
const EXCERPT_MARGIN: usize = 16 * 1024;

/// `text` with every credential this module recognises replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    header_values(bytes, &mut spans);
    scheme_credentials(bytes, &mut spans);
    known_tokens(bytes, &mut spans);
    json_members(bytes, &mut spans);
    words(bytes, &mut spans);
    replace(text, spans)
}

/// [`redact`], after replacing every occurrence of each non-empty string in `secrets` (longest
/// first, so a secret containing another is replaced whole).
pub fn redact_known<'a>(text: &'a str, secrets: &[&str]) -> Cow<'a, str> {
    let mut known: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
    if !known.iter().any(|s| text.contains(s)) {
        return redact(text);
    }
    let mut out = text.to_owned();
    for s in known {
        if out.contains(s) {
            out = out.replace(s, REDACTED);
        }
    }
    Cow::Owned(redact(&out).into_owned())
}

/// A server's response body for a message: at most `max_chars` characters (then `…`), on one
/// line (whitespace and control characters become one space), without invisible formatting
/// characters (bidi overrides, zero-width spaces), redacted. Empty for an empty body.
pub fn excerpt(body: &[u8], max_chars: usize) -> String {
    excerpt_with(body, max_chars, &[])
}

/// [`excerpt`] that also replaces the known `secrets` (see [`redact_known`]).
pub fn excerpt_with(body: &[u8], max_chars: usize, secrets: &[&str]) -> String {
    let limit = body
        .len()
        .min(max_chars.saturating_mul(4).saturating_add(EXCERPT_MARGIN));
    let visible: String = String::from_utf8_lossy(&body[..limit])
        .chars()
        .filter(|c| !is_invisible(*c))
        .collect();
    let redacted = redact_known(&visible, secrets);
    let mut out = String::new();
    let mut count = 0usize;
    let mut space = false;
    let mut cut = limit < body.len();
    for c in redacted.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        let need = if space { 2 } else { 1 };
        if count + need > max_chars {
            cut = true;
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        count += need;
    }
    if cut {
        out.push('…');
    }
    out
}

/// Whether a parameter, header or JSON member named `name` holds a credential (see the module
/// documentation); `in_url` admits the short names only seen in query strings.
pub fn is_secret_name(name: &str, in_url: bool) -> bool {
    secret_name(name.as_bytes(), Context::Free { in_url })
}

#[derive(Clone, Copy)]
enum Context {
    Free { in_url: bool },
    Json,
}

/// What the last word of a secret's name ends with (`access_token`, `identitytoken`,
/// `client_secret`, `X-Amz-Signature`).
const STRONG: [&str; 12] = [
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "apikey",
    "signature",
    "credential",
    "credentials",
    "passphrase",
    "sessionid",
    "privatekey",
];
/// The last two words of a secret's name (`X-Api-Key`, `apiKey`, `secret_id`).
const STRONG_PAIRS: [(&str, &str); 5] = [
    ("api", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("secret", "id"),
    ("session", "id"),
];
/// Short last words that name a secret inside a URL's query or fragment only.
const WEAK: [&str; 12] = [
    "key", "sig", "pass", "pw", "pwd", "auth", "code", "session", "jwt", "sas", "otp", "sid",
];

fn secret_name(name: &[u8], context: Context) -> bool {
    // Words: split at non-alphanumerics and at lower→upper case changes (`secretRef`).
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for &b in name {
        if b.is_ascii_alphanumeric() {
            if b.is_ascii_uppercase() && prev_lower && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
            current.push(char::from(b.to_ascii_lowercase()));
        } else {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    // The last word decides: `secretRef`, `token_type`, `expires_in`, `sealed-secrets` or
    // `tokens` name something about a secret (or a chart), not the secret itself.
    let Some(last) = words.last().map(String::as_str) else {
        return false;
    };
    let before = words.len().checked_sub(2).map(|i| words[i].as_str());
    if STRONG.iter().any(|s| last.ends_with(s))
        || before.is_some_and(|b| STRONG_PAIRS.contains(&(b, last)))
    {
        return true;
    }
    match context {
        Context::Free { in_url: true } => WEAK.contains(&last),
        Context::Free { in_url: false } => false,
        Context::Json => matches!(last, "auth" | "authorization"),
    }
}

/// Replaces the byte ranges in `spans` (overlaps merged) with [`REDACTED`].
fn replace(text: &str, mut spans: Vec<(usize, usize)>) -> Cow<'_, str> {
    spans.retain(|(s, e)| s < e);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut iter = spans.into_iter().peekable();
    while let Some((start, mut end)) = iter.next() {
        while let Some(&(s, e)) = iter.peek() {
            if s > end {
                break;
            }
            end = end.max(e);
            iter.next();
        }
        let start = start.max(at);
        if start < end {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
    }
    out.push_str(&text[at..]);
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Ends a word: whitespace, controls, quotes, brackets other than `[]` (IPv6 hosts), `,`, `|`
/// and `\` (a JSON escape).
fn is_word_end(b: u8) -> bool {
    b <= b' '
        || b == 0x7f
        || matches!(
            b,
            b'"' | b'\'' | b'`' | b'<' | b'>' | b'(' | b')' | b'{' | b'}' | b'|' | b',' | b'\\'
        )
}

/// Ends a parameter value: a word end, or the next parameter or the fragment.
fn is_value_end(b: u8) -> bool {
    is_word_end(b) || matches!(b, b'&' | b';' | b'#' | b']')
}

/// `end` moved back over sentence punctuation that follows a value (`…?token=abc.`).
fn trim_punctuation(bytes: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && matches!(bytes[end - 1], b'.' | b'!' | b'?' | b':') {
        end -= 1;
    }
    end
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

fn find(bytes: &[u8], from: usize, to: usize, pred: impl Fn(u8) -> bool) -> Option<usize> {
    (from..to).find(|&i| pred(bytes[i]))
}

fn starts_with_ci(bytes: &[u8], at: usize, word: &str) -> bool {
    bytes.len() >= at + word.len()
        && bytes[at..at + word.len()].eq_ignore_ascii_case(word.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Header values: `Authorization: Basic …`, `"authorization":["Bearer …"]`, `Private-Token: …`.

const HEADERS: [&str; 12] = [
    "authorization",
    "private-token",
    "job-token",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
    "x-vault-token",
    "x-registry-auth",
    "x-gitlab-token",
    "set-cookie",
    "cookie",
];

fn header_values(bytes: &[u8], spans: &mut Vec<(usize, usize)>) {
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        let Some(header) = HEADERS.iter().find(|h| starts_with_ci(bytes, i, h)) else {
            i += 1;
            continue;
        };
        let name_end = i + header.len();
        // A header name starts a line, a JSON key, a list item or follows a space (or is the
        // tail of a longer name, `Proxy-Authorization`); not inside a URL's userinfo.
        let bounded = (i == 0
            || bytes[i - 1].is_ascii_whitespace()
            || matches!(
                bytes[i - 1],
                b'"' | b'\'' | b'{' | b'[' | b'(' | b',' | b';' | b'-'
            ))
            && (name_end == n
                || !(bytes[name_end].is_ascii_alphanumeric() || bytes[name_end] == b'-'));
        i = name_end;
        if !bounded {
            continue;
        }
        let mut j = name_end;
        if j < n && matches!(bytes[j], b'"' | b'\'') {
            j += 1;
        }
        while j < n && matches!(bytes[j], b' ' | b'\t') {
            j += 1;
        }
        if j >= n || !matches!(bytes[j], b':' | b'=') {
            continue;
        }
        // `Name: Scheme credentials` may have a scheme word; `name=value` is one value.
        let colon = bytes[j] == b':';
        j += 1;
        while j < n && matches!(bytes[j], b' ' | b'\t' | b'[' | b'"' | b'\'') {
            j += 1;
        }
        if bytes[j..].starts_with(REDACTED.as_bytes()) {
            continue;
        }
        let cookie = header.ends_with("cookie");
        let stop = |b: u8| {
            matches!(
                b,
                b'\r' | b'\n' | b'"' | b'\'' | b'\\' | b']' | b'}' | b'<' | b'>'
            ) || (!cookie && matches!(b, b' ' | b'\t' | b',' | b';' | b')'))
        };
        let first_end = find(bytes, j, n, |b| stop(b) || b == b' ' || b == b'\t').unwrap_or(n);
        if first_end == j {
            continue;
        }
        // `Scheme credentials`: keep the scheme word, replace what follows it.
        let mut k = first_end;
        while k < n && bytes[k] == b' ' {
            k += 1;
        }
        if bytes[k..].starts_with(REDACTED.as_bytes()) {
            continue;
        }
        let scheme = colon
            && bytes[j..first_end]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && k > first_end
            && k < n
            && !stop(bytes[k]);
        let (start, end) = if scheme && !cookie {
            (k, find(bytes, k, n, stop).unwrap_or(n))
        } else if cookie {
            (j, find(bytes, j, n, stop).unwrap_or(n))
        } else {
            (j, first_end)
        };
        spans.push((start, end));
        i = end.max(i);
    }
}

// ---------------------------------------------------------------------------------------------
// `Bearer <token>` and `Basic <base64(user:password)>` anywhere in the text.

fn scheme_credentials(bytes: &[u8], spans: &mut Vec<(usize, usize)>) {
    let n = bytes.len();
    for (scheme, basic) in [("bearer", false), ("basic", true)] {
        let mut i = 0;
        while i + scheme.len() < n {
            if !starts_with_ci(bytes, i, scheme)
                || (i > 0 && bytes[i - 1].is_ascii_alphanumeric())
                || !matches!(bytes[i + scheme.len()], b' ' | b'\t')
            {
                i += 1;
                continue;
            }
            let mut j = i + scheme.len();
            while j < n && matches!(bytes[j], b' ' | b'\t') {
                j += 1;
            }
            let mut end = find(bytes, j, n, |b| !is_token68(b)).unwrap_or(n);
            while end < n && bytes[end] == b'=' {
                end += 1;
            }
            let token = &bytes[j..end];
            let trimmed = trim_punctuation(bytes, j, end);
            let hit = if basic {
                base64_decode(&bytes[j..trimmed]).is_some_and(|d| d.contains(&b':'))
            } else {
                let len = trimmed - j;
                len >= 8 && (token.iter().any(u8::is_ascii_digit) || len >= 20)
            };
            if hit {
                spans.push((j, trimmed));
            }
            i = end.max(i + 1);
        }
    }
}

fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let body: Vec<u8> = text.iter().copied().filter(|b| *b != b'=').collect();
    if body.len() < 4 || body.len() % 4 == 1 {
        return None;
    }
    let value = |b: u8| -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for (k, &b) in chunk.iter().enumerate() {
            acc |= value(b)? << (18 - 6 * k);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Well-known token shapes.

const TOKEN_PREFIXES: [&str; 14] = [
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gldt-",
    "glrt-",
    "glptt-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
];

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The end of a well-known token starting at `i`, if one does.
fn known_token_at(bytes: &[u8], i: usize) -> Option<usize> {
    let n = bytes.len();
    if i > 0 && is_token_byte(bytes[i - 1]) {
        return None;
    }
    if let Some(p) = TOKEN_PREFIXES
        .iter()
        .find(|p| bytes[i..].starts_with(p.as_bytes()))
    {
        let end = find(bytes, i + p.len(), n, |b| !is_token_byte(b)).unwrap_or(n);
        return (end - i - p.len() >= 8).then_some(end);
    }
    if bytes[i..].starts_with(b"eyJ") {
        // header.payload.signature, base64url
        let mut end = i;
        for part in 0..3 {
            let start = end;
            end = find(bytes, start, n, |b| !is_token_byte(b)).unwrap_or(n);
            if part < 2 {
                if end - start < 10 || end >= n || bytes[end] != b'.' {
                    return None;
                }
                end += 1;
            }
        }
        return Some(end);
    }
    None
}

fn known_tokens(bytes: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'g' | b'x' | b'e')
            && let Some(end) = known_token_at(bytes, i)
        {
            spans.push((i, end));
            i = end;
        } else {
            i += 1;
        }
    }
}

fn looks_like_token(name: &[u8]) -> bool {
    if name.is_empty() {
        return false;
    }
    if known_token_at(name, 0) == Some(name.len()) {
        return true;
    }
    name.len() >= 20
        && name.iter().any(u8::is_ascii_digit)
        && name.iter().any(u8::is_ascii_alphabetic)
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.~+/=-%".contains(b))
}

// ---------------------------------------------------------------------------------------------
// JSON members: `"password": "…"`, `"auth": "…"`.

/// The end (index of the closing quote) of a JSON string whose opening quote is at `open`.
fn json_string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

fn json_members(bytes: &[u8], spans: &mut Vec<(usize, usize)>) {
    // Anchored on `"name"\s*:\s*"` rather than on pairing quotes from the left, so a stray
    // quote earlier in the text (prose, a cut excerpt) cannot shift every pair after it.
    let n = bytes.len();
    for close in 0..n {
        if bytes[close] != b'"' || close == 0 {
            continue;
        }
        let mut j = close + 1;
        while j < n && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= n || bytes[j] != b':' {
            continue;
        }
        j += 1;
        while j < n && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= n || bytes[j] != b'"' {
            continue;
        }
        let open = (0..close)
            .rev()
            .take_while(|&k| is_name_byte(bytes[k]) || bytes[k] == b'$')
            .last()
            .unwrap_or(close);
        if open == close || open == 0 || bytes[open - 1] != b'"' {
            continue;
        }
        if secret_name(&bytes[open..close], Context::Json)
            && let Some(value_end) = json_string_end(bytes, j)
        {
            spans.push((j + 1, value_end));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Words: URLs (with or without a scheme) and `name=value` parameters.

fn words(bytes: &[u8], spans: &mut Vec<(usize, usize)>) {
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        if is_word_end(bytes[i]) {
            i += 1;
            continue;
        }
        let end = find(bytes, i, n, is_word_end).unwrap_or(n);
        word(bytes, i, end, spans);
        i = end;
    }
}

fn word(bytes: &[u8], start: usize, end: usize, spans: &mut Vec<(usize, usize)>) {
    // Each `://` starts a URL that ends where the next one starts (so a word made of many
    // `://` stays linear) or at the end of the word.
    let marks: Vec<usize> = (start..end.saturating_sub(2))
        .filter(|&k| &bytes[k..k + 3] == b"://")
        .collect();
    let mut has_scheme = false;
    for (idx, &at) in marks.iter().enumerate() {
        let url_end = marks.get(idx + 1).copied().unwrap_or(end);
        let has_scheme_chars = at > start
            && (bytes[at - 1].is_ascii_alphanumeric()
                || matches!(bytes[at - 1], b'+' | b'-' | b'.'));
        if has_scheme_chars {
            has_scheme = true;
            url(bytes, at + 3, url_end, spans);
        }
    }
    if !has_scheme {
        schemeless_userinfo(bytes, start, end, spans);
    }
    parameters(bytes, start, end, false, spans);
}

/// The URL whose authority starts at `after` (just past `://`) and which ends at `end`.
fn url(bytes: &[u8], after: usize, end: usize, spans: &mut Vec<(usize, usize)>) {
    let authority_end = find(bytes, after, end, |b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(end);
    let authority = &bytes[after..authority_end];
    let userinfo_end = if let Some(at) = authority.iter().rposition(|b| *b == b'@') {
        Some(after + at)
    } else if authority.first() != Some(&b'[')
        && let Some(colon) = authority.iter().position(|b| *b == b':')
        && !authority[colon + 1..].iter().all(u8::is_ascii_digit)
    {
        // `user:pa/ss@host`: not a port, so the password went on past the `/`.
        (authority_end..end).rev().find(|&k| bytes[k] == b'@')
    } else {
        None
    };
    if let Some(ui_end) = userinfo_end {
        userinfo(bytes, after, ui_end, spans);
    }
    let rest = userinfo_end.map_or(authority_end, |u| {
        find(bytes, u, end, |b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(end)
    });
    if let Some(q) = find(bytes, rest, end, |b| matches!(b, b'?' | b'#')) {
        parameters(bytes, q + 1, end, true, spans);
    }
}

/// Redacts the password (after the first `:`) of the userinfo `start..end`, and the user name
/// when it looks like a token.
fn userinfo(bytes: &[u8], start: usize, end: usize, spans: &mut Vec<(usize, usize)>) {
    match find(bytes, start, end, |b| b == b':') {
        Some(colon) => {
            spans.push((colon + 1, end));
            if looks_like_token(&bytes[start..colon]) {
                spans.push((start, colon));
            }
        }
        None => {
            if looks_like_token(&bytes[start..end]) {
                spans.push((start, end));
            }
        }
    }
}

/// `user:password@host[:path]` without a scheme.
fn schemeless_userinfo(bytes: &[u8], start: usize, end: usize, spans: &mut Vec<(usize, usize)>) {
    // The last `@` before any `/`: a password may itself contain `@`.
    let slash = find(bytes, start, end, |b| b == b'/').unwrap_or(end);
    let Some(at) = (start..slash).rev().find(|&k| bytes[k] == b'@') else {
        return;
    };
    let ui_start = (start..at)
        .rev()
        .find(|&k| matches!(bytes[k], b'=' | b'[' | b'&' | b';' | b'?'))
        .map_or(start, |k| k + 1);
    let host_ok = at + 1 < end && (bytes[at + 1].is_ascii_alphanumeric() || bytes[at + 1] == b'[');
    let Some(colon) = find(bytes, ui_start, at, |b| b == b':') else {
        return;
    };
    if !host_ok
        || is_digest(&bytes[at + 1..end])
        || bytes[ui_start..colon].eq_ignore_ascii_case(b"mailto")
    {
        return;
    }
    userinfo(bytes, ui_start, at, spans);
}

/// `algorithm:hex` of 32+ hex digits (`sha256:…`): what follows the `@` of a digest reference.
fn is_digest(text: &[u8]) -> bool {
    let Some(colon) = text.iter().position(|b| *b == b':') else {
        return false;
    };
    let algorithm = &text[..colon];
    let hex = text[colon + 1..]
        .iter()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    !algorithm.is_empty()
        && algorithm
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(b))
        && hex >= 32
}

/// `name=value` pairs in `start..end`; `in_url` for a query string or fragment.
fn parameters(
    bytes: &[u8],
    start: usize,
    end: usize,
    in_url: bool,
    spans: &mut Vec<(usize, usize)>,
) {
    let mut i = start;
    while i < end {
        if bytes[i] != b'=' {
            i += 1;
            continue;
        }
        let name_start = (start..i)
            .rev()
            .take_while(|&k| is_name_byte(bytes[k]) || bytes[k] == b'%')
            .last()
            .unwrap_or(i);
        let value_end = find(bytes, i + 1, end, is_value_end).unwrap_or(end);
        let value_end = trim_punctuation(bytes, i + 1, value_end);
        // A parameter starts the word or follows a separator; `ns/sealed-secrets=1.0` is a
        // name and a version, not a parameter.
        let bounded =
            name_start == start || matches!(bytes[name_start - 1], b'?' | b'&' | b';' | b'#');
        if bounded
            && name_start < i
            && value_end > i + 1
            && secret_name(&bytes[name_start..i], Context::Free { in_url })
        {
            spans.push((i + 1, value_end));
        }
        i = value_end.max(i + 1);
    }
}

#[cfg(test)]
mod tests;

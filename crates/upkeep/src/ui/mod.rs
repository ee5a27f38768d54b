//! The read-only fleet dashboard: `upkeep serve` and the controller's `--ui-addr`.
//!
//! Server-rendered pages (HTML with inline SVG, minijinja templates embedded in the binary, a
//! few lines of inline script for auto-refresh and nothing else) over the same data the CLI's
//! `--output json` gives: every page has a JSON twin (`/fleet.json`, …) that is exactly the
//! data the page was rendered from ([`pages`]), computed by the functions `status`, `plan`,
//! `history` and `quickstart` use, never a second time here.
//!
//! Shaped for 5,000 clusters: the loaded fleet is one [`snapshot`] shared by every page and
//! request (loaded again after the refresh interval or when a manifest changes, one load at a
//! time), decided at each request's time; pages whose size grows with the fleet are paged.
//!
//! Shaped for safety first: GET and HEAD only (anything else is 405); every value is
//! HTML-escaped by minijinja's autoescape; every string of a page's data, and the whole body
//! after rendering, pass through [`upkeep_core::redact`], so no credential from a manifest, a
//! URL or a server's error reaches a browser; a source that cannot be read gives an error page
//! (502) naming it, and a panic while gathering a page is caught and shown as a 500 error
//! page, never a dead server.

pub(crate) mod calendar;
pub(crate) mod pages;
pub(crate) mod snapshot;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use miette::{IntoDiagnostic, WrapErr};
use minijinja::{Environment, Value, context};
use tokio::net::TcpListener;

pub(crate) use pages::{KubeSource, RepoSource, Source};

use crate::Outcome;

/// The pages, in navigation order: path, title.
const PAGES: &[(&str, &str)] = &[
    ("fleet", "Fleet"),
    ("campaigns", "Campaigns"),
    ("apps", "Apps"),
    ("history", "History"),
    ("calendar", "Calendar"),
];

/// A running dashboard's settings.
#[derive(Debug)]
pub(crate) struct Ui {
    pub(crate) source: Source,
    /// Decide as if it were this time (tests, `--at`); `None`: the time of each request.
    pub(crate) at: Option<Timestamp>,
    /// The refresh interval in seconds: the loaded fleet is shared by every request until it
    /// is this old (or the repository changed), and the pages reload themselves this often
    /// (0: load for every request, never reload).
    pub(crate) refresh: u32,
    /// The SEQUENCE given to each calendar event served (the page's twin and `/calendar.ics`).
    pub(crate) memory: crate::calendar::Memory,
}

/// The templates, embedded in the binary.
const TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("templates/base.html")),
    ("fleet.html", include_str!("templates/fleet.html")),
    ("campaigns.html", include_str!("templates/campaigns.html")),
    ("apps.html", include_str!("templates/apps.html")),
    ("history.html", include_str!("templates/history.html")),
    ("calendar.html", include_str!("templates/calendar.html")),
    ("error.html", include_str!("templates/error.html")),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // `.html` templates escape every value (minijinja's default callback does exactly that).
    for (name, text) in TEMPLATES {
        if let Err(e) = env.add_template(name, text) {
            // A template that does not parse is a bug (`every_template_parses` catches it);
            // the page that uses it says so.
            eprintln!("error: dashboard template {name}: {e:#}");
        }
    }
    env.add_filter("when", when);
    env.add_filter("utc", |v: &str| {
        v.parse::<Timestamp>().map_or_else(
            |_| v.to_owned(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
    });
    env.add_filter("hms", |v: &str| {
        v.parse::<Timestamp>()
            .map_or_else(|_| v.to_owned(), |t| t.strftime("%H:%M:%S UTC").to_string())
    });
    env.add_filter("thousands", |n: usize| pages::thousands(n));
    env.add_filter("urlencode", |s: String| {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
    });
    // Only http(s) URLs become links (never `javascript:` or a file path).
    env.add_test("weblink", |s: String| {
        s.starts_with("https://") || s.starts_with("http://")
    });
    env.add_filter("short", |s: String| s.chars().take(12).collect::<String>());
    env
}

/// `{{ t|when(now) }}`: an RFC 3339 instant as `2026-12-06 14:00 UTC`, with how far it is from
/// `now` (`in 3h 10m`, `5m ago`).
fn when(value: Option<&str>, now: &str) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    let (Ok(t), Ok(now)) = (value.parse::<Timestamp>(), now.parse::<Timestamp>()) else {
        return value.to_owned();
    };
    let shown = t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    let secs = t.as_second() - now.as_second();
    let span = relative(secs.unsigned_abs());
    if secs >= 0 {
        format!("{shown} (in {span})")
    } else {
        format!("{shown} ({span} ago)")
    }
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub(crate) fn relative(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Serves the dashboard on `listener` until `stop` resolves.
pub(crate) async fn serve(listener: TcpListener, ui: Ui, stop: impl Future<Output = ()>) {
    let cache = Arc::new(snapshot::Cache::new(std::time::Duration::from_secs(
        u64::from(ui.refresh),
    )));
    let ui = Arc::new(ui);
    let env = Arc::new(environment());
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a dashboard connection");
                    continue;
                }
            },
        };
        let (ui, env, cache) = (ui.clone(), env.clone(), cache.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (ui, env, cache) = (ui.clone(), env.clone(), cache.clone());
                async move { Ok::<_, Infallible>(respond(&ui, &env, &cache, &request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, %peer, "dashboard connection");
            }
        });
    }
}

/// Serves `ui` on `addr` until Ctrl-C or SIGTERM, saying where on stderr (and the URL on
/// stdout, for scripts).
pub(crate) async fn serve_until_signal(addr: SocketAddr, ui: Ui) -> miette::Result<Outcome> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    eprintln!(
        "serving the dashboard of {} (Ctrl-C to stop); its calendar feed: http://{bound}/calendar.ics",
        ui.source.describe()
    );
    crate::out::outln!("http://{bound}/");
    serve(listener, ui, async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    })
    .await;
    eprintln!("stopped");
    Ok(Outcome::Success)
}

/// Loopback only, unless allowed.
pub(crate) fn check_bind(addr: SocketAddr, allow_remote: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(format!(
            "--addr {addr} is not a loopback address: the dashboard has no login and shows the whole fleet"
        ))
    }
}

/// One request: the page or its JSON twin, an error page, 404 or 405.
async fn respond(
    ui: &Arc<Ui>,
    env: &Environment<'static>,
    cache: &snapshot::Cache,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let arrived = std::time::Instant::now();
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "the dashboard is read-only: only GET and HEAD\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = request.uri().path();
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if path == "/calendar.ics" {
        return calendar_ics(ui, cache, arrived, &query, head).await;
    }
    let (name, json) = match path {
        "/" => ("fleet", false),
        p => {
            let p = p.trim_start_matches('/');
            match p.strip_suffix(".json") {
                Some(n) => (n, true),
                None => (p, false),
            }
        }
    };
    let Some(&(page, title)) = PAGES.iter().find(|(p, _)| *p == name) else {
        let body = render_error(
            env,
            ui,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("There is no page {path}."),
            Some(
                "the pages are /fleet, /campaigns, /apps, /history and /calendar (add .json for the data), and the feed /calendar.ics",
            ),
        );
        return finish(
            StatusCode::NOT_FOUND,
            &body,
            "text/html; charset=utf-8",
            head,
        );
    };
    let snapshot = cache.get(ui, arrived).await;
    let now = ui.at.unwrap_or_else(Timestamp::now);
    let as_of = snapshot.as_of();
    let errors = snapshot.errors();
    let gathered = pages::gather(ui.clone(), snapshot.clone(), page, query, now, json).await;
    match gathered {
        Ok(mut data) => {
            redact_value(&mut data.json);
            redact_value(&mut data.view);
            if json {
                let body = serde_json::to_string_pretty(&data.json)
                    .unwrap_or_else(|e| format!("{{\"error\": \"encoding: {e}\"}}"));
                return finish(StatusCode::OK, &(body + "\n"), "application/json", head);
            }
            let ctx = context! {
                page => page,
                title => title,
                pages => PAGES.iter().map(|(p, t)| context!{path => p, title => t}).collect::<Vec<_>>(),
                now => now.to_string(),
                source => ui.source.describe(),
                refresh => ui.refresh,
                as_of => as_of.to_string(),
                errors => errors,
                data => Value::from_serialize(&data.json),
                view => Value::from_serialize(&data.view),
                query => request.uri().query().unwrap_or_default(),
            };
            match env
                .get_template(&format!("{page}.html"))
                .and_then(|t| t.render(ctx))
            {
                Ok(body) => finish(StatusCode::OK, &body, "text/html; charset=utf-8", head),
                Err(e) => {
                    let body = render_error(
                        env,
                        ui,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "The page could not be rendered",
                        &format!("{e:#}"),
                        Some(
                            "this is a bug in upkeep: the JSON twin of this page still has the data",
                        ),
                    );
                    finish(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &body,
                        "text/html; charset=utf-8",
                        head,
                    )
                }
            }
        }
        Err(failure) => {
            let status = if failure.internal {
                StatusCode::INTERNAL_SERVER_ERROR
            } else if failure.bad_request {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::BAD_GATEWAY
            };
            if json {
                let body = serde_json::json!({"error": failure.message, "hint": failure.hint});
                return finish(
                    status,
                    &(serde_json::to_string_pretty(&body).unwrap_or_default() + "\n"),
                    "application/json",
                    head,
                );
            }
            let body = render_error(
                env,
                ui,
                status,
                &format!("{title}: {} cannot be read", ui.source.kind()),
                &failure.message,
                failure.hint.as_deref(),
            );
            finish(status, &body, "text/html; charset=utf-8", head)
        }
    }
}

/// `/calendar.ics?namespace=NS&selector=LABELS&from=TIME&days=N`: the feed `upkeep calendar`
/// writes for the dashboard's source (the controller's metrics port serves the same for its
/// cluster), 28 days from now unless asked otherwise.
async fn calendar_ics(
    ui: &Arc<Ui>,
    cache: &snapshot::Cache,
    arrived: std::time::Instant,
    query: &[(String, String)],
    head: bool,
) -> Response<Full<Bytes>> {
    let fail = |status: StatusCode, message: &str, hint: Option<&str>| {
        let hint = hint.map(|h| format!("\nhint: {h}")).unwrap_or_default();
        finish(
            status,
            &format!("error: {message}{hint}\n"),
            "text/plain; charset=utf-8",
            head,
        )
    };
    if let Some((other, _)) = query
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "namespace" | "selector" | "from" | "days"))
    {
        return fail(
            StatusCode::BAD_REQUEST,
            &format!("unknown parameter {other:?}"),
            Some("use namespace, selector, from, days"),
        );
    }
    let query = query.to_vec();
    let now = ui.at.unwrap_or_else(Timestamp::now);
    let range = match calendar::range(&query, now, 28, crate::calendar::MAX_DAYS) {
        Ok(r) => r,
        Err(f) => return fail(StatusCode::BAD_REQUEST, &f.message, f.hint.as_deref()),
    };
    let ns = pages::param(&query, "namespace").map(str::to_owned);
    let selector = pages::param(&query, "selector").map(str::to_owned);
    let snapshot = cache.get(ui, arrived).await;
    match pages::calendar_feed(ui.clone(), snapshot, range, ns, selector).await {
        Ok(feed) => {
            let name = format!("upkeep: {}", ui.source.describe());
            let body = upkeep_core::calendar::write_ics(
                &feed.entries,
                &name,
                Timestamp::now(),
                &feed.zones,
            );
            finish(StatusCode::OK, &body, "text/calendar; charset=utf-8", head)
        }
        Err(f) => {
            let status = if f.bad_request {
                StatusCode::BAD_REQUEST
            } else if f.internal {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_GATEWAY
            };
            fail(status, &f.message, f.hint.as_deref())
        }
    }
}

fn render_error(
    env: &Environment<'static>,
    ui: &Ui,
    status: StatusCode,
    heading: &str,
    message: &str,
    hint: Option<&str>,
) -> String {
    let ctx = context! {
        page => "error",
        title => heading,
        pages => PAGES.iter().map(|(p, t)| context!{path => p, title => t}).collect::<Vec<_>>(),
        status => status.as_u16(),
        now => Timestamp::now().to_string(),
        message => upkeep_core::redact::redact(message).into_owned(),
        hint => hint.map(|h| upkeep_core::redact::redact(h).into_owned()),
        source => ui.source.describe(),
        refresh => 0,
    };
    env.get_template("error.html")
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| {
            format!(
                "<!doctype html><title>error</title><p>{}</p>",
                minijinja::HtmlEscape(&format!("{heading}: {message} ({e})"))
            )
        })
}

/// The response, the body redacted once more as a whole (and left out for HEAD).
fn finish(status: StatusCode, body: &str, kind: &'static str, head: bool) -> Response<Full<Bytes>> {
    let body = upkeep_core::redact::redact(body).into_owned();
    let length = body.len();
    let mut r = Response::new(Full::new(if head {
        Bytes::new()
    } else {
        Bytes::from(body)
    }));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        "x-content-type-options",
        header::HeaderValue::from_static("nosniff"),
    );
    // The pages load nothing from anywhere; the one inline script reloads the page.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ),
    );
    r
}

fn plain(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    finish(status, body, "text/plain; charset=utf-8", false)
}

/// Every string in `v` (keys too) through [`upkeep_core::redact`].
pub(crate) fn redact_value(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(r) = upkeep_core::redact::redact(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_value),
        serde_json::Value::Object(o) => {
            let entries = std::mem::take(o);
            for (k, mut value) in entries {
                redact_value(&mut value);
                o.insert(upkeep_core::redact::redact(&k).into_owned(), value);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            env.add_template(name, text)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn relative_spans() {
        for (secs, want, why) in [
            (0, "0s", "now"),
            (59, "59s", "under a minute: seconds"),
            (61, "1m 1s", "minutes with seconds"),
            (3 * 3600 + 600, "3h 10m", "hours with minutes"),
            (2 * 86_400 + 3600, "2d 1h", "days with hours"),
        ] {
            assert_eq!(relative(secs), want, "{why}");
        }
    }

    #[test]
    fn when_says_how_far() {
        let now = "2026-12-06T12:00:00Z";
        for (t, want, why) in [
            (
                Some("2026-12-06T15:10:00Z"),
                "2026-12-06 15:10 UTC (in 3h 10m)",
                "ahead",
            ),
            (
                Some("2026-12-06T11:55:00Z"),
                "2026-12-06 11:55 UTC (5m 0s ago)",
                "past",
            ),
            (None, "-", "no time"),
            (Some("soon"), "soon", "not a time: shown as it is"),
        ] {
            assert_eq!(when(t, now), want, "{why}");
        }
    }

    #[test]
    fn redaction_reaches_every_string_and_key() {
        let mut v = serde_json::json!({
            "url": "https://user:hunter2secret@git.example/repo.git",
            "list": ["token=abcdef123456"],
            "https://u:pw12345678@h/": 1,
        });
        redact_value(&mut v);
        let text = v.to_string();
        assert!(!text.contains("hunter2secret"), "{text}");
        assert!(!text.contains("abcdef123456"), "{text}");
        assert!(!text.contains("pw12345678"), "{text}");
    }
}

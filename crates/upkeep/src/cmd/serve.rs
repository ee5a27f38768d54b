//! `upkeep serve`: the read-only fleet dashboard ([`crate::ui`]) over a repository or a
//! management cluster, until Ctrl-C or SIGTERM.
//!
//! It binds to 127.0.0.1 by default and refuses any other address unless `--allow-remote` says
//! so: the pages show every cluster, version and reason of the fleet, and have no login.

use std::net::SocketAddr;
use std::path::PathBuf;

use miette::IntoDiagnostic;

use crate::Outcome;
use crate::ui::{KubeSource, RepoSource, Source, Ui};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Pages: /fleet (every cluster: current version, target, state, reason, next allowed start; \
filter with ?namespace=, ?label=key[=value], ?stage=; 100 a page, ?per=, ?page=; counts per \
state and version over the whole filtered fleet), /campaigns (per-stage progress, soak \
countdowns, failures, Events), /apps (every marked field: current → target, write or held and \
why, the last commit and pull request), /history (per cluster and per app, newest first), \
/calendar (a two-week timeline: a row per schedule and per cluster, the entries of `upkeep \
calendar`; ?namespace=, ?label=, ?tz=, ?days=, ?page=). Each has a JSON twin (/fleet.json, …) \
with the data the page shows: /campaigns.json is `upkeep status --output json`, /apps.json the \
fields of `upkeep plan --output json`, /history.json what `upkeep history --output json` lists, \
/calendar.json the entries of `upkeep calendar --output json`. /calendar.ics is the feed \
(?namespace=NS&selector=LABELS&from=TIME&days=N). /fleet.json is the whole filtered fleet \
unless ?page= is given.\n\n\
The fleet is loaded once and shared by every page (each says \"as of HH:MM:SS\"), reloaded \
after --refresh or as soon as a manifest file of the repository changes (with --kubeconfig: \
after --refresh); every decision is made at the request's time. When reloading fails the pages \
keep showing the last good load and say what failed.\n\n\
Read-only: GET and HEAD only. No login: the default bind is 127.0.0.1; any other address needs \
--allow-remote (put an authenticating proxy in front).\n\n\
Exit status: 0 after Ctrl-C or SIGTERM, 2 when the address cannot be bound or the input is invalid.")]
pub(crate) struct Args {
    /// The GitOps repository (default: .).
    #[arg(long, value_name = "DIR", conflicts_with = "kubeconfig")]
    repo: Option<PathBuf>,
    /// Read the management cluster instead (the status the controller records).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Only this namespace (with --kubeconfig; default: all).
    #[arg(long, short = 'n', value_name = "NS", requires = "kubeconfig")]
    namespace: Option<String>,
    /// The state file `upkeep run` records in (with --repo; a missing file means nothing was
    /// recorded).
    #[arg(
        long,
        env = "UPKEEP_STORE",
        value_name = "FILE",
        conflicts_with = "kubeconfig"
    )]
    store: Option<PathBuf>,
    /// A Docker config.json with registry credentials (with --repo: the Apps page scans the
    /// sources as `upkeep plan` does).
    #[arg(long, value_name = "FILE", conflicts_with = "kubeconfig")]
    docker_config: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8484", value_name = "ADDR")]
    addr: SocketAddr,
    /// Allow an address other than loopback (the pages have no login).
    #[arg(long)]
    allow_remote: bool,
    /// Decide as if it were this time (RFC 3339, or a UTC wall-clock time); default: the time
    /// of each request.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The refresh interval (`10s`, `2m`, `1h`; a bare number is seconds). The fleet is loaded
    /// once and shared by every page and request until it is this old, or sooner when the
    /// repository's files change; the pages reload themselves this often and say "as of" when
    /// the fleet they show was loaded. Decisions are still made at each request's time. `0`:
    /// load for every request and never reload.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_refresh)]
    refresh: u32,
}

/// `10s`, `2m`, `1h` or a bare number of seconds, as whole seconds.
fn parse_refresh(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u32 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 2m, 1h, or 0)"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?}: the unit is s, m or h (e.g. 10s)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too long"))
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    if let Err(message) = crate::ui::check_bind(args.addr, args.allow_remote) {
        crate::render::error_with_hint(
            &message,
            Some("bind to 127.0.0.1 (the default), or pass --allow-remote behind an authenticating proxy".into()),
        );
        return Ok(Outcome::Invalid);
    }
    let at = match &args.at {
        Some(t) => match crate::campaign_view::parse_at(Some(t)) {
            Ok(t) => Some(t),
            Err(o) => return Ok(o),
        },
        None => None,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .into_diagnostic()?;
    runtime.block_on(async {
        let source = match &args.kubeconfig {
            Some(kubeconfig) => Source::Kube(KubeSource {
                client: crate::management::client(kubeconfig).await?,
                server: crate::management::client_url(kubeconfig),
                namespace: args.namespace.clone(),
            }),
            None => Source::Repo(RepoSource {
                dir: args.repo.clone().unwrap_or_else(|| PathBuf::from(".")),
                store: args.store.clone(),
                docker_config: args.docker_config.clone(),
                policy_campaigns: false,
            }),
        };
        let ui = Ui {
            source,
            at,
            refresh: args.refresh,
            memory: crate::calendar::Memory::default(),
        };
        crate::ui::serve_until_signal(args.addr, ui).await
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn refresh_intervals() {
        for (text, want, why) in [
            ("10s", Ok(10), "seconds"),
            ("2m", Ok(120), "minutes"),
            ("1h", Ok(3600), "hours"),
            ("30", Ok(30), "a bare number is seconds"),
            ("0", Ok(0), "zero: load for every request"),
            ("10ms", Err(()), "no sub-second unit"),
            ("soon", Err(()), "not a number"),
        ] {
            assert_eq!(super::parse_refresh(text).map_err(|_| ()), want, "{why}");
        }
    }

    #[test]
    fn only_loopback_without_allow_remote() {
        for (addr, allow, ok, why) in [
            ("127.0.0.1:8484", false, true, "IPv4 loopback"),
            ("[::1]:8484", false, true, "IPv6 loopback"),
            (
                "0.0.0.0:8484",
                false,
                false,
                "every interface needs --allow-remote",
            ),
            (
                "10.0.0.5:8484",
                false,
                false,
                "a LAN address needs --allow-remote",
            ),
            ("0.0.0.0:8484", true, true, "allowed explicitly"),
        ] {
            assert_eq!(
                crate::ui::check_bind(addr.parse().expect("addr"), allow).is_ok(),
                ok,
                "{why}"
            );
        }
    }
}

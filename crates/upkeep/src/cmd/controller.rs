//! `upkeep controller`: the in-cluster shape. Connects with the in-cluster service account or
//! the kubeconfig (`KUBECONFIG`, `~/.kube/config`), campaigns for a Lease and, while holding it,
//! runs the reconcilers; serves `/metrics`, `/healthz`, `/readyz` and `/calendar.ics` (and,
//! with `--receiver-addr`, registry push notifications); logs JSON lines to stderr
//! (text with `--log-format text`, coloured only when stderr is a terminal and `NO_COLOR` is
//! unset).
//!
//! The list of controllers is [`controllers`]: adding one is one `.with(…)` line. SIGTERM or
//! SIGINT stops the controllers (in-flight reconciles finish, bounded), releases the Lease so a
//! standby takes over at once, stops the HTTP server and exits 0.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};
use upkeep_controller::alerts::{Alertmanager, Webhook};
use upkeep_controller::automation::run_automations;
use upkeep_controller::cluster_upgrade::{self, Silences};
use upkeep_controller::cluster_upgrade_policy::run_cluster_upgrade_policies;
use upkeep_controller::controllers::{Controllers, Shutdown, StopSignal};
use upkeep_controller::controllers::{run_cluster_controllers, run_discovery_with};
use upkeep_controller::discovery::Discovery;
use upkeep_controller::flux_automation::run_flux_automations;
use upkeep_controller::framework::Context;
use upkeep_controller::gitops::GitWorkspace;
use upkeep_controller::leader::{LeaderElector, LeaseConfig, default_identity};
use upkeep_controller::metrics::Metrics;
use upkeep_controller::receiver::{OnPush, ReceiverSettings, serve_receiver};
use upkeep_controller::scan_requests::ScanRequests;
use upkeep_controller::schedule::run_schedules;
use upkeep_controller::serve::{Endpoints, Health, bind, serve};
use upkeep_registry::notification::{Pushed, matches};

use crate::Outcome;

/// How long controllers get to finish in-flight reconciles when leader election is off.
const STOP_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Reconciles MaintenanceSchedules (summary, activeWindow, activeExclusion, nextWindows, requeued at each boundary and as the summary text ages), ChartSources, VersionPolicies, AppUpgradeAutomations, ClusterUpgrades (patching Cluster API clusters' release label or topology version; silences in --alertmanager-url while a cluster upgrades) and ClusterUpgradePolicies. Install the CRDs first: `upkeep crds | kubectl apply -f -`.\n\nWith --receiver-addr and --receiver-secret-file the leader accepts registry push notifications (CNCF distribution, Harbor, GitHub packages, Azure Container Registry, Docker Hub; see docs/receiver.md): a push to the repository of a ChartSource scans it at once, and the VersionPolicies and AppUpgradeAutomations over it follow without waiting for their intervals (schedules and minimumReleaseAge still apply). A replica that is not leading does not listen; senders retry.\n\nThe log level comes from RUST_LOG (default info). The identity in the Lease is $POD_NAME, else hostname-pid. RBAC: get, create and update on leases.coordination.k8s.io in the lease namespace."
)]
pub(crate) struct Args {
    /// Run the reconcilers only while holding the Lease (use `--leader-elect=false` for a
    /// single replica outside a cluster).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    leader_elect: bool,
    /// Name of the coordination.k8s.io/v1 Lease.
    #[arg(long, default_value = "upkeep-controller", value_name = "NAME")]
    lease_name: String,
    /// Namespace of the Lease.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "upkeep-system",
        value_name = "NAMESPACE"
    )]
    lease_namespace: String,
    /// Address for /metrics, /healthz, /readyz and /calendar.ics (plain HTTP).
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    metrics_addr: SocketAddr,
    /// Where AppUpgradeAutomations keep their clones (writable; an emptyDir in the Deployment).
    #[arg(long, default_value = "/tmp/upkeep", value_name = "DIR")]
    workdir: std::path::PathBuf,
    /// Log format on stderr [default: json, or text on a terminal]. Text is coloured only on a
    /// terminal, and not when NO_COLOR is set.
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Alertmanager to silence a cluster's alerts in while it upgrades (v2 API; credentials may
    /// be in the URL). Without it no silences are made.
    #[arg(long, value_name = "URL")]
    alertmanager_url: Option<String>,
    /// The alert label a silence matches against the cluster name.
    #[arg(long, default_value = "cluster_id", value_name = "LABEL")]
    silence_label: String,
    /// ClusterUpgradeRecords kept per cluster: when a cluster's upgrade starts, its oldest
    /// finished records beyond this many are deleted.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    records_per_cluster: u32,
    /// Serve the read-only dashboard (`upkeep serve`'s pages over this cluster) on this
    /// address; loopback only unless --ui-allow-remote.
    #[arg(long, value_name = "ADDR")]
    ui_addr: Option<SocketAddr>,
    /// Allow a --ui-addr other than loopback (the pages have no login).
    #[arg(long, requires = "ui_addr")]
    ui_allow_remote: bool,
    /// Accept registry push notifications on this address (plain HTTP; see docs/receiver.md):
    /// a push to the repository of a ChartSource scans it at once instead of at its next
    /// interval. Only the leading replica listens (the scans run there); senders retry.
    #[arg(long, value_name = "ADDR", requires = "receiver_secret_file")]
    receiver_addr: Option<SocketAddr>,
    /// The shared secret notifications are authenticated with (the HMAC key of senders that
    /// sign, the token of those that do not); in the Deployment, a file of a mounted Secret.
    #[arg(long, value_name = "FILE", requires = "receiver_addr")]
    receiver_secret_file: Option<std::path::PathBuf>,
}

/// What the ClusterUpgrade controller needs from the flags, checked before anything starts.
#[derive(Clone)]
struct UpgradeSettings {
    silences: Option<Silences>,
    webhook: Option<Webhook>,
    records_per_cluster: usize,
}

impl UpgradeSettings {
    fn from_args(args: &Args) -> miette::Result<Self> {
        let silences = match &args.alertmanager_url {
            Some(url) => {
                let label = args.silence_label.trim();
                if label.is_empty() {
                    return Err(miette::miette!(
                        help = "give the alert label that names a cluster, e.g. --silence-label cluster_id",
                        "--silence-label is empty"
                    ));
                }
                let alertmanager = Alertmanager::new(url).map_err(|e| {
                    miette::miette!(
                        help = e.hint().unwrap_or_default(),
                        "--alertmanager-url: {e}"
                    )
                })?;
                Some(Silences {
                    alertmanager,
                    label: label.to_owned(),
                })
            }
            None => None,
        };
        let webhook = Webhook::new()
            .map_err(|e| miette::miette!(help = e.hint().unwrap_or_default(), "{e}"))?;
        Ok(UpgradeSettings {
            silences,
            webhook: Some(webhook),
            records_per_cluster: usize::try_from(args.records_per_cluster).unwrap_or(usize::MAX),
        })
    }
}

/// The controllers this binary runs. One line per kind. `requests` are the scan requests the
/// receiver makes (one set for the process, handed to each leadership term's discovery).
fn controllers(
    workdir: &std::path::Path,
    upgrades: &UpgradeSettings,
    requests: &Arc<ScanRequests>,
) -> Controllers {
    let workdir = workdir.to_path_buf();
    let cluster_workdir = workdir.join("cluster-upgrades");
    let flux_workdir = workdir.clone();
    let upgrades = upgrades.clone();
    let requests = Arc::clone(requests);
    // The retry intervals each controller had before they shared one context type.
    let retry_after = |ctx: &Arc<Context>, secs| {
        Arc::new(
            ctx.as_ref()
                .clone()
                .with_retry_after(Duration::from_secs(secs)),
        )
    };
    Controllers::new()
        .with("MaintenanceSchedule", run_schedules)
        .with("ChartSource+VersionPolicy", move |ctx, stop| {
            let discovery =
                Discovery::new(retry_after(&ctx, 30)).with_scan_requests(Arc::clone(&requests));
            run_discovery_with(Arc::new(discovery), stop)
        })
        .with("AppUpgradeAutomation", move |ctx, stop| {
            let writer = Arc::new(GitWorkspace {
                ctx: retry_after(&ctx, 30),
                workdir: workdir.clone(),
            });
            run_automations(writer, stop)
        })
        .with("ImageUpdateAutomation", {
            move |ctx, stop| {
                let writer = Arc::new(GitWorkspace {
                    ctx: retry_after(&ctx, 30),
                    workdir: flux_workdir.clone(),
                });
                run_flux_automations(writer, stop)
            }
        })
        // One Cluster watch for both controllers that read Clusters.
        .with("ClusterUpgrade+ScheduledUpgrade", move |ctx, stop| {
            let mut u = cluster_upgrade::UpgradeSettings::new(ctx)
                .with_workdir(cluster_workdir.clone())
                .with_records_per_cluster(upgrades.records_per_cluster);
            if let Some(s) = upgrades.silences.clone() {
                u = u.with_silences(s);
            }
            if let Some(w) = upgrades.webhook.clone() {
                u = u.with_webhook(w);
            }
            if let Ok(pod) = std::env::var("POD_NAME") {
                u = u.with_instance(pod);
            }
            run_cluster_controllers(Arc::new(u), stop)
        })
        .with("ClusterUpgradePolicy", run_cluster_upgrade_policies)
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    init_logging(
        args.log_format
            .unwrap_or(if std::io::stderr().is_terminal() {
                LogFormat::Text
            } else {
                LogFormat::Json
            }),
    );
    // One crypto provider for every rustls user in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .into_diagnostic()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &Args) -> miette::Result<Outcome> {
    let upgrades = UpgradeSettings::from_args(args)?;
    let receiver = Receiver::from_args(args)?;
    if let Some(ui_addr) = args.ui_addr {
        crate::ui::check_bind(ui_addr, args.ui_allow_remote).map_err(|m| {
            miette::miette!(
                help = "bind to 127.0.0.1 (reach it with kubectl port-forward), or pass --ui-allow-remote behind an authenticating proxy",
                "--ui-addr: {m}"
            )
        })?;
    }
    let config = kube::Config::infer()
        .await
        .into_diagnostic()
        .wrap_err("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
    let server_url = config.cluster_url.to_string();
    let client = upkeep_controller::framework::client(config)
        .into_diagnostic()
        .wrap_err("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
    let metrics = Metrics::global().clone();
    let health = Arc::new(Health::new());
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "shutting down");
        trigger.trigger();
    });

    let listener = bind(args.metrics_addr)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("listening on --metrics-addr {}", args.metrics_addr))?;
    let addr = listener.local_addr().unwrap_or(args.metrics_addr);
    let server = tokio::spawn(serve(
        listener,
        Endpoints {
            metrics: metrics.clone(),
            health: health.clone(),
            client: client.clone(),
            extra: vec![crate::calendar_kube::route(client.clone())],
        },
        shutdown.clone(),
    ));
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz, /calendar.ics");
    if let Some(ui_addr) = args.ui_addr {
        let ui = crate::ui::Ui {
            source: crate::ui::Source::Kube(crate::ui::KubeSource {
                client: client.clone(),
                server: server_url,
                namespace: None,
            }),
            at: None,
            refresh: 30,
            memory: crate::calendar::Memory::default(),
        };
        let listener = tokio::net::TcpListener::bind(ui_addr)
            .await
            .into_diagnostic()
            .wrap_err_with(|| format!("listening on --ui-addr {ui_addr}"))?;
        let bound = listener.local_addr().unwrap_or(ui_addr);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            crate::ui::serve(listener, ui, async move { stop.wait().await }).await;
        });
        tracing::info!(addr = %bound, "serving the dashboard");
    }

    let ctx = Arc::new(Context::new(client.clone()));
    let requests = Arc::new(ScanRequests::new());
    let mut controllers = controllers(&args.workdir, &upgrades, &requests);
    if let Some(receiver) = receiver {
        // Only the leader can act on a push (the scans run there): a follower does not listen,
        // and a sender's retry reaches the leader.
        controllers = controllers.with("Receiver", move |_ctx, stop| {
            receiver.clone().serve(Arc::clone(&requests), stop)
        });
    }
    if args.leader_elect {
        let config = LeaseConfig::new(
            args.lease_name.clone(),
            args.lease_namespace.clone(),
            default_identity(),
        );
        tracing::info!(
            identity = %config.identity,
            lease = %format!("{}/{}", config.namespace, config.name),
            controllers = ?controllers.kinds(),
            "campaigning for the Lease"
        );
        let elector = LeaderElector::new(client, config).map_err(|e| {
            let hint = e.hint();
            miette::miette!(help = hint.unwrap_or_default(), "{e}")
        })?;
        elector
            .run(ctx, &controllers, &metrics, &health, shutdown.clone())
            .await;
    } else {
        tracing::info!(controllers = ?controllers.kinds(), "running without leader election");
        controllers
            .run_until(&ctx, &metrics, &health, &shutdown, STOP_GRACE)
            .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    tracing::info!("stopped");
    Ok(Outcome::Success)
}

/// The push-notification receiver of `--receiver-addr`, checked before anything starts.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    settings: ReceiverSettings,
}

impl Receiver {
    /// The flags, the secret file read and the address tried (so a bad one is an error of the
    /// command, not a log line of the first leadership term).
    fn from_args(args: &Args) -> miette::Result<Option<Self>> {
        let (Some(addr), Some(file)) = (args.receiver_addr, &args.receiver_secret_file) else {
            return Ok(None);
        };
        let settings = ReceiverSettings::from_secret_file(file)
            .map_err(|e| miette::miette!("--receiver-secret-file: {e}"))?;
        // An address in use may be the leader's on the same host (two replicas outside a
        // cluster): each term retries it. Anything else cannot heal.
        match std::net::TcpListener::bind(addr) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!(%addr, "--receiver-addr is in use now; binding it when leading");
            }
            Err(e) => {
                return Err(e)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("listening on --receiver-addr {addr}"));
            }
        }
        Ok(Some(Receiver { addr, settings }))
    }

    /// Serves until `stop` (the end of the leadership term): a matched push requests a scan of
    /// every ChartSource over the pushed repository, from the running controller's watch cache.
    /// The address is bound for the term, retried each second while it is taken.
    async fn serve(self, requests: Arc<ScanRequests>, mut stop: StopSignal) {
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) => {
                    tracing::warn!(addr = %self.addr, %error, "binding --receiver-addr; retrying");
                    tokio::select! {
                        () = &mut stop => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        let on_push: OnPush = Arc::new(move |pushed: &[Pushed]| {
            let now = jiff::Timestamp::now();
            let matched = requests.request_matching(now, |source| {
                pushed.iter().any(|p| matches(&source.spec.url, p))
            });
            matched.unwrap_or(0)
        });
        tracing::info!(addr = %self.addr, "serving registry push notifications");
        serve_receiver(listener, self.settings, on_push, stop).await;
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(RedactingStderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Whether text logs are coloured: only on a terminal (a file or a pipe gets plain text, not
/// escape codes), and never when `NO_COLOR` is set to anything but the empty string
/// (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Resolves with the name of the first SIGTERM or SIGINT.
async fn shutdown_signal() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        () = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => "SIGTERM",
    }
}

/// Log lines go to stderr redacted ([`upkeep_core::redact`]): errors logged by the reconcilers
/// quote URLs and servers' answers. The formatter writes one event into one writer, so a line
/// is redacted whole when the writer is dropped.
struct RedactingStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine(Vec::new())
    }
}

/// One event's text, written to stderr redacted when dropped.
struct RedactingLine(Vec<u8>);

impl std::io::Write for RedactingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        use std::io::Write as _;
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr()
            .lock()
            .write_all(upkeep_core::redact::redact(&text).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases = [
            (true, None, true, "a terminal, NO_COLOR unset: colour"),
            (false, None, false, "a file or a pipe: never colour"),
            (true, Some("1"), false, "NO_COLOR=1 turns colour off"),
            (
                true,
                Some(""),
                true,
                "an empty NO_COLOR counts as unset (no-color.org)",
            ),
            (false, Some("1"), false, "neither"),
        ];
        for (terminal, no_color, want, why) in cases {
            assert_eq!(
                super::colour(terminal, no_color.map(OsStr::new)),
                want,
                "{why}"
            );
        }
    }
}

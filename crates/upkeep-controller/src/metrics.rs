//! Prometheus metrics for the controller: reconcile counts, durations and errors by kind, and
//! whether this process leads.
//!
//! Why it is shaped this way:
//! - Reconcilers do not know about metrics. [`instrumented`] wraps a reconcile function (same
//!   arguments, same result) and records one count, one duration and, on failure, one error
//!   labelled with the error's *variant name* ([`ErrorLabel`]): the variant names are kept stable
//!   for exactly this use, and label cardinality stays bounded (never a message, a name or a
//!   namespace in a label).
//! - One process-wide [`Metrics::global`] registry, as Prometheus expects one `/metrics` per
//!   process; [`Metrics::new`] gives an independent one to tests and to each leader elector in a
//!   test that runs two.
//! - `prometheus-client` (the official Rust client, OpenMetrics text) keeps the dependency small;
//!   families are `Arc`s inside, so [`Metrics`] clones cheaply.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use kube::runtime::controller::Action;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `result` label of `upkeep_reconcile_total`.
pub const RESULT_SUCCESS: &str = "success";
/// `result` label of `upkeep_reconcile_total`.
pub const RESULT_ERROR: &str = "error";

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CampaignLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitingLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
    error: String,
}

type DurationFamily = Family<KindLabels, Histogram, fn() -> Histogram>;

/// 5 ms … about 10 s: a status patch is milliseconds, a registry scan can take seconds.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

/// The controller's metrics and the registry they are served from.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Family<ResultLabels, Counter>,
    durations: DurationFamily,
    errors: Family<ErrorLabels, Counter>,
    scans: Family<OutcomeLabels, Counter>,
    pushes: Family<OutcomeLabels, Counter>,
    cluster_upgrades: Family<CampaignLabels, Counter>,
    cluster_upgrade_durations: Histogram,
    clusters_waiting: Family<WaitingLabels, Gauge>,
    leader: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every upkeep metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ResultLabels, Counter>::default();
        let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
        let errors = Family::<ErrorLabels, Counter>::default();
        let leader = Gauge::default();
        let scans = Family::<OutcomeLabels, Counter>::default();
        let pushes = Family::<OutcomeLabels, Counter>::default();
        let cluster_upgrades = Family::<CampaignLabels, Counter>::default();
        // 1 minute … about 34 hours: a cluster upgrade takes minutes to hours.
        let cluster_upgrade_durations = Histogram::new(exponential_buckets(60.0, 2.0, 12));
        let clusters_waiting = Family::<WaitingLabels, Gauge>::default();
        // prometheus-client appends `_total` to counters and a full stop to help texts; a
        // family without samples is left out of the exposition.
        registry.register(
            "upkeep_reconcile",
            "Reconciles by kind and result (success or error)",
            reconciles.clone(),
        );
        registry.register(
            "upkeep_reconcile_duration_seconds",
            "Time spent in one reconcile, by kind",
            durations.clone(),
        );
        registry.register(
            "upkeep_reconcile_errors",
            "Failed reconciles by kind and error variant",
            errors.clone(),
        );
        registry.register(
            "upkeep_scans",
            "ChartSource scans by result (success, or the registry error kind)",
            scans.clone(),
        );
        registry.register(
            "upkeep_pushes",
            "AppUpgradeAutomation runs by result (pushed, up_to_date, error)",
            pushes.clone(),
        );
        registry.register(
            "upkeep_cluster_upgrades",
            "Clusters whose upgrade in a ClusterUpgrade ended, by outcome (Succeeded, Failed, Skipped, Halted)",
            cluster_upgrades.clone(),
        );
        registry.register(
            "upkeep_cluster_upgrade_duration_seconds",
            "Time from a cluster's acknowledged change (else its trigger) to its success or failure",
            cluster_upgrade_durations.clone(),
        );
        registry.register(
            "upkeep_clusters_waiting",
            "Clusters waiting to be upgraded, by reason (the rollout core's WaitReason)",
            clusters_waiting.clone(),
        );
        registry.register(
            "upkeep_leader",
            "1 while this process holds the leader Lease (or runs without leader election), else 0",
            leader.clone(),
        );
        Self {
            registry: Arc::new(registry),
            reconciles,
            durations,
            errors,
            scans,
            pushes,
            cluster_upgrades,
            cluster_upgrade_durations,
            clusters_waiting,
            leader,
        }
    }

    /// The process-wide metrics that [`instrumented`] records into.
    pub fn global() -> &'static Metrics {
        static GLOBAL: OnceLock<Metrics> = OnceLock::new();
        GLOBAL.get_or_init(Metrics::new)
    }

    /// Records one reconcile of `kind`: `error` is the failed reconcile's error label.
    pub fn record_reconcile(&self, kind: &'static str, error: Option<String>, elapsed: Duration) {
        let result = if error.is_some() {
            RESULT_ERROR
        } else {
            RESULT_SUCCESS
        };
        self.reconciles
            .get_or_create(&ResultLabels { kind, result })
            .inc();
        self.durations
            .get_or_create(&KindLabels { kind })
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.errors
                .get_or_create(&ErrorLabels { kind, error })
                .inc();
        }
    }

    /// Records one registry scan: `success`, or the registry error's kind.
    pub fn record_scan(&self, result: &'static str) {
        self.scans.get_or_create(&OutcomeLabels { result }).inc();
    }

    /// Records one GitOps write: `pushed`, `up_to_date` or `error`.
    pub fn record_push(&self, result: &'static str) {
        self.pushes.get_or_create(&OutcomeLabels { result }).inc();
    }

    /// Counts one cluster whose upgrade ended (`Succeeded`, `Failed`, `Skipped` or `Halted`):
    /// clusters, not campaigns, so a campaign over a thousand clusters weighs a thousand.
    pub fn record_cluster_upgrade(&self, outcome: &'static str) {
        self.cluster_upgrades
            .get_or_create(&CampaignLabels { outcome })
            .inc();
    }

    /// Observes how long one cluster took from its trigger to its end.
    pub fn observe_cluster_upgrade_duration(&self, seconds: f64) {
        self.cluster_upgrade_durations.observe(seconds);
    }

    /// Sets the number of clusters waiting for `reason`.
    pub fn set_clusters_waiting(&self, reason: &'static str, clusters: i64) {
        self.clusters_waiting
            .get_or_create(&WaitingLabels { reason })
            .set(clusters);
    }

    /// Sets `upkeep_leader`.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The current value of `upkeep_leader`.
    pub fn leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// The registry in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The label an error gets in `upkeep_reconcile_errors_total{error=…}`: its variant name.
///
/// The default reads the variant name off the derived `Debug` output, so `impl ErrorLabel for
/// MyError {}` is all an error enum needs and new variants are labelled without code changes.
pub trait ErrorLabel: std::fmt::Debug {
    fn label(&self) -> String {
        variant_name(&format!("{self:?}"))
    }
}

/// The leading identifier of a derived `Debug` rendering: `WriteStatus { .. }` → `WriteStatus`,
/// `Serialise(..)` → `Serialise`, `Timeout` → `Timeout`; anything else → `Unknown`.
pub fn variant_name(debug: &str) -> String {
    let name: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        "Unknown".to_owned()
    } else {
        name
    }
}

/// Wraps a reconcile function so every call is counted and timed in [`Metrics::global`], with
/// the same arguments and result: `.run(instrumented("MaintenanceSchedule", reconcile_schedule), …)`.
pub fn instrumented<K, C, E, F, Fut>(
    kind: &'static str,
    reconcile: F,
) -> impl FnMut(Arc<K>, Arc<C>) -> BoxFuture<'static, Result<Action, E>>
where
    F: FnMut(Arc<K>, Arc<C>) -> Fut,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: ErrorLabel,
{
    instrumented_with(Metrics::global().clone(), kind, reconcile)
}

/// [`instrumented`] recording into `metrics`.
pub fn instrumented_with<K, C, E, F, Fut>(
    metrics: Metrics,
    kind: &'static str,
    mut reconcile: F,
) -> impl FnMut(Arc<K>, Arc<C>) -> BoxFuture<'static, Result<Action, E>>
where
    F: FnMut(Arc<K>, Arc<C>) -> Fut,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: ErrorLabel,
{
    move |object, ctx| {
        let metrics = metrics.clone();
        let future = reconcile(object, ctx);
        Box::pin(async move {
            let started = Instant::now();
            let result = future.await;
            let error = result.as_ref().err().map(ErrorLabel::label);
            metrics.record_reconcile(kind, error, started.elapsed());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_come_from_debug() {
        let cases = [
            (
                "WriteStatus { kind: \"X\", namespace: \"a\" }",
                "WriteStatus",
                "struct variant",
            ),
            ("Serialise(Error(\"x\"))", "Serialise", "tuple variant"),
            ("Timeout", "Timeout", "unit variant"),
            (
                "Not_Found_2 {}",
                "Not_Found_2",
                "underscores and digits stay",
            ),
            ("", "Unknown", "empty Debug output"),
            ("\"a string\"", "Unknown", "a Debug that is not a variant"),
            ("42", "Unknown", "a number is not a variant name"),
        ];
        for (debug, want, why) in cases {
            assert_eq!(variant_name(debug), want, "{why}: {debug:?}");
        }
    }

    #[test]
    fn records_show_up_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.record_reconcile("MaintenanceSchedule", None, Duration::from_millis(3));
        metrics.record_reconcile(
            "MaintenanceSchedule",
            Some("WriteStatus".into()),
            Duration::from_millis(30),
        );
        metrics.set_leader(true);
        metrics.record_scan(RESULT_SUCCESS);
        metrics.record_scan("Unauthorized");
        metrics.record_push("pushed");
        metrics.record_cluster_upgrade("Failed");
        metrics.observe_cluster_upgrade_duration(90.0);
        metrics.set_clusters_waiting("Window", 3);
        let text = metrics.encode();
        let cases = [
            (
                "upkeep_reconcile_total{kind=\"MaintenanceSchedule\",result=\"success\"} 1",
                "one success counted",
            ),
            (
                "upkeep_reconcile_total{kind=\"MaintenanceSchedule\",result=\"error\"} 1",
                "one error counted",
            ),
            (
                "upkeep_reconcile_errors_total{kind=\"MaintenanceSchedule\",error=\"WriteStatus\"} 1",
                "the error labelled by variant",
            ),
            (
                "upkeep_reconcile_duration_seconds_count{kind=\"MaintenanceSchedule\"} 2",
                "both durations observed",
            ),
            ("upkeep_leader 1", "leader gauge set"),
            (
                "upkeep_scans_total{result=\"success\"} 1",
                "a successful scan",
            ),
            (
                "upkeep_scans_total{result=\"Unauthorized\"} 1",
                "a failed scan labelled by the registry error kind",
            ),
            ("upkeep_pushes_total{result=\"pushed\"} 1", "a push"),
            (
                "upkeep_cluster_upgrades_total{outcome=\"Failed\"} 1",
                "a finished campaign by outcome",
            ),
            (
                "upkeep_cluster_upgrade_duration_seconds_count 1",
                "a cluster's duration observed",
            ),
            (
                "upkeep_clusters_waiting{reason=\"Window\"} 3",
                "waiting clusters by reason",
            ),
        ];
        for (line, why) in cases {
            assert!(text.contains(line), "{why}: {line} not in\n{text}");
        }
    }

    #[tokio::test]
    async fn the_wrapper_keeps_the_result_and_records_it() {
        #[derive(Debug)]
        enum Failure {
            Boom { _why: &'static str },
        }
        impl ErrorLabel for Failure {}
        let metrics = Metrics::new();
        let mut wrapped = instrumented_with(
            metrics.clone(),
            "Thing",
            |n: Arc<u32>, _ctx: Arc<()>| async move {
                if *n == 0 {
                    Err(Failure::Boom { _why: "zero" })
                } else {
                    Ok(Action::await_change())
                }
            },
        );
        assert!(wrapped(Arc::new(1), Arc::new(())).await.is_ok());
        assert!(matches!(
            wrapped(Arc::new(0), Arc::new(())).await,
            Err(Failure::Boom { .. })
        ));
        let text = metrics.encode();
        assert!(
            text.contains("upkeep_reconcile_errors_total{kind=\"Thing\",error=\"Boom\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("upkeep_reconcile_total{kind=\"Thing\",result=\"success\"} 1"),
            "{text}"
        );
    }
}

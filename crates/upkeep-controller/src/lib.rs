//! upkeep inside the management cluster: one reconciler per upkeep kind, all of one shape.
//!
//! Why it is shaped this way:
//! - Decisions stay in `upkeep-core` and conversions in `upkeep-api`; a reconciler only
//!   gathers what the decision needs, asks the core what is true *now* (time is a parameter,
//!   taken once per reconcile), acts on the answer (status, Events, patches, commits) and says
//!   when to look again. That keeps each reconciler short and lets tests drive the same
//!   decisions at any time without a cluster.
//! - [`framework`] holds what every kind shares — the context, the one error type, status
//!   writing, conditions and the run loop — so a kind module holds only its gather, decide and
//!   act. Kinds depend on the framework and on shared modules named for what they hold
//!   ([`tags`], [`scan_requests`], [`discovery`], [`gitops`], [`cluster_app`],
//!   [`cluster_cache`]: the one Cluster watch the cluster kinds share), never on each other; the module graph is a DAG
//!   (checked by `tests/module_shape.rs`).
//! - Status conditions follow kstatus: `Ready`, `Reconciling` and `Stalled`, with
//!   `observedGeneration`. An invalid spec sets `Stalled` and waits for the next change (no
//!   retry storm); a transient failure returns an error and backs off.
//! - A MaintenanceSchedule is requeued exactly at its next boundary (a window opening or
//!   closing, an exclusion or freeze ending), never by polling.
//! - Operations live beside the reconcilers, not in them: [`leader`] runs the list of
//!   [`controllers`] only while holding a Lease, [`metrics`] counts and times reconciles,
//!   [`serve`] answers `/metrics`, `/healthz` and `/readyz`, [`receiver`] accepts registry push
//!   notifications.

// The framework and the shared modules (no kind in them).
pub mod alerts;
pub mod cluster_app;
pub mod cluster_cache;
pub mod discovery;
pub mod framework;
pub mod gitops;
pub mod metrics;
pub mod scan_requests;
pub mod shutdown;
pub mod tags;

// The kinds.
pub mod automation;
pub mod cluster_upgrade;
pub mod cluster_upgrade_policy;
pub mod flux_automation;
pub mod policy;
pub mod schedule;
pub mod scheduled;
pub mod source;

// Running them.
pub mod controllers;
pub mod leader;
pub mod receiver;
pub mod serve;

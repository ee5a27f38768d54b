//! upkeep inside the management cluster: one reconciler per upkeep kind, all of one shape.
//!
//! Why it is shaped this way:
//! - Decisions stay in `upkeep-core` and conversions in `upkeep-api`; a reconciler only reads
//!   the object, asks the core what is true *now* (time is a parameter, taken once per
//!   reconcile), writes status and says when to look again. That keeps each reconciler short
//!   and lets tests drive the same decisions at any time without a cluster.
//! - Status conditions follow kstatus: `Ready`, `Reconciling` and `Stalled`, with
//!   `observedGeneration`. An invalid spec sets `Stalled` and waits for the next change (no
//!   retry storm); a transient failure returns an error and backs off.
//! - A MaintenanceSchedule is requeued exactly at its next boundary (a window opening or
//!   closing, an exclusion or freeze ending), never by polling.
//! - Operations live beside the reconcilers, not in them: [`leader`] runs the list of
//!   [`controllers`] only while holding a Lease, [`metrics`] wraps reconcile functions to count
//!   and time them, [`serve`] answers `/metrics`, `/healthz` and `/readyz`.

pub mod alerts;
pub mod automation;
pub mod cluster_upgrade;
pub mod cluster_upgrade_policy;
pub mod conditions;
pub mod controllers;
pub mod discovery;
pub mod flux_automation;
pub mod leader;
pub mod metrics;
pub mod policy;
pub mod reconcile;
pub mod schedule;
pub mod serve;
pub mod source;
pub mod tags;

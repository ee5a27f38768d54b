//! The reconciler framework: what every upkeep controller shares, in one place.
//!
//! Why it is shaped this way:
//! - A kind module (`schedule`, `source`, `policy`, `automation`, `flux_automation`,
//!   `cluster_upgrade_policy`, `cluster_upgrade`) only says how to *gather* what its decision
//!   needs (reads), *decide* (a pure function of the object, what was gathered and `now`), and
//!   *act* (writes). Everything around that is here: the shared [`Context`] (client, clock,
//!   metrics, retry interval, Event reporter), the one [`Error`] whose variant names are the
//!   metric labels, status writing ([`status`]), kstatus conditions ([`conditions`]) and the
//!   run loop with its error policy ([`mod@run`]).
//! - Dependencies point one way: kinds depend on the framework and on shared modules named for
//!   what they hold (`tags`, `discovery`, `gitops`), never on each other; the framework depends
//!   on nothing but `metrics`. `tests/module_shape.rs` checks this (and that no function of a
//!   kind is over 80 lines) on the sources.

pub mod conditions;
pub mod context;
pub mod error;
pub mod run;
pub mod status;

pub use context::{CLI_FIELD_MANAGER, Context, FIELD_MANAGER, Shared, USER_AGENT, client};
pub use error::{Error, SecretProblem};
pub use run::{
    RECONCILE_CONCURRENCY, controller_config, lean, lean_controller, run, watch_backoff,
};
pub use status::{
    event_note, redacted_status, status_patch, until, write_status, write_status_version,
};

//! One module per command, each with `Args` and `run`, and nothing else: what several commands
//! share lives outside `cmd/`, in a module named for what it does (`app_fields`, `app_write`,
//! `campaign_view`, `cluster_upgrade`, `management`, `store`, …), so commands never depend on
//! one another.

pub(crate) mod apply;
pub(crate) mod calendar;
pub(crate) mod controller;
pub(crate) mod crds;
pub(crate) mod freeze;
pub(crate) mod history;
pub(crate) mod plan;
pub(crate) mod quickstart;
pub(crate) mod run;
pub(crate) mod scan;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod upgrade;
pub(crate) mod validate;
pub(crate) mod versions;
pub(crate) mod windows;

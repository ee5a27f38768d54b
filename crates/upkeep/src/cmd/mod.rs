//! One module per command, each with `Args` and `run`.

pub(crate) mod apply;
pub(crate) mod controller;
pub(crate) mod crds;
pub(crate) mod freeze;
pub(crate) mod history;
pub(crate) mod kube;
pub(crate) mod plan;
pub(crate) mod quickstart;
pub(crate) mod run;
pub(crate) mod scan;
pub(crate) mod status;
pub(crate) mod upgrade;
pub(crate) mod validate;
pub(crate) mod versions;
pub(crate) mod windows;

use clap::ValueEnum;

/// `--output`: text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Output {
    #[default]
    Text,
    Json,
}

//! What `upkeep plan` and `upkeep apply` both read before they decide: the repository, the time
//! to decide at (`--at`) and the registry credentials (`--docker-config`). One flattened
//! argument block, so the two commands take these the same way and fail on them the same way;
//! a command that words a flag's help for itself overrides it with `mut_arg`.

use crate::Outcome;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::path::PathBuf;
use upkeep_registry::Credentials;

#[derive(Debug, clap::Args)]
pub(crate) struct RepoInput {
    /// The GitOps repository (a checkout, or any directory without --push).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub(crate) repo: PathBuf,
    /// Decide as if it were this time (RFC 3339, or a UTC wall-clock time); default: now.
    #[arg(long, value_name = "TIME")]
    pub(crate) at: Option<String>,
    /// A Docker config.json with registry credentials.
    #[arg(long, value_name = "FILE")]
    pub(crate) docker_config: Option<PathBuf>,
}

impl RepoInput {
    /// `--at`, or now; a bad `--at` is reported on stderr and is invalid input.
    pub(crate) fn now(&self) -> Result<Timestamp, Outcome> {
        match &self.at {
            Some(s) => crate::timearg::parse(s, &TimeZone::UTC).map_err(|e| {
                crate::render::error_with_hint(&format!("--at: {e}"), None);
                Outcome::Invalid
            }),
            None => Ok(Timestamp::now()),
        }
    }

    /// The registry credentials (`--docker-config`, else the usual places); an unreadable file
    /// is reported on stderr and is invalid input.
    pub(crate) fn credentials(&self) -> Result<Credentials, Outcome> {
        crate::discover::credentials(self.docker_config.as_deref()).map_err(|e| {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            Outcome::Invalid
        })
    }
}

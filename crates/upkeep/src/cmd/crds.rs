//! `upkeep crds`: the CustomResourceDefinitions of every upkeep kind, generated from the
//! types in `upkeep-api` (the same ones `deploy/crds/` holds; a test fails when they differ).

use std::path::PathBuf;

use miette::{IntoDiagnostic, WrapErr};

use crate::Outcome;
use crate::out::out_raw;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Without --out, prints every CRD as one YAML stream: `upkeep crds | kubectl apply -f -`."
)]
pub(crate) struct Args {
    /// Write one file per CRD into this directory instead (e.g. deploy/crds).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let crds = upkeep_api::crds_yaml();
    match &args.out {
        None => {
            for (_, yaml) in &crds {
                out_raw!("{yaml}");
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .into_diagnostic()
                .wrap_err_with(|| format!("creating {}", dir.display()))?;
            for (name, yaml) in &crds {
                let path = dir.join(name);
                std::fs::write(&path, yaml)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(Outcome::Success)
}

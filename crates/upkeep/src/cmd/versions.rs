//! `upkeep versions`: select the latest allowed version from a list of tags.

use std::io::Read;
use std::path::PathBuf;

use jiff::Timestamp;
use miette::{IntoDiagnostic, WrapErr, miette};
use serde::Serialize;
use upkeep_core::version::{Constraints, Policy, PolicyKind, TagFilter, TagInfo};

use super::Output;
use crate::Outcome;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when a version is selected, 1 when none matches, 2 on invalid input.\n\n\
Examples:\n  printf '1.2.3\\nv1.3.0\\n1.4.0-rc.1\\n' | upkeep versions --range '^1.2' --tags-from -\n  \
upkeep versions --range '>=1.0.0-0 <2' --tags-from tags.txt --output json"
)]
pub(crate) struct Args {
    /// A semver range in Masterminds/semver syntax (as Flux reads it), e.g. `^1.2`, `>=1.0 <2 || 3.x`.
    #[arg(long, short, default_value = "*")]
    range: String,
    /// A file with one tag per line, or `-` for standard input. Blank lines are skipped.
    #[arg(long, value_name = "FILE|-")]
    tags_from: PathBuf,
    /// Only consider tags matching this regex (Flux `filterTags.pattern`).
    #[arg(long, value_name = "REGEX")]
    filter: Option<String>,
    /// Compare this template of the filter's groups instead of the whole tag (`$version`, `${1}`).
    #[arg(long, value_name = "TEMPLATE", requires = "filter")]
    extract: Option<String>,
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Serialize)]
struct Json<'a> {
    selected: Option<&'a str>,
    considered: usize,
    ignored: usize,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    let constraints = match Constraints::parse(&args.range) {
        Ok(c) => c,
        Err(e) => {
            crate::render::error_with_hint(&format!("--range {:?}: {e}", args.range), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    let filter = match &args.filter {
        Some(p) => match TagFilter::new(p, args.extract.as_deref()) {
            Ok(f) => Some(f),
            Err(e) => {
                crate::render::error_with_hint(&format!("--filter {p:?}: {e}"), None);
                return Ok(Outcome::Invalid);
            }
        },
        None => None,
    };
    let text = read_input(&args.tags_from)?;
    let tags: Vec<TagInfo<'_>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|tag| TagInfo {
            tag,
            first_seen: None,
        })
        .collect();
    let policy = Policy {
        kind: PolicyKind::SemverRange(constraints),
        filter,
        minimum_release_age: None,
        pin: None,
    };
    let selection = policy.select(&tags, Timestamp::now());

    match args.output {
        Output::Json => {
            let json = Json {
                selected: selection.selected,
                considered: selection.considered,
                ignored: selection.ignored,
            };
            println!("{}", serde_json::to_string(&json).into_diagnostic()?);
        }
        Output::Text => {
            if let Some(tag) = selection.selected {
                println!("{tag}");
            }
            let verdict = if selection.selected.is_some() {
                "selected"
            } else {
                "no version matches"
            };
            eprintln!(
                "{verdict}: range {:?}, {} version(s) considered, {} tag(s) ignored (not SemVer{})",
                args.range,
                selection.considered,
                selection.ignored,
                if args.filter.is_some() {
                    " or filtered out"
                } else {
                    ""
                },
            );
        }
    }
    Ok(if selection.selected.is_some() {
        Outcome::Success
    } else {
        Outcome::No
    })
}

fn read_input(path: &PathBuf) -> miette::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .into_diagnostic()
            .wrap_err("reading tags from standard input")?;
        Ok(s)
    } else {
        let bytes = std::fs::read(path)
            .into_diagnostic()
            .wrap_err_with(|| format!("reading tags from {}", path.display()))?;
        String::from_utf8(bytes).map_err(|e| miette!("{}: not UTF-8 text ({e})", path.display()))
    }
}

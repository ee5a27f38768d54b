//! `upkeep versions`: select the latest allowed version from a list of tags.

use crate::out::outln;
use std::io::Read;
use std::path::PathBuf;

use jiff::Timestamp;
use miette::{IntoDiagnostic, WrapErr, miette};
use serde::Serialize;
use upkeep_core::version::{Constraints, Policy, PolicyKind, TagFilter, TagInfo, Version};

use crate::Outcome;
use crate::out::Output;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when a version is selected, 1 when none matches, 2 on invalid input \
or when the source cannot be read.\n\n\
Registry credentials come from --docker-config, $DOCKER_CONFIG/config.json or ~/.docker/config.json \
(auths and credential helpers, as Docker and Helm read them); without one, access is anonymous.\n\n\
Examples:\n  upkeep versions oci://ghcr.io/org/charts/podinfo --range '^6'\n  \
upkeep versions https://charts.jetstack.io --chart cert-manager --range '~1.15' --output json\n  \
upkeep versions oci-layout:examples/quickstart/charts/podinfo\n  \
printf '1.2.3\\nv1.3.0\\n1.4.0-rc.1\\n' | upkeep versions --range '^1.2' --tags-from -"
)]
pub(crate) struct Args {
    /// Where to list tags: `oci://host[:port]/path/chart`, `https://…` (with --chart), or `oci-layout:DIR`.
    #[arg(
        value_name = "SOURCE",
        required_unless_present = "tags_from",
        conflicts_with = "tags_from"
    )]
    source: Option<String>,
    /// The chart's name in a Helm HTTP repository.
    #[arg(long, requires = "source")]
    chart: Option<String>,
    /// Allow plain HTTP to the registry.
    #[arg(long, requires = "source")]
    insecure: bool,
    /// A PEM file of CA certificates to trust for the registry.
    #[arg(long, value_name = "FILE", requires = "source")]
    ca_file: Option<PathBuf>,
    /// A Docker config.json with registry credentials.
    #[arg(long, value_name = "FILE", requires = "source")]
    docker_config: Option<PathBuf>,
    /// A semver range in Masterminds/semver syntax (as Flux reads it), e.g. `^1.2`, `>=1.0 <2 || 3.x`.
    #[arg(long, short, default_value = "*")]
    range: String,
    /// A file with one tag per line, or `-` for standard input. Blank lines are skipped.
    #[arg(long, value_name = "FILE|-")]
    tags_from: Option<PathBuf>,
    /// Only consider tags matching this regex (Flux `filterTags.pattern`).
    #[arg(long, value_name = "REGEX")]
    filter: Option<String>,
    /// Compare this template of the filter's groups instead of the whole tag (`$version`, `${1}`).
    #[arg(long, value_name = "TEMPLATE", requires = "filter")]
    extract: Option<String>,
    /// `text` for people, `json` for programs.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Serialize)]
struct Json<'a> {
    selected: Option<&'a str>,
    considered: usize,
    ignored: usize,
    /// With a SOURCE: every tag listed (after the exclusion list), newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<&'a str>>,
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
    let listed: Vec<String> = match (&args.source, &args.tags_from) {
        (Some(source), _) => match list_source(args, source) {
            Ok(tags) => tags,
            Err(e) => {
                crate::render::error_with_hint(&e.to_string(), e.hint());
                return Ok(Outcome::Invalid);
            }
        },
        (None, Some(file)) => read_input(file)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, None) => unreachable!("clap requires SOURCE or --tags-from"),
    };
    let tags: Vec<TagInfo<'_>> = listed
        .iter()
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
    let newest_first = args.source.as_ref().map(|_| newest_first(&listed));

    match args.output {
        Output::Json => {
            let json = Json {
                selected: selection.selected,
                considered: selection.considered,
                ignored: selection.ignored,
                tags: newest_first,
            };
            outln!("{}", serde_json::to_string(&json).into_diagnostic()?);
        }
        Output::Text => {
            match &newest_first {
                // A source: every tag, newest first, the selected one marked.
                Some(all) => {
                    for tag in all {
                        if Some(*tag) == selection.selected {
                            outln!("{tag}  <- selected");
                        } else {
                            outln!("{tag}");
                        }
                    }
                }
                None => {
                    if let Some(tag) = selection.selected {
                        outln!("{tag}");
                    }
                }
            }
            let verdict = match selection.selected {
                Some(t) => format!("selected {t}"),
                None => "no version matches".to_owned(),
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

/// Lists the tags of SOURCE (exclusion list applied: signatures by default).
fn list_source(args: &Args, source: &str) -> Result<Vec<String>, upkeep_registry::RegistryError> {
    let credentials = crate::discover::credentials(args.docker_config.as_deref())?;
    let client = crate::discover::client();
    let options = crate::discover::cli_options(args.insecure, args.ca_file.as_deref());
    let source = upkeep_registry::Source::new(
        &client,
        source,
        args.chart.as_deref(),
        options,
        &credentials,
    )?;
    let rt = crate::discover::runtime().map_err(|e| upkeep_registry::RegistryError::Io {
        path: PathBuf::from("<runtime>"),
        detail: e.to_string(),
    })?;
    let list = rt.block_on(source.list_tags())?;
    if list.excluded > 0 {
        eprintln!(
            "{} tag(s) excluded by the exclusion list (signatures)",
            list.excluded
        );
    }
    Ok(list.tags.into_iter().map(|t| t.name).collect())
}

/// Versions newest first (SemVer precedence), then the tags that are not versions, as listed.
fn newest_first(tags: &[String]) -> Vec<&str> {
    let mut versions: Vec<(Version, &str)> = Vec::new();
    let mut others: Vec<&str> = Vec::new();
    for t in tags {
        match Version::parse(t) {
            Some(v) => versions.push((v, t)),
            None => others.push(t),
        }
    }
    versions.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    versions.into_iter().map(|(_, t)| t).chain(others).collect()
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

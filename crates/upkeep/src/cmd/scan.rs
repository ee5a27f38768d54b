//! `upkeep scan`: list the tags of every ChartSource under a directory, concurrently, and say
//! what each VersionPolicy over them allows.

use crate::out::{out, outln};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use miette::IntoDiagnostic;
use serde::Serialize;
use upkeep_api::{Resource, load_path, namespaced_name};
use upkeep_core::redact::redact;
use upkeep_core::version::Policy;
use upkeep_registry::{RegistryError, Source, TagList, scan_all, tag_infos};

use crate::Outcome;
use crate::out::Output;
use crate::render::Table;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every source was listed, 1 when any failed, 2 when the \
manifests are invalid.\n\nRegistry credentials come from --docker-config, $DOCKER_CONFIG/config.json or \
~/.docker/config.json; without one, access is anonymous."
)]
pub(crate) struct Args {
    /// The directory (or file) holding ChartSource and VersionPolicy manifests.
    #[arg(long, default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// How many sources to list at once (connections per registry host are bounded separately).
    #[arg(long, default_value_t = 16, value_name = "N")]
    concurrency: usize,
    /// A Docker config.json with registry credentials.
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// `text` for people, `json` for programs.
    #[arg(long, short, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Serialize)]
struct JsonPolicy {
    policy: String,
    selected: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSource {
    source: String,
    url: String,
    tags: Option<usize>,
    excluded: Option<usize>,
    policies: Vec<JsonPolicy>,
    error: Option<String>,
    error_kind: Option<&'static str>,
}

/// A ChartSource with the policies that read it.
struct Entry {
    name: String,
    url: String,
    source: Option<Result<Source, RegistryError>>,
    /// The source's key and tags, or why it could not be built or listed.
    listed: Option<Result<(String, TagList), RegistryError>>,
    policies: Vec<(String, Policy)>,
}

pub(crate) fn run(args: &Args) -> miette::Result<Outcome> {
    if !args.dir.exists() {
        crate::render::error_with_hint(
            &format!("{}: no such file or directory", args.dir.display()),
            None,
        );
        return Ok(Outcome::Invalid);
    }
    let loaded = load_path(&args.dir);
    if !loaded.diagnostics.is_empty() {
        crate::render::print_diagnostics(&loaded.diagnostics);
        return Ok(Outcome::Invalid);
    }
    let credentials = match crate::discover::credentials(args.docker_config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            crate::render::error_with_hint(&e.to_string(), e.hint());
            return Ok(Outcome::Invalid);
        }
    };
    let client = crate::discover::client();
    let mut entries: BTreeMap<(String, String), Entry> = BTreeMap::new();
    let mut policies = Vec::new();
    for doc in loaded.documents {
        match doc.resource {
            Resource::ChartSource { object, settings } => {
                let (ns, name) = namespaced_name(&object.metadata);
                let source = crate::discover::source_for(
                    &client,
                    &object,
                    &settings,
                    &doc.file,
                    &credentials,
                );
                entries.insert(
                    (ns.clone(), name.clone()),
                    Entry {
                        name: format!("{ns}/{name}"),
                        url: redact(&object.spec.url).into_owned(),
                        listed: None,
                        source: Some(source),
                        policies: Vec::new(),
                    },
                );
            }
            Resource::VersionPolicy { object, policy } => policies.push((object, policy)),
            _ => {}
        }
    }
    for (object, policy) in policies {
        let (ns, policy_name) = namespaced_name(&object.metadata);
        let source_ns = object
            .spec
            .source_ref
            .namespace
            .clone()
            .unwrap_or_else(|| ns.clone());
        let name = format!("{ns}/{policy_name}");
        if let Some(e) = entries.get_mut(&(source_ns, object.spec.source_ref.name.clone())) {
            e.policies.push((name, *policy));
        } else {
            eprintln!(
                "warning: VersionPolicy {name} refers to a ChartSource that is not in {}",
                args.dir.display()
            );
        }
    }
    if entries.is_empty() {
        crate::render::error_with_hint(
            &format!("no ChartSource found in {}", args.dir.display()),
            Some("point --dir at the directory holding your upkeep manifests".into()),
        );
        return Ok(Outcome::Invalid);
    }

    let mut entries: Vec<Entry> = entries.into_values().collect();
    // Sources that could be built are listed together; the others keep their error.
    let mut sources = Vec::new();
    let mut positions = Vec::new();
    for (i, e) in entries.iter_mut().enumerate() {
        match e.source.take() {
            Some(Ok(s)) => {
                sources.push(s);
                positions.push(i);
            }
            Some(Err(err)) => e.listed = Some(Err(err)),
            None => {}
        }
    }
    let bar = progress_bar(sources.len());
    let rt = crate::discover::runtime().into_diagnostic()?;
    let results = rt.block_on(scan_all(&sources, args.concurrency.max(1), |r| {
        bar.set_message(r.key.clone());
        bar.inc(1);
    }));
    bar.finish_and_clear();
    for (r, i) in results.into_iter().zip(positions) {
        entries[i].listed = Some(r.result.map(|list| (r.key, list)));
    }

    let now = Timestamp::now();
    let mut failed = 0;
    let mut rows = Vec::new();
    for e in &entries {
        let row = match &e.listed {
            Some(Ok((key, list))) => {
                let seen = crate::discover::seen(key, list, now);
                let infos = tag_infos(&seen);
                let policies = e
                    .policies
                    .iter()
                    .map(|(name, p)| JsonPolicy {
                        policy: name.clone(),
                        selected: p.select(&infos, now).selected.map(str::to_owned),
                    })
                    .collect();
                JsonSource {
                    source: e.name.clone(),
                    url: e.url.clone(),
                    tags: Some(list.tags.len()),
                    excluded: Some(list.excluded),
                    policies,
                    error: None,
                    error_kind: None,
                }
            }
            Some(Err(err)) => {
                failed += 1;
                JsonSource {
                    source: e.name.clone(),
                    url: e.url.clone(),
                    tags: None,
                    excluded: None,
                    policies: Vec::new(),
                    error: Some(err.to_string()),
                    error_kind: Some(err.kind()),
                }
            }
            None => unreachable!("every source was built and listed, or failed"),
        };
        rows.push(row);
    }

    match args.output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&rows).into_diagnostic()?),
        Output::Text => {
            let mut t = Table::new(&["SOURCE", "URL", "TAGS", "LATEST ALLOWED", "ERROR"]);
            for r in &rows {
                let latest = r
                    .policies
                    .iter()
                    .map(|p| format!("{}={}", p.policy, p.selected.as_deref().unwrap_or("(none)")))
                    .collect::<Vec<_>>()
                    .join(", ");
                t.row(vec![
                    r.source.clone(),
                    r.url.clone(),
                    r.tags.map_or_else(|| "-".into(), |n| n.to_string()),
                    if latest.is_empty() {
                        "-".into()
                    } else {
                        latest
                    },
                    r.error.clone().unwrap_or_default(),
                ]);
            }
            out!("{}", t.render(""));
        }
    }
    eprintln!("scanned {} source(s), {failed} failed", rows.len());
    Ok(if failed == 0 {
        Outcome::Success
    } else {
        Outcome::No
    })
}

/// A progress bar on a terminal; hidden otherwise (CI logs stay clean).
fn progress_bar(len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(len).unwrap_or(u64::MAX));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} scanning [{bar:30}] {pos}/{len} {wide_msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

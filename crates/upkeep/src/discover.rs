//! Discovery glue for commands: credentials, sources built from ChartSources, one runtime.
//!
//! Standalone upkeep reads registry credentials the way Docker and Helm do: `--docker-config`,
//! else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; a missing file means
//! anonymous access. A ChartSource's `secretRef`/`certSecretRef` name Kubernetes Secrets, which
//! only the controller reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use upkeep_api::{ChartSource, SourceSettings};
use upkeep_registry::{
    CaBundle, Client, ClientConfig, Credentials, DockerConfig, MemoryFirstSeen, RegistryError,
    SeenTag, Source, SourceOptions, TagList, merge_first_seen,
};

/// A multi-threaded runtime for the async registry client.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// The shared registry client (connection pools, per-host limits, token cache).
pub(crate) fn client() -> Client {
    Client::new(ClientConfig::default())
}

/// Registry credentials from Docker's config file, or anonymous.
pub(crate) fn credentials(explicit: Option<&Path>) -> Result<Credentials, RegistryError> {
    let path: Option<PathBuf> = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => std::env::var_os("DOCKER_CONFIG")
            .map(|d| PathBuf::from(d).join("config.json"))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
            })
            .filter(|p| p.is_file()),
    };
    match path {
        Some(p) => Ok(Credentials::DockerConfig(Arc::new(DockerConfig::load(&p)?))),
        None => Ok(Credentials::Anonymous),
    }
}

/// The registry source of a validated ChartSource; relative `oci-layout:` paths are read
/// relative to the manifest's directory.
pub(crate) fn source_for(
    client: &Client,
    object: &ChartSource,
    settings: &SourceSettings,
    manifest: &Path,
    credentials: &Credentials,
) -> Result<Source, RegistryError> {
    let mut options = SourceOptions {
        insecure: settings.insecure,
        exclusions: object.spec.exclusion_list.clone(),
        base_dir: manifest.parent().map(Path::to_path_buf),
        ..SourceOptions::default()
    };
    if let Some(t) = settings.timeout.and_then(|t| t.try_into().ok()) {
        options.timeout = t;
    }
    Source::new(
        client,
        &object.spec.url,
        object.spec.chart.as_deref(),
        options,
        credentials,
    )
}

/// Options for a source given on the command line.
pub(crate) fn cli_options(insecure: bool, ca_file: Option<&Path>) -> SourceOptions {
    SourceOptions {
        insecure,
        ca: ca_file.map(|p| CaBundle::File(p.to_path_buf())),
        base_dir: std::env::current_dir().ok(),
        ..SourceOptions::default()
    }
}

/// Tags with their first-seen times: the `created` annotation when the source has one,
/// otherwise first seen `now` (the standalone store that remembers them comes with `upkeep run`).
pub(crate) fn seen(key: &str, list: &TagList, now: Timestamp) -> Vec<SeenTag> {
    let store = MemoryFirstSeen::default();
    match merge_first_seen(&store, key, list, now) {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

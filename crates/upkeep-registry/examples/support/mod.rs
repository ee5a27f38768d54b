//! What the registry benchmark drivers share: how they end (the error on stderr, exit
//! status 1), and the one listing they all time, done the way `skopeo list-tags` does it
//! (anonymous, plain HTTP, exclusions off, so the listing is the registry's raw answer).
#![allow(clippy::print_stderr, reason = "a driver's errors go to stderr")]
#![allow(dead_code, reason = "each driver uses a different part")]

use std::process::ExitCode;

use upkeep_registry::{Client, ClientConfig, Credentials, Source, SourceOptions, TagList};

/// `run`'s outcome as the process's: success, or `error: <msg>` on stderr and status 1.
pub(crate) fn exit(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Lists the tags at `location` as skopeo does: anonymous, over plain HTTP, nothing excluded.
pub(crate) async fn list_like_skopeo(location: &str) -> Result<TagList, String> {
    let client = Client::new(ClientConfig::default());
    let options = SourceOptions {
        insecure: true,
        exclusions: Vec::new(),
        ..SourceOptions::default()
    };
    let source = Source::new(&client, location, None, options, &Credentials::Anonymous)
        .map_err(|e| e.to_string())?;
    source.list_tags().await.map_err(|e| e.to_string())
}

//! How the tests against the real registry of `upkeep-testenv` reach it: the source options
//! its scheme needs (plain HTTP, or its private CA) and its credentials as a Docker
//! `config.json`, the form a user's secret takes.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::sync::Arc;
use std::time::Duration;

use upkeep_registry::{CaBundle, Credentials, DockerConfig, SourceOptions};
use upkeep_testenv::Registry;

pub(crate) fn options_for(reg: &Registry) -> SourceOptions {
    SourceOptions {
        insecure: reg.base_url().starts_with("http://"),
        ca: reg.ca_pem_path().map(|p| CaBundle::File(p.to_owned())),
        request_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(60),
        ..SourceOptions::default()
    }
}

pub(crate) fn credentials_for(reg: &Registry) -> Credentials {
    let json = serde_json::to_vec(&reg.docker_config_json()).expect("serializable config");
    Credentials::DockerConfig(Arc::new(
        DockerConfig::from_json(&json, "testenv config.json").expect("testenv config parses"),
    ))
}

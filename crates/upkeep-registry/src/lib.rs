//! Tag discovery for upkeep: OCI distribution registries, Helm HTTP repositories and OCI
//! image-layout directories behind one [`Source`] interface.
//!
//! Shape and why:
//! - We speak the OCI distribution API directly over `reqwest` instead of using `oci-client`:
//!   tag listing needs `Link` pagination (relative and absolute) with a `last=` fallback,
//!   loop detection and page/tag caps, `429`/`Retry-After` handling, response size caps
//!   enforced while streaming, and connection limits per host shared by many repositories.
//! - One TLS stack: rustls with the ring provider ([`install_crypto_provider`]).
//! - A shared [`Client`] owns connection pools, per-host semaphores and the bearer-token
//!   cache; [`Source`]s are cheap views over it, so [`scan_all`] of hundreds of repositories
//!   keeps connections bounded.
//! - Secrets are typed ([`Secret`]) and redacted in `Debug`; errors name server and request
//!   but never credentials.
//! - Registry push notifications ([`notification`]) are parsed and authenticated here, as pure
//!   functions, so the HTTP endpoint above only moves bytes.
//! - First-seen bookkeeping ([`FirstSeenStore`]) takes `now` as a parameter, like the core.

mod auth;
mod error;
mod first_seen;
mod helm;
mod layout;
mod location;
pub mod notification;
mod scan;
mod source;
mod transport;

pub use auth::{
    BasicAuth, Challenge, Credentials, DockerConfig, Secret, normalize_host, parse_www_authenticate,
};
pub use error::RegistryError;
pub use first_seen::{SeenTag, merge_first_seen, tag_infos, unseen};
pub use helm::{
    IndexEntry, IndexError, IndexLimits, MAX_DEPTH as INDEX_MAX_DEPTH, parse_index,
    parse_index_with,
};
pub use layout::{blob_path, split_ref_name};
pub use location::Location;
pub use notification::{NotificationError, Pushed, Sender};
pub use scan::{ScanResult, scan_all};
pub use source::{
    CaBundle, MANIFEST_ACCEPT, MAX_TAGS, SizeLimits, Source, SourceOptions, Tag, TagList,
    is_digest, parse_link_next,
};
pub use transport::{Client, ClientConfig, backoff, install_crypto_provider, parse_retry_after};
/// Re-exported from `upkeep-core`, where the trait lives.
pub use upkeep_core::version::{FirstSeenStore, MemoryFirstSeen};

#[cfg(test)]
mod tests;

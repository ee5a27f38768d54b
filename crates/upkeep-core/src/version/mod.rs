//! Versions: which tag a policy allows.
//!
//! Three layers, each usable alone:
//! - [`Version`]: a tag read the way Flux reads it (strict SemVer 2.0, optional `v`);
//! - [`Constraints`]: the Masterminds/semver v3 range language Flux users already write;
//! - [`Policy`]: the `VersionPolicy` resource's decision: which tag of a repository is
//!   allowed now, and why each other tag is not ([`Rejection`], [`Selection::held`]).
//!
//! Everything here is pure and takes `now` as a parameter.

mod constraint;
mod first_seen;
mod policy;
mod semver;

pub use constraint::{Comparator, ConstraintError, Constraints, Op};
pub use first_seen::{FirstSeenStore, MemoryFirstSeen};
pub use policy::{
    FilterError, Held, Order, Policy, PolicyKind, Rejection, Selection, TagFilter, TagInfo,
};
pub use semver::{UpgradeKind, Version};

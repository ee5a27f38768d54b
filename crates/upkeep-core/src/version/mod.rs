//! Versions: which tag a policy allows.
//!
//! CONTRACT (skeleton): the public names below are what `upkeep-api`, the CLI and later
//! crates call. Implementations may add items but must keep these signatures.

mod constraint;
mod policy;
mod semver;

pub use constraint::{ConstraintError, Constraints};
pub use policy::{
    FilterError, Order, Policy, PolicyKind, Rejection, Selection, TagFilter, TagInfo,
};
pub use semver::{UpgradeKind, Version};

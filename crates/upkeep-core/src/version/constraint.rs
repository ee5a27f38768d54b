//! The constraint language of Masterminds/semver v3.

/// A parsed constraint string such as `>=1.2 <2 || ^3.0.0-0`.
#[derive(Debug, Clone)]
pub struct Constraints {
    original: String,
}

impl Constraints {
    pub fn parse(s: &str) -> Result<Constraints, ConstraintError> {
        let _ = s;
        panic!("CONTRACT placeholder: Constraints::parse")
    }
    pub fn matches(&self, v: &super::Version) -> bool {
        let _ = v;
        panic!("CONTRACT placeholder")
    }
    pub fn as_str(&self) -> &str {
        &self.original
    }
}

/// Why a constraint string is invalid. `Display` is one line naming the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error("invalid constraint {0:?}")]
    Invalid(String),
}

impl ConstraintError {
    /// A short hint at the fix, shown after `hint:`.
    pub fn hint(&self) -> Option<String> {
        None
    }
}

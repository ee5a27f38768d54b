//! upkeep's resources, `upkeep.dev/v1alpha1`.

//! Manifests: the version fields that upkeep markers point at.

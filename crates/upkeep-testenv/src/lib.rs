//! Test environment (skeleton).

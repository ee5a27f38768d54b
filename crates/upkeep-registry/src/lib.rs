//! Tag discovery (skeleton).

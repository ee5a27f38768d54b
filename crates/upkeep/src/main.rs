//! The `upkeep` binary.
fn main() {}

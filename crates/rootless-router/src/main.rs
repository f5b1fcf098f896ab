//! The `rootless-router` binary.
fn main() {}

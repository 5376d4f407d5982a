//! `tresord`: the daemon binary (its body lands with the daemon branch).

fn main() {}

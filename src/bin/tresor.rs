//! `tresor`: the command-line interface (written on the `cli` branch).

fn main() {}

//! `tresor`: the command-line interface. Parses, runs [`tresor::cli::run`], and maps the
//! error to the exit code of SPEC §7 (clap itself exits 2 on usage errors).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tresor::cli::main_with(tresor::cli::Cli::parse())
}

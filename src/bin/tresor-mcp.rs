//! `tresor-mcp`: `tresor mcp` under an executable name of its own. The daemon takes a peer's
//! executable from the kernel (`/proc/PID/exe`) for the audit, so reads made here are
//! recorded with `exe` = `.../tresor-mcp`: the record says that an MCP client asked.
//! `tresor mcp` runs this binary when it is installed beside `tresor`; it takes the same
//! global options, and the `mcp` subcommand is implied.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use tresor::cli::Cli;
use tresor::cli::args::Command;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    // Global options go before the subcommand (`--json` may also follow it).
    if !args.iter().skip(1).any(|a| a == "mcp") {
        args.push("mcp".into());
    }
    let cli = Cli::parse_from(args);
    if !matches!(cli.command, Command::Mcp) {
        eprintln!("error: tresor-mcp serves MCP only: tresor-mcp [GLOBAL OPTIONS] [mcp]");
        return ExitCode::from(2);
    }
    tresor::cli::main_with(cli)
}

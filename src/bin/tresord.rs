//! `tresord`: the tresor daemon. Parses its arguments and runs [`tresor::daemon::main_with_args`].

use clap::Parser;

/// Holds an unlocked tresor store and serves local agents over a Unix socket.
#[derive(Parser)]
#[command(name = "tresord", version, about)]
struct Cli {
    #[command(flatten)]
    args: tresor::daemon::DaemonArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match tresor::daemon::main_with_args(&cli.args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tresord: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("  {hint}");
            }
            std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

//! `tresor`: the command-line interface. Parses, runs [`tresor::cli::run`], and maps the
//! error to the exit code of SPEC §7 (clap itself exits 2 on usage errors).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tresor::cli::Cli::parse();
    match tresor::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

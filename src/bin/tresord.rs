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
    bound_malloc_arenas();
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

/// glibc gives threads that allocate at once arenas of their own (up to eight per core) and
/// keeps what is freed in them: after 16 concurrent readers the daemon held some 30 MiB more
/// than it used. Two arenas bound that (RSS after a load at 100k secrets: 86 → 70 MiB, same
/// throughput; `benches/scale.sh`). glibc reads `MALLOC_ARENA_MAX` only when the process
/// starts, so tresord executes itself again once with it set: the same pid, arguments and
/// open descriptors (`--passphrase-fd` included). Set the variable to choose another value.
fn bound_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_default();
    // `exec` returns only when it failed; tresord then runs with glibc's default.
    let _failed = std::process::Command::new(exe)
        .arg0(program)
        .args(args)
        .env("MALLOC_ARENA_MAX", "2")
        .exec();
}

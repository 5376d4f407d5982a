//! The `tresor` command-line interface (feature `cli`).
//!
//! ```text
//! args        clap definitions (the whole command line, no logic)
//! backend     Backend: the file (ops::Local) or the daemon (Client), both tresor::Api
//! output      tables (comfy-table) and --json
//! secrets     set get ls show rm history rollback
//! keys        init passwd keyslot rekey
//! backup      backup (through the daemon or the file), restore (checked before it lands)
//! audit       audit, audit verify
//! principals  principal, team
//! daemon_ctl  daemon status lock unlock
//! run         run (env injection; mask: streaming masking of its output); watch: run --watch
//! mcp         mcp: the Model Context Protocol server (rmcp) over run's and the Backend's code
//! inject      inject (templates); check (pre-flight)
//! import      import (dotenv: the parser shared with run --env-file); export
//! report      report inventory | rotation (cert: X.509 expiry) | integrations
//! apply       apply: manifest (parse), plan (diff against the store), then the changes
//! reference   tresor://[scope/]name[#field]
//! files       new 0600 files written whole, then moved into place
//! ```
//!
//! Values reach stdout only through `get` (and tokens and recovery keys, once, when made).
//!
//! Commands go to the daemon when one answers on the socket (an agent sends its token from
//! `TRESOR_TOKEN`), else to the file. `init`, `passwd`, `keyslot`, `rekey` and `restore` always
//! work on the file: the daemon's API has no endpoints for them.

mod airgap;
mod apply;
pub mod args;
mod audit;
pub mod backend;
mod backup;
mod check;
mod credential;
mod daemon_ctl;
mod dotenv;
mod export;
mod files;
mod import;
mod inject;
mod integrations;
mod keys;
mod mask;
mod mcp;
mod output;
mod principals;
mod progress;
mod reference;
mod refs;
mod report;
mod report_more;
mod run;
mod secrets;
mod upstream;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;

pub use args::Cli;

/// The file parsers, for [`crate::fuzzing`].
#[cfg(feature = "test-util")]
pub(crate) mod parsers {
    pub(crate) use super::apply::manifest::parse as manifest;
    pub(crate) use super::check::parse_requirements as requirements;
    pub(crate) use super::dotenv::{parse as dotenv, valid_key};
    pub(crate) use super::inject::parse as template;
    pub(crate) use super::integrations::parse_integrations as integrations;
}
use args::{Command, GlobalArgs};
use backend::Backend;

use crate::ops::Local;

use crate::error::Result;
use crate::store::{LockedStore, Store};
use crate::types::Actor;

/// The whole of a `tresor` binary after parsing: runs `cli`, prints an error and its hint on
/// stderr, and returns the exit code of SPEC §7.
pub fn main_with(cli: Cli) -> ExitCode {
    match run(cli) {
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

/// Runs one parsed command line; the exit code is 0 but for `run`, which passes its child's on.
///
/// # Errors
/// Whatever the command ran into; the binary prints it and exits with
/// [`Error::exit_code`](crate::Error::exit_code).
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx { global: cli.global };
    dispatch(&ctx, &cli.command)
}

fn dispatch(ctx: &Ctx, command: &Command) -> Result<ExitCode> {
    let done = match command {
        Command::Run(a) => return run::run(ctx, a),
        Command::Mcp => return mcp::serve(ctx),
        Command::Inject(a) => inject::inject(ctx, a),
        Command::Check(a) => check::check(ctx, a),
        Command::Import(a) => import::import(ctx, a),
        Command::Export(a) => export::export(ctx, a),
        Command::Report(c) => report::report(ctx, c),
        Command::Apply(a) => apply::apply(ctx, a),
        Command::Init(a) => keys::init(ctx, a),
        Command::Set(a) => secrets::set(ctx, a),
        Command::Get(a) => secrets::get(ctx, a),
        Command::Ls(a) => secrets::ls(ctx, a),
        Command::Show(a) => secrets::show(ctx, a),
        Command::Rm(a) => refs::rm(ctx, a),
        Command::Refs(a) => refs::refs(ctx, a),
        Command::History(a) => secrets::history(ctx, a),
        Command::Rollback(a) => secrets::rollback(ctx, a),
        Command::Passwd(a) => keys::passwd(ctx, a),
        Command::Keyslot(c) => keys::keyslot(ctx, c),
        Command::Rekey => keys::rekey(ctx),
        Command::Backup(a) => backup::backup(ctx, a),
        Command::Restore(a) => backup::restore(ctx, a),
        Command::Audit(a) => audit::audit(ctx, a),
        Command::Principal(c) => principals::principal(ctx, c),
        Command::Team(c) => principals::team(ctx, c),
        Command::Provider(c) => upstream::provider(ctx, c),
        Command::Sync(c) => upstream::sync(ctx, c),
        #[cfg(feature = "daemon")]
        Command::Daemon(a) => daemon_ctl::daemon(ctx, a),
        Command::Inbox(c) => airgap::inbox(ctx, c),
        Command::Submit(a) => airgap::submit(ctx, a),
        Command::Bundle(c) => airgap::bundle(ctx, c),
        Command::Status => daemon_ctl::status(ctx),
        Command::Lock => daemon_ctl::lock(ctx),
        Command::Unlock => daemon_ctl::unlock(ctx),
        Command::Man(a) => man(ctx, &a.outdir),
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "tresor", &mut std::io::stdout());
            Ok(())
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// `man OUTDIR`: a page per command, from the same clap definitions as `--help`.
fn man(ctx: &Ctx, outdir: &Path) -> Result<()> {
    let failed =
        |e| crate::Error::internal(format!("cannot write man pages to {}", outdir.display()), e);
    std::fs::create_dir_all(outdir).map_err(failed)?;
    clap_mangen::generate_to(Cli::command(), outdir).map_err(failed)?;
    let mut pages: Vec<String> = std::fs::read_dir(outdir)
        .map_err(failed)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("tresor") && n.ends_with(".1"))
        .collect();
    pages.sort();
    if ctx.json() {
        return output::print_json(
            &serde_json::json!({ "dir": outdir.display().to_string(), "pages": pages }),
        );
    }
    eprintln!(
        "wrote {} man pages to {} (try `man tresor`, or `man -l {}/tresor.1`)",
        pages.len(),
        outdir.display(),
        outdir.display()
    );
    Ok(())
}

/// Prints the warning every open of an `--insecure-kdf` store gets.
fn warn_insecure(path: &Path) {
    eprintln!(
        "warning: {} uses insecure key derivation parameters (--insecure-kdf); anyone with the \
         file can guess its passphrase quickly. Use such stores for tests only.",
        path.display()
    );
}

/// What every command gets: the global options, and the ways to reach the store.
struct Ctx {
    global: GlobalArgs,
}

impl Ctx {
    fn global(&self) -> &GlobalArgs {
        &self.global
    }

    fn json(&self) -> bool {
        self.global.json
    }

    /// `--store`, `TRESOR_STORE`, else the default location.
    fn store_path(&self) -> PathBuf {
        crate::paths::store_path(self.global.store.clone())
    }

    /// `--socket`, `TRESOR_SOCKET`, else the default location.
    fn socket_path(&self) -> PathBuf {
        crate::paths::socket_path(self.global.socket.clone())
    }

    /// Opens the store file, locked, warning when it is insecure.
    fn open_locked(&self) -> Result<LockedStore> {
        let path = self.store_path();
        let locked = Store::open(&path)?;
        if locked.is_insecure() {
            warn_insecure(&path);
        }
        Ok(locked)
    }

    /// Opens and unlocks the store file in this process, acting as its owner.
    fn open_direct(&self) -> Result<Local> {
        let locked = self.open_locked()?;
        let secret = crate::unlock::unlock_secret(&self.global.unlock, locked.path())?;
        let actor = Actor::direct_owner();
        let store = locked.unlock(&secret, &actor)?;
        if let Some(b) = store.migrated_backup() {
            eprintln!(
                "note: {} was in format 1 and is now format 2; the format 1 file is kept at {} \
                 (it still opens with the passphrases and key files it had: remove it once you \
                 no longer need to go back)",
                store.path().display(),
                b.display()
            );
        }
        Ok(Local { store, actor })
    }

    /// The daemon when one answers on the socket (and `--direct` was not given), else the
    /// file.
    fn backend(&self) -> Result<Backend> {
        if !self.global.direct
            && let Some(client) = daemon_ctl::connect(self)?
        {
            return Ok(Backend::Daemon(client));
        }
        Ok(Backend::Local(self.open_direct()?))
    }
}

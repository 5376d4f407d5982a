//! The daemon as a program: arguments (SPEC §5), logging, hardening, opening (or creating)
//! the store, binding the socket, signals. `tresord` and `tresor daemon` both call
//! [`main_with_args`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::{KdfChoice, Store};
use crate::types::{Actor, parse_duration};
use crate::unlock::{self, NewPassphrase, PassphraseEnv, UnlockArgs};

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A part of the read path `--without` turns off (benchmarks only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Without {
    /// Group commit: every read's audit record committed on its own.
    GroupCommit,
    /// The audit journal: every read batch committed durably to the store file.
    AuditJournal,
    /// Committing on the requesting task when idle: every read handed to the committer.
    IdleCommit,
}

/// `tresord` arguments.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DaemonArgs {
    /// The store file [default: $TRESOR_STORE, else $XDG_DATA_HOME/tresor/store.tresor]
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
    /// The socket [default: $TRESOR_SOCKET, else $XDG_RUNTIME_DIR/tresor/tresord.sock, or
    /// /run/tresor/tresord.sock as root]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Let this group's members connect (socket 0660, directory 0750)
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// Lock the store after this long without a request (e.g. 15m, 1h, 90s)
    #[arg(long, value_name = "DURATION", value_parser = parse_idle_lock)]
    pub idle_lock: Option<Duration>,
    /// The unlock source; without one the daemon starts locked (no `TRESOR_PASSPHRASE`
    /// here: see [`PassphraseEnv`]).
    #[command(flatten)]
    pub unlock: UnlockArgs,
    /// Create the store when it does not exist yet, with the passphrase from --passphrase-fd,
    /// --passphrase-file or (on a terminal) a prompt; on later runs, prompt to unlock it
    #[arg(long)]
    pub init: bool,
    /// With --init: instant KDF parameters, for tests only (recorded in the file, warned about)
    #[arg(long, requires = "init", hide = true)]
    pub insecure_kdf: bool,
    /// Turn off a part of the read path, to measure what it buys: `group-commit` (each read's
    /// record committed on its own), `audit-journal` (each batch committed durably)
    #[arg(long, hide = true, value_enum, value_name = "PART")]
    pub without: Vec<Without>,
    /// Append each new head of the audit chain (SEQ:MAC TIME) to this file, kept outside the
    /// store, for `tresor audit verify --head FILE`
    #[arg(long, value_name = "PATH")]
    pub audit_head_file: Option<PathBuf>,
    /// Keep this much audit log (e.g. 90d): older records are pruned at start and hourly,
    /// leaving a sealed checkpoint (`tresor audit export` them first for a SIEM)
    #[arg(long, value_name = "DURATION", value_parser = parse_retention)]
    pub audit_retention: Option<Duration>,
    /// Log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Parses `--audit-retention`: a duration of at least a second (e.g. `90d`, `52w`).
///
/// # Errors
/// A message naming the accepted forms.
fn parse_retention(s: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| match e {
        Error::InvalidArgument { reason, .. } => reason,
        other => other.to_string(),
    })?;
    if d < Duration::from_secs(1) {
        return Err("keep at least a second of audit log (e.g. 90d)".into());
    }
    Ok(d)
}

/// Parses `--idle-lock`: the duration grammar of [`parse_duration`], more than zero and at
/// most a year.
///
/// # Errors
/// A message naming the accepted forms, or the range.
fn parse_idle_lock(s: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| match e {
        Error::InvalidArgument { reason, .. } => reason,
        other => other.to_string(),
    })?;
    if d.is_zero() || d > Duration::from_secs(366 * 86_400) {
        return Err("a duration must be more than 0 and at most a year".into());
    }
    Ok(d)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TRESOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never in a journal or a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // `tresor daemon` may have set a subscriber already; keep it then.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn init_needs_passphrase() -> Error {
    Error::invalid(
        "init",
        "--init needs the new passphrase from a terminal, --passphrase-fd or --passphrase-file",
    )
}

/// Opens the store, creating it first with `--init`, and unlocks it when a source is given
/// (with `--init`, also from a prompt on the terminal).
fn open_store(args: &DaemonArgs, path: &Path) -> Result<super::Opened> {
    let owner = Actor::direct_owner();
    if !path.exists() {
        if !args.init {
            return Err(Error::not_found("store", path.display().to_string()));
        }
        if args.unlock.keyfile.is_some()
            || args.unlock.unlock_credential.is_some()
            || (args.unlock.is_empty() && !unlock::has_terminal())
        {
            return Err(init_needs_passphrase());
        }
        let pass =
            unlock::new_passphrase(NewPassphrase::Given(&args.unlock, PassphraseEnv::Ignore))?;
        let kdf = if args.insecure_kdf {
            tracing::warn!("creating the store with --insecure-kdf: for tests only");
            KdfChoice::Insecure
        } else {
            KdfChoice::Calibrate
        };
        tracing::info!(store = %path.display(), "creating the store");
        return Ok(Store::create(path, &pass, &kdf, &owner)?.into());
    }
    let mut secret = args.unlock.given(PassphraseEnv::Ignore)?;
    if secret.is_none() && args.init {
        secret = unlock::prompt_unlock(path)?;
    }
    let locked = Store::open(path)?;
    if locked.is_insecure() {
        tracing::warn!("this store uses insecure KDF parameters (--insecure-kdf): for tests only");
    }
    match secret {
        Some(s) => Ok(locked.unlock(&s, &owner)?.into()),
        None => Ok(locked.into()),
    }
}

/// Runs the daemon: logging to stderr, process hardening, the store (created with `--init`),
/// the socket, and [`super::run`] until SIGTERM or SIGINT.
///
/// # Errors
/// Anything that prevents serving: no store, a wrong passphrase, a socket held by another
/// daemon, an unsafe socket directory.
pub fn main_with_args(args: &DaemonArgs) -> Result<()> {
    init_logging(args.log_format);
    crate::sys::harden_process();
    crate::sys::lock_memory();
    let store_path = crate::paths::store_path(args.store.clone());
    let socket_path = crate::paths::socket_path(args.socket.clone());
    let group = match &args.socket_group {
        None => None,
        Some(g) => Some(
            g.parse::<u32>()
                .ok()
                .or_else(|| crate::sys::group_id(g))
                .ok_or_else(|| Error::not_found("group", g.clone()))?,
        ),
    };
    let opened = open_store(args, &store_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tresord")
        .build()
        .map_err(|e| Error::internal("cannot start the runtime", e))?;
    // Handlers go in before the socket exists: a SIGTERM sent as soon as clients can connect
    // must stop the daemon cleanly, not kill it.
    let signals = {
        let _in_runtime = rt.enter();
        install_signals()
    };
    let mut bound = super::bind(&socket_path, group)?;
    let std_listener = bound
        .take_listener()
        .ok_or_else(|| Error::internal("the listener was taken", std::io::Error::other("")))?;
    let mut config = super::Config::new(opened);
    config.idle_lock = args.idle_lock;
    config.group_commit = !args.without.contains(&Without::GroupCommit);
    config.audit_journal = !args.without.contains(&Without::AuditJournal);
    config.idle_commit = !args.without.contains(&Without::IdleCommit);
    config.audit_head_file.clone_from(&args.audit_head_file);
    config.audit_retention = args.audit_retention;
    tracing::info!(socket = %socket_path.display(), store = %store_path.display(), "tresord starting");
    let result = rt.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(std_listener)?;
        super::run(listener, config, shutdown_signal(signals)).await
    });
    drop(bound);
    result
}

type Signals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

/// SIGTERM and SIGINT handlers (inside the runtime).
fn install_signals() -> Signals {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => None,
    }
}

async fn shutdown_signal(signals: Signals) {
    let Some((mut term, mut int)) = signals else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_lock_durations() {
        assert_eq!(parse_idle_lock("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_idle_lock("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_idle_lock("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_idle_lock("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_idle_lock("0s").is_err());
        assert!(parse_idle_lock("5 weeks").is_err());
        assert!(parse_idle_lock("53w").is_err());
    }
}

//! The daemon as a program: arguments (SPEC §5), logging, hardening, opening (or creating)
//! the store, binding the socket, signals. `tresord` and `tresor daemon` both call
//! [`main_with_args`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::{KdfChoice, Store, UnlockSecret};
use crate::types::Passphrase;
use crate::types::{Actor, SecretBytes};

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
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
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_lock: Option<Duration>,
    /// Read the passphrase from this file descriptor and unlock at start
    #[arg(long, value_name = "N", group = "unlock")]
    pub passphrase_fd: Option<u32>,
    /// Read the passphrase from this file and unlock at start
    #[arg(long, value_name = "PATH", group = "unlock")]
    pub passphrase_file: Option<PathBuf>,
    /// Unlock at start with this key file
    #[arg(long, value_name = "PATH", group = "unlock")]
    pub keyfile: Option<PathBuf>,
    /// Create the store when it does not exist yet, with the passphrase from --passphrase-fd,
    /// --passphrase-file or (on a terminal) a prompt; on later runs, prompt to unlock it
    #[arg(long)]
    pub init: bool,
    /// With --init: instant KDF parameters, for tests only (recorded in the file, warned about)
    #[arg(long, requires = "init", hide = true)]
    pub insecure_kdf: bool,
    /// Commit each read's audit record on its own (to measure what group commit buys)
    #[arg(long, hide = true)]
    pub no_group_commit: bool,
    /// Log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Parses `500ms`, `90s`, `15m`, `1h`, `1d`, or a bare number of seconds.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (use 500ms, 90s, 15m, 1h or 1d)"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        other => return Err(format!("unknown unit {other:?} (use ms, s, m, h or d)")),
    };
    if d.is_zero() || d > Duration::from_secs(366 * 86_400) {
        return Err("a duration must be more than 0 and at most a year".into());
    }
    Ok(d)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TRESOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `tresor daemon` may have set a subscriber already; keep it then.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn read_source(args: &DaemonArgs) -> Result<Option<UnlockSecret>> {
    let read_file = |p: &Path| -> Result<Vec<u8>> {
        std::fs::read(p).map_err(|e| Error::internal(format!("cannot read {}", p.display()), e))
    };
    if let Some(fd) = args.passphrase_fd {
        // Opening /proc/self/fd/N reads the inherited descriptor without unsafe code.
        let mut buf = Vec::new();
        std::fs::File::open(format!("/proc/self/fd/{fd}"))
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| Error::internal(format!("cannot read file descriptor {fd}"), e))?;
        return Ok(Some(UnlockSecret::Passphrase(
            Passphrase::from_file_contents(buf),
        )));
    }
    if let Some(p) = &args.passphrase_file {
        crate::sys::check_not_writable_by_others(p)?;
        return Ok(Some(UnlockSecret::Passphrase(
            Passphrase::from_file_contents(read_file(p)?),
        )));
    }
    if let Some(p) = &args.keyfile {
        return Ok(Some(UnlockSecret::Keyfile(SecretBytes::new(read_file(p)?))));
    }
    Ok(None)
}

/// Asks for a passphrase on the terminal without echo (twice when `confirm`). `None` when
/// stdin is not a terminal.
fn prompt_passphrase(confirm: bool) -> Result<Option<UnlockSecret>> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(|s| Passphrase::new(s.into_bytes()))
            .map_err(|e| Error::internal("cannot read the passphrase from the terminal", e))
    };
    let first = ask(if confirm {
        "New passphrase: "
    } else {
        "Passphrase: "
    })?;
    if confirm {
        if first.expose().is_empty() {
            return Err(Error::invalid(
                "passphrase",
                "an empty passphrase protects nothing",
            ));
        }
        if ask("Repeat the passphrase: ")? != first {
            return Err(Error::invalid("passphrase", "the two passphrases differ"));
        }
    }
    Ok(Some(UnlockSecret::Passphrase(first)))
}

/// Opens the store, creating it first with `--init`, and unlocks it when a source is given.
fn open_store(args: &DaemonArgs, path: &Path) -> Result<super::Opened> {
    let mut secret = read_source(args)?;
    if secret.is_none() && args.init {
        secret = prompt_passphrase(!path.exists())?;
    }
    let owner = Actor::direct_owner();
    if !path.exists() {
        if !args.init {
            return Err(Error::not_found("store", path.display().to_string()));
        }
        let Some(UnlockSecret::Passphrase(pass)) = &secret else {
            return Err(Error::invalid(
                "init",
                "--init needs the new passphrase from a terminal, --passphrase-fd or --passphrase-file",
            ));
        };
        let kdf = if args.insecure_kdf {
            tracing::warn!("creating the store with --insecure-kdf: for tests only");
            KdfChoice::Insecure
        } else {
            KdfChoice::Calibrate
        };
        tracing::info!(store = %path.display(), "creating the store");
        return Ok(Store::create(path, pass, &kdf, &owner)?.into());
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
    let mut bound = super::bind(&socket_path, group)?;
    let std_listener = bound
        .take_listener()
        .ok_or_else(|| Error::internal("the listener was taken", std::io::Error::other("")))?;
    let mut config = super::Config::new(opened);
    config.idle_lock = args.idle_lock;
    config.group_commit = !args.no_group_commit;
    tracing::info!(socket = %socket_path.display(), store = %store_path.display(), "tresord starting");
    let result = rt.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(std_listener)?;
        super::run(listener, config, shutdown_signal()).await
    });
    drop(bound);
    result
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
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
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 weeks").is_err());
    }
}

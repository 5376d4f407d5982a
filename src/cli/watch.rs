//! `run --watch`: the command is restarted with the new values when a new version of an
//! injected secret appears (a rotation, a rollback, an upstream refresh).
//!
//! ```text
//!  loop: versions (GET /v1/watch, at once) ─▶ values (POST /v1/env) ─▶ start the child
//!        watcher thread: long polls GET /v1/watch?since=G (daemon) or looks at the file
//!        every --poll (direct); on a new version it waits --debounce for the burst to end
//!        child exits by itself ─▶ exit with its code
//!        change ─▶ SIGTERM, SIGKILL after --grace ─▶ loop
//! ```
//!
//! The versions are taken before the values, so a change that lands between the two is seen
//! by the first poll (its generation differs) and restarts the child: none is missed.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use super::Ctx;
use super::args::RunArgs;
use super::backend::Backend;
use super::mask::Masker;
use super::run::{Plan, check_env_values, child_command, exit_code, in_terminal_foreground};
use crate::error::{Error, Result};
use crate::ops::watch::{MAX_WAIT, Watch, WatchState};
use crate::ops::{Api, Local};
use crate::protocol::EnvItem;
use crate::store::{Store, UnlockSecret};
use crate::types::{Actor, SecretBytes, ValueRef, parse_duration};

/// Where the values and the versions come from.
#[derive(Clone)]
enum Source {
    /// `tresord` on this socket.
    Daemon(PathBuf),
    /// The file, opened (and closed again) for each look, unlocked with the secret given once.
    File(PathBuf, Arc<UnlockSecret>),
}

impl Source {
    fn backend(&self) -> Result<Backend> {
        match self {
            Self::Daemon(socket) => {
                let c = crate::Client::connect(socket)?.ok_or_else(|| {
                    Error::not_found(
                        "daemon",
                        format!("nothing answers on {} any more", socket.display()),
                    )
                })?;
                Ok(Backend::Daemon(super::daemon_ctl::with_token(c)?))
            }
            Self::File(path, secret) => {
                let actor = Actor::direct_owner();
                let store = Store::open(path)?.unlock(secret, &actor)?;
                Ok(Backend::Local(Local { store, actor }))
            }
        }
    }
}

/// The timing options.
struct Timing {
    grace: Duration,
    debounce: Duration,
    poll: Duration,
}

/// `run --watch`.
pub fn run(ctx: &Ctx, args: &RunArgs, plan: &Plan) -> Result<ExitCode> {
    if plan.specs.is_empty() {
        return Err(Error::invalid(
            "--watch",
            "there is nothing to watch: inject a secret with --secret or --env-file",
        ));
    }
    let timing = Timing {
        grace: parse_duration(&args.grace)?,
        debounce: parse_duration(&args.debounce)?,
        poll: parse_duration(&args.poll)?.max(Duration::from_millis(100)),
    };
    let daemon = !ctx.global().direct && crate::client::daemon_answers(&ctx.socket_path());
    let source = if daemon {
        Source::Daemon(ctx.socket_path())
    } else {
        let locked = ctx.open_locked()?;
        let secret = crate::unlock::unlock_secret(&ctx.global().unlock, locked.path())?;
        Source::File(ctx.store_path(), Arc::new(secret))
    };
    let refs: Vec<ValueRef> = plan
        .specs
        .iter()
        .map(|s| ValueRef {
            scope: s.scope.clone(),
            ..ValueRef::named(s.name.clone())
        })
        .collect();
    let items: Vec<EnvItem> = plan.specs.iter().cloned().map(EnvItem::Full).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the runtime", e))?;
    // Installed once: a signal that arrives while the command restarts is kept, and reaches
    // the next child.
    let mut sigs = {
        let _rt = rt.enter();
        Signals::install()?
    };
    loop {
        let (seen, secrets) = {
            let backend = source.backend()?;
            let seen = backend.call(Watch::of(&refs, None, None))?;
            (seen, super::upstream::env(&backend, &items)?)
            // The backend (and the file's lock) is dropped before the child starts.
        };
        check_env_values(secrets.iter().chain(plan.plain.iter().map(|(k, v)| (k, v))))?;
        let maskers = (!args.no_mask).then(|| [(); 2].map(|()| Masker::new(secrets.values())));
        let env: Vec<(&String, &SecretBytes)> = secrets
            .iter()
            .chain(plan.plain.iter().map(|(k, v)| (k, v)))
            .collect();
        let (tx, mut changed) = mpsc::channel(1);
        let (src, refs2, poll, debounce) =
            (source.clone(), refs.clone(), timing.poll, timing.debounce);
        std::thread::spawn(move || watcher(&src, &refs2, &seen, poll, debounce, &tx));
        let done = rt.block_on(supervise(
            &args.command,
            &env,
            maskers,
            (&mut changed, &mut sigs),
            timing.grace,
        ))?;
        match done {
            Some(code) => return Ok(ExitCode::from(code)),
            None => eprintln!("tresor: a watched secret has a new version; restarting the command"),
        }
    }
}

/// The (scope, version) of each watched secret: what a restart is decided on.
fn versions(s: &WatchState) -> Vec<(Option<String>, Option<u64>)> {
    s.secrets
        .iter()
        .map(|w| (w.scope.as_ref().map(ToString::to_string), w.version))
        .collect()
}

/// Waits for a new version of any of `refs` (compared with `seen`), lets a burst settle for
/// `debounce`, then sends once. Ends, without sending, when the receiver is gone.
fn watcher(
    source: &Source,
    refs: &[ValueRef],
    seen: &WatchState,
    poll: Duration,
    debounce: Duration,
    tx: &mpsc::Sender<()>,
) {
    let want = versions(seen);
    let mut generation = seen.generation;
    let mut file_stamp = None;
    let mut warned = false;
    let mut client: Option<Backend> = None;
    loop {
        if tx.is_closed() {
            return;
        }
        let looked = match source {
            Source::Daemon(_) => {
                let c = match client.take() {
                    Some(c) => Ok(c),
                    None => source.backend(),
                };
                c.and_then(|c| {
                    let s = c.call(Watch::of(refs, Some(generation), Some(MAX_WAIT)));
                    client = Some(c);
                    s
                })
                .map(Some)
            }
            Source::File(path, _) => {
                std::thread::sleep(poll);
                let now = stamp(path);
                if now.is_some() && now == file_stamp {
                    Ok(None)
                } else {
                    let s = source
                        .backend()
                        .and_then(|b| b.call(Watch::of(refs, None, None)));
                    // Our own open wrote to the file (its audit records): stamp it after.
                    file_stamp = stamp(path);
                    s.map(Some)
                }
            }
        };
        match looked {
            Ok(Some(s)) => {
                warned = false;
                generation = s.generation;
                if versions(&s) != want {
                    settle(source, refs, generation, debounce, &mut client);
                    let _ = tx.blocking_send(());
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                if !warned {
                    eprintln!("tresor: watching for new versions failed ({e}); retrying");
                    warned = true;
                }
                client = None;
                std::thread::sleep(poll.max(Duration::from_secs(1)));
            }
        }
    }
}

/// Waits until no change has come for `debounce` (through the daemon: a short long poll;
/// on the file: a pause), so that a burst of changes restarts the child once.
fn settle(
    source: &Source,
    refs: &[ValueRef],
    mut generation: u64,
    debounce: Duration,
    client: &mut Option<Backend>,
) {
    let Some(c) = client
        .as_ref()
        .filter(|_| matches!(source, Source::Daemon(_)))
    else {
        std::thread::sleep(debounce);
        return;
    };
    for _ in 0..100 {
        match c.call(Watch::of(refs, Some(generation), Some(debounce))) {
            Ok(s) if s.generation != generation => generation = s.generation,
            _ => return,
        }
    }
}

/// What identifies a version of the file: inode, size and modification time.
fn stamp(path: &std::path::Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// SIGINT, SIGTERM and SIGHUP, forwarded to the child.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        let install =
            |k| signal(k).map_err(|e| Error::internal("cannot install a signal handler", e));
        Ok(Self {
            int: install(SignalKind::interrupt())?,
            term: install(SignalKind::terminate())?,
            hup: install(SignalKind::hangup())?,
        })
    }
}

/// Runs the child until it exits by itself (`Some(code)`) or a change arrives (`None`: the
/// child was stopped with SIGTERM, or SIGKILL after `grace`).
async fn supervise(
    cmd: &[OsString],
    env: &[(&String, &SecretBytes)],
    maskers: Option<[Masker; 2]>,
    (changed, sigs): (&mut mpsc::Receiver<()>, &mut Signals),
    grace: Duration,
) -> Result<Option<u8>> {
    let (program, rest) = cmd
        .split_first()
        .ok_or_else(|| Error::invalid("command", "give the command to run after --"))?;
    let maskers = maskers.filter(|[m, _]| !m.is_empty());
    let mut command = child_command(program, rest, env, maskers.is_some());
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot run {}: {e}", program.to_string_lossy());
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return Ok(Some(code));
        }
    };
    let pid = child.id().and_then(|p| Pid::from_raw(p.cast_signed()));
    let (exited, exit_seen) = watch::channel(false);
    let pumps = maskers.map(|m| {
        let to = (tokio::io::stdout(), tokio::io::stderr());
        super::run::start_pumps(&mut child, m, to, &exit_seen)
    });
    let wait_failed = |e| Error::internal("waiting failed", e);
    let outcome = loop {
        let sig = tokio::select! {
            s = child.wait() => break Some(exit_code(s.map_err(wait_failed)?)),
            Some(()) = changed.recv() => break None,
            _ = sigs.int.recv() => Signal::INT,
            _ = sigs.term.recv() => Signal::TERM,
            _ = sigs.hup.recv() => Signal::HUP,
        };
        if sig == Signal::INT && in_terminal_foreground() {
            continue;
        }
        if let Some(pid) = pid {
            let _ = kill_process(pid, sig);
        }
    };
    if outcome.is_none() {
        // Not reaped yet (wait is what reaps), so the pid is still the child's.
        if let Some(pid) = pid {
            let _ = kill_process(pid, Signal::TERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            eprintln!(
                "tresor: the command did not exit within {}s of SIGTERM; killing it",
                grace.as_secs_f32()
            );
            let _ = child.start_kill();
            child.wait().await.map_err(wait_failed)?;
        }
    }
    exited.send_replace(true);
    if let Some(p) = pumps {
        p.join().await;
    }
    Ok(outcome)
}

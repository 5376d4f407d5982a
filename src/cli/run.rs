//! `run`: a command with secrets in its environment, its output masked.
//!
//! The values are read first (through the daemon one `POST /v1/env`, each read audited; on
//! the file one group commit), the store is closed, and only then is the child started, so a
//! `tresor` inside the child can open the file. Values reach the child only through its
//! environment, never its argv. SIGINT, SIGTERM and SIGHUP are forwarded to the child; its exit
//! code is ours, and a death by signal N exits 128+N, as shells report it.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use zeroize::Zeroizing;

use super::Ctx;
use super::args::RunArgs;
use super::dotenv;
use super::mask::Masker;
use super::reference::{Reference, SCHEME, reason};
use crate::error::{Error, Result};
use crate::ops::refs::SecretId;
use crate::protocol::{EnvItem, EnvSpec, env_var_name};
use crate::types::{RefKind, SecretBytes, is_var_name};

/// After the child exits, its output is relayed until its pipes have been quiet this long: what
/// it wrote before exiting is already in the pipe, and a background process it left holding
/// the pipes must not keep us waiting.
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// What the child's environment gets besides ours.
#[derive(Default)]
pub(super) struct Plan {
    /// Secrets to read, each with its variable.
    pub(super) specs: Vec<EnvSpec>,
    /// Plain `KEY=value` lines of env files, passed through unmasked.
    pub(super) plain: Vec<(String, SecretBytes)>,
}

impl Plan {
    /// Adds a variable, refusing one that is already set by another option or line.
    fn claim(&self, var: &str, what: &str) -> Result<()> {
        let taken = self.specs.iter().any(|s| s.env.as_deref() == Some(var))
            || self.plain.iter().any(|(k, _)| k == var);
        if taken {
            return Err(Error::invalid(what, format!("{var} is set twice")));
        }
        Ok(())
    }

    fn add_secret(&mut self, r: &Reference, var: Option<String>, what: &str) -> Result<()> {
        let var = var.unwrap_or_else(|| env_var_name(&r.name, r.field.as_deref()));
        let spec = EnvSpec::new(r, Some(var));
        let (_, var) = EnvItem::Full(spec.clone())
            .resolve()
            .map_err(|e| Error::invalid(what, reason(&e)))?;
        self.claim(&var, what)?;
        self.specs.push(spec);
        Ok(())
    }
}

/// `--secret [scope/]NAME[#field][=ENV]`.
fn add_flag(plan: &mut Plan, item: &str) -> Result<()> {
    let (target, var) = match item.split_once('=') {
        Some((t, v)) => (t, Some(v.to_owned())),
        None => (item, None),
    };
    let target = target.strip_prefix(SCHEME).unwrap_or(target);
    let r = Reference::parse_path(target)
        .map_err(|e| Error::invalid(format!("--secret {item}"), reason(&e)))?;
    plan.add_secret(&r, var, &format!("--secret {item}"))
}

/// One `--env-file`: `KEY=tresor://...` lines are secrets, other lines pass through.
fn add_env_file(plan: &mut Plan, path: &std::path::Path) -> Result<()> {
    let source = path.display().to_string();
    let raw = crate::unlock::read_secret_file(path, "env-file")?;
    let text = raw
        .as_str()
        .ok_or_else(|| Error::invalid(&source, "an env file is UTF-8 text"))?;
    for e in dotenv::parse(&source, text)? {
        let what = format!("{source} line {}", e.line);
        let value = e.value.as_str().unwrap_or_default();
        if value.starts_with(SCHEME) {
            let r = Reference::parse(value).map_err(|x| Error::invalid(&what, reason(&x)))?;
            plan.add_secret(&r, Some(e.key), &what)?;
        } else {
            if !is_var_name(&e.key) {
                return Err(Error::invalid(
                    &what,
                    format!("{} is not a variable name (use A-Z a-z 0-9 _)", e.key),
                ));
            }
            plan.claim(&e.key, &what)?;
            plan.plain.push((e.key, e.value));
        }
    }
    Ok(())
}

/// The reads of `--secret [scope/]NAME[#field][=ENV]` items (also `tresor mcp`'s
/// `run_with_secrets`), each with its variable; a variable named twice is refused.
pub(super) fn secret_specs<S: AsRef<str>>(items: &[S]) -> Result<Vec<EnvSpec>> {
    let mut plan = Plan::default();
    for item in items {
        add_flag(&mut plan, item.as_ref())?;
    }
    Ok(plan.specs)
}

/// Refuses a value an environment cannot carry (naming its variable, never the value).
pub(super) fn check_env_values<'a>(
    vars: impl IntoIterator<Item = (&'a String, &'a SecretBytes)>,
) -> Result<()> {
    for (var, v) in vars {
        if v.expose().contains(&0) {
            return Err(Error::invalid(
                "env",
                format!("the value for {var} holds a NUL byte, which an environment cannot carry"),
            ));
        }
    }
    Ok(())
}

/// `run`.
pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<ExitCode> {
    let mut plan = Plan::default();
    let mut files = Vec::new();
    for path in &args.env_file {
        let first = plan.specs.len();
        add_env_file(&mut plan, path)?;
        files.push((path, first..plan.specs.len()));
    }
    for item in &args.secrets {
        add_flag(&mut plan, item)?;
    }
    if args.watch {
        return super::watch::run(ctx, args, &plan);
    }
    let secrets = if plan.specs.is_empty() {
        BTreeMap::new()
    } else {
        // The backend (and the file's lock) is dropped before the child starts.
        let items: Vec<EnvItem> = plan.specs.iter().cloned().map(EnvItem::Full).collect();
        let b = ctx.backend()?;
        let secrets = super::upstream::env(&b, &items)?;
        for (path, specs) in files {
            let ids = plan.specs[specs].iter().map(|s| SecretId {
                name: s.name.clone(),
                scope: s.scope.clone(),
            });
            super::refs::record(&b, RefKind::EnvFile, path, &ids.collect::<Vec<_>>());
        }
        secrets
    };
    check_env_values(secrets.iter().chain(plan.plain.iter().map(|(k, v)| (k, v))))?;
    // One masker per stream: each keeps its own carry.
    let maskers = (!args.no_mask).then(|| [(); 2].map(|()| Masker::new(secrets.values())));
    let env: Vec<(&String, &SecretBytes)> = secrets
        .iter()
        .chain(plan.plain.iter().map(|(k, v)| (k, v)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the runtime", e))?;
    let code = rt.block_on(supervise(&args.command, &env, maskers))?;
    Ok(ExitCode::from(code))
}

/// The exit code that reports `status`: the child's own, or 128+N for a death by signal N.
pub(super) fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from(128 + s).unwrap_or(255),
        (None, None) => 1,
    }
}

/// Starts the child, pumps its output through the maskers, forwards signals, waits.
async fn supervise(
    cmd: &[OsString],
    env: &[(&String, &SecretBytes)],
    maskers: Option<[Masker; 2]>,
) -> Result<u8> {
    let (program, rest) = cmd
        .split_first()
        .ok_or_else(|| Error::invalid("command", "give the command to run after --"))?;
    let maskers = maskers.filter(|[m, _]| !m.is_empty());
    let mut command = child_command(program, rest, env, maskers.is_some());
    // Handlers first: a signal that arrives while the child starts is forwarded, not fatal.
    let install = |k| signal(k).map_err(|e| Error::internal("cannot install a signal handler", e));
    let mut int = install(SignalKind::interrupt())?;
    let mut term = install(SignalKind::terminate())?;
    let mut hup = install(SignalKind::hangup())?;
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let shown = program.to_string_lossy();
            eprintln!("error: cannot run {shown}: {e}");
            return Ok(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let (exited, exit_seen) = watch::channel(false);
    let pumps = maskers.map(|m| {
        let to = (tokio::io::stdout(), tokio::io::stderr());
        start_pumps(&mut child, m, to, &exit_seen)
    });
    let status = loop {
        let sig = tokio::select! {
            s = child.wait() => break s.map_err(|e| Error::internal("waiting failed", e))?,
            _ = int.recv() => Signal::INT,
            _ = term.recv() => Signal::TERM,
            _ = hup.recv() => Signal::HUP,
        };
        // A ^C on the terminal reached the child already: it shares our process group.
        // Sending it again would look like a second ^C (which many programs take as "force").
        if sig == Signal::INT && in_terminal_foreground() {
            continue;
        }
        // Not reaped yet (wait is what reaps), so the pid is still the child's.
        if let Some(pid) = child.id().and_then(|p| Pid::from_raw(p.cast_signed())) {
            let _ = kill_process(pid, sig);
        }
    };
    exited.send_replace(true);
    if let Some(p) = pumps {
        p.join().await;
    }
    Ok(exit_code(status))
}

/// Whether our process group is the foreground group of our controlling terminal (then the
/// terminal's SIGINT went to the child too). From /proc/self/stat: `pgrp` and `tpgid`.
pub(super) fn in_terminal_foreground() -> bool {
    std::fs::read_to_string("/proc/self/stat").is_ok_and(|s| foreground_in_stat(&s))
}

/// `pgrp == tpgid` in a /proc/PID/stat line (`tpgid` is -1 without a terminal).
fn foreground_in_stat(stat: &str) -> bool {
    // The command name in parentheses may hold spaces: count fields after the last `)`.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    match (f.get(2), f.get(5)) {
        (Some(pgrp), Some(tpgid)) => pgrp == tpgid,
        _ => false,
    }
}

/// The child's command line and environment; its stdout and stderr are pipes when `piped`.
pub(super) fn child_command(
    program: &OsStr,
    args: &[OsString],
    env: &[(&String, &SecretBytes)],
    piped: bool,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    // The store's passphrase and the agent's token are ours, not the child's.
    command
        .args(args)
        .env_remove("TRESOR_PASSPHRASE")
        .env_remove(super::daemon_ctl::TOKEN_ENV);
    for (k, v) in env {
        command.env(k, OsStr::from_bytes(v.expose()));
    }
    if piped {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    command
}

/// Relays the child's stdout and stderr to `to` (ours for `run`), each through its masker.
/// Each pump hands its writer back when it ends.
pub(super) fn start_pumps<O, E>(
    child: &mut tokio::process::Child,
    [m_out, m_err]: [Masker; 2],
    (to_out, to_err): (O, E),
    exited: &watch::Receiver<bool>,
) -> Pumps<O, E>
where
    O: AsyncWrite + Unpin + Send + 'static,
    E: AsyncWrite + Unpin + Send + 'static,
{
    let out = child
        .stdout
        .take()
        .map(|from| tokio::spawn(pump(from, to_out, m_out, exited.clone())));
    let err = child
        .stderr
        .take()
        .map(|from| tokio::spawn(pump(from, to_err, m_err, exited.clone())));
    Pumps { out, err }
}

/// The two running pumps of [`start_pumps`].
pub(super) struct Pumps<O, E> {
    /// stdout's, when it was piped.
    pub out: Option<tokio::task::JoinHandle<O>>,
    /// stderr's, when it was piped.
    pub err: Option<tokio::task::JoinHandle<E>>,
}

impl<O, E> Pumps<O, E> {
    /// Waits for both pumps; the writers of those that ended normally.
    pub async fn join(self) -> (Option<O>, Option<E>) {
        let out = match self.out {
            Some(p) => p.await.ok(),
            None => None,
        };
        let err = match self.err {
            Some(p) => p.await.ok(),
            None => None,
        };
        (out, err)
    }
}

/// Copies `from` to `to` through `m` until the end, or until [`DRAIN_IDLE`] of quiet once
/// `exited` turns true; then returns `to`. When writing fails (our stdout was closed) it stops
/// reading, so the child finds its pipe closed as it would without us.
///
/// Every byte goes through `m` in the order read, and what `m` holds back (a tail that may
/// begin a value) is only ever written masked, so a value written in pieces is still masked.
async fn pump<W: AsyncWrite + Unpin>(
    mut from: impl AsyncRead + Unpin,
    mut to: W,
    mut m: Masker,
    mut exited: watch::Receiver<bool>,
) -> W {
    let mut buf = Zeroizing::new(vec![0u8; 16 * 1024]);
    loop {
        let read = if *exited.borrow() {
            match tokio::time::timeout(DRAIN_IDLE, from.read(&mut buf[..])).await {
                Ok(r) => r,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                r = from.read(&mut buf[..]) => r,
                // Reads are cancel-safe: nothing read is lost by starting over.
                _ = exited.changed() => continue,
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let out = Zeroizing::new(m.feed(&buf[..n]));
        if to.write_all(&out).await.is_err() || to.flush().await.is_err() {
            return to;
        }
    }
    let out = Zeroizing::new(m.finish());
    let _ = to.write_all(&out).await;
    let _ = to.flush().await;
    to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreground_from_proc_stat() {
        let fg = "4242 (my (odd) cmd) S 1 4242 4242 34816 4242 4194304 0 0";
        assert!(foreground_in_stat(fg));
        let bg = "4242 (sh) S 1 4242 4242 34816 5000 4194304 0 0";
        assert!(!foreground_in_stat(bg));
        let none = "4242 (sh) S 1 4242 4242 0 -1 4194304 0 0";
        assert!(!foreground_in_stat(none));
        assert!(!foreground_in_stat("garbage"));
    }

    #[test]
    fn variable_names() {
        assert!(is_var_name("GITHUB_PAT") && is_var_name("_x1"));
        assert!(!is_var_name("1X") && !is_var_name("A-B") && !is_var_name(""));
    }

    #[test]
    fn exit_codes_of_signals() {
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}

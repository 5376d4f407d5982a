//! `run_with_secrets`: the command runs as `tresor run` runs it (the same environment
//! rules and the same streaming maskers, see [`super::super::run`]), but its output is
//! captured instead of relayed: each stream into a buffer capped at a size, the whole run
//! bounded by a timeout. The child gets no stdin (ours carries the protocol) and its own
//! process group, so that a timeout stops what it started too.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::task::{Context, Poll};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::AsyncWrite;
use tokio::sync::watch;

use super::super::mask::Masker;
use super::super::run::{child_command, start_pumps};
use crate::error::{Error, Result};
use crate::types::SecretBytes;

/// After a timeout, how long the process group has between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Bounds of one run.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// The child is stopped after this long.
    pub timeout: Duration,
    /// Bytes kept of each stream (after masking).
    pub cap: usize,
}

/// One stream's masked output, up to its cap; what came after is counted, not kept.
#[derive(Debug, Default)]
pub(super) struct Captured {
    cap: usize,
    /// The bytes kept.
    pub bytes: Vec<u8>,
    /// How many bytes were dropped past the cap.
    pub dropped: u64,
}

impl Captured {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }
}

/// Never fails and never blocks: past the cap the child's output is drained and dropped, so
/// a chatty child neither stalls on a full pipe nor dies of a closed one.
impl AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let room = this.cap.saturating_sub(this.bytes.len()).min(buf.len());
        this.bytes.extend_from_slice(&buf[..room]);
        this.dropped += (buf.len() - room) as u64;
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// How a run ended.
#[derive(Debug)]
pub(super) struct Ran {
    /// The child's exit status.
    pub status: ExitStatus,
    /// Whether it was stopped for running past the timeout.
    pub timed_out: bool,
    /// Masked stdout.
    pub stdout: Captured,
    /// Masked stderr.
    pub stderr: Captured,
}

impl Ran {
    /// The exit code, when the child exited.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    /// The signal that ended the child, when one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

/// Runs `argv` with `env` added to ours, every value of `env` masked in its output.
///
/// # Errors
/// `InvalidArgument` for an empty command; `NotFound` when the program cannot be found;
/// `Internal` when it cannot be started or waited for.
pub(super) async fn run(
    argv: &[String],
    cwd: Option<&Path>,
    env: &BTreeMap<String, SecretBytes>,
    limits: Limits,
) -> Result<Ran> {
    let (program, rest) = argv
        .split_first()
        .ok_or_else(|| Error::invalid("command", "give the program and its arguments"))?;
    let rest: Vec<OsString> = rest.iter().map(OsString::from).collect();
    let vars: Vec<(&String, &SecretBytes)> = env.iter().collect();
    let mut command = child_command(OsStr::new(program), &rest, &vars, true);
    command
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found("program", program.clone()),
        _ => Error::internal(format!("cannot run {program}"), e),
    })?;
    let group = child.id().and_then(|p| Pid::from_raw(p.cast_signed()));
    // One masker per stream, each with its own carry: a value written in pieces is whole in
    // the masker before anything of it is captured.
    let maskers = [(); 2].map(|()| Masker::new(env.values()));
    let sinks = (Captured::new(limits.cap), Captured::new(limits.cap));
    let (exited, exit_seen) = watch::channel(false);
    let pumps = start_pumps(&mut child, maskers, sinks, &exit_seen);
    let (status, timed_out) = wait_or_stop(&mut child, group, limits.timeout).await;
    let status = status.map_err(|e| Error::internal("waiting for the command failed", e))?;
    exited.send_replace(true);
    let (stdout, stderr) = pumps.join().await;
    Ok(Ran {
        status,
        timed_out,
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
    })
}

/// Waits for the child; past `timeout`, stops its process group (TERM, then KILL after
/// [`KILL_GRACE`]). Whether it timed out comes second.
async fn wait_or_stop(
    child: &mut tokio::process::Child,
    group: Option<Pid>,
    timeout: Duration,
) -> (std::io::Result<ExitStatus>, bool) {
    if let Ok(s) = tokio::time::timeout(timeout, child.wait()).await {
        return (s, false);
    }
    let signal_group = |sig| {
        if let Some(g) = group {
            let _ = kill_process_group(g, sig);
        }
    };
    signal_group(Signal::TERM);
    if let Ok(s) = tokio::time::timeout(KILL_GRACE, child.wait()).await {
        return (s, true);
    }
    signal_group(Signal::KILL);
    (child.wait().await, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            timeout: Duration::from_secs(10),
            cap: 64,
        }
    }

    fn env() -> BTreeMap<String, SecretBytes> {
        BTreeMap::from([("V".to_owned(), SecretBytes::from("s3cret-value-42"))])
    }

    #[tokio::test]
    async fn pieces_are_masked_and_output_capped() {
        let argv: Vec<String> = [
            "sh",
            "-c",
            r#"printf %s "${V%????}"; sleep 0.1; printf '%s\n' "${V#${V%????}}"; seq 1 100 >&2"#,
        ]
        .map(String::from)
        .to_vec();
        let ran = run(&argv, None, &env(), limits()).await.expect("runs");
        assert_eq!(ran.code(), Some(0));
        assert_eq!(ran.stdout.bytes, b"***\n");
        assert_eq!(ran.stderr.bytes.len(), 64);
        assert!(ran.stderr.dropped > 0);
    }

    #[tokio::test]
    async fn timeouts_stop_the_group() {
        let argv: Vec<String> = ["sh", "-c", "sleep 30 & wait"].map(String::from).to_vec();
        let l = Limits {
            timeout: Duration::from_millis(200),
            ..limits()
        };
        let ran = run(&argv, None, &env(), l).await.expect("runs");
        assert!(ran.timed_out);
        assert_eq!(ran.signal(), Some(15));
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found() {
        let argv = vec!["/nonexistent/tresor-test".to_owned()];
        let e = run(&argv, None, &env(), limits()).await.expect_err("fails");
        assert_eq!(e.code().as_str(), "not_found");
    }
}

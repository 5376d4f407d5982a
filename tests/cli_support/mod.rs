//! Helpers shared by the CLI tests: a temp store made with `init --insecure-kdf`, and a runner
//! for the built `tresor` binary that never inherits the caller's store, socket or passphrase.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The passphrase of every test store.
pub const PASS: &str = "correct horse battery staple";

/// What one run of the binary produced.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Raw stdout (may hold a value: assert on it, never print it).
    pub stdout: Vec<u8>,
    /// Stderr, with the temp directory replaced by `[DIR]`.
    pub stderr: String,
}

impl Run {
    /// Stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    /// Stderr without the insecure-KDF warning lines (for exact snapshots).
    pub fn err_only(&self) -> String {
        self.stderr
            .lines()
            .filter(|l| !l.starts_with("warning: [DIR]/store.tresor uses insecure"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A temp directory with a store and a passphrase file.
pub struct Env {
    /// Holds the files.
    pub dir: tempfile::TempDir,
    /// The store path.
    pub store: PathBuf,
    /// A file holding [`PASS`].
    pub pass: PathBuf,
}

impl Env {
    /// A new directory; the store is not created yet.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.tresor");
        let pass = dir.path().join("pass");
        write_private(&pass, format!("{PASS}\n"));
        Self { dir, store, pass }
    }

    /// A new directory with an initialized store.
    pub fn new() -> Self {
        let env = Self::empty();
        let r = env.run(&["init", "--insecure-kdf"], None);
        assert_eq!(r.code, 0, "init failed: {}", r.stderr);
        env
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A bare command: no store, socket or passphrase from the caller's environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tresor"));
        c.env_remove("TRESOR_STORE")
            .env_remove("TRESOR_PASSPHRASE")
            .env("TRESOR_SOCKET", self.dir.path().join("no-daemon.sock"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg"))
            .env("COLUMNS", "100")
            .env_remove("RUST_LOG");
        c
    }

    /// Runs `tresor --store S --passphrase-file P ARGS` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut c = self.cmd();
        c.arg("--store")
            .arg(&self.store)
            .arg("--passphrase-file")
            .arg(&self.pass)
            .args(args);
        self.finish(c, stdin)
    }

    /// Runs a prepared command with `stdin` (empty when `None`).
    pub fn finish(&self, mut c: Command, stdin: Option<&[u8]>) -> Run {
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            let mut w = child.stdin.take().unwrap();
            if let Some(bytes) = stdin {
                w.write_all(bytes).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        let dir = self.dir.path().display().to_string();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).replace(&dir, "[DIR]"),
        }
    }

    /// Sets `name` to `value` (from stdin), asserting success.
    pub fn set(&self, name: &str, value: &[u8], extra: &[&str]) {
        let mut args = vec!["set", name];
        args.extend_from_slice(extra);
        let r = self.run(&args, Some(value));
        assert_eq!(r.code, 0, "set {name} failed: {}", r.stderr);
    }
}

/// Whether this process has a controlling terminal (then a prompt would wait on it).
pub fn has_tty() -> bool {
    std::fs::File::open("/dev/tty").is_ok()
}

/// Writes a passphrase or key file as tresor wants one: mode 0600 (it refuses a file that
/// group or others may read, SPEC §4.6).
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents).unwrap();
    chmod(path, 0o600);
}

/// Sets a file's mode.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A `tresor daemon` child, stopped (SIGKILL) on drop.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Its socket.
    pub socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tresor daemon` on a socket in the temp directory (unlocked with the passphrase
/// file when `unlock`) and waits until it answers.
pub fn start(env: &Env, unlock: bool) -> Daemon {
    let socket = env.path("run/tresord.sock");
    let mut c = env.cmd();
    c.env("TRESOR_SOCKET", &socket)
        .arg("--store")
        .arg(&env.store);
    if unlock {
        c.arg("--passphrase-file").arg(&env.pass);
    }
    c.arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child, socket }
}

/// Runs a command against the daemon: no passphrase source at all.
pub fn via(env: &Env, d: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut c = env.cmd();
    c.env("TRESOR_SOCKET", &d.socket)
        .arg("--store")
        .arg(&env.store)
        .args(args);
    env.finish(c, stdin)
}

/// Spawns `tresor ARGS` against the daemon (a long runner such as `audit --follow`) and
/// hands its stdout over line by line; the caller kills the child.
pub fn spawn_lines(
    env: &Env,
    d: &Daemon,
    args: &[&str],
) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut c = env.cmd();
    c.env("TRESOR_SOCKET", &d.socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

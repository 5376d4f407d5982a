//! A full disk under a real `tresord` (issue 7, finding 2): the store on a 2 MiB tmpfs, filled
//! by the daemon's own writes and then by a junk file. While full, writes are `unavailable`
//! (503, CLI exit 8) naming "no space left on device" (value reads go on: their records go to
//! the audit journal, allocated in advance), and the status says
//! degraded with the reason — and keeps saying so while the disk stays full. Once the junk is
//! deleted, the daemon's probe clears the status with no client writing, writes and reads work
//! again without a restart, and every acknowledged write is there with its value.
//!
//! Needs root (to mount the tmpfs); skipped with a printed reason otherwise.
#![allow(clippy::unwrap_used)]

mod cli_support;
mod daemon_common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{Daemon, Env, via};
use daemon_common::{raw, request, status_of};
use tresor::{Api, Error, SetRequest};

/// How long the daemon's probe may take to notice freed space (it probes every 2 s).
const RECOVERY: Duration = Duration::from_secs(10);

/// A tmpfs mounted for the test, unmounted when dropped (also when the test panics).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a process not yet reaped): detach it now, freed once unused.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Fields drop in order: the daemon stops, then the tmpfs is unmounted, then the temp
/// directory is removed.
struct Fixture {
    daemon: Daemon,
    fs: Mount,
    env: Env,
}

fn fixture() -> Option<Fixture> {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: mounting a small tmpfs needs root");
        return None;
    }
    let mut env = Env::empty();
    let fs = Mount::tmpfs(&env.path("fs"), "2m");
    env.store = fs.0.join("store.tresor");
    let r = env.run(&["init", "--insecure-kdf"], None);
    assert_eq!(r.code, 0, "init failed: {}", r.stderr);
    let socket = env.path("run/tresord.sock");
    let log = std::fs::File::create(env.path("tresord.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tresord"))
        .arg("--store")
        .arg(&env.store)
        .arg("--socket")
        .arg(&socket)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .env("TRESOR_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut daemon = Daemon { child, socket };
    wait_for_daemon(&mut daemon.child, &daemon.socket);
    Some(Fixture { daemon, fs, env })
}

fn wait_for_daemon(child: &mut Child, socket: &Path) {
    let t0 = Instant::now();
    while !tresor::client::daemon_answers(socket) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("tresord exited early: {status}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "tresord did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn value(i: usize) -> String {
    // Big enough to fill 2 MiB in a few hundred writes; never printed.
    format!("value-{i:04}-{}", "q".repeat(6000))
}

fn set(c: &tresor::Client, name: &str, v: &str) -> Result<(), Error> {
    let req = SetRequest {
        value: Some(v.into()),
        ..SetRequest::default()
    };
    c.set(name, &req).map(drop)
}

/// Sets `PREFIX-i` for i from `from` until a write is refused for want of space (at most
/// `limit` writes), keeping the acknowledged ones in `acked`.
fn write_until_full(
    c: &tresor::Client,
    prefix: &str,
    from: usize,
    limit: usize,
    acked: &mut Vec<(String, String)>,
) {
    for i in from..from + limit {
        let name = format!("{prefix}-{i:04}");
        match set(c, &name, &value(i)) {
            Ok(()) => acked.push((name, value(i))),
            Err(Error::Unavailable { reason }) => {
                assert!(reason.contains("no space left on device"), "{reason}");
                return;
            }
            Err(e) => panic!("write {name} on a filling disk: {e}"),
        }
    }
    panic!("{limit} writes of {prefix} never filled the disk");
}

/// Writes `path` until the filesystem refuses another byte.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // Whatever a partial chunk left: byte by byte.
    while f.write(&[0x5a]).is_ok_and(|n| n == 1) {}
    let _ = f.sync_all();
}

/// Asserts a raw answer is a 503 `unavailable` naming the full disk.
fn assert_unavailable(answer: &str, what: &str) {
    assert_eq!(status_of(answer), 503, "{what}: {answer}");
    assert!(
        answer.contains(r#""code":"unavailable""#),
        "{what}: {answer}"
    );
    assert!(
        answer.contains("no space left on device"),
        "{what}: {answer}"
    );
}

fn degraded(c: &tresor::Client) -> Option<String> {
    let s = c.status().unwrap();
    assert_eq!(s.degraded, s.degraded_reason.is_some(), "{s:?}");
    s.degraded_reason
}

#[test]
fn a_full_disk_is_unavailable_and_the_daemon_recovers_by_itself() {
    let Some(fx) = fixture() else { return };
    let c = tresor::Client::new(&fx.daemon.socket).unwrap();
    // Room to free later, whatever the daemon's writes leave.
    let ballast = fx.fs.0.join("ballast");
    std::fs::write(&ballast, vec![0u8; 384 * 1024]).unwrap();

    set(&c, "secret-0000", &value(0)).unwrap();
    // `tresor` has read once: the daemon knows its executable path (a program's first record
    // stores its path, a write of its own).
    let r = via(&fx.env, &fx.daemon, &["get", "secret-0000"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // The daemon's own writes fill the disk.
    let mut acked = Vec::new();
    write_until_full(&c, "secret", 0, 1000, &mut acked);
    assert!(acked.len() > 10, "only {} writes fit", acked.len());
    let junk = fx.fs.0.join("junk");
    fill(&junk);
    // Pages the store file already holds free take writes that fit in them: those succeed (and
    // are kept) until the file must grow.
    write_until_full(&c, "slack", 3000, 100, &mut acked);

    // Full: writes and value reads are unavailable, over HTTP and through the CLI.
    let body = format!(r#"{{"value":"{}"}}"#, value(9999));
    let body = body.as_bytes();
    let answer = raw(
        &fx.daemon.socket,
        &request("PUT", "/v1/secrets/while-full", body),
    );
    assert_unavailable(&answer, "a write on a full disk");
    let r = via(&fx.env, &fx.daemon, &["set", "cli-full"], Some(b"v"));
    assert_eq!(r.code, 8, "tresor set on a full disk: {}", r.stderr);
    assert!(r.stderr.contains("no space left on device"), "{}", r.stderr);
    // Value reads go on: their audit records are made durable in the audit journal, whose
    // space was allocated when the daemon started (`store/journal.rs`); they are in the log
    // after recovery (checked below).
    let answer = raw(
        &fx.daemon.socket,
        &request("GET", "/v1/secrets/secret-0000/value", b""),
    );
    assert_eq!(
        status_of(&answer),
        200,
        "a value read on a full disk: {answer}"
    );
    let r = via(&fx.env, &fx.daemon, &["get", "secret-0000"], None);
    assert_eq!(r.code, 0, "tresor get on a full disk: {}", r.stderr);

    // Degraded, with the reason; the probe does not call a full disk healthy.
    let why = degraded(&c).expect("not degraded on a full disk");
    assert!(why.contains("no space left on device"), "{why}");
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        degraded(&c).is_some(),
        "the status cleared while the disk was still full"
    );
    let r = via(&fx.env, &fx.daemon, &["status"], None);
    assert!(r.out().contains("no space left on device"), "{}", r.out());

    // Space freed: with no client writing, the status clears by itself (list-only workloads
    // see a healthy daemon again).
    std::fs::remove_file(&junk).unwrap();
    std::fs::remove_file(&ballast).unwrap();
    let t0 = Instant::now();
    while let Some(why) = degraded(&c) {
        assert!(
            t0.elapsed() < RECOVERY,
            "still degraded {RECOVERY:?} after space was freed: {why}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!c.list(&tresor::ListFilter::default()).unwrap().is_empty());

    // Writes and reads work again without a restart; nothing acknowledged is lost.
    for i in 2000..2005 {
        let name = format!("secret-{i:04}");
        set(&c, &name, &value(i)).unwrap();
        acked.push((name, value(i)));
    }
    let r = via(&fx.env, &fx.daemon, &["set", "cli-after"], Some(b"after"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    acked.push(("cli-after".into(), "after".into()));
    for (name, v) in &acked {
        let got = c.get_value(name, None, None).unwrap();
        assert!(
            got.value.expose() == v.as_bytes(),
            "{name}: wrong value after recovery"
        );
    }
    let r = via(&fx.env, &fx.daemon, &["get", "secret-0000"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == value(0).as_bytes(), "tresor get: wrong value");
    assert!(degraded(&c).is_none());
    let r = via(&fx.env, &fx.daemon, &["audit", "verify"], None);
    assert_eq!(r.code, 0, "audit verify: {}{}", r.out(), r.stderr);
    // The read before, both reads served on the full disk, and the two after recovery.
    let r = via(
        &fx.env,
        &fx.daemon,
        &[
            "audit",
            "--secret",
            "secret-0000",
            "--action",
            "read",
            "--outcome",
            "ok",
            "--json",
        ],
        None,
    );
    assert_eq!(r.out().lines().count(), 5, "{}", r.out());
}

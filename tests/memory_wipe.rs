//! The daemon's memory (SPEC §4.6), checked on a real `tresord` process as root (skipped,
//! saying why, otherwise):
//! - a value read many times, by `GET /v1/secrets/{name}/value` and by `POST /v1/env`, is not
//!   left behind in the daemon's memory once the responses are sent: the test scans every
//!   readable mapping through `/proc/PID/maps` and `/proc/PID/mem` (the daemon is not
//!   dumpable, which root with `CAP_SYS_PTRACE` reads through);
//! - an unprivileged daemon under the default 8 MiB memlock limit still locks its key pages
//!   (`VmLck` > 0 in `/proc/PID/status`).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tresor::protocol::EnvItem;
use tresor::{Actor, Api, KdfChoice, Passphrase, SetRequest, Store};

const PASS: &str = "memory-wipe test passphrase";
/// How many times the value is read by each route.
const N: usize = 50;

/// Kills the daemon if the test fails before stopping it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn wait_for(socket: &Path, d: &mut Daemon) {
    let t0 = Instant::now();
    while !tresor::client::daemon_answers(socket) {
        if let Some(status) = d.0.try_wait().unwrap() {
            panic!("tresord exited early: {status}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "tresord did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pass_file(dir: &Path) -> PathBuf {
    let pass = dir.join("pass");
    std::fs::write(&pass, PASS).unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    pass
}

/// How many times `needle` occurs in the readable memory of process `pid`.
fn occurrences_in_memory(pid: u32, needle: &[u8]) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut found = 0;
    for line in maps.lines() {
        let mut cols = line.split_whitespace();
        let (Some(range), Some(perms)) = (cols.next(), cols.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; usize::try_from(b - a).unwrap()];
        if mem.seek(SeekFrom::Start(a)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        found += buf.windows(needle.len()).filter(|w| *w == needle).count();
    }
    found
}

#[test]
fn values_served_are_wiped_from_the_daemons_memory() {
    if !is_root() {
        println!("skipped: reading another process's memory needs root (CAP_SYS_PTRACE)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store.tresor");
    let socket = dir.path().join("run/tresord.sock");
    // A value no other memory holds by chance; written by the library, so that no request
    // body carrying it ever reaches the daemon.
    let value = format!("wipe-canary-{:x}", std::process::id() ^ 0x5eed_cafe);
    {
        let store = Store::create(
            &store_path,
            &Passphrase::from(PASS),
            &KdfChoice::Insecure,
            &Actor::direct_owner(),
        )
        .unwrap();
        let req = SetRequest {
            value: Some(value.as_str().into()),
            ..Default::default()
        };
        store.set(&Actor::direct_owner(), "x", req).unwrap();
    }
    let pass = pass_file(dir.path());
    let mut d = Daemon(
        Command::new(env!("CARGO_BIN_EXE_tresord"))
            .arg("--store")
            .arg(&store_path)
            .arg("--socket")
            .arg(&socket)
            .arg("--passphrase-file")
            .arg(&pass)
            .env("TRESOR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&socket, &mut d);
    let c = tresor::Client::new(&socket).unwrap();
    for _ in 0..N {
        let v = c.get_value("x", None, None).unwrap();
        assert_eq!(v.value.expose(), value.as_bytes());
        let env = c.env(&[EnvItem::Short("x=X".into())]).unwrap();
        assert_eq!(env["X"].expose(), value.as_bytes());
    }
    drop(c);
    // Let the connections close and their buffers go.
    std::thread::sleep(Duration::from_millis(300));
    let copies = occurrences_in_memory(d.0.id(), value.as_bytes());
    println!("{copies} copies of a value served {} times", 2 * N);
    assert_eq!(
        copies, 0,
        "decrypted values stay in the daemon's memory after their responses were sent"
    );
    // The scan itself works: the name, which is not secret, is found.
    assert!(occurrences_in_memory(d.0.id(), store_path.to_str().unwrap().as_bytes()) > 0);
}

#[test]
fn an_unprivileged_daemon_locks_its_key_pages_under_the_default_limit() {
    if !is_root() {
        println!("skipped: running the daemon as a second user needs root (useradd, setpriv)");
        return;
    }
    let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    let user = "tresor-mlock";
    if tresor::testing::user_id(user).is_none()
        && !ok(Command::new("useradd").args(["-M", "-U", "-s", "/usr/sbin/nologin", user]))
    {
        println!("skipped: useradd could not create {user}");
        return;
    }
    let uid = tresor::testing::user_id(user).unwrap();
    let gid = tresor::testing::group_id(user).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pass = pass_file(dir.path());
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    std::os::unix::fs::chown(&pass, Some(uid), Some(gid)).unwrap();
    let socket = dir.path().join("run/tresord.sock");
    let mut d = Daemon(
        Command::new("prlimit")
            .arg("--memlock=8388608:8388608")
            .arg("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(env!("CARGO_BIN_EXE_tresord"))
            .arg("--init")
            .arg("--insecure-kdf")
            .arg("--store")
            .arg(dir.path().join("store.tresor"))
            .arg("--socket")
            .arg(&socket)
            .arg("--passphrase-file")
            .arg(&pass)
            .env("TRESOR_LOG", "warn")
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while !socket.exists() {
        if let Some(status) = d.0.try_wait().unwrap() {
            panic!("tresord exited early: {status}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "tresord did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The store is unlocked before the socket is bound; give the status a moment to settle.
    std::thread::sleep(Duration::from_millis(200));
    // prlimit and setpriv exec, so the child's pid is the daemon's.
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.0.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap()
    };
    assert!(field("Uid:").starts_with(&uid.to_string()), "{status}");
    let locked_kb: u64 = field("VmLck:")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    println!("unprivileged tresord: VmLck {locked_kb} kB");
    assert!(locked_kb > 0, "no key page is locked: {status}");
    assert!(locked_kb <= 8192, "within the default limit");
}

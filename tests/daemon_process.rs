//! `tresord` as a process: `--init` on first run, socket and directory modes, one instance
//! per socket, SIGTERM exits 0 and removes the socket, and kill -9 during a write storm loses
//! no acknowledged write (restart replaces the stale socket; the audit chain verifies).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tresor::Api;

use tresor::{Error, SetRequest};

struct Paths {
    _dir: tempfile::TempDir,
    store: PathBuf,
    socket: PathBuf,
    pass: PathBuf,
}

fn paths() -> Paths {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "hunter2-but-longer\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    Paths {
        store: dir.path().join("data/store.tresor"),
        socket: dir.path().join("run/tresord.sock"),
        pass,
        _dir: dir,
    }
}

fn tresord(p: &Paths, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tresord"));
    c.arg("--store")
        .arg(&p.store)
        .arg("--socket")
        .arg(&p.socket)
        .args(extra)
        .env("TRESOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn wait_for_socket(socket: &Path, child: &mut Child) {
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

fn start(p: &Paths, extra: &[&str]) -> Child {
    let mut child = tresord(p, extra).spawn().unwrap();
    wait_for_socket(&p.socket, &mut child);
    child
}

fn sigterm(child: &Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_modes_single_instance_and_sigterm() {
    let p = paths();
    let pass = p.pass.to_str().unwrap().to_owned();
    let mut child = start(
        &p,
        &["--init", "--insecure-kdf", "--passphrase-file", &pass],
    );
    assert_eq!(mode(&p.socket), 0o600);
    assert_eq!(mode(p.socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&p.store), 0o600);
    let c = tresor::Client::new(&p.socket).unwrap();
    assert!(!c.status().unwrap().locked);
    c.set(
        "k",
        &SetRequest {
            value: Some("v".into()),
            ..Default::default()
        },
    )
    .unwrap();

    // A second daemon on the same socket is refused and leaves the first one alone.
    let out = tresord(&p, &["--passphrase-file", &pass])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another tresord") || err.contains("open in another process"),
        "{err}"
    );
    assert!(c.status().is_ok());

    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!p.socket.exists(), "the socket was not removed");

    // Without an unlock source it starts locked; the owner unlocks over the socket.
    let mut child = start(&p, &[]);
    let c = tresor::Client::new(&p.socket).unwrap();
    assert!(c.status().unwrap().locked);
    assert!(matches!(c.get_value("k", None, None), Err(Error::Locked)));
    c.unlock(&tresor::Passphrase::from("hunter2-but-longer"))
        .unwrap();
    assert_eq!(c.get_value("k", None, None).unwrap().value.expose(), b"v");
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn group_socket_modes() {
    let p = paths();
    let pass = p.pass.to_str().unwrap().to_owned();
    let gid = rustix::process::getegid().as_raw().to_string();
    let mut child = start(
        &p,
        &[
            "--init",
            "--insecure-kdf",
            "--passphrase-file",
            &pass,
            "--socket-group",
            &gid,
        ],
    );
    assert_eq!(mode(&p.socket), 0o660);
    assert_eq!(mode(p.socket.parent().unwrap()), 0o750);
    sigterm(&child);
    assert!(child.wait().unwrap().success());

    // A directory others may write is refused.
    std::fs::set_permissions(p.socket.parent().unwrap(), PermissionsExt::from_mode(0o777)).unwrap();
    let out = tresord(&p, &["--passphrase-file", &pass])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod"));
}

#[test]
fn kill_9_during_a_write_storm_loses_no_acknowledged_write() {
    let p = paths();
    let pass = p.pass.to_str().unwrap().to_owned();
    let mut child = start(
        &p,
        &["--init", "--insecure-kdf", "--passphrase-file", &pass],
    );
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (socket, acked) = (p.socket.clone(), Arc::clone(&acked));
            std::thread::spawn(move || {
                let c = tresor::Client::new(&socket).unwrap();
                for i in 0.. {
                    let name = format!("w{t}-{i}");
                    let req = SetRequest {
                        value: Some(format!("value {t} {i}").as_str().into()),
                        ..Default::default()
                    };
                    if c.set(&name, &req).is_err() {
                        return;
                    }
                    acked.lock().unwrap().push((name, format!("value {t} {i}")));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "only {} writes before the kill",
        acked.len()
    );
    assert!(p.socket.exists(), "expected a stale socket after kill -9");

    let mut child = start(&p, &["--passphrase-file", &pass]);
    let c = tresor::Client::new(&p.socket).unwrap();
    for (name, value) in &acked {
        let v = c.get_value(name, None, None).unwrap();
        assert_eq!(v.value.expose(), value.as_bytes(), "{name}");
    }
    let report = c.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// Logs written to a pipe or a file (a journal, `2> log`) carry no ANSI colour codes; they
/// used to, as on a terminal.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let p = paths();
    let pass = p.pass.to_str().unwrap().to_owned();
    let mut child = tresord(
        &p,
        &["--init", "--insecure-kdf", "--passphrase-file", &pass],
    )
    .env("TRESOR_LOG", "info")
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_socket(&p.socket, &mut child);
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("tresord starting"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
}

/// tresord bounds glibc's malloc arenas by executing itself again with `MALLOC_ARENA_MAX=2`
/// (memory budget, SPEC §10): same pid, still serving; a value the caller set is kept.
#[test]
fn tresord_runs_with_bounded_malloc_arenas() {
    let environ = |pid: u32| std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let has = |env: &[u8], kv: &str| env.split(|b| *b == 0).any(|e| e == kv.as_bytes());
    let p = paths();
    let pass = p.pass.to_str().unwrap().to_owned();
    let mut child = start(
        &p,
        &["--init", "--insecure-kdf", "--passphrase-file", &pass],
    );
    assert!(has(&environ(child.id()), "MALLOC_ARENA_MAX=2"));
    assert!(
        !tresor::Client::new(&p.socket)
            .unwrap()
            .status()
            .unwrap()
            .locked
    );
    sigterm(&child);
    assert!(child.wait().unwrap().success());

    let mut c = tresord(&p, &["--passphrase-file", &pass]);
    c.env("MALLOC_ARENA_MAX", "4");
    let mut child = c.spawn().unwrap();
    wait_for_socket(&p.socket, &mut child);
    assert!(has(&environ(child.id()), "MALLOC_ARENA_MAX=4"));
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

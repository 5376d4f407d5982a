//! SPEC §3 under kill -9 (issue 8): a value leaves the daemon only after its audit record is
//! durable, and `last_used` — no longer written per read, but noted and folded later — is
//! exactly what the audit log says after a crash, because it is replayed from it at unlock.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cli_support::{Env, PASS};
use tresor::{Action, Actor, Api, AuditQuery, Outcome, Passphrase, Store, UnlockSecret};

fn start(env: &Env) -> Child {
    let socket = env.path("run/tresord.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tresord"))
        .arg("--store")
        .arg(&env.store)
        .arg("--socket")
        .arg(&socket)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .env("TRESOR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !tresor::client::daemon_answers(&socket) {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("tresord exited: {s}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "tresord did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn kill9(child: &mut Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let _ = child.wait();
}

fn reopen(env: &Env) -> Store {
    Store::open(&env.store)
        .unwrap()
        .unlock(
            &UnlockSecret::Passphrase(Passphrase::from(PASS)),
            &Actor::direct_owner(),
        )
        .unwrap()
}

/// Successful reads of `name` in the log, and the time of the last one.
fn reads_of(store: &Store, name: &str) -> (u64, Option<jiff::Timestamp>) {
    let q = AuditQuery {
        secret: Some(name.into()),
        action: Some(Action::Read),
        outcome: Some(Outcome::Ok),
        ..AuditQuery::default()
    };
    let recs = store.audit(&Actor::direct_owner(), &q).unwrap();
    (recs.len() as u64, recs.last().map(|r| r.time))
}

#[test]
fn a_read_that_returned_is_in_the_log_after_kill_9_and_last_used_is_right() {
    let env = Env::new();
    env.set("db-password", b"pw-1", &[]);
    env.set("never-read", b"pw-2", &[]);
    let mut child = start(&env);
    let c = tresor::Client::new(env.path("run/tresord.sock")).unwrap();
    let v = c.get_value("db-password", None, None).unwrap();
    assert_eq!(v.value.expose(), b"pw-1");
    // Shown at once, before any fold.
    let shown = c.show("db-password", None).unwrap().last_used;
    assert!(shown.is_some(), "last_used is shown right after the read");
    kill9(&mut child);

    let store = reopen(&env);
    let (n, last) = reads_of(&store, "db-password");
    assert_eq!(n, 1, "the read that returned is in the log");
    let meta = store
        .show(&Actor::direct_owner(), "db-password", None)
        .unwrap();
    assert_eq!(
        meta.last_used, last,
        "last_used after the crash is the read's record time"
    );
    assert_eq!(
        meta.last_used, shown,
        "and what the daemon showed before it"
    );
    let never = store
        .show(&Actor::direct_owner(), "never-read", None)
        .unwrap();
    assert_eq!(never.last_used, None);
}

#[test]
fn reads_under_load_survive_kill_9_in_the_log_and_in_last_used() {
    let env = Env::new();
    for i in 0..4 {
        env.set(&format!("s{i}"), format!("value-{i}").as_bytes(), &[]);
    }
    let mut child = start(&env);
    let socket = env.path("run/tresord.sock");
    let returned = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let (socket, returned, stop) =
                (socket.clone(), Arc::clone(&returned), Arc::clone(&stop));
            std::thread::spawn(move || {
                let c = tresor::Client::new(&socket).unwrap();
                let mut mine = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match c.get_value(&format!("s{i}"), None, None) {
                        Ok(v) => {
                            assert_eq!(v.value.expose(), format!("value-{i}").as_bytes());
                            mine += 1;
                        }
                        Err(_) => break,
                    }
                }
                returned.fetch_add(mine, Ordering::SeqCst);
                mine
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(600));
    kill9(&mut child);
    stop.store(true, Ordering::Relaxed);
    let per_reader: Vec<u64> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        per_reader.iter().all(|n| *n > 0),
        "every reader got values: {per_reader:?}"
    );

    let store = reopen(&env);
    for (i, got) in per_reader.iter().enumerate() {
        let name = format!("s{i}");
        let (logged, last) = reads_of(&store, &name);
        assert!(
            logged >= *got,
            "{name}: {got} values returned, {logged} reads in the log"
        );
        let meta = store.show(&Actor::direct_owner(), &name, None).unwrap();
        assert_eq!(
            meta.last_used, last,
            "{name}: last_used is the last logged read"
        );
    }
    assert!(store.audit_verify().unwrap().ok);
}

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

// The audit journal (`src/store/journal.rs`): the daemon commits read batches to redb without
// a sync and makes their records durable with one synced append to `<store>.journal`.

fn journal(env: &Env) -> std::path::PathBuf {
    tresor::journal_path(&env.store)
}

/// The frames of a journal: (offset, length of the row, seq), up to the first empty one.
fn frames(bytes: &[u8]) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    let mut at = 32;
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap());
        if len == 0 || at + 12 + len > bytes.len() {
            break;
        }
        out.push((at, len, seq));
        at += 12 + len;
    }
    out
}

#[test]
fn the_journal_is_private_holds_no_value_and_goes_at_a_clean_stop() {
    let env = Env::new();
    env.set("db-password", b"journal-plaintext-canary", &[]);
    let mut child = start(&env);
    let c = tresor::Client::new(env.path("run/tresord.sock")).unwrap();
    for _ in 0..3 {
        c.get_value("db-password", None, None).unwrap();
    }
    let path = journal(&env);
    let meta = std::fs::metadata(&path).expect("the daemon keeps a journal");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let bytes = std::fs::read(&path).unwrap();
    assert!(!frames(&bytes).is_empty(), "reads were journaled");
    for needle in [&b"journal-plaintext-canary"[..], b"db-password"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the journal holds sealed records only"
        );
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!path.exists(), "a clean stop removes the journal");
    let (n, _) = reads_of(&reopen(&env), "db-password");
    assert_eq!(n, 3);
}

#[test]
fn a_torn_journal_frame_is_a_read_that_never_returned() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let mut child = start(&env);
    let c = tresor::Client::new(env.path("run/tresord.sock")).unwrap();
    for _ in 0..5 {
        c.get_value("k", None, None).unwrap();
    }
    kill9(&mut child);
    let path = journal(&env);
    let mut bytes = std::fs::read(&path).unwrap();
    let f = frames(&bytes);
    assert!(f.len() >= 2, "journaled reads: {f:?}");
    // The last frame torn as a power cut mid-write would leave it: its value never left.
    let (at, len, _) = *f.last().unwrap();
    bytes[at + 12 + len - 1] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let store = reopen(&env);
    let (n, _) = reads_of(&store, "k");
    assert_eq!(n, 4, "every read before the torn frame, not the torn one");
    assert!(store.audit_verify().unwrap().ok);
    drop(store);
    assert!(!path.exists(), "a replayed journal is moved away");
    let mut bad = path.into_os_string();
    bad.push(".bad");
    assert!(
        std::path::Path::new(&bad).exists(),
        "a journal ending in a frame that breaks the chain is kept for inspection"
    );
}

#[test]
fn thousands_of_reads_wrap_the_journal_and_survive_kill_9() {
    let env = Env::new();
    for i in 0..4 {
        env.set(&format!("s{i}"), b"v", &[]);
    }
    let mut child = start(&env);
    let socket = env.path("run/tresord.sock");
    // ~8,000 records fill the 1 MiB journal: go past it, so that the frames left beyond the
    // write offset are stale ones from the first round.
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let c = tresor::Client::new(&socket).unwrap();
                for _ in 0..3_000 {
                    c.get_value(&format!("s{i}"), None, None).unwrap();
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    kill9(&mut child);
    let f = frames(&std::fs::read(journal(&env)).unwrap());
    assert!(
        f.windows(2).any(|w| w[1].2 < w[0].2),
        "the journal wrapped: newer frames before stale ones ({} frames)",
        f.len()
    );
    let store = reopen(&env);
    for i in 0..4 {
        assert_eq!(reads_of(&store, &format!("s{i}")).0, 3_000);
    }
    assert!(store.audit_verify().unwrap().ok);
}

#[test]
fn a_journal_that_is_not_this_stores_or_not_private_is_refused() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let path = journal(&env);
    let mut foreign = b"tresor journal 1".to_vec();
    foreign.extend_from_slice(&[7u8; 16]);
    foreign.resize(4096, 0);
    std::fs::write(&path, &foreign).unwrap();
    cli_support::chmod(&path, 0o600);
    let secret = UnlockSecret::Passphrase(Passphrase::from(PASS));
    let err = Store::open(&env.store)
        .unwrap()
        .unlock(&secret, &Actor::direct_owner())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("journal") && err.contains("move it away"),
        "{err}"
    );
    cli_support::chmod(&path, 0o622);
    let err = Store::open(&env.store)
        .unwrap()
        .unlock(&secret, &Actor::direct_owner())
        .unwrap_err();
    assert!(
        matches!(err, tresor::Error::PermissionDenied { .. }),
        "{err}"
    );
    if rustix::process::geteuid().is_root() {
        // A file someone else owns, even private, is not ours to trust.
        cli_support::chmod(&path, 0o600);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let err = Store::open(&env.store)
            .unwrap()
            .unlock(&secret, &Actor::direct_owner())
            .unwrap_err();
        assert!(
            matches!(&err, tresor::Error::PermissionDenied { .. })
                && err.to_string().contains("uid 65534"),
            "{err}"
        );
    } else {
        println!("skipped the foreign-owner case: chown needs root");
    }
    std::fs::remove_file(&path).unwrap();
    assert_eq!(reads_of(&reopen(&env), "k").0, 0);
}

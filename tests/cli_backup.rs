//! Online backup and restore (issue 11). `tresor backup OUT` used to exit 7 while the daemon
//! ran, with `--direct backup` failing the same way and the hint sending the user in a
//! circle. Now the CLI asks the daemon (`GET /v1/backup`) for a consistent copy, taken while
//! it keeps serving writes; `tresor restore` checks a backup (it opens, unlocks, its audit chain
//! verifies) before it becomes a store.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cli_support::{Env, start, via};

/// `tresor --store PATH --passphrase-file P ARGS`, with no daemon.
fn on_file(env: &Env, store: &std::path::Path, args: &[&str]) -> cli_support::Run {
    let mut c = env.cmd();
    c.arg("--store")
        .arg(store)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .args(args);
    env.finish(c, None)
}

/// Sets `churn` through the daemon, over and over, until the flag is raised; returns how often.
fn churn(env: &Env, d: &cli_support::Daemon) -> (Arc<AtomicBool>, std::thread::JoinHandle<u32>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let socket = d.socket.clone();
    let store = env.store.clone();
    let bin = env!("CARGO_BIN_EXE_tresor");
    let dir = env.dir.path().to_path_buf();
    let handle = std::thread::spawn(move || {
        let mut n = 0u32;
        while !flag.load(Ordering::Relaxed) {
            let out = std::process::Command::new(bin)
                .env("TRESOR_SOCKET", &socket)
                .env("XDG_DATA_HOME", dir.join("xdg"))
                .env_remove("TRESOR_PASSPHRASE")
                .args(["--store", store.to_str().unwrap(), "set", "churn"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin
                        .take()
                        .unwrap()
                        .write_all(format!("v{n}").as_bytes())?;
                    c.wait()
                })
                .unwrap();
            assert!(out.success(), "a write during the backup failed");
            n += 1;
        }
        n
    });
    (stop, handle)
}

#[test]
fn backup_while_the_daemon_serves_writes_opens_and_restores() {
    let env = Env::new();
    env.set("db-password", b"hunter2-db", &[]);
    env.set("api-key", b"key-v1", &[]);
    let d = start(&env, true);

    // A writer keeps changing the store through the daemon while the backup is taken.
    let (stop, churn) = churn(&env, &d);
    std::thread::sleep(std::time::Duration::from_millis(300));

    let out = env.path("backup.tresor");
    let r = via(&env, &d, &["backup", out.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("from tresord"), "{}", r.stderr);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the backup is not 0600");
    stop.store(true, Ordering::Relaxed);
    assert!(churn.join().unwrap() > 0, "no write went through");

    // Never overwrites, and leaves the first backup as it was.
    let before = std::fs::read(&out).unwrap();
    let r = via(&env, &d, &["backup", out.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("exists"), "{}", r.stderr);
    assert!(std::fs::read(&out).unwrap() == before);
    // The sealed copy holds no plaintext.
    assert!(memchr::memmem::find(&before, b"hunter2-db").is_none());

    // --direct while the daemon holds the file says how to back it up instead.
    let r = env.run(
        &["--direct", "backup", env.path("d.tresor").to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("without --direct"), "{}", r.stderr);

    // The backup is audited as an export on the live store.
    let r = via(&env, &d, &["--json", "audit", "--action", "export"], None);
    assert!(r.out().contains("backup streamed to"), "{}", r.out());

    // The copy opens with the passphrase, holds the secrets, and its chain verifies.
    let r = on_file(&env, &out, &["get", "db-password"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == b"hunter2-db");
    assert_eq!(on_file(&env, &out, &["audit", "verify"]).code, 0);

    // restore: checked, then written 0600 where asked.
    let restored = env.path("restored.tresor");
    let r = env.run(
        &[
            "restore",
            out.to_str().unwrap(),
            "--to",
            restored.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("verified"), "{}", r.stderr);
    let mode = std::fs::metadata(&restored).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(on_file(&env, &restored, &["get", "api-key"]).stdout == b"key-v1");
    assert!(
        !on_file(&env, &restored, &["get", "churn"])
            .stdout
            .is_empty()
    );
    let r = on_file(&env, &restored, &["--json", "audit", "--action", "import"]);
    assert!(r.out().contains("restore from"), "{}", r.out());
    assert_eq!(on_file(&env, &restored, &["audit", "verify"]).code, 0);

    // A new host: the store's directory is made as init would make it.
    let fresh = env.path("new-host/data/store.tresor");
    let r = env.run(
        &[
            "restore",
            out.to_str().unwrap(),
            "--to",
            fresh.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(on_file(&env, &fresh, &["get", "api-key"]).stdout == b"key-v1");

    // An existing store is kept unless --force; the daemon's store is never replaced under it.
    let r = env.run(
        &[
            "restore",
            out.to_str().unwrap(),
            "--to",
            restored.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    let r = env.run(&["restore", out.to_str().unwrap(), "--force"], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("open in another process"), "{}", r.stderr);
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

#[test]
fn only_owners_get_a_backup_and_denials_are_audited() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let d = start(&env, true);
    let r = via(
        &env,
        &d,
        &["principal", "add", "bot", "--role", "agent", "--token"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = r.out().trim().to_owned();
    let out = env.path("agent.tresor");
    let mut c = env.cmd();
    c.env("TRESOR_SOCKET", &d.socket)
        .env("TRESOR_TOKEN", &token)
        .args(["--store", env.store.to_str().unwrap()])
        .args(["backup", out.to_str().unwrap()]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(!out.exists(), "a refused backup left a file");
    let r = via(
        &env,
        &d,
        &[
            "--json",
            "audit",
            "--action",
            "export",
            "--outcome",
            "denied",
        ],
        None,
    );
    assert!(r.out().contains("\"principal\":\"bot\""), "{}", r.out());
}

#[test]
fn restore_refuses_what_is_not_a_good_backup() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let junk = env.path("junk.tresor");
    std::fs::write(&junk, b"not a store at all, just some bytes").unwrap();
    let target = env.path("new.tresor");
    let r = env.run(
        &[
            "restore",
            junk.to_str().unwrap(),
            "--to",
            target.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(!target.exists());

    // A backup under another passphrase: wrong passphrase, nothing restored.
    let out = env.path("b.tresor");
    assert_eq!(env.run(&["backup", out.to_str().unwrap()], None).code, 0);
    let other = env.path("other-pass");
    cli_support::write_private(&other, "something else entirely\n");
    let mut c = env.cmd();
    c.args(["--passphrase-file", other.to_str().unwrap()])
        .args([
            "restore",
            out.to_str().unwrap(),
            "--to",
            target.to_str().unwrap(),
        ]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(!target.exists());
}

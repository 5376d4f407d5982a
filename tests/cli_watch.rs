//! `run --watch` (issue 11): a running workload kept its old value until someone restarted it.
//! Now `tresor run --watch` restarts the command with the new values when a new version of an
//! injected secret appears: through the daemon it long-polls `GET /v1/watch`, on the file it
//! looks every `--poll`. The child gets SIGTERM, then SIGKILL after `--grace`; a burst of
//! changes restarts it once; when it exits by itself, so do we, with its code.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use cli_support::{Env, start, via};

/// A child that prints its value once, then waits (30 s at most, so that nothing outlives the
/// test); `trap` is prepended to its script.
fn script(trap: &str) -> String {
    format!("{trap} echo \"got $API_TOKEN\"; for i in $(seq 1 300); do sleep 0.1; done")
}

/// Spawns `tresor [pre...] run --watch ARGS -- sh -c SCRIPT`; its stdout comes line by line.
fn spawn_watch(
    env: &Env,
    socket: Option<&std::path::Path>,
    args: &[&str],
    script: &str,
) -> (Child, Receiver<String>, Receiver<String>) {
    let mut c = env.cmd();
    if let Some(s) = socket {
        c.env("TRESOR_SOCKET", s);
    }
    c.arg("--store").arg(&env.store);
    if socket.is_none() {
        c.arg("--passphrase-file").arg(&env.pass);
    }
    c.args(["run", "--watch", "--no-mask", "--secret", "api-token"])
        .args(args)
        .args(["--", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so that `stop` ends the children it started too.
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c.spawn().unwrap();
    let lines = |r: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(r).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let out = lines(Box::new(child.stdout.take().unwrap()));
    let err = lines(Box::new(child.stderr.take().unwrap()));
    (child, out, err)
}

/// The next line within `secs`, else a failure naming what was awaited.
fn next(rx: &Receiver<String>, secs: u64, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("no {what} within {secs} s"))
}

/// Lines that arrive within `wait`.
fn drain(rx: &Receiver<String>, wait: Duration) -> Vec<String> {
    let end = Instant::now() + wait;
    let mut v = Vec::new();
    while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        v.push(l);
    }
    v
}

/// Kills `run --watch` and everything it started.
fn stop(mut child: Child) {
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::KILL,
    );
    let _ = child.wait();
}

#[test]
fn a_rotation_restarts_the_child_with_the_new_value_and_bursts_restart_it_once() {
    let env = Env::new();
    env.set("api-token", b"v1", &[]);
    let d = start(&env, true);
    let (child, out, err) =
        spawn_watch(&env, Some(&d.socket), &["--debounce", "700ms"], &script(""));
    assert_eq!(next(&out, 20, "first start"), "got v1");

    // Unrelated writes and reads do not restart it.
    assert_eq!(via(&env, &d, &["set", "other"], Some(b"x")).code, 0);
    assert_eq!(via(&env, &d, &["get", "api-token"], None).code, 0);
    assert!(drain(&out, Duration::from_millis(1500)).is_empty());

    let r = via(&env, &d, &["set", "api-token"], Some(b"v2"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(next(&out, 20, "restart after the rotation"), "got v2");
    assert!(next(&err, 5, "the restart notice").contains("restarting"));

    // A burst of three rotations: one restart, with the last value.
    for v in ["v3", "v4", "v5"] {
        assert_eq!(
            via(&env, &d, &["set", "api-token"], Some(v.as_bytes())).code,
            0
        );
    }
    let after = drain(&out, Duration::from_secs(4));
    assert_eq!(
        after,
        vec!["got v5".to_owned()],
        "one restart for the burst"
    );

    // A rollback is a new version too.
    let r = via(&env, &d, &["rollback", "api-token", "--to", "1"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(next(&out, 20, "restart after the rollback"), "got v1");
    stop(child);
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let env = Env::new();
    env.set("api-token", b"v1", &[]);
    let d = start(&env, true);
    let (child, out, err) = spawn_watch(
        &env,
        Some(&d.socket),
        &["--grace", "500ms", "--debounce", "100ms"],
        &script("trap '' TERM;"),
    );
    assert_eq!(next(&out, 20, "first start"), "got v1");
    let t = Instant::now();
    assert_eq!(via(&env, &d, &["set", "api-token"], Some(b"v2")).code, 0);
    assert_eq!(next(&out, 20, "restart after the kill"), "got v2");
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "killed before the grace period"
    );
    let notes = drain(&err, Duration::from_millis(500)).join("\n");
    assert!(notes.contains("did not exit within"), "{notes}");
    stop(child);
}

#[test]
fn the_exit_code_is_the_childs_when_it_exits_by_itself() {
    let env = Env::new();
    env.set("api-token", b"v1", &[]);
    let d = start(&env, true);
    let (mut child, out, _err) = spawn_watch(
        &env,
        Some(&d.socket),
        &[],
        "echo \"got $API_TOKEN\"; exit 3",
    );
    assert_eq!(next(&out, 20, "the child's line"), "got v1");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "run --watch did not exit with its child"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));

    // Nothing to watch is a usage error, said before anything runs.
    let r = via(&env, &d, &["run", "--watch", "--", "true"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nothing to watch"), "{}", r.stderr);
}

#[test]
fn on_the_file_it_polls_and_restarts() {
    let env = Env::new();
    env.set("api-token", b"v1", &[]);
    let (child, out, _err) = spawn_watch(
        &env,
        None,
        &["--poll", "200ms", "--debounce", "100ms"],
        &script(""),
    );
    assert_eq!(next(&out, 20, "first start"), "got v1");
    // The watcher opens the file now and then: a write may find it busy for a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = env.run(&["set", "api-token"], Some(b"v2"));
        if r.code == 0 {
            break;
        }
        assert_eq!(r.code, 7, "{}", r.stderr);
        assert!(Instant::now() < deadline, "the file stayed busy");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(next(&out, 20, "restart after the rotation"), "got v2");
    stop(child);
}

#[test]
fn sigterm_reaches_the_child_and_its_exit_code_is_ours() {
    let env = Env::new();
    env.set("api-token", b"v1", &[]);
    let d = start(&env, true);
    let (mut child, out, _err) =
        spawn_watch(&env, Some(&d.socket), &[], &script("trap 'exit 5' TERM;"));
    assert_eq!(next(&out, 20, "first start"), "got v1");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "run --watch did not end after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(5));
    stop(child);
}

//! The CLI as a client of the daemon: `tresor daemon` runs in a child process on a temp
//! socket, and commands reach it without asking for a passphrase.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::time::Duration;

use cli_support::{Env, spawn_lines, start, via};

#[test]
fn commands_go_through_the_daemon_without_a_passphrase() {
    let env = Env::new();
    env.set("github-pat", b"ghp_example", &["--type", "token"]);
    let d = start(&env, true);

    let r = via(&env, &d, &["get", "github-pat"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == b"ghp_example");
    let r = via(&env, &d, &["set", "blob", "--base64"], Some(b"AAEC/w=="));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(via(&env, &d, &["get", "blob"], None).stdout == [0, 1, 2, 255]);
    let r = via(&env, &d, &["--json", "ls"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(
        via(&env, &d, &["rollback", "blob", "--to", "1"], None).code,
        0
    );
    assert_eq!(via(&env, &d, &["get", "nope"], None).code, 3);

    let r = via(
        &env,
        &d,
        &["--json", "audit", "--action", "read", "--limit", "1"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(r.out().trim()).unwrap();
    assert_eq!(v["channel"], "socket");
    assert_eq!(via(&env, &d, &["audit", "verify"], None).code, 0);

    // The file is the daemon's while it runs.
    let r = env.run(&["--direct", "ls"], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("open in another process"));
}

#[test]
fn principals_and_teams_through_the_daemon() {
    let env = Env::new();
    env.set("deploy-key", b"v", &[]);
    let d = start(&env, true);
    let r = via(
        &env,
        &d,
        &["principal", "add", "bot", "--role", "agent", "--token"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.out().trim().is_empty(), "no token printed");
    let r = via(&env, &d, &["principal", "grant", "bot", "deploy-key"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(via(&env, &d, &["rm", "deploy-key"], None).code, 7);
    for args in [
        &["team", "add", "infra"][..],
        &["team", "join", "infra", "bot"],
        &["team", "leave", "infra", "bot"],
        &["team", "rm", "infra"],
        &["principal", "revoke", "bot", "deploy-key"],
        &["principal", "rm", "bot"],
        &["rm", "deploy-key"],
    ] {
        let r = via(&env, &d, args, None);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
}

#[test]
fn status_lock_and_unlock() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let d = start(&env, false);
    let r = via(&env, &d, &["--json", "status"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["locked"], true);

    let r = via(&env, &d, &["get", "k"], None);
    assert_eq!(r.code, 5, "{}", r.stderr);

    let wrong = env.path("wrong");
    cli_support::write_private(&wrong, "nope\n");
    let r = via(
        &env,
        &d,
        &["--passphrase-file", wrong.to_str().unwrap(), "unlock"],
        None,
    );
    assert_eq!(r.code, 5, "{}", r.stderr);
    let r = via(
        &env,
        &d,
        &["--passphrase-file", env.pass.to_str().unwrap(), "unlock"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(via(&env, &d, &["get", "k"], None).stdout == b"v");

    assert_eq!(via(&env, &d, &["lock"], None).code, 0);
    assert_eq!(via(&env, &d, &["get", "k"], None).code, 5);
}

#[test]
fn audit_follow_prints_new_records_as_they_arrive() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let d = start(&env, true);
    let (mut follower, rx) =
        spawn_lines(&env, &d, &["--json", "audit", "--follow", "--limit", "1"]);
    // The newest record first, then the read made after the follower started.
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(first.contains("\"seq\""));
    assert_eq!(via(&env, &d, &["get", "k"], None).code, 0);
    let next = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(v["action"], "read");
    assert_eq!(v["name"], "k");
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn an_agent_token_from_the_environment_limits_reads_to_its_grants() {
    let env = Env::new();
    env.set("deploy-key", b"granted", &[]);
    env.set("other", b"not granted", &[]);
    let d = start(&env, true);
    let r = via(
        &env,
        &d,
        &["principal", "add", "bot", "--role", "agent", "--token"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = r.out().trim().to_owned();
    assert_eq!(
        via(&env, &d, &["principal", "grant", "bot", "deploy-*"], None).code,
        0
    );
    let as_bot = |args: &[&str]| {
        let mut c = env.cmd();
        c.env("TRESOR_SOCKET", &d.socket)
            .env("TRESOR_TOKEN", &token)
            .args(args);
        env.finish(c, None)
    };
    let r = as_bot(&["get", "deploy-key"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == b"granted");
    let r = as_bot(&["get", "other"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let r = as_bot(&["--json", "ls"]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

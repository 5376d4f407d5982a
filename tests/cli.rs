//! The `tresor` binary end to end in direct mode, on real files made with
//! `init --insecure-kdf`. Values are asserted on, never printed.
#![allow(clippy::unwrap_used)]

mod cli_support;

use base64::Engine;
use cli_support::{Env, PASS};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn set_then_get_returns_the_exact_bytes_without_a_newline() {
    let env = Env::new();
    env.set("github-pat", b"ghp_example", &["--type", "token"]);
    let r = env.run(&["get", "github-pat"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout == b"ghp_example",
        "get did not return the exact bytes"
    );
    // A trailing newline in the input is part of the value.
    env.set("with-newline", b"v\n", &[]);
    let r = env.run(&["get", "with-newline"], None);
    assert!(r.stdout == b"v\n");
}

#[test]
fn binary_values_round_trip_through_base64() {
    let env = Env::new();
    let raw: Vec<u8> = (0..=255u8).rev().chain([0, b'\n', 0xff]).collect();
    env.set("blob", b64(&raw).as_bytes(), &["--base64"]);
    let r = env.run(&["get", "blob"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == raw, "raw get differs from what was set");
    let r = env.run(&["get", "blob", "--base64"], None);
    assert!(r.stdout == b64(&raw).as_bytes(), "base64 get differs");
    let r = env.run(&["--json", "get", "blob"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v["value_base64"] == b64(&raw).as_str());
    assert!(v.get("value").is_none());
}

#[test]
fn values_come_from_files_env_and_fields() {
    let env = Env::new();
    let f = env.path("value.bin");
    std::fs::write(&f, b"from-a-file").unwrap();
    env.set("a", b"", &["--from-file", f.to_str().unwrap()]);
    assert!(env.run(&["get", "a"], None).stdout == b"from-a-file");

    let mut c = env.cmd();
    c.env("MY_SECRET_VAR", "from-env").args([
        "--store",
        env.store.to_str().unwrap(),
        "--passphrase-file",
        env.pass.to_str().unwrap(),
        "set",
        "b",
        "--from-env",
        "MY_SECRET_VAR",
    ]);
    assert_eq!(env.finish(c, None).code, 0);
    assert!(env.run(&["get", "b"], None).stdout == b"from-env");

    let fields = br#"{"username": "alice", "password": "hunter2"}"#;
    let r = env.run(
        &["set", "db", "--type", "credentials", "--fields-from", "-"],
        Some(fields),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.run(&["get", "db#password"], None).stdout == b"hunter2");
    assert!(env.run(&["get", "db#username"], None).stdout == b"alice");
    let r = env.run(&["get", "db#nope"], None);
    assert_eq!(r.code, 3);
    let r = env.run(&["--json", "show", "db"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["fields"], serde_json::json!(["password", "username"]));
}

#[test]
fn every_open_of_an_insecure_store_warns() {
    let env = Env::empty();
    let r = env.run(&["init", "--insecure-kdf"], None);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("insecure"), "init: {}", r.stderr);
    env.set("x", b"1", &[]);
    for args in [
        &["ls"][..],
        &["get", "x"],
        &["show", "x"],
        &["history", "x"],
        &["audit"],
        &["keyslot", "ls"],
        &["status"],
    ] {
        let r = env.run(args, None);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("insecure"), "{args:?} did not warn");
    }
}

#[test]
fn listings_and_show_never_print_values() {
    let env = Env::new();
    env.set(
        "github-pat",
        b"SEKRIT-VALUE-1",
        &[
            "--type",
            "token",
            "--integration",
            "github",
            "--meta",
            "team=infra",
        ],
    );
    env.set("aws-key", b"SEKRIT-VALUE-2", &["--description", "prod"]);
    for args in [
        &["ls"][..],
        &["show", "github-pat"],
        &["history", "github-pat"],
        &["audit"],
        &["--json", "ls"],
        &["--json", "show", "github-pat"],
        &["--json", "audit"],
    ] {
        let r = env.run(args, None);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        let all = format!("{}{}", r.out(), r.stderr);
        assert!(!all.contains("SEKRIT"), "{args:?} printed a value");
    }
    let r = env.run(&["ls", "--integration", "github"], None);
    assert!(r.out().contains("github-pat") && !r.out().contains("aws-key"));
    let r = env.run(&["--json", "ls", "--query", "aws"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "aws-key");
    assert_eq!(v[0]["description"], "prod");
}

#[test]
fn history_and_rollback_publish_an_old_version() {
    let env = Env::new();
    env.set("k", b"one", &[]);
    env.set("k", b"two", &[]);
    let r = env.run(&["history", "k"], None);
    assert!(r.out().contains("VERSION"));
    let r = env.run(&["rollback", "k", "--to", "1"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.run(&["get", "k"], None).stdout == b"one");
    assert!(env.run(&["get", "k", "--version", "2"], None).stdout == b"two");
    // One order, newest first, in the table and in --json (issue 11: the JSON was oldest
    // first).
    let r = env.run(&["--json", "history", "k"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let versions: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(v[0]["rolled_back_from"], 1);
    let table = env.run(&["history", "k"], None).out();
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(rows, ["3", "2", "1"], "{table}");
    let r = env.run(&["rollback", "k", "--to", "9"], None);
    assert_eq!(r.code, 3);
}

#[test]
fn metadata_only_update_keeps_the_value() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let r = env.run(&["set", "k", "--keep-value", "--description", "new"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = env.run(&["--json", "show", "k"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["description"], "new");
    assert_eq!(v["version"], 1);
}

#[test]
fn audit_json_is_one_object_per_line_with_the_spec_fields() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    env.run(&["get", "k"], None);
    let r = env.run(&["--json", "audit", "--action", "read"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let mut expected = [
        "seq",
        "time",
        "principal",
        "uid",
        "gid",
        "pid",
        "exe",
        "action",
        "scope",
        "name",
        "version",
        "outcome",
        "channel",
    ];
    expected.sort_unstable();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(v["action"], "read");
    assert_eq!(v["name"], "k");
    assert_eq!(v["channel"], "direct");

    let r = env.run(&["--json", "audit", "--limit", "2"], None);
    assert_eq!(r.out().lines().count(), 2);
    let r = env.run(
        &["--json", "audit", "--since", "1h", "--outcome", "ok"],
        None,
    );
    assert!(r.out().lines().count() >= 3);
    let r = env.run(&["audit", "--since", "2999-01-01T00:00:00Z"], None);
    assert_eq!(r.code, 0);
    assert!(r.out().is_empty());

    let r = env.run(&["audit", "verify"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("audit chain ok"));
}

#[test]
fn keyfile_slots_are_created_0600_and_unlock() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.set("k", b"v", &[]);
    let kf = env.path("key");
    let r = env.run(&["keyslot", "add", "--keyfile", kf.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let meta = std::fs::metadata(&kf).unwrap();
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let mut c = env.cmd();
    c.args([
        "--store",
        env.store.to_str().unwrap(),
        "--keyfile",
        kf.to_str().unwrap(),
        "get",
        "k",
    ]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == b"v");

    let r = env.run(&["--json", "keyslot", "ls"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v[1]["kind"], "keyfile");

    let r = env.run(&["keyslot", "rm", "1"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut c = env.cmd();
    c.args([
        "--store",
        env.store.to_str().unwrap(),
        "--keyfile",
        kf.to_str().unwrap(),
        "ls",
    ]);
    assert_eq!(env.finish(c, None).code, 5);
}

#[test]
fn recovery_key_is_printed_once_and_unlocks_where_a_passphrase_is_asked() {
    let env = Env::new();
    let r = env.run(&["keyslot", "add", "--recovery"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let key = r.out();
    assert!(key.trim().len() >= 52, "recovery key too short");
    assert!(r.stderr.contains("shown once"));
    let r = env.run(&["keyslot", "ls"], None);
    assert!(r.out().contains("recovery"));
    assert!(!r.out().contains(key.trim()));

    env.set("k", b"v", &[]);
    std::fs::write(&env.pass, key.to_lowercase()).unwrap();
    let r = env.run(&["get", "k"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == b"v");
}

#[test]
fn passwd_changes_the_passphrase() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let newp = env.path("newpass");
    cli_support::write_private(&newp, "another passphrase\n");
    let r = env.run(
        &["passwd", "--new-passphrase-file", newp.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.run(&["ls"], None).code, 5);
    let mut c = env.cmd();
    c.args([
        "--store",
        env.store.to_str().unwrap(),
        "--passphrase-file",
        newp.to_str().unwrap(),
        "get",
        "k",
    ]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == b"v");
}

#[test]
fn rekey_says_which_slots_were_removed() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let kf = env.path("key");
    assert_eq!(
        env.run(&["keyslot", "add", "--keyfile", kf.to_str().unwrap()], None)
            .code,
        0
    );
    let r = env.run(&["rekey"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("removed keyslots 1"), "{}", r.stderr);
    assert!(env.run(&["get", "k"], None).stdout == b"v");
    assert_eq!(env.run(&["audit", "verify"], None).code, 0);
}

#[test]
fn backup_opens_with_the_same_passphrase() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let out = env.path("copy.tresor");
    let r = env.run(&["backup", out.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut c = env.cmd();
    c.args([
        "--store",
        out.to_str().unwrap(),
        "--passphrase-file",
        env.pass.to_str().unwrap(),
        "get",
        "k",
    ]);
    assert!(env.finish(c, None).stdout == b"v");
    // Never overwrites.
    assert_eq!(env.run(&["backup", out.to_str().unwrap()], None).code, 7);
}

#[test]
fn principals_grants_and_teams_in_direct_mode() {
    let env = Env::new();
    env.set("deploy-key", b"v", &[]);
    let r = env.run(
        &[
            "principal",
            "add",
            "deploy-bot",
            "--role",
            "agent",
            "--uid",
            "4242",
            "--token",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.out().trim().len() >= 32, "no token printed");
    assert!(r.stderr.contains("shown once"));
    let r = env.run(
        &[
            "principal",
            "grant",
            "deploy-bot",
            "deploy-key",
            "--expires",
            "30d",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = env.run(&["principal", "ls"], None);
    assert!(r.out().contains("deploy-bot") && r.out().contains("deploy-key until"));

    // A granted secret is a reference: rm refuses it (conflict), --force deletes it.
    let r = env.run(&["rm", "deploy-key"], None);
    assert_eq!(r.code, 7);
    assert!(
        r.stderr.contains("grant  deploy-bot deploy-key"),
        "{}",
        r.stderr
    );
    let r = env.run(&["principal", "revoke", "deploy-bot", "deploy-key"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.run(&["rm", "deploy-key"], None).code, 0);
    assert_eq!(env.run(&["get", "deploy-key"], None).code, 3);

    for args in [
        &["team", "add", "infra"][..],
        &["team", "join", "infra", "deploy-bot"],
    ] {
        let r = env.run(args, None);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    let r = env.run(&["--json", "team", "ls"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v[0]["members"], serde_json::json!(["deploy-bot"]));
    assert_eq!(
        env.run(&["team", "leave", "infra", "deploy-bot"], None)
            .code,
        0
    );
    assert_eq!(env.run(&["team", "rm", "deploy-bot"], None).code, 3);
    assert_eq!(env.run(&["team", "rm", "infra"], None).code, 0);
    assert_eq!(env.run(&["principal", "rm", "deploy-bot"], None).code, 0);
    let r = env.run(&["--json", "principal", "ls"], None);
    assert!(!r.out().contains("deploy-bot"));
}

#[test]
fn rm_deletes_every_version() {
    let env = Env::new();
    env.set("k", b"one", &[]);
    env.set("k", b"two", &[]);
    assert_eq!(env.run(&["rm", "k"], None).code, 0);
    assert_eq!(env.run(&["get", "k", "--version", "1"], None).code, 3);
    env.set("k", b"three", &[]);
    let r = env.run(&["--json", "show", "k"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["version"], 1);
}

#[test]
fn passphrase_from_fd_and_from_the_environment() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let mut c = env.cmd();
    c.args([
        "--store",
        env.store.to_str().unwrap(),
        "--passphrase-fd",
        "0",
        "get",
        "k",
    ]);
    let r = env.finish(c, Some(PASS.as_bytes()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == b"v");

    let mut c = env.cmd();
    c.env("TRESOR_PASSPHRASE", PASS)
        .args(["--store", env.store.to_str().unwrap(), "get", "k"]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("TRESOR_PASSPHRASE") && r.stderr.contains("CI"));
}

#[test]
fn store_location_follows_tresor_store_and_xdg_data_home() {
    let env = Env::empty();
    let mut c = env.cmd();
    c.args([
        "--passphrase-file",
        env.pass.to_str().unwrap(),
        "init",
        "--insecure-kdf",
    ]);
    assert_eq!(env.finish(c, None).code, 0);
    assert!(env.path("xdg/tresor/store.tresor").exists());

    let mut c = env.cmd();
    c.env("TRESOR_STORE", &env.store).args([
        "--passphrase-file",
        env.pass.to_str().unwrap(),
        "init",
        "--insecure-kdf",
    ]);
    assert_eq!(env.finish(c, None).code, 0);
    assert!(env.store.exists());
}

#[test]
fn status_without_a_daemon_describes_the_file() {
    let env = Env::new();
    let r = env.run(&["--json", "status"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["daemon"], false);
    assert_eq!(v["insecure_kdf"], true);
    assert_eq!(v["keyslots"], 1);
}

#[test]
fn completions_are_generated() {
    let env = Env::empty();
    let mut c = env.cmd();
    c.args(["completions", "bash"]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 0);
    assert!(r.out().contains("tresor"));
}

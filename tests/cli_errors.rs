//! Exit codes and the exact wording of CLI errors and help (insta snapshots under
//! tests/snapshots/). One test per error class of SPEC §7.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Env, chmod, has_tty};
use redb::{ReadableTable, TableDefinition};

const SECRETS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("secrets");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

fn help(args: &[&str]) -> String {
    let env = Env::empty();
    let mut c = env.cmd();
    c.args(args).arg("--help");
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.out()
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("help_top", help(&[]));
    insta::assert_snapshot!("help_set", help(&["set"]));
    insta::assert_snapshot!("help_get", help(&["get"]));
    insta::assert_snapshot!("help_keyslot_add", help(&["keyslot", "add"]));
    insta::assert_snapshot!("help_audit", help(&["audit"]));
    insta::assert_snapshot!("help_principal_add", help(&["principal", "add"]));
    insta::assert_snapshot!("help_run", help(&["run"]));
    insta::assert_snapshot!("help_inject", help(&["inject"]));
    insta::assert_snapshot!("help_check", help(&["check"]));
    insta::assert_snapshot!("help_import", help(&["import"]));
    insta::assert_snapshot!("help_export", help(&["export"]));
    insta::assert_snapshot!("help_report", help(&["report"]));
    insta::assert_snapshot!("help_apply", help(&["apply"]));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    // There is no way to give a value on the command line.
    let r = env.run(&["set", "k", "the-value"], None);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("usage_set_value_on_argv", r.err_only());
    let r = env.run(&["set", "k", "--value", "the-value"], None);
    assert_eq!(r.code, 2);
    let r = env.run(&["frobnicate"], None);
    assert_eq!(r.code, 2);
    let r = env.run(&["rollback", "k"], None);
    assert_eq!(r.code, 2);
    // Input the core rejects is a usage error too.
    let r = env.run(&["set", "../etc"], Some(b"v"));
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("usage_bad_name", r.err_only());
    let r = env.run(&["set", "k"], Some(b""));
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("usage_empty_value", r.err_only());
    let r = env.run(&["set", "k", "--fields-from", "-"], Some(b"[1, 2]"));
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("usage_bad_fields", r.err_only());
    let r = env.run(&["audit", "--since", "yesterday"], None);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("usage_bad_time", r.err_only());
    let r = env.run(&["audit", "--follow"], None);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("usage_follow_direct", r.err_only());
}

#[test]
fn wrong_passphrase_exits_5() {
    let env = Env::new();
    std::fs::write(&env.pass, "not the passphrase\n").unwrap();
    let r = env.run(&["ls"], None);
    assert_eq!(r.code, 5);
    insta::assert_snapshot!("wrong_passphrase", r.err_only());
    // The failed attempt is sealed into the audit chain at the next unlock.
    std::fs::write(&env.pass, format!("{}\n", cli_support::PASS)).unwrap();
    let r = env.run(
        &[
            "--json",
            "audit",
            "--action",
            "unlock",
            "--outcome",
            "denied",
        ],
        None,
    );
    assert_eq!(r.out().lines().count(), 1, "{}", r.stderr);
}

#[test]
fn lock_and_unlock_need_a_daemon() {
    let env = Env::new();
    let r = env.run(&["lock"], None);
    assert_eq!(r.code, 3);
    insta::assert_snapshot!("no_daemon", r.err_only());
}

#[test]
fn not_found_exits_3() {
    let env = Env::new();
    let r = env.run(&["get", "nope"], None);
    assert_eq!(r.code, 3);
    insta::assert_snapshot!("not_found_secret", r.err_only());
    let r = env.run(&["get", "nope", "--scope", "team:infra"], None);
    assert_eq!(r.code, 3);
    let r = env.run(&["principal", "rm", "ghost"], None);
    assert_eq!(r.code, 3);

    let missing = Env::empty();
    let r = missing.run(&["ls"], None);
    assert_eq!(r.code, 3);
    insta::assert_snapshot!("not_found_store", r.err_only());
}

#[test]
fn conflicts_exit_7() {
    let env = Env::new();
    let r = env.run(&["init", "--insecure-kdf"], None);
    assert_eq!(r.code, 7);
    insta::assert_snapshot!("conflict_init_exists", r.err_only());

    env.set("deploy-key", b"v", &[]);
    let r = env.run(
        &[
            "principal",
            "add",
            "bot",
            "--role",
            "agent",
            "--uid",
            "4242",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        env.run(&["principal", "grant", "bot", "deploy-key"], None)
            .code,
        0
    );
    let r = env.run(&["rm", "deploy-key"], None);
    assert_eq!(r.code, 7);
    insta::assert_snapshot!("conflict_rm_referenced", r.err_only());
    assert_eq!(env.run(&["rm", "deploy-key", "--force"], None).code, 0);

    let r = env.run(&["keyslot", "rm", "0"], None);
    assert_eq!(r.code, 7);
}

#[test]
fn a_store_others_may_write_is_refused_with_exit_4() {
    let env = Env::new();
    chmod(&env.store, 0o666);
    let r = env.run(&["ls"], None);
    assert_eq!(r.code, 4);
    insta::assert_snapshot!("world_writable", r.err_only());
    chmod(&env.store, 0o620);
    assert_eq!(env.run(&["ls"], None).code, 4);
    chmod(&env.store, 0o600);
    assert_eq!(env.run(&["ls"], None).code, 0);
}

#[test]
fn a_tampered_record_exits_6_and_prints_no_plaintext() {
    let env = Env::new();
    env.set("k", b"SEKRIT-VALUE", &["--description", "SEKRIT-DESC"]);
    {
        let db = redb::Database::open(&env.store).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(SECRETS).unwrap();
            let (k, mut v) = {
                let (k, v) = t.first().unwrap().unwrap();
                (*k.value(), v.value().to_vec())
            };
            let mid = v.len() / 2;
            v[mid] ^= 0x01;
            t.insert(&k, v.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    for args in [&["get", "k"][..], &["ls"], &["show", "k"]] {
        let r = env.run(args, None);
        assert_eq!(r.code, 6, "{args:?}: {}", r.stderr);
        assert!(!r.out().contains("SEKRIT") && !r.stderr.contains("SEKRIT"));
    }
    let r = env.run(&["get", "k"], None);
    // The record is named by a keyed hash of its name, different in every store.
    let shown = r.err_only();
    let at = shown.find("secrets record ").unwrap() + "secrets record ".len();
    let hash: String = shown[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert!(hash.len() >= 8, "{shown}");
    insta::assert_snapshot!("integrity_record", shown.replace(&hash, "[HASH]"));
}

#[test]
fn flipped_bytes_in_the_file_exit_6_or_go_unnoticed_never_crash() {
    let env = Env::new();
    env.set("k", b"SEKRIT-VALUE", &[]);
    let clean = std::fs::read(&env.store).unwrap();
    let bad = env.path("flipped.tresor");
    let mut integrity = 0;
    for page in (0..clean.len()).step_by(4096) {
        let mut bytes = clean.clone();
        let at = (page + 100).min(bytes.len() - 1);
        bytes[at] ^= 0xff;
        std::fs::write(&bad, &bytes).unwrap();
        chmod(&bad, 0o600);
        let mut c = env.cmd();
        c.arg("--store")
            .arg(&bad)
            .arg("--passphrase-file")
            .arg(&env.pass)
            .arg("ls");
        let r = env.finish(c, None);
        // Unused (free) pages may change unnoticed; anything else is an integrity error.
        assert!(
            r.code == 0 || r.code == 6,
            "flip at {at}: exit {} {}",
            r.code,
            r.stderr
        );
        assert!(!r.out().contains("SEKRIT") && !r.stderr.contains("SEKRIT"));
        integrity += usize::from(r.code == 6);
    }
    assert!(integrity > 0, "no flip was detected");
}

#[test]
fn a_broken_audit_chain_exits_6_naming_the_first_broken_seq() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    {
        let db = redb::Database::open(&env.store).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(AUDIT).unwrap();
            let mut v = t.get(3).unwrap().unwrap().value().to_vec();
            let last = v.len() - 1;
            v[last] ^= 0x01;
            t.insert(3, v.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let r = env.run(&["audit", "verify"], None);
    assert_eq!(r.code, 6, "{}", r.stderr);
    insta::assert_snapshot!("audit_verify_broken", r.err_only());
    let r = env.run(&["--json", "audit", "verify"], None);
    assert_eq!(r.code, 6);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken_seq"], 3);
}

#[test]
fn no_unlock_source_and_no_terminal_is_a_usage_error() {
    let env = Env::new();
    let mut c = env.cmd();
    c.arg("--store").arg(&env.store).arg("ls");
    if has_tty() {
        // Leave the controlling terminal, or the prompt would wait on it.
        if std::process::Command::new("setsid")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipped: a terminal is attached and setsid is missing");
            return;
        }
        let mut s = std::process::Command::new("setsid");
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => s.env(k, v),
                None => s.env_remove(k),
            };
        }
        s.arg("-w").arg(c.get_program()).args(c.get_args());
        c = s;
    }
    let r = env.finish(c, None);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("no_unlock_source", r.err_only());
}

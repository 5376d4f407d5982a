//! Sealed bundles between two real stores (SPEC §7, issue 12): history and deletions travel,
//! a second bundle of the same state changes nothing, a replayed or older bundle is refused,
//! a bundle signed by another store is refused with `--from-key`, a tampered or truncated one
//! is `integrity` with nothing applied; through the daemon as well as on the file; and a store
//! made before identities existed (the v1 golden file) gets one on first use and keeps opening.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cli_support::{Env, Run, start, via};

fn ok(r: &Run, what: &str) -> String {
    assert_eq!(r.code, 0, "{what} failed: {}", r.stderr);
    r.out().trim().to_owned()
}

fn key(env: &Env, sign: bool) -> String {
    let mut args = vec!["inbox", "key"];
    if sign {
        args.push("--sign");
    }
    ok(&env.run(&args, None), "inbox key")
}

fn create(env: &Env, to: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["bundle", "create", "--to", to, "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    if !extra.contains(&"--secret") {
        args.push("--all");
    }
    ok(&env.run(&args, None), "bundle create");
}

/// `bundle apply --json`: (action, name, version) per item.
fn apply(env: &Env, file: &Path, extra: &[&str]) -> (Run, Vec<(String, String, Option<u64>)>) {
    let mut args = vec!["--json", "bundle", "apply", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let r = env.run(&args, None);
    let items = if r.code == 0 {
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["action"].as_str().unwrap().to_owned(),
                    i["name"].as_str().unwrap().to_owned(),
                    i["version"].as_u64(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    (r, items)
}

fn get(env: &Env, name: &str) -> Run {
    env.run(&["get", name], None)
}

fn history(env: &Env, name: &str) -> Vec<u64> {
    let r = env.run(&["--json", "history", name], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let mut out: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["version"].as_u64().unwrap())
        .collect();
    out.sort_unstable();
    out
}

fn item(action: &str, name: &str, v: Option<u64>) -> (String, String, Option<u64>) {
    (action.into(), name.into(), v)
}

#[test]
fn round_trip_with_history_and_deletions_replay_and_unknown_signer() {
    let a = Env::new();
    let b = Env::new();
    a.set("db-password", b"first-value", &[]);
    a.set("db-password", b"second-value", &[]);
    a.set("old-token", b"old-token-value", &[]);
    let rb = key(&b, false);
    assert!(rb.starts_with("age1"), "{rb}");
    let sa = key(&a, true);
    assert!(sa.starts_with("tresor-ed25519:"), "{sa}");

    // 1: everything, with history.
    let b1 = a.path("b1.age");
    create(&a, &rb, &b1, &["--with-history"]);
    let (dry, items) = apply(&b, &b1, &["--dry-run", "--from-key", &sa]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(
        items,
        vec![
            item("create", "db-password", Some(2)),
            item("create", "old-token", Some(1))
        ]
    );
    assert_eq!(get(&b, "db-password").code, 3, "a dry run applies nothing");
    let (r, _) = apply(&b, &b1, &["--from-key", &sa]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for text in [&r.out(), &r.stderr] {
        assert!(!text.contains("second-value") && !text.contains("old-token-value"));
    }
    assert_eq!(get(&b, "db-password").stdout, b"second-value");
    assert_eq!(history(&b, "db-password"), vec![1, 2]);
    let v1 = b.run(&["get", "db-password", "--version", "1"], None);
    assert_eq!(v1.stdout, b"first-value");

    // 2: a deletion and a new version travel; the table plan never shows a value.
    assert_eq!(a.run(&["rm", "old-token"], None).code, 0);
    a.set("db-password", b"third-value", &[]);
    let b2 = a.path("b2.age");
    create(&a, &rb, &b2, &[]);
    let (r, items) = apply(&b, &b2, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        items,
        vec![
            item("update", "db-password", Some(3)),
            item("delete", "old-token", None)
        ]
    );
    assert_eq!(get(&b, "db-password").stdout, b"third-value");
    assert_eq!(get(&b, "old-token").code, 3);

    // 3: the same state again, in a new bundle: nothing new.
    let b3 = a.path("b3.age");
    create(&a, &rb, &b3, &[]);
    let (r, items) = apply(&b, &b3, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(items, vec![item("unchanged", "db-password", Some(3))]);
    assert_eq!(history(&b, "db-password"), vec![1, 2, 3]);

    // Replays: the same bundle twice, and an older one.
    for old in [&b3, &b1] {
        let (r, _) = apply(&b, old, &[]);
        assert_eq!(r.code, 7, "a replay is a conflict: {}", r.stderr);
        assert!(r.stderr.contains("replay"), "{}", r.stderr);
    }
    assert_eq!(get(&b, "db-password").stdout, b"third-value");

    // Signed by another store: refused with --from-key, nothing applied.
    let c = Env::new();
    c.set("intruder", b"intruder-value", &[]);
    let bc = c.path("c.age");
    create(&c, &rb, &bc, &[]);
    let (r, _) = apply(&b, &bc, &["--from-key", &sa]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("not by the key given with --from-key"),
        "{}",
        r.stderr
    );
    assert_eq!(get(&b, "intruder").code, 3);

    // Audited as `import`, with the source and sequence.
    let audit = b.run(&["audit", "--action", "import", "--json"], None);
    let text = audit.out();
    assert!(
        text.contains("seq 1:") && text.contains("seq 2:") && text.contains("seq 3:"),
        "{text}"
    );
    assert!(text.contains("\"name\":\"db-password\""), "{text}");
}

#[test]
fn a_local_change_newer_than_the_bundle_is_a_reported_conflict() {
    let a = Env::new();
    let b = Env::new();
    a.set("api-key", b"from-a", &[]);
    let rb = key(&b, false);
    let f = a.path("x.age");
    create(&a, &rb, &f, &[]);
    // b writes its own value after the bundle was made: b's is newer and is kept.
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.set("api-key", b"from-b", &[]);
    let (r, items) = apply(&b, &f, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(items, vec![item("conflict", "api-key", Some(1))]);
    assert_eq!(get(&b, "api-key").stdout, b"from-b");
}

#[test]
fn tampered_and_truncated_bundles_are_integrity_and_apply_nothing() {
    let a = Env::new();
    let b = Env::new();
    a.set("k", b"tamper-test-value", &[]);
    let rb = key(&b, false);
    let good = a.path("good.age");
    create(&a, &rb, &good, &[]);
    let bytes = std::fs::read(&good).unwrap();
    let mut flipped = bytes.clone();
    let at = bytes.len() - 20;
    flipped[at] ^= 1;
    let cases = [
        ("tampered", flipped),
        ("truncated", bytes[..bytes.len() - 30].to_vec()),
        ("header only", bytes[..200.min(bytes.len())].to_vec()),
        ("not age", b"hello".to_vec()),
    ];
    for (what, data) in cases {
        let f = a.path(what);
        std::fs::write(&f, data).unwrap();
        let (r, _) = apply(&b, &f, &[]);
        assert_eq!(r.code, 6, "{what}: {}", r.stderr);
        assert!(r.stderr.contains("integrity"), "{what}: {}", r.stderr);
        assert_eq!(get(&b, "k").code, 3, "{what}: nothing applied");
    }
    // The good one still applies: a refused bundle does not use up its sequence number.
    let (r, _) = apply(&b, &good, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(get(&b, "k").stdout, b"tamper-test-value");
}

#[test]
fn through_the_daemon_on_both_sides() {
    let a = Env::new();
    let b = Env::new();
    a.set("svc-token", b"daemon-bundle-value", &[]);
    a.set("other", b"other-value", &[]);
    let da = start(&a, true);
    let db = start(&b, true);
    let rb = ok(
        &via(&b, &db, &["inbox", "key"], None),
        "inbox key via daemon",
    );
    let sa = ok(
        &via(&a, &da, &["inbox", "key", "--sign"], None),
        "inbox key --sign",
    );
    let f = a.path("d.age");
    let r = via(
        &a,
        &da,
        &[
            "bundle",
            "create",
            "--to",
            &rb,
            "--secret",
            "svc-token",
            "-o",
            f.to_str().unwrap(),
        ],
        None,
    );
    ok(&r, "bundle create via daemon");
    let r = via(
        &b,
        &db,
        &["bundle", "apply", f.to_str().unwrap(), "--from-key", &sa],
        None,
    );
    let out = ok(&r, "bundle apply via daemon");
    assert!(out.contains("svc-token") && !out.contains("other"), "{out}");
    assert!(!out.contains("daemon-bundle-value"));
    let r = via(&b, &db, &["get", "svc-token"], None);
    assert_eq!(r.stdout, b"daemon-bundle-value");
}

#[test]
fn stock_age_decrypts_a_bundle_made_for_its_key() {
    if std::process::Command::new("age-keygen")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: the `age` package (age, age-keygen) is not installed");
        return;
    }
    let a = Env::new();
    a.set("k", b"v", &[]);
    let id = a.path("age-identity.txt");
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&id).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    let f = a.path("for-age.age");
    create(&a, &recipient, &f, &[]);
    let out = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&id)
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"TRESORBUNDLE"));
}

#[test]
fn the_v1_golden_store_gets_an_identity_on_first_use_and_keeps_opening() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.tresor");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v1.tresor");
    std::fs::copy(golden, &store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pass = dir.path().join("pass");
    cli_support::write_private(&pass, "tresor golden v1 passphrase\n");
    let run = |args: &[&str]| {
        let env = Env::empty();
        let mut c = env.cmd();
        c.arg("--store")
            .arg(&store)
            .arg("--passphrase-file")
            .arg(&pass)
            .args(args);
        env.finish(c, None)
    };
    let k1 = ok(&run(&["inbox", "key"]), "inbox key on the golden store");
    assert!(k1.starts_with("age1"));
    let k2 = ok(&run(&["inbox", "key"]), "again");
    assert_eq!(k1, k2, "the identity is made once");
    assert_eq!(run(&["get", "github-pat"]).stdout, b"ghp_golden_v1");
    let verify = run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
}

/// A bundle larger than the 1 MiB body cap of other requests applies through the daemon
/// (owners only, checked before the body is read).
#[test]
fn a_bundle_over_one_mib_applies_through_the_daemon() {
    use std::fmt::Write as _;
    let a = Env::new();
    let b = Env::new();
    let mut env_file = String::new();
    for i in 0..1200 {
        let _ = writeln!(env_file, "BIG_{i:05}={}", "x".repeat(1000));
    }
    let dotenv = a.path("big.env");
    std::fs::write(&dotenv, env_file).unwrap();
    ok(
        &a.run(
            &["import", "--format", "dotenv", dotenv.to_str().unwrap()],
            None,
        ),
        "import",
    );
    let rb = key(&b, false);
    let out = a.path("big.age");
    create(&a, &rb, &out, &[]);
    assert!(std::fs::metadata(&out).unwrap().len() > 1024 * 1024);
    let db = start(&b, true);
    let r = via(
        &b,
        &db,
        &["--json", "bundle", "apply", out.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1200);
    let got = via(&b, &db, &["get", "big-00007"], None);
    assert_eq!(got.code, 0, "{}", got.stderr);
}

/// The identity, the replay counters and the tombstones are re-sealed by `rekey` and copied by
/// `backup`: the keys stay the same, a deletion still travels, a replay is still refused.
#[test]
fn rekey_and_backup_keep_the_identity_and_the_air_gap_state() {
    let a = Env::new();
    let b = Env::new();
    a.set("keep", b"keep-value", &[]);
    a.set("drop", b"drop-value", &[]);
    let rb = key(&b, false);
    let sb = key(&b, true);
    let first = a.path("1.age");
    create(&a, &rb, &first, &[]);
    assert_eq!(apply(&b, &first, &[]).0.code, 0);
    assert_eq!(a.run(&["rm", "drop"], None).code, 0);
    ok(&a.run(&["rekey"], None), "rekey a");
    ok(&b.run(&["rekey"], None), "rekey b");
    assert_eq!(key(&b, false), rb);
    assert_eq!(key(&b, true), sb);
    let second = a.path("2.age");
    create(&a, &rb, &second, &[]);
    let (r, items) = apply(&b, &second, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(items.contains(&item("delete", "drop", None)), "{items:?}");
    assert_eq!(
        apply(&b, &first, &[]).0.code,
        7,
        "still a replay after rekey"
    );
    // A backup of b is the same store: same keys, same replay state.
    let copy = b.path("copy.tresor");
    ok(&b.run(&["backup", copy.to_str().unwrap()], None), "backup");
    let run = |args: &[&str]| {
        let mut c = b.cmd();
        c.arg("--store")
            .arg(&copy)
            .arg("--passphrase-file")
            .arg(&b.pass)
            .args(args);
        b.finish(c, None)
    };
    assert_eq!(ok(&run(&["inbox", "key"]), "key of the copy"), rb);
    let r = run(&["bundle", "apply", second.to_str().unwrap()]);
    assert_eq!(r.code, 7, "{}", r.stderr);
}

/// `--since` carries only what changed (and was deleted) since then; `--secret` only the names.
#[test]
fn since_and_secret_select_what_travels() {
    let a = Env::new();
    let b = Env::new();
    a.set("old", b"old-value", &[]);
    a.set("gone", b"gone-value", &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cut = jiff_now();
    a.set("new", b"new-value", &[]);
    assert_eq!(a.run(&["rm", "gone"], None).code, 0);
    let rb = key(&b, false);
    let since = a.path("since.age");
    create(&a, &rb, &since, &["--since", &cut]);
    let (run, items) = apply(&b, &since, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // `gone` does not exist on b: its deletion has nothing to do there.
    assert_eq!(items, vec![item("create", "new", Some(1))]);
    let one = a.path("one.age");
    create(&a, &rb, &one, &["--secret", "old"]);
    let (_, items) = apply(&b, &one, &["--dry-run"]);
    assert_eq!(items, vec![item("create", "old", Some(1))]);
    let r = a.run(
        &[
            "bundle",
            "create",
            "--to",
            &rb,
            "--secret",
            "nope",
            "-o",
            "/dev/null/x",
        ],
        None,
    );
    assert_ne!(r.code, 0);
}

fn jiff_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

//! `tresor apply`: a manifest of secrets, principals and teams; the plan printed first (never a
//! value), idempotent, `--dry-run` changes nothing, `--prune` removes what is not listed (never
//! the caller's own principal), bad manifests exit 2 naming the line; on the file and through
//! a daemon.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Daemon, Env, Run, start, via};

const VALUE: &str = "apply-secret-value-123";

const MANIFEST: &str = r#"
[[secret]]
name = "github-pat"
type = "token"
description = "CI token"
integration = "github"
max_age_days = 30
meta = { owner = "ci" }
value = "env:APPLY_GH"

[[secret]]
name = "deploy-key"
scope = "team:ci"
value = "file:key.txt"

[[principal]]
name = "deploy-bot"
role = "agent"
uid = 4242
grants = [{ pattern = "github-*", scope = "org", expires = "2031-01-01T00:00:00Z" }]

[[team]]
name = "ci"
members = ["deploy-bot"]
"#;

/// Runs `tresor ARGS` with `APPLY_GH` set, on the file or through `daemon`.
fn apply(env: &Env, daemon: Option<&Daemon>, args: &[&str]) -> Run {
    let mut c = env.cmd();
    c.env("APPLY_GH", VALUE).arg("--store").arg(&env.store);
    match daemon {
        Some(d) => {
            c.env("TRESOR_SOCKET", &d.socket);
        }
        None => {
            c.arg("--passphrase-file").arg(&env.pass);
        }
    }
    c.args(args);
    let r = env.finish(c, None);
    assert!(
        !r.out().contains(VALUE) && !r.stderr.contains(VALUE),
        "a value was printed"
    );
    r
}

fn setup() -> (Env, String) {
    let env = Env::new();
    std::fs::write(env.path("key.txt"), "deploy-key-value").unwrap();
    let m = env.path("tresor.toml");
    std::fs::write(&m, MANIFEST).unwrap();
    (env, m.to_str().unwrap().to_owned())
}

fn lines_with(r: &Run, word: &str) -> usize {
    r.out().lines().filter(|l| l.starts_with(word)).count()
}

fn assert_first_then_unchanged(env: &Env, d: Option<&Daemon>, m: &str) {
    let r = apply(env, d, &["apply", "-f", m]);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert!(
        r.out()
            .contains("create    secret org/github-pat (value from env:APPLY_GH)"),
        "{}",
        r.out()
    );
    assert_eq!(lines_with(&r, "create"), 4, "{}", r.out());

    let r = apply(env, d, &["apply", "-f", m]);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert_eq!(lines_with(&r, "unchanged"), 4, "{}", r.out());
    assert_eq!(r.out().lines().count(), 4, "{}", r.out());
    assert!(
        r.err_only().contains("applied 0 change(s)"),
        "{}",
        r.err_only()
    );
}

#[test]
fn apply_creates_then_is_idempotent() {
    let (env, m) = setup();
    assert_first_then_unchanged(&env, None, &m);
    let r = env.run(&["get", "github-pat"], None);
    assert!(
        r.stdout == VALUE.as_bytes(),
        "the value was not set from the environment"
    );
    let r = env.run(&["--json", "show", "github-pat"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["max_age_days"], 30);
    assert_eq!(v["meta"]["owner"], "ci");
    assert_eq!(v["version"], 1);
    let r = env.run(&["principal", "ls"], None);
    assert!(
        r.out()
            .contains("github-* in org until 2031-01-01T00:00:00Z"),
        "{}",
        r.out()
    );

    // A changed field is an update of metadata only (the value stays, no new version).
    std::fs::write(
        &m,
        MANIFEST.replace("max_age_days = 30", "max_age_days = 7"),
    )
    .unwrap();
    let r = apply(&env, None, &["apply", "-f", &m]);
    assert!(
        r.out()
            .contains("update    secret org/github-pat (max_age_days)"),
        "{}",
        r.out()
    );
    let r = env.run(&["--json", "show", "github-pat"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(
        (v["max_age_days"].as_u64(), v["version"].as_u64()),
        (Some(7), Some(1))
    );
}

#[test]
fn dry_run_changes_nothing() {
    let (env, m) = setup();
    let r = apply(&env, None, &["apply", "-f", &m, "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert_eq!(lines_with(&r, "create"), 4, "{}", r.out());
    assert!(
        r.err_only().contains("dry run: nothing changed"),
        "{}",
        r.err_only()
    );
    let r = env.run(&["--json", "ls"], None);
    assert_eq!(r.out().trim(), "[]");
    let r = env.run(&["--json", "principal", "ls"], None);
    assert!(!r.out().contains("deploy-bot"), "{}", r.out());
}

#[test]
fn prune_removes_what_the_manifest_does_not_list() {
    let (env, m) = setup();
    assert_eq!(apply(&env, None, &["apply", "-f", &m]).code, 0);
    env.set("extra", b"extra-value", &[]);
    let r = apply(&env, None, &["apply", "-f", &m, "--prune", "--dry-run"]);
    assert!(
        r.out().contains("delete    secret org/extra"),
        "{}",
        r.out()
    );
    assert!(
        r.err_only().contains("never removes your own principal"),
        "{}",
        r.err_only()
    );

    let r = apply(&env, None, &["apply", "-f", &m, "--prune"]);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert_eq!(lines_with(&r, "delete"), 1, "{}", r.out());
    assert_eq!(env.run(&["show", "extra"], None).code, 3);
    // The caller's own owner principal is still there: the store still opens and lists.
    let r = env.run(&["--json", "principal", "ls"], None);
    assert!(r.out().contains("\"owner\""), "{}", r.out());
    // Without --prune, nothing is deleted.
    env.set("extra2", b"extra-value", &[]);
    let r = apply(&env, None, &["apply", "-f", &m]);
    assert_eq!(lines_with(&r, "delete"), 0, "{}", r.out());
}

#[test]
fn bad_manifests_exit_2_naming_the_line() {
    let (env, m) = setup();
    for (text, want) in [
        (
            "[[secret]]\nname = \"a\"\nvalue = \"literal-secret\"\n",
            "tresor.toml line 3: value",
        ),
        (
            "[[secret]]\nname = \"a\"\nvalue = \"env:X\"\ncolour = \"red\"\n",
            "tresor.toml line 4:",
        ),
        (
            "[[principal]]\nname = \"p\"\nrole = \"boss\"\nuid = 1\n",
            "tresor.toml line 3:",
        ),
        ("[[secret]]\nname = \"no-value\"\n", "tresor.toml line 2:"),
    ] {
        std::fs::write(&m, text).unwrap();
        let r = apply(&env, None, &["apply", "-f", &m]);
        assert_eq!(r.code, 2, "{text}: {}", r.err_only());
        assert!(r.err_only().contains(want), "{text}: {}", r.err_only());
        assert!(!r.err_only().contains("literal-secret"), "{}", r.err_only());
    }
}

#[test]
fn apply_through_the_daemon() {
    let (env, m) = setup();
    let d = start(&env, true);
    assert_first_then_unchanged(&env, Some(&d), &m);
    let r = via(&env, &d, &["set", "extra"], Some(b"extra-value"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = apply(&env, Some(&d), &["--json", "apply", "-f", &m, "--prune"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let deleted: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["change"] == "delete")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["org/extra"]);
    assert_eq!(via(&env, &d, &["show", "extra"], None).code, 3);
}

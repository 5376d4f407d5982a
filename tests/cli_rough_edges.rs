//! Issue 11's rough edges, through the `tresor` binary on a real store (direct mode, or a
//! real daemon where the edge was in the daemon's path). Values are asserted on, never printed.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::{Env, spawn_lines, start, via};

fn json(r: &cli_support::Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_slice(&r.stdout).unwrap()
}

#[test]
fn rm_and_principal_rm_print_what_they_deleted_with_json() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    let v = json(&env.run(&["--json", "rm", "k", "--scope", "org"], None));
    assert_eq!(v, serde_json::json!({"deleted": "org/k"}));
    env.set("k2", b"v", &[]);
    let v = json(&env.run(&["--json", "rm", "k2"], None));
    assert_eq!(v["deleted"], "k2");

    let add = [
        "principal",
        "add",
        "bot",
        "--role",
        "agent",
        "--uid",
        "4343",
    ];
    let r = env.run(&add, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&env.run(&["--json", "principal", "rm", "bot"], None));
    assert_eq!(v, serde_json::json!({"deleted": "bot"}));
    assert_eq!(env.run(&["team", "add", "infra"], None).code, 0);
    let v = json(&env.run(&["--json", "team", "rm", "infra"], None));
    assert_eq!(v, serde_json::json!({"deleted": "infra"}));
}

#[test]
fn get_show_history_and_rm_take_the_scope_slash_name_reference() {
    let env = Env::new();
    env.set("user-token", b"alice-value", &["--scope", "user:alice"]);
    env.set("user-token", b"org-value", &[]);
    // The form `check`, `run` and `inject` take (issue 11: `get` said "invalid name").
    let r = env.run(&["get", "user:alice/user-token"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == b"alice-value", "get read the wrong secret");
    let r = env.run(&["get", "org/user-token"], None);
    assert!(r.stdout == b"org-value", "get read the wrong secret");
    let v = json(&env.run(&["--json", "show", "user:alice/user-token"], None));
    assert_eq!(v["scope"], "user:alice");
    let v = json(&env.run(&["--json", "history", "user:alice/user-token"], None));
    assert_eq!(v.as_array().unwrap().len(), 1);
    // A scope written twice must agree; a field has no place in a metadata command.
    let r = env.run(&["get", "org/user-token", "--scope", "user:alice"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--scope"), "{}", r.stderr);
    let r = env.run(&["show", "org/user-token#x"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("drop #x"), "{}", r.stderr);
    let v = json(&env.run(&["--json", "rm", "user:alice/user-token"], None));
    assert_eq!(v["deleted"], "user:alice/user-token");
    assert_eq!(env.run(&["get", "user:alice/user-token"], None).code, 3);
    assert!(env.run(&["get", "user-token"], None).stdout == b"org-value");
}

#[test]
fn set_with_a_value_on_the_command_line_says_where_values_come_from() {
    let env = Env::new();
    let r = env.run(&["set", "foo", "bar-typed-value"], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for source in ["stdin", "prompt", "--from-file", "--from-env"] {
        assert!(r.stderr.contains(source), "no {source}: {}", r.stderr);
    }
    // What was typed is neither echoed nor stored.
    assert!(!r.stderr.contains("bar-typed-value"), "{}", r.stderr);
    assert_eq!(env.run(&["get", "foo"], None).code, 3);
}

#[test]
fn audit_follow_starts_at_the_end_of_the_log() {
    let env = Env::new();
    env.set("old", b"v", &[]);
    env.set("new", b"v", &[]);
    let d = start(&env, true);
    assert_eq!(via(&env, &d, &["get", "old"], None).code, 0);
    let (mut follower, rx) = spawn_lines(&env, &d, &["--json", "audit", "--follow"]);
    // Read `new` until the follower prints something: its first line is such a read, never
    // the backlog (init, the sets, the read of `old`), which it printed whole before.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        assert!(Instant::now() < deadline, "the follower printed nothing");
        assert_eq!(via(&env, &d, &["get", "new"], None).code, 0);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(1500)) {
            break line;
        }
    };
    let _ = follower.kill();
    let _ = follower.wait();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (&v["action"], &v["name"]),
        (&"read".into(), &"new".into()),
        "{first}"
    );
}

/// Every RFC 3339 time in `v`, by the key it was found under.
fn times(v: &serde_json::Value, key: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::String(s) if s.parse::<jiff::Timestamp>().is_ok() => {
            out.push((key.to_owned(), s.clone()));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| times(x, key, out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| times(x, k, out)),
        _ => {}
    }
}

#[test]
fn json_times_have_six_fractional_digits_everywhere() {
    let env = Env::new();
    env.set("k", b"v", &[]);
    env.set("k", b"w", &[]);
    let mut found = Vec::new();
    for args in [
        &["--json", "show", "k"][..],
        &["--json", "ls"],
        &["--json", "get", "k"],
        &["--json", "report", "inventory"],
    ] {
        times(&json(&env.run(args, None)), "", &mut found);
    }
    let r = env.run(&["--json", "audit"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in r.out().lines() {
        times(&serde_json::from_str(line).unwrap(), "", &mut found);
    }
    let d = start(&env, true);
    times(
        &json(&via(&env, &d, &["--json", "status"], None)),
        "",
        &mut found,
    );
    for key in ["created_at", "updated_at", "retrieved_at", "time", "since"] {
        assert!(found.iter().any(|(k, _)| k == key), "no {key} in {found:?}");
    }
    for (key, t) in &found {
        let fraction = t.rsplit_once('.').map(|(_, f)| f);
        let ok = fraction.is_some_and(|f| {
            f.len() == 7 && f.ends_with('Z') && f[..6].bytes().all(|b| b.is_ascii_digit())
        });
        assert!(ok, "{key} = {t}: expected six fractional digits");
    }
}

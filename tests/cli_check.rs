//! `tresor check`: pre-flight from names or a requirements.toml, on the file and through a
//! daemon; exit 3 listing what is missing, exit 2 naming a bad line.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Env, start, via};

fn env_with_secrets() -> Env {
    let env = Env::new();
    env.set("github-pat", b"ghp_check_value", &[]);
    let r = env.run(
        &["set", "db", "--type", "credentials", "--fields-from", "-"],
        Some(br#"{"username": "alice", "password": "pw-123456"}"#),
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    env
}

#[test]
fn check_lists_what_is_missing_and_exits_3() {
    let env = env_with_secrets();
    let r = env.run(&["check", "github-pat", "db#password"], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert!(r.out().contains("present  github-pat"), "{}", r.out());

    let r = env.run(
        &["check", "github-pat", "nope", "db#nofield", "team:x/y"],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.err_only());
    let err = r.err_only();
    assert!(err.contains("nope, db#nofield, team:x/y"), "{err}");
    assert!(r.out().contains("missing  nope"), "{}", r.out());

    let r = env.run(&["--json", "check", "github-pat", "nope"], None);
    assert_eq!(r.code, 3);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["present"], serde_json::json!(["github-pat"]));
    assert_eq!(v["missing"], serde_json::json!(["nope"]));
}

#[test]
fn check_reads_a_requirements_file_and_names_bad_lines() {
    let env = env_with_secrets();
    let req = env.path("requirements.toml");
    std::fs::write(
        &req,
        "required = [\"github-pat\"]\n\n[[secret]]\nname = \"db\"\nfield = \"password\"\n\n\
         [[secret]]\nname = \"db\"\nscope = \"org\"\nfield = \"username\"\n",
    )
    .unwrap();
    let r = env.run(&["check", "-f", req.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.err_only());

    std::fs::write(&req, "required = [\"github-pat\", \"gone\"]\n").unwrap();
    let r = env.run(&["check", "-f", req.to_str().unwrap()], None);
    assert_eq!(r.code, 3);
    assert!(r.err_only().contains("gone"));

    std::fs::write(&req, "required = [\"github-pat\"]\n[[secret]]\nname = 3\n").unwrap();
    let r = env.run(&["check", "-f", req.to_str().unwrap()], None);
    assert_eq!(r.code, 2, "{}", r.err_only());
    assert!(
        r.err_only().contains("requirements.toml line 3:"),
        "{}",
        r.err_only()
    );
}

#[test]
fn check_through_the_daemon() {
    let env = env_with_secrets();
    let d = start(&env, true);
    let r = via(
        &env,
        &d,
        &["check", "github-pat", "org/db#username", "nope"],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("not found: nope (1 of 3)"),
        "{}",
        r.stderr
    );
    assert!(r.out().contains("present  org/db#username"), "{}", r.out());
}

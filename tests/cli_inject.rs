//! `tresor inject`: templates rendered into 0600 files, end to end on real stores and through
//! a daemon. Rendered files are compared, never printed.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use cli_support::{Env, start, via};

fn env_with_secrets() -> Env {
    let env = Env::new();
    env.set("github-pat", b"ghp_inject_value", &[]);
    let r = env.run(
        &["set", "db", "--type", "credentials", "--fields-from", "-"],
        Some(br#"{"username": "alice", "password": "pw-123456"}"#),
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    env
}

#[test]
fn inject_renders_references_into_a_0600_file() {
    let env = env_with_secrets();
    let tmpl = env.path("app.conf.tmpl");
    std::fs::write(
        &tmpl,
        "token={{ tresor://github-pat }}\nuser={{tresor://org/db#username}} \
         pass={{  tresor://db#password\t}}\nhelm={{ .Values.keep }}\n",
    )
    .unwrap();
    let out = env.path("app.conf");
    let args = [
        "inject",
        "-i",
        tmpl.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let r = env.run(&args, None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    // Three references, two secrets: `db#username` and `db#password` are one secret (issue
    // 11: reported "3 references to 3 secrets").
    assert!(
        r.err_only().contains("(3 references to 2 secrets)"),
        "{}",
        r.err_only()
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text == "token=ghp_inject_value\nuser=alice pass=pw-123456\nhelm={{ .Values.keep }}\n",
        "the rendered file differs"
    );

    // An existing file is kept unless --force.
    std::fs::write(&out, "old").unwrap();
    let r = env.run(&args, None);
    assert_eq!(r.code, 7, "{}", r.err_only());
    assert!(r.err_only().contains("--force"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_eq!(env.run(&forced, None).code, 0);
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .starts_with("token=ghp_inject_value")
    );
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn inject_names_unknown_and_malformed_references() {
    let env = env_with_secrets();
    let tmpl = env.path("t");
    let out = env.path("out");
    let args = [
        "inject",
        "-i",
        tmpl.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];

    std::fs::write(
        &tmpl,
        "a={{ tresor://github-pat }}\n\nb={{ tresor://nope }}\n",
    )
    .unwrap();
    let r = env.run(&args, None);
    assert_eq!(r.code, 3, "{}", r.err_only());
    assert!(
        r.err_only().contains("tresor://nope (line 3)"),
        "{}",
        r.err_only()
    );
    assert!(!out.exists(), "a file was written despite the error");

    std::fs::write(&tmpl, "a\nb={{ tresor://bad name }}\n").unwrap();
    let r = env.run(&args, None);
    assert_eq!(r.code, 2, "{}", r.err_only());
    assert!(r.err_only().contains("t line 2:"), "{}", r.err_only());

    std::fs::write(&tmpl, "x={{ tresor://github-pat\n}}\n").unwrap();
    assert_eq!(env.run(&args, None).code, 2);
    assert!(!out.exists());
}

#[test]
fn inject_through_the_daemon() {
    let env = env_with_secrets();
    let d = start(&env, true);
    let tmpl = env.path("t");
    let out = env.path("out");
    std::fs::write(&tmpl, "{{ tresor://db#password }}").unwrap();
    let r = via(
        &env,
        &d,
        &[
            "inject",
            "-i",
            tmpl.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read(&out).unwrap() == b"pw-123456");
}

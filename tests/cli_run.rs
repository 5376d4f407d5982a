//! `tresor run`: secrets in the child's environment, masked in its output (also when a value
//! is split across writes), its exit code and signals passed through; on the file and through
//! a daemon. Values are compared inside the child or asserted on, never printed.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use cli_support::{Env, Run, start, via};

const VALUE: &str = "ghp_test_value_0123456789";

fn env_with_secret() -> Env {
    let env = Env::new();
    env.set("github-pat", VALUE.as_bytes(), &["--type", "token"]);
    env
}

/// `tresor run ARGS -- sh -c SCRIPT`, with `EXPECTED` holding the value for comparisons
/// inside the child.
fn run_sh(env: &Env, args: &[&str], script: &str) -> Run {
    let mut c = env.cmd();
    c.env("EXPECTED", VALUE)
        .arg("--store")
        .arg(&env.store)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .arg("run")
        .args(args)
        .args(["--", "sh", "-c", script]);
    env.finish(c, None)
}

/// Writes the value to fd `fd` in two writes 200 ms apart, so the reader sees two chunks.
fn split_write(fd: u8) -> String {
    format!(
        "printf '%s' \"$GITHUB_PAT\" | head -c 7 >&{fd}; sleep 0.2; \
         printf '%s\\n' \"$GITHUB_PAT\" | tail -c +8 >&{fd}"
    )
}

#[test]
fn injects_and_masks_stdout_and_stderr_even_split_across_writes() {
    let env = env_with_secret();
    let script = format!(
        "[ \"$GITHUB_PAT\" = \"$EXPECTED\" ] && echo injected; \
         echo \"out: $GITHUB_PAT.\"; echo \"err: $GITHUB_PAT.\" >&2; {}; {}",
        split_write(1),
        split_write(2)
    );
    let r = run_sh(&env, &["--secret", "github-pat"], &script);
    assert_eq!(r.code, 0, "{}", r.err_only());
    let out = r.out();
    assert!(!out.contains(VALUE), "the value reached stdout");
    assert!(!r.stderr.contains(VALUE), "the value reached stderr");
    assert_eq!(out, "injected\nout: ***.\n***\n");
    assert!(r.err_only().ends_with("err: ***.\n***"), "{}", r.err_only());
}

#[test]
fn no_mask_leaves_output_alone_and_env_names_can_be_chosen() {
    let env = env_with_secret();
    let r = run_sh(
        &env,
        &["--no-mask", "--secret", "github-pat=TOKEN"],
        "printf '%s' \"$TOKEN\"; [ -z \"$GITHUB_PAT\" ] || echo unexpected >&2",
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert!(r.stdout == VALUE.as_bytes(), "--no-mask changed the output");
    assert!(!r.stderr.contains("unexpected"));
}

#[test]
fn the_exit_code_and_deaths_by_signal_pass_through() {
    let env = env_with_secret();
    let r = run_sh(&env, &["--secret", "github-pat"], "exit 7");
    assert_eq!(r.code, 7, "{}", r.err_only());
    let r = run_sh(&env, &[], "kill -TERM $$");
    assert_eq!(r.code, 128 + 15);
    let mut c = env.cmd();
    c.args(["run", "--", "/nonexistent/command"]);
    assert_eq!(env.finish(c, None).code, 127);
}

/// Starts `tresor run` with a child that reports `signal` and exits 42, sends `signal` to
/// tresor (not to the child), and checks the child got it. tresor runs in its own process
/// group, so it is never the terminal's foreground group (where a SIGINT is not forwarded:
/// the terminal delivered it to the child already).
///
/// Also: the background `sleep` keeps the child's stdout open after the child exits; `run`
/// still returns promptly (it drains until the pipe is quiet, then lets go).
fn forwards(signal: &str) {
    use std::os::unix::process::CommandExt;
    let env = env_with_secret();
    let mut c = env.cmd();
    c.arg("--store")
        .arg(&env.store)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .args(["run", "--secret", "github-pat", "--", "sh", "-c"])
        .arg(format!(
            "trap 'echo \"{signal} $GITHUB_PAT\"; exit 42' {signal}; echo ready; sleep 20 & wait"
        ))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let killed = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(lines.next().unwrap().unwrap(), format!("{signal} ***"));
    assert_eq!(child.wait().unwrap().code(), Some(42));
}

#[test]
fn sigterm_sigint_and_sighup_are_forwarded_to_the_child() {
    forwards("TERM");
    forwards("INT");
    forwards("HUP");
}

#[test]
fn env_files_mix_references_and_plain_lines() {
    let env = env_with_secret();
    let r = env.run(
        &["set", "db", "--type", "credentials", "--fields-from", "-"],
        Some(br#"{"username": "alice", "password": "db-password-1"}"#),
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    let file = env.path("app.env");
    std::fs::write(
        &file,
        "# comment\nexport TOKEN=tresor://github-pat\nDB_PASS=\"tresor://org/db#password\"\n\
         MODE=plain-value\n",
    )
    .unwrap();
    let r = run_sh(
        &env,
        &["--env-file", file.to_str().unwrap()],
        "[ \"$TOKEN\" = \"$EXPECTED\" ] && echo token-ok; echo \"$DB_PASS $MODE\"",
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert_eq!(r.out(), "token-ok\n*** plain-value\n");

    std::fs::write(&file, "A=1\nB=tresor://bad name\n").unwrap();
    let r = run_sh(&env, &["--env-file", file.to_str().unwrap()], "true");
    assert_eq!(r.code, 2);
    assert!(r.err_only().contains("app.env line 2:"), "{}", r.err_only());
    std::fs::write(&file, "A=1\n\nnot a line\n").unwrap();
    let r = run_sh(&env, &["--env-file", file.to_str().unwrap()], "true");
    assert_eq!(r.code, 2);
    assert!(r.err_only().contains("app.env line 3:"), "{}", r.err_only());
}

#[test]
fn missing_secrets_fail_before_the_child_starts() {
    let env = env_with_secret();
    let marker = env.path("started");
    let r = run_sh(
        &env,
        &["--secret", "nope"],
        &format!("touch {}", marker.display()),
    );
    assert_eq!(r.code, 3, "{}", r.err_only());
    assert!(!marker.exists(), "the child ran without its secrets");
}

#[test]
fn the_passphrase_and_token_variables_are_not_handed_to_the_child() {
    let env = env_with_secret();
    let mut c = env.cmd();
    c.env("TRESOR_PASSPHRASE", cli_support::PASS)
        .env("TRESOR_TOKEN", "tresor_not-a-real-token")
        .arg("--store")
        .arg(&env.store)
        .args(["run", "--secret", "github-pat", "--", "sh", "-c"])
        .arg("[ -z \"$TRESOR_PASSPHRASE$TRESOR_TOKEN\" ] && echo clean");
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert_eq!(r.out(), "clean\n");
}

#[test]
fn through_the_daemon_values_come_from_post_env_and_are_audited() {
    let env = env_with_secret();
    let d = start(&env, true);
    let r = via(
        &env,
        &d,
        &[
            "run",
            "--secret",
            "github-pat",
            "--",
            "sh",
            "-c",
            "echo \"$GITHUB_PAT\"; exit 3",
        ],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(r.out(), "***\n");
    let r = via(
        &env,
        &d,
        &["--json", "audit", "--action", "read", "--limit", "1"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(r.out().trim()).unwrap();
    assert_eq!(v["channel"], "socket");
    assert_eq!(v["name"], "github-pat");
    assert_eq!(v["outcome"], "ok");
}

#[test]
fn the_store_is_closed_before_the_child_starts() {
    let env = env_with_secret();
    let script = format!(
        "\"$TRESOR_BIN\" --store {} --passphrase-file {} get github-pat | wc -c",
        env.store.display(),
        env.pass.display()
    );
    let mut c = env.cmd();
    c.env("TRESOR_BIN", env!("CARGO_BIN_EXE_tresor"))
        .arg("--store")
        .arg(&env.store)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .args(["run", "--secret", "github-pat", "--", "sh", "-c"])
        .arg(script);
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert_eq!(r.out().trim(), VALUE.len().to_string());
}

#[test]
fn an_agent_gets_only_what_its_grants_cover() {
    let env = env_with_secret();
    env.set("other", b"other-value", &[]);
    let d = start(&env, true);
    let r = via(
        &env,
        &d,
        &["principal", "add", "bot", "--role", "agent", "--token"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = r.out().trim().to_owned();
    let r = via(&env, &d, &["principal", "grant", "bot", "github-*"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let as_bot = |secret: &str| {
        let mut c = env.cmd();
        c.env("TRESOR_SOCKET", &d.socket)
            .env("TRESOR_TOKEN", &token)
            .args(["run", "--secret", secret, "--", "sh", "-c"])
            .arg("echo \"ran $GITHUB_PAT\"");
        env.finish(c, None)
    };
    let r = as_bot("github-pat");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.out(), "ran ***\n");
    let r = as_bot("other");
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "the child ran without its secrets");
}

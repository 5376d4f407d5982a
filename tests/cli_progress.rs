//! Progress on `import` and `apply` of many secrets (issue 11): a bar on stderr when stderr is
//! a terminal, and none at all (no control codes, no carriage returns) when it is piped, so
//! that logs and scripts see only the summary line.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::fmt::Write as _;

use cli_support::{Env, start, via};

fn dotenv(n: usize) -> String {
    (0..n).fold(String::new(), |mut s, i| {
        let _ = writeln!(s, "KEY_{i}=value-{i}");
        s
    })
}

fn manifest(n: usize) -> String {
    (0..n).fold(String::new(), |mut s, i| {
        let _ = write!(
            s,
            "[[secret]]\nname = \"app-{i}\"\nvalue = \"env:APP_VALUE\"\n\n"
        );
        s
    })
}

fn assert_plain(stderr: &str) {
    assert!(
        !stderr.contains('\x1b'),
        "control codes in piped stderr: {stderr:?}"
    );
    assert!(
        !stderr.contains('\r'),
        "carriage returns in piped stderr: {stderr:?}"
    );
    assert!(!stderr.contains('░'), "a bar in piped stderr: {stderr:?}");
}

#[test]
fn piped_stderr_gets_no_progress_bar() {
    let env = Env::new();
    let input = env.path("in.env");
    std::fs::write(&input, dotenv(300)).unwrap();
    let r = env.run(
        &["import", "--format", "dotenv", input.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("imported 300 secrets"), "{}", r.stderr);
    assert_plain(&r.stderr);

    let d = start(&env, true);
    let input = env.path("more.env");
    std::fs::write(&input, dotenv(150).replace("KEY_", "MORE_")).unwrap();
    let r = via(
        &env,
        &d,
        &["import", "--format", "dotenv", input.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_plain(&r.stderr);

    let m = env.path("tresor.toml");
    std::fs::write(&m, manifest(40)).unwrap();
    let mut c = env.cmd();
    c.env("TRESOR_SOCKET", &d.socket)
        .env("APP_VALUE", "from-env")
        .args([
            "--store",
            env.store.to_str().unwrap(),
            "apply",
            "-f",
            m.to_str().unwrap(),
        ]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_plain(&r.stderr);
    assert_eq!(via(&env, &d, &["get", "app-39"], None).stdout, b"from-env");
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: util-linux `script` (to give the command a terminal) is missing");
        return;
    }
    let env = Env::new();
    let input = env.path("in.env");
    std::fs::write(&input, dotenv(300)).unwrap();
    let line = format!(
        "{} --store {} --passphrase-file {} import --format dotenv {}",
        env!("CARGO_BIN_EXE_tresor"),
        env.store.display(),
        env.pass.display(),
        input.display()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tty = r.out();
    assert!(tty.contains("importing"), "no bar on the terminal: {tty:?}");
    assert!(tty.contains("/300"), "no count on the terminal: {tty:?}");
    assert!(tty.contains("imported 300 secrets"));
}

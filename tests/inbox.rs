//! The write-only inbox (SPEC §7, issue 12): a value submitted while the daemon is locked is
//! applied at the unlock and audited with who dropped it; the stock `age` CLI and a documented
//! one-line JSON envelope make a valid submission; bad submissions (not decryptable,
//! tampered, truncated, malformed, replayed, oversized) are quarantined with a reason, never
//! half-applied.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli_support::{Env, Run, start, via};

fn ok(r: &Run, what: &str) -> String {
    assert_eq!(r.code, 0, "{what} failed: {}", r.stderr);
    r.out().trim().to_owned()
}

fn inbox(env: &Env) -> PathBuf {
    let mut s = env.store.clone().into_os_string();
    s.push(".inbox");
    PathBuf::from(s)
}

fn quarantined(env: &Env) -> Vec<String> {
    let q = inbox(env).join("quarantine");
    let Ok(rd) = std::fs::read_dir(q) else {
        return Vec::new();
    };
    let mut reasons: Vec<String> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "reason"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    reasons.sort();
    reasons
}

fn age_available() -> bool {
    let found = Command::new("age").arg("--version").output().is_ok();
    if !found {
        println!("skipped: the stock `age` binary is not installed (Debian package `age`)");
    }
    found
}

fn age_encrypt(recipient: &str, plain: &[u8], out: &Path) {
    let mut child = Command::new("age")
        .arg("-r")
        .arg(recipient)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(plain).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_submission_while_locked_is_applied_at_unlock_and_audited() {
    let env = Env::new();
    let r = ok(&env.run(&["inbox", "key"], None), "inbox key");
    let d = start(&env, false);
    // The recipient is readable while locked.
    assert_eq!(
        ok(&via(&env, &d, &["inbox", "key"], None), "locked inbox key"),
        r
    );
    let sub = via(
        &env,
        &d,
        &["submit", "--to", &r, "ci-token"],
        Some(b"rotated-by-ci"),
    );
    assert_eq!(sub.code, 0, "{}", sub.stderr);
    assert!(
        sub.stderr.contains("applied at the next unlock"),
        "{}",
        sub.stderr
    );
    assert!(!sub.stderr.contains("rotated-by-ci"));
    // Unlock through the daemon: the submission is applied then.
    let mut c = env.cmd();
    c.env("TRESOR_SOCKET", &d.socket)
        .arg("--store")
        .arg(&env.store)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .arg("unlock");
    assert_eq!(env.finish(c, None).code, 0);
    let got = via(&env, &d, &["get", "ci-token"], None);
    assert_eq!(got.stdout, b"rotated-by-ci", "{}", got.stderr);
    let audit = via(&env, &d, &["audit", "--action", "set", "--json"], None);
    let line = audit
        .out()
        .lines()
        .find(|l| l.contains("\"name\":\"ci-token\""))
        .map(str::to_owned)
        .expect("a set record for ci-token");
    let uid = rustix_uid();
    assert!(line.contains(&format!("\"uid\":{uid}")), "{line}");
    assert!(line.contains("\"outcome\":\"ok\""), "{line}");
    // Unlocked: a submission is applied at once.
    let sub = via(
        &env,
        &d,
        &["submit", "--to", &r, "ci-token"],
        Some(b"second-rotation"),
    );
    assert!(
        sub.stderr.contains("applied org/ci-token version 2"),
        "{}",
        sub.stderr
    );
}

fn rustix_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn stock_age_and_the_documented_envelope_make_a_submission() {
    if !age_available() {
        return;
    }
    let env = Env::new();
    let r = ok(&env.run(&["inbox", "key"], None), "inbox key");
    let line = br#"{"tresor":"submit/1","name":"deploy-key","value":"from-plain-age"}"#;
    age_encrypt(
        &r,
        &[line.as_slice(), b"\n"].concat(),
        &inbox(&env).join("deploy.age"),
    );
    // Any unlock applies it (here: a direct `get`).
    assert_eq!(
        env.run(&["get", "deploy-key"], None).stdout,
        b"from-plain-age"
    );
    assert!(
        !inbox(&env).join("deploy.age").exists(),
        "applied files are removed"
    );
    assert!(quarantined(&env).is_empty());
}

#[test]
fn bad_submissions_are_quarantined_with_a_reason_and_apply_nothing() {
    let env = Env::new();
    let r = ok(&env.run(&["inbox", "key"], None), "inbox key");
    let dir = inbox(&env);
    let good = env.path("good.age");
    let s = env.run(
        &["submit", "--to", &r, "good", "-o", good.to_str().unwrap()],
        Some(b"v"),
    );
    assert_eq!(s.code, 0, "{}", s.stderr);
    let bytes = std::fs::read(&good).unwrap();
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 1;
    std::fs::write(dir.join("a-tampered.age"), &flipped).unwrap();
    std::fs::write(dir.join("b-truncated.age"), &bytes[..n - 10]).unwrap();
    std::fs::write(dir.join("c-garbage.age"), b"not an age file").unwrap();
    std::fs::write(dir.join("d-oversized.age"), vec![b'x'; 300 * 1024]).unwrap();
    // For another store: not decryptable here.
    let other = Env::new();
    let ro = ok(&other.run(&["inbox", "key"], None), "other key");
    let s = env.run(
        &[
            "submit",
            "--to",
            &ro,
            "good",
            "-o",
            dir.join("e-other.age").to_str().unwrap(),
        ],
        Some(b"v"),
    );
    assert_eq!(s.code, 0);
    if age_available() {
        age_encrypt(
            &r,
            b"{\"tresor\":\"submit/1\",\"name\":\"../x\",\"value\":\"v\"}",
            &dir.join("f-badname.age"),
        );
        age_encrypt(&r, b"{\"name\":\"x\"", &dir.join("g-malformed.age"));
    }
    // Neither a symlink (to a valid submission) nor a FIFO is read: no hang, nothing applied.
    std::os::unix::fs::symlink(&good, dir.join("j-link.age")).unwrap();
    let fifo = Command::new("mkfifo").arg(dir.join("k-fifo.age")).status();
    assert!(fifo.unwrap().success());
    let ls = env.run(&["--json", "ls"], None);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    assert_eq!(ls.out().trim(), "[]", "nothing applied");
    let reasons = quarantined(&env);
    let expect = if age_available() { 7 } else { 5 };
    assert_eq!(reasons.len(), expect, "{reasons:#?}");
    let joined = reasons.join("");
    assert!(joined.contains("integrity"), "{joined}");
    assert!(joined.contains("oversized"), "{joined}");
    assert!(!joined.contains("\"v\""));
    // The good one applies; dropped again, it is a replay.
    std::fs::copy(&good, dir.join("h-good.age")).unwrap();
    assert_eq!(env.run(&["get", "good"], None).stdout, b"v");
    std::fs::copy(&good, dir.join("i-again.age")).unwrap();
    assert_eq!(env.run(&["--json", "ls"], None).code, 0);
    let reasons = quarantined(&env);
    assert!(
        reasons.iter().any(|r| r.contains("replayed")),
        "{reasons:#?}"
    );
    let h = env.run(&["--json", "history", "good"], None);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&h.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1,
        "a replay writes no version"
    );
}

#[test]
fn the_daemon_quarantines_a_bad_post_and_reports_it() {
    let env = Env::new();
    let r = ok(&env.run(&["inbox", "key"], None), "inbox key");
    let d = start(&env, true);
    let other = Env::new();
    let ro = ok(&other.run(&["inbox", "key"], None), "other key");
    // Encrypted to another store: this daemon cannot read it.
    let s = via(
        &env,
        &d,
        &["--json", "submit", "--to", &ro, "x"],
        Some(b"value"),
    );
    assert_eq!(s.code, 0, "{}", s.stderr);
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(v["applied"], true);
    assert!(
        v["outcomes"][0]["quarantined"]
            .as_str()
            .unwrap()
            .contains("integrity"),
        "{v}"
    );
    let _ = r;
    assert_eq!(via(&env, &d, &["get", "x"], None).code, 3);
}

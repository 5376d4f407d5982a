//! `tresor report inventory | rotation | integrations`, on the file and through a daemon.
//! Stores cannot be backdated, so rotation is driven by `--days` windows and small
//! `max_age_days`; certificate expiry comes from a PEM made here with `openssl`.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Env, start, via};
use serde_json::Value;

fn json(r: &cli_support::Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.err_only());
    serde_json::from_slice(&r.stdout).unwrap()
}

/// Names listed by `report rotation --json`.
fn due_names(env: &Env, days: &str) -> Vec<String> {
    let v = json(&env.run(&["--json", "report", "rotation", "--days", days], None));
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

fn env_with_secrets() -> Env {
    let env = Env::new();
    env.set(
        "github-pat",
        b"ghp_report_value",
        &["--type", "token", "--integration", "github"],
    );
    env.set(
        "short",
        b"short-lived-value",
        &["--type", "token", "--max-age-days", "1"],
    );
    env.set("note", b"plain-value", &[]);
    env
}

#[test]
fn inventory_lists_every_visible_secret() {
    let env = env_with_secrets();
    env.set("short", b"short-lived-value-2", &[]);
    let r = env.run(&["report", "inventory"], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    let out = r.out();
    assert!(out.starts_with("SCOPE  NAME"), "{out}");
    assert!(out.contains("github-pat"), "{out}");
    assert!(!out.contains("ghp_report_value"), "a value was printed");

    let v = json(&env.run(&["--json", "report", "inventory"], None));
    let rows = v["secrets"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let short = rows.iter().find(|r| r["name"] == "short").unwrap();
    assert_eq!(short["version"], 2);
    assert_eq!(short["versions_kept"], 2);
    assert_eq!(short["max_age_days"], 1);
    assert_eq!(short["age_days"], 0);
    assert_eq!(short["scope"], "org");
    let gh = rows.iter().find(|r| r["name"] == "github-pat").unwrap();
    assert_eq!(gh["integration"], "github");
    assert_eq!(gh["type"], "token");
    assert!(gh["last_used"].is_null());
}

#[test]
fn rotation_uses_max_age_and_type_defaults_within_the_window() {
    let env = env_with_secrets();
    // Nothing is due today: everything was just written.
    assert!(due_names(&env, "0").is_empty());
    // max_age_days = 1: due within 2 days.
    assert_eq!(due_names(&env, "2"), ["short"]);
    // A token without a policy gets the 60-day default; plain secrets have none.
    assert_eq!(due_names(&env, "59"), ["short"]);
    assert_eq!(due_names(&env, "60"), ["github-pat", "short"]);
    assert_eq!(due_names(&env, "100000"), ["github-pat", "short"]);

    let v = json(&env.run(&["--json", "report", "rotation", "--days", "2"], None));
    let d = &v[0];
    assert_eq!(d["scope"], "org");
    assert_eq!(d["type"], "token");
    assert_eq!(d["age_days"], 0);
    assert_eq!(d["limit_days"], 1);
    assert_eq!(d["due_in_days"], 1);
    assert_eq!(d["reason"], "max_age_days 1");

    // A report: exit 0 with items due; a table for people.
    let r = env.run(&["report", "rotation", "--days", "2"], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert!(r.out().contains("short"), "{}", r.out());
}

/// A self-signed certificate valid for `days` days, made with `openssl`; `None` without it.
fn make_cert(env: &Env, days: &str) -> Option<std::path::PathBuf> {
    let cert = env.path("cert.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=tresor-test",
        ])
        .args(["-days", days, "-keyout"])
        .arg(env.path("key.pem"))
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?;
    out.status.success().then_some(cert)
}

#[test]
fn rotation_reads_certificate_expiry() {
    let env = Env::new();
    let Some(cert) = make_cert(&env, "10") else {
        eprintln!("openssl is not installed; skipping the certificate expiry check");
        return;
    };
    let r = env.run(
        &[
            "set",
            "tls",
            "--type",
            "certificate",
            "--from-file",
            cert.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    // notAfter is 10 days from now, minus the seconds since: 9 whole days left.
    assert!(due_names(&env, "8").is_empty());
    let v = json(&env.run(&["--json", "report", "rotation", "--days", "9"], None));
    assert_eq!(v[0]["name"], "tls");
    assert_eq!(v[0]["due_in_days"], 9);
    assert!(
        v[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("certificate expires "),
        "{v}"
    );
    // A shorter max_age_days wins over a later expiry.
    let r = env.run(&["set", "tls", "--keep-value", "--max-age-days", "2"], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    let v = json(&env.run(&["--json", "report", "rotation", "--days", "3"], None));
    assert_eq!(v[0]["reason"], "max_age_days 2");
    // The store parsed the certificate: no value was read, nothing audited (issue 11).
    let r = env.run(
        &["--json", "audit", "--secret", "tls", "--action", "read"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert!(r.out().is_empty(), "{}", r.out());
}

#[test]
fn an_unreadable_certificate_is_unknown() {
    let env = Env::new();
    env.set(
        "bad-cert",
        b"not a certificate at all",
        &["--type", "certificate"],
    );
    let v = json(&env.run(&["--json", "report", "rotation"], None));
    assert_eq!(v[0]["name"], "bad-cert");
    assert!(v[0]["due_in_days"].is_null());
    assert!(
        v[0]["reason"].as_str().unwrap().starts_with("unknown: "),
        "{v}"
    );
    assert!(!v.to_string().contains("not a certificate at all"));
}

#[test]
fn integrations_exit_3_on_missing_and_2_on_bad_toml() {
    let env = env_with_secrets();
    let f = env.path("integrations.toml");
    std::fs::write(
        &f,
        "[[integration]]\nname = \"github\"\nrequires = [\"github-pat\"]\n\n\
         [[integration]]\nname = \"aws\"\nrequires = [\"note\", \"aws-key\", \"org/aws#secret\"]\n",
    )
    .unwrap();
    let path = f.to_str().unwrap();
    let r = env.run(&["report", "integrations", "-f", path], None);
    assert_eq!(r.code, 3, "{}", r.err_only());
    assert!(
        r.out().contains("github       present    github-pat"),
        "{}",
        r.out()
    );
    assert!(
        r.out().contains("aws          missing    aws-key"),
        "{}",
        r.out()
    );
    assert!(
        r.err_only().contains("aws (aws-key, org/aws#secret)"),
        "{}",
        r.err_only()
    );

    let r = env.run(&["--json", "report", "integrations", "-f", path], None);
    assert_eq!(r.code, 3);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v[0]["missing"], serde_json::json!([]));
    assert_eq!(v[1]["present"], serde_json::json!(["note"]));

    std::fs::write(
        &f,
        "[[integration]]\nname = \"github\"\nrequires = [\"github-pat\"]\n",
    )
    .unwrap();
    assert_eq!(
        env.run(&["report", "integrations", "-f", path], None).code,
        0
    );

    std::fs::write(
        &f,
        "[[integration]]\nname = \"x\"\nrequires = [\"ok\",\n  \"bad name\"]\n",
    )
    .unwrap();
    let r = env.run(&["report", "integrations", "-f", path], None);
    assert_eq!(r.code, 2, "{}", r.err_only());
    assert!(
        r.err_only().contains("integrations.toml line 4:"),
        "{}",
        r.err_only()
    );
}

#[test]
fn reports_through_the_daemon() {
    let env = env_with_secrets();
    let d = start(&env, true);
    let r = via(&env, &d, &["--json", "report", "inventory"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["secrets"].as_array().unwrap().len(), 3);

    let r = via(
        &env,
        &d,
        &["--json", "report", "rotation", "--days", "2"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v[0]["name"], "short");

    let f = env.path("i.toml");
    std::fs::write(
        &f,
        "[[integration]]\nname = \"github\"\nrequires = [\"github-pat\", \"gone\"]\n",
    )
    .unwrap();
    let r = via(
        &env,
        &d,
        &["report", "integrations", "-f", f.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("github (gone)"), "{}", r.stderr);
}

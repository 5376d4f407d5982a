//! `report unused`, `report duplicates`, the inventory summary, `report integrations` by tag,
//! and `apply` rotating a changed value (issue 11). Reports, `check` and metadata reads must
//! not move `last_used` nor add audit records: before, an owner's `report rotation` moved the
//! certificates' `last_used` (it read their values) and a member's added one denied-read
//! record per certificate.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Env, start, via};
use serde_json::Value;

fn json(r: &cli_support::Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.err_only());
    serde_json::from_slice(&r.stdout).unwrap()
}

fn cert(env: &Env) -> std::path::PathBuf {
    let cert = env.path("cert.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=t",
        ])
        .args(["-days", "10", "-keyout"])
        .arg(env.path("key.pem"))
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed to make a test certificate");
    assert!(out.status.success());
    cert
}

/// `name -> last_used` of every secret, from `ls --json`.
fn last_used(r: &cli_support::Run) -> Vec<(String, Value)> {
    json(r)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["last_used"].clone(),
            )
        })
        .collect()
}

#[test]
fn reports_checks_and_metadata_reads_move_nothing() {
    let env = Env::new();
    let pem = cert(&env);
    let r = env.run(
        &[
            "set",
            "tls",
            "--type",
            "certificate",
            "--from-file",
            pem.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    env.set(
        "gh-token",
        b"ghp_1",
        &["--type", "token", "--integration", "github"],
    );
    env.set("never", b"never-read", &[]);
    let d = start(&env, true);
    assert_eq!(via(&env, &d, &["get", "gh-token"], None).code, 0);
    let before = last_used(&via(&env, &d, &["--json", "ls"], None));
    let audit_len = |env: &Env| {
        via(env, &d, &["--json", "audit"], None)
            .out()
            .lines()
            .count()
    };
    let records = audit_len(&env);
    let ifile = env.path("i.toml");
    std::fs::write(&ifile, "github = [\"gh-token\"]\n").unwrap();
    for args in [
        &["report", "rotation", "--days", "30"][..],
        &["report", "inventory"],
        &["report", "unused"],
        &["report", "duplicates"],
        &["report", "integrations", "-f", ifile.to_str().unwrap()],
        &["check", "tls", "gh-token", "never"],
        &["show", "tls"],
        &["ls"],
        &["refs", "tls"],
    ] {
        let r = via(&env, &d, args, None);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    // The certificate's expiry was still found (10 days: due within 30).
    let v = json(&via(
        &env,
        &d,
        &["--json", "report", "rotation", "--days", "30"],
        None,
    ));
    let tls = v
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "tls")
        .unwrap();
    assert!(tls["reason"].as_str().unwrap().contains("expires"), "{tls}");
    assert_eq!(last_used(&via(&env, &d, &["--json", "ls"], None)), before);
    // `audit --json` itself is listed by no record; nothing else was added either.
    assert_eq!(audit_len(&env), records);
}

#[test]
fn a_members_certificate_report_adds_no_denied_reads() {
    use tresor::{Actor, Api, Channel, KdfChoice, Local, Passphrase, PrincipalSpec, Role, Store};
    let env = Env::new();
    let pem = std::fs::read(cert(&env)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let owner = Actor::direct_owner();
    let store = Store::create(
        &dir.path().join("s.tresor"),
        &Passphrase::from("p"),
        &KdfChoice::Insecure,
        &owner,
    )
    .unwrap();
    let req = tresor::SetRequest {
        value: Some(tresor::SecretBytes::new(pem)),
        secret_type: Some(tresor::SecretType::Certificate),
        ..Default::default()
    };
    store.set(&owner, "tls", req).unwrap();
    store
        .principal_add(
            &owner,
            &PrincipalSpec {
                name: "mia".into(),
                role: Role::Member,
                uid: Some(4242),
                gid: None,
                token: false,
            },
        )
        .unwrap();
    let count = |s: &Store| {
        s.audit(&owner, &tresor::AuditQuery::default())
            .unwrap()
            .len()
    };
    let before = count(&store);
    let member = Actor {
        principal: "mia".into(),
        role: Some(Role::Member),
        uid: 4242,
        gid: 4242,
        pid: 1,
        exe: None,
        channel: Channel::Socket,
    };
    let api = Local {
        store,
        actor: member,
    };
    // A member may not read the value, yet learns the expiry.
    assert!(matches!(
        api.get_value("tls", None, None),
        Err(tresor::Error::PermissionDenied { .. })
    ));
    let after_denied = count(&api.store);
    assert_eq!(after_denied, before + 1, "the denied read is audited");
    let c = api
        .certificates(vec![tresor::ops::refs::SecretId {
            name: "tls".into(),
            scope: None,
        }])
        .unwrap();
    assert!(c[0].not_after.is_some(), "{c:?}");
    assert_eq!(count(&api.store), after_denied, "no record for a report");
    assert!(
        api.store
            .show(&owner, "tls", None)
            .unwrap()
            .last_used
            .is_none()
    );
}

#[test]
fn unused_lists_never_read_and_idle_secrets() {
    let env = Env::new();
    env.set("used", b"u-1", &[]);
    env.set("idle", b"i-1", &[]);
    assert_eq!(env.run(&["get", "used"], None).code, 0);
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let v = json(&env.run(&["--json", "report", "unused"], None));
    assert_eq!(names(&v), ["idle"]);
    assert!(v[0]["last_used"].is_null());
    // Read 0 days ago counts as "not read in 0 days"; 1 day is too short for it.
    let v = json(&env.run(&["--json", "report", "unused", "--days", "0"], None));
    assert_eq!(names(&v).len(), 2);
    let v = json(&env.run(&["--json", "report", "unused", "--days", "1"], None));
    assert_eq!(names(&v), ["idle"]);
    let r = env.run(&["report", "unused"], None);
    assert!(r.out().starts_with("SCOPE"), "{}", r.out());
    assert!(r.out().contains("never"), "{}", r.out());
    assert!(!r.out().contains("i-1"));
}

#[test]
fn duplicates_are_found_by_fingerprint_without_values() {
    let env = Env::new();
    env.set("a", b"shared-value-123", &[]);
    env.set("b", b"shared-value-123", &["--scope", "team:ops"]);
    env.set("c", b"other-value-456", &[]);
    let d = start(&env, true);
    let v = json(&via(&env, &d, &["--json", "report", "duplicates"], None));
    let groups = v.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{v}");
    assert_eq!(
        groups[0]["secrets"],
        serde_json::json!(["org/a", "team:ops/b"])
    );
    let r = via(&env, &d, &["report", "duplicates"], None);
    assert!(r.out().contains("team:ops/b"), "{}", r.out());
    assert!(!r.out().contains("shared-value"));
    // Equal values, equal fingerprints; the fingerprint is not a plain hash of the value.
    let show = |n: &str, s: &str| json(&via(&env, &d, &["--json", "show", n, "--scope", s], None));
    let fa = show("a", "org")["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(show("b", "team:ops")["fingerprint"], fa.as_str());
    assert_ne!(show("c", "org")["fingerprint"], fa.as_str());
    // A rekey makes new fingerprints (a new key), and still finds the pair.
    drop(d);
    let r = env.run(&["rekey"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = start(&env, true);
    let v = json(&via(&env, &d, &["--json", "report", "duplicates"], None));
    assert_eq!(v[0]["secrets"], serde_json::json!(["org/a", "team:ops/b"]));
    assert_ne!(v[0]["fingerprint"], fa.as_str());
    // A new value leaves the group.
    let r = via(&env, &d, &["set", "a"], Some(b"fresh-value-789"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&via(&env, &d, &["--json", "report", "duplicates"], None));
    assert!(v.as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn apply_rotates_a_changed_value_unless_told_not_to() {
    let env = Env::new();
    let manifest = env.path("tresor.toml");
    std::fs::write(
        &manifest,
        "[[secret]]\nname = \"svc\"\nvalue = \"env:SVC\"\n",
    )
    .unwrap();
    let apply = |value: &str, extra: &[&str]| {
        let mut cmd = env.cmd();
        cmd.env("SVC", value)
            .arg("--store")
            .arg(&env.store)
            .arg("--passphrase-file")
            .arg(&env.pass)
            .args(["apply", "-f", manifest.to_str().unwrap()])
            .args(extra);
        env.finish(cmd, None)
    };
    assert_eq!(apply("v-one", &[]).code, 0);
    // Same value: nothing to do.
    let r = apply("v-one", &[]);
    assert!(r.out().contains("unchanged secret org/svc"), "{}", r.out());
    // A different value: the plan says `~ value`, a dry run changes nothing.
    let r = apply("v-two", &["--dry-run"]);
    assert!(
        r.out().contains("update    secret org/svc (~ value)"),
        "{}",
        r.out()
    );
    assert!(!r.out().contains("v-two") && !r.stderr.contains("v-two"));
    assert_eq!(env.run(&["get", "svc"], None).stdout, b"v-one");
    // --no-rotate keeps today's behaviour.
    let r = apply("v-two", &["--no-rotate"]);
    assert!(r.out().contains("unchanged secret org/svc"), "{}", r.out());
    assert_eq!(env.run(&["get", "svc"], None).stdout, b"v-one");
    // Applied through the daemon: a new version.
    let d = start(&env, true);
    let mut cmd = env.cmd();
    cmd.env("TRESOR_SOCKET", &d.socket)
        .env("SVC", "v-two")
        .arg("--store")
        .arg(&env.store)
        .args(["apply", "-f", manifest.to_str().unwrap()]);
    let r = env.finish(cmd, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.out().contains("(~ value)"), "{}", r.out());
    let v = json(&via(&env, &d, &["--json", "show", "svc"], None));
    assert_eq!(v["version"], 2);
    assert_eq!(via(&env, &d, &["get", "svc"], None).stdout, b"v-two");
}

#[test]
fn inventory_counts_by_type_scope_and_integration() {
    let env = Env::new();
    env.set("gh", b"1", &["--type", "token", "--integration", "github"]);
    env.set("gh2", b"2", &["--type", "token", "--integration", "github"]);
    env.set(
        "db",
        b"3",
        &["--type", "credentials", "--scope", "team:ops"],
    );
    let v = json(&env.run(&["--json", "report", "inventory"], None));
    assert_eq!(v["secrets"].as_array().unwrap().len(), 3);
    let s = &v["summary"];
    assert_eq!(s["total"], 3);
    assert_eq!(
        s["by_type"],
        serde_json::json!({"credentials": 1, "token": 2})
    );
    assert_eq!(s["by_scope"], serde_json::json!({"org": 2, "team:ops": 1}));
    assert_eq!(
        s["by_integration"],
        serde_json::json!({"(none)": 1, "github": 2})
    );
    let r = env.run(&["report", "inventory"], None);
    assert!(
        r.out().contains("by type        credentials 1, token 2"),
        "{}",
        r.out()
    );
    assert!(
        r.out().contains("by integration (none) 1, github 2"),
        "{}",
        r.out()
    );
}

#[test]
fn integrations_check_the_tag_and_list_what_is_available() {
    let env = Env::new();
    env.set("github-api-token", b"1", &["--integration", "github"]);
    env.set("github-webhook-secret", b"2", &["--integration", "jira"]);
    env.set("gh-extra", b"3", &["--integration", "github"]);
    env.set("untagged", b"4", &[]);
    let f = env.path("i.toml");
    std::fs::write(
        &f,
        "github = [\"github-api-token\", \"github-webhook-secret\"]\n\n\
         [[integration]]\nname = \"misc\"\nrequires = [\"untagged\"]\n",
    )
    .unwrap();
    let r = env.run(
        &[
            "--json",
            "report",
            "integrations",
            "-f",
            f.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        r.code, 3,
        "a secret tagged jira is not github's: {}",
        r.stderr
    );
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    let gh = &v[0];
    assert_eq!(gh["name"], "github");
    assert_eq!(gh["present"], serde_json::json!(["github-api-token"]));
    assert_eq!(
        gh["other_integration"],
        serde_json::json!(["github-webhook-secret (jira)"])
    );
    assert_eq!(
        gh["available"],
        serde_json::json!(["org/gh-extra", "org/github-api-token"])
    );
    assert_eq!(v[1]["present"], serde_json::json!(["untagged"]));
    assert!(
        r.stderr.contains("tagged for another integration"),
        "{}",
        r.stderr
    );
    let r = env.run(&["report", "integrations", "-f", f.to_str().unwrap()], None);
    assert!(r.out().contains("other integration"), "{}", r.out());
    assert!(r.out().contains("available"), "{}", r.out());
}

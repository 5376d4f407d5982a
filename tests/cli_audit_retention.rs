//! `tresor audit prune|export` and `tresord --audit-retention` through the real binaries.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::Env;
use tresor::Api;

#[test]
fn prune_then_verify_and_export_as_json_lines() {
    let env = Env::new();
    env.set("db-password", b"pw-value-1", &[]);
    env.set("api-key", b"key-value-2", &[]);
    std::thread::sleep(Duration::from_millis(20));

    let pruned = env.run(&["audit", "prune", "--before", "10ms"], None);
    assert_eq!(pruned.code, 0, "{}", pruned.stderr);
    assert!(
        pruned.stderr.contains("pruned ") && pruned.stderr.contains("the log starts at seq"),
        "{}",
        pruned.stderr
    );

    let verified = env.run(&["audit", "verify"], None);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(
        verified.stderr.contains("pruned ") && verified.stderr.contains("records before seq"),
        "{}",
        verified.stderr
    );

    let neither = env.run(&["audit", "prune"], None);
    assert_eq!(
        neither.code, 2,
        "one of --before and --keep-days is required"
    );

    let out = env.path("audit.jsonl");
    let out_arg = out.to_str().unwrap();
    let exported = env.run(
        &[
            "audit", "export", "--since", "1h", "--format", "jsonl", out_arg,
        ],
        None,
    );
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    assert!(exported.stderr.contains("exported "), "{}", exported.stderr);
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        for field in ["seq", "time", "principal", "action", "outcome", "channel"] {
            assert!(l.get(field).is_some(), "{field} in {l}");
        }
    }
    assert!(
        lines.iter().any(|l| l["action"] == "prune"),
        "the prune record is exported"
    );
    assert!(!text.contains("pw-value-1") && !text.contains("key-value-2"));

    // Never over an existing file; the export itself is audited.
    let again = env.run(&["audit", "export", out_arg], None);
    assert_eq!(again.code, 7, "{}", again.stderr);
    let listed = env.run(&["--json", "audit", "--action", "export"], None);
    assert!(listed.out().contains("audit seq"), "{}", listed.out());
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tresord_audit_retention_prunes_on_its_own() {
    let env = Env::new();
    for i in 0..5 {
        env.set(&format!("s{i}"), b"value", &[]);
    }
    std::thread::sleep(Duration::from_millis(1100));
    let socket = env.path("run/tresord.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_tresord"))
        .arg("--store")
        .arg(&env.store)
        .arg("--socket")
        .arg(&socket)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .args(["--audit-retention", "1s"])
        .env("TRESOR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _d = Running(child);
    let t0 = Instant::now();
    while !tresor::client::daemon_answers(&socket) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "tresord did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = tresor::Client::new(&socket).unwrap();
    loop {
        let v = c.audit_verify().unwrap();
        assert!(v.ok, "{v:?}");
        if v.pruned_records.is_some_and(|n| n >= 5) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "nothing pruned: {v:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let recs = c.audit(&tresor::AuditQuery::default()).unwrap();
    assert!(
        recs.iter()
            .any(|r| r.action == tresor::Action::Prune && r.principal == "tresord"),
        "the daemon's prune is in the log"
    );
}

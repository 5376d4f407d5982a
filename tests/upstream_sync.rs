//! `sync pull` of a 1,000-path tree against a real OpenBao, and TLS with a CA file against a
//! raft-backed OpenBao with a file audit device (SPEC §11).
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // scenario tests read top to bottom

mod cli_support;
mod upstream_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::Env;
use upstream_support::{Bao, ROOT, bao_bin, free_port};

fn report(env: &Env, args: &[&str]) -> serde_json::Value {
    let r = env.run(args, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_slice(&r.stdout).unwrap()
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn pull_a_thousand_paths_then_unchanged_then_edits_and_deletions() {
    let bao = Bao::dev();
    for i in 0..1000 {
        let dir = i % 10;
        bao.put(
            &format!("fleet/d{dir}/s{i}"),
            &format!(r#"{{"value":"v{i}","user":"u{i}"}}"#),
        );
    }
    // Several versions of some paths.
    for i in 0..50 {
        bao.put(
            &format!("fleet/d{}/s{i}", i % 10),
            &format!(r#"{{"value":"w{i}","user":"u{i}"}}"#),
        );
    }
    bao.put("other/outside", r#"{"value":"not mirrored"}"#);
    let env = Env::new();
    env.set("bao-token", ROOT.as_bytes(), &[]);
    env.run(
        &[
            "provider",
            "add",
            "bao",
            "--kind",
            "openbao",
            "--addr",
            &bao.addr,
            "--token-secret",
            "bao-token",
        ],
        None,
    );

    let dry = report(
        &env,
        &[
            "--json",
            "sync",
            "pull",
            "bao",
            "--prefix",
            "secret/fleet",
            "--dry-run",
        ],
    );
    assert_eq!(dry["created"].as_array().unwrap().len(), 1000);
    assert_eq!(
        env.run(&["show", "secret/fleet/d0/s0"], None).code,
        3,
        "a dry run wrote"
    );

    let t = Instant::now();
    let first = report(
        &env,
        &["--json", "sync", "pull", "bao", "--prefix", "secret/fleet"],
    );
    eprintln!("pull of 1000 paths: {:?}", t.elapsed());
    assert_eq!(first["paths"], 1000);
    assert_eq!(first["created"].as_array().unwrap().len(), 1000);
    // Naming rule: MOUNT/PATH; keys are fields, `value` is the value; upstream version kept.
    assert_eq!(env.run(&["get", "secret/fleet/d3/s13"], None).out(), "w13");
    assert_eq!(
        env.run(&["get", "secret/fleet/d3/s13#user"], None).out(),
        "u13"
    );
    let meta = report(&env, &["--json", "show", "secret/fleet/d3/s13"]);
    assert_eq!(meta["meta"]["upstream.version"], "2");
    assert_eq!(meta["meta"]["upstream.path"], "secret/fleet/d3/s13");
    assert_eq!(env.run(&["show", "secret/other/outside"], None).code, 3);

    let again = report(
        &env,
        &["--json", "sync", "pull", "bao", "--prefix", "secret/fleet"],
    );
    assert_eq!(again["unchanged"], 1000);
    assert!(
        again["created"].as_array().unwrap().is_empty()
            && again["updated"].as_array().unwrap().is_empty()
    );

    bao.put("fleet/d1/s1", r#"{"value":"edited"}"#);
    bao.put("fleet/d9/new", r#"{"value":"fresh"}"#);
    bao.destroy("fleet/d2/s2");
    bao.destroy("fleet/d4/s4");
    let third = report(
        &env,
        &["--json", "sync", "pull", "bao", "--prefix", "secret/fleet"],
    );
    assert_eq!(names(&third["updated"]), ["secret/fleet/d1/s1"]);
    assert_eq!(names(&third["created"]), ["secret/fleet/d9/new"]);
    assert_eq!(
        names(&third["deleted_upstream"]),
        ["secret/fleet/d2/s2", "secret/fleet/d4/s4"]
    );
    assert_eq!(third["unchanged"], 997);
    assert_eq!(
        env.run(&["get", "secret/fleet/d1/s1"], None).out(),
        "edited"
    );
    // Deleted upstream is only reported without --prune.
    assert_eq!(env.run(&["get", "secret/fleet/d2/s2"], None).out(), "w2");
    let pruned = report(
        &env,
        &[
            "--json",
            "sync",
            "pull",
            "bao",
            "--prefix",
            "secret/fleet",
            "--prune",
        ],
    );
    assert_eq!(
        names(&pruned["pruned"]),
        ["secret/fleet/d2/s2", "secret/fleet/d4/s4"]
    );
    assert_eq!(env.run(&["show", "secret/fleet/d2/s2"], None).code, 3);
    let audit = env.run(&["audit", "--action", "fetch"], None).out();
    assert!(
        audit.contains("bao:secret/fleet/ sync pull: 1000 paths"),
        "{audit}"
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (ca pem, cert pem, key pem).
fn certs() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tresor test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tls_with_a_ca_file_on_raft_with_a_file_audit_device() {
    let env = Env::new();
    let dir = env.path("bao");
    std::fs::create_dir_all(dir.join("raft")).unwrap();
    let (ca, cert, key) = certs();
    std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), &key).unwrap();
    let (port, cport) = (free_port(), free_port());
    let d = dir.display();
    let config = format!(
        r#"disable_mlock = true
storage "raft" {{
  path = "{d}/raft"
  node_id = "n1"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cport}"
  tls_cert_file = "{d}/cert.pem"
  tls_key_file = "{d}/key.pem"
}}
audit "file" "file-audit" {{
  options {{
    file_path = "{d}/audit.log"
  }}
}}
api_addr = "https://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cport}"
"#
    );
    std::fs::write(dir.join("config.hcl"), config).unwrap();
    let _server = Server(
        Command::new(bao_bin())
            .args(["server", "-config", &format!("{d}/config.hcl")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = format!("https://127.0.0.1:{port}");
    let bao = |token: Option<&str>, args: &[&str]| -> (bool, String) {
        let mut c = Command::new(bao_bin());
        c.args(args)
            .env("BAO_ADDR", &addr)
            .env("BAO_CACERT", dir.join("ca.pem"));
        if let Some(t) = token {
            c.env("BAO_TOKEN", t);
        }
        let o = c.output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let init = loop {
        let (ok, out) = bao(
            None,
            &[
                "operator",
                "init",
                "-key-shares=1",
                "-key-threshold=1",
                "-format=json",
            ],
        );
        if ok {
            break serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
        assert!(Instant::now() < deadline, "bao init: {out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let unseal = init["unseal_keys_b64"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    assert!(bao(None, &["operator", "unseal", &unseal]).0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bao(Some(&root), &["secrets", "enable", "-path=secret", "kv-v2"]).0 {
        assert!(Instant::now() < deadline, "raft did not elect a leader");
        std::thread::sleep(Duration::from_millis(300));
    }
    let audit_log = dir.join("audit.log");
    assert!(
        bao(
            Some(&root),
            &["kv", "put", "secret/app/tls", "value=over-tls"]
        )
        .0
    );

    env.set("root-token", root.as_bytes(), &[]);
    let ca_file = dir.join("ca.pem").display().to_string();
    env.run(
        &[
            "provider",
            "add",
            "tls",
            "--kind",
            "openbao",
            "--addr",
            &addr,
            "--ca-file",
            &ca_file,
            "--token-secret",
            "root-token",
        ],
        None,
    );
    env.run(
        &[
            "provider",
            "add",
            "untrusted",
            "--kind",
            "openbao",
            "--addr",
            &addr,
            "--token-secret",
            "root-token",
        ],
        None,
    );
    env.run(&["set", "a", "--remote", "tls:secret/app/tls"], None);
    env.run(&["set", "b", "--remote", "untrusted:secret/app/tls"], None);
    let ok = env.run(&["get", "a"], None);
    assert_eq!(ok.out(), "over-tls", "{}", ok.stderr);
    // Without the CA file the certificate is not trusted: no value, nothing cached.
    let bad = env.run(&["get", "b"], None);
    assert_eq!(bad.code, 8, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("untrusted:secret/app/tls"),
        "{}",
        bad.stderr
    );
    assert_eq!(env.run(&["show", "b"], None).code, 3);
    // The server's audit device saw tresor's read; tresor's outputs never show the token.
    let log = std::fs::read_to_string(&audit_log).unwrap();
    assert!(
        log.contains("secret/data/app/tls"),
        "the read did not reach the server"
    );
    for r in [&ok, &bad] {
        assert!(!r.stderr.contains(&root) && !r.out().contains(&root));
    }
    let file = std::fs::read(&env.store).unwrap();
    assert!(!file.windows(root.len()).any(|w| w == root.as_bytes()));
}

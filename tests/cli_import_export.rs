//! `tresor import` (dotenv, JSON, export documents) and `tresor export --plaintext`, on the
//! file and through a daemon; a round trip between two stores keeps binary values, fields and
//! metadata. Values are compared, never printed.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use cli_support::{Env, start, via};

const BINARY: &[u8] = &[0, 1, 2, 0xff, 0xfe, b'\n', 0x80];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn count(env: &Env) -> usize {
    let r = env.run(&["--json", "ls"], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    v.as_array().unwrap().len()
}

fn get(env: &Env, name: &str) -> Vec<u8> {
    let r = env.run(&["get", name], None);
    assert_eq!(r.code, 0, "get {name}: {}", r.err_only());
    r.stdout
}

#[test]
fn dotenv_import_names_secrets_after_the_keys() {
    let env = Env::new();
    let file = env.path(".env");
    std::fs::write(
        &file,
        "# deploy\nexport GITHUB_PAT=ghp_dotenv\nDB_URL=\"postgres://u:p@h/db\\n\"\n\
         RAW='a # b'\nEMPTY=\n",
    )
    .unwrap();
    let r = env.run(
        &["import", "--format", "dotenv", file.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert!(get(&env, "github-pat") == b"ghp_dotenv");
    assert!(get(&env, "db-url") == b"postgres://u:p@h/db\n");
    assert!(get(&env, "raw") == b"a # b");
    assert!(get(&env, "empty").is_empty());

    let r = env.run(
        &[
            "import",
            "--format",
            "dotenv",
            "--keep-names",
            "--scope",
            "user:x",
            "-",
        ],
        Some(b"API_KEY=k-1234\n"),
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    let r = env.run(&["get", "API_KEY", "--scope", "user:x"], None);
    assert!(r.stdout == b"k-1234");

    // A bad line: exit 2 naming it, and nothing written.
    let before = count(&env);
    let r = env.run(
        &["import", "--format", "dotenv", "-"],
        Some(b"NEW_ONE=1\nNEW_TWO=2\nthis is not an assignment\n"),
    );
    assert_eq!(r.code, 2, "{}", r.err_only());
    assert!(r.err_only().contains("stdin line 3:"), "{}", r.err_only());
    assert_eq!(count(&env), before);
}

#[test]
fn json_import_takes_strings_and_objects_and_names_bad_fields() {
    let env = Env::new();
    let doc = serde_json::json!({
        "plain": "v-plain",
        "blob": {"value_base64": b64(BINARY), "type": "certificate", "description": "a blob"},
        "db": {"type": "credentials", "fields": {"username": "alice", "password": "pw-1"}},
    });
    let r = env.run(
        &["import", "--format", "json", "-"],
        Some(doc.to_string().as_bytes()),
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert!(get(&env, "plain") == b"v-plain");
    assert!(get(&env, "blob") == BINARY);
    assert!(get(&env, "db#password") == b"pw-1");
    let r = env.run(&["--json", "show", "blob"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["type"], "certificate");
    assert_eq!(v["description"], "a blob");

    let r = env.run(
        &["import", "--format", "json", "-"],
        Some(br#"{"ok": "x", "bad": {"value": "secret-ish", "colour": "red"}}"#),
    );
    assert_eq!(r.code, 2);
    let err = r.err_only();
    assert!(
        err.contains("field \"bad\"") && err.contains("colour"),
        "{err}"
    );
    assert!(!err.contains("secret-ish"));
    let r = env.run(
        &["import", "--format", "json", "-"],
        Some(b"{\n  \"a\": \"x\",\n  oops\n}"),
    );
    assert_eq!(r.code, 2);
    assert!(r.err_only().contains("stdin line 3:"), "{}", r.err_only());
}

#[test]
fn export_needs_plaintext_writes_0600_and_never_overwrites() {
    let env = Env::new();
    env.set("a", b"value-a", &[]);
    let out = env.path("export.json");
    let o = out.to_str().unwrap();
    let r = env.run(&["export", "--format", "json", o], None);
    assert_eq!(r.code, 2, "{}", r.err_only());
    assert!(r.err_only().contains("--plaintext"));
    assert!(!out.exists());

    let r = env.run(&["export", "--format", "json", "--plaintext", o], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let first = std::fs::read(&out).unwrap();
    let r = env.run(&["export", "--format", "json", "--plaintext", o], None);
    assert_eq!(r.code, 7, "{}", r.err_only());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        first,
        "the export was overwritten"
    );

    // Audited: one export record per secret, naming it.
    let r = env.run(&["--json", "audit", "--action", "export"], None);
    let lines: Vec<&str> = r
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "one export record expected");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["outcome"], "ok");
    assert_eq!(v["name"], "a");
}

fn fill(env: &Env) {
    env.set(
        "github-pat",
        b"ghp_round_trip",
        &[
            "--type",
            "token",
            "--integration",
            "github",
            "--meta",
            "team=infra",
        ],
    );
    env.set(
        "blob",
        b64(BINARY).as_bytes(),
        &["--base64", "--description", "binary"],
    );
    let r = env.run(
        &[
            "set",
            "db",
            "--type",
            "credentials",
            "--scope",
            "team:ops",
            "--fields-from",
            "-",
        ],
        Some(br#"{"username": "alice", "password": "pw-rt"}"#),
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
}

fn assert_same(env: &Env) {
    assert!(get(env, "github-pat") == b"ghp_round_trip");
    assert!(get(env, "blob") == BINARY, "the binary value changed");
    let r = env.run(&["get", "db#password", "--scope", "team:ops"], None);
    assert!(r.stdout == b"pw-rt");
    let r = env.run(&["--json", "show", "github-pat"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["type"], "token");
    assert_eq!(v["integration"], "github");
    assert_eq!(v["meta"]["team"], "infra");
}

#[test]
fn export_then_import_round_trips_between_stores() {
    let a = Env::new();
    fill(&a);
    let out = a.path("all.json");
    let r = a.run(
        &[
            "export",
            "--format",
            "json",
            "--plaintext",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.err_only());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["tresor_export"], 1);
    let blob = doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "blob")
        .unwrap();
    assert_eq!(blob["value_base64"], b64(BINARY).as_str());
    assert!(blob.get("value").is_none());

    let b = Env::new();
    let r = b.run(&["import", "--format", "json", out.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    assert_eq!(count(&b), 3);
    assert_same(&b);
}

#[test]
fn import_and_export_through_the_daemon() {
    let src = Env::new();
    fill(&src);
    let out = src.path("all.json");
    let r = src.run(
        &[
            "export",
            "--format",
            "json",
            "--plaintext",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.err_only());

    let dst = Env::new();
    let d = start(&dst, true);
    let r = via(
        &dst,
        &d,
        &["import", "--format", "json", out.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let again = dst.path("again.json");
    let r = via(
        &dst,
        &d,
        &[
            "export",
            "--format",
            "json",
            "--plaintext",
            again.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    drop(d);
    let first: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let second: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&again).unwrap()).unwrap();
    // Same secrets, values and metadata (versions and times differ).
    let strip = |doc: &serde_json::Value| {
        let mut v = doc["secrets"].clone();
        for s in v.as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("version");
        }
        v
    };
    assert!(strip(&first) == strip(&second), "the exports differ");
    assert_same(&dst);
}

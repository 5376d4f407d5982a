//! Issue 7, API input and audit findings: `/v1/env` is capped and a refused request costs one
//! audit record (3); bodies are objects without `null` or positional structs (13); error
//! messages show their prefix once and a read-only store names the path (15); export and
//! field reads are audited as such (11); witnessed audit heads (8).
#![allow(clippy::unwrap_used)]

#[path = "cli_support/mod.rs"]
mod cli_support;
#[path = "daemon_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{TestDaemon, put, raw, status_of};
use tresor::{Action, Actor, Api, AuditQuery, Channel, Local, Outcome, PrincipalSpec, Role, Store};

/// A raw request as `token`'s agent.
fn request_as(token: &[u8], method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: tresord\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        String::from_utf8_lossy(token),
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn env_body(n: usize) -> Vec<u8> {
    let items: Vec<String> = (0..n).map(|i| format!("\"S{i}=V{i}\"")).collect();
    format!("{{\"secrets\":[{}]}}", items.join(",")).into_bytes()
}

fn audit_len(store: &Store) -> usize {
    store
        .audit(&Actor::direct_owner(), &AuditQuery::default())
        .unwrap()
        .len()
}

/// An agent with a bearer token and no grants: it may read no value at all.
fn add_reader(store: &Store) -> Vec<u8> {
    let spec = PrincipalSpec {
        name: "reader".into(),
        role: Role::Agent,
        uid: None,
        gid: None,
        token: true,
    };
    let (_, token) = store.principal_add(&Actor::direct_owner(), &spec).unwrap();
    token.unwrap().expose().to_vec()
}

/// Finding 3: 40,000 entries from a principal that may read nothing are refused at once, and
/// the log grows by at most one record (it grew by 40,000 before); 300 are over the cap; 256
/// refused secrets cost exactly one record.
#[test]
fn env_is_capped_and_a_refused_request_costs_one_record() {
    let mut token = Vec::new();
    let d = TestDaemon::start(|s| {
        for i in 0..256 {
            put(s, &format!("S{i}"), "v");
        }
        token = add_reader(s);
    });
    let c = d.client();
    let count = || c.audit(&AuditQuery::default()).unwrap().len();
    let before = count();
    let started = Instant::now();
    let answer = raw(
        &d.socket,
        &request_as(&token, "POST", "/v1/env", &env_body(40_000)),
    );
    let took = started.elapsed();
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("\"invalid_argument\""), "{answer}");
    assert!(answer.contains("the limit is 256"), "{answer}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        count() <= before + 1,
        "{} records for one request",
        count() - before
    );

    let answer = raw(
        &d.socket,
        &request_as(&token, "POST", "/v1/env", &env_body(300)),
    );
    assert_eq!(status_of(&answer), 400, "{answer}");

    let before = count();
    let answer = raw(
        &d.socket,
        &request_as(&token, "POST", "/v1/env", &env_body(256)),
    );
    assert_eq!(status_of(&answer), 403, "{answer}");
    let records = c.audit(&AuditQuery::default()).unwrap();
    assert_eq!(
        records.len(),
        before + 1,
        "one record for a refused request"
    );
    let last = records.last().unwrap();
    assert_eq!(last.principal, "reader");
    assert_eq!(last.outcome, Outcome::Denied);
    assert_eq!(last.name.as_deref(), Some("S0"));

    // An owner's 256 reads are each audited, as before.
    let before = count();
    let items: Vec<tresor::protocol::EnvItem> = (0..256)
        .map(|i| tresor::protocol::EnvItem::Short(format!("S{i}")))
        .collect();
    assert_eq!(c.env(&items).unwrap().len(), 256);
    assert_eq!(count(), before + 256);
}

/// Finding 3 in the library (direct mode shares the operation): a member reading secrets it
/// may not read is refused with one record, and no value is opened.
#[test]
fn a_members_refused_env_is_one_record_in_the_library() {
    let (_dir, _path, store) = common::new_store();
    for i in 0..50 {
        put(&store, &format!("S{i}"), "v");
    }
    let spec = PrincipalSpec {
        name: "mem".into(),
        role: Role::Member,
        uid: Some(4242),
        gid: None,
        token: false,
    };
    store.principal_add(&Actor::direct_owner(), &spec).unwrap();
    let before = audit_len(&store);
    let member = Actor {
        principal: "mem".into(),
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
    let items: Vec<tresor::protocol::EnvItem> = (0..50)
        .map(|i| tresor::protocol::EnvItem::Short(format!("S{i}")))
        .collect();
    let e = api.env(&items).unwrap_err();
    assert_eq!(e.code(), tresor::ErrorCode::PermissionDenied, "{e}");
    assert_eq!(audit_len(&api.store), before + 1);
}

/// Finding 13: a JSON array is not a struct, and `null` is not "left out".
#[test]
fn positional_bodies_and_nulls_are_400() {
    let d = TestDaemon::start(|s| put(s, "k", "v"));
    let answer = raw(
        &d.socket,
        &common::request("PUT", "/v1/principals/x", br#"["add","owner",1003]"#),
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("JSON object"), "{answer}");
    let c = d.client();
    assert!(c.principal_get("x").is_err(), "the principal was created");

    let answer = raw(
        &d.socket,
        &common::request(
            "POST",
            "/v1/secrets/k/rollback",
            br#"{"scope":null,"to":1}"#,
        ),
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("\"field\":\"scope\""), "{answer}");
    assert!(answer.contains("null is not allowed"), "{answer}");

    let answer = raw(
        &d.socket,
        &common::request("POST", "/v1/env", br#"{"secrets":[["k","org"]]}"#),
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    // The same bodies as objects still work.
    let answer = raw(
        &d.socket,
        &common::request(
            "POST",
            "/v1/secrets/k/rollback",
            br#"{"scope":"org","to":1}"#,
        ),
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
}

/// Finding 15: an error crossing the socket shows its prefix once (a refused peer saw
/// `unauthenticated: unauthenticated: …`). The store's only principal is another uid, so this
/// process is an unknown peer.
#[test]
fn errors_over_the_socket_show_their_prefix_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tresor");
    let mut someone = Actor::direct_owner();
    someone.principal = "someone-else".into();
    someone.uid = 4242;
    let store = Store::create(
        &path,
        &tresor::Passphrase::from(common::PASS),
        &tresor::KdfChoice::Insecure,
        &someone,
    )
    .unwrap();
    let d = TestDaemon::serve(dir, path, tresor::daemon::Config::new(store));
    let uid = rustix::process::getuid().as_raw();
    let e = d.client().list(&tresor::ListFilter::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("unauthenticated: uid {uid} is not a known principal")
    );
}

/// Unmounts on drop.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Finding 15: a store on a read-only file system says so and names the path (it said
/// `internal: cannot open the database`).
#[test]
fn a_read_only_store_names_the_path_and_the_permission() {
    use std::process::Command;
    if !rustix::process::getuid().is_root() {
        eprintln!("skipped: mounting a read-only file system needs root");
        return;
    }
    let env = cli_support::Env::empty();
    let ro = env.path("ro");
    std::fs::create_dir(&ro).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&ro)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let _mount = Mount(ro.clone());
    let store = ro.join("store.tresor");
    let run = |args: &[&str]| {
        let mut c = env.cmd();
        c.arg("--store")
            .arg(&store)
            .arg("--passphrase-file")
            .arg(&env.pass)
            .args(args);
        env.finish(c, None)
    };
    assert_eq!(run(&["init", "--insecure-kdf"]).code, 0);
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&ro)
        .status()
        .is_ok_and(|s| s.success());
    assert!(remounted, "remount read-only failed");
    let r = run(&["ls"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    insta::assert_snapshot!("read_only_store", r.err_only());
}

fn export_item(name: &str) -> tresor::ops::export::ExportItem {
    tresor::ops::export::ExportItem {
        name: name.into(),
        scope: None,
    }
}

/// Finding 11: an export over the socket records `export` naming every secret (it recorded
/// `read`); a field read records the field, and `audit --secret NAME` still finds it.
#[test]
fn exports_and_field_reads_are_audited_as_such() {
    let d = TestDaemon::start(|s| {
        put(s, "a", "1");
        put(s, "b", "2");
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("password".to_owned(), tresor::SecretBytes::from("pw"));
        let req = tresor::SetRequest {
            value: Some("dsn".into()),
            fields,
            ..Default::default()
        };
        s.set(&Actor::direct_owner(), "db", req).unwrap();
    });
    let c = d.client();
    let since = c.audit(&AuditQuery::default()).unwrap().last().unwrap().seq;
    let (values, missing) = c
        .export(&[export_item("a"), export_item("b"), export_item("gone")])
        .unwrap();
    let names: Vec<_> = values.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(missing, ["org/gone"]);
    let q = AuditQuery {
        after_seq: Some(since),
        ..AuditQuery::default()
    };
    let new: Vec<_> = c
        .audit(&q)
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.name.clone().unwrap_or_default(), r.outcome))
        .collect();
    assert_eq!(
        new,
        [
            (Action::Export, "a".into(), Outcome::Ok),
            (Action::Export, "b".into(), Outcome::Ok),
            (Action::Export, "gone".into(), Outcome::NotFound),
        ]
    );

    let field = tresor::ValueRef {
        scope: None,
        name: "db".into(),
        version: None,
        field: Some("password".into()),
    };
    assert_eq!(c.read(&field).unwrap().value.expose(), b"pw");
    let q = AuditQuery {
        secret: Some("db".into()),
        ..AuditQuery::default()
    };
    let found = c.audit(&q).unwrap();
    let last = found.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("db#password"));
    assert_eq!(last.action, Action::Read);
}

/// Finding 11 through the CLI: `tresor export` against the daemon records `export` for each
/// secret, not `read`.
#[test]
fn cli_export_through_the_daemon_records_export() {
    let env = cli_support::Env::new();
    env.set("k1", b"v1", &[]);
    env.set("k2", b"v2", &[]);
    let d = cli_support::start(&env, true);
    let out = env.path("export.json");
    let r = cli_support::via(
        &env,
        &d,
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
    let r = cli_support::via(&env, &d, &["--json", "audit", "--action", "export"], None);
    let names: Vec<String> = r
        .out()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].to_string())
        .collect();
    assert_eq!(names, ["\"k1\"", "\"k2\""]);
    let r = cli_support::via(&env, &d, &["--json", "audit", "--action", "read"], None);
    assert!(!r.out().contains("\"k1\""), "{}", r.out());
}

/// Finding 8: `audit head` prints SEQ:MAC; `audit verify --head` passes on the same log and
/// fails, naming why, on a store rolled back to an older copy (shorter) or replaced by a copy
/// that went another way (forked). Before, the rolled-back copy verified.
#[test]
fn verify_against_a_witnessed_head_finds_a_rolled_back_store() {
    let env = cli_support::Env::new();
    env.set("a", b"1", &[]);
    let head = |env: &cli_support::Env| {
        let r = env.run(&["audit", "head"], None);
        assert_eq!(r.code, 0, "{}", r.err_only());
        r.out().trim().to_owned()
    };
    let old = env.path("old.tresor");
    std::fs::copy(&env.store, &old).unwrap();
    let h1 = head(&env);
    let (seq, mac) = h1.split_once(':').unwrap();
    assert!(seq.parse::<u64>().unwrap() > 0);
    assert_eq!(mac.len(), 64);
    env.set("b", b"2", &[]);
    env.set("c", b"3", &[]);
    let h2 = head(&env);
    assert_ne!(h1, h2);
    let r = env.run(&["audit", "verify", "--head", &h2], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    // An older head is a prefix of the log: fine.
    let r = env.run(&["audit", "verify", "--head", &h1], None);
    assert_eq!(r.code, 0, "{}", r.err_only());

    // Rolled back: the copy passes a plain verify, but not against the later head.
    std::fs::copy(&old, &env.store).unwrap();
    let r = env.run(&["audit", "verify"], None);
    assert_eq!(r.code, 0, "{}", r.err_only());
    let r = env.run(&["audit", "verify", "--head", &h2], None);
    assert_eq!(r.code, 6, "{}", r.err_only());
    assert!(
        r.err_only().contains("records were removed"),
        "{}",
        r.err_only()
    );
    // Forked: the copy went on with other records past the witnessed seq.
    for k in ["x", "y", "z", "w"] {
        env.set(k, b"9", &[]);
    }
    let r = env.run(&["audit", "verify", "--head", &h2], None);
    assert_eq!(r.code, 6, "{}", r.err_only());
    assert!(r.err_only().contains("forked"), "{}", r.err_only());
    let r = env.run(&["audit", "verify", "--head", "12:zz"], None);
    assert_eq!(r.code, 2, "{}", r.err_only());
}

/// Finding 8: `tresord --audit-head-file` appends each new head; `audit verify --head FILE`
/// reads its last line and finds a store restored from a copy taken before.
#[test]
fn the_daemon_witnesses_heads_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("heads");
    let f = file.clone();
    let d = TestDaemon::start_with(|s| put(s, "a", "1"), move |c| c.audit_head_file = Some(f));
    // The older copy someone could restore: taken before the reads below.
    let copy = dir.path().join("copy.tresor");
    std::fs::copy(&d.store_path, &copy).unwrap();
    let c = d.client();
    // The daemon writes the starting head as it starts serving; the socket is bound (and
    // TestDaemon returns) a moment before.
    c.status().unwrap();
    let lines = || std::fs::read_to_string(&file).unwrap().lines().count();
    let at_start = lines();
    assert!(at_start >= 1, "the starting head is written");
    for _ in 0..3 {
        c.get_value("a", None, None).unwrap();
    }
    let head = c.audit_head().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with(&format!("{head} ")), "{last} vs {head}");
    assert!(lines() > at_start && lines() <= at_start + 3);
    // An operation that adds no record adds no line.
    let n = lines();
    c.status().unwrap();
    assert_eq!(lines(), n);
    let pass = dir.path().join("pass");
    cli_support::write_private(&pass, format!("{}\n", common::PASS));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tresor"))
        .env("TRESOR_SOCKET", dir.path().join("none.sock"))
        .arg("--store")
        .arg(&copy)
        .arg("--passphrase-file")
        .arg(&pass)
        .args(["audit", "verify", "--head"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("records were removed"), "{err}");
}

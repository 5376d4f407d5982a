//! Personal secrets (issue 11, SPEC §2; ChatBotKit's `kind = "personal"`): a member used to
//! get exit 4, "owners do", for any write. Now a member creates, changes, rolls back and
//! deletes secrets in its own `user:<self>` scope, through the daemon as its own uid, and is
//! still refused (and audited) in another user's scope, a team's and the org's.
//!
//! Runs as root (skipped otherwise): the client half is this test binary re-executed under a
//! test user's uid, with `TRESOR_PERSONAL_SOCKET` telling `helper` what to do.
#![allow(clippy::unwrap_used)]

#[path = "daemon_common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{TestDaemon, put};
use tresor::{Actor, Api, PrincipalSpec, Role, Scope, SetRequest};

const GROUP: &str = "tresortest";
const MEMBER: &str = "tresor-member";

/// The client half, when re-executed with `TRESOR_PERSONAL_SOCKET`; a no-op otherwise.
#[test]
fn helper() {
    let Ok(socket) = std::env::var("TRESOR_PERSONAL_SOCKET") else {
        return;
    };
    let op = std::env::var("TRESOR_PERSONAL_OP").unwrap();
    let c = tresor::Client::new(socket).unwrap();
    let (verb, target) = op.split_once(':').unwrap();
    let (scope, name) = match target.rsplit_once('/') {
        Some((s, n)) => (Some(s.parse::<Scope>().unwrap()), n),
        None => (None, target),
    };
    let out = match verb {
        "set" => c
            .set(
                name,
                &SetRequest {
                    value: Some(format!("{name}-value").as_str().into()),
                    scope: scope.clone().unwrap_or_default(),
                    ..Default::default()
                },
            )
            .map(|m| format!("v{}", m.version)),
        "get" => c
            .get_value(name, scope.as_ref(), None)
            .map(|v| String::from_utf8_lossy(v.value.expose()).into_owned()),
        "rollback" => c
            .rollback(name, scope.as_ref(), 1)
            .map(|m| format!("v{}", m.version)),
        "rm" => c.delete(name, scope.as_ref(), false).map(|_| "gone".into()),
        "cert" => c
            .certificates(vec![tresor::ops::refs::SecretId {
                name: name.to_owned(),
                scope,
            }])
            .map(|certs| {
                let expiry = certs.first().and_then(|x| x.not_after);
                format!("expires:{}", expiry.is_some())
            }),
        _ => panic!("unknown op {op}"),
    };
    match out {
        Ok(s) => println!("RESULT:ok:{s}"),
        Err(e) => println!("RESULT:err:{}", e.code()),
    }
}

fn ensure_member() -> (u32, u32) {
    let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    ok(Command::new("groupadd").args(["-f", GROUP]));
    if tresor::testing::user_id(MEMBER).is_none() {
        ok(Command::new("useradd").args([
            "-M",
            "-N",
            "-g",
            GROUP,
            "-s",
            "/usr/sbin/nologin",
            MEMBER,
        ]));
    }
    (
        tresor::testing::user_id(MEMBER).unwrap(),
        tresor::testing::group_id(GROUP).unwrap(),
    )
}

fn run_as(uid: u32, gid: u32, socket: &std::path::Path, op: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .env("TRESOR_PERSONAL_SOCKET", socket)
        .env("TRESOR_PERSONAL_OP", op)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT:").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("helper gave no result: {stdout}"))
        .to_owned()
}

#[test]
fn a_member_manages_its_personal_secrets_and_nothing_else() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: creating a test user and switching uid needs root");
        return;
    }
    let (uid, gid) = ensure_member();
    let dir = tempfile::Builder::new()
        .prefix("tresor-personal")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let store_path = dir.path().join("store.tresor");
    let store = tresor::Store::create(
        &store_path,
        &tresor::Passphrase::from(common::PASS),
        &tresor::KdfChoice::Insecure,
        &Actor::direct_owner(),
    )
    .unwrap();
    put(&store, "shared", "org-value");
    let owner = Actor::direct_owner();
    for (name, u) in [("mem", Some(uid)), ("bob", Some(4242))] {
        let spec = PrincipalSpec {
            name: name.into(),
            role: Role::Member,
            uid: u,
            gid: None,
            token: false,
        };
        store.principal_add(&owner, &spec).unwrap();
    }
    store
        .set(
            &owner,
            "bobs",
            SetRequest {
                value: Some("bob-value".into()),
                scope: Scope::User("bob".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let d = TestDaemon::serve_group(
        dir,
        store_path,
        tresor::daemon::Config::new(store),
        Some(gid),
    );
    let op = |o: &str| run_as(uid, gid, &d.socket, o);

    // Its own scope: create, change, read, roll back, delete.
    assert_eq!(op("set:user:mem/token"), "ok:v1");
    assert_eq!(op("set:user:mem/token"), "ok:v2");
    assert_eq!(op("get:token"), "ok:token-value");
    assert_eq!(op("rollback:user:mem/token"), "ok:v3");
    assert_eq!(op("rm:token"), "ok:gone");
    assert_eq!(op("get:user:mem/token"), "err:not_found");

    // Anywhere else: refused.
    assert_eq!(op("set:shared"), "err:permission_denied");
    assert_eq!(op("set:user:bob/bobs"), "err:permission_denied");
    assert_eq!(op("set:team:ops/x"), "err:permission_denied");
    assert_eq!(op("rm:org/shared"), "err:permission_denied");
    assert_eq!(op("rm:user:bob/bobs"), "err:permission_denied");
    assert_eq!(op("rollback:org/shared"), "err:permission_denied");

    // Audited, both ways, and the owner still sees everything intact.
    let c = d.client();
    let recs = c
        .audit(&tresor::AuditQuery {
            principal: Some("mem".into()),
            ..Default::default()
        })
        .unwrap();
    let has = |action: &str, outcome: &str| {
        recs.iter().any(|r| {
            r.action.to_string() == action && r.outcome.to_string() == outcome && r.uid == uid
        })
    };
    assert!(has("set", "ok") && has("delete", "ok") && has("rollback", "ok"));
    assert!(has("set", "denied") && has("delete", "denied"));
    assert_eq!(
        c.get_value("shared", None, None).unwrap().value.expose(),
        b"org-value"
    );
    assert!(c.audit_verify().unwrap().ok);
}

/// The rotation report of a member (issue 11): the certificate's expiry is parsed inside the
/// store, so the member learns it through the daemon without a value read — no denied-read
/// record, and `last_used` does not move.
#[test]
fn a_members_certificate_report_reads_no_value_through_the_daemon() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: creating a test user and switching uid needs root");
        return;
    }
    let (uid, gid) = ensure_member();
    let dir = tempfile::Builder::new()
        .prefix("tresor-personal")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let store_path = dir.path().join("store.tresor");
    let owner = Actor::direct_owner();
    let store = tresor::Store::create(
        &store_path,
        &tresor::Passphrase::from(common::PASS),
        &tresor::KdfChoice::Insecure,
        &owner,
    )
    .unwrap();
    let pem = rcgen::generate_simple_self_signed(vec!["api.example".into()])
        .unwrap()
        .cert
        .pem();
    let req = SetRequest {
        value: Some(pem.as_str().into()),
        secret_type: Some(tresor::SecretType::Certificate),
        ..Default::default()
    };
    store.set(&owner, "tls", req).unwrap();
    let spec = PrincipalSpec {
        name: "mem".into(),
        role: Role::Member,
        uid: Some(uid),
        gid: None,
        token: false,
    };
    store.principal_add(&owner, &spec).unwrap();
    let d = TestDaemon::serve_group(
        dir,
        store_path,
        tresor::daemon::Config::new(store),
        Some(gid),
    );
    let c = d.client();
    let count = || c.audit(&tresor::AuditQuery::default()).unwrap().len();
    let before = count();

    assert_eq!(
        run_as(uid, gid, &d.socket, "get:tls"),
        "err:permission_denied"
    );
    assert_eq!(count(), before + 1, "a denied value read is audited");
    assert_eq!(run_as(uid, gid, &d.socket, "cert:tls"), "ok:expires:true");
    assert_eq!(
        count(),
        before + 1,
        "the report adds no record, denied or not"
    );
    assert!(
        c.show("tls", None).unwrap().last_used.is_none(),
        "last_used did not move"
    );
}

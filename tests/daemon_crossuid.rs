//! Peers of other uids (run as root; skipped otherwise): an unknown uid is refused before its
//! request is read, and an agent matched by its uid reads and lists only what its grants
//! cover. The client side runs as this very test binary, re-executed under the test user's
//! uid (`CommandExt::uid`), with `TRESOR_XUID_SOCKET` telling `helper` what to do.
#![allow(clippy::unwrap_used)]

// The daemon tests keep their helpers apart from the store tests' `tests/common`.
#[path = "daemon_common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use tresor::Api;

use common::{TestDaemon, put};
use tresor::{Actor, Grant, PrincipalSpec, Role};

const GROUP: &str = "tresortest";
const AGENT: &str = "tresor-agent";
const STRANGER: &str = "tresor-stranger";

/// The client half, when re-executed with `TRESOR_XUID_SOCKET`; a no-op in a normal run.
#[test]
fn helper() {
    let Ok(socket) = std::env::var("TRESOR_XUID_SOCKET") else {
        return;
    };
    let op = std::env::var("TRESOR_XUID_OP").unwrap();
    let c = tresor::Client::new(socket).unwrap();
    let out = match op.split_once(':') {
        Some(("get", name)) => c
            .get_value(name, None, None)
            .map(|v| String::from_utf8_lossy(v.value.expose()).into_owned()),
        _ => c
            .list(&tresor::ListFilter::default())
            .map(|l| l.into_iter().map(|m| m.name).collect::<Vec<_>>().join(",")),
    };
    match out {
        Ok(s) => println!("RESULT:ok:{s}"),
        Err(e) => println!("RESULT:err:{}", e.code()),
    }
}

fn ensure_user(name: &str) -> (u32, u32) {
    let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    ok(Command::new("groupadd").args(["-f", GROUP]));
    if tresor::testing::user_id(name).is_none() {
        ok(Command::new("useradd").args([
            "-M",
            "-N",
            "-g",
            GROUP,
            "-s",
            "/usr/sbin/nologin",
            name,
        ]));
    }
    (
        tresor::testing::user_id(name).unwrap(),
        tresor::testing::group_id(GROUP).unwrap(),
    )
}

fn run_as(uid: u32, gid: u32, socket: &std::path::Path, op: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .env("TRESOR_XUID_SOCKET", socket)
        .env("TRESOR_XUID_OP", op)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT:").map(|(_, r)| r))
        .unwrap_or_else(|| {
            panic!(
                "helper gave no result: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

#[test]
fn unknown_uids_are_refused_and_agents_see_only_their_grants() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: creating test users and switching uid needs root");
        return;
    }
    let (agent_uid, gid) = ensure_user(AGENT);
    let (stranger_uid, _) = ensure_user(STRANGER);

    // A directory the test users may traverse (tempdirs are 0700).
    let dir = tempfile::Builder::new()
        .prefix("tresor-xuid")
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
    put(&store, "github-pat", "ghp_xuid");
    put(&store, "github-app", "app_xuid");
    put(&store, "aws-key", "aws_xuid");
    let owner = Actor::direct_owner();
    store
        .principal_add(
            &owner,
            &PrincipalSpec {
                name: "xbot".into(),
                role: Role::Agent,
                uid: Some(agent_uid),
                gid: None,
                token: false,
            },
        )
        .unwrap();
    store
        .grant(
            &owner,
            "xbot",
            &Grant {
                pattern: "github-p*".into(),
                scope: None,
                expires: None,
            },
        )
        .unwrap();
    let d = TestDaemon::serve_group(
        dir,
        store_path,
        tresor::daemon::Config::new(store),
        Some(gid),
    );

    assert_eq!(
        run_as(stranger_uid, gid, &d.socket, "list"),
        "err:unauthenticated"
    );
    assert_eq!(
        run_as(stranger_uid, gid, &d.socket, "get:github-pat"),
        "err:unauthenticated"
    );
    assert_eq!(
        run_as(agent_uid, gid, &d.socket, "get:github-pat"),
        "ok:ghp_xuid"
    );
    assert_eq!(
        run_as(agent_uid, gid, &d.socket, "get:github-app"),
        "err:permission_denied"
    );
    assert_eq!(
        run_as(agent_uid, gid, &d.socket, "get:aws-key"),
        "err:permission_denied"
    );
    assert_eq!(run_as(agent_uid, gid, &d.socket, "list"), "ok:github-pat");

    let reads = d
        .client()
        .audit(&tresor::AuditQuery {
            principal: Some("xbot".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(reads.iter().any(|r| r.uid == agent_uid && r.exe.is_some()));
    assert!(d.client().audit_verify().unwrap().ok);
}

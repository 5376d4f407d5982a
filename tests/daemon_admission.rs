//! Finding 1 of issue 7 (run as root; skipped otherwise): one uid, known or not, cannot starve
//! the others. A non-principal holding 1,000 connections and a member holding 1,000 do not
//! keep another member's `GET /v1/status` from answering within a second; the stranger's
//! refusals become one audit summary. The client halves run as this very test binary,
//! re-executed under the test users' uids, with `TRESOR_ADM_OP` telling `helper` what to do.
#![allow(clippy::unwrap_used)]

#[path = "daemon_common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDaemon;
use tresor::{Action, Actor, Api, AuditQuery, PrincipalSpec, Role};

const GROUP: &str = "tresoradm";
const STRANGER: &str = "tresor-adm-stranger";
const HOG: &str = "tresor-adm-hog";
const MEMBER: &str = "tresor-adm-member";
const HELD: usize = 1000;

/// The client half, when re-executed with `TRESOR_ADM_OP`; a no-op in a normal run.
#[test]
fn helper() {
    let Ok(op) = std::env::var("TRESOR_ADM_OP") else {
        return;
    };
    let socket = std::env::var("TRESOR_ADM_SOCKET").unwrap();
    if let Some(n) = op.strip_prefix("hold:") {
        raise_open_files();
        let held: Vec<_> = (0..n.parse::<usize>().unwrap())
            .filter_map(|_| std::os::unix::net::UnixStream::connect(&socket).ok())
            .collect();
        println!("HELD {}", held.len());
        // Hold them until the parent closes our stdin.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        drop(held);
        return;
    }
    let t0 = Instant::now();
    let r = tresor::Client::new(&socket).and_then(|c| c.status());
    let ms = t0.elapsed().as_millis();
    match r {
        Ok(s) => println!("RESULT:ok:{ms}:{}", s.principal.unwrap_or_default()),
        Err(e) => println!("RESULT:err:{ms}:{}", e.code()),
    }
}

fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
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

fn as_user(uid: u32, gid: u32, socket: &std::path::Path, op: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "helper", "--nocapture", "--test-threads=1"])
        .env("TRESOR_ADM_SOCKET", socket)
        .env("TRESOR_ADM_OP", op)
        .uid(uid)
        .gid(gid);
    c
}

/// Starts a child holding `n` connections as `uid`; returns once they are open.
fn hold(uid: u32, gid: u32, socket: &std::path::Path, n: usize) -> Child {
    let mut child = as_user(uid, gid, socket, &format!("hold:{n}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let held = lines
        .find_map(|l| {
            l.unwrap()
                .split_once("HELD ")
                .map(|(_, n)| n.trim().to_owned())
        })
        .expect("the holder reports");
    assert_eq!(held.parse::<usize>().unwrap(), n, "connections opened");
    child
}

/// `GET /v1/status` as `uid`: (ok, milliseconds, principal or error code).
fn status_as(uid: u32, gid: u32, socket: &std::path::Path) -> (bool, u128, String) {
    let out = as_user(uid, gid, socket, "status").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT:").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no result: {stdout}"));
    let mut parts = r.splitn(3, ':');
    let ok = parts.next() == Some("ok");
    let ms = parts.next().unwrap().parse().unwrap();
    (ok, ms, parts.next().unwrap_or_default().to_owned())
}

fn release(mut child: Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

#[test]
fn one_uid_cannot_starve_the_others() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: creating test users and switching uid needs root");
        return;
    }
    raise_open_files();
    let (stranger, gid) = ensure_user(STRANGER);
    let (hog, _) = ensure_user(HOG);
    let (member, _) = ensure_user(MEMBER);
    let dir = tempfile::Builder::new()
        .prefix("tresor-adm")
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
    for (name, uid) in [("hog", hog), ("member", member)] {
        let spec = PrincipalSpec {
            name: name.into(),
            role: Role::Member,
            uid: Some(uid),
            gid: None,
            token: false,
        };
        store.principal_add(&Actor::direct_owner(), &spec).unwrap();
    }
    let d = TestDaemon::serve_group(
        dir,
        store_path,
        tresor::daemon::Config::new(store),
        Some(gid),
    );
    assert_eq!(status_as(member, gid, &d.socket).2, "member");

    let strangers = hold(stranger, gid, &d.socket, HELD);
    let hogs = hold(hog, gid, &d.socket, HELD);
    for _ in 0..2 {
        let (ok, ms, who) = status_as(member, gid, &d.socket);
        assert!(ok && who == "member", "{who}");
        assert!(ms < 1000, "status took {ms} ms");
    }
    let (ok, _, code) = status_as(stranger, gid, &d.socket);
    assert!(!ok && code == "unauthenticated", "{code}");
    // The owner (this process) is served too.
    let t0 = Instant::now();
    assert!(!d.client().status().unwrap().locked);
    assert!(t0.elapsed() < Duration::from_secs(1));
    release(strangers);
    release(hogs);

    // The stranger's 1,001 refusals are one summary, written at the latest when the store locks.
    let c = d.client();
    c.lock().unwrap();
    c.unlock(&tresor::Passphrase::from(common::PASS)).unwrap();
    let refused = c
        .audit(&AuditQuery {
            action: Some(Action::Connect),
            ..Default::default()
        })
        .unwrap();
    let mine: Vec<_> = refused.iter().filter(|r| r.uid == stranger).collect();
    assert_eq!(mine.len(), 1, "{refused:?}");
    let count: u64 = mine[0]
        .name
        .as_deref()
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(count, HELD as u64 + 1, "{:?}", mine[0]);
    assert!(
        refused.iter().all(|r| r.uid != hog),
        "members are not refused"
    );
    assert!(c.audit_verify().unwrap().ok);
}

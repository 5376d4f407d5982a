//! `GET /v1/watch`, the long poll behind `run --watch`: it answers when a watched secret may
//! have changed (the store's change generation moved) or when its timeout passes, never
//! because of reads; it answers at once when the store is locked under it; policy applies to
//! the versions it reports.
#![allow(clippy::unwrap_used, clippy::many_single_char_names)]

#[path = "daemon_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{TestDaemon, put};
use tresor::Api;
use tresor::ops::watch::Watch;

fn watch(secrets: &str, since: Option<u64>, timeout_ms: Option<u64>) -> Watch {
    Watch {
        secrets: secrets.into(),
        since,
        timeout_ms,
    }
}

#[test]
fn a_new_version_answers_a_waiting_watch_and_reads_do_not() {
    let d = TestDaemon::start(|s| {
        put(s, "api-token", "v1");
        put(s, "other", "x");
    });
    let c = d.client();
    let first = Api::call(&c, watch("api-token,org/other,missing", None, None)).unwrap();
    let versions: Vec<_> = first.secrets.iter().map(|s| s.version).collect();
    assert_eq!(versions, vec![Some(1), Some(1), None]);
    assert_eq!(first.secrets[1].name, "org/other");

    // Nothing changes: the timeout ends the wait, with the same generation.
    let t = Instant::now();
    let same = Api::call(&c, watch("api-token", Some(first.generation), Some(300))).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(same.generation, first.generation);

    // A waiting watch is answered by a write, not by a read.
    let socket = d.socket.clone();
    let since = first.generation;
    let waiter = std::thread::spawn(move || {
        let c = tresor::Client::new(socket).unwrap();
        let t = Instant::now();
        let s = Api::call(&c, watch("api-token", Some(since), Some(20_000))).unwrap();
        (s, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(c.get_value("api-token", None, None).is_ok());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiter.is_finished(), "a read answered the watch");
    c.set(
        "api-token",
        &tresor::SetRequest {
            value: Some("v2".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let (s, took) = waiter.join().unwrap();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_ne!(s.generation, since);
    assert_eq!(s.secrets[0].version, Some(2));

    // Bad lists are refused.
    let e = Api::call(&c, watch("", None, None)).unwrap_err();
    assert_eq!(e.code().to_string(), "invalid_argument");
    let e = Api::call(&c, watch("a/../b", None, None)).unwrap_err();
    assert_eq!(e.code().to_string(), "invalid_argument");
}

#[test]
fn locking_answers_a_waiting_watch_at_once() {
    let d = TestDaemon::start(|s| put(s, "api-token", "v1"));
    let c = d.client();
    let g = Api::call(&c, watch("api-token", None, None))
        .unwrap()
        .generation;
    let socket = d.socket.clone();
    let waiter = std::thread::spawn(move || {
        let c = tresor::Client::new(socket).unwrap();
        let t = Instant::now();
        let r = Api::call(&c, watch("api-token", Some(g), Some(20_000)));
        (r.is_ok(), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    c.lock().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "lock waited for the watch"
    );
    let (_, took) = waiter.join().unwrap();
    assert!(
        took < Duration::from_secs(5),
        "the watch held on for {took:?}"
    );
}

#[test]
fn an_agent_watches_only_what_its_grants_cover_and_denials_are_audited() {
    use tresor::{Grant, PrincipalSpec, Role};
    let d = TestDaemon::start(|s| {
        put(s, "github-pat", "ghp");
        put(s, "aws-key", "aws");
    });
    let owner = d.client();
    let (_, token) = owner
        .principal_add(&PrincipalSpec {
            name: "watch-bot".into(),
            role: Role::Agent,
            uid: None,
            gid: None,
            token: true,
        })
        .unwrap();
    let grant = Grant {
        pattern: "github-*".into(),
        scope: None,
        expires: None,
    };
    owner.grant("watch-bot", &grant).unwrap();
    let bot = tresor::Client::new(&d.socket)
        .unwrap()
        .with_token(&token.unwrap())
        .unwrap();
    let ok = Api::call(&bot, watch("github-pat", None, None)).unwrap();
    assert_eq!(ok.secrets[0].version, Some(1));
    let e = Api::call(&bot, watch("github-pat,aws-key", None, None)).unwrap_err();
    assert_eq!(e.code().to_string(), "permission_denied");
    let denied = owner
        .audit(&tresor::AuditQuery {
            principal: Some("watch-bot".into()),
            outcome: Some(tresor::Outcome::Denied),
            ..Default::default()
        })
        .unwrap();
    assert!(denied.iter().any(|r| r.name.as_deref() == Some("aws-key")));
}

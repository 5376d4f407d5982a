//! Regressions found by an independent review of the first complete tree:
//!
//! - Two principal changes running at once (the daemon runs handlers on several threads) both
//!   started from the same cached record, so the second commit could silently undo the first —
//!   an acknowledged revoke or grant lost.
//! - An agent registered with `--uid U --gid G` was matched on uid alone without a token, and
//!   an agent registered with `--gid G` alone could never be matched.
//! - A Unix user who unlocked the file directly was treated as a stored principal of the same
//!   name (say, a member) instead of as owner.
//! - One damaged value record failed every read of its group commit, unaudited.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Table, TestStore, edit, owner, rows, value};
use tresor::ReadRequest;
use tresor::{Action, Actor, AuditQuery, Channel, Error, Grant, Outcome, PrincipalSpec, Role};

fn agent(name: &str, uid: Option<u32>, gid: Option<u32>) -> PrincipalSpec {
    PrincipalSpec {
        name: name.into(),
        role: Role::Agent,
        uid,
        gid,
        token: false,
    }
}

#[test]
fn concurrent_grants_to_one_principal_are_all_kept() {
    let (_t, store) = TestStore::create();
    store
        .principal_add(&owner(), &agent("bot", Some(4000), None))
        .unwrap();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let g = Grant {
                    pattern: format!("secret-{i}"),
                    scope: None,
                    expires: None,
                };
                store.grant(&owner(), "bot", &g).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let bot = store.principal_get(&owner(), "bot").unwrap();
    let mut patterns: Vec<_> = bot.grants.iter().map(|g| g.pattern.clone()).collect();
    patterns.sort();
    let want: Vec<_> = (0..8).map(|i| format!("secret-{i}")).collect();
    assert_eq!(patterns, want, "every acknowledged grant is kept");
}

#[test]
fn agents_are_matched_by_uid_and_gid_or_gid_alone() {
    let (_t, store) = TestStore::create();
    store
        .principal_add(&owner(), &agent("uid-and-gid", Some(4100), Some(500)))
        .unwrap();
    store
        .principal_add(&owner(), &agent("gid-only", None, Some(600)))
        .unwrap();
    assert_eq!(
        store.authenticate(4100, 500, None).unwrap().name,
        "uid-and-gid"
    );
    assert!(matches!(
        store.authenticate(4100, 501, None),
        Err(Error::Unauthenticated { .. })
    ));
    assert_eq!(
        store.authenticate(4200, 600, None).unwrap().name,
        "gid-only"
    );
    assert!(matches!(
        store.authenticate(4200, 601, None),
        Err(Error::Unauthenticated { .. })
    ));
}

#[test]
fn whoever_unlocks_the_file_is_owner_whatever_a_stored_principal_of_that_name_is() {
    let (_t, store) = TestStore::create();
    let me = owner();
    // A stored member that happens to share the direct user's name (not the first owner's
    // record, which has that name already: use a second direct actor).
    let other = Actor {
        principal: "alice".into(),
        ..owner()
    };
    store
        .principal_add(
            &me,
            &PrincipalSpec {
                name: "alice".into(),
                role: Role::Member,
                uid: Some(4300),
                gid: None,
                token: false,
            },
        )
        .unwrap();
    assert_eq!(other.channel, Channel::Direct);
    store.set(&other, "written-by-alice", value("v")).unwrap();
    assert_eq!(
        store
            .get_value(&other, "written-by-alice", None, None)
            .unwrap()
            .value
            .expose(),
        b"v"
    );
}

#[test]
fn a_damaged_value_fails_only_its_own_read_in_a_batch_and_both_are_audited() {
    let (t, store) = TestStore::create();
    store.set(&owner(), "good", value("good-value")).unwrap();
    store.set(&owner(), "bad", value("bad-value")).unwrap();
    drop(store);
    // Damage exactly the row that holds `bad`'s current value (format 2: its secrets row),
    // found by elimination.
    let all = rows(&t.path, Table::Secrets);
    let mut bad_key = None;
    for (k, v) in &all {
        edit(&t.path, Table::Secrets, &[], std::slice::from_ref(k));
        let store = t.unlock();
        let gone = store.get_value(&owner(), "bad", None, None).is_err();
        drop(store);
        edit(&t.path, Table::Secrets, &[(k.clone(), v.clone())], &[]);
        if gone {
            bad_key = Some((k.clone(), v.clone()));
            break;
        }
    }
    let (k, mut v) = bad_key.unwrap();
    let last = v.len() - 1;
    v[last] ^= 1;
    edit(&t.path, Table::Secrets, &[(k, v)], &[]);

    let store = t.unlock();
    let req = |name: &str| ReadRequest {
        actor: owner(),
        name: name.into(),
        scope: None,
        version: None,
        field: None,
    };
    let out = store.read_batch(&[req("good"), req("bad")]);
    assert_eq!(out[0].as_ref().unwrap().value.expose(), b"good-value");
    assert!(
        matches!(out[1], Err(Error::Integrity { .. })),
        "{:?}",
        out[1]
    );
    let reads = store
        .audit(
            &owner(),
            &AuditQuery {
                action: Some(Action::Read),
                ..AuditQuery::default()
            },
        )
        .unwrap();
    let last_two: Vec<_> = reads
        .iter()
        .rev()
        .take(2)
        .map(|r| (r.name.clone(), r.outcome))
        .collect();
    assert!(
        last_two.contains(&(Some("good".into()), Outcome::Ok)),
        "{last_two:?}"
    );
    assert!(
        last_two.contains(&(Some("bad".into()), Outcome::Error)),
        "{last_two:?}"
    );
}

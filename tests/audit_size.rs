//! Audit records stay small (SPEC §10: ≤ 160 bytes each): a caller's executable path is stored
//! once and referenced from each record, and reads back whole — after a reopen and a rekey too.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Table, TestStore, owner, rows, value};
use tresor::{Actor, AuditQuery, Channel, PrincipalSpec, Role, Store};

const EXE: &str = "/opt/agents/ci-runner/venv/lib/python3.11/site-packages/bin/deploy-agent";

fn agent() -> Actor {
    Actor {
        principal: "deploy-bot".into(),
        role: Some(Role::Agent),
        uid: 4242,
        gid: 4242,
        pid: 31337,
        exe: Some(EXE.into()),
        channel: Channel::Socket,
    }
}

fn exes_of(store: &Store) -> Vec<Option<String>> {
    store
        .audit(
            &owner(),
            &AuditQuery {
                principal: Some("deploy-bot".into()),
                ..AuditQuery::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|r| r.exe.clone())
        .collect()
}

#[test]
fn records_reference_the_executable_and_stay_under_160_bytes() {
    let (t, mut store) = TestStore::create();
    store
        .principal_add(
            &owner(),
            &PrincipalSpec {
                name: "deploy-bot".into(),
                role: Role::Agent,
                uid: Some(4242),
                gid: None,
                token: false,
            },
        )
        .unwrap();
    store
        .grant(
            &owner(),
            "deploy-bot",
            &tresor::Grant {
                pattern: "deploy-*".into(),
                scope: None,
                expires: None,
            },
        )
        .unwrap();
    store
        .set(&owner(), "deploy-key", value("k".repeat(150)))
        .unwrap();
    for _ in 0..200 {
        store.get_value(&agent(), "deploy-key", None, None).unwrap();
    }
    let exes = exes_of(&store);
    assert_eq!(exes.len(), 200);
    assert!(
        exes.iter().all(|e| e.as_deref() == Some(EXE)),
        "the path reads back whole"
    );

    store.rekey(&owner(), &mut |_, _| {}).unwrap();
    assert!(
        exes_of(&store).iter().all(|e| e.as_deref() == Some(EXE)),
        "after rekey"
    );
    drop(store);

    let store = t.unlock();
    assert!(
        exes_of(&store).iter().all(|e| e.as_deref() == Some(EXE)),
        "after reopen"
    );
    assert!(store.audit_verify().unwrap().ok);
    drop(store);

    let audit = rows(&t.path, Table::Audit);
    let reads: Vec<_> = audit.iter().rev().take(200).collect();
    let avg = reads.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() / reads.len();
    assert!(
        avg <= 160,
        "{avg} bytes per record (key + MAC + sealed entry)"
    );
    assert!(
        !reads
            .iter()
            .any(|(_, v)| v.windows(EXE.len()).any(|w| w == EXE.as_bytes())),
        "no record holds the path (they are sealed anyway)"
    );
}

//! The audit log: one record per value read and per change, denials included; a chain whose
//! edits, deletions, reorderings and lost tail are found by `audit_verify` at the first broken
//! seq; queries by secret, principal, action, outcome, time and limit.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Table, TestStore, edit, get, owner, put, read, rows, value};
use tresor::ReadRequest;
use tresor::{
    Action, Actor, AuditQuery, AuditRecord, Channel, Error, Grant, Outcome, PrincipalSpec, Role,
    Scope, Store,
};

fn all(store: &Store) -> Vec<AuditRecord> {
    store.audit(&owner(), &AuditQuery::default()).unwrap()
}

fn new_since(store: &Store, before: usize) -> Vec<AuditRecord> {
    all(store).split_off(before)
}

fn socket_actor(name: &str, role: Role, uid: u32) -> Actor {
    Actor {
        principal: name.into(),
        role: Some(role),
        uid,
        gid: uid,
        pid: 777,
        exe: Some("/usr/bin/agent".into()),
        channel: Channel::Socket,
    }
}

fn add(store: &Store, name: &str, role: Role, uid: u32) {
    store
        .principal_add(
            &owner(),
            &PrincipalSpec {
                name: name.into(),
                role,
                uid: Some(uid),
                gid: None,
                token: false,
            },
        )
        .unwrap();
}

#[test]
fn one_record_per_read_and_per_change() {
    let (_t, store) = TestStore::create();
    let n = all(&store).len();
    store.set(&owner(), "k", value("secret-1")).unwrap();
    let rec = new_since(&store, n);
    assert_eq!(rec.len(), 1);
    assert_eq!(
        (rec[0].action, rec[0].outcome, rec[0].version),
        (Action::Set, Outcome::Ok, Some(1))
    );
    assert_eq!(rec[0].scope.as_deref(), Some("org"));
    assert_eq!(rec[0].name.as_deref(), Some("k"));
    assert_eq!(rec[0].principal, owner().principal);
    assert_eq!(rec[0].channel, Channel::Direct);
    assert_eq!(rec[0].uid, owner().uid);
    assert_eq!(rec[0].pid, owner().pid);
    assert_eq!(rec[0].exe, owner().exe);

    let n = all(&store).len();
    read(&store, "k").unwrap();
    let rec = new_since(&store, n);
    assert_eq!(rec.len(), 1);
    assert_eq!(
        (rec[0].action, rec[0].outcome, rec[0].version),
        (Action::Read, Outcome::Ok, Some(1))
    );

    let n = all(&store).len();
    assert!(read(&store, "missing").is_err());
    let rec = new_since(&store, n);
    assert_eq!(rec.len(), 1);
    assert_eq!(
        (rec[0].action, rec[0].outcome),
        (Action::Read, Outcome::NotFound)
    );
    assert_eq!(rec[0].name.as_deref(), Some("missing"));

    // Metadata reads are not audited.
    let n = all(&store).len();
    store.show(&owner(), "k", None).unwrap();
    store
        .list(&owner(), &tresor::ListFilter::default())
        .unwrap();
    assert_eq!(all(&store).len(), n);

    let n = all(&store).len();
    let items = (0..3).map(|i| (format!("i{i}"), value("v"))).collect();
    store.set_many(&owner(), items).unwrap();
    store.set(&owner(), "k", value("secret-2")).unwrap();
    store.rollback(&owner(), "k", None, 1).unwrap();
    store.delete(&owner(), "k", None, false).unwrap();
    let added = new_since(&store, n);
    let imported: Vec<_> = added[..3].iter().map(|r| r.name.as_deref()).collect();
    assert_eq!(
        imported,
        vec![Some("i0"), Some("i1"), Some("i2")],
        "input order"
    );
    let actions: Vec<_> = added.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        vec![
            Action::Import,
            Action::Import,
            Action::Import,
            Action::Set,
            Action::Rollback,
            Action::Delete
        ]
    );

    // A batch of reads commits one record per read.
    let n = all(&store).len();
    let reqs: Vec<ReadRequest> = (0..3)
        .map(|i| ReadRequest {
            actor: owner(),
            name: format!("i{i}"),
            scope: None,
            version: None,
            field: None,
        })
        .collect();
    assert!(store.read_batch(&reqs).iter().all(Result::is_ok));
    assert_eq!(new_since(&store, n).len(), 3);

    // Seqs are 1..=n with no gaps, and no record carries a value.
    let records = all(&store);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
    }
    let json = serde_json::to_string(&records).unwrap();
    assert!(!json.contains("secret-1") && !json.contains("secret-2"));
    assert!(store.audit_verify().unwrap().ok);
}

#[test]
fn denials_are_audited() {
    let (_t, store) = TestStore::create();
    store.set(&owner(), "db-password", value("pw")).unwrap();
    store.set(&owner(), "github-pat", value("ghp")).unwrap();
    add(&store, "alice", Role::Member, 4001);
    add(&store, "deploy-bot", Role::Agent, 4002);
    store
        .grant(
            &owner(),
            "deploy-bot",
            &Grant {
                pattern: "github-*".into(),
                scope: None,
                expires: None,
            },
        )
        .unwrap();
    let alice = socket_actor("alice", Role::Member, 4001);
    let bot = socket_actor("deploy-bot", Role::Agent, 4002);
    let stranger = socket_actor("mallory", Role::Agent, 6666);

    let n = all(&store).len();
    let denied = |r: Result<_, Error>| {
        assert!(
            matches!(
                r,
                Err(Error::PermissionDenied { .. } | Error::Unauthenticated { .. })
            ),
            "expected a denial"
        );
    };
    denied(
        store
            .get_value(&alice, "db-password", None, None)
            .map(|_| ()),
    );
    denied(store.get_value(&bot, "db-password", None, None).map(|_| ()));
    denied(
        store
            .get_value(&stranger, "github-pat", None, None)
            .map(|_| ()),
    );
    denied(store.set(&alice, "db-password", value("x")).map(|_| ()));
    denied(store.delete(&bot, "github-pat", None, true));
    denied(store.audit(&alice, &AuditQuery::default()).map(|_| ()));
    let granted = store.get_value(&bot, "github-pat", None, None).unwrap();
    assert_eq!(granted.value.expose(), b"ghp");

    let rec = new_since(&store, n);
    let summary: Vec<_> = rec
        .iter()
        .map(|r| (r.principal.as_str(), r.action, r.outcome))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("alice", Action::Read, Outcome::Denied),
            ("deploy-bot", Action::Read, Outcome::Denied),
            ("mallory", Action::Read, Outcome::Denied),
            ("alice", Action::Set, Outcome::Denied),
            ("deploy-bot", Action::Delete, Outcome::Denied),
            ("alice", Action::List, Outcome::Denied),
            ("deploy-bot", Action::Read, Outcome::Ok),
        ]
    );
    let bot_read = rec.last().unwrap();
    assert_eq!(bot_read.channel, Channel::Socket);
    assert_eq!((bot_read.uid, bot_read.pid), (4002, 777));
    assert_eq!(bot_read.exe.as_deref(), Some("/usr/bin/agent"));
    assert_eq!(bot_read.name.as_deref(), Some("github-pat"));
    assert!(store.audit_verify().unwrap().ok);
}

/// A store whose chain has `n` records; returned closed, with the last seq.
fn chain(n: usize) -> (TestStore, u64) {
    let (t, store) = TestStore::create();
    store.set(&owner(), "k", value("v")).unwrap();
    while all(&store).len() < n {
        read(&store, "k").unwrap();
    }
    let last = all(&store).last().unwrap().seq;
    drop(store);
    (t, last)
}

fn verify(t: &TestStore) -> tresor::VerifyReport {
    t.unlock().audit_verify().unwrap()
}

#[test]
fn an_intact_chain_verifies() {
    let (t, last) = chain(12);
    let report = verify(&t);
    assert!(report.ok);
    assert_eq!(report.first_broken_seq, None);
    // The unlock that ran verify appended one more record.
    assert_eq!(report.records, last + 1);
}

#[test]
fn an_edited_record_is_named() {
    let (t, _) = chain(12);
    let key = 6u64.to_be_bytes();
    let mut row = get(&t.path, Table::Audit, &key).unwrap();
    let last = row.len() - 1;
    row[last] ^= 0x01;
    put(&t.path, Table::Audit, &key, &row);
    let r = verify(&t);
    assert!(!r.ok);
    assert_eq!(r.first_broken_seq, Some(6));
    assert_eq!(r.records, 5);
}

#[test]
fn a_record_with_a_recomputed_looking_mac_is_named() {
    // Replacing a record with another one (valid envelope, wrong place) breaks the chain there.
    let (t, _) = chain(12);
    let seven = get(&t.path, Table::Audit, &7u64.to_be_bytes()).unwrap();
    put(&t.path, Table::Audit, &4u64.to_be_bytes(), &seven);
    assert_eq!(verify(&t).first_broken_seq, Some(4));
}

#[test]
fn a_deleted_record_is_named() {
    let (t, _) = chain(12);
    edit(&t.path, Table::Audit, &[], &[5u64.to_be_bytes().to_vec()]);
    let r = verify(&t);
    assert!(!r.ok);
    assert_eq!(r.first_broken_seq, Some(5));
}

#[test]
fn reordered_records_are_named() {
    let (t, _) = chain(12);
    let a = get(&t.path, Table::Audit, &8u64.to_be_bytes()).unwrap();
    let b = get(&t.path, Table::Audit, &9u64.to_be_bytes()).unwrap();
    edit(
        &t.path,
        Table::Audit,
        &[
            (8u64.to_be_bytes().to_vec(), b),
            (9u64.to_be_bytes().to_vec(), a),
        ],
        &[],
    );
    assert_eq!(verify(&t).first_broken_seq, Some(8));
}

#[test]
fn a_truncated_tail_is_named() {
    let (t, last) = chain(12);
    let cut: Vec<Vec<u8>> = (last - 2..=last)
        .map(|s| s.to_be_bytes().to_vec())
        .collect();
    edit(&t.path, Table::Audit, &[], &cut);
    // Verify on the file as cut (read through a store that appends after the head).
    let r = verify(&t);
    assert!(!r.ok);
    assert_eq!(r.first_broken_seq, Some(last - 2));
    assert_eq!(r.records, last - 3);

    // Without any later append, the head still names the missing tail.
    let (t, last) = chain(12);
    let store = t.unlock();
    let head_last = last + 1; // the unlock above appended one
    drop(store);
    edit(
        &t.path,
        Table::Audit,
        &[],
        &[head_last.to_be_bytes().to_vec()],
    );
    let store = t.unlock();
    // This unlock appended seq head_last + 1 after the head; the gap is at head_last.
    assert_eq!(
        store.audit_verify().unwrap().first_broken_seq,
        Some(head_last)
    );
}

#[test]
fn the_whole_log_removed_is_named() {
    let (t, last) = chain(5);
    let keys: Vec<Vec<u8>> = rows(&t.path, Table::Audit)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len() as u64, last);
    edit(&t.path, Table::Audit, &[], &keys);
    assert_eq!(verify(&t).first_broken_seq, Some(1));
}

#[test]
fn queries_filter_and_limit() {
    let (_t, store) = TestStore::create();
    add(&store, "alice", Role::Member, 4001);
    let alice = socket_actor("alice", Role::Member, 4001);
    store.set(&owner(), "a", value("1")).unwrap();
    store.set(&owner(), "b", value("2")).unwrap();
    for _ in 0..3 {
        read(&store, "a").unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mid = jiff::Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    read(&store, "b").unwrap();
    assert!(store.get_value(&alice, "a", None, None).is_err());
    let _ = store.get_value(&owner(), "zzz", Some(&Scope::Org), None);

    let q = |q: AuditQuery| store.audit(&owner(), &q).unwrap();
    let by_secret = q(AuditQuery {
        secret: Some("a".into()),
        ..Default::default()
    });
    assert_eq!(by_secret.len(), 5, "set, three reads, alice's denial");
    assert!(by_secret.iter().all(|r| r.name.as_deref() == Some("a")));

    let reads_of_a = q(AuditQuery {
        secret: Some("a".into()),
        action: Some(Action::Read),
        outcome: Some(Outcome::Ok),
        ..Default::default()
    });
    assert_eq!(reads_of_a.len(), 3);

    let by_alice = q(AuditQuery {
        principal: Some("alice".into()),
        ..Default::default()
    });
    assert_eq!(by_alice.len(), 1);
    assert_eq!(by_alice[0].outcome, Outcome::Denied);

    let missing = q(AuditQuery {
        outcome: Some(Outcome::NotFound),
        ..Default::default()
    });
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].name.as_deref(), Some("zzz"));

    let after = q(AuditQuery {
        since: Some(mid),
        ..Default::default()
    });
    assert_eq!(after.len(), 3, "read of b, alice's denial, the miss");
    let before = q(AuditQuery {
        until: Some(mid),
        ..Default::default()
    });
    assert_eq!(before.len() + after.len(), q(AuditQuery::default()).len());

    let everything = q(AuditQuery::default());
    let last2 = q(AuditQuery {
        limit: Some(2),
        ..Default::default()
    });
    assert_eq!(
        last2,
        everything[everything.len() - 2..].to_vec(),
        "the newest, in order"
    );
    let tail = q(AuditQuery {
        after_seq: Some(everything[everything.len() - 3].seq),
        ..Default::default()
    });
    assert_eq!(tail, everything[everything.len() - 2..].to_vec());
    let limited_reads = q(AuditQuery {
        action: Some(Action::Read),
        limit: Some(1),
        ..Default::default()
    });
    assert_eq!(limited_reads.len(), 1);
    assert_eq!(limited_reads[0].name.as_deref(), Some("zzz"));
}

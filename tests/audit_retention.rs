//! Audit retention (SPEC §3): `audit prune` removes old records after checking them, leaves a
//! sealed checkpoint so that `audit verify` still passes and says what was pruned, survives
//! rekey and backup, cannot be forged or rolled back by editing the file, and lets later
//! appends reuse the freed space; `audit export` writes JSON lines and is audited;
//! `tresord --audit-retention` prunes on its own.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Table, TestStore, edit, owner, read, rows, value};
use tresor::{
    Action, Actor, AuditQuery, AuditRecord, Channel, Error, Outcome, PrincipalSpec, Role, Store,
};

fn all(store: &Store) -> Vec<AuditRecord> {
    store.audit(&owner(), &AuditQuery::default()).unwrap()
}

/// A store with `n` reads of one secret in its log.
fn with_reads(n: usize) -> (TestStore, Store) {
    let (t, store) = TestStore::create();
    store.set(&owner(), "db-password", value("v1")).unwrap();
    for _ in 0..n {
        read(&store, "db-password").unwrap();
    }
    (t, store)
}

fn later() -> jiff::Timestamp {
    std::thread::sleep(std::time::Duration::from_millis(5));
    let t = jiff::Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    t
}

#[test]
fn prune_keeps_verify_passing_and_says_what_it_removed() {
    let (_t, store) = with_reads(20);
    let old = all(&store);
    let cut = later();
    store.set(&owner(), "api-key", value("k")).unwrap();
    read(&store, "api-key").unwrap();

    let r = store.audit_prune(&owner(), cut).unwrap();
    assert_eq!(r.pruned, old.len() as u64);
    assert_eq!(r.first_seq, Some(1));
    assert_eq!(r.before_seq, old.last().unwrap().seq + 1);

    let left = all(&store);
    assert_eq!(
        left.first().unwrap().seq,
        r.before_seq,
        "old records are gone"
    );
    let last = left.last().unwrap();
    assert_eq!(last.action, Action::Prune);
    let note = last.name.as_deref().unwrap();
    assert!(
        note.contains(&format!("pruned {} records", old.len())),
        "{note}"
    );
    assert!(note.contains("read 20"), "counts by action: {note}");

    let v = store.audit_verify().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.records, left.len() as u64);
    assert_eq!(v.pruned_records, Some(old.len() as u64));
    assert_eq!(v.pruned_before_seq, Some(r.before_seq));

    // Nothing older: nothing removed, nothing appended.
    let n = all(&store).len();
    let again = store.audit_prune(&owner(), cut).unwrap();
    assert_eq!(again.pruned, 0);
    assert_eq!(all(&store).len(), n);

    // A second prune adds up, and the chain still verifies from the new checkpoint.
    read(&store, "api-key").unwrap();
    let cut2 = later();
    read(&store, "api-key").unwrap();
    let r2 = store.audit_prune(&owner(), cut2).unwrap();
    assert_eq!(r2.total_pruned, r.pruned + r2.pruned);
    let v = store.audit_verify().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.pruned_records, Some(r2.total_pruned));
}

#[test]
fn a_pruned_log_survives_rekey_backup_and_reopen() {
    let (t, mut store) = with_reads(5);
    let cut = later();
    read(&store, "db-password").unwrap();
    store.audit_prune(&owner(), cut).unwrap();

    store.rekey(&owner(), &mut |_, _| {}).unwrap();
    let v = store.audit_verify().unwrap();
    assert!(v.ok, "after rekey: {v:?}");
    assert!(v.pruned_records.is_some());

    let copy = t.dir.path().join("backup.tresor");
    store.backup(&owner(), &copy).unwrap();
    drop(store);
    let store = t.unlock();
    assert!(store.audit_verify().unwrap().ok, "after reopen");
    let b = Store::open(&copy)
        .unwrap()
        .unlock(&tresor::UnlockSecret::Passphrase(common::pass()), &owner())
        .unwrap();
    let v = b.audit_verify().unwrap();
    assert!(v.ok && v.pruned_records.is_some(), "the backup: {v:?}");
}

#[test]
fn a_removed_or_rolled_back_checkpoint_breaks_verify() {
    let (t, store) = with_reads(5);
    let cut = later();
    read(&store, "db-password").unwrap();
    store.audit_prune(&owner(), cut).unwrap();
    drop(store);
    let first_base = rows(&t.path, Table::Meta)
        .into_iter()
        .find(|(k, _)| k == b"audit_base")
        .unwrap();
    let store = t.unlock();
    let cut = later();
    read(&store, "db-password").unwrap();
    store.audit_prune(&owner(), cut).unwrap();
    drop(store);

    // The older checkpoint put back: the chain no longer starts where it says.
    edit(&t.path, Table::Meta, std::slice::from_ref(&first_base), &[]);
    let v = t.unlock().audit_verify().unwrap();
    assert!(!v.ok, "{v:?}");

    // No checkpoint at all: the log looks cut from the front, and says so at seq 1.
    edit(&t.path, Table::Meta, &[], &[b"audit_base".to_vec()]);
    let v = t.unlock().audit_verify().unwrap();
    assert!(!v.ok);
    assert_eq!(v.first_broken_seq, Some(1));
}

#[test]
fn prune_refuses_to_remove_a_broken_chain() {
    let (t, store) = with_reads(6);
    drop(store);
    let audit = rows(&t.path, Table::Audit);
    let (key, mut bytes) = audit[2].clone();
    bytes[0] ^= 1; // its MAC
    edit(&t.path, Table::Audit, &[(key, bytes)], &[]);
    let store = t.unlock();
    let n = all(&store).len();
    let err = store.audit_prune(&owner(), later()).unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
    assert!(err.to_string().contains("seq 3"), "{err}");
    assert_eq!(all(&store).len(), n, "nothing removed");
}

#[test]
fn members_cannot_prune_and_the_denial_is_audited() {
    let (_t, store) = with_reads(2);
    store
        .principal_add(
            &owner(),
            &PrincipalSpec {
                name: "alice".into(),
                role: Role::Member,
                uid: Some(4001),
                gid: None,
                token: false,
            },
        )
        .unwrap();
    let alice = Actor {
        principal: "alice".into(),
        role: Some(Role::Member),
        uid: 4001,
        gid: 4001,
        pid: 9,
        exe: None,
        channel: Channel::Socket,
    };
    let n = all(&store).len();
    let e = store.audit_prune(&alice, later()).unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
    let recs = all(&store);
    assert_eq!(recs.len(), n + 1, "only the denial was added");
    let last = recs.last().unwrap();
    assert_eq!(
        (last.action, last.outcome),
        (Action::Prune, Outcome::Denied)
    );
}

#[test]
fn pruned_space_is_reused_by_later_appends() {
    let (t, store) = with_reads(1000);
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    let full = size(&t.path);
    for _ in 0..3 {
        store.audit_prune(&owner(), later()).unwrap();
        for _ in 0..1000 {
            read(&store, "db-password").unwrap();
        }
    }
    let after = size(&t.path);
    // Three more rounds of 1,000 records in the space of the first round (give or take
    // redb's page allocation), not four times the file.
    assert!(
        after <= full + full / 4,
        "file grew from {full} to {after} bytes under retention"
    );
    assert!(store.audit_verify().unwrap().ok);
}

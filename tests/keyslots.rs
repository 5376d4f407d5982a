//! Keyslots: passphrase, key file and recovery unlock; `passwd` rewraps without touching a
//! record; `rekey` re-seals everything; the last slot stays; wrong passphrases are audited.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASS, Table, TestStore, owner, pass, read, rows, value};
use tresor::{
    Action, AuditQuery, Error, KdfChoice, NewKeyslot, Outcome, Passphrase, SecretBytes, SetRequest,
    Store, UnlockSecret,
};

fn keyfile_bytes() -> SecretBytes {
    SecretBytes::new((0..48u8).map(|b| b.wrapping_mul(37) ^ 0x5a).collect())
}

fn unlock_with(t: &TestStore, secret: &UnlockSecret) -> Result<Store, Error> {
    Store::open(&t.path)?.unlock(secret, &owner())
}

/// A store with a few secrets (values, fields, versions) and a principal.
fn populated() -> (TestStore, Store) {
    let (t, store) = TestStore::create();
    for i in 0..5 {
        store
            .set(&owner(), &format!("s{i}"), value(format!("value {i}")))
            .unwrap();
    }
    store.set(&owner(), "s0", value("value 0 v2")).unwrap();
    let req = SetRequest {
        fields: [("password".to_owned(), SecretBytes::from("pw"))].into(),
        ..value("with field")
    };
    store.set(&owner(), "f", req).unwrap();
    store
        .principal_add(
            &owner(),
            &tresor::PrincipalSpec {
                name: "deploy-bot".into(),
                role: tresor::Role::Agent,
                uid: Some(4242),
                gid: None,
                token: false,
            },
        )
        .unwrap();
    (t, store)
}

#[test]
fn passphrase_unlocks_and_wrong_passphrase_says_so() {
    let (t, store) = TestStore::create();
    store.set(&owner(), "a", value("x")).unwrap();
    drop(store);
    let wrong = UnlockSecret::Passphrase(Passphrase::from("not it"));
    let err = unlock_with(&t, &wrong).unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase));
    assert_eq!(err.to_string(), "wrong passphrase");
    let store = t.unlock();
    assert_eq!(read(&store, "a").unwrap(), b"x");
}

#[test]
fn failed_unlock_is_staged_then_sealed_into_the_chain() {
    let (t, store) = TestStore::create();
    drop(store);
    let wrong = UnlockSecret::Passphrase(Passphrase::from("guess"));
    for _ in 0..2 {
        assert!(matches!(
            unlock_with(&t, &wrong),
            Err(Error::WrongPassphrase)
        ));
    }
    // While locked the attempts wait in the staging table, in the clear (nothing secret).
    assert_eq!(rows(&t.path, Table::Staging).len(), 2);
    let store = t.unlock();
    let q = AuditQuery {
        action: Some(Action::Unlock),
        ..AuditQuery::default()
    };
    let unlocks = store.audit(&owner(), &q).unwrap();
    let denied: Vec<_> = unlocks
        .iter()
        .filter(|r| r.outcome == Outcome::Denied)
        .collect();
    assert_eq!(denied.len(), 2);
    for r in &denied {
        assert_eq!(r.name.as_deref(), Some("staged attempt"));
        assert_eq!(r.uid, owner().uid);
        assert_eq!(r.pid, owner().pid);
    }
    assert_eq!(unlocks.last().unwrap().outcome, Outcome::Ok);
    assert!(store.audit_verify().unwrap().ok);
    drop(store);
    assert!(
        rows(&t.path, Table::Staging).is_empty(),
        "sealed and cleared"
    );
}

#[test]
fn keyfile_and_recovery_slots_unlock() {
    let (t, store) = populated();
    let (kf_id, shown) = store
        .keyslot_add(&owner(), NewKeyslot::Keyfile(keyfile_bytes()))
        .unwrap();
    assert!(shown.is_none());
    let (rec_id, recovery) = store.keyslot_add(&owner(), NewKeyslot::Recovery).unwrap();
    let recovery = recovery.unwrap();
    assert_ne!(kf_id, rec_id);
    let kinds: Vec<_> = store.keyslots().unwrap().iter().map(|k| k.kind).collect();
    assert_eq!(kinds, vec!["passphrase", "keyfile", "recovery"]);
    drop(store);

    let by_file = unlock_with(&t, &UnlockSecret::Keyfile(keyfile_bytes())).unwrap();
    assert_eq!(read(&by_file, "s1").unwrap(), b"value 1");
    drop(by_file);

    let by_recovery = unlock_with(&t, &UnlockSecret::Recovery(recovery.clone())).unwrap();
    assert_eq!(read(&by_recovery, "f").unwrap(), b"with field");
    drop(by_recovery);

    // Recovery keys are typed by people: case, spaces and dashes do not matter.
    let typed: Vec<u8> = recovery
        .expose()
        .iter()
        .map(|c| {
            if *c == b'-' {
                b' '
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    unlock_with(&t, &UnlockSecret::Recovery(SecretBytes::new(typed))).unwrap();

    // Another key file of the right length is just wrong.
    let other = SecretBytes::new(vec![7; 32]);
    assert!(matches!(
        unlock_with(&t, &UnlockSecret::Keyfile(other)),
        Err(Error::WrongPassphrase)
    ));
    // A short key file is refused before any slot is tried.
    let short = SecretBytes::new(vec![7; 16]);
    assert!(matches!(
        unlock_with(&t, &UnlockSecret::Keyfile(short)),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn short_keyfile_slot_is_refused() {
    let (_t, store) = TestStore::create();
    let r = store.keyslot_add(&owner(), NewKeyslot::Keyfile(SecretBytes::new(vec![1; 31])));
    assert!(matches!(r, Err(Error::InvalidArgument { .. })));
    assert_eq!(store.keyslots().unwrap().len(), 1);
}

#[test]
fn passwd_rewraps_without_touching_any_record() {
    let (t, store) = populated();
    drop(store);
    let before: Vec<_> = Table::SEALED.iter().map(|&tb| rows(&t.path, tb)).collect();
    let slot_before = rows(&t.path, Table::Keyslots);

    let store = t.unlock();
    let new = Passphrase::from("a brand new passphrase");
    store
        .change_passphrase(&owner(), &new, &KdfChoice::Insecure)
        .unwrap();
    drop(store);

    for (tb, old) in Table::SEALED.iter().zip(&before) {
        let now = rows(&t.path, *tb);
        if *tb == Table::Audit {
            // Two records were appended (the unlock and the passwd); the old ones are intact.
            assert_eq!(&now[..old.len()], old.as_slice(), "audit rows changed");
        } else {
            assert_eq!(&now, old, "{tb:?} changed");
        }
    }
    assert_ne!(rows(&t.path, Table::Keyslots), slot_before);

    assert!(matches!(t.try_unlock(), Err(Error::WrongPassphrase)));
    let store = unlock_with(&t, &UnlockSecret::Passphrase(new)).unwrap();
    assert_eq!(read(&store, "s0").unwrap(), b"value 0 v2");
    assert!(store.audit_verify().unwrap().ok);
}

#[test]
fn rekey_reseals_everything_and_keeps_the_unlocking_slot() {
    let (t, store) = populated();
    store
        .keyslot_add(&owner(), NewKeyslot::Keyfile(keyfile_bytes()))
        .unwrap();
    drop(store);
    let before: Vec<_> = Table::SEALED.iter().map(|&tb| rows(&t.path, tb)).collect();

    let mut store = t.unlock();
    let mut calls = 0;
    let removed = store
        .rekey(&owner(), &mut |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
    assert!(calls > 0, "progress is reported");
    assert_eq!(removed, vec![1], "the key file slot cannot be re-wrapped");
    // Still usable in this session.
    assert_eq!(read(&store, "s3").unwrap(), b"value 3");
    drop(store);

    for (tb, old) in Table::SEALED.iter().zip(&before) {
        let now = rows(&t.path, *tb);
        for (_, old_value) in old {
            assert!(
                now.iter().all(|(_, v)| v != old_value),
                "{tb:?}: a ciphertext survived the rekey"
            );
        }
        if *tb != Table::Audit {
            assert_eq!(now.len(), old.len(), "{tb:?} lost or gained rows");
            // Name hashes are keyed by the data key too: every key changed.
            for (old_key, _) in old {
                assert!(now.iter().all(|(k, _)| k != old_key), "{tb:?}: key kept");
            }
        }
    }
    let slots = rows(&t.path, Table::Keyslots);
    assert_eq!(slots.len(), 1);

    // The old passphrase still opens it: it was the unlocking slot, re-wrapped.
    let store = t.unlock();
    for i in 1..5 {
        assert_eq!(
            read(&store, &format!("s{i}")).unwrap(),
            format!("value {i}").as_bytes()
        );
    }
    assert_eq!(read(&store, "s0").unwrap(), b"value 0 v2");
    let v1 = store.get_value(&owner(), "s0", None, Some(1)).unwrap();
    assert_eq!(v1.value.expose(), b"value 0");
    let f = store.get_value(&owner(), "f", None, None).unwrap();
    assert_eq!(f.fields["password"].expose(), b"pw");
    assert!(store.principal_get(&owner(), "deploy-bot").is_ok());
    let report = store.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    let rekeys = store
        .audit(
            &owner(),
            &AuditQuery {
                action: Some(Action::Rekey),
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(rekeys.len(), 1);
    drop(store);
    assert!(matches!(
        unlock_with(&t, &UnlockSecret::Keyfile(keyfile_bytes())),
        Err(Error::WrongPassphrase)
    ));
}

#[test]
fn the_last_keyslot_cannot_be_removed() {
    let (t, store) = TestStore::create();
    let err = store.keyslot_remove(&owner(), 0).unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(matches!(
        store.keyslot_remove(&owner(), 7),
        Err(Error::NotFound { .. })
    ));
    // With a second slot, the one this session unlocked with is still kept...
    let (kf, _) = store
        .keyslot_add(&owner(), NewKeyslot::Keyfile(keyfile_bytes()))
        .unwrap();
    assert!(matches!(
        store.keyslot_remove(&owner(), 0),
        Err(Error::Conflict { .. })
    ));
    // ...but the other one can go, and then the store still opens with the passphrase only.
    store.keyslot_remove(&owner(), kf).unwrap();
    drop(store);
    assert!(matches!(
        unlock_with(&t, &UnlockSecret::Keyfile(keyfile_bytes())),
        Err(Error::WrongPassphrase)
    ));
    let store = t.unlock();
    assert_eq!(store.keyslots().unwrap().len(), 1);
    assert!(matches!(
        store.keyslot_remove(&owner(), 0),
        Err(Error::Conflict { .. })
    ));
}

#[test]
fn a_second_passphrase_slot_unlocks() {
    let (t, store) = TestStore::create();
    let other = Passphrase::from("second passphrase");
    store
        .keyslot_add(
            &owner(),
            NewKeyslot::Passphrase(other.clone(), KdfChoice::Insecure),
        )
        .unwrap();
    drop(store);
    unlock_with(&t, &UnlockSecret::Passphrase(other)).unwrap();
    unlock_with(&t, &UnlockSecret::Passphrase(Passphrase::from(PASS))).unwrap();
    let locked = Store::open(&t.path).unwrap();
    assert!(locked.is_insecure());
    assert_eq!(locked.keyslots().unwrap().len(), 2);
    let _ = pass();
}

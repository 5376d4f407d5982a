//! `keyslot_add` and `change_passphrase` accepted `KdfChoice::Insecure` on a store created with
//! real Argon2id parameters: `KdfChoice::Insecure` resolved to m = 8 KiB, t = 1 whatever the
//! store, and the slot was written. Unlock range-checks a slot's parameters against the
//! store's header (insecure parameters only in stores created with `--insecure-kdf`) and
//! returned `integrity` at the first such slot, before trying the others. So `passwd` with the
//! insecure choice bricked the store (its only passphrase slot now "failed integrity"), and an
//! added insecure slot turned every wrong passphrase into `integrity`. Now the insecure choice
//! is refused with `invalid_argument` on a secure store, and unlock skips a slot whose
//! parameters are out of range and tries the rest.
#![allow(clippy::unwrap_used)]

use redb::ReadableTable;
use tresor::KdfParams;
use tresor::{Actor, Error, KdfChoice, NewKeyslot, Passphrase, Store, UnlockSecret};

/// The floor's parameters with the smallest memory the check allows: a real (secure) store.
fn secure() -> KdfChoice {
    KdfChoice::Params(KdfParams::MIN)
}

#[test]
fn the_insecure_kdf_is_refused_on_a_secure_store_and_unlock_survives_bad_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.tresor");
    let me = Actor::direct_owner();
    let pass = Passphrase::from("real passphrase");
    let store = Store::create(&path, &pass, &secure(), &me).unwrap();

    let r = store.change_passphrase(&me, &Passphrase::from("new"), &KdfChoice::Insecure);
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    let r = store.keyslot_add(
        &me,
        NewKeyslot::Passphrase(Passphrase::from("second"), KdfChoice::Insecure),
    );
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    assert_eq!(store.keyslots().unwrap().len(), 1);
    drop(store);

    let store = Store::open(&path)
        .unwrap()
        .unlock(&UnlockSecret::Passphrase(pass), &me)
        .unwrap();
    drop(store);
    let wrong = Store::open(&path)
        .unwrap()
        .unlock(&UnlockSecret::Passphrase(Passphrase::from("nope")), &me);
    assert!(matches!(wrong, Err(Error::WrongPassphrase)));
}

#[test]
fn a_slot_with_out_of_range_parameters_does_not_hide_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.tresor");
    let me = Actor::direct_owner();
    let first = Passphrase::from("first passphrase");
    let second = Passphrase::from("second passphrase");
    let store = Store::create(&path, &first, &secure(), &me).unwrap();
    store
        .keyslot_add(&me, NewKeyslot::Passphrase(second.clone(), secure()))
        .unwrap();
    drop(store);

    // Slot 0's memory cost rewritten to 8 KiB, below the floor of a secure store.
    {
        let slots: redb::TableDefinition<u32, &[u8]> = redb::TableDefinition::new("keyslots");
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(slots).unwrap();
            let mut raw = t.get(0).unwrap().unwrap().value().to_vec();
            raw[2..6].copy_from_slice(&8u32.to_be_bytes());
            t.insert(0, raw.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    let unlock = |p: &Passphrase| {
        Store::open(&path)
            .unwrap()
            .unlock(&UnlockSecret::Passphrase(p.clone()), &me)
            .map(drop)
    };
    unlock(&second).unwrap();
    // No slot opens and one is damaged: that is what is reported.
    assert!(matches!(unlock(&first), Err(Error::Integrity { .. })));
}

//! Format 2 keeps a secret's current value inside its own record and only older versions in
//! the `values` table (`src/store/history.rs`). These tests check what a user sees — every kept
//! version reads back, rollback, pruning, deletion, fingerprints — through the library against
//! a real file, and check the file: no `values` row is ever the current version's (the rows
//! there are exactly the kept older versions).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Table, TestStore, owner, read, rows, value};
use tresor::{Error, SecretBytes, SetRequest, Store};

fn get(store: &Store, name: &str, version: Option<u64>) -> Result<Vec<u8>, Error> {
    store
        .get_value(&owner(), name, None, version)
        .map(|v| v.value.expose().to_vec())
}

fn versions(store: &Store, name: &str) -> Vec<u64> {
    store
        .versions(&owner(), name, None)
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect()
}

/// The `values` rows the file should hold: one per kept version that is not current.
fn older_versions(store: &Store) -> usize {
    store
        .list(&owner(), &tresor::ListFilter::default())
        .unwrap()
        .iter()
        .map(|m| m.versions.len() - 1)
        .sum()
}

/// Closes the store and checks the file's `values` table against the kept older versions.
#[track_caller]
fn assert_only_history_in_values(t: &TestStore, store: Store) {
    let want = older_versions(&store);
    drop(store);
    assert_eq!(
        rows(&t.path, Table::Values).len(),
        want,
        "the values table holds exactly the kept older versions"
    );
}

fn is_version_not_found<T>(r: &Result<T, Error>) -> bool {
    matches!(
        r,
        Err(Error::NotFound {
            what: "version",
            ..
        })
    )
}

#[test]
fn a_new_secret_has_no_values_row() {
    let (t, store) = TestStore::create();
    store.set(&owner(), "one", value("only")).unwrap();
    assert_eq!(read(&store, "one").unwrap(), b"only");
    drop(store);
    assert!(rows(&t.path, Table::Values).is_empty());
    let store = t.unlock();
    assert_eq!(read(&store, "one").unwrap(), b"only");
    assert_eq!(get(&store, "one", Some(1)).unwrap(), b"only");
}

#[test]
fn set_set_rollback_and_every_version_reads_back() {
    let (t, store) = TestStore::create();
    let first = SetRequest {
        fields: [("user".to_owned(), SecretBytes::from("alice"))].into(),
        ..value("v1")
    };
    store.set(&owner(), "k", first).unwrap();
    store.set(&owner(), "k", value("v2")).unwrap();
    store.set(&owner(), "k", value("v3")).unwrap();
    assert_eq!(read(&store, "k").unwrap(), b"v3");
    assert_eq!(get(&store, "k", Some(1)).unwrap(), b"v1");
    assert_eq!(get(&store, "k", Some(2)).unwrap(), b"v2");
    assert_eq!(get(&store, "k", Some(3)).unwrap(), b"v3");
    let v1 = store.get_value(&owner(), "k", None, Some(1)).unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.fields["user"].expose(), b"alice");
    assert!(is_version_not_found(&get(&store, "k", Some(4))));
    assert_only_history_in_values(&t, store);

    let store = t.unlock();
    let m = store.rollback(&owner(), "k", None, 1).unwrap();
    assert_eq!(m.version, 4);
    assert_eq!(m.versions.last().unwrap().rolled_back_from, Some(1));
    assert_eq!(m.fields, vec!["user"]);
    let cur = store.get_value(&owner(), "k", None, None).unwrap();
    assert_eq!((cur.version, cur.value.expose()), (4, &b"v1"[..]));
    assert_eq!(cur.fields["user"].expose(), b"alice");
    // The value it replaced went into the history.
    assert_eq!(get(&store, "k", Some(3)).unwrap(), b"v3");
    assert_eq!(get(&store, "k", Some(1)).unwrap(), b"v1");

    // Rolling back to the current version publishes it again.
    let m = store.rollback(&owner(), "k", None, 4).unwrap();
    assert_eq!(m.version, 5);
    assert_eq!(read(&store, "k").unwrap(), b"v1");
    assert_eq!(get(&store, "k", Some(4)).unwrap(), b"v1");
    assert_eq!(versions(&store, "k"), vec![1, 2, 3, 4, 5]);
    assert_only_history_in_values(&t, store);

    // A metadata-only change keeps the value and writes no history.
    let store = t.unlock();
    let meta = SetRequest {
        description: Some("described".into()),
        ..SetRequest::default()
    };
    let m = store.set(&owner(), "k", meta).unwrap();
    assert_eq!(m.version, 5);
    assert_eq!(read(&store, "k").unwrap(), b"v1");
    assert_eq!(get(&store, "k", Some(2)).unwrap(), b"v2");
    assert_only_history_in_values(&t, store);
}

#[test]
fn max_versions_prunes_history_rows_and_keeps_the_current_value() {
    let (t, store) = TestStore::create();
    let req = SetRequest {
        max_versions: Some(2),
        ..value("p1")
    };
    store.set(&owner(), "p", req).unwrap();
    store.set(&owner(), "p", value("p2")).unwrap();
    store.set(&owner(), "p", value("p3")).unwrap();
    assert_eq!(versions(&store, "p"), vec![2, 3]);
    assert!(is_version_not_found(&get(&store, "p", Some(1))));
    assert_eq!(get(&store, "p", Some(2)).unwrap(), b"p2");
    assert_eq!(read(&store, "p").unwrap(), b"p3");
    assert_only_history_in_values(&t, store);

    // A rollback past the window is refused; one inside it prunes the oldest.
    let store = t.unlock();
    assert!(is_version_not_found(&store.rollback(
        &owner(),
        "p",
        None,
        1
    )));
    store.rollback(&owner(), "p", None, 2).unwrap();
    assert_eq!(versions(&store, "p"), vec![3, 4]);
    assert_eq!(read(&store, "p").unwrap(), b"p2");
    assert_eq!(get(&store, "p", Some(3)).unwrap(), b"p3");
    assert!(is_version_not_found(&get(&store, "p", Some(2))));
    assert_only_history_in_values(&t, store);

    // Keeping one version: the history goes, the current value stays.
    let store = t.unlock();
    let shrink = SetRequest {
        max_versions: Some(1),
        ..SetRequest::default()
    };
    store.set(&owner(), "p", shrink).unwrap();
    assert_eq!(versions(&store, "p"), vec![4]);
    assert_eq!(read(&store, "p").unwrap(), b"p2");
    assert!(is_version_not_found(&get(&store, "p", Some(3))));
    store.set(&owner(), "p", value("p5")).unwrap();
    assert_eq!(versions(&store, "p"), vec![5]);
    assert_eq!(read(&store, "p").unwrap(), b"p5");
    assert!(is_version_not_found(&get(&store, "p", Some(4))));
    drop(store);
    assert!(rows(&t.path, Table::Values).is_empty());
}

#[test]
fn delete_removes_the_history_and_a_new_secret_starts_again() {
    let (t, store) = TestStore::create();
    store.set(&owner(), "keep", value("k1")).unwrap();
    store.set(&owner(), "keep", value("k2")).unwrap();
    for i in 1..=4 {
        store
            .set(&owner(), "doomed", value(format!("d{i}")))
            .unwrap();
    }
    store.delete(&owner(), "doomed", None, false).unwrap();
    assert!(matches!(
        read(&store, "doomed"),
        Err(Error::NotFound { what: "secret", .. })
    ));
    drop(store);
    // Only `keep`'s version 1 is left in the history.
    assert_eq!(rows(&t.path, Table::Values).len(), 1);
    let store = t.unlock();
    assert_eq!(get(&store, "keep", Some(1)).unwrap(), b"k1");
    let m = store.set(&owner(), "doomed", value("again")).unwrap();
    assert_eq!(m.version, 1);
    assert_eq!(read(&store, "doomed").unwrap(), b"again");
    assert!(is_version_not_found(&get(&store, "doomed", Some(2))));
    assert_only_history_in_values(&t, store);
}

/// The fingerprint is derived from the inline current value: it follows sets and rollbacks,
/// `same_value` answers from it, and a rekey (new key) changes it without losing a version.
#[test]
fn fingerprints_follow_the_current_value_and_the_key() {
    let (t, store) = TestStore::create();
    let fp = |s: &Store, n: &str| s.show(&owner(), n, None).unwrap().fingerprint.unwrap();
    store.set(&owner(), "a", value("same")).unwrap();
    store.set(&owner(), "b", value("same")).unwrap();
    assert_eq!(fp(&store, "a"), fp(&store, "b"));
    let first = fp(&store, "a");
    store.set(&owner(), "a", value("changed")).unwrap();
    assert_ne!(fp(&store, "a"), first);
    assert_eq!(
        store.same_value(&owner(), "a", None, b"changed").unwrap(),
        Some(true)
    );
    assert_eq!(
        store.same_value(&owner(), "a", None, b"same").unwrap(),
        Some(false)
    );
    store.rollback(&owner(), "a", None, 1).unwrap();
    assert_eq!(fp(&store, "a"), first);
    assert_eq!(
        store.same_value(&owner(), "a", None, b"same").unwrap(),
        Some(true)
    );

    // Fields only: no fingerprint, and `same_value` has nothing to compare.
    let fields = SetRequest {
        fields: [("user".to_owned(), SecretBytes::from("bob"))].into(),
        ..SetRequest::default()
    };
    store.set(&owner(), "f", fields).unwrap();
    assert!(
        store
            .show(&owner(), "f", None)
            .unwrap()
            .fingerprint
            .is_none()
    );
    assert_eq!(store.same_value(&owner(), "f", None, b"bob").unwrap(), None);
    drop(store);

    let mut store = t.unlock();
    store.rekey(&owner(), &mut |_, _| {}).unwrap();
    assert_ne!(
        fp(&store, "a"),
        first,
        "a fingerprint is keyed by the data key"
    );
    assert_eq!(fp(&store, "a"), fp(&store, "b"));
    assert_eq!(
        store.same_value(&owner(), "a", None, b"same").unwrap(),
        Some(true)
    );
    assert_eq!(get(&store, "a", Some(2)).unwrap(), b"changed");
    assert_eq!(read(&store, "a").unwrap(), b"same");
    assert_only_history_in_values(&t, store);
    let store = t.unlock();
    let list = store
        .list_page_as(&owner(), &tresor::ListFilter::default(), None, None, true)
        .unwrap()
        .0;
    let of = |n: &str| {
        list.iter()
            .find(|m| m.name == n)
            .unwrap()
            .fingerprint
            .clone()
    };
    assert_eq!(of("a"), Some(fp(&store, "a")));
    assert_eq!(of("f"), None);
}

/// Compaction and a backup keep every version; the backup reads them with the same keyslot.
#[test]
fn compaction_and_backup_keep_every_version() {
    let (t, store) = TestStore::create();
    for i in 1..=3 {
        store.set(&owner(), "k", value(format!("v{i}"))).unwrap();
    }
    let out = t.dir.path().join("backup.tresor");
    store.backup(&owner(), &out).unwrap();
    drop(store);
    let mut store = t.unlock();
    store.compact().unwrap();
    for s in [
        &store,
        &Store::open(&out)
            .unwrap()
            .unlock(&tresor::UnlockSecret::Passphrase(common::pass()), &owner())
            .unwrap(),
    ] {
        assert_eq!(read(s, "k").unwrap(), b"v3");
        assert_eq!(get(s, "k", Some(1)).unwrap(), b"v1");
        assert_eq!(get(s, "k", Some(2)).unwrap(), b"v2");
    }
    assert_only_history_in_values(&t, store);
}

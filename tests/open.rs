//! Opening a store file: permissions, format versions, and files that are not stores.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Table, TestStore, get, owner, pass, put};
use tresor::{Error, KdfChoice, Store};

#[test]
fn a_new_store_is_private_to_its_owner() {
    let (t, _store) = TestStore::create();
    let mode = std::fs::metadata(&t.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn create_never_overwrites() {
    let (t, store) = TestStore::create();
    drop(store);
    let before = std::fs::read(&t.path).unwrap();
    let r = Store::create(&t.path, &pass(), &KdfChoice::Insecure, &owner());
    assert!(matches!(r, Err(Error::Conflict { .. })));
    assert_eq!(std::fs::read(&t.path).unwrap(), before);
}

#[test]
fn a_file_that_group_or_others_may_write_is_refused() {
    let (t, store) = TestStore::create();
    drop(store);
    for mode in [0o620, 0o602, 0o666] {
        std::fs::set_permissions(&t.path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = Store::open(&t.path).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied { .. }),
            "{mode:o}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{mode:o}")),
            "the mode is named: {msg}"
        );
        assert!(msg.contains("chmod 600"), "the fix is named: {msg}");
    }
    // Readable by others is not a reason to refuse (only writable is).
    std::fs::set_permissions(&t.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    t.unlock();
}

#[test]
fn a_newer_format_version_is_named_with_the_supported_one() {
    let (t, store) = TestStore::create();
    drop(store);
    let mut header = get(&t.path, Table::Meta, b"header").unwrap();
    header[8..10].copy_from_slice(&2u16.to_be_bytes());
    put(&t.path, Table::Meta, b"header", &header);
    let err = Store::open(&t.path).map(|_| ()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unsupported store format version 2; this build reads version 1"
    );
    assert_eq!(err.hint(), Some("upgrade tresor to open this store"));
}

#[test]
fn a_missing_store_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(&dir.path().join("nope.tresor"))
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { what: "store", .. }),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_store_is_an_integrity_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "just some text, not a database\n".repeat(300)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = Store::open(&path).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
    // A redb file that is not a tresor store (no meta table).
    let other = dir.path().join("other.redb");
    drop(redb::Database::create(&other).unwrap());
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = Store::open(&other).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
}

#[test]
fn a_store_open_elsewhere_is_a_conflict() {
    let (t, _store) = TestStore::create();
    let err = Store::open(&t.path).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
}

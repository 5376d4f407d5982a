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
    header[8..10].copy_from_slice(&3u16.to_be_bytes());
    put(&t.path, Table::Meta, b"header", &header);
    let err = Store::open(&t.path).map(|_| ()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: 3,
                supported: 2
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unsupported store format version 3; this build reads versions 1 to 2 (a newer tresor wrote this file)"
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

/// The `PermissionDenied` message of opening `path`, checked to name `path` and `fix`.
fn refused(path: &std::path::Path, what: &str, fix: &str) -> String {
    let err = Store::open(path).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the path: {msg}"
    );
    assert!(msg.contains(what), "says what is wrong ({what}): {msg}");
    assert!(msg.contains(fix), "names the fix ({fix}): {msg}");
    msg
}

#[test]
fn a_symlinked_store_is_refused() {
    let (t, store) = TestStore::create();
    drop(store);
    let link = t.dir.path().join("link.tresor");
    std::os::unix::fs::symlink(&t.path, &link).unwrap();
    refused(
        &link,
        "symbolic link",
        &format!("--store {}", t.path.display()),
    );
    // The real path still opens.
    t.unlock();
}

#[test]
fn a_store_in_a_directory_others_may_write_is_refused_unless_sticky() {
    let (t, store) = TestStore::create();
    drop(store);
    let dir = t.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(&t.path, "777", &format!("chmod o-w {}", dir.display()));
    // Creating a store there is refused the same way.
    let other = dir.join("other.tresor");
    let err = Store::create(&other, &pass(), &KdfChoice::Insecure, &owner())
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    assert!(!other.exists());
    // With the sticky bit (as /tmp has) nobody can replace another's file: accepted.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    t.unlock();
    // Group-writable (a user-private group) is not "others": accepted.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    t.unlock();
}

#[test]
fn a_store_owned_by_another_uid_is_refused() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: changing a file's owner needs root");
        return;
    }
    let (t, store) = TestStore::create();
    drop(store);
    // 65534 is `nobody` on Linux; no account needs to exist for the check.
    std::os::unix::fs::chown(&t.path, Some(65534), None).unwrap();
    refused(&t.path, "owned by uid 65534", "chown 0");
    std::os::unix::fs::chown(&t.path, Some(0), None).unwrap();
    t.unlock();
}

#[test]
fn a_passphrase_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pass");
    std::fs::write(&file, common::PASS).unwrap();
    for mode in [0o644, 0o604, 0o640] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = tresor::unlock::read_private_file(&file, "passphrase-file")
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{mode:o}")) && msg.contains("read"),
            "{msg}"
        );
        assert!(msg.contains("chmod 600"), "{msg}");
        assert!(!msg.contains(common::PASS), "never the passphrase: {msg}");
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(tresor::unlock::read_private_file(&file, "passphrase-file").is_ok());
}

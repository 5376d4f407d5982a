//! Format 1 → 2 (issue 8): a format 1 store is migrated at its first unlock, with a backup of
//! the file as it was; the header's version is bound by a sealed row; `last_used` lives in
//! its own table and survives a fold, a reopen, a delete and a rekey.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Table, TestStore, assert_integrity, get, owner, put, read, value};
use tresor::{Action, Actor, AuditQuery, Channel, Passphrase, Role, Store, UnlockSecret};

const GOLDEN_PASS: &str = "tresor golden v1 passphrase";

fn golden_owner() -> Actor {
    Actor {
        principal: "golden-owner".into(),
        role: Some(Role::Owner),
        uid: 1000,
        gid: 1000,
        pid: 4242,
        exe: Some("/usr/bin/tresor".into()),
        channel: Channel::Direct,
    }
}

/// A private copy of the format 1 golden file.
fn golden_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golden.tresor");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v1.tresor"),
        &path,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path)
}

fn unlock_golden(path: &Path) -> Store {
    Store::open(path)
        .unwrap()
        .unlock(
            &UnlockSecret::Passphrase(Passphrase::from(GOLDEN_PASS)),
            &golden_owner(),
        )
        .unwrap()
}

fn bak(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[test]
fn a_format_1_store_is_migrated_at_first_unlock_and_keeps_a_backup() {
    let (_d, path) = golden_copy();
    let before = std::fs::read(&path).unwrap();
    assert_eq!(Store::open(&path).unwrap().header().version, 1);
    let me = golden_owner();
    let store = unlock_golden(&path);
    assert_eq!(store.header().version, 2);
    let last_used = store.show(&me, "github-pat", None).unwrap().last_used;
    assert!(last_used.is_some(), "the read of format 1 is kept");
    let report = store.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    let records = store.audit(&me, &AuditQuery::default()).unwrap();
    let backup = bak(&path, ".v1.bak");
    let migration = records
        .iter()
        .find(|r| r.action == Action::Rekey)
        .expect("the migration is audited");
    assert_eq!(
        migration.name.as_deref(),
        Some(format!("format 1 → 2 (backup {})", backup.display()).as_str())
    );
    drop(store);

    // The backup is the format 1 file, private, and opens as format 1.
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(Store::open(&backup).unwrap().header().version, 1);
    assert_ne!(
        std::fs::read(&backup).unwrap(),
        before,
        "a fresh copy, not the bytes"
    );

    // Format 2 from now on: the next unlock neither migrates nor backs up again.
    assert_eq!(Store::open(&path).unwrap().header().version, 2);
    let store = unlock_golden(&path);
    assert_eq!(
        store.show(&me, "github-pat", None).unwrap().last_used,
        last_used
    );
    assert_eq!(
        store
            .get_value(&me, "github-pat", None, Some(2))
            .unwrap()
            .value
            .expose(),
        b"ghp_golden_v2"
    );
    assert!(!bak(&path, ".v1.bak.1").exists());
    drop(store);

    // The backup itself migrates (beside it, a backup of its own) to the same contents.
    let again = unlock_golden(&backup);
    assert_eq!(again.header().version, 2);
    assert!(bak(&backup, ".v1.bak").exists());
    assert_eq!(
        again.show(&me, "github-pat", None).unwrap().last_used,
        last_used
    );
}

#[test]
fn a_second_migration_does_not_overwrite_an_earlier_backup() {
    let (_d, path) = golden_copy();
    let first = bak(&path, ".v1.bak");
    std::fs::write(&first, b"an older backup").unwrap();
    drop(unlock_golden(&path));
    assert_eq!(std::fs::read(&first).unwrap(), b"an older backup");
    assert_eq!(
        Store::open(&bak(&path, ".v1.bak.1"))
            .unwrap()
            .header()
            .version,
        1
    );
}

#[test]
fn editing_the_header_version_is_an_integrity_error() {
    // Format 2 set back to 1: the sealed row says 2.
    let (t, store) = TestStore::create();
    drop(store);
    let mut header = get(&t.path, Table::Meta, b"header").unwrap();
    assert_eq!(&header[8..10], &[0, 2]);
    header[8..10].copy_from_slice(&1u16.to_be_bytes());
    put(&t.path, Table::Meta, b"header", &header);
    let mark = get(&t.path, Table::Meta, b"last_used_seq").unwrap();
    let msg = assert_integrity(t.try_unlock(), "meta");
    assert!(msg.contains("format"), "{msg}");
    // A refused unlock writes nothing on the way out (no fold).
    assert_eq!(get(&t.path, Table::Meta, b"last_used_seq").unwrap(), mark);
    // ...nor when the sealed row is deleted too: format 2's tables give it away.
    common::edit(&t.path, Table::Meta, &[], &[b"format".to_vec()]);
    let msg = assert_integrity(t.try_unlock(), "meta");
    assert!(msg.contains("last_used"), "{msg}");

    // Format 1 set forward to 2: there is no sealed row.
    let (_d, path) = golden_copy();
    let mut header = get(&path, Table::Meta, b"header").unwrap();
    header[8..10].copy_from_slice(&2u16.to_be_bytes());
    put(&path, Table::Meta, b"header", &header);
    let r = Store::open(&path).unwrap().unlock(
        &UnlockSecret::Passphrase(Passphrase::from(GOLDEN_PASS)),
        &golden_owner(),
    );
    assert_integrity(r, "meta");
    assert!(!bak(&path, ".v1.bak").exists(), "nothing was migrated");
}

#[test]
fn last_used_survives_a_fold_a_reopen_a_delete_and_a_rekey() {
    let (t, store) = TestStore::create();
    let me = owner();
    store.set(&me, "a", value("1")).unwrap();
    store.set(&me, "b", value("2")).unwrap();
    assert!(store.show(&me, "a", None).unwrap().last_used.is_none());
    read(&store, "a").unwrap();
    let seen = store.show(&me, "a", None).unwrap().last_used;
    assert!(seen.is_some(), "a read shows at once");
    assert!(store.show(&me, "b", None).unwrap().last_used.is_none());
    // Closing folds it into the table.
    drop(store);
    assert!(!common::rows(&t.path, Table::LastUsed).is_empty());
    let mut store = t.unlock();
    assert_eq!(store.show(&me, "a", None).unwrap().last_used, seen);

    // A rekey re-hashes names: the time follows its secret.
    store.rekey(&me, &mut |_, _| {}).unwrap();
    assert_eq!(store.show(&me, "a", None).unwrap().last_used, seen);
    drop(store);
    let store = t.unlock();
    assert_eq!(store.show(&me, "a", None).unwrap().last_used, seen);

    // A deleted secret made again under its name was never read.
    store.delete(&me, "a", None, true).unwrap();
    store.set(&me, "a", value("again")).unwrap();
    assert!(store.show(&me, "a", None).unwrap().last_used.is_none());
    drop(store);
    let store = t.unlock();
    assert!(store.show(&me, "a", None).unwrap().last_used.is_none());
    drop(store);
    assert!(
        common::rows(&t.path, Table::LastUsed).is_empty(),
        "the delete dropped its entry"
    );
}

/// A close with no read to fold writes no fold: the sealed fold mark (a fresh nonce on every
/// write) is the same bytes after an unlock and a close that read nothing. Format 1's fold
/// wrote its mark on every close.
#[test]
fn a_close_with_nothing_to_fold_does_not_write_the_fold_mark() {
    let (t, store) = TestStore::create();
    let me = owner();
    for i in 0..20 {
        store
            .set(&me, &format!("s{i}"), value("some value"))
            .unwrap();
    }
    read(&store, "s1").unwrap();
    drop(store);
    let mark = get(&t.path, Table::Meta, b"last_used_seq").unwrap();
    let buckets = common::rows(&t.path, Table::LastUsed);
    assert_eq!(buckets.len(), 1, "one read, one bucket");
    let mut store = t.unlock();
    assert!(store.show(&me, "s1", None).unwrap().last_used.is_some());
    store.compact().unwrap();
    drop(store);
    assert_eq!(get(&t.path, Table::Meta, b"last_used_seq").unwrap(), mark);
    assert_eq!(common::rows(&t.path, Table::LastUsed), buckets);
    // A read moves it again.
    let store = t.unlock();
    read(&store, "s2").unwrap();
    drop(store);
    assert_ne!(get(&t.path, Table::Meta, b"last_used_seq").unwrap(), mark);
    assert_ne!(common::rows(&t.path, Table::LastUsed), buckets);
}

/// A delete drops its secret's `last_used` for good: later folds of its bucket start from the
/// table, not from a copy in memory that still holds it (review finding).
#[test]
fn a_deleted_secrets_last_used_does_not_come_back_with_the_next_fold() {
    let (t, store) = TestStore::create();
    let me = owner();
    let names: Vec<String> = (0..3000).map(|i| format!("s{i}")).collect();
    let reqs: Vec<_> = names.iter().map(|n| (n.clone(), value("v"))).collect();
    store.set_many(&me, reqs).unwrap();
    for n in &names {
        read(&store, n).unwrap();
    }
    drop(store);
    let before = common::rows(&t.path, Table::LastUsed);
    let bytes = |rows: &[common::Row]| rows.iter().map(|(_, v)| v.len()).sum::<usize>();
    let store = t.unlock();
    store.delete(&me, "s0", None, true).unwrap();
    // Every other secret read again: the deleted one's bucket is folded again too.
    for n in &names[1..] {
        read(&store, n).unwrap();
    }
    drop(store);
    let after = common::rows(&t.path, Table::LastUsed);
    // One entry (8 bytes of hash, an 8-byte time) fewer, or its bucket gone with it.
    assert!(
        bytes(&after) + 16 == bytes(&before) || after.len() + 1 == before.len(),
        "{} bytes in {} buckets before, {} in {} after",
        bytes(&before),
        before.len(),
        bytes(&after),
        after.len()
    );
}

/// A format 1 store whose current value of one secret is damaged migrates with that value
/// left where it was: reading it is `integrity` naming its row, as in format 1, while the
/// listing, the older versions and the next write work (review finding).
#[test]
fn a_damaged_current_value_stays_one_secrets_problem_after_the_migration() {
    let (_d, path) = golden_copy();
    // github-pat's version 3 (its current value) in the format 1 file.
    let rows = common::rows(&path, Table::Values);
    let (key, mut val) = rows
        .into_iter()
        .find(|(k, _)| k.starts_with(&[0xdc, 0xc3, 0xa0, 0xa8]) && k[32..] == 3u64.to_be_bytes())
        .expect("github-pat v3");
    let last = val.len() - 1;
    val[last] ^= 1;
    common::edit(&path, Table::Values, &[(key, val)], &[]);
    let me = golden_owner();
    let store = unlock_golden(&path);
    assert_eq!(store.header().version, 2);
    assert_eq!(
        store
            .list(&me, &tresor::ListFilter::default())
            .unwrap()
            .len(),
        6
    );
    let err = store.get_value(&me, "github-pat", None, None).map(|_| ());
    let rec = assert_integrity(err, "values");
    assert!(
        rec.starts_with("dcc3a0a8") && rec.ends_with("version 3"),
        "{rec}"
    );
    assert_eq!(
        store
            .get_value(&me, "github-pat", None, Some(2))
            .unwrap()
            .value
            .expose(),
        b"ghp_golden_v2"
    );
    assert!(
        store
            .show(&me, "github-pat", None)
            .unwrap()
            .fingerprint
            .is_none()
    );
    // A new version replaces it; the damaged one stays version 3's row.
    store
        .set(&me, "github-pat", common::value("ghp_new"))
        .unwrap();
    assert_eq!(
        store
            .get_value(&me, "github-pat", None, None)
            .unwrap()
            .value
            .expose(),
        b"ghp_new"
    );
    assert_integrity(
        store
            .get_value(&me, "github-pat", None, Some(3))
            .map(|_| ()),
        "values",
    );
    drop(store);
    let store = unlock_golden(&path);
    assert_eq!(
        store
            .get_value(&me, "github-pat", None, None)
            .unwrap()
            .value
            .expose(),
        b"ghp_new"
    );
}

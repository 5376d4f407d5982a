//! Helpers shared by the integration tests: a store in a temp dir, and raw access to the redb
//! tables underneath it (to tamper with rows the way someone holding the file could).
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tempfile::TempDir;
use tresor::{Actor, Error, KdfChoice, Passphrase, SecretBytes, SetRequest, Store, UnlockSecret};

/// The passphrase of every test store.
pub const PASS: &str = "test passphrase, insecure kdf";

/// The tables as `src/store/mod.rs` defines them (the schema is part of the format).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub const KEYSLOTS: TableDefinition<u32, &[u8]> = TableDefinition::new("keyslots");
pub const SECRETS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("secrets");
pub const VALUES: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("values");
pub const PRINCIPALS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("principals");
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
pub const STAGING: TableDefinition<u64, &[u8]> = TableDefinition::new("staging");
/// Format 2: folded `last_used` times, by bucket.
pub const LAST_USED: TableDefinition<u32, &[u8]> = TableDefinition::new("last_used");

/// A store created in a fresh temp dir (kept alive by the returned `TempDir`).
pub struct TestStore {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl TestStore {
    /// Creates a store with the insecure KDF and returns it unlocked.
    pub fn create() -> (Self, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.tresor");
        let store = Store::create(&path, &pass(), &KdfChoice::Insecure, &owner()).unwrap();
        (Self { dir, path }, store)
    }

    /// Opens and unlocks the store with the test passphrase.
    pub fn unlock(&self) -> Store {
        self.try_unlock().unwrap()
    }

    /// Opens and unlocks, returning the error.
    pub fn try_unlock(&self) -> Result<Store, Error> {
        Store::open(&self.path)?.unlock(&UnlockSecret::Passphrase(pass()), &owner())
    }
}

pub fn pass() -> Passphrase {
    Passphrase::from(PASS)
}

pub fn owner() -> Actor {
    Actor::direct_owner()
}

/// A `SetRequest` with a value and nothing else.
pub fn value(v: impl Into<Vec<u8>>) -> SetRequest {
    SetRequest {
        value: Some(SecretBytes::new(v.into())),
        ..SetRequest::default()
    }
}

/// Reads the current value of an org secret as the owner (audited).
pub fn read(store: &Store, name: &str) -> Result<Vec<u8>, Error> {
    store
        .get_value(&owner(), name, None, None)
        .map(|v| v.value.expose().to_vec())
}

/// The tables a test can reach raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Meta,
    Keyslots,
    Secrets,
    Values,
    Principals,
    Audit,
    Staging,
    LastUsed,
}

impl Table {
    pub const SEALED: [Self; 4] = [Self::Secrets, Self::Values, Self::Principals, Self::Audit];
}

/// One raw row: key bytes (integers big-endian, strings as UTF-8) and value bytes.
pub type Row = (Vec<u8>, Vec<u8>);

fn raw_db(path: &Path) -> redb::Database {
    redb::Database::builder().open(path).unwrap()
}

/// Every row of a table, in key order.
pub fn rows(path: &Path, t: Table) -> Vec<Row> {
    let db = raw_db(path);
    let txn = db.begin_read().unwrap();
    let mut out = Vec::new();
    macro_rules! dump {
        ($def:expr, $k:expr) => {{
            let table = txn.open_table($def).unwrap();
            for row in table.iter().unwrap() {
                let (k, v) = row.unwrap();
                out.push(($k(k.value()), v.value().to_vec()));
            }
        }};
    }
    match t {
        Table::Meta => dump!(META, |k: &str| k.as_bytes().to_vec()),
        Table::Keyslots => dump!(KEYSLOTS, |k: u32| k.to_be_bytes().to_vec()),
        Table::Secrets => dump!(SECRETS, |k: &[u8; 32]| k.to_vec()),
        Table::Values => dump!(VALUES, |k: &[u8; 40]| k.to_vec()),
        Table::Principals => dump!(PRINCIPALS, |k: &[u8; 32]| k.to_vec()),
        Table::Audit => dump!(AUDIT, |k: u64| k.to_be_bytes().to_vec()),
        Table::Staging => dump!(STAGING, |k: u64| k.to_be_bytes().to_vec()),
        Table::LastUsed => dump!(LAST_USED, |k: u32| k.to_be_bytes().to_vec()),
    }
    out
}

/// Writes rows (key bytes as [`rows`] returns them) and removes `remove` keys, in one commit.
pub fn edit(path: &Path, t: Table, put: &[Row], remove: &[Vec<u8>]) {
    let db = raw_db(path);
    let txn = db.begin_write().unwrap();
    macro_rules! apply {
        ($def:expr, $k:expr) => {{
            let mut table = txn.open_table($def).unwrap();
            for (k, v) in put {
                table.insert($k(k.as_slice()), v.as_slice()).unwrap();
            }
            for k in remove {
                table.remove($k(k.as_slice())).unwrap();
            }
        }};
    }
    match t {
        Table::Meta => apply!(META, as_str),
        Table::Keyslots => apply!(KEYSLOTS, as_u32),
        Table::Secrets => apply!(SECRETS, as_32),
        Table::Values => apply!(VALUES, as_40),
        Table::Principals => apply!(PRINCIPALS, as_32),
        Table::Audit => apply!(AUDIT, as_u64),
        Table::Staging => apply!(STAGING, as_u64),
        Table::LastUsed => apply!(LAST_USED, as_u32),
    }
    txn.commit().unwrap();
}

fn as_str(k: &[u8]) -> &str {
    std::str::from_utf8(k).unwrap()
}
fn as_u32(k: &[u8]) -> u32 {
    u32::from_be_bytes(k.try_into().unwrap())
}
fn as_u64(k: &[u8]) -> u64 {
    u64::from_be_bytes(k.try_into().unwrap())
}
fn as_32(k: &[u8]) -> &[u8; 32] {
    k.try_into().unwrap()
}
fn as_40(k: &[u8]) -> &[u8; 40] {
    k.try_into().unwrap()
}

/// Replaces one row's value.
pub fn put(path: &Path, t: Table, key: &[u8], value: &[u8]) {
    edit(path, t, &[(key.to_vec(), value.to_vec())], &[]);
}

/// The value of one row.
pub fn get(path: &Path, t: Table, key: &[u8]) -> Option<Vec<u8>> {
    rows(path, t)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Asserts that `r` is an `Integrity` error naming `table`, and returns its record label.
#[track_caller]
pub fn assert_integrity<T>(r: Result<T, Error>, table: &str) -> String {
    match r {
        Err(Error::Integrity { table: t, record }) => {
            assert_eq!(t, table, "integrity error names the wrong table");
            record
        }
        Err(e) => panic!("expected integrity in {table}, got {e}"),
        Ok(_) => panic!("expected integrity in {table}, got a success"),
    }
}

//! The store: one redb file, its tables, locking and unlocking, keyslots, rekey and backup.
//!
//! # Tables
//!
//! | table        | key                         | value                                  |
//! |--------------|-----------------------------|----------------------------------------|
//! | `meta`       | `"header"`, `"audit_head"`, `"format"`, … | header (plain); audit head, format version (sealed) |
//! | `keyslots`   | slot id (u32)               | keyslot layout (plain, authenticated)  |
//! | `secrets`    | name hash (32)              | sealed metadata and current value of one secret |
//! | `values`     | name hash (32) ‖ version (8)| sealed value and fields of one older version (`history.rs`) |
//! | `principals` | principal-name hash (32)    | sealed principal (grants, members)     |
//! | `audit`      | seq (u64)                   | chain MAC ‖ sealed audit entry         |
//! | `staging`    | arrival counter (u64)       | staged unlock attempt (plain, nothing secret) |
//! | `upstream`   | provider / binding hash (32)| sealed provider or remote binding (SPEC §11) |
//! | `refs`       | name hash (32)              | sealed recorded references (`refs.rs`) |
//! | `last_used`  | bucket (u32, 1,024 of them) | sealed folded `last_used` times (`last_used.rs`) |
//!
//! A name hash is BLAKE3-keyed(name key, "secret" ‖ scope ‖ name): names are never stored
//! in the clear, and a lookup is one point get.

mod airgap;
mod audit;
mod bundle;
mod changes;
mod check;
mod db;
mod exes;
mod history;
mod identity;
mod inbox;
mod journal;
mod keys;
mod keyslots;
mod last_used;
mod listing;
mod locked;
mod maintenance;
mod migrate;
mod peers;
mod principals;
mod read;
mod records;
mod refs;
mod retention;
mod secret_row;
mod secrets;
mod upstream;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableTable, TableDefinition};

use crate::crypto::kdf::KdfParams;
use crate::crypto::{Key, SubKeys, fill_random};
use crate::error::{Error, Result};
use crate::format::{FLAG_INSECURE_KDF, FORMAT_VERSION, Header, KeyslotKind, KeyslotRecord};
use crate::types::{Action, Actor, AuditEntry, Outcome, Passphrase};
pub use bundle::BundleRequest;
#[cfg(feature = "test-util")]
pub use db::BackendFactory;
pub use db::Degraded;
use db::{Db, Opener};
pub use inbox::inbox_dir;
pub use migrate::format_1_backups;

/// Where the daemon keeps the audit journal of the store at `store` (`<store>.journal`).
pub fn journal_path(store: &Path) -> PathBuf {
    journal::path_of(store)
}
pub use keys::{KdfChoice, KeyslotInfo, NewKeyslot, UnlockSecret};
pub use peers::{PeerAdmission, PeerRoles};
pub use read::{PreparedReads, ReadRequest};
#[cfg(feature = "upstream")]
pub use upstream::BindingRec;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const KEYSLOTS: TableDefinition<u32, &[u8]> = TableDefinition::new("keyslots");
const SECRETS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("secrets");
const VALUES: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("values");
const PRINCIPALS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("principals");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const STAGING: TableDefinition<u64, &[u8]> = TableDefinition::new("staging");
/// The staged outcome of an unlock attempt refused during backoff (see [`StagedAttempt`]).
const STAGED_REFUSED: u8 = 2;

/// The redb page cache (redb's own default is 1 GiB). redb fills it lazily, so a small store
/// costs only its own size (the daemon's budget: 8 MiB idle). A 100k-secret store in format 2
/// is about 30 MB of secret records, current values inside; a listing reads all of them, so
/// the cache fills to its cap and stays there. At 24 MiB the daemon ended a load and a full
/// listing at 56–68 MiB (budget: 64); at 16 MiB the leaves it does not hold come from the OS
/// page cache (a read at 100k then costs a `pread` now and then, a few µs against a request's
/// quarter of a millisecond). At 4 MiB every read at 100k missed two or three leaves and bulk
/// imports spilled their write buffer (benches/store.rs).
pub const DEFAULT_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// The header as the meta table holds it now.
fn read_header(db: &Db) -> Result<Header> {
    let txn = db.begin_read()?;
    let meta = txn
        .open_table(META)
        .map_err(|_| Error::integrity("meta", "missing table"))?;
    let h = meta
        .get("header")?
        .ok_or_else(|| Error::integrity("meta", "header"))?;
    Header::decode(h.value())
}

/// Options for creating a store.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Argon2id parameters for the first passphrase slot.
    pub kdf: KdfChoice,
}

/// A store file that is open but not unlocked: it can list its keyslots, stage unlock attempts
/// and be unlocked; nothing sealed can be read.
pub struct LockedStore {
    db: Arc<Db>,
    header: Header,
    path: PathBuf,
}

/// An unlocked store. Every method takes the [`Actor`] it acts for: policy is decided and
/// audited here, so the daemon and the CLI share one enforcement point.
pub struct Store {
    db: Arc<Db>,
    header: Header,
    path: PathBuf,
    keys: crate::crypto::Locked<SubKeys>,
    /// The slot used to unlock and its key-encryption key, kept so that `rekey` can re-wrap it.
    unlocked_slot: RwLock<(u32, crate::crypto::Locked<Key>)>,
    principals: RwLock<principals::Cache>,
    /// Serializes principal changes (read, write, commit, cache reload).
    principal_writes: std::sync::Mutex<()>,
    /// The change generation that watchers wait on.
    changes: changes::Changes,
    /// Value reads not yet folded into `last_used` (see `last_used.rs`).
    noted: std::sync::Mutex<last_used::Noted>,
    /// Interned executable paths of audit records (see `exes.rs`).
    exes: std::sync::Mutex<exes::Exes>,
    /// The audit journal, when the daemon turned it on (see `journal.rs`).
    journal: std::sync::OnceLock<Arc<journal::Journal>>,
    /// Set once creating or unlocking finished: a store dropped before (an unlock that failed
    /// its checks or its migration) writes nothing on the way out.
    ready: std::sync::atomic::AtomicBool,
    /// Where this unlock's migration from format 1 put the file as it was (`migrate.rs`).
    migrated: Option<PathBuf>,
}

impl Drop for Store {
    /// Folds the noted reads into `last_used` (best effort: what is not folded is replayed
    /// from the audit log at the next unlock).
    fn drop(&mut self) {
        if !self.ready.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let _ = self.fold_last_used();
        self.close_journal();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_db(path: &Path) -> Result<Database> {
    let db = Database::builder()
        .set_cache_size(DEFAULT_CACHE_BYTES)
        // redb trusts a cleanly closed file and may panic on one corrupted outside it; the
        // check costs one pass over the file (measured in benches/store.rs) and turns such
        // damage into an error instead.
        .set_check_integrity_on_open(true)
        .open(path);
    match db {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
            if e.kind() == std::io::ErrorKind::NotFound =>
        {
            Err(Error::not_found("store", path.display().to_string()))
        }
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            Err(Error::integrity(
                "file",
                "not a tresor store (bad database header)",
            ))
        }
        // Not writable by this uid, or on a read-only file system: say so, with the path.
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Err(Error::denied(format!(
                "cannot open {} for reading and writing ({e}); tresor writes to the store \
                 (audit records, last use) even to read it: run as a user that may write the \
                 file, on a writable file system",
                path.display()
            )))
        }
        // A file cut short inside redb's own header: damage, not an internal failure.
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Err(Error::integrity(
                "file",
                "truncated (shorter than its header)",
            ))
        }
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(Error::Conflict {
            reason: format!(
                "{} is open in another process (is tresord running? use it, or stop it)",
                path.display()
            ),
            references: Vec::new(),
        }),
        Err(e) => Err(e.into()),
    }
}

fn random_salt() -> Result<[u8; 16]> {
    let mut s = [0u8; 16];
    fill_random(&mut s)?;
    Ok(s)
}

impl Store {
    /// Creates a new store at `path` (0600), refusing to overwrite an existing file. The first
    /// keyslot is a passphrase slot; the creating actor becomes the first owner.
    ///
    /// # Errors
    /// `Conflict` when the file exists; `InvalidArgument` for bad KDF parameters.
    pub fn create(
        path: &Path,
        passphrase: &Passphrase,
        kdf: &KdfChoice,
        actor: &Actor,
    ) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let params = kdf.resolve()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        crate::sys::check_store_dir(path)?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Conflict {
                    reason: format!(
                        "{} already exists; tresor init never overwrites a store",
                        path.display()
                    ),
                    references: Vec::new(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let result = Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .create(path)
            .map_err(Error::from)
            .and_then(|db| {
                Self::create_in(
                    Db::new(db, Opener::File(path.to_owned())),
                    path,
                    passphrase,
                    params,
                    matches!(kdf, KdfChoice::Insecure),
                    actor,
                )
            });
        if result.is_err() {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    /// Creates a new store on a storage backend (tests: fault injection); `make` is called
    /// again to reopen the same bytes after an I/O failure. `label` stands in for the path.
    ///
    /// # Errors
    /// As [`Store::create`].
    #[cfg(feature = "test-util")]
    pub fn create_with_backend(
        make: BackendFactory,
        label: &Path,
        passphrase: &Passphrase,
        kdf: &KdfChoice,
        actor: &Actor,
    ) -> Result<Self> {
        let params = kdf.resolve()?;
        let db = Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .create_with_backend(db::BoxedBackend(make()))?;
        Self::create_in(
            Db::new(db, Opener::Backend(make)),
            label,
            passphrase,
            params,
            matches!(kdf, KdfChoice::Insecure),
            actor,
        )
    }

    fn create_in(
        db: Db,
        path: &Path,
        passphrase: &Passphrase,
        params: KdfParams,
        insecure: bool,
        actor: &Actor,
    ) -> Result<Self> {
        let mut store_id = [0u8; 16];
        fill_random(&mut store_id)?;
        let header = Header {
            version: FORMAT_VERSION,
            flags: if insecure { FLAG_INSECURE_KDF } else { 0 },
            store_id,
        };
        let dk = Key::random()?;
        let salt = random_salt()?;
        let secret = UnlockSecret::Passphrase(passphrase.clone());
        let kek = secret.kek(&salt, Some(&params))?;
        let slot = KeyslotRecord::wrap(
            KeyslotKind::Passphrase,
            Some(params),
            salt,
            &kek,
            &dk,
            &header.slot_binding(),
            0,
        )?;
        let store = Self {
            db: Arc::new(db),
            header,
            path: path.to_owned(),
            keys: SubKeys::derive(&dk),
            unlocked_slot: RwLock::new((0, crate::crypto::Locked::new(kek))),
            principals: RwLock::new(principals::Cache::default()),
            principal_writes: std::sync::Mutex::new(()),
            changes: changes::Changes::new(),
            noted: std::sync::Mutex::default(),
            exes: std::sync::Mutex::default(),
            journal: std::sync::OnceLock::new(),
            ready: std::sync::atomic::AtomicBool::new(false),
            migrated: None,
        };
        let txn = store.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert("header", header.encode().as_slice())?;
            txn.open_table(KEYSLOTS)?
                .insert(0, slot.encode().as_slice())?;
            for t in [SECRETS, PRINCIPALS] {
                txn.open_table(t)?;
            }
            txn.open_table(VALUES)?;
            txn.open_table(AUDIT)?;
            txn.open_table(STAGING)?;
            txn.open_table(last_used::LAST_USED)?;
            drop(meta);
            store.put_first_owner(&txn, actor)?;
            store.mark_folded_if_absent(&txn)?;
            store.write_format(&txn, FORMAT_VERSION)?;
            audit::append(
                &store,
                &txn,
                &[AuditEntry::new(actor, Action::Keyslot, Outcome::Ok).named("init")],
            )?;
        }
        store.db.commit(txn)?;
        store.reload_principals()?;
        store
            .ready
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(store)
    }

    /// Opens a store file, locked. Checks the file's mode, its redb structure and its header.
    ///
    /// # Errors
    /// `NotFound` when absent; `PermissionDenied` when it is a symlink, another uid owns it,
    /// others may write it or its directory (SPEC §4.6); `Integrity` when damaged;
    /// `UnsupportedVersion` when newer.
    pub fn open(path: &Path) -> Result<LockedStore> {
        if !path.exists() {
            return Err(Error::not_found("store", path.display().to_string()));
        }
        crate::sys::check_store_file(path)?;
        let db = Db::new(open_db(path)?, Opener::File(path.to_owned()));
        Self::open_db(db, path)
    }

    /// Opens a store on a storage backend, locked (tests: fault injection and crash images);
    /// `make` is called again to reopen the same bytes after an I/O failure.
    ///
    /// # Errors
    /// As [`Store::open`].
    #[cfg(feature = "test-util")]
    pub fn open_with_backend(make: BackendFactory, label: &Path) -> Result<LockedStore> {
        let db = Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create_with_backend(db::BoxedBackend(make()))?;
        Self::open_db(Db::new(db, Opener::Backend(make)), label)
    }

    fn open_db(db: Db, path: &Path) -> Result<LockedStore> {
        let header = read_header(&db)?;
        Ok(LockedStore {
            db: Arc::new(db),
            header,
            path: path.to_owned(),
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The store id in hex.
    pub fn store_id(&self) -> String {
        hex(&self.header.store_id)
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Locks the store: drops every key (wiped on drop) and returns the locked handle.
    pub fn lock(self) -> LockedStore {
        LockedStore {
            db: Arc::clone(&self.db),
            header: self.header,
            path: self.path.clone(),
        }
    }

    /// Records one audit entry durably (its own transaction). Used for lock and for denials
    /// decided outside the store.
    ///
    /// # Errors
    /// When the record cannot be written.
    pub fn record(&self, entry: &AuditEntry) -> Result<()> {
        let txn = self.db.begin_write()?;
        audit::append(self, &txn, std::slice::from_ref(entry))?;
        self.db.commit(txn)?;
        Ok(())
    }

    /// `Some` while the store is degraded: its last write failed on the disk (full, failing).
    /// The next write that reaches the disk clears it.
    pub fn degraded(&self) -> Option<Degraded> {
        self.db.degraded()
    }
}

fn list_keyslots(db: &Db) -> Result<Vec<KeyslotInfo>> {
    let txn = db.begin_read()?;
    let slots = txn.open_table(KEYSLOTS)?;
    let mut out = Vec::new();
    for row in slots.iter()? {
        let (k, v) = row?;
        let rec = KeyslotRecord::decode(v.value(), k.value())?;
        out.push(KeyslotInfo {
            id: k.value(),
            kind: rec.kind.as_str(),
            kdf: rec.kdf,
        });
    }
    Ok(out)
}

pub(crate) fn poisoned() -> Error {
    Error::Internal {
        message: "a lock was poisoned by a panic".into(),
        source: None,
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

//! The store: one redb file, its tables, locking and unlocking, keyslots, rekey and backup.
//!
//! # Tables
//!
//! | table        | key                         | value                                  |
//! |--------------|-----------------------------|----------------------------------------|
//! | `meta`       | `"header"`, `"audit_head"`  | header (plain); audit head (sealed)    |
//! | `keyslots`   | slot id (u32)               | keyslot layout (plain, authenticated)  |
//! | `secrets`    | name hash (32)              | sealed metadata of one secret          |
//! | `values`     | name hash (32) ‖ version (8)| sealed value and fields of one version |
//! | `principals` | principal-name hash (32)    | sealed principal (grants, members)     |
//! | `audit`      | seq (u64)                   | chain MAC ‖ sealed audit entry         |
//! | `staging`    | arrival counter (u64)       | staged unlock attempt (plain, nothing secret) |
//! | `upstream`   | provider / binding hash (32)| sealed provider or remote binding (SPEC §11) |
//!
//! A name hash is BLAKE3-keyed(name key, "secret" ‖ scope ‖ name): names are never stored
//! in the clear, and a lookup is one point get.

mod audit;
mod keys;
mod keyslots;
mod maintenance;
mod peers;
mod principals;
mod read;
mod records;
mod secrets;
mod upstream;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::crypto::kdf::KdfParams;
use crate::crypto::{Key, SubKeys, fill_random};
use crate::error::{Error, Result};
use crate::format::{
    FLAG_INSECURE_KDF, FORMAT_VERSION, Header, KeyslotKind, KeyslotRecord, StagedAttempt,
};
use crate::types::{Action, Actor, AuditEntry, Outcome, Passphrase};
pub use keys::{KdfChoice, KeyslotInfo, NewKeyslot, UnlockSecret};
pub use peers::PeerAdmission;
pub use read::ReadRequest;
pub use upstream::BindingRec;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const KEYSLOTS: TableDefinition<u32, &[u8]> = TableDefinition::new("keyslots");
const SECRETS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("secrets");
const VALUES: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("values");
const PRINCIPALS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("principals");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const STAGING: TableDefinition<u64, &[u8]> = TableDefinition::new("staging");

/// The redb page cache (redb's own default is 1 GiB). redb fills it lazily, so a small store
/// costs only its own size (the daemon's budget: 8 MiB idle); a 100k-secret store (about
/// 42 MB of secrets and values after compaction) keeps most of its leaves cached within the
/// daemon's 64 MiB budget. At 4 MiB every read at 100k missed two or three leaves and took
/// 13-17 µs instead of about 6 µs, and bulk imports spilled their write buffer (benches/store.rs).
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Options for creating a store.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Argon2id parameters for the first passphrase slot.
    pub kdf: KdfChoice,
}

/// A store file that is open but not unlocked: it can list its keyslots, stage unlock attempts
/// and be unlocked; nothing sealed can be read.
pub struct LockedStore {
    db: Arc<Database>,
    header: Header,
    path: PathBuf,
}

/// An unlocked store. Every method takes the [`Actor`] it acts for: policy is decided and
/// audited here, so the daemon and the CLI share one enforcement point.
pub struct Store {
    db: Arc<Database>,
    header: Header,
    path: PathBuf,
    keys: SubKeys,
    /// The slot used to unlock and its key-encryption key, kept so that `rekey` can re-wrap it.
    unlocked_slot: RwLock<(u32, Key)>,
    principals: RwLock<principals::Cache>,
    /// Serializes principal changes (read, write, commit, cache reload).
    principal_writes: std::sync::Mutex<()>,
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
        let result = Self::create_in(
            path,
            passphrase,
            params,
            matches!(kdf, KdfChoice::Insecure),
            actor,
        );
        if result.is_err() {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    fn create_in(
        path: &Path,
        passphrase: &Passphrase,
        params: KdfParams,
        insecure: bool,
        actor: &Actor,
    ) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .create(path)?;
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
            &header.encode(),
            0,
        )?;
        let store = Self {
            db: Arc::new(db),
            header,
            path: path.to_owned(),
            keys: SubKeys::derive(&dk),
            unlocked_slot: RwLock::new((0, kek)),
            principals: RwLock::new(principals::Cache::default()),
            principal_writes: std::sync::Mutex::new(()),
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
            drop(meta);
            store.put_first_owner(&txn, actor)?;
            audit::append(
                &store,
                &txn,
                &[AuditEntry::new(actor, Action::Keyslot, Outcome::Ok).named("init")],
            )?;
        }
        txn.commit()?;
        store.reload_principals()?;
        Ok(store)
    }

    /// Opens a store file, locked. Checks the file's mode, its redb structure and its header.
    ///
    /// # Errors
    /// `NotFound` when absent; `PermissionDenied` when others may write it; `Integrity` when
    /// damaged; `UnsupportedVersion` when newer.
    pub fn open(path: &Path) -> Result<LockedStore> {
        if !path.exists() {
            return Err(Error::not_found("store", path.display().to_string()));
        }
        crate::sys::check_not_writable_by_others(path)?;
        let db = open_db(path)?;
        let header = {
            let txn = db.begin_read()?;
            let meta = txn
                .open_table(META)
                .map_err(|_| Error::integrity("meta", "missing table"))?;
            let h = meta
                .get("header")?
                .ok_or_else(|| Error::integrity("meta", "header"))?;
            Header::decode(h.value())?
        };
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
        txn.commit()?;
        Ok(())
    }
}

fn list_keyslots(db: &Database) -> Result<Vec<KeyslotInfo>> {
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

impl LockedStore {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store id in hex.
    pub fn store_id(&self) -> String {
        hex(&self.header.store_id)
    }

    /// Whether the store was made with `--insecure-kdf` (or has a passphrase slot below the
    /// floor). Front ends warn on every open when it was.
    pub fn is_insecure(&self) -> bool {
        self.header.insecure_kdf()
            || list_keyslots(&self.db)
                .is_ok_and(|s| s.iter().any(|k| k.kdf.is_some_and(|p| p.is_insecure())))
    }

    /// The keyslots (readable without a key).
    ///
    /// # Errors
    /// `Integrity` for a malformed slot.
    pub fn keyslots(&self) -> Result<Vec<KeyslotInfo>> {
        list_keyslots(&self.db)
    }

    /// Unlocks with a passphrase, key file or recovery key: tries every slot of that kind. On
    /// success, staged attempts and this unlock are sealed into the audit chain; on failure the
    /// attempt is staged (SPEC §3) and `WrongPassphrase` is returned.
    ///
    /// # Errors
    /// `WrongPassphrase`; `Integrity` when a slot's parameters are out of range or malformed.
    pub fn unlock(&self, secret: &UnlockSecret, actor: &Actor) -> Result<Store> {
        let header_bytes = self.header.encode();
        let slots = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(KEYSLOTS)?;
            let mut v = Vec::new();
            for row in table.iter()? {
                let (k, raw) = row?;
                v.push((k.value(), KeyslotRecord::decode(raw.value(), k.value())?));
            }
            v
        };
        let mut found = None;
        // A slot whose parameters are out of range is never run (a hostile file must not pick
        // the work), but it does not stop the other slots from being tried.
        let mut out_of_range = None;
        for (id, slot) in slots.iter().filter(|(_, s)| s.kind == secret.kind()) {
            if let Some(p) = &slot.kdf
                && p.check(self.header.insecure_kdf()).is_err()
            {
                out_of_range.get_or_insert(*id);
                continue;
            }
            let kek = secret.kek(&slot.salt, slot.kdf.as_ref())?;
            if let Some(dk) = slot.unwrap_key(&kek, &header_bytes, *id) {
                found = Some((*id, kek, dk));
                break;
            }
        }
        let Some((id, kek, dk)) = found else {
            if let Some(id) = out_of_range {
                return Err(Error::integrity(
                    "keyslots",
                    format!("slot {id} (kdf parameters out of range)"),
                ));
            }
            self.stage_attempt(actor, Outcome::Denied)?;
            return Err(Error::WrongPassphrase);
        };
        let store = Store {
            db: Arc::clone(&self.db),
            header: self.header,
            path: self.path.clone(),
            keys: SubKeys::derive(&dk),
            unlocked_slot: RwLock::new((id, kek)),
            principals: RwLock::new(principals::Cache::default()),
            principal_writes: std::sync::Mutex::new(()),
        };
        drop(dk);
        store.check_audit_head()?;
        store.reload_principals()?;
        store.seal_staged(actor, id)?;
        Ok(store)
    }

    /// Records an unlock attempt while locked, in the staging table (time, uid, pid, outcome).
    ///
    /// # Errors
    /// When the record cannot be written.
    pub fn stage_attempt(&self, actor: &Actor, outcome: Outcome) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(STAGING)?;
            let next = t.last()?.map_or(1, |(k, _)| k.value() + 1);
            let rec = StagedAttempt {
                time_us: crate::sys::now().as_microsecond(),
                uid: actor.uid,
                pid: actor.pid,
                outcome: match outcome {
                    Outcome::Ok => 0,
                    Outcome::Denied => 1,
                    _ => 3,
                },
            };
            t.insert(next, rec.encode().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }
}

impl Store {
    /// Moves staged unlock attempts into the audit chain and records this unlock.
    fn seal_staged(&self, actor: &Actor, slot: u32) -> Result<()> {
        let txn = self.db.begin_write()?;
        let mut entries = Vec::new();
        {
            let mut t = txn.open_table(STAGING)?;
            for row in t.iter()? {
                let (_, v) = row?;
                let Some(s) = StagedAttempt::decode(v.value()) else {
                    continue;
                };
                let outcome = match s.outcome {
                    0 => Outcome::Ok,
                    1 => Outcome::Denied,
                    _ => Outcome::Error,
                };
                let mut e = AuditEntry::new(actor, Action::Unlock, outcome).named("staged attempt");
                e.time = jiff::Timestamp::from_microsecond(s.time_us)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                e.uid = s.uid;
                e.pid = s.pid;
                e.gid = 0;
                e.principal = format!("uid-{}", s.uid);
                e.exe = None;
                entries.push(e);
            }
            t.retain(|_, _| false)?;
        }
        entries.push(
            AuditEntry::new(actor, Action::Unlock, Outcome::Ok).named(format!("slot {slot}")),
        );
        audit::append(self, &txn, &entries)?;
        txn.commit()?;
        Ok(())
    }
}

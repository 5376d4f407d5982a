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
//!
//! A name hash is BLAKE3-keyed(name key, "secret" ‖ scope ‖ name): names are never stored
//! in the clear, and a lookup is one point get.

mod keys;
mod principals;
pub(crate) mod records;
mod secrets;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

pub use keys::{KdfChoice, KeyslotInfo, NewKeyslot, Passphrase, UnlockSecret, b64, decode_b64};
pub use principals::{Grant, Principal, PrincipalKind, PrincipalSpec};
pub use secrets::ReadRequest;

use crate::audit::{self, Entry};
use crate::crypto::kdf::KdfParams;
use crate::crypto::{Key, SubKeys, fill_random};
use crate::error::{Error, Result};
use crate::format::{
    FLAG_INSECURE_KDF, FORMAT_VERSION, Header, KeyslotKind, KeyslotRecord, StagedAttempt,
};
use crate::types::{Action, Actor, Outcome, SecretBytes};

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const KEYSLOTS: TableDefinition<u32, &[u8]> = TableDefinition::new("keyslots");
pub(crate) const SECRETS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("secrets");
pub(crate) const VALUES: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("values");
pub(crate) const PRINCIPALS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("principals");
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
pub(crate) const STAGING: TableDefinition<u64, &[u8]> = TableDefinition::new("staging");

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
    pub(crate) db: Arc<Database>,
    pub(crate) header: Header,
    pub(crate) path: PathBuf,
    pub(crate) keys: SubKeys,
    /// The slot used to unlock and its key-encryption key, kept so that `rekey` can re-wrap it.
    unlocked_slot: RwLock<(u32, Key)>,
    pub(crate) principals: RwLock<principals::Cache>,
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
                &[Entry::new(actor, Action::Keyslot, Outcome::Ok).named("init")],
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
    pub fn record(&self, entry: &Entry) -> Result<()> {
        let txn = self.db.begin_write()?;
        audit::append(self, &txn, std::slice::from_ref(entry))?;
        txn.commit()?;
        Ok(())
    }

    pub(crate) fn authorize_admin(&self, actor: &Actor, action: Action, name: &str) -> Result<()> {
        let (who, teams) = self.principal_for(actor)?;
        if let crate::policy::Decision::Deny(why) = crate::policy::decide(
            &who,
            &teams,
            crate::policy::Op::Admin,
            None,
            crate::sys::now(),
        ) {
            self.record(&Entry::new(actor, action, Outcome::Denied).named(name))?;
            return Err(Error::denied(why));
        }
        Ok(())
    }

    /// The keyslots.
    ///
    /// # Errors
    /// `Integrity` for a malformed slot.
    pub fn keyslots(&self) -> Result<Vec<KeyslotInfo>> {
        list_keyslots(&self.db)
    }

    /// Adds a keyslot wrapping the data key. Returns its id and, for a recovery slot, the
    /// recovery key (shown once, never stored).
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `InvalidArgument` for a short key file.
    pub fn keyslot_add(
        &self,
        actor: &Actor,
        new: NewKeyslot,
    ) -> Result<(u32, Option<SecretBytes>)> {
        self.authorize_admin(actor, Action::Keyslot, "add")?;
        let dk = self.data_key()?;
        let salt = random_salt()?;
        let (kind, params, secret, shown) = match new {
            NewKeyslot::Passphrase(p, kdf) => {
                let params = self.new_slot_params(kdf)?;
                (
                    KeyslotKind::Passphrase,
                    Some(params),
                    UnlockSecret::Passphrase(p),
                    None,
                )
            }
            NewKeyslot::Keyfile(bytes) => (
                KeyslotKind::Keyfile,
                None,
                UnlockSecret::Keyfile(bytes),
                None,
            ),
            NewKeyslot::Recovery => {
                let mut raw = zeroize::Zeroizing::new([0u8; 32]);
                fill_random(raw.as_mut_slice())?;
                let text = keys::encode_recovery(&raw);
                (
                    KeyslotKind::Recovery,
                    None,
                    UnlockSecret::Recovery(text.clone()),
                    Some(text),
                )
            }
        };
        let kek = secret.kek(&salt, params.as_ref())?;
        let txn = self.db.begin_write()?;
        let id = {
            let mut slots = txn.open_table(KEYSLOTS)?;
            let id = slots.last()?.map_or(0, |(k, _)| k.value() + 1);
            let slot =
                KeyslotRecord::wrap(kind, params, salt, &kek, &dk, &self.header.encode(), id)?;
            slots.insert(id, slot.encode().as_slice())?;
            id
        };
        audit::append(
            self,
            &txn,
            &[Entry::new(actor, Action::Keyslot, Outcome::Ok)
                .named(format!("add {} {id}", kind.as_str()))],
        )?;
        txn.commit()?;
        Ok((id, shown))
    }

    /// Removes a keyslot. The last slot, and the slot this session unlocked with, cannot be
    /// removed.
    ///
    /// # Errors
    /// `NotFound`, `Conflict`, `PermissionDenied`.
    pub fn keyslot_remove(&self, actor: &Actor, id: u32) -> Result<()> {
        self.authorize_admin(actor, Action::Keyslot, "remove")?;
        let txn = self.db.begin_write()?;
        {
            let mut slots = txn.open_table(KEYSLOTS)?;
            if slots.get(id)?.is_none() {
                return Err(Error::not_found("keyslot", id.to_string()));
            }
            if slots.len()? <= 1 {
                return Err(Error::Conflict {
                    reason: "the last keyslot cannot be removed; the store would never open again"
                        .into(),
                    references: Vec::new(),
                });
            }
            if self.read_slot().0 == id {
                return Err(Error::Conflict {
                    reason: format!(
                        "keyslot {id} unlocked this session; unlock with another slot to remove it"
                    ),
                    references: Vec::new(),
                });
            }
            slots.remove(id)?;
        }
        audit::append(
            self,
            &txn,
            &[Entry::new(actor, Action::Keyslot, Outcome::Ok).named(format!("remove {id}"))],
        )?;
        txn.commit()?;
        Ok(())
    }

    /// Changes the passphrase: re-wraps the data key in the passphrase slot this session
    /// unlocked with (or the first passphrase slot). Records are untouched.
    ///
    /// # Errors
    /// `PermissionDenied`; `NotFound` when the store has no passphrase slot.
    pub fn change_passphrase(
        &self,
        actor: &Actor,
        new: &Passphrase,
        kdf: &KdfChoice,
    ) -> Result<()> {
        self.authorize_admin(actor, Action::Passwd, "passphrase")?;
        let dk = self.data_key()?;
        let params = self.new_slot_params(*kdf)?;
        let salt = random_salt()?;
        let kek = UnlockSecret::Passphrase(new.clone()).kek(&salt, Some(&params))?;
        let used = self.read_slot().0;
        let txn = self.db.begin_write()?;
        let id = {
            let mut slots = txn.open_table(KEYSLOTS)?;
            let mut target = None;
            for row in slots.iter()? {
                let (k, v) = row?;
                let rec = KeyslotRecord::decode(v.value(), k.value())?;
                if rec.kind == KeyslotKind::Passphrase && (target.is_none() || k.value() == used) {
                    target = Some(k.value());
                }
            }
            let id = target.ok_or_else(|| Error::not_found("keyslot", "passphrase"))?;
            let slot = KeyslotRecord::wrap(
                KeyslotKind::Passphrase,
                Some(params),
                salt,
                &kek,
                &dk,
                &self.header.encode(),
                id,
            )?;
            slots.insert(id, slot.encode().as_slice())?;
            id
        };
        audit::append(
            self,
            &txn,
            &[Entry::new(actor, Action::Passwd, Outcome::Ok).named(format!("slot {id}"))],
        )?;
        txn.commit()?;
        if id == used {
            *self.unlocked_slot.write().map_err(|_| poisoned())? = (id, kek);
        }
        Ok(())
    }

    /// Argon2id parameters for a new passphrase slot. The insecure choice is only for stores
    /// created with `--insecure-kdf`: unlock refuses below-floor parameters in any other store,
    /// so such a slot could never open it (and `passwd` would lock the owner out).
    fn new_slot_params(&self, kdf: KdfChoice) -> Result<KdfParams> {
        match kdf {
            KdfChoice::Insecure if !self.header.insecure_kdf() => Err(Error::invalid(
                "kdf",
                "--insecure-kdf is only for stores created with it; this store uses Argon2id \
                 at or above m = 64 MiB, t = 3",
            )),
            other => other.resolve(),
        }
    }

    fn read_slot(&self) -> std::sync::RwLockReadGuard<'_, (u32, Key)> {
        self.unlocked_slot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The data key, unwrapped again from the slot this session unlocked with (the store keeps
    /// only subkeys and that slot's KEK in memory).
    fn data_key(&self) -> Result<Key> {
        let guard = self.read_slot();
        let (id, kek) = &*guard;
        let txn = self.db.begin_read()?;
        let slots = txn.open_table(KEYSLOTS)?;
        let raw = slots
            .get(*id)?
            .ok_or_else(|| Error::integrity("keyslots", format!("slot {id}")))?;
        let rec = KeyslotRecord::decode(raw.value(), *id)?;
        rec.unwrap_key(kek, &self.header.encode(), *id)
            .ok_or_else(|| Error::integrity("keyslots", format!("slot {id}")))
    }

    /// Writes a consistent, compact copy of the store to `out` (0600, never overwriting). The
    /// copy opens with the same keyslots.
    ///
    /// # Errors
    /// `Conflict` when `out` exists; I/O errors.
    pub fn backup(&self, actor: &Actor, out: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        self.authorize_admin(actor, Action::Export, "backup")?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Conflict {
                    reason: format!("{} already exists", out.display()),
                    references: Vec::new(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let result = (|| {
            // Record the backup first, so the copy contains its own record.
            self.record(
                &Entry::new(actor, Action::Export, Outcome::Ok)
                    .named(format!("backup {}", out.display())),
            )?;
            let copy = Database::builder()
                .set_cache_size(DEFAULT_CACHE_BYTES)
                .create(out)?;
            let r = self.db.begin_read()?;
            let w = copy.begin_write()?;
            copy_table(&r, &w, META)?;
            copy_table(&r, &w, KEYSLOTS)?;
            copy_table(&r, &w, SECRETS)?;
            copy_table(&r, &w, VALUES)?;
            copy_table(&r, &w, PRINCIPALS)?;
            copy_table(&r, &w, AUDIT)?;
            copy_table(&r, &w, STAGING)?;
            w.commit()?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(out);
        }
        result
    }

    /// Compacts the file: rewrites the tables keyed by name hash in key order, so that their
    /// leaves are packed full, then frees the pages left by old versions and deleted rows.
    ///
    /// Rows keyed by a hash arrive in random order, and a B-tree filled that way keeps its
    /// leaves about two-thirds full; redb's compaction moves pages but does not merge them.
    /// Re-inserting in ascending order takes redb's append path, which leaves every leaf full
    /// (the audit table, keyed by seq, is filled that way already).
    ///
    /// # Errors
    /// `Conflict` when other handles to the database are alive; redb errors.
    pub fn compact(&mut self) -> Result<bool> {
        let db = Arc::get_mut(&mut self.db).ok_or_else(|| Error::Conflict {
            reason: "the store is in use".into(),
            references: Vec::new(),
        })?;
        let txn = db.begin_write()?;
        repack(&txn, SECRETS, "secrets.repack")?;
        repack(&txn, VALUES, "values.repack")?;
        repack(&txn, PRINCIPALS, "principals.repack")?;
        txn.commit()?;
        db.compact()
            .map_err(|e| Error::internal("compaction failed", e))
    }

    /// Makes a new data key and re-seals every record, re-hashes every name, re-chains the
    /// audit log and re-wraps the keyslot this session unlocked with, in one transaction.
    /// Other keyslots cannot be re-wrapped (their secrets are not here) and are removed; their
    /// ids are returned so the caller can say so. The audit chain must verify first.
    ///
    /// `progress(done, total)` is called as records are re-sealed.
    ///
    /// # Errors
    /// `Integrity` when the audit chain or a record fails to verify (nothing is changed).
    pub fn rekey(&mut self, actor: &Actor, progress: &mut dyn FnMut(u64, u64)) -> Result<Vec<u32>> {
        self.authorize_admin(actor, Action::Rekey, "rekey")?;
        let report = self.audit_verify()?;
        if !report.ok {
            return Err(Error::integrity(
                "audit",
                format!(
                    "seq {} (rekey refused: the chain is broken)",
                    report.first_broken_seq.unwrap_or(0)
                ),
            ));
        }
        let new_dk = Key::random()?;
        let new_keys = SubKeys::derive(&new_dk);
        let (slot_id, kek) = {
            let g = self.read_slot();
            (g.0, g.1.clone())
        };
        let txn = self.db.begin_write()?;
        records::rekey_all(self, &new_keys, &txn, progress)?;
        let removed_slots = {
            let mut slots = txn.open_table(KEYSLOTS)?;
            let mut ids = Vec::new();
            for row in slots.iter()? {
                let (k, _) = row?;
                if k.value() != slot_id {
                    ids.push(k.value());
                }
            }
            for id in &ids {
                slots.remove(*id)?;
            }
            let raw = slots
                .get(slot_id)?
                .ok_or_else(|| Error::integrity("keyslots", format!("slot {slot_id}")))?
                .value()
                .to_vec();
            let old = KeyslotRecord::decode(&raw, slot_id)?;
            let slot = KeyslotRecord::wrap(
                old.kind,
                old.kdf,
                old.salt,
                &kek,
                &new_dk,
                &self.header.encode(),
                slot_id,
            )?;
            slots.insert(slot_id, slot.encode().as_slice())?;
            ids
        };
        let old_keys = std::mem::replace(&mut self.keys, new_keys);
        let entry = Entry::new(actor, Action::Rekey, Outcome::Ok)
            .named(format!("removed slots {removed_slots:?}"));
        if let Err(e) =
            audit::append(self, &txn, &[entry]).and_then(|()| txn.commit().map_err(Error::from))
        {
            self.keys = old_keys;
            return Err(e);
        }
        drop(old_keys);
        self.reload_principals()?;
        Ok(removed_slots)
    }
}

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    r: &redb::ReadTransaction,
    w: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<()>
where
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
    let src = r.open_table(def)?;
    let mut dst = w.open_table(def)?;
    for row in src.iter()? {
        let (k, v) = row?;
        dst.insert(k.value(), v.value())?;
    }
    Ok(())
}

/// Rewrites a table in key order through a scratch table, inside `txn` (see
/// [`Store::compact`]).
fn repack<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
    scratch: &str,
) -> Result<()>
where
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
    let tmp: TableDefinition<K, V> = TableDefinition::new(scratch);
    {
        let src = txn.open_table(def)?;
        let mut dst = txn.open_table(tmp)?;
        for row in src.iter()? {
            let (k, v) = row?;
            dst.insert(k.value(), v.value())?;
        }
    }
    txn.delete_table(def)?;
    txn.rename_table(tmp, def)?;
    Ok(())
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
                let mut e = Entry::new(actor, Action::Unlock, outcome).named("staged attempt");
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
        entries.push(Entry::new(actor, Action::Unlock, Outcome::Ok).named(format!("slot {slot}")));
        audit::append(self, &txn, &entries)?;
        txn.commit()?;
        Ok(())
    }
}

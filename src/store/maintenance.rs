//! Maintenance: backup, compaction, rekey.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::audit;
use super::principals::PrincipalRec;
use super::records::{SecretRec, ValueRec, principal_hash, seal_with, secret_hash, value_key};
use super::{
    AUDIT, DEFAULT_CACHE_BYTES, KEYSLOTS, META, PRINCIPALS, SECRETS, STAGING, Store, VALUES,
};
use crate::crypto::{Key, SubKeys};
use crate::error::{Error, Result};
use crate::format::{AuditLayout, KeyslotRecord, TableId};
use crate::types::{Action, Actor, AuditEntry, Outcome};

impl Store {
    /// Writes a consistent, compact copy of the store to `out` (0600, never overwriting). The
    /// copy opens with the same keyslots.
    ///
    /// # Errors
    /// `Conflict` when `out` exists; I/O errors.
    pub fn backup(&self, actor: &Actor, out: &Path) -> Result<()> {
        self.authorize_admin(actor, Action::Export, "backup")?;
        self.backup_into(actor, out, &format!("backup {}", out.display()))
    }

    /// A consistent copy of the store for `GET /v1/backup`: written to a new 0600 file beside
    /// the store, opened, and unlinked at once, so that nothing is left on disk when the
    /// reader finishes or dies. Returns the open file and its length. Audited as `export`
    /// (the copy holds its own record); a denial is audited too.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; I/O errors (disk full: `unavailable`).
    pub fn backup_stream(&self, actor: &Actor) -> Result<(std::fs::File, u64)> {
        self.authorize_admin(actor, Action::Export, "backup")?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let mut rnd = [0u8; 8];
        crate::crypto::fill_random(&mut rnd)?;
        let tmp = dir.join(format!(".tresor-backup-{}.tmp", super::hex(&rnd)));
        let label = format!("backup streamed to {}", actor.principal);
        self.backup_into(actor, &tmp, &label)?;
        let opened = std::fs::File::open(&tmp).and_then(|f| {
            let len = f.metadata()?.len();
            Ok((f, len))
        });
        let _ = std::fs::remove_file(&tmp);
        Ok(opened?)
    }

    pub(super) fn backup_into(&self, actor: &Actor, out: &Path, label: &str) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
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
            self.record(&AuditEntry::new(actor, Action::Export, Outcome::Ok).named(label))?;
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
            super::upstream::backup(&r, &w)?;
            super::refs::backup(&r, &w)?;
            super::airgap::backup(&r, &w)?;
            copy_table_if_present(&r, &w, super::last_used::LAST_USED)?;
            // A format 1 store's fingerprints (its backup before the migration is format 1).
            copy_table_if_present(&r, &w, super::refs::FINGERPRINTS_V1)?;
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
        let db = Arc::get_mut(&mut self.db)
            .and_then(super::db::Db::get_mut)
            .ok_or_else(|| Error::Conflict {
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
        // Notes are keyed by name hashes, which rekey changes.
        self.fold_last_used()?;
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
        // A large transaction writes pages before its commit: a disk failure shows there.
        rekey_all(self, &new_keys, &txn, progress).inspect_err(|e| self.db.observe_write(e))?;
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
                &self.header.slot_binding(),
                slot_id,
            )?;
            slots.insert(slot_id, slot.encode().as_slice())?;
            ids
        };
        let old_keys = std::mem::replace(&mut self.keys, new_keys);
        // The fold mark and the format row are re-sealed under the new key.
        if let Err(e) = self
            .mark_folded(&txn)
            .and_then(|()| self.write_format(&txn, self.header.version))
        {
            self.keys = old_keys;
            return Err(e);
        }
        let entry = AuditEntry::new(actor, Action::Rekey, Outcome::Ok)
            .named(format!("removed slots {removed_slots:?}"));
        if let Err(e) = audit::append(self, &txn, &[entry]).and_then(|()| self.db.commit(txn)) {
            self.keys = old_keys;
            return Err(e);
        }
        drop(old_keys);
        // The buckets were re-made under the new name hashes.
        self.load_last_used()?;
        // The journal's replay after a reopen checks MACs under the new audit key now.
        self.install_reopen_hook();
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
    copy_rows(&r.open_table(def)?, w, def)
}

/// Copies a table that a store made before it existed does not have (then nothing is copied):
/// the backups of the upstream, reference and air-gap tables.
pub(super) fn copy_table_if_present<K: redb::Key + 'static, V: redb::Value + 'static>(
    r: &redb::ReadTransaction,
    w: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<()>
where
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
    match r.open_table(def) {
        Ok(src) => copy_rows(&src, w, def),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn copy_rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &redb::ReadOnlyTable<K, V>,
    w: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<()>
where
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
{
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

/// Re-seals every secret, value, principal and audit record under `new`, re-hashing names and
/// re-chaining the audit log. Runs inside the caller's write transaction.
fn rekey_all(
    store: &Store,
    new: &SubKeys,
    txn: &redb::WriteTransaction,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    use redb::{ReadableTable, ReadableTableMetadata};
    let id = &store.header.store_id;
    let mut secrets = txn.open_table(SECRETS)?;
    let mut values = txn.open_table(VALUES)?;
    let mut principals = txn.open_table(PRINCIPALS)?;
    let mut audit = txn.open_table(AUDIT)?;
    let total = secrets.len()? + values.len()? + principals.len()? + audit.len()?;
    let mut done = 0u64;
    let mut tick = |done: &mut u64| {
        *done += 1;
        if (*done).is_multiple_of(256) || *done == total {
            progress(*done, total);
        }
    };

    let mut rehash: HashMap<[u8; 32], [u8; 32]> = HashMap::new();
    let mut new_secrets = Vec::new();
    for row in secrets.iter()? {
        let (k, v) = row?;
        let rec: SecretRec = store.open_row(TableId::Secrets, k.value(), v.value())?;
        let nh = secret_hash(new, &rec.scope, &rec.name);
        rehash.insert(*k.value(), nh);
        new_secrets.push((nh, seal_with(new, id, TableId::Secrets, &nh, &rec)?));
        tick(&mut done);
    }
    let mut new_values = Vec::new();
    for row in values.iter()? {
        let (k, v) = row?;
        let rec: ValueRec = store.open_row(TableId::Values, k.value(), v.value())?;
        let mut old = [0u8; 32];
        old.copy_from_slice(&k.value()[..32]);
        let nh = rehash
            .get(&old)
            .ok_or_else(|| Error::integrity("values", crate::format::record_label(k.value())))?;
        let mut ver = [0u8; 8];
        ver.copy_from_slice(&k.value()[32..]);
        let version = u64::from_be_bytes(ver);
        let nk = value_key(nh, version);
        new_values.push((nk, seal_with(new, id, TableId::Values, &nk, &rec)?));
        tick(&mut done);
    }
    let mut new_principals = Vec::new();
    for row in principals.iter()? {
        let (k, v) = row?;
        let rec: PrincipalRec = store.open_row(TableId::Principals, k.value(), v.value())?;
        let nh = principal_hash(new, &rec.name);
        new_principals.push((nh, seal_with(new, id, TableId::Principals, &nh, &rec)?));
        tick(&mut done);
    }
    let mut new_audit = Vec::new();
    // A pruned chain restarts at its checkpoint, re-sealed under the new key with the new
    // genesis MAC in place of the old `mac(upto)` (which the new key cannot reproduce).
    let mut base = super::retention::read_base(&store.keys, id, txn)?;
    let mut prev = AuditLayout::genesis(&new.audit, id);
    base.mac = prev;
    for row in audit.iter()? {
        let (k, v) = row?;
        let seq = k.value();
        let (_, env) = AuditLayout::split(v.value())
            .ok_or_else(|| Error::integrity("audit", format!("seq {seq}")))?;
        let entry: audit::EntryRec = store.open_row(TableId::Audit, &seq.to_be_bytes(), env)?;
        let env = seal_with(new, id, TableId::Audit, &seq.to_be_bytes(), &entry)?;
        let mac = AuditLayout::mac(&new.audit, &prev, seq, &env);
        let mut bytes = Vec::with_capacity(32 + env.len());
        bytes.extend_from_slice(&mac);
        bytes.extend_from_slice(&env);
        new_audit.push((seq, bytes));
        prev = mac;
        tick(&mut done);
    }
    secrets.retain(|_, _| false)?;
    values.retain(|_, _| false)?;
    principals.retain(|_, _| false)?;
    for (k, v) in &new_secrets {
        secrets.insert(k, v.as_slice())?;
    }
    for (k, v) in &new_values {
        values.insert(k, v.as_slice())?;
    }
    for (k, v) in &new_principals {
        principals.insert(k, v.as_slice())?;
    }
    for (k, v) in &new_audit {
        audit.insert(*k, v.as_slice())?;
    }
    drop((secrets, values, principals, audit));
    super::refs::rekey(store, new, txn, &rehash)?;
    let last = new_audit.last().map_or(base.upto, |(s, _)| *s);
    if base.upto > 0 {
        super::retention::write_base(new, id, txn, &base)?;
    }
    audit::write_head_with(new, id, txn, last, &prev)?;
    super::upstream::rekey(store, new, txn)?;
    super::exes::rekey(store, new, txn)?;
    super::airgap::rekey(store, new, txn)?;
    super::last_used::rekey(store, new, txn, &rehash)?;
    progress(total, total);
    Ok(())
}

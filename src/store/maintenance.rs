//! Maintenance: backup, compaction, rekey.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    AUDIT, DEFAULT_CACHE_BYTES, KEYSLOTS, META, PRINCIPALS, SECRETS, STAGING, Store, VALUES,
    records,
};
use crate::audit::{self, Entry};
use crate::crypto::{Key, SubKeys};
use crate::error::{Error, Result};
use crate::format::KeyslotRecord;
use crate::types::{Action, Actor, Outcome};

impl Store {
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

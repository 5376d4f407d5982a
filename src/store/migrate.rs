//! Format migration: a format 1 store becomes format 2 at its first unlock (issue 8).
//!
//! Format 2 moves `last_used` out of each secret's metadata record into the bucketed
//! `last_used` table (`last_used.rs`), moves the current version's value into that record (the
//! `values` table keeps older versions only, `history.rs`; the row layout is `secret_row.rs`),
//! and derives fingerprints from the value instead of storing them. A build that writes format 2 opens a format 1 file
//! (its header, keyslots and records are read as they are), and at the first unlock — when it
//! has the keys, and before anything else is written — it:
//!
//! 1. writes a backup of the file as it is, `<store>.v1.bak` (0600, never overwriting: an
//!    existing one gets a numbered sibling), through the same consistent copy as `tresor
//!    backup`, audited as an `export`;
//! 2. in one durable transaction, re-seals every metadata record in the format 2 layout with
//!    its current value inside (removing that value's row and the `fingerprints` table),
//!    writes the `last_used` buckets from the times those records carried, writes the sealed
//!    `format` row and the header with version 2, and appends a `rekey` record naming the
//!    migration and the backup.
//!
//! A secret whose record does not open is left as format 1 wrote it (reading it is an
//! `integrity` error, as it was). One whose current value does not open migrates with that
//! value left in `values` (`SecretRec::current_in_values`): reading the value is an
//! `integrity` error naming its row, as it was; its metadata, older versions and the rest of
//! the store stay usable.
//!
//! A crash before the commit leaves the format 1 file as it was (and a backup beside it); the
//! next unlock migrates again. After it, a format 1 build refuses the file with
//! `unsupported_version` (it names the version), which is what the backup is for.
//!
//! **What binds the version.** Keyslot wraps and record envelopes bind
//! [`BINDING_VERSION`](crate::format::BINDING_VERSION) (always 1), so the migration does not
//! need every keyslot's secret nor break the audit chain. The header's version is bound by
//! the sealed `format` row instead: a format 2 header needs the row to say 2, and a format 1
//! header must have no row. Editing the header's version in either direction is an
//! `integrity` error at unlock.

use std::path::{Path, PathBuf};

use redb::ReadableTable;

use super::audit;
use super::history::ValuesMut;
use super::last_used::{BUCKETS, buckets_of, write_bucket};
use super::records::{SecretRec, SecretRecV1, value_key};
use super::refs::FINGERPRINTS_V1;
use super::{META, SECRETS, Store, VALUES};
use crate::error::{Error, Result};
use crate::format::{FORMAT_VERSION, TableId};
use crate::types::{Action, Actor, AuditEntry, Outcome};

/// The meta row that binds the header's format version (sealed).
const FORMAT: &str = "format";

/// Where the backup of a format 1 store goes: `<store>.v1.bak`, or the first free
/// `<store>.v1.bak.N`.
fn backup_path(store: &Path) -> PathBuf {
    let base = {
        let mut s = store.as_os_str().to_owned();
        s.push(".v1.bak");
        PathBuf::from(s)
    };
    if !base.exists() {
        return base;
    }
    (1u32..=u32::MAX)
        .map(|n| {
            let mut s = base.as_os_str().to_owned();
            s.push(format!(".{n}"));
            PathBuf::from(s)
        })
        .find(|p| !p.exists())
        .unwrap_or(base)
}

/// The backups format 1 stores left beside `store` at their migration (`<store>.v1.bak`,
/// `<store>.v1.bak.N`): they still open with the passphrases and key files the store had then.
pub fn format_1_backups(store: &Path) -> Vec<PathBuf> {
    let Some(name) = store.file_name().map(|n| {
        let mut s = n.to_owned();
        s.push(".v1.bak");
        s
    }) else {
        return Vec::new();
    };
    let dir = match store.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(std::result::Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            let base = name.to_string_lossy();
            n == base || n.strip_prefix(&*base).is_some_and(|r| r.starts_with('.'))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

impl Store {
    /// Where this unlock's migration from format 1 left the file as it was, if it migrated.
    pub fn migrated_backup(&self) -> Option<&Path> {
        self.migrated.as_deref()
    }

    /// Writes the sealed `format` row (a new store, and the migration), inside `txn`.
    pub(super) fn write_format(&self, txn: &redb::WriteTransaction, version: u16) -> Result<()> {
        let sealed = self.seal_row(TableId::Meta, FORMAT.as_bytes(), &version)?;
        txn.open_table(META)?.insert(FORMAT, sealed.as_slice())?;
        Ok(())
    }

    /// Whether the `last_used` table exists: only format 2 makes it (a store made by format
    /// 2 whose header was set back to 1 and its `format` row deleted must not migrate).
    fn has_format_2_tables(&self) -> Result<bool> {
        let txn = self.db.begin_read()?;
        match txn.open_table(super::last_used::LAST_USED) {
            Ok(_) => Ok(true),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The sealed format version, if the store has the row.
    fn sealed_format(&self) -> Result<Option<u16>> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let raw = meta.get(FORMAT)?;
        raw.map(|g| self.open_row::<u16>(TableId::Meta, FORMAT.as_bytes(), g.value()))
            .transpose()
    }

    /// Checks the header's version against the sealed one, and migrates a format 1 store
    /// (see the module docs). Returns where the backup went, when it migrated.
    ///
    /// # Errors
    /// `Integrity` when the header's version and the sealed row disagree; I/O and storage
    /// errors (the store is then left in format 1).
    pub(super) fn check_or_migrate(&mut self, actor: &Actor) -> Result<Option<PathBuf>> {
        let sealed = self.sealed_format()?;
        match (self.header.version, sealed) {
            (v, Some(s)) if v == FORMAT_VERSION && s == v => Ok(None),
            // A large transaction writes pages before its commit: a disk failure shows there.
            (1, None) if self.has_format_2_tables()? => Err(Error::integrity(
                "meta",
                "format (the header says version 1, but the store has format 2's last_used table)",
            )),
            (1, None) => {
                let migrated = self.migrate_v1(actor);
                let backup = migrated.inspect_err(|e| self.db.observe_write(e))?;
                self.migrated = Some(backup.clone()).filter(|b| !b.as_os_str().is_empty());
                Ok(Some(backup))
            }
            (v, s) => Err(Error::integrity(
                "meta",
                format!(
                    "format (the header says version {v}, the sealed row says {})",
                    s.map_or_else(|| "nothing".to_owned(), |s| s.to_string())
                ),
            )),
        }
    }

    fn migrate_v1(&mut self, actor: &Actor) -> Result<PathBuf> {
        let backup = if self.db.is_file() {
            let out = backup_path(&self.path);
            self.backup_into(
                actor,
                &out,
                &format!("backup before the format 2 migration: {}", out.display()),
            )?;
            out
        } else {
            PathBuf::new()
        };
        let txn = self.db.begin_write()?;
        let mut times = Vec::new();
        {
            let mut secrets = txn.open_table(SECRETS)?;
            let mut values = txn.open_table(VALUES)?;
            let mut rows = Vec::new();
            for row in secrets.iter()? {
                let (k, v) = row?;
                // A record that does not open stays as it is: reading it is an `integrity`
                // error naming it, as in format 1, and the rest of the store migrates.
                let Ok(old) = self.open_row::<SecretRecV1>(TableId::Secrets, k.value(), v.value())
                else {
                    continue;
                };
                let (mut rec, last_used) = old.upgrade();
                self.inline_v1_current(&mut values, k.value(), &mut rec)?;
                if let Some(t) = last_used {
                    times.push((*k.value(), t));
                }
                rows.push((
                    *k.value(),
                    self.seal_row::<SecretRec>(TableId::Secrets, k.value(), &rec)?,
                ));
            }
            for (k, v) in &rows {
                secrets.insert(k, v.as_slice())?;
            }
        }
        txn.delete_table(FINGERPRINTS_V1)?;
        // Made even when empty: its presence tells format 2 from format 1 (see above).
        txn.open_table(super::last_used::LAST_USED)?;
        let buckets = buckets_of(times);
        for (b, entries) in buckets.iter().enumerate().take(BUCKETS) {
            if !entries.is_empty() {
                write_bucket(&self.keys, &self.header.store_id, &txn, b, entries)?;
            }
        }
        self.write_format(&txn, FORMAT_VERSION)?;
        let mut header = self.header;
        header.version = FORMAT_VERSION;
        txn.open_table(META)?
            .insert("header", header.encode().as_slice())?;
        let what = if backup.as_os_str().is_empty() {
            "format 1 → 2".to_owned()
        } else {
            format!("format 1 → 2 (backup {})", backup.display())
        };
        audit::append(
            self,
            &txn,
            &[AuditEntry::new(actor, Action::Rekey, Outcome::Ok).named(what)],
        )?;
        self.db.commit(txn)?;
        self.header = header;
        tracing::warn!(
            backup = %backup.display(),
            "migrated the store from format 1 to format 2; the format 1 file is kept as the \
             backup, which still opens with this store's passphrases and key files: remove it \
             once you no longer need to go back"
        );
        Ok(backup)
    }

    /// The migration's step for the inline current value (`history.rs`): moves the current
    /// version's row out of `values` into the record (format 1 kept every version there).
    /// The `fingerprints` table goes too (format 2 derives fingerprints from the value).
    ///
    /// A current version whose row is missing or does not open is left where it is, and the
    /// record says so ([`SecretRec::current_in_values`]): reading that value is an
    /// `integrity` error naming the row, as in format 1, while the secret's metadata, its
    /// older versions and the rest of the store stay usable, and its next write replaces it.
    fn inline_v1_current(
        &self,
        values: &mut ValuesMut<'_>,
        h: &[u8; 32],
        rec: &mut SecretRec,
    ) -> Result<()> {
        let vk = value_key(h, rec.version);
        let current = values
            .get(&vk)?
            .and_then(|raw| self.open_row(TableId::Values, &vk, raw.value()).ok());
        if let Some(current) = current {
            values.remove(&vk)?;
            rec.current = current;
        } else {
            tracing::warn!(
                record = %crate::format::record_label(&vk),
                "a secret's current value does not open; it stays as format 1 left it"
            );
            rec.current_in_values = true;
        }
        Ok(())
    }
}

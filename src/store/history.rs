//! Versions beside the inline current value (format 2).
//!
//! A secret's current value lives in its own `secrets` record ([`SecretRec::current`]), so that
//! reading it is one point get and one open. The `values` table holds only the older versions
//! it keeps (for `--version N` reads, rollback and bundles with history), keyed by name hash ‖
//! version: never a row for the current version. A write that makes a new current version
//! moves the previous current value into `values` and removes the versions beyond
//! `max_versions` from both, in the writer's transaction ([`Store::settle_versions`]).

use redb::{ReadableTable, Table};

use super::Store;
use super::records::{SecretRec, ValueRec, value_key};
use crate::error::{Error, Result};
use crate::format::TableId;

/// The `values` table open for writing.
pub(super) type ValuesMut<'t> = Table<'t, &'static [u8; 40], &'static [u8]>;

impl Store {
    /// The value of an older (not current) version from `values`, if it is kept.
    pub(super) fn older_value(
        &self,
        values: &impl ReadableTable<&'static [u8; 40], &'static [u8]>,
        h: &[u8; 32],
        version: u64,
    ) -> Result<Option<ValueRec>> {
        let vk = value_key(h, version);
        match values.get(&vk)? {
            Some(raw) => Ok(Some(self.open_row(TableId::Values, &vk, raw.value())?)),
            None => Ok(None),
        }
    }

    /// The value of any kept version of `rec`: its own current value, or an older one.
    pub(super) fn value_of(
        &self,
        values: &impl ReadableTable<&'static [u8; 40], &'static [u8]>,
        h: &[u8; 32],
        rec: &SecretRec,
        version: u64,
    ) -> Result<Option<ValueRec>> {
        if version == rec.version && !rec.current_in_values {
            return Ok(Some(rec.current.clone()));
        }
        if !rec.versions.iter().any(|v| v.version == version) {
            return Ok(None);
        }
        self.older_value(values, h, version)
    }

    /// The current value of `rec` (hash `h`) when the migration left it in `values`
    /// ([`SecretRec::current_in_values`]): that row opened, so a damaged one is an `integrity`
    /// error naming it, and a missing one too.
    pub(super) fn current_from_values(&self, h: &[u8; 32], rec: &SecretRec) -> Result<ValueRec> {
        let txn = self.db.begin_read()?;
        let values = txn.open_table(super::VALUES)?;
        self.older_value(&values, h, rec.version)?.ok_or_else(|| {
            Error::integrity(
                "values",
                crate::format::record_label(&value_key(h, rec.version)),
            )
        })
    }

    /// Brings `values` and `rec` in line after a write. `rec` holds its final metadata (its
    /// `version` and `versions`, new versions pushed) and still the current value of version
    /// `prev` (`None` for a new secret); `writes` are the values of the new versions, the last
    /// of which is `rec.version` (empty for a change of metadata only).
    ///
    /// Drops the versions beyond `max_versions` (their rows go), moves the value of `prev`
    /// into `values` when a new version replaces it and it is still kept, writes the other new
    /// versions that are kept, and makes the newest the record's current value.
    ///
    /// # Errors
    /// Storage errors; `Internal` when `writes` do not end at `rec.version`.
    pub(super) fn settle_versions(
        &self,
        values: &mut ValuesMut<'_>,
        h: &[u8; 32],
        rec: &mut SecretRec,
        prev: Option<u64>,
        writes: Vec<(u64, ValueRec)>,
    ) -> Result<()> {
        let keep = rec.max_versions.max(1) as usize;
        if rec.versions.len() > keep {
            let cut = rec.versions.len() - keep;
            for gone in rec.versions.drain(..cut) {
                values.remove(&value_key(h, gone.version))?;
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        if writes.last().map(|(v, _)| *v) != Some(rec.version) {
            return Err(Error::Internal {
                message: "a write's new versions do not end at the current version".into(),
                source: None,
            });
        }
        let old = std::mem::take(&mut rec.current);
        let kept = |rec: &SecretRec, v: u64| rec.versions.iter().any(|x| x.version == v);
        // A current value left in `values` by the migration stays there as the row of its
        // version (or goes, if that version is no longer kept): `old` is empty, not it.
        let old = match prev.filter(|p| *p != rec.version) {
            Some(p) if rec.current_in_values => {
                if !kept(rec, p) {
                    values.remove(&value_key(h, p))?;
                }
                None
            }
            Some(p) => Some((p, old)),
            None => None,
        };
        rec.current_in_values = false;
        let older = old.into_iter().chain(writes);
        for (v, val) in older {
            if v == rec.version {
                rec.current = val;
            } else if kept(rec, v) {
                let vk = value_key(h, v);
                values.insert(&vk, self.seal_row(TableId::Values, &vk, &val)?.as_slice())?;
            }
        }
        Ok(())
    }

    /// Removes the older versions of a deleted secret from `values` (its current value goes
    /// with its record).
    pub(super) fn drop_history(
        values: &mut ValuesMut<'_>,
        h: &[u8; 32],
        rec: &SecretRec,
    ) -> Result<()> {
        for v in rec
            .versions
            .iter()
            .filter(|v| v.version != rec.version || rec.current_in_values)
        {
            values.remove(&value_key(h, v.version))?;
        }
        Ok(())
    }
}

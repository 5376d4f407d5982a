//! Executable paths in audit records, interned (SPEC §10: an audit record ≤ 160 bytes).
//!
//! A caller's executable path (`/usr/lib/python3.11/venv/bin/python3`, 30–60 bytes) repeats in
//! every record of that caller. It is stored once, sealed in the meta table under `exe/<id>`,
//! and a record carries `\0<id>` in its `exe` field instead: a real path never contains NUL,
//! so records written before interning (which hold the path itself) read unchanged, and the
//! record layout and its payload encoding stay those of format 1. Reading a record resolves
//! the reference; a reference whose row is missing reads as `?` (and `audit verify` still
//! checks the record itself, whose MAC covers the reference).

use std::collections::HashMap;
use std::sync::PoisonError;

use redb::{ReadableTable, WriteTransaction};

use super::records::{open_with, seal_with};
use super::{META, Store};
use crate::crypto::SubKeys;
use crate::error::Result;
use crate::format::TableId;

/// Paths by id and ids by path, as far as this process has seen them.
#[derive(Debug, Default)]
pub(crate) struct Exes {
    ids: HashMap<String, u32>,
    paths: HashMap<u32, String>,
}

fn key(id: u32) -> String {
    format!("exe/{id}")
}

/// The `exe` field of a record naming interned path `id`.
fn reference(id: u32) -> String {
    format!("\0{id}")
}

impl Store {
    fn exes(&self) -> std::sync::MutexGuard<'_, Exes> {
        self.exes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reference to store for `path`, writing its row into `txn` when this transaction is
    /// the first to need it (then the flag is true).
    pub(super) fn intern_exe(&self, txn: &WriteTransaction, path: &str) -> Result<(String, bool)> {
        let mut exes = self.exes();
        let id = if let Some(id) = exes.ids.get(path) {
            *id
        } else {
            let meta = txn.open_table(META)?;
            // Ids seen by this process, and rows already in the file.
            let mut id = exes.paths.keys().max().map_or(1, |m| m + 1);
            while meta.get(key(id).as_str())?.is_some() {
                id += 1;
            }
            drop(meta);
            exes.ids.insert(path.to_owned(), id);
            exes.paths.insert(id, path.to_owned());
            id
        };
        // The row may be missing when the transaction that first wrote it failed.
        let mut meta = txn.open_table(META)?;
        let k = key(id);
        let missing = meta.get(k.as_str())?.is_none();
        if missing {
            let sealed = seal_with(
                &self.keys,
                &self.header.store_id,
                TableId::Meta,
                k.as_bytes(),
                &path,
            )?;
            meta.insert(k.as_str(), sealed.as_slice())?;
        }
        Ok((reference(id), missing))
    }

    /// The path a record's `exe` field names: itself, or the interned path it refers to.
    pub(super) fn resolve_exe(&self, field: String) -> String {
        let Some(id) = field.strip_prefix('\0').and_then(|s| s.parse::<u32>().ok()) else {
            return field;
        };
        if let Some(p) = self.exes().paths.get(&id) {
            return p.clone();
        }
        let found = (|| -> Result<Option<String>> {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            let k = key(id);
            let row = meta.get(k.as_str())?;
            row.map(|g| {
                open_with(
                    &self.keys,
                    &self.header.store_id,
                    TableId::Meta,
                    k.as_bytes(),
                    g.value(),
                )
            })
            .transpose()
        })();
        match found {
            Ok(Some(path)) => {
                let mut exes = self.exes();
                exes.ids.insert(path.clone(), id);
                exes.paths.insert(id, path.clone());
                path
            }
            _ => "?".to_owned(),
        }
    }
}

/// Re-seals every interned path under `new` (rekey), inside `txn`.
pub(super) fn rekey(store: &Store, new: &SubKeys, txn: &WriteTransaction) -> Result<()> {
    let id = &store.header.store_id;
    let mut meta = txn.open_table(META)?;
    let mut rows = Vec::new();
    for row in meta.range("exe/".."exe0")? {
        let (k, v) = row?;
        let path: String = open_with(
            &store.keys,
            id,
            TableId::Meta,
            k.value().as_bytes(),
            v.value(),
        )?;
        rows.push((k.value().to_owned(), path));
    }
    for (k, path) in rows {
        let sealed = seal_with(new, id, TableId::Meta, k.as_bytes(), &path)?;
        meta.insert(k.as_str(), sealed.as_slice())?;
    }
    Ok(())
}

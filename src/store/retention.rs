//! Audit retention (SPEC §3): `prune` removes the records older than a time and leaves a
//! checkpoint, so that `verify` still walks an unbroken chain and says what was removed.
//!
//! The chain is `mac(n) = MAC(mac(n-1), n, record n)` from a genesis MAC. Pruning seqs
//! `1..=S` keeps the chain checkable from `S + 1` on if the walk knows `mac(S)`: the
//! checkpoint (`audit_base` in the meta table, sealed under the data key like every record)
//! holds `S`, `mac(S)`, how many records were removed and how many of each action. Without the
//! data key it can be neither forged nor moved to another store; a file rolled back to an older
//! copy is what `verify --head` catches, as before. Every prune also appends a record of its
//! own (action `prune`), so the log itself says that it was shortened, by whom and how far.
//!
//! Pruning first checks the MACs of what it removes: a broken chain is evidence, and is not
//! removed. Freed pages go back to redb's free list and are reused by later appends, so a log
//! under retention stops growing the file; `tresor --direct compact` also returns them to the
//! file system.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::audit::{self, EntryRec};
use super::records::{open_with, seal_with};
use super::{AUDIT, META, Store};
use crate::crypto::SubKeys;
use crate::error::{Error, Result};
use crate::format::{AuditLayout, TableId};
use crate::types::{Action, Actor, AuditEntry, AuditQuery, AuditRecord, Outcome, PruneReport};
use jiff::Timestamp;

const BASE: &str = "audit_base";

/// Where the chain starts after a prune.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    /// The last removed seq; the chain resumes at `upto + 1`.
    pub upto: u64,
    /// The chain MAC of seq `upto`.
    pub mac: [u8; 32],
    /// Records removed, over every prune.
    pub pruned: u64,
    /// Of those, how many of each action.
    pub by_action: Vec<(Action, u64)>,
}

/// The checkpoint, or the genesis of an unpruned chain (`upto` 0).
pub(super) fn base(
    keys: &SubKeys,
    store_id: &[u8; 16],
    bytes: Option<&[u8]>,
) -> Result<Checkpoint> {
    match bytes {
        None => Ok(Checkpoint {
            mac: AuditLayout::genesis(&keys.audit, store_id),
            ..Checkpoint::default()
        }),
        Some(b) => open_with(keys, store_id, TableId::Meta, BASE.as_bytes(), b),
    }
}

/// The checkpoint as stored in `txn`.
pub(super) fn read_base(
    keys: &SubKeys,
    store_id: &[u8; 16],
    txn: &WriteTransaction,
) -> Result<Checkpoint> {
    let meta = txn.open_table(META)?;
    let raw = meta.get(BASE)?;
    base(keys, store_id, raw.as_ref().map(redb::AccessGuard::value))
}

/// Reads the checkpoint in a read transaction.
pub(super) fn read_base_ro(
    keys: &SubKeys,
    store_id: &[u8; 16],
    txn: &redb::ReadTransaction,
) -> Result<Checkpoint> {
    let meta = txn.open_table(META)?;
    let raw = meta.get(BASE)?;
    base(keys, store_id, raw.as_ref().map(redb::AccessGuard::value))
}

/// Seals `cp` as the checkpoint (only written once something was pruned).
pub(super) fn write_base(
    keys: &SubKeys,
    store_id: &[u8; 16],
    txn: &WriteTransaction,
    cp: &Checkpoint,
) -> Result<()> {
    let sealed = seal_with(keys, store_id, TableId::Meta, BASE.as_bytes(), cp)?;
    txn.open_table(META)?.insert(BASE, sealed.as_slice())?;
    Ok(())
}

impl Store {
    /// Removes the audit records older than `before` (owners), after checking their MACs,
    /// and appends a `prune` record; `audit verify` then starts from the checkpoint and
    /// reports what was removed. Nothing older than `before` → nothing removed, nothing
    /// appended.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `Integrity` when a record to remove fails its MAC
    /// (nothing is removed).
    pub fn audit_prune(&self, actor: &Actor, before: Timestamp) -> Result<PruneReport> {
        self.authorize(actor, Action::Prune, "audit prune")?;
        // The reads about to be removed must be in `last_used` first: replay starts after the
        // fold mark, and pruned records cannot be replayed.
        self.fold_last_used()?;
        let id = &self.header.store_id;
        let cutoff = before.as_microsecond();
        let txn = self.db.begin_write()?;
        let mut cp = read_base(&self.keys, id, &txn)?;
        let first = cp.upto + 1;
        let mut upto = cp.upto;
        let mut mac = cp.mac;
        let mut counts: Vec<(Action, u64)> = Vec::new();
        {
            let table = txn.open_table(AUDIT)?;
            for row in table.range(first..)? {
                let (k, v) = row?;
                let seq = k.value();
                let broken = || Error::integrity("audit", format!("seq {seq}"));
                let (m, env) = AuditLayout::split(v.value()).ok_or_else(broken)?;
                if seq != upto + 1 || AuditLayout::mac(&self.keys.audit, &mac, seq, env) != m {
                    return Err(broken());
                }
                let rec: EntryRec = self.open_row(TableId::Audit, &seq.to_be_bytes(), env)?;
                if rec.time_micros() >= cutoff {
                    break;
                }
                match counts.iter_mut().find(|(a, _)| *a == rec.action()) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((rec.action(), 1)),
                }
                upto = seq;
                mac = m;
            }
        }
        let removed = upto - cp.upto;
        if removed == 0 {
            return Ok(PruneReport {
                pruned: 0,
                first_seq: None,
                before_seq: cp.upto + 1,
                total_pruned: cp.pruned,
            });
        }
        txn.open_table(AUDIT)?
            .retain_in(first..=upto, |_, _| false)?;
        cp.upto = upto;
        cp.mac = mac;
        cp.pruned += removed;
        for (a, n) in &counts {
            match cp.by_action.iter_mut().find(|(b, _)| b == a) {
                Some((_, m)) => *m += n,
                None => cp.by_action.push((*a, *n)),
            }
        }
        write_base(&self.keys, id, &txn, &cp)?;
        let summary: Vec<String> = counts.iter().map(|(a, n)| format!("{a} {n}")).collect();
        let entry = AuditEntry::new(actor, Action::Prune, Outcome::Ok).named(format!(
            "pruned {removed} records, seq {first}-{upto}, before {before} ({})",
            summary.join(", ")
        ));
        audit::append(self, &txn, &[entry])?;
        self.db.commit(txn)?;
        Ok(PruneReport {
            pruned: removed,
            first_seq: Some(first),
            before_seq: upto + 1,
            total_pruned: cp.pruned,
        })
    }

    /// A page of the audit log for a SIEM (`audit export`, owners): the oldest `page` records
    /// matching `q`, recorded as an `export` of that seq range before they are returned.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `Integrity` for a record that does not open; a
    /// failed audit write (nothing is returned).
    pub fn audit_export(
        &self,
        actor: &Actor,
        q: &AuditQuery,
        page: usize,
    ) -> Result<Vec<AuditRecord>> {
        self.authorize(actor, Action::Export, "audit export")?;
        let records = self.audit_scan(q, Some(page.max(1)))?;
        if let (Some(a), Some(b)) = (records.first(), records.last()) {
            self.record(
                &AuditEntry::new(actor, Action::Export, Outcome::Ok).named(format!(
                    "audit seq {}-{} ({} records)",
                    a.seq,
                    b.seq,
                    records.len()
                )),
            )?;
        }
        Ok(records)
    }
}

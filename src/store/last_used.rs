//! `last_used` without a write per read (SPEC §3; issue 8).
//!
//! A value read's only durable work is its audit record: an append at the right edge of the
//! audit table (keyed by seq) and the chain head, once per group commit. `last_used` is not
//! written there; it is *derived* from those records and folded into the secrets' metadata
//! records later, in batches:
//!
//! - Inside the read's write transaction, before it commits, each secret read is noted in an
//!   in-memory map (name hash → time). Write transactions are exclusive, so a fold (also a
//!   write transaction) sees every read whose record it can see. If the commit fails, the
//!   notes are put back as they were.
//! - Listings, `show` and writes' answers show the later of the stored `last_used` and the
//!   noted one, so every reader sees every read at once.
//! - A fold (every 5 s of reads or 4,096 noted secrets, before a prune or a rekey, and when
//!   the store is closed) re-seals each noted secret's metadata record with its new
//!   `last_used` and records, in the same transaction, the audit seq up to which reads are
//!   folded (`last_used_seq` in the meta table, sealed).
//! - At unlock, the audit records after that seq are replayed: every successful `read` or
//!   `export` of a secret notes its time again. So after a crash (kill -9, power loss)
//!   `last_used` is exactly what the durable audit log says, and no read is ever lost from it.
//!
//! A note older than the secret's creation is dropped (a read of a deleted secret whose name
//! was reused). Per read, the metadata record is no longer re-sealed and its B-tree path in
//! the (large) secrets table no longer copied and written: that was most of a read's durable
//! bytes at 100k secrets.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use redb::{ReadableTable, WriteTransaction};

use super::audit::{self, EntryRec};
use super::records::{SecretRec, open_with, seal_with, ts};
use super::{AUDIT, META, SECRETS, Store};
use crate::error::Result;
use crate::format::TableId;
use crate::types::{Action, Outcome, Scope, SecretMeta};

/// The meta row: the audit seq up to which reads are folded into `last_used`.
const FOLDED: &str = "last_used_seq";
/// Fold after this long with reads noted...
const FOLD_EVERY: Duration = Duration::from_secs(5);
/// ...or once this many secrets are noted.
const FOLD_AT: usize = 4096;

/// Reads noted since the last fold.
#[derive(Debug)]
pub(crate) struct Noted {
    map: HashMap<[u8; 32], i64>,
    folded_at: Instant,
}

impl Default for Noted {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            folded_at: Instant::now(),
        }
    }
}

/// What a note replaced, to put back when the read's commit fails.
pub(super) type Undo = Vec<([u8; 32], Option<i64>)>;

fn read_folded(store: &Store, bytes: Option<&[u8]>) -> Result<Option<u64>> {
    bytes
        .map(|b| {
            open_with(
                &store.keys,
                &store.header.store_id,
                TableId::Meta,
                FOLDED.as_bytes(),
                b,
            )
        })
        .transpose()
}

fn write_folded(store: &Store, txn: &WriteTransaction, seq: u64) -> Result<()> {
    let sealed = seal_with(
        &store.keys,
        &store.header.store_id,
        TableId::Meta,
        FOLDED.as_bytes(),
        &seq,
    )?;
    txn.open_table(META)?.insert(FOLDED, sealed.as_slice())?;
    Ok(())
}

impl Store {
    fn noted(&self) -> std::sync::MutexGuard<'_, Noted> {
        self.noted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes reads of `hashes` at `at` (inside the read's write transaction).
    pub(super) fn note_reads(&self, hashes: &[[u8; 32]], at: i64) -> Undo {
        let mut n = self.noted();
        hashes.iter().map(|h| (*h, n.map.insert(*h, at))).collect()
    }

    /// Puts back what [`Store::note_reads`] replaced (the read's commit failed).
    pub(super) fn unnote(&self, undo: Undo) {
        let mut n = self.noted();
        for (h, old) in undo.into_iter().rev() {
            match old {
                Some(t) => n.map.insert(h, t),
                None => n.map.remove(&h),
            };
        }
    }

    /// The `last_used` a reader sees: the later of the stored one and a note.
    pub(super) fn last_used_of(&self, hash: &[u8; 32], rec: &SecretRec) -> Option<i64> {
        let noted = self
            .noted()
            .map
            .get(hash)
            .copied()
            .filter(|t| *t >= rec.created_at);
        rec.last_used.max(noted)
    }

    /// A secret's metadata as readers see it (with noted reads in `last_used`).
    pub(super) fn meta_of(&self, hash: &[u8; 32], rec: &SecretRec) -> SecretMeta {
        let mut m = rec.to_meta();
        m.last_used = self.last_used_of(hash, rec).map(ts);
        m
    }

    /// Folds when enough has been noted (after a read's commit; a failure waits for the next).
    pub(super) fn fold_if_due(&self) {
        let due = {
            let n = self.noted();
            !n.map.is_empty() && (n.map.len() >= FOLD_AT || n.folded_at.elapsed() >= FOLD_EVERY)
        };
        if due {
            let _ = self.fold_last_used();
        }
    }

    /// Writes every noted `last_used` into its secret's metadata record, and the audit seq
    /// they are folded up to, in one durable transaction.
    ///
    /// # Errors
    /// Storage errors (the notes stay, for the next fold).
    pub(crate) fn fold_last_used(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        // Taken inside the write transaction: every read whose record this transaction can
        // see has noted its secrets already (see the module docs).
        let snapshot: Vec<([u8; 32], i64)> = {
            let mut n = self.noted();
            n.folded_at = Instant::now();
            n.map.iter().map(|(h, t)| (*h, *t)).collect()
        };
        let seq = audit::head_seq(self, &txn)?;
        {
            let mut secrets = txn.open_table(SECRETS)?;
            for (h, t) in &snapshot {
                let Some(raw) = secrets.get(h)?.map(|g| g.value().to_vec()) else {
                    continue;
                };
                // A record that does not open is reported by the reads and `verify`; it must
                // not stop the others from being folded.
                let Ok(mut rec) = self.open_row::<SecretRec>(TableId::Secrets, h, &raw) else {
                    continue;
                };
                if *t < rec.created_at || rec.last_used.is_some_and(|u| u >= *t) {
                    continue;
                }
                rec.last_used = Some(*t);
                secrets.insert(h, self.seal_row(TableId::Secrets, h, &rec)?.as_slice())?;
            }
        }
        write_folded(self, &txn, seq)?;
        self.db.commit(txn)?;
        let mut n = self.noted();
        for (h, t) in snapshot {
            if n.map.get(&h) == Some(&t) {
                n.map.remove(&h);
            }
        }
        Ok(())
    }

    /// Marks every read so far as folded, inside `txn` (rekey, after folding: the mark is
    /// re-sealed under the new key).
    pub(super) fn mark_folded(&self, txn: &WriteTransaction) -> Result<()> {
        write_folded(self, txn, audit::head_seq(self, txn)?)
    }

    /// Marks every read so far as folded when the store has no mark yet (a new store, or
    /// one whose reads wrote `last_used` directly), inside `txn`.
    pub(super) fn mark_folded_if_absent(&self, txn: &WriteTransaction) -> Result<()> {
        if txn.open_table(META)?.get(FOLDED)?.is_none() {
            write_folded(self, txn, audit::head_seq(self, txn)?)?;
        }
        Ok(())
    }

    /// Replays the audit records after the fold mark (at unlock): each successful `read` or
    /// `export` of a secret notes its time again.
    ///
    /// # Errors
    /// `Integrity` when the mark or the head does not open; storage errors.
    pub(super) fn replay_reads(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let Some(folded) = read_folded(
            self,
            meta.get(FOLDED)?.as_ref().map(redb::AccessGuard::value),
        )?
        else {
            return Ok(0);
        };
        // Up to the head: a row past it is not part of the log (`verify` reports it).
        let head = self.current_audit_head()?.seq;
        let table = txn.open_table(AUDIT)?;
        let mut replayed = 0;
        let mut noted = self.noted();
        for row in table.range(folded.saturating_add(1)..=head)? {
            let (k, v) = row?;
            let seq = k.value();
            let Some((_, env)) = crate::format::AuditLayout::split(v.value()) else {
                continue;
            };
            // A record that does not open is `verify`'s to report; unlock goes on.
            let Ok(rec) = self.open_row::<EntryRec>(TableId::Audit, &seq.to_be_bytes(), env) else {
                continue;
            };
            let Some((scope, name)) = rec.read_of() else {
                continue;
            };
            let Ok(scope) = scope.parse::<Scope>() else {
                continue;
            };
            let name = name.split_once('#').map_or(name, |(n, _)| n);
            let h = self.secret_hash(&scope, name);
            let at = noted.map.entry(h).or_insert(rec.time_micros());
            *at = (*at).max(rec.time_micros());
            replayed += 1;
        }
        Ok(replayed)
    }
}

impl EntryRec {
    /// The scope and name of a successful value read (`read`, `export`), if this is one.
    pub(super) fn read_of(&self) -> Option<(&str, &str)> {
        let (action, outcome) = (self.action(), self.outcome());
        if !matches!(action, Action::Read | Action::Export) || outcome != Outcome::Ok {
            return None;
        }
        Some((self.scope()?, self.name()?))
    }
}

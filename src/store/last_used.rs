//! `last_used` without a write per read (SPEC §3; issue 8).
//!
//! A value read's only durable work is its audit record: an append at the right edge of the
//! audit table (keyed by seq) and the chain head, once per group commit. `last_used` is not
//! written there; it is *derived* from those records and folded into the `last_used` table
//! later, in batches:
//!
//! - Inside the read's write transaction, before it commits, each secret read is noted in an
//!   in-memory map (name hash → time). Write transactions are exclusive, so a fold (also a
//!   write transaction) sees every read whose record it can see. If the commit fails, the
//!   notes are put back as they were.
//! - Listings, `show` and writes' answers show the later of the folded `last_used` and the
//!   noted one, so every reader sees every read at once.
//! - A fold (every 5 s of reads or 16,384 noted secrets, before a prune or a rekey, and when
//!   the store is closed) re-seals each bucket of the `last_used` table that a note falls in,
//!   and records, in the same transaction, the audit seq up to which reads are folded
//!   (`last_used_seq` in the meta table, sealed).
//! - At unlock, the audit records after that seq are replayed: every successful `read` or
//!   `export` of a secret notes its time again. So after a crash (kill -9, power loss)
//!   `last_used` is exactly what the durable audit log says, and no read is ever lost from it.
//!
//! **The table** (format 2). Names are hidden at rest, so the table is keyed like everything
//! else by name hash, but not one row per secret: [`BUCKETS`] sealed rows, bucket `b` holding
//! `(hash[2..10], time)` for every secret whose hash starts with `b` (its first 10 bits). A
//! fold re-seals at most [`BUCKETS`] small rows (about 1.6 KB each at 100k secrets), however
//! many secrets were read, where format 1 re-sealed each read secret's metadata record (and
//! copied its leaf of the large `secrets` table): at 100k secrets with reads spread over all of
//! them that was one metadata re-seal per read, on the committer's path. The buckets are also
//! kept decoded in memory (16 bytes a secret), so that a listing adds no decryption.
//!
//! A delete drops its secret's entry (bucket, memory and notes). A time older than the
//! secret's creation is not shown either (a read of a deleted secret whose name was reused).
//!
//! **The copy in memory** is only for readers: every write of a bucket (a fold, a delete)
//! starts from the row as its own write transaction reads it, and updates the copy inside that
//! transaction, so the copy changes in the order the table does.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::audit::{self, EntryRec};
use super::records::{SecretRec, open_with, seal_with, ts};
use super::{AUDIT, META, Store};
use crate::error::Result;
use crate::format::TableId;
use crate::types::{Action, Outcome, Scope, SecretMeta};

/// The `last_used` table: bucket number → sealed [`Bucket`].
pub(super) const LAST_USED: TableDefinition<u32, &[u8]> = TableDefinition::new("last_used");
/// How many buckets the name hashes are spread over (the first 10 bits of a hash).
pub(super) const BUCKETS: usize = 1024;
/// The meta row: the audit seq up to which reads are folded into `last_used`.
const FOLDED: &str = "last_used_seq";
/// Fold after this long with reads noted...
const FOLD_EVERY: Duration = Duration::from_secs(5);
/// ...or once this many secrets are noted (under 1 MiB of notes: the daemon's memory budget).
const FOLD_AT: usize = 16_384;

/// With nothing to fold, the mark is moved only once it lags the head by this many records.
const MARK_LAG: u64 = 4096;

/// One bucket's payload: `(hash[2..10], last_used)`, sorted by the hash bytes.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Bucket(Vec<([u8; 8], i64)>);

/// Where a name hash's `last_used` lives: its bucket and its key inside it.
fn slot(hash: &[u8; 32]) -> (usize, [u8; 8]) {
    let b = (usize::from(hash[0]) << 2) | (usize::from(hash[1]) >> 6);
    let mut k = [0u8; 8];
    k.copy_from_slice(&hash[2..10]);
    (b, k)
}

/// Reads noted since the last fold, and the folded times (the table, decoded).
#[derive(Debug)]
pub(crate) struct Noted {
    map: HashMap<[u8; 32], i64>,
    folded_at: Instant,
    /// The `last_used` table as last loaded or folded, one map per bucket.
    stored: Vec<HashMap<[u8; 8], i64>>,
}

impl Default for Noted {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            folded_at: Instant::now(),
            stored: vec![HashMap::new(); BUCKETS],
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

/// Seals one bucket's entries (sorted) into row `b` of the table, under `keys`.
pub(super) fn write_bucket(
    keys: &crate::crypto::SubKeys,
    store_id: &[u8; 16],
    txn: &WriteTransaction,
    b: usize,
    entries: &HashMap<[u8; 8], i64>,
) -> Result<()> {
    let key = u32::try_from(b).unwrap_or(u32::MAX);
    let mut table = txn.open_table(LAST_USED)?;
    if entries.is_empty() {
        table.remove(key)?;
        return Ok(());
    }
    let mut rows: Vec<([u8; 8], i64)> = entries.iter().map(|(k, t)| (*k, *t)).collect();
    rows.sort_unstable();
    let sealed = seal_with(
        keys,
        store_id,
        TableId::LastUsed,
        &key.to_be_bytes(),
        &Bucket(rows),
    )?;
    table.insert(key, sealed.as_slice())?;
    Ok(())
}

/// Builds the bucket maps from `(name hash, time)` pairs (the migration, rekey).
pub(super) fn buckets_of(
    times: impl IntoIterator<Item = ([u8; 32], i64)>,
) -> Vec<HashMap<[u8; 8], i64>> {
    let mut out = vec![HashMap::new(); BUCKETS];
    for (h, t) in times {
        let (b, k) = slot(&h);
        let at = out[b].entry(k).or_insert(t);
        *at = (*at).max(t);
    }
    out
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

    /// The `last_used` a reader sees: the later of the folded one and a note, unless older
    /// than the secret.
    pub(super) fn last_used_of(&self, hash: &[u8; 32], rec: &SecretRec) -> Option<i64> {
        let n = self.noted();
        let (b, k) = slot(hash);
        let stored = n.stored[b].get(&k).copied();
        let noted = n.map.get(hash).copied();
        stored.max(noted).filter(|t| *t >= rec.created_at)
    }

    /// A secret's metadata as readers see it (with its `last_used`).
    pub(super) fn meta_of(&self, hash: &[u8; 32], rec: &SecretRec) -> SecretMeta {
        let mut m = rec.to_meta();
        m.last_used = self.last_used_of(hash, rec).map(ts);
        m
    }

    /// Loads the `last_used` table into memory (at unlock, after a migration or a rekey).
    ///
    /// # Errors
    /// `Integrity` when a bucket does not open; storage errors.
    pub(super) fn load_last_used(&self) -> Result<()> {
        let txn = self.db.begin_read()?;
        let mut stored = vec![HashMap::new(); BUCKETS];
        match txn.open_table(LAST_USED) {
            Ok(table) => {
                for row in table.iter()? {
                    let (k, v) = row?;
                    let b = k.value() as usize;
                    let bucket: Bucket =
                        self.open_row(TableId::LastUsed, &k.value().to_be_bytes(), v.value())?;
                    if let Some(map) = stored.get_mut(b) {
                        map.extend(bucket.0);
                    }
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.noted().stored = stored;
        Ok(())
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

    /// Writes every noted `last_used` into its bucket, and the audit seq they are folded up
    /// to, in one durable transaction.
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
        if snapshot.is_empty() {
            // Nothing to fold: the mark only moves when the records after it (which unlock
            // would scan) grow many, so that a close right after a compaction does not write.
            let mark = {
                let meta = txn.open_table(META)?;
                let raw = meta.get(FOLDED)?;
                read_folded(self, raw.as_ref().map(redb::AccessGuard::value))?
            };
            if mark.is_some_and(|m| seq.saturating_sub(m) < MARK_LAG) {
                txn.abort()?;
                return Ok(());
            }
        }
        // Each touched bucket starts from the table as this transaction sees it (write
        // transactions are exclusive), never from the copy in memory: a delete or another
        // fold may have changed the row since that copy was made.
        let mut touched: HashMap<usize, HashMap<[u8; 8], i64>> = HashMap::new();
        for (h, t) in &snapshot {
            let (b, k) = slot(h);
            let bucket = match touched.entry(b) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.read_bucket(&txn, b)?)
                }
            };
            let at = bucket.entry(k).or_insert(*t);
            *at = (*at).max(*t);
        }
        for (b, entries) in &touched {
            write_bucket(&self.keys, &self.header.store_id, &txn, *b, entries)?;
        }
        write_folded(self, &txn, seq)?;
        // The copy in memory follows the table inside the transaction, so that copies change
        // in the order the table does. If the commit fails, it shows reads that did happen
        // (their notes stay, and the next fold starts from the table again).
        {
            let mut n = self.noted();
            for (b, entries) in touched {
                n.stored[b] = entries;
            }
        }
        self.db.commit(txn)?;
        let mut n = self.noted();
        for (h, t) in snapshot {
            if n.map.get(&h) == Some(&t) {
                n.map.remove(&h);
            }
        }
        Ok(())
    }

    /// One bucket as the table holds it in `txn`.
    fn read_bucket(&self, txn: &WriteTransaction, b: usize) -> Result<HashMap<[u8; 8], i64>> {
        let key = u32::try_from(b).unwrap_or(u32::MAX);
        let table = txn.open_table(LAST_USED)?;
        let Some(raw) = table.get(key)? else {
            return Ok(HashMap::new());
        };
        let bucket: Bucket = self.open_row(TableId::LastUsed, &key.to_be_bytes(), raw.value())?;
        Ok(bucket.0.into_iter().collect())
    }

    /// Drops a deleted secret's `last_used` inside the delete's `txn`: from its bucket (read
    /// from the table), from the copy in memory, and from the notes (every read of it noted
    /// before this exclusive transaction began; none can follow the delete). A secret made
    /// again under that name, even by a bundle that keeps its source's creation time, starts
    /// with no read.
    pub(super) fn forget_last_used(&self, txn: &WriteTransaction, hash: &[u8; 32]) -> Result<()> {
        let (b, k) = slot(hash);
        let mut entries = self.read_bucket(txn, b)?;
        if entries.remove(&k).is_some() {
            write_bucket(&self.keys, &self.header.store_id, txn, b, &entries)?;
        }
        let mut n = self.noted();
        n.stored[b] = entries;
        n.map.remove(hash);
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

/// Re-makes the `last_used` table under the new keys and name hashes, inside rekey's
/// transaction (rekey folds first, so the table holds every read). `rehash` maps each
/// secret's old name hash to its new one; entries of no secret are dropped.
pub(super) fn rekey(
    store: &Store,
    new: &crate::crypto::SubKeys,
    txn: &WriteTransaction,
    rehash: &HashMap<[u8; 32], [u8; 32]>,
) -> Result<()> {
    let mut times = Vec::new();
    {
        let table = txn.open_table(LAST_USED)?;
        let mut old: Vec<HashMap<[u8; 8], i64>> = vec![HashMap::new(); BUCKETS];
        for row in table.iter()? {
            let (k, v) = row?;
            let bucket: Bucket =
                store.open_row(TableId::LastUsed, &k.value().to_be_bytes(), v.value())?;
            if let Some(map) = old.get_mut(k.value() as usize) {
                map.extend(bucket.0);
            }
        }
        for (oh, nh) in rehash {
            let (b, k) = slot(oh);
            if let Some(t) = old[b].get(&k) {
                times.push((*nh, *t));
            }
        }
    }
    txn.open_table(LAST_USED)?.retain(|_, _| false)?;
    for (b, entries) in buckets_of(times).iter().enumerate() {
        if !entries.is_empty() {
            write_bucket(new, &store.header.store_id, txn, b, entries)?;
        }
    }
    Ok(())
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

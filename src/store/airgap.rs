//! State of the air-gapped features, sealed in the store: the bundle sequence counter, the last
//! sequence applied per source store (replay protection), the inbox's seen submissions, and
//! tombstones of deleted secrets (so that a bundle can carry deletions).
//!
//! | where | key | value |
//! |---|---|---|
//! | `meta` | `"airgap"` | sealed [`AirgapState`] |
//! | `tombstones` | name hash (32) | sealed [`Tombstone`] (scope, name, time of deletion) |

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::records::{open_with, seal_with, secret_hash};
use super::{META, Store};
use crate::crypto::SubKeys;
use crate::error::Result;
use crate::format::TableId;
use crate::format::bundle::Tombstone;
use crate::types::Scope;

pub(super) const TOMBSTONES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("tombstones");
const STATE: &str = "airgap";
/// Seen inbox submissions are remembered this long (µs): 90 days.
const SEEN_KEEP_US: i64 = 90 * 86_400 * 1_000_000;

/// The sealed counters.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct AirgapState {
    /// The last bundle sequence number this store made.
    pub out_seq: u64,
    /// Per source store id: the last sequence number applied.
    pub applied: Vec<([u8; 16], u64)>,
    /// Inbox submissions seen: a BLAKE3 of the id (or of the file) and when.
    pub seen: Vec<([u8; 32], i64)>,
}

impl AirgapState {
    pub fn last_applied(&self, source: &[u8; 16]) -> u64 {
        self.applied
            .iter()
            .find(|(s, _)| s == source)
            .map_or(0, |(_, n)| *n)
    }

    pub fn set_applied(&mut self, source: [u8; 16], seq: u64) {
        match self.applied.iter_mut().find(|(s, _)| *s == source) {
            Some(e) => e.1 = seq,
            None => self.applied.push((source, seq)),
        }
    }

    pub fn seen(&self, h: &[u8; 32]) -> bool {
        self.seen.iter().any(|(s, _)| s == h)
    }

    pub fn remember(&mut self, h: [u8; 32], now: i64) {
        self.seen.retain(|(_, t)| now - *t < SEEN_KEEP_US);
        self.seen.push((h, now));
    }
}

impl Store {
    pub(super) fn airgap_state(&self, txn: &WriteTransaction) -> Result<AirgapState> {
        let meta = txn.open_table(META)?;
        match meta.get(STATE)? {
            None => Ok(AirgapState::default()),
            Some(raw) => self.open_row(TableId::Meta, STATE.as_bytes(), raw.value()),
        }
    }

    pub(super) fn put_airgap_state(&self, txn: &WriteTransaction, s: &AirgapState) -> Result<()> {
        let sealed = self.seal_row(TableId::Meta, STATE.as_bytes(), s)?;
        txn.open_table(META)?.insert(STATE, sealed.as_slice())?;
        Ok(())
    }

    /// Records that a secret was deleted (inside the deleting transaction).
    pub(super) fn put_tombstone(
        &self,
        txn: &WriteTransaction,
        scope: &Scope,
        name: &str,
        at: i64,
    ) -> Result<()> {
        let h = self.secret_hash(scope, name);
        let t = Tombstone {
            scope: scope.clone(),
            name: name.to_owned(),
            deleted_at: at,
        };
        let sealed = self.seal_row(TableId::Secrets, &tomb_key(&h), &t)?;
        txn.open_table(TOMBSTONES)?.insert(&h, sealed.as_slice())?;
        Ok(())
    }

    /// Every tombstone (a store made before tombstones has none).
    pub(super) fn tombstones(&self) -> Result<Vec<Tombstone>> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(TOMBSTONES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push(self.open_row(TableId::Secrets, &tomb_key(k.value()), v.value())?);
        }
        Ok(out)
    }
}

/// A tombstone is sealed as a `secrets` record whose key is the name hash with a marker byte,
/// so that it cannot be swapped with a secret's metadata row.
fn tomb_key(h: &[u8; 32]) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[..32].copy_from_slice(h);
    k[32] = 0xdd;
    k
}

/// Re-seals the air-gap rows under `new` (rekey), re-hashing tombstone keys.
pub(super) fn rekey(store: &Store, new: &SubKeys, txn: &WriteTransaction) -> Result<()> {
    let id = &store.header.store_id;
    {
        let mut meta = txn.open_table(META)?;
        for key in [STATE, "identity"] {
            let raw = meta.get(key)?.map(|r| r.value().to_vec());
            if let Some(raw) = raw {
                let pt = crate::format::Envelope::open(
                    &store.keys.seal,
                    id,
                    TableId::Meta,
                    key.as_bytes(),
                    &raw,
                )?;
                let sealed = crate::format::Envelope::seal(
                    &new.seal,
                    id,
                    TableId::Meta,
                    key.as_bytes(),
                    &pt,
                )?;
                meta.insert(key, sealed.as_slice())?;
            }
        }
    }
    let mut table = txn.open_table(TOMBSTONES)?;
    let mut rows = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let t: Tombstone = open_with(
            &store.keys,
            id,
            TableId::Secrets,
            &tomb_key(k.value()),
            v.value(),
        )?;
        let nh = secret_hash(new, &t.scope, &t.name);
        rows.push((
            nh,
            seal_with(new, id, TableId::Secrets, &tomb_key(&nh), &t)?,
        ));
    }
    table.retain(|_, _| false)?;
    for (k, v) in &rows {
        table.insert(k, v.as_slice())?;
    }
    Ok(())
}

/// Copies the air-gap tables (tombstones, waiting inbox submissions) into a backup; a store
/// without them has nothing to copy.
pub(super) fn backup(r: &redb::ReadTransaction, w: &WriteTransaction) -> Result<()> {
    super::maintenance::copy_table_if_present(r, w, TOMBSTONES)?;
    super::maintenance::copy_table_if_present(r, w, super::inbox::INBOX)
}

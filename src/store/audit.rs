//! The audit log: sealed records in a MAC chain, appended in the same transaction as what they
//! record, and read back with filters or walked by `verify`.
//!
//! The append path (`append`) takes a slice of entries, so a group commit (many readers'
//! records in one durable transaction) uses the same code and the same format as a single
//! append.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::records::{open_with, seal_with, ts};
use super::{AUDIT, META, Store};
use crate::crypto::SubKeys;
use crate::error::{Error, Result};
use crate::format::{AuditLayout, TableId};
use crate::types::{
    Action, Actor, AuditEntry, AuditHead, AuditQuery, AuditRecord, Channel, HeadSpec, Outcome,
    VerifyReport,
};

/// The sealed payload of an audit record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct EntryRec {
    time: i64,
    principal: String,
    uid: u32,
    gid: u32,
    pid: u32,
    exe: Option<String>,
    action: Action,
    scope: Option<String>,
    name: Option<String>,
    version: Option<u64>,
    outcome: Outcome,
    channel: Channel,
}

impl From<&AuditEntry> for EntryRec {
    fn from(e: &AuditEntry) -> Self {
        Self {
            time: e.time.as_microsecond(),
            principal: e.principal.clone(),
            uid: e.uid,
            gid: e.gid,
            pid: e.pid,
            exe: e.exe.clone(),
            action: e.action,
            scope: e.scope.clone(),
            name: e.name.clone(),
            version: e.version,
            outcome: e.outcome,
            channel: e.channel,
        }
    }
}

impl EntryRec {
    /// When it happened, in microseconds since the epoch.
    pub(super) fn time_micros(&self) -> i64 {
        self.time
    }

    /// What happened.
    pub(super) fn action(&self) -> Action {
        self.action
    }

    /// How it ended.
    pub(super) fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The scope named, if any.
    pub(super) fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The name named, if any.
    pub(super) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub(super) fn into_record(self, seq: u64) -> AuditRecord {
        AuditRecord {
            seq,
            entry: AuditEntry {
                time: ts(self.time),
                principal: self.principal,
                uid: self.uid,
                gid: self.gid,
                pid: self.pid,
                exe: self.exe,
                action: self.action,
                scope: self.scope,
                name: self.name,
                version: self.version,
                outcome: self.outcome,
                channel: self.channel,
            },
        }
    }
}

const HEAD: &str = "audit_head";

fn read_head(keys: &SubKeys, store_id: &[u8; 16], bytes: Option<&[u8]>) -> Result<(u64, [u8; 32])> {
    match bytes {
        None => Ok((0, AuditLayout::genesis(&keys.audit, store_id))),
        Some(b) => open_with(keys, store_id, TableId::Meta, HEAD.as_bytes(), b),
    }
}

/// The seq of the last record, as `txn` sees it.
///
/// # Errors
/// `Integrity` when the head does not open.
pub(super) fn head_seq(store: &Store, txn: &WriteTransaction) -> Result<u64> {
    let meta = txn.open_table(META)?;
    let head = meta.get(HEAD)?;
    read_head(
        &store.keys,
        &store.header.store_id,
        head.as_ref().map(redb::AccessGuard::value),
    )
    .map(|(seq, _)| seq)
}

pub(super) fn write_head_with(
    keys: &SubKeys,
    store_id: &[u8; 16],
    txn: &WriteTransaction,
    seq: u64,
    mac: &[u8; 32],
) -> Result<()> {
    let sealed = seal_with(keys, store_id, TableId::Meta, HEAD.as_bytes(), &(seq, *mac))?;
    txn.open_table(META)?.insert(HEAD, sealed.as_slice())?;
    Ok(())
}

/// The chain head (seq, MAC) as `txn` sees it.
///
/// # Errors
/// `Integrity` when the head does not open, or is missing over existing records.
pub(super) fn head_in(
    keys: &SubKeys,
    store_id: &[u8; 16],
    txn: &WriteTransaction,
) -> Result<(u64, [u8; 32])> {
    let meta = txn.open_table(META)?;
    let head = meta.get(HEAD)?;
    if head.is_none() && txn.open_table(AUDIT)?.first()?.is_some() {
        return Err(Error::integrity("meta", HEAD));
    }
    read_head(keys, store_id, head.as_ref().map(redb::AccessGuard::value))
}

/// What an append for the audit journal collects besides the rows (`journal.rs`).
#[derive(Default)]
pub(super) struct Frames {
    /// The journal frames of the appended records.
    pub bytes: Vec<u8>,
    /// Whether the append wrote anything else (an interned executable path): the commit must
    /// then be durable, since the journal holds audit rows only.
    pub wrote_meta: bool,
}

/// Appends `entries` to the chain inside `txn`. Durable when the caller commits; a value must
/// not leave the store before that commit returns.
///
/// # Errors
/// `Integrity` when the chain head does not open; storage errors.
pub(super) fn append(store: &Store, txn: &WriteTransaction, entries: &[AuditEntry]) -> Result<()> {
    append_to(store, txn, entries, None)
}

/// As [`append`], also collecting the records' journal frames into `frames`.
///
/// # Errors
/// As [`append`].
pub(super) fn append_to(
    store: &Store,
    txn: &WriteTransaction,
    entries: &[AuditEntry],
    mut frames: Option<&mut Frames>,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let id = &store.header.store_id;
    let mut table = txn.open_table(AUDIT)?;
    let (mut seq, mut prev) = {
        let meta = txn.open_table(META)?;
        let head = meta.get(HEAD)?;
        // A missing head over existing records is damage, not an empty chain: appending from
        // seq 1 would overwrite the records.
        if head.is_none() && table.first()?.is_some() {
            return Err(Error::integrity("meta", HEAD));
        }
        read_head(&store.keys, id, head.as_ref().map(redb::AccessGuard::value))?
    };
    let mut buf = Vec::new();
    for e in entries {
        seq += 1;
        let mut rec = EntryRec::from(e);
        if let Some(path) = rec.exe.take() {
            let (reference, wrote) = store.intern_exe(txn, &path)?;
            rec.exe = Some(reference);
            if let Some(f) = frames.as_deref_mut() {
                f.wrote_meta |= wrote;
            }
        }
        let env = seal_with(&store.keys, id, TableId::Audit, &seq.to_be_bytes(), &rec)?;
        let mac = AuditLayout::mac(&store.keys.audit, &prev, seq, &env);
        buf.clear();
        buf.extend_from_slice(&mac);
        buf.extend_from_slice(&env);
        table.insert(seq, buf.as_slice())?;
        if let Some(f) = frames.as_deref_mut() {
            super::journal::frame(&mut f.bytes, seq, &buf);
        }
        prev = mac;
    }
    drop(table);
    write_head_with(&store.keys, id, txn, seq, &prev)
}

/// Whether a record's name is the secret `secret`: itself, or one of its fields
/// (`NAME#field`, as a field read records it).
pub(super) fn names_secret(name: Option<&str>, secret: &str) -> bool {
    name.is_some_and(|n| {
        n.strip_prefix(secret)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
    })
}

impl Store {
    /// Checks that the audit head opens (run at unlock, so a damaged head is found early).
    pub(crate) fn check_audit_head(&self) -> Result<()> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let head = meta.get(HEAD)?;
        if head.is_none() && txn.open_table(AUDIT)?.first()?.is_some() {
            return Err(Error::integrity("meta", HEAD));
        }
        read_head(
            &self.keys,
            &self.header.store_id,
            head.as_ref().map(redb::AccessGuard::value),
        )
        .map(|_| ())
    }

    /// Audit records matching `q`, oldest first; with `limit`, the newest `limit` of them.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `Integrity` for a record that does not open.
    pub fn audit(&self, actor: &Actor, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.authorize_admin(actor, Action::List, "audit")?;
        self.audit_scan(q, None)
    }

    /// Records matching `q`, oldest first: with `first`, the oldest `first` of them (a page of
    /// an export); else as [`Store::audit`] (`q.limit` keeps the newest).
    pub(super) fn audit_scan(
        &self,
        q: &AuditQuery,
        first: Option<usize>,
    ) -> Result<Vec<AuditRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(AUDIT)?;
        let mut out = std::collections::VecDeque::new();
        let start = q.after_seq.map_or(0, |s| s.saturating_add(1));
        for row in table.range(start..)? {
            let (k, v) = row?;
            let seq = k.value();
            let (_, env) = AuditLayout::split(v.value())
                .ok_or_else(|| Error::integrity("audit", format!("seq {seq}")))?;
            let rec: EntryRec = self.open_row(TableId::Audit, &seq.to_be_bytes(), env)?;
            let mut r = rec.into_record(seq);
            r.entry.exe = r.entry.exe.take().map(|e| self.resolve_exe(e));
            let keep = q
                .secret
                .as_ref()
                .is_none_or(|s| names_secret(r.name.as_deref(), s))
                && q.principal.as_ref().is_none_or(|p| &r.principal == p)
                && q.action.is_none_or(|a| r.action == a)
                && q.outcome.is_none_or(|o| r.outcome == o)
                && q.since.is_none_or(|t| r.time >= t)
                && q.until.is_none_or(|t| r.time < t);
            if keep {
                out.push_back(r);
                if first.is_some_and(|n| out.len() >= n) {
                    break;
                }
                if q.limit.is_some_and(|l| out.len() > l) {
                    out.pop_front();
                }
            }
        }
        Ok(out.into())
    }

    /// The current head of the chain (owners): what `audit head` prints and
    /// `tresord --audit-head-file` appends.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `Integrity` when the head does not open.
    pub fn audit_head(&self, actor: &Actor) -> Result<AuditHead> {
        self.authorize_admin(actor, Action::List, "audit head")?;
        self.current_audit_head()
    }

    /// The current head, without a policy check (the daemon's witness file).
    ///
    /// # Errors
    /// `Integrity` when the head does not open; storage errors.
    pub(crate) fn current_audit_head(&self) -> Result<AuditHead> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let head = meta.get(HEAD)?;
        let (seq, mac) = read_head(
            &self.keys,
            &self.header.store_id,
            head.as_ref().map(redb::AccessGuard::value),
        )?;
        drop(head);
        drop(meta);
        drop(txn);
        // A read batch's head is visible from its commit but durable only once its journal
        // frames are synced, which happens under the journal's lock: taking it waits that out,
        // so a head shown (or witnessed, `--audit-head-file`) survives a crash.
        if let Some(j) = self.journal() {
            drop(j.lock());
        }
        Ok(AuditHead {
            seq,
            mac: super::hex(&mac),
        })
    }

    /// Walks the chain: every seq from 1 present, every MAC right, every record opening, and
    /// the head naming the last record. Names the first broken seq.
    ///
    /// # Errors
    /// Storage errors only; breaks are reported in the result.
    pub fn audit_verify(&self) -> Result<VerifyReport> {
        self.audit_verify_head(None)
    }

    /// As [`Store::audit_verify`], and also fails when the log is shorter than, or forked
    /// from, `witnessed` — a head seen earlier (a store rolled back to an older copy).
    ///
    /// # Errors
    /// Storage errors only; breaks are reported in the result.
    pub fn audit_verify_head(&self, witnessed: Option<&HeadSpec>) -> Result<VerifyReport> {
        let id = &self.header.store_id;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(AUDIT)?;
        // After a prune the walk starts at the checkpoint (see `retention`).
        let Ok(base) = super::retention::read_base_ro(&self.keys, id, &txn) else {
            return Ok(VerifyReport {
                ok: false,
                records: 0,
                first_broken_seq: Some(1),
                head_mismatch: None,
                pruned_records: None,
                pruned_before_seq: None,
            });
        };
        let mut prev = base.mac;
        let mut records = 0u64;
        // Whether the witnessed head was met on the way (its seq with its MAC). A head
        // witnessed inside the pruned range was removed with it and cannot be checked.
        let mut met = witnessed.is_some_and(|w| match w.seq {
            Some(s) if s < base.upto => true,
            Some(s) => s == base.upto && w.mac == prev,
            None => w.mac == prev,
        });
        let pruned = (base.upto > 0).then_some(base.pruned);
        let pruned_before = (base.upto > 0).then_some(base.upto + 1);
        let broken = |seq: u64, records: u64| {
            Ok(VerifyReport {
                ok: false,
                records,
                first_broken_seq: Some(seq),
                head_mismatch: None,
                pruned_records: pruned,
                pruned_before_seq: pruned_before,
            })
        };
        for (expected, row) in (base.upto + 1..).zip(table.iter()?) {
            let (k, v) = row?;
            let seq = k.value();
            if seq != expected {
                return broken(expected, records);
            }
            let Some((mac, env)) = AuditLayout::split(v.value()) else {
                return broken(seq, records);
            };
            if AuditLayout::mac(&self.keys.audit, &prev, seq, env) != mac {
                return broken(seq, records);
            }
            if self
                .open_row::<EntryRec>(TableId::Audit, &seq.to_be_bytes(), env)
                .is_err()
            {
                return broken(seq, records);
            }
            prev = mac;
            records += 1;
            if let Some(w) = witnessed
                && w.seq.is_none_or(|s| s == seq)
                && w.mac == mac
            {
                met = true;
            }
        }
        let meta = txn.open_table(META)?;
        let head = meta.get(HEAD)?;
        let mut report =
            match read_head(&self.keys, id, head.as_ref().map(redb::AccessGuard::value)) {
                Ok((seq, mac)) if seq == base.upto + records && mac == prev => VerifyReport {
                    ok: true,
                    records,
                    first_broken_seq: None,
                    head_mismatch: None,
                    pruned_records: pruned,
                    pruned_before_seq: pruned_before,
                },
                _ => return broken(base.upto + records + 1, records),
            };
        if let Some(w) = witnessed.filter(|_| !met) {
            report.ok = false;
            report.head_mismatch = Some(match w.seq {
                Some(s) if s > base.upto + records => format!(
                    "the log ends at seq {}, before the witnessed head at seq {s}: \
                     records were removed (the store was rolled back to an older copy?)",
                    base.upto + records
                ),
                Some(s) => format!(
                    "the record at seq {s} is not the witnessed one: the log forked from the \
                     witnessed head (the store was replaced by another copy?)"
                ),
                None => "no record of the log has the witnessed MAC: the log is shorter than, \
                         or forked from, the witnessed head"
                    .to_owned(),
            });
        }
        Ok(report)
    }
}

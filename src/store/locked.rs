//! A store before unlocking: what may be read without a key (header, keyslots), unlocking
//! with any keyslot, and unlock attempts staged while locked (sealed into the audit chain at
//! the next unlock, SPEC §3).

use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::ReadableTable;

use super::{
    Degraded, KEYSLOTS, KeyslotInfo, LockedStore, STAGED_REFUSED, STAGING, Store, UnlockSecret,
    audit, hex, list_keyslots, principals,
};
use crate::crypto::SubKeys;
use crate::error::{Error, Result};
use crate::format::{Header, KeyslotRecord, StagedAttempt};
use crate::types::{Action, Actor, AuditEntry, Outcome};

impl LockedStore {
    /// The header as the file holds it now (a handle kept across a lock may have seen a
    /// migration).
    fn current_header(&self) -> Result<Header> {
        super::read_header(&self.db)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store id in hex.
    pub fn store_id(&self) -> String {
        hex(&self.header.store_id)
    }

    /// Whether the store was made with `--insecure-kdf` (or has a passphrase slot below the
    /// floor). Front ends warn on every open when it was.
    pub fn is_insecure(&self) -> bool {
        self.header.insecure_kdf()
            || list_keyslots(&self.db)
                .is_ok_and(|s| s.iter().any(|k| k.kdf.is_some_and(|p| p.is_insecure())))
    }

    /// `Some` while the store is degraded (see [`Store::degraded`]).
    pub fn degraded(&self) -> Option<Degraded> {
        self.db.degraded()
    }

    /// The keyslots (readable without a key).
    ///
    /// # Errors
    /// `Integrity` for a malformed slot.
    pub fn keyslots(&self) -> Result<Vec<KeyslotInfo>> {
        list_keyslots(&self.db)
    }

    /// Unlocks with a passphrase, key file or recovery key: tries every slot of that kind. On
    /// success, staged attempts and this unlock are sealed into the audit chain; on failure the
    /// attempt is staged (SPEC §3) and `WrongPassphrase` is returned.
    ///
    /// # Errors
    /// `WrongPassphrase`; `Integrity` when a slot's parameters are out of range or malformed.
    pub fn unlock(&self, secret: &UnlockSecret, actor: &Actor) -> Result<Store> {
        // Read again: a store unlocked and locked by this handle may have been migrated.
        let header = self.current_header()?;
        let header_bytes = header.slot_binding();
        let slots = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(KEYSLOTS)?;
            let mut v = Vec::new();
            for row in table.iter()? {
                let (k, raw) = row?;
                v.push((k.value(), KeyslotRecord::decode(raw.value(), k.value())?));
            }
            v
        };
        let mut found = None;
        // A slot whose parameters are out of range is never run (a hostile file must not pick
        // the work), but it does not stop the other slots from being tried.
        let mut out_of_range = None;
        for (id, slot) in slots.iter().filter(|(_, s)| s.kind == secret.kind()) {
            if let Some(p) = &slot.kdf
                && p.check(header.insecure_kdf()).is_err()
            {
                out_of_range.get_or_insert(*id);
                continue;
            }
            let kek = secret.kek(&slot.salt, slot.kdf.as_ref())?;
            if let Some(dk) = slot.unwrap_key(&kek, &header_bytes, *id) {
                found = Some((*id, kek, dk));
                break;
            }
        }
        let Some((id, kek, dk)) = found else {
            if let Some(id) = out_of_range {
                return Err(Error::integrity(
                    "keyslots",
                    format!("slot {id} (kdf parameters out of range)"),
                ));
            }
            self.stage_attempt(actor, Outcome::Denied)?;
            return Err(Error::WrongPassphrase);
        };
        let mut store = Store {
            db: Arc::clone(&self.db),
            header,
            path: self.path.clone(),
            keys: SubKeys::derive(&dk),
            unlocked_slot: RwLock::new((id, crate::crypto::Locked::new(kek))),
            principals: RwLock::new(principals::Cache::default()),
            principal_writes: std::sync::Mutex::new(()),
            changes: super::changes::Changes::new(),
            noted: std::sync::Mutex::default(),
            exes: std::sync::Mutex::default(),
            journal: std::sync::OnceLock::new(),
            ready: std::sync::atomic::AtomicBool::new(false),
            migrated: None,
        };
        drop(dk);
        store.check_audit_head()?;
        // Records acknowledged by a daemon that did not stop cleanly (kill -9, power loss).
        store.replay_journal()?;
        store.reload_principals()?;
        // A format 1 store becomes format 2 here, before anything else is written.
        store.check_or_migrate(actor)?;
        store.load_last_used()?;
        store.seal_staged(actor, id)?;
        store.replay_reads()?;
        // Submissions dropped while locked are applied now; a failure here (a full disk) leaves
        // them waiting for the next unlock and does not undo this one.
        if let Err(e) = store.inbox_process() {
            tracing::warn!(error = %e, "inbox submissions not applied; they stay waiting");
        }
        store
            .ready
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(store)
    }

    /// Records an unlock attempt while locked, in the staging table (time, uid, pid, outcome).
    ///
    /// # Errors
    /// When the record cannot be written.
    pub fn stage_attempt(&self, actor: &Actor, outcome: Outcome) -> Result<()> {
        self.stage(
            actor,
            match outcome {
                Outcome::Ok => 0,
                Outcome::Denied => 1,
                _ => 3,
            },
        )
    }

    /// Records an unlock attempt refused without trying it, because failed attempts made the
    /// caller wait (backoff), in the staging table; sealed as `denied` at the next unlock.
    ///
    /// # Errors
    /// When the record cannot be written.
    pub fn stage_refused(&self, actor: &Actor) -> Result<()> {
        self.stage(actor, STAGED_REFUSED)
    }

    fn stage(&self, actor: &Actor, outcome: u8) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(STAGING)?;
            let next = t.last()?.map_or(1, |(k, _)| k.value() + 1);
            let rec = StagedAttempt {
                time_us: crate::sys::now().as_microsecond(),
                uid: actor.uid,
                pid: actor.pid,
                outcome,
            };
            t.insert(next, rec.encode().as_slice())?;
        }
        self.db.commit(txn)?;
        Ok(())
    }
}

impl Store {
    /// Moves staged unlock attempts into the audit chain and records this unlock.
    fn seal_staged(&self, actor: &Actor, slot: u32) -> Result<()> {
        let txn = self.db.begin_write()?;
        let mut entries = Vec::new();
        {
            let mut t = txn.open_table(STAGING)?;
            for row in t.iter()? {
                let (_, v) = row?;
                let Some(s) = StagedAttempt::decode(v.value()) else {
                    continue;
                };
                let (outcome, what) = match s.outcome {
                    0 => (Outcome::Ok, "staged attempt"),
                    1 => (Outcome::Denied, "staged attempt"),
                    STAGED_REFUSED => (Outcome::Denied, "staged attempt refused during backoff"),
                    _ => (Outcome::Error, "staged attempt"),
                };
                let mut e = AuditEntry::new(actor, Action::Unlock, outcome).named(what);
                e.time = jiff::Timestamp::from_microsecond(s.time_us)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                e.uid = s.uid;
                e.pid = s.pid;
                e.gid = 0;
                e.principal = format!("uid-{}", s.uid);
                e.exe = None;
                entries.push(e);
            }
            t.retain(|_, _| false)?;
        }
        entries.push(
            AuditEntry::new(actor, Action::Unlock, Outcome::Ok).named(format!("slot {slot}")),
        );
        // A store from before folded `last_used`: every read so far wrote it directly.
        self.mark_folded_if_absent(&txn)?;
        audit::append(self, &txn, &entries)?;
        self.db.commit(txn)?;
        Ok(())
    }
}

//! Keyslots: listing, adding, removing, changing the passphrase, and unwrapping the data key
//! again from the slot this session unlocked with.

use redb::{ReadableTable, ReadableTableMetadata};

use super::audit;
use super::keys::{KdfChoice, KeyslotInfo, NewKeyslot, UnlockSecret, encode_recovery};
use super::{KEYSLOTS, Store, list_keyslots, poisoned, random_salt};
use crate::crypto::kdf::KdfParams;
use crate::crypto::{Key, fill_random};
use crate::error::{Error, Result};
use crate::format::{KeyslotKind, KeyslotRecord};
use crate::types::{Action, Actor, AuditEntry, Outcome, Passphrase, SecretBytes};

impl Store {
    /// The keyslots.
    ///
    /// # Errors
    /// `Integrity` for a malformed slot.
    pub fn keyslots(&self) -> Result<Vec<KeyslotInfo>> {
        list_keyslots(&self.db)
    }

    /// Adds a keyslot wrapping the data key. Returns its id and, for a recovery slot, the
    /// recovery key (shown once, never stored).
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `InvalidArgument` for a short key file.
    pub fn keyslot_add(
        &self,
        actor: &Actor,
        new: NewKeyslot,
    ) -> Result<(u32, Option<SecretBytes>)> {
        self.authorize_admin(actor, Action::Keyslot, "add")?;
        let dk = self.data_key()?;
        let salt = random_salt()?;
        let (kind, params, secret, shown) = match new {
            NewKeyslot::Passphrase(p, kdf) => {
                let params = self.new_slot_params(kdf)?;
                (
                    KeyslotKind::Passphrase,
                    Some(params),
                    UnlockSecret::Passphrase(p),
                    None,
                )
            }
            NewKeyslot::Keyfile(bytes) => (
                KeyslotKind::Keyfile,
                None,
                UnlockSecret::Keyfile(bytes),
                None,
            ),
            NewKeyslot::Credential(bytes) => (
                KeyslotKind::SystemdCreds,
                None,
                UnlockSecret::Credential(bytes),
                None,
            ),
            NewKeyslot::Recovery => {
                let mut raw = zeroize::Zeroizing::new([0u8; 32]);
                fill_random(raw.as_mut_slice())?;
                let text = encode_recovery(&raw);
                (
                    KeyslotKind::Recovery,
                    None,
                    UnlockSecret::Recovery(text.clone()),
                    Some(text),
                )
            }
        };
        let kek = secret.kek(&salt, params.as_ref())?;
        let txn = self.db.begin_write()?;
        let id = {
            let mut slots = txn.open_table(KEYSLOTS)?;
            let id = slots.last()?.map_or(0, |(k, _)| k.value() + 1);
            let slot = KeyslotRecord::wrap(
                kind,
                params,
                salt,
                &kek,
                &dk,
                &self.header.slot_binding(),
                id,
            )?;
            slots.insert(id, slot.encode().as_slice())?;
            id
        };
        audit::append(
            self,
            &txn,
            &[AuditEntry::new(actor, Action::Keyslot, Outcome::Ok)
                .named(format!("add {} {id}", kind.as_str()))],
        )?;
        self.db.commit(txn)?;
        Ok((id, shown))
    }

    /// Removes a keyslot. The last slot, and the slot this session unlocked with, cannot be
    /// removed.
    ///
    /// # Errors
    /// `NotFound`, `Conflict`, `PermissionDenied`.
    pub fn keyslot_remove(&self, actor: &Actor, id: u32) -> Result<()> {
        self.authorize_admin(actor, Action::Keyslot, "remove")?;
        let txn = self.db.begin_write()?;
        {
            let mut slots = txn.open_table(KEYSLOTS)?;
            if slots.get(id)?.is_none() {
                return Err(Error::not_found("keyslot", id.to_string()));
            }
            if slots.len()? <= 1 {
                return Err(Error::Conflict {
                    reason: "the last keyslot cannot be removed; the store would never open again"
                        .into(),
                    references: Vec::new(),
                });
            }
            if self.read_slot().0 == id {
                return Err(Error::Conflict {
                    reason: format!(
                        "keyslot {id} unlocked this session; unlock with another slot to remove it"
                    ),
                    references: Vec::new(),
                });
            }
            slots.remove(id)?;
        }
        audit::append(
            self,
            &txn,
            &[AuditEntry::new(actor, Action::Keyslot, Outcome::Ok).named(format!("remove {id}"))],
        )?;
        self.db.commit(txn)?;
        Ok(())
    }

    /// Changes the passphrase: re-wraps the data key in the passphrase slot this session
    /// unlocked with (or the first passphrase slot). Records are untouched.
    ///
    /// # Errors
    /// `PermissionDenied`; `NotFound` when the store has no passphrase slot.
    pub fn change_passphrase(
        &self,
        actor: &Actor,
        new: &Passphrase,
        kdf: &KdfChoice,
    ) -> Result<()> {
        self.authorize_admin(actor, Action::Passwd, "passphrase")?;
        let dk = self.data_key()?;
        let params = self.new_slot_params(*kdf)?;
        let salt = random_salt()?;
        let kek = UnlockSecret::Passphrase(new.clone()).kek(&salt, Some(&params))?;
        let used = self.read_slot().0;
        let txn = self.db.begin_write()?;
        let id = {
            let mut slots = txn.open_table(KEYSLOTS)?;
            let mut target = None;
            for row in slots.iter()? {
                let (k, v) = row?;
                let rec = KeyslotRecord::decode(v.value(), k.value())?;
                if rec.kind == KeyslotKind::Passphrase && (target.is_none() || k.value() == used) {
                    target = Some(k.value());
                }
            }
            let id = target.ok_or_else(|| Error::not_found("keyslot", "passphrase"))?;
            let slot = KeyslotRecord::wrap(
                KeyslotKind::Passphrase,
                Some(params),
                salt,
                &kek,
                &dk,
                &self.header.slot_binding(),
                id,
            )?;
            slots.insert(id, slot.encode().as_slice())?;
            id
        };
        audit::append(
            self,
            &txn,
            &[AuditEntry::new(actor, Action::Passwd, Outcome::Ok).named(format!("slot {id}"))],
        )?;
        self.db.commit(txn)?;
        if id == used {
            *self.unlocked_slot.write().map_err(|_| poisoned())? =
                (id, crate::crypto::Locked::new(kek));
        }
        Ok(())
    }

    /// Argon2id parameters for a new passphrase slot. The insecure choice is only for stores
    /// created with `--insecure-kdf`: unlock refuses below-floor parameters in any other store,
    /// so such a slot could never open it (and `passwd` would lock the owner out).
    fn new_slot_params(&self, kdf: KdfChoice) -> Result<KdfParams> {
        match kdf {
            KdfChoice::Insecure if !self.header.insecure_kdf() => Err(Error::invalid(
                "kdf",
                "--insecure-kdf is only for stores created with it; this store uses Argon2id \
                 at or above m = 64 MiB, t = 3",
            )),
            other => other.resolve(),
        }
    }

    pub(super) fn read_slot(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, (u32, crate::crypto::Locked<Key>)> {
        self.unlocked_slot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The data key, unwrapped again from the slot this session unlocked with (the store keeps
    /// only subkeys and that slot's KEK in memory).
    fn data_key(&self) -> Result<Key> {
        let guard = self.read_slot();
        let (id, kek) = &*guard;
        let txn = self.db.begin_read()?;
        let slots = txn.open_table(KEYSLOTS)?;
        let raw = slots
            .get(*id)?
            .ok_or_else(|| Error::integrity("keyslots", format!("slot {id}")))?;
        let rec = KeyslotRecord::decode(raw.value(), *id)?;
        rec.unwrap_key(kek, &self.header.slot_binding(), *id)
            .ok_or_else(|| Error::integrity("keyslots", format!("slot {id}")))
    }
}

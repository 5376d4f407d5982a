//! The store's identity (SPEC §4.1): created lazily, on the first unlocked use, for stores made
//! before it existed; the public halves readable while locked.
//!
//! Meta rows: `"identity_pub"` (plain, `format::bundle` documents the layout) and `"identity"`
//! (sealed: the age secret key text and the Ed25519 seed).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::db::Db;
use super::records::{open_with, seal_with};
use super::{LockedStore, META, Store};
use crate::crypto::identity::{PublicKeys, StoreIdentity};
use crate::error::{Error, Result};
use crate::format::TableId;
use crate::format::bundle::{decode_public_keys, encode_public_keys};
use crate::types::{Action, Actor, AuditEntry, InboxKey, Outcome, SecretBytes};

const PUB: &str = "identity_pub";
const SEALED: &str = "identity";

#[derive(Serialize, Deserialize)]
struct IdentityRec {
    age: SecretBytes,
    sign: SecretBytes,
}

fn read_public(db: &Db) -> Result<Option<PublicKeys>> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let Some(raw) = meta.get(PUB)? else {
        return Ok(None);
    };
    let (sign, recipient) = decode_public_keys(raw.value())?;
    Ok(Some(PublicKeys { recipient, sign }))
}

fn inbox_key(p: &PublicKeys) -> InboxKey {
    InboxKey {
        recipient: p.recipient.clone(),
        sign: p.sign_text(),
    }
}

impl LockedStore {
    /// The store's public keys, readable without a key; `None` for a store whose identity has
    /// not been made yet (it is made at the first unlocked `inbox key`, bundle or inbox use).
    ///
    /// # Errors
    /// `Integrity` when the row is malformed.
    pub fn inbox_key(&self) -> Result<Option<InboxKey>> {
        Ok(read_public(&self.db)?.as_ref().map(inbox_key))
    }
}

impl Store {
    /// The store's public keys, made on first use.
    ///
    /// Also makes the inbox directory (`<store>.inbox`, 0700) when absent.
    ///
    /// # Errors
    /// `Integrity` when the sealed identity does not open or does not match the public row.
    pub fn inbox_key(&self, actor: &Actor) -> Result<InboxKey> {
        let key = inbox_key(&self.identity(actor)?.public());
        // The directory submitters drop files into (see `inbox.rs`), private by default.
        let dir = super::inbox_dir(&self.path);
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        }
        Ok(key)
    }

    /// The store's identity: opened from the meta table, or made (and audited as `keyslot`,
    /// "identity") when absent.
    pub(crate) fn identity(&self, actor: &Actor) -> Result<StoreIdentity> {
        {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            if let Some(raw) = meta.get(SEALED)? {
                return self.check_identity(&meta, raw.value());
            }
        }
        let txn = self.db.begin_write()?;
        let id = {
            let mut meta = txn.open_table(META)?;
            let existing = meta.get(SEALED)?.map(|r| r.value().to_vec());
            if let Some(raw) = existing {
                return self.check_identity(&meta, &raw);
            }
            let id = StoreIdentity::generate()?;
            let (age, seed) = id.to_parts();
            let rec = IdentityRec {
                age: SecretBytes::new(age.to_vec()),
                sign: SecretBytes::new(seed.to_vec()),
            };
            let sealed = seal_with(
                &self.keys,
                &self.header.store_id,
                TableId::Meta,
                SEALED.as_bytes(),
                &rec,
            )?;
            let p = id.public();
            meta.insert(SEALED, sealed.as_slice())?;
            meta.insert(PUB, encode_public_keys(&p.sign, &p.recipient).as_slice())?;
            id
        };
        super::audit::append(
            self,
            &txn,
            &[AuditEntry::new(actor, Action::Keyslot, Outcome::Ok).named("identity created")],
        )?;
        self.db.commit(txn)?;
        Ok(id)
    }

    fn check_identity(
        &self,
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
        sealed: &[u8],
    ) -> Result<StoreIdentity> {
        let rec: IdentityRec = open_with(
            &self.keys,
            &self.header.store_id,
            TableId::Meta,
            SEALED.as_bytes(),
            sealed,
        )?;
        let seed: [u8; 32] = rec
            .sign
            .expose()
            .try_into()
            .map_err(|_| Error::integrity("meta", SEALED))?;
        let seed = zeroize::Zeroizing::new(seed);
        let id = StoreIdentity::from_parts(rec.age.expose(), &seed)?;
        let p = id.public();
        // The public row is plaintext: whoever could write the file could swap the recipient
        // so that submitters encrypt to them. It must match the sealed identity.
        let stored = meta
            .get(PUB)?
            .ok_or_else(|| Error::integrity("meta", PUB))?;
        let (sign, recipient) = decode_public_keys(stored.value())?;
        if sign != p.sign || recipient != p.recipient {
            return Err(Error::integrity(
                "meta",
                "identity_pub (does not match the sealed identity)",
            ));
        }
        Ok(id)
    }
}

//! The sealed payloads of each table, the row-sealing helpers, and rekey's re-seal pass.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Store;
use crate::crypto::SubKeys;
use crate::error::Result;
use crate::format::{Envelope, TableId, decode_payload, encode_payload};
use crate::types::{Scope, SecretBytes, SecretMeta, SecretType, VersionInfo};

/// One secret (table `secrets`, format 2): its metadata and its current version's value.
/// `last_used` is not here: it is kept in the `last_used` table (`last_used.rs`), so that a
/// fold does not re-seal this record. Older versions' values are in `values` (`history.rs`).
/// Sealed in the layout of `secret_row.rs` (derivable parts left out).
#[derive(Clone, Debug)]
pub(crate) struct SecretRec {
    pub name: String,
    pub scope: Scope,
    pub stype: SecretType,
    pub description: Option<String>,
    pub integration: Option<String>,
    pub meta: BTreeMap<String, String>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
    pub version: u64,
    pub max_versions: u32,
    pub max_age_days: Option<u32>,
    pub versions: Vec<VersionRec>,
    /// The value and fields of version `version` (wiped on drop): a read of the current value
    /// is one point get and one open. Its keyed fingerprint is derived from it
    /// ([`SecretRec::fingerprint`]), not stored.
    pub current: ValueRec,
    /// Set only for a secret whose current value a format 1 store held damaged (or not at
    /// all): the migration left that row in `values` under its own key, and `current` is
    /// empty. Reading that version opens the row there, an `integrity` error naming it, as
    /// in format 1; the next write of a new version replaces it. Never set otherwise.
    pub current_in_values: bool,
}

/// Metadata of one secret as format 1 laid it out: [`SecretRec`] with `last_used` between
/// `updated_by` and `version` (postcard is positional). Read only by the migration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SecretRecV1 {
    pub name: String,
    pub scope: Scope,
    pub stype: SecretType,
    pub description: Option<String>,
    pub integration: Option<String>,
    pub meta: BTreeMap<String, String>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
    pub last_used: Option<i64>,
    pub version: u64,
    pub max_versions: u32,
    pub max_age_days: Option<u32>,
    pub versions: Vec<VersionRec>,
}

impl SecretRecV1 {
    /// The format 2 record (its `current` still empty: the migration moves the current value
    /// in from `values`) and the folded `last_used` it carried.
    pub fn upgrade(self) -> (SecretRec, Option<i64>) {
        let rec = SecretRec {
            name: self.name,
            scope: self.scope,
            stype: self.stype,
            description: self.description,
            integration: self.integration,
            meta: self.meta,
            created_at: self.created_at,
            created_by: self.created_by,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
            version: self.version,
            max_versions: self.max_versions,
            max_age_days: self.max_age_days,
            versions: self.versions,
            current: ValueRec::default(),
            current_in_values: false,
        };
        (rec, self.last_used)
    }
}

/// One kept version's metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct VersionRec {
    pub version: u64,
    pub at: i64,
    pub by: String,
    pub fields: Vec<String>,
    pub size: u64,
    pub from: Option<u64>,
}

/// One version's value and fields: the current version's inside its [`SecretRec`], older ones
/// in table `values`. Plaintext wiped on drop by `SecretBytes`.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub(crate) struct ValueRec {
    pub value: SecretBytes,
    pub fields: Vec<(String, SecretBytes)>,
}

pub(crate) fn ts(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

pub(crate) fn now_us() -> i64 {
    crate::sys::now().as_microsecond()
}

impl SecretRec {
    /// The keyed fingerprint of the current value (SPEC §1); `None` for an empty value (a
    /// secret of fields only). Derived, so that it costs no bytes and follows a rekey.
    pub fn fingerprint(&self, keys: &SubKeys) -> Option<[u8; 32]> {
        let v = self.current.value.expose();
        (!v.is_empty() && !self.current_in_values).then(|| super::refs::fingerprint(keys, v))
    }

    /// The metadata readers see, without `last_used` (which [`Store::meta_of`] adds).
    pub fn to_meta(&self) -> SecretMeta {
        let current_fields = self
            .versions
            .iter()
            .find(|v| v.version == self.version)
            .map(|v| v.fields.clone())
            .unwrap_or_default();
        SecretMeta {
            name: self.name.clone(),
            scope: self.scope.clone(),
            secret_type: self.stype,
            description: self.description.clone(),
            integration: self.integration.clone(),
            meta: self.meta.clone(),
            created_at: ts(self.created_at),
            created_by: self.created_by.clone(),
            updated_at: ts(self.updated_at),
            updated_by: self.updated_by.clone(),
            last_used: None,
            version: self.version,
            max_versions: self.max_versions,
            max_age_days: self.max_age_days,
            fields: current_fields,
            versions: self
                .versions
                .iter()
                .map(|v| VersionInfo {
                    version: v.version,
                    created_at: ts(v.at),
                    created_by: v.by.clone(),
                    fields: v.fields.clone(),
                    size: v.size,
                    rolled_back_from: v.from,
                })
                .collect(),
            fingerprint: None,
        }
    }
}

pub(crate) fn value_key(hash: &[u8; 32], version: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(hash);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

pub(crate) fn secret_hash(keys: &SubKeys, scope: &Scope, name: &str) -> [u8; 32] {
    keys.name
        .mac_parts(&[b"secret", scope.to_string().as_bytes(), name.as_bytes()])
}

pub(crate) fn principal_hash(keys: &SubKeys, name: &str) -> [u8; 32] {
    keys.name.mac_parts(&[b"principal", name.as_bytes()])
}

pub(crate) fn seal_with<T: Serialize>(
    keys: &SubKeys,
    store_id: &[u8; 16],
    table: TableId,
    key: &[u8],
    payload: &T,
) -> Result<Vec<u8>> {
    let pt = encode_payload(payload)?;
    Envelope::seal(&keys.seal, store_id, table, key, &pt)
}

pub(crate) fn open_with<T: DeserializeOwned>(
    keys: &SubKeys,
    store_id: &[u8; 16],
    table: TableId,
    key: &[u8],
    bytes: &[u8],
) -> Result<T> {
    #[cfg(test)]
    if table == TableId::Secrets {
        SECRET_OPENS.with(|n| n.set(n.get() + 1));
    }
    let pt = Envelope::open(&keys.seal, store_id, table, key, bytes)?;
    decode_payload(&pt, table, key)
}

#[cfg(test)]
thread_local! {
    /// How many `secrets` records this thread has opened (tests count a read's passes).
    pub(super) static SECRET_OPENS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Store {
    pub(crate) fn seal_row<T: Serialize>(
        &self,
        table: TableId,
        key: &[u8],
        payload: &T,
    ) -> Result<Vec<u8>> {
        seal_with(&self.keys, &self.header.store_id, table, key, payload)
    }

    pub(crate) fn open_row<T: DeserializeOwned>(
        &self,
        table: TableId,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<T> {
        open_with(&self.keys, &self.header.store_id, table, key, bytes)
    }

    pub(crate) fn secret_hash(&self, scope: &Scope, name: &str) -> [u8; 32] {
        secret_hash(&self.keys, scope, name)
    }

    pub(crate) fn principal_hash(&self, name: &str) -> [u8; 32] {
        principal_hash(&self.keys, name)
    }
}

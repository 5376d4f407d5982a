//! The sealed payloads of each table, the row-sealing helpers, and rekey's re-seal pass.

use std::collections::{BTreeMap, HashMap};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{AUDIT, PRINCIPALS, SECRETS, Store, VALUES};
use crate::crypto::SubKeys;
use crate::error::{Error, Result};
use crate::format::{AuditLayout, Envelope, TableId, decode_payload, encode_payload};
use crate::types::{Scope, SecretBytes, SecretMeta, SecretType, VersionInfo};

/// Metadata of one secret (table `secrets`).
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    pub last_used: Option<i64>,
    pub version: u64,
    pub max_versions: u32,
    pub max_age_days: Option<u32>,
    pub versions: Vec<VersionRec>,
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

/// One version's value and fields (table `values`). Plaintext wiped on drop by `SecretBytes`.
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
            last_used: self.last_used.map(ts),
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
    let pt = Envelope::open(&keys.seal, store_id, table, key, bytes)?;
    decode_payload(&pt, table, key)
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

/// Re-seals every secret, value, principal and audit record under `new`, re-hashing names and
/// re-chaining the audit log. Runs inside the caller's write transaction.
pub(crate) fn rekey_all(
    store: &Store,
    new: &SubKeys,
    txn: &redb::WriteTransaction,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    use redb::{ReadableTable, ReadableTableMetadata};
    let id = &store.header.store_id;
    let mut secrets = txn.open_table(SECRETS)?;
    let mut values = txn.open_table(VALUES)?;
    let mut principals = txn.open_table(PRINCIPALS)?;
    let mut audit = txn.open_table(AUDIT)?;
    let total = secrets.len()? + values.len()? + principals.len()? + audit.len()?;
    let mut done = 0u64;
    let mut tick = |done: &mut u64| {
        *done += 1;
        if (*done).is_multiple_of(256) || *done == total {
            progress(*done, total);
        }
    };

    let mut rehash: HashMap<[u8; 32], [u8; 32]> = HashMap::new();
    let mut new_secrets = Vec::new();
    for row in secrets.iter()? {
        let (k, v) = row?;
        let rec: SecretRec = store.open_row(TableId::Secrets, k.value(), v.value())?;
        let nh = secret_hash(new, &rec.scope, &rec.name);
        rehash.insert(*k.value(), nh);
        new_secrets.push((nh, seal_with(new, id, TableId::Secrets, &nh, &rec)?));
        tick(&mut done);
    }
    let mut new_values = Vec::new();
    for row in values.iter()? {
        let (k, v) = row?;
        let rec: ValueRec = store.open_row(TableId::Values, k.value(), v.value())?;
        let mut old = [0u8; 32];
        old.copy_from_slice(&k.value()[..32]);
        let nh = rehash
            .get(&old)
            .ok_or_else(|| Error::integrity("values", crate::format::record_label(k.value())))?;
        let mut ver = [0u8; 8];
        ver.copy_from_slice(&k.value()[32..]);
        let nk = value_key(nh, u64::from_be_bytes(ver));
        new_values.push((nk, seal_with(new, id, TableId::Values, &nk, &rec)?));
        tick(&mut done);
    }
    let mut new_principals = Vec::new();
    for row in principals.iter()? {
        let (k, v) = row?;
        let rec: super::principals::PrincipalRec =
            store.open_row(TableId::Principals, k.value(), v.value())?;
        let nh = principal_hash(new, &rec.name);
        new_principals.push((nh, seal_with(new, id, TableId::Principals, &nh, &rec)?));
        tick(&mut done);
    }
    let mut new_audit = Vec::new();
    let mut prev = AuditLayout::genesis(&new.audit, id);
    for row in audit.iter()? {
        let (k, v) = row?;
        let seq = k.value();
        let (_, env) = AuditLayout::split(v.value())
            .ok_or_else(|| Error::integrity("audit", format!("seq {seq}")))?;
        let entry: crate::audit::EntryRec =
            store.open_row(TableId::Audit, &seq.to_be_bytes(), env)?;
        let env = seal_with(new, id, TableId::Audit, &seq.to_be_bytes(), &entry)?;
        let mac = AuditLayout::mac(&new.audit, &prev, seq, &env);
        let mut bytes = Vec::with_capacity(32 + env.len());
        bytes.extend_from_slice(&mac);
        bytes.extend_from_slice(&env);
        new_audit.push((seq, bytes));
        prev = mac;
        tick(&mut done);
    }
    secrets.retain(|_, _| false)?;
    values.retain(|_, _| false)?;
    principals.retain(|_, _| false)?;
    for (k, v) in &new_secrets {
        secrets.insert(k, v.as_slice())?;
    }
    for (k, v) in &new_values {
        values.insert(k, v.as_slice())?;
    }
    for (k, v) in &new_principals {
        principals.insert(k, v.as_slice())?;
    }
    for (k, v) in &new_audit {
        audit.insert(*k, v.as_slice())?;
    }
    let last = new_audit.last().map_or(0, |(s, _)| *s);
    crate::audit::write_head_with(new, id, txn, last, &prev)?;
    progress(total, total);
    Ok(())
}

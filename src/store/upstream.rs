//! Upstream providers and remote bindings (SPEC §11), sealed in the table `upstream`.
//!
//! | key                                              | value (sealed, table id 6)     |
//! |--------------------------------------------------|--------------------------------|
//! | BLAKE3-keyed(name key, "provider" ‖ name)        | `Rec::Provider`                |
//! | BLAKE3-keyed(name key, "binding" ‖ scope ‖ name) | `Rec::Binding` (with its fetch state) |
//!
//! The table is created by the first write, so files made before it open unchanged; a read
//! of a file without it sees no providers and no bindings. Cached values of a binding are
//! ordinary versions of the local secret of the same name, with `upstream.*` meta.

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::Store;
use super::audit;
use super::records::{now_us, seal_with, ts};
use crate::crypto::SubKeys;
use crate::error::{Error, Result};
use crate::format::TableId;
use crate::types::{
    Action, Actor, AuditEntry, Binding, BindingStatus, Outcome, Provider, Scope, validate_name,
};

pub(super) const UPSTREAM: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("upstream");

/// A remote binding and what is known of its last fetches.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BindingRec {
    /// The local secret's scope.
    pub scope: Scope,
    /// The local secret's name.
    pub name: String,
    /// Where its value comes from.
    pub binding: Binding,
    /// The upstream version last fetched.
    pub upstream_version: Option<u64>,
    /// The last good fetch (µs since the epoch).
    pub last_fetch_us: Option<i64>,
    /// The last failure (µs, message), kept until a good fetch.
    pub last_error: Option<(i64, String)>,
}

impl BindingRec {
    /// What `sync status` shows.
    pub fn status(&self) -> BindingStatus {
        let now = now_us();
        BindingStatus {
            secret: format!("{}/{}", self.scope, self.name),
            remote: self.binding.target(),
            upstream_version: self.upstream_version,
            last_fetch: self.last_fetch_us.map(ts),
            last_error: self.last_error.as_ref().map(|(_, m)| m.clone()),
            staleness_s: self
                .last_fetch_us
                .map(|t| (now.saturating_sub(t) / 1_000_000).unsigned_abs()),
            refresh_s: self.binding.refresh_s,
            max_staleness_s: self.binding.max_staleness_s,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Rec {
    Provider(Provider),
    Binding(BindingRec),
}

fn provider_key(keys: &SubKeys, name: &str) -> [u8; 32] {
    keys.name.mac_parts(&[b"provider", name.as_bytes()])
}

fn binding_key(keys: &SubKeys, scope: &Scope, name: &str) -> [u8; 32] {
    keys.name
        .mac_parts(&[b"binding", scope.to_string().as_bytes(), name.as_bytes()])
}

fn rec_key(keys: &SubKeys, rec: &Rec) -> [u8; 32] {
    match rec {
        Rec::Provider(p) => provider_key(keys, &p.name),
        Rec::Binding(b) => binding_key(keys, &b.scope, &b.name),
    }
}

impl Store {
    fn upstream_get(&self, key: &[u8; 32]) -> Result<Option<Rec>> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(UPSTREAM) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(raw) = table.get(key)? else {
            return Ok(None);
        };
        self.open_row(TableId::Upstream, key, raw.value()).map(Some)
    }

    fn upstream_all(&self) -> Result<Vec<Rec>> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(UPSTREAM) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push(self.open_row(TableId::Upstream, k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Writes (`Some`) or removes (`None`) one record with its audit entry, one transaction.
    fn upstream_write(&self, key: &[u8; 32], rec: Option<&Rec>, entry: &AuditEntry) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(UPSTREAM)?;
            match rec {
                Some(r) => {
                    t.insert(key, self.seal_row(TableId::Upstream, key, r)?.as_slice())?;
                }
                None => {
                    t.remove(key)?;
                }
            }
        }
        audit::append(self, &txn, std::slice::from_ref(entry))?;
        txn.commit()?;
        Ok(())
    }

    /// Adds or replaces a provider (owner only; audited as `provider`).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad name, address or secret name; `PermissionDenied`.
    pub fn provider_put(&self, actor: &Actor, provider: Provider) -> Result<Provider> {
        let what = format!("provider {}", provider.name);
        self.authorize(actor, Action::Provider, &what)?;
        provider.validate()?;
        // A CA file that is not there is named now, not at the first read through it.
        if let Some(ca) = &provider.ca_file {
            crate::types::read_ca_file(&provider.name, ca)?;
        }
        let key = provider_key(&self.keys, &provider.name);
        let rec = Rec::Provider(provider);
        self.upstream_write(
            &key,
            Some(&rec),
            &AuditEntry::new(actor, Action::Provider, Outcome::Ok).named(what),
        )?;
        let Rec::Provider(p) = rec else {
            unreachable!("built as a provider above")
        };
        Ok(p)
    }

    /// One provider (owner only).
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`.
    pub fn provider(&self, actor: &Actor, name: &str) -> Result<Provider> {
        self.authorize(actor, Action::Provider, &format!("provider {name}"))?;
        self.provider_record(name)?
            .ok_or_else(|| Error::not_found("provider", name.to_owned()))
    }

    /// A provider without a policy check, for the upstream client acting for a read that was
    /// itself authorized.
    pub(crate) fn provider_record(&self, name: &str) -> Result<Option<Provider>> {
        Ok(match self.upstream_get(&provider_key(&self.keys, name))? {
            Some(Rec::Provider(p)) => Some(p),
            _ => None,
        })
    }

    /// Every provider, by name (owner only).
    ///
    /// # Errors
    /// `PermissionDenied`.
    pub fn providers(&self, actor: &Actor) -> Result<Vec<Provider>> {
        self.authorize(actor, Action::Provider, "providers")?;
        let mut v: Vec<Provider> = self
            .upstream_all()?
            .into_iter()
            .filter_map(|r| match r {
                Rec::Provider(p) => Some(p),
                Rec::Binding(_) => None,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Removes a provider. Refused with `Conflict` listing the bindings that use it, unless
    /// `force`.
    ///
    /// # Errors
    /// `NotFound`, `Conflict`, `PermissionDenied`.
    pub fn provider_remove(&self, actor: &Actor, name: &str, force: bool) -> Result<()> {
        self.provider(actor, name)?;
        let users: Vec<String> = self
            .bindings()?
            .into_iter()
            .filter(|b| b.binding.provider == name)
            .map(|b| format!("binding {}/{}", b.scope, b.name))
            .collect();
        if !users.is_empty() && !force {
            return Err(Error::Conflict {
                reason: format!("provider {name} is used by {}", users.join(", ")),
                references: users,
            });
        }
        let entry = AuditEntry::new(actor, Action::Provider, Outcome::Ok)
            .named(format!("provider {name} removed"));
        self.upstream_write(&provider_key(&self.keys, name), None, &entry)
    }

    /// Binds the local secret `scope/name` to an upstream path (owner only; audited as `set`).
    ///
    /// # Errors
    /// `NotFound` for an unknown provider; `InvalidArgument`; `PermissionDenied`.
    pub fn binding_put(
        &self,
        actor: &Actor,
        scope: &Scope,
        name: &str,
        binding: Binding,
    ) -> Result<BindingRec> {
        validate_name(name)?;
        let target = binding.target();
        self.authorize(actor, Action::Set, &format!("{scope}/{name} <- {target}"))?;
        if self.provider_record(&binding.provider)?.is_none() {
            return Err(Error::not_found("provider", binding.provider));
        }
        let old = self.binding(scope, name)?;
        let same_target = old.as_ref().is_some_and(|o| o.binding.target() == target);
        let rec = BindingRec {
            scope: scope.clone(),
            name: name.to_owned(),
            binding,
            upstream_version: old
                .as_ref()
                .filter(|_| same_target)
                .and_then(|o| o.upstream_version),
            last_fetch_us: old
                .as_ref()
                .filter(|_| same_target)
                .and_then(|o| o.last_fetch_us),
            last_error: None,
        };
        let key = binding_key(&self.keys, scope, name);
        let entry = AuditEntry::new(actor, Action::Set, Outcome::Ok).secret(scope, name, None);
        let rec = Rec::Binding(rec);
        self.upstream_write(&key, Some(&rec), &entry)?;
        let Rec::Binding(b) = rec else {
            unreachable!("built as a binding above")
        };
        Ok(b)
    }

    /// The binding of `scope/name`, if it is a remote secret. Metadata only; callers check
    /// policy on the read that follows.
    ///
    /// # Errors
    /// `Integrity` for a damaged record.
    pub fn binding(&self, scope: &Scope, name: &str) -> Result<Option<BindingRec>> {
        Ok(
            match self.upstream_get(&binding_key(&self.keys, scope, name))? {
                Some(Rec::Binding(b)) => Some(b),
                _ => None,
            },
        )
    }

    /// Every binding.
    ///
    /// # Errors
    /// `Integrity` for a damaged record.
    pub fn bindings(&self) -> Result<Vec<BindingRec>> {
        let mut v: Vec<BindingRec> = self
            .upstream_all()?
            .into_iter()
            .filter_map(|r| match r {
                Rec::Binding(b) => Some(b),
                Rec::Provider(_) => None,
            })
            .collect();
        v.sort_by(|a, b| (&a.scope, &a.name).cmp(&(&b.scope, &b.name)));
        Ok(v)
    }

    /// Removes the binding of `scope/name` (the cached versions stay a local secret).
    ///
    /// # Errors
    /// `PermissionDenied`.
    pub fn binding_remove(&self, actor: &Actor, scope: &Scope, name: &str) -> Result<bool> {
        self.authorize(actor, Action::Delete, &format!("{scope}/{name} binding"))?;
        if self.binding(scope, name)?.is_none() {
            return Ok(false);
        }
        let entry = AuditEntry::new(actor, Action::Delete, Outcome::Ok).secret(scope, name, None);
        self.upstream_write(&binding_key(&self.keys, scope, name), None, &entry)?;
        Ok(true)
    }

    /// Records the outcome of one fetch of a binding, with its audit entry, in one
    /// transaction: `Ok(version)` a good fetch, `Err(message)` a failure. Returns the record.
    ///
    /// # Errors
    /// When the record or the audit cannot be written.
    pub fn binding_note(
        &self,
        mut rec: BindingRec,
        outcome: std::result::Result<u64, String>,
        entry: &AuditEntry,
    ) -> Result<BindingRec> {
        let now = now_us();
        match outcome {
            Ok(v) => {
                rec.upstream_version = Some(v);
                rec.last_fetch_us = Some(now);
                rec.last_error = None;
            }
            Err(m) => rec.last_error = Some((now, m)),
        }
        let key = binding_key(&self.keys, &rec.scope, &rec.name);
        let rec = Rec::Binding(rec);
        self.upstream_write(&key, Some(&rec), entry)?;
        let Rec::Binding(b) = rec else {
            unreachable!("built as a binding above")
        };
        Ok(b)
    }

    /// Whether `actor` may read the value of `scope/name` (no audit: the read that follows
    /// decides and records).
    #[cfg_attr(not(feature = "upstream"), allow(dead_code))]
    pub(crate) fn may_read_value(&self, actor: &Actor, scope: &Scope, name: &str) -> bool {
        self.allow(actor, crate::policy::Op::ReadValue, scope, name)
            .is_ok()
    }

    /// References of `scope/name` held here: providers whose credentials it is, and the
    /// bindings that log in with them (SPEC §1).
    pub(crate) fn upstream_references(&self, scope: &Scope, name: &str) -> Vec<String> {
        if *scope != Scope::Org {
            return Vec::new();
        }
        let Ok(all) = self.upstream_all() else {
            return Vec::new();
        };
        let users: Vec<&Provider> = all
            .iter()
            .filter_map(|r| match r {
                Rec::Provider(p) if p.auth.secrets().contains(&name) => Some(p),
                _ => None,
            })
            .collect();
        let mut refs = Vec::new();
        for p in users {
            refs.push(format!("provider {}", p.name));
            refs.extend(all.iter().filter_map(|r| match r {
                Rec::Binding(b) if b.binding.provider == p.name => {
                    Some(format!("binding {}/{} via {}", b.scope, b.name, p.name))
                }
                _ => None,
            }));
        }
        refs
    }
}

/// Re-seals the upstream table under `new` (rekey), re-hashing its keys.
pub(super) fn rekey(store: &Store, new: &SubKeys, txn: &redb::WriteTransaction) -> Result<()> {
    let mut table = txn.open_table(UPSTREAM)?;
    let mut rows = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        let rec: Rec = store.open_row(TableId::Upstream, k.value(), v.value())?;
        let nk = rec_key(new, &rec);
        rows.push((
            nk,
            seal_with(new, &store.header.store_id, TableId::Upstream, &nk, &rec)?,
        ));
    }
    table.retain(|_, _| false)?;
    for (k, v) in &rows {
        table.insert(k, v.as_slice())?;
    }
    Ok(())
}

/// Copies the upstream table into a backup, when the source has one.
pub(super) fn backup(r: &redb::ReadTransaction, w: &redb::WriteTransaction) -> Result<()> {
    super::maintenance::copy_table_if_present(r, w, UPSTREAM)
}

//! Secrets: resolve, list, show, set, bulk set, delete, versions, rollback, check. Value
//! reads are in `read.rs`.

use std::collections::BTreeMap;

use redb::{ReadableTable, ReadableTableMetadata};

use super::audit;
use super::records::{SecretRec, ValueRec, VersionRec, now_us};
use super::{SECRETS, Store, VALUES};
use crate::error::{Error, Result};
use crate::format::TableId;
use crate::policy::{Decision, Op, decide};
use crate::types::{
    Action, Actor, AuditEntry, Outcome, Scope, SecretMeta, SetRequest, VersionInfo, validate_name,
};

/// The default number of versions kept.
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
/// The most versions a secret may keep.
pub const MAX_MAX_VERSIONS: u32 = 1000;

impl Store {
    /// The scopes a lookup of `name` without `--scope` tries, in order.
    fn candidate_scopes(&self, actor: &Actor, explicit: Option<&Scope>) -> Vec<Scope> {
        if let Some(s) = explicit {
            return vec![s.clone()];
        }
        let mut v = vec![Scope::User(actor.principal.clone())];
        v.extend(self.teams_of(&actor.principal).into_iter().map(Scope::Team));
        v.push(Scope::Org);
        v
    }

    /// Finds a secret by name: an explicit scope, else `user:<caller>` → the caller's teams →
    /// `org`. Two teams holding the name is `Ambiguous`.
    pub(super) fn resolve_in(
        &self,
        table: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
    ) -> Result<Option<([u8; 32], SecretRec)>> {
        validate_name(name)?;
        let mut team_hits = Vec::new();
        for s in self.candidate_scopes(actor, scope) {
            let h = self.secret_hash(&s, name);
            if let Some(raw) = table.get(&h)? {
                let rec: SecretRec = self.open_row(TableId::Secrets, &h, raw.value())?;
                let hit = (h, rec);
                match s {
                    Scope::Team(_) if scope.is_none() => team_hits.push(hit),
                    _ if !team_hits.is_empty() => break,
                    _ => return Ok(Some(hit)),
                }
            }
        }
        match team_hits.len() {
            0 => Ok(None),
            1 => Ok(team_hits.pop()),
            _ => Err(Error::Ambiguous {
                name: name.to_owned(),
                scopes: team_hits.iter().map(|(_, r)| r.scope.to_string()).collect(),
            }),
        }
    }

    /// Checks the policy; a denial is returned as `PermissionDenied` (the caller audits it).
    pub(super) fn allow(&self, actor: &Actor, op: Op, scope: &Scope, name: &str) -> Result<()> {
        let (who, teams) = self.principal_for(actor)?;
        match decide(&who, &teams, op, Some((scope, name)), crate::sys::now()) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => Err(Error::denied(why)),
        }
    }

    /// Resolves and authorizes a metadata read; denials are audited.
    pub(super) fn find_meta(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
        action: Action,
    ) -> Result<([u8; 32], SecretRec)> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SECRETS)?;
        let found = self.resolve_in(&table, actor, name, scope);
        drop(table);
        drop(txn);
        let target_scope = match &found {
            Ok(Some((_, r))) => r.scope.clone(),
            _ => scope.cloned().unwrap_or_default(),
        };
        let check = self.allow(actor, Op::ReadMeta, &target_scope, name);
        match (found, check) {
            (_, Err(e)) => {
                self.record(&AuditEntry::new(actor, action, Outcome::Denied).secret(
                    &target_scope,
                    name,
                    None,
                ))?;
                Err(e)
            }
            (Err(e), Ok(())) => Err(e),
            (Ok(None), Ok(())) => Err(Error::not_found("secret", format!("{target_scope}/{name}"))),
            (Ok(Some(hit)), Ok(())) => Ok(hit),
        }
    }

    /// Metadata and versions of one secret (no value is decrypted).
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`, `Ambiguous`, `InvalidArgument` for a bad name.
    pub fn show(&self, actor: &Actor, name: &str, scope: Option<&Scope>) -> Result<SecretMeta> {
        let (h, rec) = self.find_meta(actor, name, scope, Action::List)?;
        let mut meta = self.meta_of(&h, &rec);
        meta.fingerprint = rec.fingerprint(&self.keys).map(|fp| super::hex(&fp[..16]));
        Ok(meta)
    }

    /// The kept versions of a secret, oldest first.
    ///
    /// # Errors
    /// As [`Store::show`].
    pub fn versions(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
    ) -> Result<Vec<VersionInfo>> {
        self.show(actor, name, scope).map(|m| m.versions)
    }

    /// Number of secrets (all scopes).
    ///
    /// # Errors
    /// Storage errors.
    pub fn count(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(SECRETS)?.len()?)
    }

    /// Creates a secret or writes a new version (or, with `value: None` and no fields, changes
    /// metadata only). One durable transaction with its audit record.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad name or an empty value; `PermissionDenied` for non-owners.
    pub fn set(&self, actor: &Actor, name: &str, req: SetRequest) -> Result<SecretMeta> {
        let mut metas = self.write_many(actor, Action::Set, vec![(name.to_owned(), req)])?;
        metas.pop().ok_or_else(|| Error::Internal {
            message: "set wrote nothing".into(),
            source: None,
        })
    }

    /// Creates or updates many secrets in one transaction (bulk import). Each gets an `import`
    /// audit record in the same transaction.
    ///
    /// # Errors
    /// As [`Store::set`]; nothing is written when any item is invalid.
    pub fn set_many(&self, actor: &Actor, items: Vec<(String, SetRequest)>) -> Result<usize> {
        let n = items.len();
        self.write_many(actor, Action::Import, items).map(|_| n)
    }

    fn write_many(
        &self,
        actor: &Actor,
        action: Action,
        items: Vec<(String, SetRequest)>,
    ) -> Result<Vec<SecretMeta>> {
        for (name, req) in &items {
            validate_name(name)?;
            super::check::validate_request(req)?;
            if let Err(e) = self.allow(actor, Op::Write, &req.scope, name) {
                self.record(
                    &AuditEntry::new(actor, action, Outcome::Denied).secret(&req.scope, name, None),
                )?;
                return Err(e);
            }
        }
        let now = now_us();
        let want_meta = action != Action::Import;
        // Written in name-hash order: rows keyed by a hash land on random leaves, and a bulk
        // import in input order touches a cold leaf per row. Sorted, consecutive rows share
        // leaves. The sort is stable, so two writes of one name keep their order; audit
        // records and results keep the input order.
        let mut items: Vec<(usize, [u8; 32], String, SetRequest)> = items
            .into_iter()
            .enumerate()
            .map(|(i, (name, req))| (i, self.secret_hash(&req.scope, &name), name, req))
            .collect();
        items.sort_by_key(|a| a.1);
        let txn = self.db.begin_write()?;
        let mut metas = Vec::with_capacity(if want_meta { items.len() } else { 0 });
        let mut entries = Vec::with_capacity(items.len());
        {
            let mut secrets = txn.open_table(SECRETS)?;
            let mut values = txn.open_table(VALUES)?;
            for (i, h, name, req) in items {
                let existing: Option<SecretRec> = match secrets.get(&h)? {
                    Some(raw) => Some(self.open_row(TableId::Secrets, &h, raw.value())?),
                    None => None,
                };
                let prev = existing.as_ref().map(|r| r.version);
                let (mut rec, new_value) = apply_set(existing, &name, req, &actor.principal, now)?;
                let writes = new_value.map(|v| (rec.version, v)).into_iter().collect();
                // Versions beyond max_versions are gone from the store, not just unlisted.
                self.settle_versions(&mut values, &h, &mut rec, prev, writes)?;
                secrets.insert(&h, self.seal_row(TableId::Secrets, &h, &rec)?.as_slice())?;
                entries.push((
                    i,
                    AuditEntry::new(actor, action, Outcome::Ok).secret(
                        &rec.scope,
                        &rec.name,
                        Some(rec.version),
                    ),
                ));
                if want_meta {
                    metas.push((i, self.meta_of(&h, &rec)));
                }
            }
        }
        entries.sort_by_key(|(i, _)| *i);
        metas.sort_by_key(|(i, _)| *i);
        let entries: Vec<AuditEntry> = entries.into_iter().map(|(_, e)| e).collect();
        let metas: Vec<SecretMeta> = metas.into_iter().map(|(_, m)| m).collect();
        audit::append(self, &txn, &entries)?;
        self.db.commit(txn)?;
        self.changed();
        Ok(metas)
    }

    /// Deletes a secret and all its versions. Refused with `Conflict` listing every reference
    /// (grants, globs that match, recorded files, remote bindings) and the principals that read
    /// it in the last 30 days, unless `force`.
    ///
    /// # Errors
    /// `NotFound`, `Conflict`, `PermissionDenied`.
    pub fn delete(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
        force: bool,
    ) -> Result<()> {
        self.delete_forced(actor, name, scope, force).map(drop)
    }

    /// As [`Store::delete`], returning the references a forced delete broke (one line each).
    ///
    /// # Errors
    /// As [`Store::delete`].
    pub fn delete_forced(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
        force: bool,
    ) -> Result<Vec<String>> {
        let (h, rec) = self.find_meta(actor, name, scope, Action::Delete)?;
        if let Err(e) = self.allow(actor, Op::Write, &rec.scope, name) {
            self.record(
                &AuditEntry::new(actor, Action::Delete, Outcome::Denied)
                    .secret(&rec.scope, name, None),
            )?;
            return Err(e);
        }
        let refs: Vec<String> = self
            .all_references(&h, &rec.scope, name)?
            .iter()
            .map(ToString::to_string)
            .collect();
        if !refs.is_empty() && !force {
            let readers = self.recent_readers(&rec.scope, name)?;
            let mut reason = format!(
                "{}/{name} is referenced by {} ({})",
                rec.scope,
                refs.len(),
                refs.join("; ")
            );
            if !readers.is_empty() {
                let who: Vec<String> = readers
                    .iter()
                    .map(|r| format!("{} ({} reads)", r.principal, r.reads))
                    .collect();
                reason = format!("{reason}; read in the last 30 days by {}", who.join(", "));
            }
            return Err(Error::Conflict {
                reason,
                references: refs,
            });
        }
        let txn = self.db.begin_write()?;
        {
            // The record as this transaction removes it (a write may have come in since it
            // was found): its versions are the rows to remove.
            let removed = txn
                .open_table(SECRETS)?
                .remove(&h)?
                .map(|raw| raw.value().to_vec());
            let now_rec: SecretRec = match removed {
                Some(raw) => self.open_row(TableId::Secrets, &h, &raw)?,
                None => return Err(Error::not_found("secret", format!("{}/{name}", rec.scope))),
            };
            Self::drop_history(&mut txn.open_table(VALUES)?, &h, &now_rec)?;
        }
        Self::forget_secret(&txn, &h)?;
        self.forget_last_used(&txn, &h)?;
        self.put_tombstone(&txn, &rec.scope, name, now_us())?;
        audit::append(
            self,
            &txn,
            &[AuditEntry::new(actor, Action::Delete, Outcome::Ok).secret(
                &rec.scope,
                name,
                Some(rec.version),
            )],
        )?;
        self.db.commit(txn)?;
        self.changed();
        Ok(refs)
    }

    /// Re-publishes version `to` as a new version.
    ///
    /// # Errors
    /// `NotFound` when the version is not kept; `PermissionDenied`.
    pub fn rollback(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
        to: u64,
    ) -> Result<SecretMeta> {
        let (h, rec) = self.find_meta(actor, name, scope, Action::Rollback)?;
        if let Err(e) = self.allow(actor, Op::Write, &rec.scope, name) {
            self.record(
                &AuditEntry::new(actor, Action::Rollback, Outcome::Denied).secret(
                    &rec.scope,
                    name,
                    Some(to),
                ),
            )?;
            return Err(e);
        }
        let now = now_us();
        let txn = self.db.begin_write()?;
        let meta = {
            let mut secrets = txn.open_table(SECRETS)?;
            let mut values = txn.open_table(VALUES)?;
            // The record as this transaction sees it (a write may have come in since it was
            // found), so that the current value moved into history is the one it replaces.
            let mut rec: SecretRec = match secrets.get(&h)? {
                Some(raw) => self.open_row(TableId::Secrets, &h, raw.value())?,
                None => return Err(Error::not_found("secret", format!("{}/{name}", rec.scope))),
            };
            let val = self.value_of(&values, &h, &rec, to)?.ok_or_else(|| {
                Error::not_found("version", format!("{}/{name} version {to}", rec.scope))
            })?;
            let prev = rec.version;
            rec.version += 1;
            rec.updated_at = now;
            rec.updated_by.clone_from(&actor.principal);
            rec.versions.push(VersionRec {
                version: rec.version,
                at: now,
                by: actor.principal.clone(),
                fields: val.fields.iter().map(|(n, _)| n.clone()).collect(),
                size: val.value.len() as u64,
                from: Some(to),
            });
            let writes = vec![(rec.version, val)];
            self.settle_versions(&mut values, &h, &mut rec, Some(prev), writes)?;
            secrets.insert(&h, self.seal_row(TableId::Secrets, &h, &rec)?.as_slice())?;
            rec
        };
        audit::append(
            self,
            &txn,
            &[
                AuditEntry::new(actor, Action::Rollback, Outcome::Ok).secret(
                    &meta.scope,
                    name,
                    Some(meta.version),
                ),
            ],
        )?;
        self.db.commit(txn)?;
        self.changed();
        Ok(self.meta_of(&h, &meta))
    }
}

/// Applies a `set` to the current record (if any). Returns the new record and the value to
/// write as its new version (none for a metadata-only change).
fn apply_set(
    existing: Option<SecretRec>,
    name: &str,
    req: SetRequest,
    by: &str,
    now: i64,
) -> Result<(SecretRec, Option<ValueRec>)> {
    let new_value = if req.value.is_some() || !req.fields.is_empty() {
        Some(ValueRec {
            value: req.value.clone().unwrap_or_default(),
            fields: req.fields.clone().into_iter().collect(),
        })
    } else {
        None
    };
    let mut rec = if let Some(r) = existing {
        r
    } else {
        if new_value.is_none() {
            // Only metadata for a secret that is not there: nothing to change (a new secret
            // needs a value or fields).
            return Err(Error::not_found(
                "secret",
                format!("{name} (a new secret needs a value or fields)"),
            ));
        }
        SecretRec {
            name: name.to_owned(),
            scope: req.scope.clone(),
            stype: req.secret_type.unwrap_or_default(),
            description: None,
            integration: None,
            meta: BTreeMap::new(),
            created_at: now,
            created_by: by.to_owned(),
            updated_at: now,
            updated_by: by.to_owned(),
            version: 0,
            max_versions: DEFAULT_MAX_VERSIONS,
            max_age_days: None,
            versions: Vec::new(),
            current: ValueRec::default(),
            current_in_values: false,
        }
    };
    if let Some(t) = req.secret_type {
        rec.stype = t;
    }
    if req.description.is_some() {
        rec.description = req.description;
    }
    if req.integration.is_some() {
        rec.integration = req.integration;
    }
    // A label given with an empty value is removed (`--meta k=`, `--unset-meta k`).
    rec.meta.extend(req.meta);
    rec.meta.retain(|_, v| !v.is_empty());
    if req.max_age_days.is_some() {
        rec.max_age_days = req.max_age_days;
    }
    if let Some(m) = req.max_versions {
        rec.max_versions = m;
    }
    rec.updated_at = now;
    by.clone_into(&mut rec.updated_by);
    if let Some(v) = &new_value {
        rec.version += 1;
        rec.versions.push(VersionRec {
            version: rec.version,
            at: now,
            by: by.to_owned(),
            fields: v.fields.iter().map(|(n, _)| n.clone()).collect(),
            size: v.value.len() as u64,
            from: None,
        });
    }
    Ok((rec, new_value))
}

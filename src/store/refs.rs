//! References to secrets and value fingerprints (SPEC §1).
//!
//! | table          | key             | value                                                |
//! |----------------|-----------------|------------------------------------------------------|
//! | `refs`         | name hash (32)  | sealed list of recorded references (manifests, env files, templates) |
//!
//! Grants and remote bindings are not recorded here: they are read off the principals and
//! the upstream table when asked, so that they can never be out of date. A fingerprint is a
//! BLAKE3 MAC of the value under its own subkey of the data key: equal values have equal
//! fingerprints within one store, and a fingerprint says nothing else about the value.
//! Format 2 derives it from the current value that the secret's record holds
//! ([`SecretRec::fingerprint`](super::records::SecretRec::fingerprint)); format 1 kept it in
//! a `fingerprints` table, which the migration drops ([`FINGERPRINTS_V1`]). `refs` is created
//! by the first write that needs it.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::audit::{EntryRec, names_secret};
use super::records::{now_us, seal_with, ts};
use super::{AUDIT, SECRETS, Store};
use crate::crypto::SubKeys;
use crate::error::{Error, Result};
use crate::format::{AuditLayout, TableId};
use crate::policy::{Op, pattern_matches};
use crate::types::{
    Action, Actor, AuditEntry, Outcome, PrincipalKind, READERS_DAYS, Reader, RefKind, Reference,
    References, Scope,
};

pub(super) const REFS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("refs");
/// Format 1's table of sealed fingerprints: only the migration names it (to drop it).
pub(super) const FINGERPRINTS_V1: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("fingerprints");

/// A recorded reference is refreshed at most this often (microseconds): `run` in a loop does
/// not write the store on every start.
const REFRESH_US: i64 = 3_600 * 1_000_000;

/// One recorded reference (table `refs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RefRec {
    kind: RefKind,
    path: String,
    principal: String,
    uid: u32,
    last: i64,
}

impl RefRec {
    fn to_public(&self) -> Reference {
        Reference {
            kind: self.kind,
            what: self.path.clone(),
            principal: Some(self.principal.clone()),
            uid: Some(self.uid),
            last: Some(ts(self.last)),
        }
    }
}

/// The keyed fingerprint of a value.
pub(super) fn fingerprint(keys: &SubKeys, value: &[u8]) -> [u8; 32] {
    keys.fingerprint.mac_parts(&[b"value", value])
}

/// Opens a table that may not exist yet in a read transaction (stores written before it).
fn open_optional(
    txn: &redb::ReadTransaction,
    def: TableDefinition<&'static [u8; 32], &'static [u8]>,
) -> Result<Option<redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>>> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// Removes (in `txn`) what this module holds about a deleted secret.
    pub(super) fn forget_secret(txn: &WriteTransaction, h: &[u8; 32]) -> Result<()> {
        txn.open_table(REFS)?.remove(h)?;
        Ok(())
    }

    /// Whether `value` has the same fingerprint as the current value of `name` (those who may
    /// write it: `apply` compares a manifest's value without reading the stored one). Nothing
    /// is recorded: no value leaves the store. `None` when the current value is empty (a
    /// secret of fields only).
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied` (audited), `Ambiguous`.
    pub fn same_value(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
        value: &[u8],
    ) -> Result<Option<bool>> {
        let (_, rec) = self.find_meta(actor, name, scope, Action::Read)?;
        if let Err(e) = self.allow(actor, Op::Write, &rec.scope, name) {
            self.record(
                &AuditEntry::new(actor, Action::Read, Outcome::Denied)
                    .secret(&rec.scope, name, None),
            )?;
            return Err(e);
        }
        let Some(have) = rec.fingerprint(&self.keys) else {
            return Ok(None);
        };
        let want = fingerprint(&self.keys, value);
        Ok(Some(bool::from(subtle::ConstantTimeEq::ct_eq(
            &have[..],
            &want[..],
        ))))
    }

    /// The references of a secret and who read its value in the last 30 days (owners and
    /// members; SPEC §1). Grants are every grant whose pattern (exact or glob) matches the
    /// name, within the grant's scope.
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied` (audited), `Ambiguous`.
    pub fn secret_references(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
    ) -> Result<References> {
        let (h, rec) = self.find_meta(actor, name, scope, Action::List)?;
        let (who, _) = self.principal_for(actor)?;
        if !matches!(who.kind, PrincipalKind::Owner | PrincipalKind::Member) {
            self.record(
                &AuditEntry::new(actor, Action::List, Outcome::Denied)
                    .secret(&rec.scope, name, None),
            )?;
            return Err(Error::denied(
                "references are listed to owners and members, not agents",
            ));
        }
        let mut references = self.live_references(&rec.scope, name);
        references.extend(self.recorded_references(&h)?.iter().map(RefRec::to_public));
        references.sort_by(|a, b| (a.kind, &a.what).cmp(&(b.kind, &b.what)));
        Ok(References {
            name: rec.name,
            readers: self.recent_readers(&rec.scope, name)?,
            scope: rec.scope,
            references,
        })
    }

    /// Whether any secret matches a grant pattern (within `scope`, when given): a grant that
    /// matches nothing is most likely a typo, and its creator is warned. Owners only (it is
    /// asked when granting).
    ///
    /// # Errors
    /// `PermissionDenied`; `Integrity` for a record that does not open.
    pub fn pattern_matches_any(
        &self,
        actor: &Actor,
        pattern: &str,
        scope: Option<&Scope>,
    ) -> Result<bool> {
        self.authorize_admin(actor, Action::Grant, "grant")?;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SECRETS)?;
        for row in table.iter()? {
            let (k, v) = row?;
            let rec: super::records::SecretRec =
                self.open_row(TableId::Secrets, k.value(), v.value())?;
            if scope.is_none_or(|s| *s == rec.scope) && pattern_matches(pattern, &rec.name) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Grants and remote bindings naming `scope/name`, as they are now.
    pub(super) fn live_references(&self, scope: &Scope, name: &str) -> Vec<Reference> {
        let mut out = Vec::new();
        if let Ok(cache) = self.principals.read() {
            for p in cache.by_name.values() {
                for g in p.to_public().grants {
                    if pattern_matches(&g.pattern, name)
                        && g.scope.as_ref().is_none_or(|s| s == scope)
                    {
                        out.push(Reference {
                            kind: RefKind::Grant,
                            what: format!("{} {}", p.name, g.pattern),
                            principal: Some(p.name.clone()),
                            uid: None,
                            last: None,
                        });
                    }
                }
            }
        }
        out.extend(
            self.upstream_references(scope, name)
                .into_iter()
                .map(|what| Reference {
                    kind: RefKind::Remote,
                    what,
                    principal: None,
                    uid: None,
                    last: None,
                }),
        );
        out
    }

    fn recorded_references(&self, h: &[u8; 32]) -> Result<Vec<RefRec>> {
        let txn = self.db.begin_read()?;
        let Some(t) = open_optional(&txn, REFS)? else {
            return Ok(Vec::new());
        };
        match t.get(h)? {
            Some(raw) => self.open_row(TableId::References, h, raw.value()),
            None => Ok(Vec::new()),
        }
    }

    /// Every reference of `scope/name` (live and recorded), for a delete.
    pub(super) fn all_references(
        &self,
        h: &[u8; 32],
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<Reference>> {
        let mut refs = self.live_references(scope, name);
        refs.extend(self.recorded_references(h)?.iter().map(RefRec::to_public));
        refs.sort_by(|a, b| (a.kind, &a.what).cmp(&(b.kind, &b.what)));
        Ok(refs)
    }

    /// Principals whose reads of `scope/name` succeeded in the last 30 days, most reads
    /// first. Walks the audit log from its end.
    pub(super) fn recent_readers(&self, scope: &Scope, name: &str) -> Result<Vec<Reader>> {
        let since = now_us() - READERS_DAYS * 86_400 * 1_000_000;
        let since = ts(since);
        let scope_s = scope.to_string();
        let txn = self.db.begin_read()?;
        let table = txn.open_table(AUDIT)?;
        let mut by: BTreeMap<String, Reader> = BTreeMap::new();
        for row in table.iter()?.rev() {
            let (k, v) = row?;
            let seq = k.value();
            let (_, env) = AuditLayout::split(v.value())
                .ok_or_else(|| Error::integrity("audit", format!("seq {seq}")))?;
            let r = self
                .open_row::<EntryRec>(TableId::Audit, &seq.to_be_bytes(), env)?
                .into_record(seq);
            if r.time < since {
                break;
            }
            if r.action != Action::Read
                || r.outcome != Outcome::Ok
                || r.scope.as_deref() != Some(scope_s.as_str())
                || !names_secret(r.name.as_deref(), name)
            {
                continue;
            }
            let e = by.entry(r.principal.clone()).or_insert(Reader {
                principal: r.principal.clone(),
                reads: 0,
                last: r.time,
            });
            e.reads += 1;
            e.last = e.last.max(r.time);
        }
        let mut out: Vec<Reader> = by.into_values().collect();
        out.sort_by(|a, b| b.reads.cmp(&a.reads).then(a.principal.cmp(&b.principal)));
        Ok(out)
    }

    /// Records that a file of `kind` at `path` resolved these secrets (`apply` manifests,
    /// `run --env-file`, `inject` templates). The caller must be able to read each value, or
    /// to write it (an owner applying a manifest). A reference seen in the last hour is not
    /// written again. Returns how many references were new or refreshed.
    ///
    /// # Errors
    /// `InvalidArgument` for a kind that is not recorded or an empty path; `PermissionDenied`
    /// (audited) for a secret the caller may neither read nor write; storage errors.
    pub fn record_references(
        &self,
        actor: &Actor,
        kind: RefKind,
        path: &str,
        secrets: &[(Option<Scope>, String)],
    ) -> Result<usize> {
        if !kind.is_recorded() {
            return Err(Error::invalid(
                "kind",
                "only manifest, env_file and template references are recorded",
            ));
        }
        if path.is_empty() || path.len() > 4096 {
            return Err(Error::invalid("path", "must be 1 to 4096 bytes"));
        }
        let now = now_us();
        let mut hits = Vec::new();
        {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(SECRETS)?;
            for (scope, name) in secrets {
                let Some((h, rec)) = self.resolve_in(&table, actor, name, scope.as_ref())? else {
                    continue;
                };
                let may = self.allow(actor, Op::ReadValue, &rec.scope, name).is_ok()
                    || self.allow(actor, Op::Write, &rec.scope, name).is_ok();
                if !may {
                    self.record(
                        &AuditEntry::new(actor, Action::Set, Outcome::Denied)
                            .secret(&rec.scope, name, None),
                    )?;
                    return Err(Error::denied(format!(
                        "{}/{name}: a reference is recorded by those who may read or write it",
                        rec.scope
                    )));
                }
                hits.push(h);
            }
        }
        let txn = self.db.begin_write()?;
        let mut changed = 0;
        {
            let mut t = txn.open_table(REFS)?;
            for h in hits {
                let mut list: Vec<RefRec> = match t.get(&h)? {
                    Some(raw) => self.open_row(TableId::References, &h, raw.value())?,
                    None => Vec::new(),
                };
                let same = |r: &RefRec| {
                    r.kind == kind
                        && r.path == path
                        && r.principal == actor.principal
                        && r.uid == actor.uid
                };
                match list.iter_mut().find(|r| same(r)) {
                    Some(r) if now - r.last < REFRESH_US => continue,
                    Some(r) => r.last = now,
                    None => list.push(RefRec {
                        kind,
                        path: path.to_owned(),
                        principal: actor.principal.clone(),
                        uid: actor.uid,
                        last: now,
                    }),
                }
                changed += 1;
                t.insert(
                    &h,
                    self.seal_row(TableId::References, &h, &list)?.as_slice(),
                )?;
            }
        }
        if changed == 0 {
            drop(txn);
            return Ok(0);
        }
        self.db.commit(txn)?;
        Ok(changed)
    }
}

/// Re-seals `refs` under `new` (rekey): references move to their new name hash. Fingerprints
/// are derived from the re-sealed records, so they follow the new key by themselves.
pub(super) fn rekey(
    store: &Store,
    new: &SubKeys,
    txn: &WriteTransaction,
    rehash: &std::collections::HashMap<[u8; 32], [u8; 32]>,
) -> Result<()> {
    let id = &store.header.store_id;
    let mut refs = txn.open_table(REFS)?;
    let mut rows = Vec::new();
    for row in refs.iter()? {
        let (k, v) = row?;
        let list: Vec<RefRec> = store.open_row(TableId::References, k.value(), v.value())?;
        if let Some(nh) = rehash.get(k.value()) {
            rows.push((*nh, seal_with(new, id, TableId::References, nh, &list)?));
        }
    }
    refs.retain(|_, _| false)?;
    for (k, v) in &rows {
        refs.insert(k, v.as_slice())?;
    }
    Ok(())
}

/// Copies `refs` into a backup, when the source has it.
pub(super) fn backup(r: &redb::ReadTransaction, w: &WriteTransaction) -> Result<()> {
    super::maintenance::copy_table_if_present(r, w, REFS)
}

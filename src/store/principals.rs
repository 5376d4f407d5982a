//! Principals (owners, members, agents), teams and grants, stored sealed; the in-memory cache
//! used to map a peer to a principal; bearer tokens as keyed hashes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::audit;
use super::records::{now_us, ts};
use super::{PRINCIPALS, Store, poisoned};
use crate::error::{Error, Result};
use crate::format::TableId;
use crate::types::{
    Action, Actor, AuditEntry, Grant, Outcome, Principal, PrincipalKind, PrincipalSpec, Role,
    Scope, SecretBytes, validate_principal_name,
};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct GrantRec {
    pattern: String,
    scope: Option<Scope>,
    expires: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PrincipalRec {
    pub name: String,
    pub kind: PrincipalKind,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub token_hash: Option<[u8; 32]>,
    grants: Vec<GrantRec>,
    members: Vec<String>,
    created_at: i64,
}

impl PrincipalRec {
    pub(super) fn to_public(&self) -> Principal {
        Principal {
            name: self.name.clone(),
            kind: self.kind,
            uid: self.uid,
            gid: self.gid,
            has_token: self.token_hash.is_some(),
            grants: self
                .grants
                .iter()
                .map(|g| Grant {
                    pattern: g.pattern.clone(),
                    scope: g.scope.clone(),
                    expires: g.expires.map(ts),
                })
                .collect(),
            members: self.members.clone(),
            created_at: ts(self.created_at),
        }
    }
}

/// Where cache generations come from: one counter for every store in the process, so a
/// generation names one load of one store's principals and never matches another's.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// Principals by name, for the per-request lookups of the daemon.
#[derive(Default, Debug)]
pub(super) struct Cache {
    pub by_name: HashMap<String, PrincipalRec>,
    /// Changes with every reload (0: never loaded); a [`super::PeerAdmission`] made under an
    /// older generation is decided again.
    pub generation: u64,
}

impl Cache {
    pub(super) fn teams_of(&self, name: &str) -> Vec<String> {
        let mut t: Vec<String> = self
            .by_name
            .values()
            .filter(|p| p.kind == PrincipalKind::Team && p.members.iter().any(|m| m == name))
            .map(|p| p.name.clone())
            .collect();
        t.sort();
        t
    }
}

fn last_owner(name: &str) -> Error {
    Error::Conflict {
        reason: format!(
            "{name} is the last owner; add another owner first, then remove or change {name}"
        ),
        references: Vec::new(),
    }
}

fn token_text(raw: &[u8]) -> SecretBytes {
    let mut s = b"tresor_".to_vec();
    s.extend_from_slice(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(raw)
            .as_bytes(),
    );
    SecretBytes::new(s)
}

impl Store {
    pub(crate) fn put_first_owner(
        &self,
        txn: &redb::WriteTransaction,
        actor: &Actor,
    ) -> Result<()> {
        let name = if validate_principal_name(&actor.principal).is_ok() {
            actor.principal.clone()
        } else {
            format!("uid-{}", actor.uid)
        };
        let rec = PrincipalRec {
            name,
            kind: PrincipalKind::Owner,
            uid: Some(actor.uid),
            gid: None,
            token_hash: None,
            grants: Vec::new(),
            members: Vec::new(),
            created_at: now_us(),
        };
        self.put_principal_rec(txn, &rec)
    }

    fn put_principal_rec(&self, txn: &redb::WriteTransaction, rec: &PrincipalRec) -> Result<()> {
        let h = self.principal_hash(&rec.name);
        let sealed = self.seal_row(TableId::Principals, &h, rec)?;
        txn.open_table(PRINCIPALS)?.insert(&h, sealed.as_slice())?;
        Ok(())
    }

    pub(crate) fn reload_principals(&self) -> Result<()> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PRINCIPALS)?;
        let mut by_name = HashMap::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let rec: PrincipalRec = self.open_row(TableId::Principals, k.value(), v.value())?;
            by_name.insert(rec.name.clone(), rec);
        }
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        *self.principals.write().map_err(|_| poisoned())? = Cache {
            by_name,
            generation,
        };
        Ok(())
    }

    /// The teams `name` belongs to.
    pub fn teams_of(&self, name: &str) -> Vec<String> {
        self.principals
            .read()
            .map(|c| c.teams_of(name))
            .unwrap_or_default()
    }

    fn mutate_principal(
        &self,
        actor: &Actor,
        action: Action,
        name: &str,
        f: impl FnOnce(Option<PrincipalRec>) -> Result<Option<PrincipalRec>>,
    ) -> Result<Option<Principal>> {
        self.authorize(actor, action, name)?;
        // One principal change at a time, from read to cache reload: two changes to the same
        // record must not both start from the same old copy (a revoke would be undone).
        let _serial = self
            .principal_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let existing = self
            .principals
            .read()
            .map_err(|_| poisoned())?
            .by_name
            .get(name)
            .cloned();
        let next = f(existing)?;
        let txn = self.db.begin_write()?;
        match &next {
            Some(rec) => self.put_principal_rec(&txn, rec)?,
            None => {
                txn.open_table(PRINCIPALS)?
                    .remove(&self.principal_hash(name))?;
            }
        }
        audit::append(
            self,
            &txn,
            &[AuditEntry::new(actor, action, Outcome::Ok).named(name)],
        )?;
        self.db.commit(txn)?;
        self.reload_principals()?;
        Ok(next.map(|r| r.to_public()))
    }

    /// Adds (or replaces) a principal. Returns it and, with `spec.token`, its bearer token
    /// (shown once; only a keyed hash is stored).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad name or an agent with neither uid, gid nor token;
    /// `Conflict` when a team has that name or when it would change the last owner into
    /// another role or stop it matching the uid (and gid) it matched; `PermissionDenied` for non-owners.
    pub fn principal_add(
        &self,
        actor: &Actor,
        spec: &PrincipalSpec,
    ) -> Result<(Principal, Option<SecretBytes>)> {
        validate_principal_name(&spec.name)?;
        if spec.role == Role::Agent && spec.uid.is_none() && spec.gid.is_none() && !spec.token {
            return Err(Error::invalid(
                "principal",
                "an agent needs --uid, --gid or --token to be recognized",
            ));
        }
        if spec.role != Role::Agent && spec.uid.is_none() && spec.gid.is_none() {
            return Err(Error::invalid(
                "principal",
                format!("a {} needs --uid or --gid", spec.role),
            ));
        }
        let mut token = None;
        let mut token_hash = None;
        if spec.token {
            let mut raw = zeroize::Zeroizing::new([0u8; 32]);
            crate::crypto::fill_random(raw.as_mut_slice())?;
            let t = token_text(raw.as_slice());
            token_hash = Some(self.keys.token.mac(t.expose()));
            token = Some(t);
        }
        let owners = || self.owner_count();
        let p = self.mutate_principal(actor, Action::Principal, &spec.name, |old| {
            if old.as_ref().is_some_and(|o| o.kind == PrincipalKind::Team) {
                return Err(Error::Conflict {
                    reason: format!("{} is a team", spec.name),
                    references: Vec::new(),
                });
            }
            // The last owner may be replaced by an owner, never by another role (SPEC §5), and
            // only so that whoever it admitted is still admitted: another uid, or a gid it did
            // not ask for, would leave no owner over the socket.
            if let Some(o) = old.as_ref().filter(|o| o.kind == PrincipalKind::Owner) {
                let keeps_peer = spec.uid == o.uid && spec.gid.is_none_or(|g| o.gid == Some(g));
                if (spec.role != Role::Owner || !keeps_peer) && owners() <= 1 {
                    return Err(last_owner(&spec.name));
                }
            }
            Ok(Some(PrincipalRec {
                name: spec.name.clone(),
                kind: spec.role.into(),
                uid: spec.uid,
                gid: spec.gid,
                token_hash,
                grants: old.map(|o| o.grants).unwrap_or_default(),
                members: Vec::new(),
                created_at: now_us(),
            }))
        })?;
        Ok((
            p.ok_or_else(|| Error::not_found("principal", &spec.name))?,
            token,
        ))
    }

    /// One principal or team.
    ///
    /// # Errors
    /// `NotFound`; `PermissionDenied` for non-owners.
    pub fn principal_get(&self, actor: &Actor, name: &str) -> Result<Principal> {
        self.authorize(actor, Action::List, name)?;
        let cache = self.principals.read().map_err(|_| poisoned())?;
        cache
            .by_name
            .get(name)
            .map(PrincipalRec::to_public)
            .ok_or_else(|| Error::not_found("principal", name))
    }

    /// Every principal and team, sorted by name.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners.
    pub fn principals(&self, actor: &Actor) -> Result<Vec<Principal>> {
        self.authorize(actor, Action::List, "principals")?;
        let cache = self.principals.read().map_err(|_| poisoned())?;
        let mut v: Vec<Principal> = cache
            .by_name
            .values()
            .map(PrincipalRec::to_public)
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Removes a principal or team (and its team memberships).
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when removing the last owner.
    pub fn principal_remove(&self, actor: &Actor, name: &str) -> Result<()> {
        let owners = || self.owner_count();
        self.mutate_principal(actor, Action::Principal, name, |old| match old {
            None => Err(Error::not_found("principal", name)),
            Some(o) if o.kind == PrincipalKind::Owner && owners() <= 1 => Err(last_owner(name)),
            Some(_) => Ok(None),
        })?;
        for team in self.teams_of(name) {
            self.team_leave(actor, &team, name)?;
        }
        Ok(())
    }

    /// How many owners the store lists (0 when the cache was poisoned).
    fn owner_count(&self) -> usize {
        self.principals.read().map_or(0, |c| {
            c.by_name
                .values()
                .filter(|p| p.kind == PrincipalKind::Owner)
                .count()
        })
    }

    /// Adds a grant to an agent (or member).
    ///
    /// # Errors
    /// `NotFound`; `InvalidArgument` for a bad pattern.
    pub fn grant(&self, actor: &Actor, name: &str, grant: &Grant) -> Result<Principal> {
        if grant.pattern.is_empty()
            || grant.pattern.len() > 128
            || glob::Pattern::new(&grant.pattern).is_err()
        {
            return Err(Error::invalid(
                "pattern",
                format!("{:?} is not a name or glob", grant.pattern),
            ));
        }
        let p = self.mutate_principal(actor, Action::Grant, name, |old| {
            let mut rec = old.ok_or_else(|| Error::not_found("principal", name))?;
            if rec.kind == PrincipalKind::Team {
                return Err(Error::invalid(
                    "principal",
                    format!("{name} is a team; grant its members"),
                ));
            }
            rec.grants
                .retain(|g| !(g.pattern == grant.pattern && g.scope == grant.scope));
            rec.grants.push(GrantRec {
                pattern: grant.pattern.clone(),
                scope: grant.scope.clone(),
                expires: grant.expires.map(jiff::Timestamp::as_microsecond),
            });
            Ok(Some(rec))
        })?;
        p.ok_or_else(|| Error::not_found("principal", name))
    }

    /// Removes the grants of `name` with this pattern.
    ///
    /// # Errors
    /// `NotFound` when there is no such principal or grant.
    pub fn revoke(&self, actor: &Actor, name: &str, pattern: &str) -> Result<Principal> {
        let p = self.mutate_principal(actor, Action::Revoke, name, |old| {
            let mut rec = old.ok_or_else(|| Error::not_found("principal", name))?;
            let before = rec.grants.len();
            rec.grants.retain(|g| g.pattern != pattern);
            if rec.grants.len() == before {
                return Err(Error::not_found("grant", format!("{name} {pattern}")));
            }
            Ok(Some(rec))
        })?;
        p.ok_or_else(|| Error::not_found("principal", name))
    }

    /// Creates a team.
    ///
    /// # Errors
    /// `Conflict` when the name is taken.
    pub fn team_add(&self, actor: &Actor, team: &str) -> Result<Principal> {
        validate_principal_name(team)?;
        let p = self.mutate_principal(actor, Action::Principal, team, |old| {
            if old.is_some() {
                return Err(Error::Conflict {
                    reason: format!("{team} already exists"),
                    references: Vec::new(),
                });
            }
            Ok(Some(PrincipalRec {
                name: team.into(),
                kind: PrincipalKind::Team,
                uid: None,
                gid: None,
                token_hash: None,
                grants: Vec::new(),
                members: Vec::new(),
                created_at: now_us(),
            }))
        })?;
        p.ok_or_else(|| Error::not_found("team", team))
    }

    /// Adds `member` (a principal) to `team`.
    ///
    /// # Errors
    /// `NotFound` when either is missing.
    pub fn team_join(&self, actor: &Actor, team: &str, member: &str) -> Result<Principal> {
        let known = self
            .principals
            .read()
            .map_err(|_| poisoned())?
            .by_name
            .get(member)
            .is_some_and(|p| p.kind != PrincipalKind::Team);
        if !known {
            return Err(Error::not_found("principal", member));
        }
        self.team_edit(actor, team, |m| {
            if !m.iter().any(|x| x == member) {
                m.push(member.to_owned());
                m.sort();
            }
            Ok(())
        })
    }

    /// Removes `member` from `team`.
    ///
    /// # Errors
    /// `NotFound` when the team is missing or `member` is not in it.
    pub fn team_leave(&self, actor: &Actor, team: &str, member: &str) -> Result<Principal> {
        self.team_edit(actor, team, |m| {
            let before = m.len();
            m.retain(|x| x != member);
            if m.len() == before {
                Err(Error::not_found("team member", format!("{team} {member}")))
            } else {
                Ok(())
            }
        })
    }

    fn team_edit(
        &self,
        actor: &Actor,
        team: &str,
        f: impl FnOnce(&mut Vec<String>) -> Result<()>,
    ) -> Result<Principal> {
        let p = self.mutate_principal(actor, Action::Principal, team, |old| {
            let mut rec = old
                .filter(|r| r.kind == PrincipalKind::Team)
                .ok_or_else(|| Error::not_found("team", team))?;
            f(&mut rec.members)?;
            Ok(Some(rec))
        })?;
        p.ok_or_else(|| Error::not_found("team", team))
    }

    /// Grants whose pattern names this secret exactly (the references that block `rm`).
    pub fn references(&self, scope: &Scope, name: &str) -> Vec<String> {
        let Ok(cache) = self.principals.read() else {
            return Vec::new();
        };
        let mut refs: Vec<String> = cache
            .by_name
            .values()
            .flat_map(|p| {
                p.grants
                    .iter()
                    .filter(|g| g.pattern == name && g.scope.as_ref().is_none_or(|s| s == scope))
                    .map(move |g| format!("grant {} {}", p.name, g.pattern))
            })
            .collect();
        drop(cache);
        refs.extend(self.upstream_references(scope, name));
        refs.sort();
        refs
    }
}

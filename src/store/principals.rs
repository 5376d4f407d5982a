//! Principals (owners, members, agents), teams and grants, stored sealed; the in-memory cache
//! used to map a peer to a principal; bearer tokens as keyed hashes.

use std::collections::HashMap;

use base64::Engine;
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::records::{now_us, ts};
use super::{PRINCIPALS, Store, poisoned};
use crate::audit::{self, Entry};
use crate::error::{Error, Result};
use crate::format::TableId;
use crate::types::{
    Action, Actor, Channel, Outcome, Role, Scope, SecretBytes, validate_principal_name,
};

/// What a principal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// Everything.
    Owner,
    /// Metadata; values of its own `user:` scope.
    Member,
    /// Values its grants cover.
    Agent,
    /// A named set of users and agents.
    Team,
}

impl From<Role> for PrincipalKind {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => Self::Owner,
            Role::Member => Self::Member,
            Role::Agent => Self::Agent,
        }
    }
}

impl PrincipalKind {
    /// The role, for callers (teams have none).
    pub fn role(self) -> Option<Role> {
        match self {
            Self::Owner => Some(Role::Owner),
            Self::Member => Some(Role::Member),
            Self::Agent => Some(Role::Agent),
            Self::Team => None,
        }
    }
}

/// A grant: an exact name or a glob, optionally limited to a scope, optionally expiring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Exact name or glob (`github-*`).
    pub pattern: String,
    /// Only in this scope.
    pub scope: Option<Scope>,
    /// Not after this time.
    pub expires: Option<jiff::Timestamp>,
}

/// A principal or team as the API shows it (never the token hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: PrincipalKind,
    /// Matched peer uid.
    pub uid: Option<u32>,
    /// Matched peer gid.
    pub gid: Option<u32>,
    /// Whether a bearer token is set.
    pub has_token: bool,
    /// Grants (agents).
    pub grants: Vec<Grant>,
    /// Members (teams).
    pub members: Vec<String>,
    /// When added.
    pub created_at: jiff::Timestamp,
}

/// What `principal add` asks for.
#[derive(Clone, Debug)]
pub struct PrincipalSpec {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Peer uid to match.
    pub uid: Option<u32>,
    /// Peer gid to match.
    pub gid: Option<u32>,
    /// Issue a bearer token (returned once).
    pub token: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct GrantRec {
    pattern: String,
    scope: Option<Scope>,
    expires: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PrincipalRec {
    pub name: String,
    kind: PrincipalKind,
    uid: Option<u32>,
    gid: Option<u32>,
    token_hash: Option<[u8; 32]>,
    grants: Vec<GrantRec>,
    members: Vec<String>,
    created_at: i64,
}

impl PrincipalRec {
    fn to_public(&self) -> Principal {
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

/// Principals by name, for the per-request lookups of the daemon.
#[derive(Default, Debug)]
pub(crate) struct Cache {
    by_name: HashMap<String, PrincipalRec>,
}

impl Cache {
    fn teams_of(&self, name: &str) -> Vec<String> {
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
        *self.principals.write().map_err(|_| poisoned())? = Cache { by_name };
        Ok(())
    }

    /// The principal record and teams of an actor. A direct-mode owner (whoever unlocked the
    /// file) is an owner whether or not listed.
    pub(crate) fn principal_for(&self, actor: &Actor) -> Result<(Principal, Vec<String>)> {
        let cache = self.principals.read().map_err(|_| poisoned())?;
        let teams = cache.teams_of(&actor.principal);
        // Whoever unlocked the file is owner (SPEC §2), whatever a stored principal of the same
        // name may be; so is the daemon acting for itself.
        if actor.channel == Channel::Direct && actor.role == Some(Role::Owner) {
            return Ok((
                Principal {
                    name: actor.principal.clone(),
                    kind: PrincipalKind::Owner,
                    uid: Some(actor.uid),
                    gid: None,
                    has_token: false,
                    grants: Vec::new(),
                    members: Vec::new(),
                    created_at: jiff::Timestamp::UNIX_EPOCH,
                },
                teams,
            ));
        }
        if let Some(rec) = cache.by_name.get(&actor.principal)
            && rec.kind != PrincipalKind::Team
        {
            return Ok((rec.to_public(), teams));
        }
        Err(Error::Unauthenticated {
            reason: format!("unknown principal {}", actor.principal),
        })
    }

    /// The teams `name` belongs to.
    pub fn teams_of(&self, name: &str) -> Vec<String> {
        self.principals
            .read()
            .map(|c| c.teams_of(name))
            .unwrap_or_default()
    }

    /// Maps a peer (kernel uid/gid, optional bearer token) to a principal (SPEC §2/§5).
    ///
    /// A token selects the agent whose token hash matches (compared in constant time); if that
    /// agent names a uid or gid, the peer must match it too. Without a token: the owner or
    /// member with that uid, else the one tokenless agent with that uid, else a member matched
    /// by gid.
    ///
    /// # Errors
    /// `Unauthenticated` for an unknown peer, a wrong token, or several agents on one uid
    /// without a token.
    pub fn authenticate(&self, uid: u32, gid: u32, token: Option<&[u8]>) -> Result<Principal> {
        let cache = self.principals.read().map_err(|_| poisoned())?;
        let callers = || {
            cache
                .by_name
                .values()
                .filter(|p| p.kind != PrincipalKind::Team)
        };
        if let Some(tok) = token {
            let h = self.keys.token.mac(tok);
            let found = callers().find(|p| p.token_hash.is_some_and(|t| bool::from(t.ct_eq(&h))));
            return match found {
                Some(p) if p.uid.is_none_or(|u| u == uid) && p.gid.is_none_or(|g| g == gid) => {
                    Ok(p.to_public())
                }
                Some(p) => Err(Error::Unauthenticated {
                    reason: format!("the token of {} is not valid from uid {uid}", p.name),
                }),
                None => Err(Error::Unauthenticated {
                    reason: "unknown bearer token".into(),
                }),
            };
        }
        let mut people: Vec<&PrincipalRec> = callers()
            .filter(|p| p.uid == Some(uid) && p.kind != PrincipalKind::Agent)
            .collect();
        people.sort_by_key(|p| p.kind);
        if let Some(p) = people.first() {
            return Ok(p.to_public());
        }
        let agents: Vec<&PrincipalRec> = callers()
            .filter(|p| {
                // Matched by uid (and gid when it names one), or by gid alone.
                let by_id = match (p.uid, p.gid) {
                    (Some(u), g) => u == uid && g.is_none_or(|g| g == gid),
                    (None, Some(g)) => g == gid,
                    (None, None) => false,
                };
                p.kind == PrincipalKind::Agent && p.token_hash.is_none() && by_id
            })
            .collect();
        match agents.as_slice() {
            [one] => return Ok(one.to_public()),
            [] => {}
            many => {
                let names: Vec<_> = many.iter().map(|p| p.name.as_str()).collect();
                return Err(Error::Unauthenticated {
                    reason: format!(
                        "uid {uid} is shared by agents {}; send Authorization: Bearer to pick one",
                        names.join(", ")
                    ),
                });
            }
        }
        if let Some(p) = callers()
            .find(|p| p.kind == PrincipalKind::Member && p.uid.is_none() && p.gid == Some(gid))
        {
            return Ok(p.to_public());
        }
        if callers().any(|p| p.uid == Some(uid) && p.token_hash.is_some()) {
            return Err(Error::Unauthenticated {
                reason: format!("uid {uid} must send its agent's bearer token"),
            });
        }
        Err(Error::Unauthenticated {
            reason: format!("uid {uid} is not a known principal"),
        })
    }

    fn mutate_principal(
        &self,
        actor: &Actor,
        action: Action,
        name: &str,
        f: impl FnOnce(Option<PrincipalRec>) -> Result<Option<PrincipalRec>>,
    ) -> Result<Option<Principal>> {
        self.authorize_admin(actor, action, name)?;
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
            &[Entry::new(actor, action, Outcome::Ok).named(name)],
        )?;
        txn.commit()?;
        self.reload_principals()?;
        Ok(next.map(|r| r.to_public()))
    }

    /// Adds (or replaces) a principal. Returns it and, with `spec.token`, its bearer token
    /// (shown once; only a keyed hash is stored).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad name or an agent with neither uid, gid nor token;
    /// `Conflict` when a team has that name; `PermissionDenied` for non-owners.
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
        let p = self.mutate_principal(actor, Action::Principal, &spec.name, |old| {
            if old.as_ref().is_some_and(|o| o.kind == PrincipalKind::Team) {
                return Err(Error::Conflict {
                    reason: format!("{} is a team", spec.name),
                    references: Vec::new(),
                });
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
        self.authorize_admin(actor, Action::List, name)?;
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
        self.authorize_admin(actor, Action::List, "principals")?;
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
        let owners = || {
            self.principals.read().map_or(0, |c| {
                c.by_name
                    .values()
                    .filter(|p| p.kind == PrincipalKind::Owner)
                    .count()
            })
        };
        self.mutate_principal(actor, Action::Principal, name, |old| match old {
            None => Err(Error::not_found("principal", name)),
            Some(o) if o.kind == PrincipalKind::Owner && owners() <= 1 => Err(Error::Conflict {
                reason: format!("{name} is the last owner"),
                references: Vec::new(),
            }),
            Some(_) => Ok(None),
        })?;
        for team in self.teams_of(name) {
            self.team_leave(actor, &team, name)?;
        }
        Ok(())
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
        refs.sort();
        refs
    }
}

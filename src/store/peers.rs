//! Peers and owners: who a caller is (kernel uid/gid, bearer token) and whether an actor may
//! administer the store.
//!
//! A front end that serves many requests per connection admits the peer once
//! ([`Store::admit`]) and authenticates each request against that admission
//! ([`Store::authenticate_admitted`]): without a bearer token the admission's principal is
//! reused for as long as the principals have not changed, so a request costs at most one
//! authentication. [`Store::peer_roles`] is what it may remember for while the store is locked.

use std::collections::HashMap;

use subtle::ConstantTimeEq;

use super::principals::{Cache, PrincipalRec};
use super::{Store, poisoned};
use crate::error::{Error, Result};
use crate::policy::{Decision, Op, decide};
use crate::types::{Action, Actor, AuditEntry, Channel, Outcome, Principal, PrincipalKind, Role};

/// What the store decided about a peer when it connected, before it sent a request
/// ([`Store::admit`]): the principal its uid/gid map to without a token, or that only an
/// agent's bearer token can name it. Holds no key and no token.
#[derive(Clone, Debug)]
pub struct PeerAdmission {
    uid: u32,
    gid: u32,
    principal: Option<Principal>,
    /// The generation of the principals this was decided under.
    generation: u64,
}

impl PeerAdmission {
    /// The peer's uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The peer's gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The principal the peer is without a bearer token; `None` when only a token can name it.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }
}

impl Store {
    /// The principal record and teams of an actor. A direct-mode owner (whoever unlocked the
    /// file) is an owner whether or not listed.
    pub(super) fn principal_for(&self, actor: &Actor) -> Result<(Principal, Vec<String>)> {
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
        self.authenticate_in(&cache, uid, gid, token)
    }

    fn authenticate_in(
        &self,
        cache: &Cache,
        uid: u32,
        gid: u32,
        token: Option<&[u8]>,
    ) -> Result<Principal> {
        #[cfg(test)]
        AUTHENTICATIONS.with(|n| n.set(n.get() + 1));
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
            // An owner or member that names a gid too is matched only from that gid.
            .filter(|p| {
                p.uid == Some(uid)
                    && p.gid.is_none_or(|g| g == gid)
                    && p.kind != PrincipalKind::Agent
            })
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

    /// Decides whether a peer (kernel uid/gid) may talk to the store at all, before it sends
    /// a request: a principal matches it without a token, or an agent's bearer token could
    /// still name it (an agent with a token whose uid/gid constraints the peer meets).
    ///
    /// # Errors
    /// `Unauthenticated`, as [`Store::authenticate`] without a token, when neither holds.
    pub fn admit(&self, uid: u32, gid: u32) -> Result<PeerAdmission> {
        let cache = self.principals.read().map_err(|_| poisoned())?;
        let principal = match self.authenticate_in(&cache, uid, gid, None) {
            Ok(p) => Some(p),
            Err(_) if token_possible(&cache, uid, gid) => None,
            Err(e) => return Err(e),
        };
        Ok(PeerAdmission {
            uid,
            gid,
            principal,
            generation: cache.generation,
        })
    }

    /// Authenticates one request of an admitted peer. With a bearer token, as
    /// [`Store::authenticate`]. Without one, the admission's principal, unless the principals
    /// have changed since it was made (or it was made by another store), in which case the
    /// peer is authenticated again; the answer is always what [`Store::authenticate`] would
    /// give now.
    ///
    /// # Errors
    /// As [`Store::authenticate`].
    pub fn authenticate_admitted(
        &self,
        admission: &PeerAdmission,
        token: Option<&[u8]>,
    ) -> Result<Principal> {
        let cache = self.principals.read().map_err(|_| poisoned())?;
        if token.is_none()
            && cache.generation == admission.generation
            && let Some(p) = &admission.principal
        {
            return Ok(p.clone());
        }
        self.authenticate_in(&cache, admission.uid, admission.gid, token)
    }

    /// The role of every uid a principal names, with the gid it must come from when the
    /// principal names one: what a front end may remember to recognize its peers while the
    /// store is locked.
    ///
    /// # Errors
    /// `Internal` when the principal cache was poisoned by a panic.
    pub fn peer_roles(&self) -> Result<PeerRoles> {
        let cache = self.principals.read().map_err(|_| poisoned())?;
        let mut map: HashMap<u32, Vec<(Option<u32>, Role)>> = HashMap::new();
        for p in cache.by_name.values() {
            if let (Some(uid), Some(role)) = (p.uid, p.kind.role()) {
                map.entry(uid).or_default().push((p.gid, role));
            }
        }
        Ok(PeerRoles(map))
    }

    /// Checks that `actor` may administer the store (owners only). A denial is audited as
    /// `action` on `what` before it is returned.
    ///
    /// # Errors
    /// `PermissionDenied` for a non-owner; `Unauthenticated` for an actor no principal names;
    /// an error writing the denial's audit record.
    pub fn authorize(&self, actor: &Actor, action: Action, what: &str) -> Result<()> {
        let (who, teams) = self.principal_for(actor)?;
        if let Decision::Deny(why) = decide(&who, &teams, Op::Admin, None, crate::sys::now()) {
            self.record(&AuditEntry::new(actor, action, Outcome::Denied).named(what))?;
            return Err(Error::denied(why));
        }
        Ok(())
    }

    /// The old name of [`Store::authorize`], kept for the daemon's admin handlers until they
    /// call it by its public name.
    pub(crate) fn authorize_admin(&self, actor: &Actor, action: Action, what: &str) -> Result<()> {
        self.authorize(actor, action, what)
    }
}

/// The roles peers have by uid (and gid, for principals that name one), remembered for while
/// the store is locked ([`Store::peer_roles`]).
#[derive(Clone, Debug, Default)]
pub struct PeerRoles(HashMap<u32, Vec<(Option<u32>, Role)>>);

impl PeerRoles {
    /// The strongest role a peer with this uid and gid has, if any.
    pub fn role(&self, uid: u32, gid: u32) -> Option<Role> {
        self.0
            .get(&uid)?
            .iter()
            .filter(|(g, _)| g.is_none_or(|g| g == gid))
            .map(|(_, r)| *r)
            .min()
    }
}

#[cfg(test)]
thread_local! {
    /// How many times this thread has matched a peer against the principals.
    static AUTHENTICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether a peer could authenticate with an agent's bearer token: an agent with a token whose
/// uid/gid constraints the peer meets.
fn token_possible(cache: &Cache, uid: u32, gid: u32) -> bool {
    cache.by_name.values().any(|p: &PrincipalRec| {
        p.kind == PrincipalKind::Agent
            && p.token_hash.is_some()
            && p.uid.is_none_or(|u| u == uid)
            && p.gid.is_none_or(|g| g == gid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfChoice;
    use crate::types::{Passphrase, PrincipalSpec};

    fn auths() -> u64 {
        AUTHENTICATIONS.with(std::cell::Cell::get)
    }

    /// A request on an admitted connection is matched against the principals at most once:
    /// without a token not at all (the admission did it), with a token once; after a principal
    /// change, once again, with the answer `authenticate` gives.
    #[test]
    fn an_admitted_peer_is_authenticated_at_most_once_per_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = Actor::direct_owner();
        let store = Store::create(
            &dir.path().join("s.tresor"),
            &Passphrase::from("pw"),
            &KdfChoice::Insecure,
            &owner,
        )
        .expect("create");
        let spec = |name: &str, role, uid, token| PrincipalSpec {
            name: name.into(),
            role,
            uid: Some(uid),
            gid: None,
            token,
        };
        store
            .principal_add(&owner, &spec("ci", Role::Agent, 4242, false))
            .expect("agent");
        let (_, token) = store
            .principal_add(&owner, &spec("bot", Role::Agent, 4343, true))
            .expect("token agent");
        let token = token.expect("a token");

        let before = auths();
        let admission = store.admit(4242, 4242).expect("admitted");
        assert_eq!(auths(), before + 1, "admission matches once per connection");
        for _ in 0..3 {
            let p = store.authenticate_admitted(&admission, None).expect("ci");
            assert_eq!(p.name, "ci");
        }
        assert_eq!(
            auths(),
            before + 1,
            "requests without a token reuse the admission"
        );

        let bot = store.admit(4343, 4343).expect("a token could name it");
        assert!(bot.principal().is_none());
        let before = auths();
        let p = store
            .authenticate_admitted(&bot, Some(token.expose()))
            .expect("bot");
        assert_eq!((p.name.as_str(), auths()), ("bot", before + 1));
        assert!(store.authenticate_admitted(&bot, None).is_err());

        store.principal_remove(&owner, "ci").expect("rm");
        let before = auths();
        let gone = store.authenticate_admitted(&admission, None);
        assert_eq!(auths(), before + 1, "a principal change is decided again");
        assert_eq!(
            gone.map_err(|e| e.to_string()),
            store
                .authenticate(4242, 4242, None)
                .map_err(|e| e.to_string())
        );
        assert!(store.admit(4242, 4242).is_err());
        assert_eq!(
            store.peer_roles().expect("roles").role(4343, 4343),
            Some(Role::Agent)
        );
    }
}

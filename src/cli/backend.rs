//! What the commands talk to: the store file directly (as owner), or the daemon over its
//! socket. Both enforce policy on their side; the CLI only translates.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::protocol::EnvSpec;
use crate::store::{ReadRequest, Store};
use crate::types::AuditEntry as Entry;
use crate::types::{
    Action, Actor, AuditQuery, AuditRecord, Channel, CheckResult, ListFilter, Outcome, Scope,
    SecretBytes, SecretMeta, SecretValue, SetRequest, VerifyReport,
};
use crate::types::{Grant, Principal, PrincipalSpec};

/// One value read: name, scope, version and field.
#[derive(Clone, Debug, Default)]
pub struct ValueQuery {
    /// Secret name.
    pub name: String,
    /// Explicit scope.
    pub scope: Option<Scope>,
    /// A kept version.
    pub version: Option<u64>,
    /// One field instead of the value.
    pub field: Option<String>,
}

/// The operations the commands need, named like [`Store`]'s and `Client`'s methods.
pub trait Backend {
    /// How requests travel (`direct` or `socket`).
    fn channel(&self) -> Channel;
    /// The caller's principal name, when the other side knows it.
    fn whoami(&self) -> Result<Option<String>>;
    /// Metadata of the visible secrets.
    fn list(&self, filter: &ListFilter) -> Result<Vec<SecretMeta>>;
    /// Metadata and versions of one secret.
    fn show(&self, name: &str, scope: Option<&Scope>) -> Result<SecretMeta>;
    /// One value, audited.
    fn get_value(&self, q: &ValueQuery) -> Result<SecretValue>;
    /// Several values, each audited; one result per query, in order.
    fn read_values(&self, qs: &[ValueQuery]) -> Vec<Result<SecretValue>>;
    /// Variable → value for `run`, each read audited; the first failure fails the whole call.
    /// Each spec has its `env` filled in ([`crate::protocol::EnvItem::resolve`]).
    fn env(&self, specs: &[EnvSpec]) -> Result<BTreeMap<String, SecretBytes>>;
    /// Which names (`NAME` or `NAME#field`, resolved as a read would) exist and are visible.
    fn check(&self, names: &[String]) -> Result<CheckResult>;
    /// Create or write a new version.
    fn set(&self, name: &str, req: SetRequest) -> Result<SecretMeta>;
    /// Create or update many secrets: one transaction on the file, one request each through
    /// the daemon. Returns how many were written.
    fn set_many(&self, items: Vec<(String, SetRequest)>) -> Result<usize>;
    /// Records a plaintext export (`note` says how many and where; never a value). The file
    /// gets an `export` record; the daemon has no export endpoint, there each value read is
    /// the audit trail.
    fn record_export(&self, note: &str) -> Result<()>;
    /// Delete a secret.
    fn delete(&self, name: &str, scope: Option<&Scope>, force: bool) -> Result<()>;
    /// Re-publish an old version.
    fn rollback(&self, name: &str, scope: Option<&Scope>, to: u64) -> Result<SecretMeta>;
    /// Audit records.
    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>>;
    /// Walk the audit chain.
    fn audit_verify(&self) -> Result<VerifyReport>;
    /// Every principal and team.
    fn principals(&self) -> Result<Vec<Principal>>;
    /// Add or replace a principal; returns its token when one was asked for.
    fn principal_add(&self, spec: &PrincipalSpec) -> Result<(Principal, Option<SecretBytes>)>;
    /// Remove a principal or team.
    fn principal_remove(&self, name: &str) -> Result<()>;
    /// Add a grant.
    fn grant(&self, name: &str, grant: &Grant) -> Result<Principal>;
    /// Remove grants with this pattern.
    fn revoke(&self, name: &str, pattern: &str) -> Result<Principal>;
    /// Create a team.
    fn team_add(&self, team: &str) -> Result<Principal>;
    /// Add a member to a team.
    fn team_join(&self, team: &str, member: &str) -> Result<Principal>;
    /// Remove a member from a team.
    fn team_leave(&self, team: &str, member: &str) -> Result<Principal>;
}

/// The store file, opened and unlocked in this process; the actor is the direct owner.
pub struct Direct {
    /// The unlocked store.
    pub store: Store,
    /// Who acts: [`Actor::direct_owner`].
    pub actor: Actor,
}

impl Direct {
    fn request(&self, q: &ValueQuery) -> ReadRequest {
        ReadRequest {
            actor: self.actor.clone(),
            name: q.name.clone(),
            scope: q.scope.clone(),
            version: q.version,
            field: q.field.clone(),
        }
    }
}

impl Backend for Direct {
    fn channel(&self) -> Channel {
        Channel::Direct
    }
    fn whoami(&self) -> Result<Option<String>> {
        Ok(Some(self.actor.principal.clone()))
    }
    fn list(&self, filter: &ListFilter) -> Result<Vec<SecretMeta>> {
        self.store.list(&self.actor, filter)
    }
    fn show(&self, name: &str, scope: Option<&Scope>) -> Result<SecretMeta> {
        self.store.show(&self.actor, name, scope)
    }
    fn get_value(&self, q: &ValueQuery) -> Result<SecretValue> {
        self.store
            .read_batch(&[self.request(q)])
            .pop()
            .expect("read_batch returns one result per request")
    }
    fn read_values(&self, qs: &[ValueQuery]) -> Vec<Result<SecretValue>> {
        let reqs: Vec<ReadRequest> = qs.iter().map(|q| self.request(q)).collect();
        self.store.read_batch(&reqs)
    }
    fn env(&self, specs: &[EnvSpec]) -> Result<BTreeMap<String, SecretBytes>> {
        let reqs: Vec<ReadRequest> = specs
            .iter()
            .map(|s| ReadRequest {
                actor: self.actor.clone(),
                name: s.name.clone(),
                scope: s.scope.clone(),
                version: s.version,
                field: s.field.clone(),
            })
            .collect();
        let mut out = BTreeMap::new();
        for (spec, r) in specs.iter().zip(self.store.read_batch(&reqs)) {
            out.insert(spec.env.clone().unwrap_or_default(), r?.value);
        }
        Ok(out)
    }
    fn check(&self, names: &[String]) -> Result<CheckResult> {
        self.store.check(&self.actor, names)
    }
    fn set(&self, name: &str, req: SetRequest) -> Result<SecretMeta> {
        self.store.set(&self.actor, name, req)
    }
    fn set_many(&self, items: Vec<(String, SetRequest)>) -> Result<usize> {
        self.store.set_many(&self.actor, items)
    }
    fn record_export(&self, note: &str) -> Result<()> {
        self.store
            .record(&Entry::new(&self.actor, Action::Export, Outcome::Ok).named(note))
    }
    fn delete(&self, name: &str, scope: Option<&Scope>, force: bool) -> Result<()> {
        self.store.delete(&self.actor, name, scope, force)
    }
    fn rollback(&self, name: &str, scope: Option<&Scope>, to: u64) -> Result<SecretMeta> {
        self.store.rollback(&self.actor, name, scope, to)
    }
    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.store.audit(&self.actor, q)
    }
    fn audit_verify(&self) -> Result<VerifyReport> {
        self.store.audit_verify()
    }
    fn principals(&self) -> Result<Vec<Principal>> {
        self.store.principals(&self.actor)
    }
    fn principal_add(&self, spec: &PrincipalSpec) -> Result<(Principal, Option<SecretBytes>)> {
        self.store.principal_add(&self.actor, spec)
    }
    fn principal_remove(&self, name: &str) -> Result<()> {
        self.store.principal_remove(&self.actor, name)
    }
    fn grant(&self, name: &str, grant: &Grant) -> Result<Principal> {
        self.store.grant(&self.actor, name, grant)
    }
    fn revoke(&self, name: &str, pattern: &str) -> Result<Principal> {
        self.store.revoke(&self.actor, name, pattern)
    }
    fn team_add(&self, team: &str) -> Result<Principal> {
        self.store.team_add(&self.actor, team)
    }
    fn team_join(&self, team: &str, member: &str) -> Result<Principal> {
        self.store.team_join(&self.actor, team, member)
    }
    fn team_leave(&self, team: &str, member: &str) -> Result<Principal> {
        self.store.team_leave(&self.actor, team, member)
    }
}

//! The daemon as a [`Backend`]: [`Client`] over the Unix socket. The daemon maps the peer to
//! a principal and enforces policy; nothing here decides anything.

use std::collections::BTreeMap;

use super::backend::{Backend, ValueQuery};
use crate::client::Client;
use crate::error::Result;
use crate::protocol::{EnvItem, EnvSpec, ValueQuery as WireQuery};
use crate::types::{
    AuditQuery, AuditRecord, Channel, CheckResult, ListFilter, Scope, SecretBytes, SecretMeta,
    SecretValue, SetRequest, VerifyReport,
};
use crate::types::{Grant, Principal, PrincipalSpec};

/// A connection to `tresord`.
pub struct Remote {
    /// The blocking client.
    pub client: Client,
}

impl Backend for Remote {
    fn channel(&self) -> Channel {
        Channel::Socket
    }
    fn whoami(&self) -> Result<Option<String>> {
        Ok(self.client.status()?.principal)
    }
    fn list(&self, filter: &ListFilter) -> Result<Vec<SecretMeta>> {
        self.client.list(filter)
    }
    fn show(&self, name: &str, scope: Option<&Scope>) -> Result<SecretMeta> {
        self.client.show(name, scope)
    }
    fn get_value(&self, q: &ValueQuery) -> Result<SecretValue> {
        let wire = WireQuery {
            scope: q.scope.clone(),
            version: q.version,
            field: q.field.clone(),
        };
        self.client.get_value_with(&q.name, &wire)
    }
    fn read_values(&self, qs: &[ValueQuery]) -> Vec<Result<SecretValue>> {
        qs.iter().map(|q| self.get_value(q)).collect()
    }
    fn env(&self, specs: &[EnvSpec]) -> Result<BTreeMap<String, SecretBytes>> {
        let items: Vec<EnvItem> = specs.iter().cloned().map(EnvItem::Full).collect();
        self.client.env(&items)
    }
    fn check(&self, names: &[String]) -> Result<CheckResult> {
        self.client.check(names)
    }
    fn set(&self, name: &str, req: SetRequest) -> Result<SecretMeta> {
        self.client.set(name, &req)
    }
    fn set_many(&self, items: Vec<(String, SetRequest)>) -> Result<usize> {
        let n = items.len();
        for (name, req) in items {
            self.client.set(&name, &req)?;
        }
        Ok(n)
    }
    fn record_export(&self, _note: &str) -> Result<()> {
        Ok(())
    }
    fn delete(&self, name: &str, scope: Option<&Scope>, force: bool) -> Result<()> {
        self.client.delete(name, scope, force)
    }
    fn rollback(&self, name: &str, scope: Option<&Scope>, to: u64) -> Result<SecretMeta> {
        self.client.rollback(name, scope, to)
    }
    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.client.audit(q)
    }
    fn audit_verify(&self) -> Result<VerifyReport> {
        self.client.audit_verify()
    }
    fn principals(&self) -> Result<Vec<Principal>> {
        self.client.principals()
    }
    fn principal_add(&self, spec: &PrincipalSpec) -> Result<(Principal, Option<SecretBytes>)> {
        self.client.principal_add(spec)
    }
    fn principal_remove(&self, name: &str) -> Result<()> {
        self.client.principal_remove(name)
    }
    fn grant(&self, name: &str, grant: &Grant) -> Result<Principal> {
        self.client.grant(name, grant)
    }
    fn revoke(&self, name: &str, pattern: &str) -> Result<Principal> {
        self.client.revoke(name, pattern)
    }
    fn team_add(&self, team: &str) -> Result<Principal> {
        self.client.team_add(team)
    }
    fn team_join(&self, team: &str, member: &str) -> Result<Principal> {
        self.client.team_join(team, member)
    }
    fn team_leave(&self, team: &str, member: &str) -> Result<Principal> {
        self.client.team_leave(team, member)
    }
}

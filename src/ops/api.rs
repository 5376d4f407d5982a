//! [`Api`]: the named operations, written once over [`Api::call`], for the socket client and
//! for [`Local`] (the store opened in this process).

use std::collections::BTreeMap;

use super::audit::{AuditExport, AuditPrune, AuditVerify, Head};
use super::export::{Export, ExportItem};
use super::principals::{PrincipalDelete, PrincipalGet, PrincipalPut, Principals};
use super::refs::{
    CertificateExpiry, Certificates, Compare, RecordReferences, ReferencesGet, SecretId,
};
use super::secrets::{Check, Delete, Env, GetValue, List, Rollback, Set, Show};
use super::{Context, Operation};
use crate::error::Result;
use crate::protocol::{Deleted, EnvItem, PrincipalOp, PrincipalResponse, decode_map};
use crate::store::Store;
use crate::types::{
    Actor, AuditHead, AuditQuery, AuditRecord, Channel, CheckResult, ListFilter, PruneReport,
    RefKind, References, Scope, SecretBytes, SecretMeta, SecretValue, SetRequest, ValueRef,
    VerifyReport, VersionInfo,
};
use crate::types::{Grant, Principal, PrincipalSpec};

/// The operations of API v1 by name, the same for the daemon's socket ([`crate::Client`]) and
/// the file opened in this process ([`Local`]): implementors provide [`Api::call`] and
/// [`Api::channel`]; every named method is written once, here.
///
/// ```
/// use tresor::{Actor, Api, KdfChoice, Local, Passphrase, SetRequest, Store};
///
/// let dir = tempfile::tempdir()?;
/// let owner = Actor::direct_owner();
/// let pass = Passphrase::from("correct horse battery staple");
/// let path = dir.path().join("s.tresor");
/// let store = Store::create(&path, &pass, &KdfChoice::Insecure, &owner)?;
/// let api = Local { store, actor: owner };
/// api.set("api-key", &SetRequest { value: Some("s3cr3t".into()), ..Default::default() })?;
/// assert_eq!(api.get_value("api-key", None, None)?.value.expose(), b"s3cr3t");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Api {
    /// Runs one operation.
    ///
    /// # Errors
    /// The operation's error, or a transport error (`Internal`) for the socket.
    fn call<O: Operation>(&self, op: O) -> Result<O::Output>;

    /// How requests travel (`direct` or `socket`).
    fn channel(&self) -> Channel;

    /// The caller's principal name, when the other side knows it.
    ///
    /// # Errors
    /// A transport error.
    fn whoami(&self) -> Result<Option<String>>;

    /// Several audited value reads; one result per request, in order. The file commits them
    /// in one transaction; the socket sends one request each.
    fn read_values(&self, values: &[ValueRef]) -> Vec<Result<SecretValue>> {
        values.iter().map(|v| self.read(v)).collect()
    }

    /// Creates or updates many secrets: one transaction on the file, one request each through
    /// the daemon. Returns how many were written.
    ///
    /// # Errors
    /// The first failing write.
    fn set_many(&self, items: Vec<(String, SetRequest)>) -> Result<usize> {
        let n = items.len();
        for (name, req) in items {
            self.set(&name, &req)?;
        }
        Ok(n)
    }

    /// The current values of `items` for a plaintext export (owners), each audited as
    /// `export`; with the `scope/name` of those that do not exist.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; the first failing read other than a miss.
    fn export(&self, items: &[ExportItem]) -> Result<(Vec<SecretValue>, Vec<String>)> {
        let r = self.call(Export {
            secrets: items.to_vec(),
        })?;
        let values = r
            .secrets
            .into_iter()
            .map(crate::protocol::ValueResponse::into_value)
            .collect::<Result<_>>()?;
        Ok((values, r.missing))
    }

    /// What refers to a secret, and who read it in the last 30 days.
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied` (agents), `Ambiguous`.
    fn references(&self, name: &str, scope: Option<&Scope>) -> Result<References> {
        self.call(ReferencesGet {
            name: name.to_owned(),
            scope: scope.cloned(),
        })
    }

    /// Records that a file of `kind` at `path` resolved `secrets`; returns how many
    /// references were new or refreshed.
    ///
    /// # Errors
    /// As the operation.
    fn record_references(
        &self,
        kind: RefKind,
        path: &str,
        secrets: Vec<SecretId>,
    ) -> Result<usize> {
        Ok(self
            .call(RecordReferences {
                kind,
                path: path.to_owned(),
                secrets,
            })?
            .recorded)
    }

    /// Whether `value` equals the current value of `name`, by fingerprint (`None`: unknown).
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`, `Ambiguous`.
    fn same_value(
        &self,
        name: &str,
        scope: Option<&Scope>,
        value: &SecretBytes,
    ) -> Result<Option<bool>> {
        let (text, b64) = crate::protocol::encode_bytes(value);
        Ok(self
            .call(Compare {
                name: name.to_owned(),
                scope: scope.cloned(),
                value: text,
                value_base64: b64,
            })?
            .same)
    }

    /// The X.509 expiry of certificate secrets (not a value read).
    ///
    /// # Errors
    /// As the operation.
    fn certificates(&self, secrets: Vec<SecretId>) -> Result<Vec<CertificateExpiry>> {
        Ok(self.call(Certificates { secrets })?.certificates)
    }

    /// Metadata the caller may see, sorted by scope and name.
    ///
    /// # Errors
    /// As the operation.
    fn list(&self, filter: &ListFilter) -> Result<Vec<SecretMeta>> {
        let mut req = List::from(filter);
        // Pages of 1,000: the daemon never builds more than one such page at once, so a full
        // listing of 100k secrets moves its memory by ~2 MiB, not ~17 (SPEC §10).
        req.limit = Some(super::secrets::LIST_PAGE);
        let mut out = Vec::new();
        loop {
            let page = self.call(req.clone())?;
            out.extend(page.secrets);
            match page.next {
                Some(next) => req.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// As [`Api::list`], each row with its value's keyed fingerprint (`report duplicates`).
    ///
    /// # Errors
    /// As the operation.
    fn list_fingerprinted(&self, filter: &ListFilter) -> Result<Vec<SecretMeta>> {
        let mut op = List::from(filter);
        op.fingerprints = Some(true);
        Ok(self.call(op)?.secrets)
    }

    /// Metadata and kept versions of one secret.
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`, `Ambiguous`.
    fn show(&self, name: &str, scope: Option<&Scope>) -> Result<SecretMeta> {
        self.call(Show {
            name: name.to_owned(),
            scope: scope.cloned(),
        })
    }

    /// The kept versions, oldest first.
    ///
    /// # Errors
    /// As [`Api::show`].
    fn versions(&self, name: &str, scope: Option<&Scope>) -> Result<Vec<VersionInfo>> {
        Ok(self.show(name, scope)?.versions)
    }

    /// One audited value read: its record is durable before the value is returned.
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`, `Ambiguous`; a failed audit write (fail closed).
    fn read(&self, value: &ValueRef) -> Result<SecretValue> {
        self.call(GetValue::from(value))?.into_value()
    }

    /// The value of `name` (or a kept `version`), audited.
    ///
    /// # Errors
    /// As [`Api::read`].
    fn get_value(
        &self,
        name: &str,
        scope: Option<&Scope>,
        version: Option<u64>,
    ) -> Result<SecretValue> {
        self.read(&ValueRef {
            scope: scope.cloned(),
            name: name.to_owned(),
            version,
            field: None,
        })
    }

    /// Creates, or writes a new version.
    ///
    /// # Errors
    /// `PermissionDenied`, `InvalidArgument`.
    fn set(&self, name: &str, req: &SetRequest) -> Result<SecretMeta> {
        self.call(Set::new(name, req))
    }

    /// Deletes a secret (refused with `Conflict` while referenced, unless `force`); the
    /// answer names what was deleted.
    ///
    /// # Errors
    /// `Conflict`, `NotFound`, `PermissionDenied`.
    fn delete(&self, name: &str, scope: Option<&Scope>, force: bool) -> Result<Deleted> {
        self.call(Delete {
            name: name.to_owned(),
            scope: scope.cloned(),
            force: force.then_some(true),
        })
    }

    /// Re-publishes version `to` as a new version.
    ///
    /// # Errors
    /// `NotFound` for a version no longer kept.
    fn rollback(&self, name: &str, scope: Option<&Scope>, to: u64) -> Result<SecretMeta> {
        self.call(Rollback {
            name: name.to_owned(),
            to,
            scope: scope.cloned(),
        })
    }

    /// Which names (`NAME` or `NAME#field`) exist and are visible.
    ///
    /// # Errors
    /// As the operation.
    fn check(&self, names: &[String]) -> Result<CheckResult> {
        self.call(Check {
            required: names.to_vec(),
        })
    }

    /// Variable → value for `run`, each read audited; the first failure fails the call.
    ///
    /// # Errors
    /// The first failing read; `InvalidArgument` for a bad or repeated variable.
    fn env(&self, items: &[EnvItem]) -> Result<BTreeMap<String, SecretBytes>> {
        let r = self.call(Env {
            secrets: items.to_vec(),
        })?;
        decode_map("env", &r.env, &r.env_base64)
    }

    /// Audit records matching `q`, oldest first.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners.
    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        Ok(self.call(q.clone())?.records)
    }

    /// Walks the audit chain.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners.
    fn audit_verify(&self) -> Result<VerifyReport> {
        self.call(AuditVerify::default())
    }

    /// Walks the audit chain and checks it against a head witnessed earlier (`SEQ:MAC`).
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `InvalidArgument` for a head that does not parse.
    fn audit_verify_head(&self, head: &str) -> Result<VerifyReport> {
        self.call(AuditVerify {
            head: Some(head.to_owned()),
        })
    }

    /// The current head of the audit chain.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners.
    fn audit_head(&self) -> Result<AuditHead> {
        self.call(Head {})
    }

    /// Removes the audit records older than `prune.before` or `prune.keep_days` days,
    /// leaving a checkpoint.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `InvalidArgument` unless exactly one is given.
    fn audit_prune(&self, prune: AuditPrune) -> Result<PruneReport> {
        self.call(prune)
    }

    /// One page of an audit export (oldest first), audited as `export`.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners.
    fn audit_export(&self, page: AuditExport) -> Result<Vec<AuditRecord>> {
        Ok(self.call(page)?.records)
    }

    /// Every principal and team.
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners.
    fn principals(&self) -> Result<Vec<Principal>> {
        Ok(self.call(Principals {})?.principals)
    }

    /// One principal or team.
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`.
    fn principal_get(&self, name: &str) -> Result<Principal> {
        self.call(PrincipalGet {
            name: name.to_owned(),
        })
    }

    /// One operation on a principal or team.
    ///
    /// # Errors
    /// As the operation.
    fn principal_put(&self, name: &str, op: &PrincipalOp) -> Result<PrincipalResponse> {
        self.call(PrincipalPut {
            name: name.to_owned(),
            op: op.clone(),
        })
    }

    /// Adds or replaces a user or agent; returns its bearer token when one was asked for.
    ///
    /// # Errors
    /// As the operation.
    fn principal_add(&self, spec: &PrincipalSpec) -> Result<(Principal, Option<SecretBytes>)> {
        let op = PrincipalOp::Add {
            role: spec.role,
            uid: spec.uid,
            gid: spec.gid,
            token: spec.token,
        };
        let r = self.principal_put(&spec.name, &op)?;
        Ok((r.principal, r.token.map(|t| t.to_secret_bytes())))
    }

    /// Removes a principal or team; the answer names what was removed.
    ///
    /// # Errors
    /// `NotFound`, `Conflict` for the last owner.
    fn principal_remove(&self, name: &str) -> Result<Deleted> {
        self.call(PrincipalDelete {
            name: name.to_owned(),
        })
    }

    /// Adds a grant to `name`.
    ///
    /// # Errors
    /// As the operation.
    fn grant(&self, name: &str, grant: &Grant) -> Result<Principal> {
        Ok(self.grant_warned(name, grant)?.principal)
    }

    /// As [`Api::grant`], with the warnings (a pattern that matches no secret).
    ///
    /// # Errors
    /// As the operation.
    fn grant_warned(&self, name: &str, grant: &Grant) -> Result<PrincipalResponse> {
        let op = PrincipalOp::Grant {
            pattern: grant.pattern.clone(),
            scope: grant.scope.clone(),
            expires: grant.expires,
        };
        self.principal_put(name, &op)
    }

    /// Removes the grants of `name` with this pattern.
    ///
    /// # Errors
    /// As the operation.
    fn revoke(&self, name: &str, pattern: &str) -> Result<Principal> {
        let op = PrincipalOp::Revoke {
            pattern: pattern.to_owned(),
        };
        Ok(self.principal_put(name, &op)?.principal)
    }

    /// Creates a team.
    ///
    /// # Errors
    /// As the operation.
    fn team_add(&self, team: &str) -> Result<Principal> {
        Ok(self.principal_put(team, &PrincipalOp::TeamAdd)?.principal)
    }

    /// Adds `member` to `team`.
    ///
    /// # Errors
    /// As the operation.
    fn team_join(&self, team: &str, member: &str) -> Result<Principal> {
        let op = PrincipalOp::TeamJoin {
            member: member.to_owned(),
        };
        Ok(self.principal_put(team, &op)?.principal)
    }

    /// Removes `member` from `team`.
    ///
    /// # Errors
    /// As the operation.
    fn team_leave(&self, team: &str, member: &str) -> Result<Principal> {
        let op = PrincipalOp::TeamLeave {
            member: member.to_owned(),
        };
        Ok(self.principal_put(team, &op)?.principal)
    }
}

/// The store opened and unlocked in this process, acting as `actor` (the CLI's `--direct`
/// mode acts as [`Actor::direct_owner`]).
pub struct Local {
    /// The unlocked store.
    pub store: Store,
    /// Who acts.
    pub actor: Actor,
}

impl Api for Local {
    fn call<O: Operation>(&self, op: O) -> Result<O::Output> {
        op.apply(&Context {
            store: &self.store,
            actor: &self.actor,
            reads: &self.store,
        })
    }

    fn channel(&self) -> Channel {
        Channel::Direct
    }

    fn whoami(&self) -> Result<Option<String>> {
        Ok(Some(self.actor.principal.clone()))
    }

    fn read(&self, value: &ValueRef) -> Result<SecretValue> {
        self.read_values(std::slice::from_ref(value))
            .pop()
            .unwrap_or_else(|| {
                Err(crate::Error::Internal {
                    message: "the read returned nothing".into(),
                    source: None,
                })
            })
    }

    fn read_values(&self, values: &[ValueRef]) -> Vec<Result<SecretValue>> {
        let reqs: Vec<_> = values
            .iter()
            .map(|v| super::secrets::read_request(&self.actor, v.clone()))
            .collect();
        let cx = Context {
            store: &self.store,
            actor: &self.actor,
            reads: &self.store,
        };
        super::upstream::read(&cx, reqs)
    }

    fn set_many(&self, items: Vec<(String, SetRequest)>) -> Result<usize> {
        self.store.set_many(&self.actor, items)
    }
}

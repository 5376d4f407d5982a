//! Value reads: audited, and batched so that many readers share one durable commit (group
//! commit). A value leaves the store only after the commit holding its audit record.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable};

use super::audit;
use super::records::{SecretRec, ValueRec, now_us, value_key};
use super::{SECRETS, Store, VALUES};
use crate::error::{Error, Result};
use crate::format::TableId;
use crate::policy::Op;
use crate::types::{Action, Actor, AuditEntry, Outcome, Scope, SecretBytes, SecretValue};

/// One value read, as batched by [`Store::read_batch`].
#[derive(Clone, Debug)]
pub struct ReadRequest {
    /// Who.
    pub actor: Actor,
    /// Secret name.
    pub name: String,
    /// Explicit scope, or resolve user → team → org.
    pub scope: Option<Scope>,
    /// A kept version, or the current one.
    pub version: Option<u64>,
    /// Only this field (returned as the value).
    pub field: Option<String>,
}

/// What reading one request found before the audit commit.
enum Found {
    Value(SecretValue, [u8; 32]),
    Failed(Error),
}

fn audit_outcome(e: &Error) -> Outcome {
    match e {
        Error::PermissionDenied { .. } | Error::Unauthenticated { .. } => Outcome::Denied,
        Error::NotFound { .. } => Outcome::NotFound,
        _ => Outcome::Error,
    }
}

impl Store {
    /// Reads one value, audited: the record (and `last_used`) is durable before the value is
    /// returned. A denial or a miss is audited too.
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`, `Ambiguous`; any error writing the audit record (fail
    /// closed).
    pub fn get_value(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
        version: Option<u64>,
    ) -> Result<SecretValue> {
        let req = ReadRequest {
            actor: actor.clone(),
            name: name.to_owned(),
            scope: scope.cloned(),
            version,
            field: None,
        };
        self.read_batch(&[req]).pop().unwrap_or_else(|| {
            Err(Error::Internal {
                message: "empty batch".into(),
                source: None,
            })
        })
    }

    /// Reads many values with one durable commit holding all their audit records and
    /// `last_used` updates (group commit). Each result is returned only after that commit; if
    /// it fails, every read fails.
    pub fn read_batch(&self, reqs: &[ReadRequest]) -> Vec<Result<SecretValue>> {
        let found = match self.read_phase(reqs) {
            Ok(f) => f,
            Err(e) => return reqs.iter().map(|_| Err(clone_err(&e))).collect(),
        };
        let now = now_us();
        let commit =
            (|| -> Result<()> {
                let txn = self.db.begin_write()?;
                let mut entries = Vec::with_capacity(reqs.len());
                {
                    let mut table = txn.open_table(SECRETS)?;
                    for (req, f) in reqs.iter().zip(&found) {
                        match f {
                            Found::Value(v, h) => {
                                entries.push(
                                    AuditEntry::new(&req.actor, Action::Read, Outcome::Ok).secret(
                                        &v.scope,
                                        &v.name,
                                        Some(v.version),
                                    ),
                                );
                                let raw = table.get(h)?.map(|g| g.value().to_vec());
                                if let Some(raw) = raw {
                                    let mut rec: SecretRec =
                                        self.open_row(TableId::Secrets, h, &raw)?;
                                    rec.last_used = Some(now);
                                    table.insert(
                                        h,
                                        self.seal_row(TableId::Secrets, h, &rec)?.as_slice(),
                                    )?;
                                }
                            }
                            Found::Failed(e) => {
                                let scope = req.scope.clone().unwrap_or_default();
                                entries.push(
                                    AuditEntry::new(&req.actor, Action::Read, audit_outcome(e))
                                        .secret(&scope, &req.name, req.version),
                                );
                            }
                        }
                    }
                }
                audit::append(self, &txn, &entries)?;
                txn.commit()?;
                Ok(())
            })();
        if let Err(e) = commit {
            return reqs.iter().map(|_| Err(clone_err(&e))).collect();
        }
        found
            .into_iter()
            .map(|f| match f {
                Found::Value(mut v, _) => {
                    v.retrieved_at = crate::sys::now();
                    Ok(v)
                }
                Found::Failed(e) => Err(e),
            })
            .collect()
    }

    /// Reads a value on the decrypt path only: resolve, authorize, open — no audit record, no
    /// `last_used`. For benchmarks and tests (the `test-util` feature); a front end must use
    /// [`Store::get_value`] or [`Store::read_batch`], which fail closed on the audit.
    ///
    /// # Errors
    /// As [`Store::get_value`], without the audit.
    #[cfg(feature = "test-util")]
    #[doc(hidden)]
    pub fn get_value_unaudited(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&Scope>,
        version: Option<u64>,
    ) -> Result<SecretValue> {
        let txn = self.db.begin_read()?;
        let secrets = txn.open_table(SECRETS)?;
        let values = txn.open_table(VALUES)?;
        let req = ReadRequest {
            actor: actor.clone(),
            name: name.to_owned(),
            scope: scope.cloned(),
            version,
            field: None,
        };
        self.read_one(&secrets, &values, &req).map(|(v, _)| v)
    }

    fn read_phase(&self, reqs: &[ReadRequest]) -> Result<Vec<Found>> {
        let txn = self.db.begin_read()?;
        let secrets = txn.open_table(SECRETS)?;
        let values = txn.open_table(VALUES)?;
        let mut out = Vec::with_capacity(reqs.len());
        for req in reqs {
            out.push(match self.read_one(&secrets, &values, req) {
                Ok((v, h)) => Found::Value(v, h),
                // A damaged record fails its own request (audited as `error`), not the batch.
                Err(e) => Found::Failed(e),
            });
        }
        Ok(out)
    }

    fn read_one(
        &self,
        secrets: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
        values: &impl ReadableTable<&'static [u8; 40], &'static [u8]>,
        req: &ReadRequest,
    ) -> Result<(SecretValue, [u8; 32])> {
        let found = self.resolve_in(secrets, &req.actor, &req.name, req.scope.as_ref())?;
        let scope = found.as_ref().map_or_else(
            || req.scope.clone().unwrap_or_default(),
            |(_, r)| r.scope.clone(),
        );
        self.allow(&req.actor, Op::ReadValue, &scope, &req.name)?;
        let (h, rec) =
            found.ok_or_else(|| Error::not_found("secret", format!("{scope}/{}", req.name)))?;
        let version = req.version.unwrap_or(rec.version);
        let vk = value_key(&h, version);
        let raw = values.get(&vk)?.ok_or_else(|| {
            Error::not_found(
                "version",
                format!("{}/{} version {version}", rec.scope, rec.name),
            )
        })?;
        let val: ValueRec = self.open_row(TableId::Values, &vk, raw.value())?;
        let mut fields: BTreeMap<String, SecretBytes> = val.fields.iter().cloned().collect();
        let value = match &req.field {
            None => val.value.clone(),
            Some(f) => {
                let v = fields
                    .remove(f)
                    .ok_or_else(|| Error::not_found("field", format!("{}#{f}", rec.name)))?;
                fields.clear();
                v
            }
        };
        Ok((
            SecretValue {
                name: rec.name,
                scope: rec.scope,
                secret_type: rec.stype,
                version,
                value,
                fields,
                retrieved_at: crate::sys::now(),
            },
            h,
        ))
    }
}

/// Errors are not `Clone` (they may hold a source); a batch hands each request its own copy.
fn clone_err(e: &Error) -> Error {
    match e {
        Error::Integrity { table, record } => Error::Integrity {
            table: table.clone(),
            record: record.clone(),
        },
        Error::Locked => Error::Locked,
        other => Error::Internal {
            message: other.to_string(),
            source: None,
        },
    }
}

//! Value reads: audited, and batched so that many readers share one durable commit (group
//! commit). A value leaves the store only after the commit holding its audit record.

use std::collections::BTreeMap;

use redb::ReadableTable;

use super::audit;
use super::records::{SecretRec, now_us};
use super::{SECRETS, Store, VALUES};

/// The `values` table (older versions) open for reading.
type ValuesRo = redb::ReadOnlyTable<&'static [u8; 40], &'static [u8]>;
use crate::error::{Error, Result};
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

/// A value read before the audit commit, with the name hash of its secret (whose `last_used`
/// the commit notes).
struct Hit {
    value: SecretValue,
    hash: [u8; 32],
}

/// What reading one request found before the audit commit.
enum Found {
    Value(Box<Hit>),
    /// The error, and the scope its audit record names.
    Failed(Error, Scope),
}

/// Reads found but not yet audited: what [`Store::prepare_reads`] returns and
/// [`Store::commit_prepared`] commits. Holds the values read, so it shows only its size when
/// printed; dropping it drops (and wipes) them unreturned.
pub struct PreparedReads {
    reqs: Vec<ReadRequest>,
    found: Vec<Found>,
}

impl PreparedReads {
    /// How many reads (one result each).
    pub fn len(&self) -> usize {
        self.reqs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Joins `other`'s reads after these, for one commit; results come back in that order.
    pub fn append(&mut self, other: Self) {
        self.reqs.extend(other.reqs);
        self.found.extend(other.found);
    }
}

impl std::fmt::Debug for PreparedReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedReads")
            .field("reads", &self.reqs.len())
            .finish_non_exhaustive()
    }
}

/// The name an audit record shows for a read: `NAME`, or `NAME#field` for a field read (so that
/// `audit --secret NAME` finds both).
fn audit_name(name: &str, field: Option<&str>) -> String {
    match field {
        Some(f) => format!("{name}#{f}"),
        None => name.to_owned(),
    }
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
    /// it fails, every read fails, each with its own copy of that (typed) error.
    ///
    /// Each secret's metadata record is opened once per read: the record found while reading
    /// is the one whose `last_used` the commit moves, unless a write changed it in between.
    pub fn read_batch(&self, reqs: &[ReadRequest]) -> Vec<Result<SecretValue>> {
        self.read_batch_as(reqs, Action::Read)
    }

    /// As [`Store::read_batch`], each record naming `action`: `export` for the values of a
    /// plaintext export (SPEC §3: an export records `export` with every name).
    pub fn read_batch_as(&self, reqs: &[ReadRequest], action: Action) -> Vec<Result<SecretValue>> {
        match self.prepare_reads(reqs.to_vec()) {
            Ok(p) => self.commit_prepared(p, action),
            Err(e) => e.fan_out(reqs.len()).into_iter().map(Err).collect(),
        }
    }

    /// The read phase of [`Store::read_batch`]: resolves, authorizes and opens each request's
    /// value, writing nothing. Any thread may run it (the daemon runs it on the requesting
    /// one, in parallel); nothing it found leaves the store until [`Store::commit_prepared`]
    /// has made its audit record durable.
    ///
    /// # Errors
    /// Only a failure to begin the read transaction; each request's own failure (not found,
    /// denied, a damaged record) is kept for its audit record and its result.
    pub fn prepare_reads(&self, reqs: Vec<ReadRequest>) -> Result<PreparedReads> {
        let found = self.read_phase(&reqs)?;
        Ok(PreparedReads { reqs, found })
    }

    /// The commit phase of [`Store::read_batch`]: one durable transaction holding the audit
    /// records of every read in `prepared` (many requesters' reads joined with
    /// [`PreparedReads::append`] share it), then each value, in order. If the commit fails,
    /// every read fails, each with its own copy of that (typed) error, and no value leaves.
    pub fn commit_prepared(
        &self,
        prepared: PreparedReads,
        action: Action,
    ) -> Vec<Result<SecretValue>> {
        let PreparedReads { reqs, mut found } = prepared;
        if let Err(e) = self.commit_reads(&reqs, &mut found, action) {
            return e.fan_out(reqs.len()).into_iter().map(Err).collect();
        }
        let now = crate::sys::now();
        found
            .into_iter()
            .map(|f| match f {
                Found::Value(hit) => {
                    let mut v = hit.value;
                    v.retrieved_at = now;
                    Ok(v)
                }
                Found::Failed(e, _) => Err(e),
            })
            .collect()
    }

    /// One durable transaction: every read's audit record — an append at the right edge of
    /// the audit table and one head write for the whole batch. `last_used` is noted for each
    /// secret read, inside the transaction, and folded later (`last_used.rs`).
    fn commit_reads(
        &self,
        reqs: &[ReadRequest],
        found: &mut [Found],
        action: Action,
    ) -> Result<()> {
        let now = now_us();
        let mut entries = Vec::with_capacity(reqs.len());
        let mut read = Vec::with_capacity(reqs.len());
        for (req, f) in reqs.iter().zip(found.iter()) {
            let hit = match f {
                Found::Value(hit) => hit,
                Found::Failed(e, scope) => {
                    let name = audit_name(&req.name, req.field.as_deref());
                    entries.push(
                        AuditEntry::new(&req.actor, action, audit_outcome(e)).secret(
                            scope,
                            &name,
                            req.version,
                        ),
                    );
                    continue;
                }
            };
            let v = &hit.value;
            let name = audit_name(&v.name, req.field.as_deref());
            entries.push(AuditEntry::new(&req.actor, action, Outcome::Ok).secret(
                &v.scope,
                &name,
                Some(v.version),
            ));
            read.push(hit.hash);
        }
        read.sort_unstable();
        read.dedup();
        // One time for the batch: the records' time is the `last_used` they note, so that a
        // replay after a crash gives exactly what was shown before it.
        let at = super::records::ts(now);
        for e in &mut entries {
            e.time = at;
        }
        let Some(journal) = self.journal() else {
            let txn = self.db.begin_write()?;
            audit::append(self, &txn, &entries)?;
            let undo = self.note_reads(&read, now);
            if let Err(e) = self.db.commit(txn) {
                self.unnote(undo);
                return Err(e);
            }
            self.fold_if_due();
            return Ok(());
        };
        // Journaled (`journal.rs`). The journal's lock is taken once the write transaction is
        // held and kept until the frames are synced: frames land in seq order, and whoever
        // takes the lock next (a replay after a reopen, the audit head) sees them synced. No
        // transaction begins while the lock is held (a reopen's replay takes it).
        let txn = self.db.begin_write()?;
        let mut state = journal.lock();
        let mut frames = audit::Frames::default();
        audit::append_to(self, &txn, &entries, Some(&mut frames))?;
        let undo = self.note_reads(&read, now);
        let durable = frames.wrote_meta || !state.fits(frames.bytes.len());
        if let Err(e) = self.db.commit_with(txn, durable) {
            self.unnote(undo);
            return Err(e);
        }
        if durable {
            state.restart();
            drop(state);
        } else if let Err(e) = state.write_synced(&frames.bytes) {
            // Committed, not durable. Until a durable commit, nothing more goes to the journal
            // (a frame written over this one could be lost behind it); then a durable commit
            // makes these records durable, or the reads fail (fail closed).
            state.poison();
            drop(state);
            tracing::warn!(error = %e, "the audit journal refused a write; committing durably");
            if let Err(e) = self.db.begin_write().and_then(|t| self.db.commit(t)) {
                self.unnote(undo);
                return Err(e);
            }
            journal.lock().restart_if_poisoned();
        } else {
            drop(state);
        }
        self.fold_if_due();
        Ok(())
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
        let req = ReadRequest {
            actor: actor.clone(),
            name: name.to_owned(),
            scope: scope.cloned(),
            version,
            field: None,
        };
        self.read_one(&txn, &secrets, &mut None, &req)
            .map(|hit| hit.value)
    }

    /// Checks, before a set of reads that succeeds or fails as a whole (`/v1/env`, an
    /// export), that every secret exists and may be read — metadata only, no value is opened.
    /// The first refusal is audited as one record and returned: a request naming many secrets
    /// it may not read costs one record, not one per secret. Nothing is recorded when all pass
    /// (the reads record themselves).
    ///
    /// # Errors
    /// The first read's `NotFound`, `PermissionDenied` or `Ambiguous`; a failure to write its
    /// audit record.
    pub fn check_reads(&self, reqs: &[ReadRequest]) -> Result<()> {
        let refused = {
            let txn = self.db.begin_read()?;
            let secrets = txn.open_table(SECRETS)?;
            reqs.iter().find_map(|req| {
                self.check_read(&secrets, req)
                    .err()
                    .map(|e| (req, e, self.audit_scope(&secrets, req)))
            })
        };
        let Some((req, e, scope)) = refused else {
            return Ok(());
        };
        let name = audit_name(&req.name, req.field.as_deref());
        self.record(
            &AuditEntry::new(&req.actor, Action::Read, audit_outcome(&e)).secret(
                &scope,
                &name,
                req.version,
            ),
        )?;
        Err(e)
    }

    /// The scope a failed read's audit record names: the one asked for, else the one the
    /// name resolved to (a denied read of `team:devops/x` is recorded as such, not as
    /// `org/x`), else `org`. The audit log is read by owners only, so naming the scope a
    /// name resolved to tells the caller nothing.
    fn audit_scope(
        &self,
        secrets: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
        req: &ReadRequest,
    ) -> Scope {
        if let Some(s) = &req.scope {
            return s.clone();
        }
        match self.resolve_in(secrets, &req.actor, &req.name, None) {
            Ok(Some((_, rec))) => rec.scope,
            _ => Scope::Org,
        }
    }

    /// Finds the secret of `req` and checks that its actor may read its value (the check comes
    /// first, so that a miss and a denial look alike to someone without access).
    fn check_read(
        &self,
        secrets: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
        req: &ReadRequest,
    ) -> Result<([u8; 32], SecretRec)> {
        let found = self.resolve_in(secrets, &req.actor, &req.name, req.scope.as_ref())?;
        let scope = found.as_ref().map_or_else(
            || req.scope.clone().unwrap_or_default(),
            |(_, r)| r.scope.clone(),
        );
        self.allow(&req.actor, Op::ReadValue, &scope, &req.name)?;
        found.ok_or_else(|| Error::not_found("secret", format!("{scope}/{}", req.name)))
    }

    fn read_phase(&self, reqs: &[ReadRequest]) -> Result<Vec<Found>> {
        let txn = self.db.begin_read()?;
        let secrets = txn.open_table(SECRETS)?;
        let mut values = None;
        let mut out = Vec::with_capacity(reqs.len());
        for req in reqs {
            out.push(match self.read_one(&txn, &secrets, &mut values, req) {
                Ok(hit) => Found::Value(Box::new(hit)),
                // A damaged record fails its own request (audited as `error`), not the batch.
                Err(e) => Found::Failed(e, self.audit_scope(&secrets, req)),
            });
        }
        Ok(out)
    }

    /// Reads one request's value: the current one from the secret's own record (one point
    /// get, one open), an older one from `values` (opened on first need).
    fn read_one(
        &self,
        txn: &redb::ReadTransaction,
        secrets: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
        values: &mut Option<ValuesRo>,
        req: &ReadRequest,
    ) -> Result<Hit> {
        let (h, mut rec) = self.check_read(secrets, req)?;
        let version = req.version.unwrap_or(rec.version);
        let older = if version == rec.version && !rec.current_in_values {
            None
        } else {
            let table = match values {
                Some(t) => t,
                None => values.insert(txn.open_table(VALUES)?),
            };
            let kept = rec.versions.iter().any(|v| v.version == version);
            let found = if kept {
                self.older_value(table, &h, version)?
            } else {
                None
            };
            Some(found.ok_or_else(|| {
                Error::not_found(
                    "version",
                    format!("{}/{} version {version}", rec.scope, rec.name),
                )
            })?)
        };
        let mut val = older.unwrap_or_else(|| std::mem::take(&mut rec.current));
        let mut fields: BTreeMap<String, SecretBytes> =
            std::mem::take(&mut val.fields).into_iter().collect();
        let value = match &req.field {
            None => std::mem::take(&mut val.value),
            Some(f) => {
                let v = fields
                    .remove(f)
                    .ok_or_else(|| Error::not_found("field", format!("{}#{f}", rec.name)))?;
                fields.clear();
                v
            }
        };
        Ok(Hit {
            value: SecretValue {
                name: rec.name,
                scope: rec.scope,
                secret_type: rec.stype,
                version,
                value,
                fields,
                retrieved_at: crate::sys::now(),
                upstream: None,
            },
            hash: h,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfChoice;
    use crate::store::records::SECRET_OPENS;
    use crate::types::{Passphrase, SetRequest};

    fn opens() -> u64 {
        SECRET_OPENS.with(std::cell::Cell::get)
    }

    fn store_with(name: &str) -> (tempfile::TempDir, Store, Actor) {
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = Actor::direct_owner();
        let store = Store::create(
            &dir.path().join("s.tresor"),
            &Passphrase::from("pw"),
            &KdfChoice::Insecure,
            &owner,
        )
        .expect("create");
        let set = SetRequest {
            scope: Scope::Org,
            value: Some("v1".into()),
            ..Default::default()
        };
        store.set(&owner, name, set).expect("set");
        (dir, store, owner)
    }

    fn req(actor: &Actor, name: &str) -> ReadRequest {
        ReadRequest {
            actor: actor.clone(),
            name: name.into(),
            scope: Some(Scope::Org),
            version: None,
            field: None,
        }
    }

    /// A value read opens the secret's metadata record once: to find it; the commit that moves
    /// `last_used` reuses that copy.
    #[test]
    fn a_read_opens_the_metadata_record_once() {
        let (_dir, store, owner) = store_with("k");
        let before = opens();
        let v = store
            .get_value(&owner, "k", Some(&Scope::Org), None)
            .expect("read");
        assert_eq!(v.value.expose(), b"v1");
        assert_eq!(opens(), before + 1);
        let meta = store.show(&owner, "k", Some(&Scope::Org)).expect("show");
        assert!(meta.last_used.is_some());

        // Two reads of one secret in a batch: one open each, one `last_used` write.
        let before = opens();
        let out = store.read_batch(&[req(&owner, "k"), req(&owner, "k")]);
        assert!(out.iter().all(Result::is_ok));
        assert_eq!(opens(), before + 2);
    }

    /// A write between the read and its commit is kept: the commit opens the changed record
    /// instead of writing back the copy it read.
    #[test]
    fn a_write_between_read_and_commit_is_kept() {
        let (_dir, store, owner) = store_with("k");
        let reqs = [req(&owner, "k")];
        let mut found = store.read_phase(&reqs).expect("read");
        let set = SetRequest {
            scope: Scope::Org,
            value: Some("v2".into()),
            ..Default::default()
        };
        store.set(&owner, "k", set).expect("set v2");
        store
            .commit_reads(&reqs, &mut found, Action::Read)
            .expect("commit");
        let meta = store.show(&owner, "k", Some(&Scope::Org)).expect("show");
        assert_eq!(meta.version, 2);
        assert!(meta.last_used.is_some());
    }

    /// Reads prepared on two threads and committed together: the read phase writes nothing,
    /// the commit holds one audit record per read, and the values come back in order.
    #[test]
    fn reads_prepared_apart_commit_together() {
        let (_dir, store, owner) = store_with("k");
        let set = SetRequest {
            scope: Scope::Org,
            value: Some("j1".into()),
            ..Default::default()
        };
        store.set(&owner, "j", set).expect("set j");
        let before = store.current_audit_head().expect("head").seq;
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| store.prepare_reads(vec![req(&owner, "k")]));
            let b = s.spawn(|| store.prepare_reads(vec![req(&owner, "j"), req(&owner, "nope")]));
            (a.join().expect("a"), b.join().expect("b"))
        });
        assert_eq!(store.current_audit_head().expect("head").seq, before);
        let mut all = a.expect("prepare a");
        all.append(b.expect("prepare b"));
        assert_eq!(all.len(), 3);
        assert_eq!(format!("{all:?}"), "PreparedReads { reads: 3, .. }");
        let out = store.commit_prepared(all, Action::Read);
        assert_eq!(store.current_audit_head().expect("head").seq, before + 3);
        let got: Vec<_> = out
            .iter()
            .map(|r| r.as_ref().map(|v| v.value.expose().to_vec()))
            .collect();
        assert!(matches!(&got[0], Ok(v) if v == b"v1"));
        assert!(matches!(&got[1], Ok(v) if v == b"j1"));
        assert!(matches!(&got[2], Err(Error::NotFound { .. })));
    }

    /// A failure shared by a batch reaches each request as its own typed error.
    #[test]
    fn a_shared_failure_keeps_its_type_for_every_request() {
        let io = std::io::Error::other("disk gone");
        let copies = Error::internal("commit failed", io).fan_out(2);
        for e in &copies {
            assert!(matches!(e, Error::Internal { message, .. } if message == "commit failed"));
            let source = std::error::Error::source(e).map(ToString::to_string);
            assert_eq!(source.as_deref(), Some("disk gone"));
        }
        let copies = Error::integrity("secrets", "ab12").fan_out(3);
        assert_eq!(copies.len(), 3);
        assert!(
            copies
                .iter()
                .all(|e| matches!(e, Error::Integrity { table, record } if table == "secrets" && record == "ab12"))
        );
        assert!(matches!(
            Error::not_found("secret", "org/k").fan_out(1).as_slice(),
            [Error::NotFound { what: "secret", .. }]
        ));
    }
}

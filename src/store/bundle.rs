//! Sealed bundles (SPEC §7): `bundle create` on the connected side, `bundle apply` on the
//! air-gapped host. Layouts in `format::bundle`.

use redb::ReadableTable;

use super::records::{SecretRec, ValueRec, VersionRec, now_us, ts, value_key};
use super::{SECRETS, Store, VALUES, audit, hex};
use crate::crypto::identity::{PublicKeys, age_encrypt, verify};
use crate::error::{Error, Result};
use crate::format::TableId;
use crate::format::bundle::{
    BundlePayload, BundleSecret, BundleVersion, SignedBundle, bundle_message,
    decode_bundle_payload, encode_bundle_payload,
};
use crate::types::{
    Action, Actor, AuditEntry, BundleInfo, BundlePlan, Outcome, PlanAction, PlanItem, Scope,
};

/// The largest bundle plaintext `bundle apply` reads (1 GiB).
pub const BUNDLE_MAX: u64 = 1 << 30;

/// What to put in a bundle.
#[derive(Clone, Debug, Default)]
pub struct BundleRequest {
    /// age recipients (`age1…`) the bundle is encrypted to.
    pub recipients: Vec<String>,
    /// The secrets (scope optional: every scope holding the name); empty means all.
    pub secrets: Vec<(Option<Scope>, String)>,
    /// Only secrets changed (and deletions made) at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Every kept version, not only the current one.
    pub with_history: bool,
}

impl Store {
    /// Writes a sealed bundle: age-encrypted to `req.recipients`, signed with this store's
    /// Ed25519 key, with the next sequence number. Owners only; audited as `export` naming
    /// every secret, durably before the bundle is returned.
    ///
    /// # Errors
    /// `PermissionDenied`; `InvalidArgument` for a bad recipient; `NotFound` for a named
    /// secret that does not exist.
    pub fn bundle_create(
        &self,
        actor: &Actor,
        req: &BundleRequest,
    ) -> Result<(Vec<u8>, BundleInfo)> {
        self.authorize(actor, Action::Export, "bundle")?;
        for r in &req.recipients {
            crate::crypto::identity::parse_recipient(r)?;
        }
        if req.recipients.is_empty() {
            return Err(Error::invalid(
                "to",
                "at least one recipient (age1…) is needed",
            ));
        }
        let identity = self.identity(actor)?;
        let (secrets, tombstones, versions) = self.bundle_contents(req)?;
        let txn = self.db.begin_write()?;
        let mut state = self.airgap_state(&txn)?;
        state.out_seq += 1;
        let payload = BundlePayload {
            source: self.header.store_id,
            seq: state.out_seq,
            created_at: now_us(),
            with_history: req.with_history,
            secrets,
            tombstones,
        };
        self.put_airgap_state(&txn, &state)?;
        let mut entries: Vec<AuditEntry> = payload
            .secrets
            .iter()
            .map(|s| {
                AuditEntry::new(actor, Action::Export, Outcome::Ok).secret(
                    &s.scope,
                    &s.name,
                    s.versions.last().map(|v| v.version),
                )
            })
            .collect();
        entries.push(
            AuditEntry::new(actor, Action::Export, Outcome::Ok).named(format!(
                "bundle {} seq {}",
                self.store_id(),
                payload.seq
            )),
        );
        audit::append(self, &txn, &entries)?;
        self.db.commit(txn)?;
        let body = encode_bundle_payload(&payload)?;
        let signer = identity.public().sign;
        let signature = identity.sign(&bundle_message(&signer, &body));
        let plain = SignedBundle {
            signer,
            signature,
            payload: &body,
        }
        .encode();
        let info = BundleInfo {
            source: self.store_id(),
            seq: payload.seq,
            secrets: payload.secrets.len(),
            versions,
            tombstones: payload.tombstones.len(),
        };
        Ok((age_encrypt(&req.recipients, &plain)?, info))
    }

    /// The secrets (with their values), deletions and version count `req` asks for.
    fn bundle_contents(
        &self,
        req: &BundleRequest,
    ) -> Result<(
        Vec<BundleSecret>,
        Vec<crate::format::bundle::Tombstone>,
        usize,
    )> {
        let since = req.since.map(jiff::Timestamp::as_microsecond);
        let wanted = |scope: &Scope, name: &str| {
            req.secrets.is_empty()
                || req
                    .secrets
                    .iter()
                    .any(|(s, n)| n == name && s.as_ref().is_none_or(|s| s == scope))
        };
        let mut secrets = Vec::new();
        let mut found = vec![false; req.secrets.len()];
        let mut versions = 0;
        {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(SECRETS)?;
            let values = txn.open_table(VALUES)?;
            for row in table.iter()? {
                let (k, v) = row?;
                let rec: SecretRec = self.open_row(TableId::Secrets, k.value(), v.value())?;
                if !wanted(&rec.scope, &rec.name) {
                    continue;
                }
                for (i, (s, n)) in req.secrets.iter().enumerate() {
                    found[i] |= *n == rec.name && s.as_ref().is_none_or(|s| *s == rec.scope);
                }
                if since.is_some_and(|t| rec.updated_at < t) {
                    continue;
                }
                let s = self.bundle_secret(&values, k.value(), rec, req.with_history)?;
                versions += s.versions.len();
                secrets.push(s);
            }
        }
        if let Some(i) = found.iter().position(|f| !f) {
            let (s, n) = &req.secrets[i];
            let tomb = self
                .tombstones()?
                .iter()
                .any(|t| t.name == *n && s.as_ref().is_none_or(|s| *s == t.scope));
            if !tomb {
                return Err(Error::not_found("secret", n.clone()));
            }
        }
        let present: std::collections::HashSet<(Scope, String)> = secrets
            .iter()
            .map(|s| (s.scope.clone(), s.name.clone()))
            .collect();
        let tombstones: Vec<_> = self
            .tombstones()?
            .into_iter()
            .filter(|t| wanted(&t.scope, &t.name))
            .filter(|t| since.is_none_or(|s| t.deleted_at >= s))
            .filter(|t| !present.contains(&(t.scope.clone(), t.name.clone())))
            .collect();
        Ok((secrets, tombstones, versions))
    }

    fn bundle_secret(
        &self,
        values: &impl ReadableTable<&'static [u8; 40], &'static [u8]>,
        h: &[u8; 32],
        rec: SecretRec,
        history: bool,
    ) -> Result<BundleSecret> {
        let mut versions = Vec::new();
        for v in &rec.versions {
            if !history && v.version != rec.version {
                continue;
            }
            let val = self.value_of(values, h, &rec, v.version)?.ok_or_else(|| {
                Error::integrity(
                    "values",
                    crate::format::record_label(&value_key(h, v.version)),
                )
            })?;
            versions.push(BundleVersion {
                version: v.version,
                at: v.at,
                by: v.by.clone(),
                value: val.value,
                fields: val.fields,
            });
        }
        Ok(BundleSecret {
            scope: rec.scope,
            name: rec.name,
            stype: rec.stype,
            description: rec.description,
            integration: rec.integration,
            meta: rec.meta,
            max_age_days: rec.max_age_days,
            max_versions: rec.max_versions,
            created_at: rec.created_at,
            created_by: rec.created_by,
            updated_at: rec.updated_at,
            versions,
        })
    }

    /// Verifies a bundle, plans its merge and (unless `dry_run`) applies it in one transaction
    /// audited as `import` with the bundle's source and sequence. Owners only.
    ///
    /// Merge: last writer wins per secret, by the time of the current version; a secret this
    /// store changed later than the bundle's is kept and reported as a conflict; a deletion is
    /// applied only when the secret has not changed here since.
    ///
    /// # Errors
    /// `Integrity` for a bundle that is not for this store, tampered with, truncated or badly
    /// signed (nothing applied); `PermissionDenied` when `from_key` is given and did not sign
    /// it; `Conflict` for a replay (sequence not above the last applied from that source).
    pub fn bundle_apply(
        &self,
        actor: &Actor,
        bundle: &[u8],
        from_key: Option<&[u8; 32]>,
        dry_run: bool,
    ) -> Result<BundlePlan> {
        self.authorize(actor, Action::Import, "bundle")?;
        let identity = self.identity(actor)?;
        let opened = identity.decrypt("bundle", bundle, BUNDLE_MAX)?;
        let layout = SignedBundle::decode(&opened)?;
        if !verify(
            &layout.signer,
            &bundle_message(&layout.signer, layout.payload),
            &layout.signature,
        ) {
            return Err(Error::integrity("bundle", "signature does not verify"));
        }
        let signer_text = PublicKeys {
            recipient: String::new(),
            sign: layout.signer,
        }
        .sign_text();
        if let Some(k) = from_key
            && *k != layout.signer
        {
            let why = format!(
                "bundle signed by {signer_text}, not by the key given with --from-key; nothing applied"
            );
            self.record(&AuditEntry::new(actor, Action::Import, Outcome::Denied).named("bundle"))?;
            return Err(Error::denied(why));
        }
        let payload = decode_bundle_payload(layout.payload)?;
        if payload.source == self.header.store_id {
            return Err(Error::invalid("bundle", "made by this store itself"));
        }
        let txn = self.db.begin_write()?;
        let mut state = self.airgap_state(&txn)?;
        let last = state.last_applied(&payload.source);
        if payload.seq <= last {
            return Err(Error::Conflict {
                reason: format!(
                    "replay: bundle seq {} from store {} is not newer than seq {last}, applied \
                     already; nothing applied",
                    payload.seq,
                    hex(&payload.source)
                ),
                references: Vec::new(),
            });
        }
        let mut items = self.merge(&txn, &payload, &actor.principal)?;
        items.sort_by(|a, b| (&a.scope, &a.name).cmp(&(&b.scope, &b.name)));
        let plan = BundlePlan {
            source: hex(&payload.source),
            seq: payload.seq,
            signer: signer_text,
            created_at: ts(payload.created_at),
            items,
            applied: !dry_run,
        };
        if dry_run {
            txn.abort()?;
            return Ok(plan);
        }
        state.set_applied(payload.source, payload.seq);
        self.put_airgap_state(&txn, &state)?;
        let mut entries: Vec<AuditEntry> = plan
            .items
            .iter()
            .filter(|i| {
                matches!(
                    i.action,
                    PlanAction::Create | PlanAction::Update | PlanAction::Delete
                )
            })
            .map(|i| {
                AuditEntry::new(actor, Action::Import, Outcome::Ok)
                    .secret(&i.scope, &i.name, i.version)
            })
            .collect();
        let count = |a: PlanAction| plan.items.iter().filter(|i| i.action == a).count();
        entries.push(
            AuditEntry::new(actor, Action::Import, Outcome::Ok).named(format!(
                "bundle {} seq {}: {} created, {} updated, {} deleted, {} conflicts",
                plan.source,
                plan.seq,
                count(PlanAction::Create),
                count(PlanAction::Update),
                count(PlanAction::Delete),
                count(PlanAction::Conflict),
            )),
        );
        audit::append(self, &txn, &entries)?;
        self.db.commit(txn)?;
        Ok(plan)
    }

    fn merge(
        &self,
        txn: &redb::WriteTransaction,
        payload: &BundlePayload,
        by: &str,
    ) -> Result<Vec<PlanItem>> {
        let mut secrets = txn.open_table(SECRETS)?;
        let mut values = txn.open_table(VALUES)?;
        let mut items = Vec::with_capacity(payload.secrets.len() + payload.tombstones.len());
        for s in &payload.secrets {
            let h = self.secret_hash(&s.scope, &s.name);
            let existing: Option<SecretRec> = match secrets.get(&h)? {
                Some(raw) => Some(self.open_row(TableId::Secrets, &h, raw.value())?),
                None => None,
            };
            let prev = existing.as_ref().map(|r| r.version);
            let (rec, writes, item) = match existing {
                None => created(s, by),
                Some(local) => updated(local, s, by),
            };
            let Some(mut rec) = rec else {
                items.push(item);
                continue;
            };
            self.settle_versions(&mut values, &h, &mut rec, prev, writes)?;
            secrets.insert(&h, self.seal_row(TableId::Secrets, &h, &rec)?.as_slice())?;
            items.push(item);
        }
        for t in &payload.tombstones {
            let h = self.secret_hash(&t.scope, &t.name);
            let local: Option<SecretRec> = match secrets.get(&h)? {
                Some(raw) => Some(self.open_row(TableId::Secrets, &h, raw.value())?),
                None => None,
            };
            let Some(local) = local else { continue };
            let mut item = PlanItem {
                scope: t.scope.clone(),
                name: t.name.clone(),
                action: PlanAction::Delete,
                version: None,
                note: None,
            };
            if local.updated_at > t.deleted_at {
                item.action = PlanAction::Conflict;
                item.version = Some(local.version);
                item.note = Some("deleted at the source, changed here since: kept".into());
            } else {
                secrets.remove(&h)?;
                Self::drop_history(&mut values, &h, &local)?;
                Self::forget_secret(txn, &h)?;
                self.forget_last_used(txn, &h)?;
                self.put_tombstone(txn, &t.scope, &t.name, t.deleted_at)?;
            }
            items.push(item);
        }
        Ok(items)
    }
}

type Merged = (Option<SecretRec>, Vec<(u64, ValueRec)>, PlanItem);

fn version_rec(v: &BundleVersion, number: u64) -> VersionRec {
    VersionRec {
        version: number,
        at: v.at,
        by: v.by.clone(),
        fields: v.fields.iter().map(|(n, _)| n.clone()).collect(),
        size: v.value.len() as u64,
        from: None,
    }
}

fn value_rec(v: &BundleVersion) -> ValueRec {
    ValueRec {
        value: v.value.clone(),
        fields: v.fields.clone(),
    }
}

fn item(s: &BundleSecret, action: PlanAction, version: u64) -> PlanItem {
    PlanItem {
        scope: s.scope.clone(),
        name: s.name.clone(),
        action,
        version: Some(version),
        note: None,
    }
}

/// A secret new here: its versions keep their numbers from the source.
fn created(s: &BundleSecret, by: &str) -> Merged {
    let cur = s
        .versions
        .last()
        .expect("decode refuses a secret without versions");
    let rec = SecretRec {
        name: s.name.clone(),
        scope: s.scope.clone(),
        stype: s.stype,
        description: s.description.clone(),
        integration: s.integration.clone(),
        meta: s.meta.clone(),
        created_at: s.created_at,
        created_by: s.created_by.clone(),
        updated_at: s.updated_at.max(cur.at),
        updated_by: by.to_owned(),
        version: cur.version,
        max_versions: s.max_versions,
        max_age_days: s.max_age_days,
        versions: s
            .versions
            .iter()
            .map(|v| version_rec(v, v.version))
            .collect(),
        current: ValueRec::default(),
        current_in_values: false,
    };
    let writes = s
        .versions
        .iter()
        .map(|v| (v.version, value_rec(v)))
        .collect();
    (Some(rec), writes, item(s, PlanAction::Create, cur.version))
}

/// A secret present here: unchanged, updated (the bundle's newer versions appended as new
/// versions here) or a conflict (this store's change is newer and is kept).
fn updated(mut local: SecretRec, s: &BundleSecret, by: &str) -> Merged {
    let inc = s
        .versions
        .last()
        .expect("decode refuses a secret without versions");
    let cur = &local.current;
    let same = cur.value == inc.value && cur.fields == inc.fields;
    if same {
        return (
            None,
            Vec::new(),
            item(s, PlanAction::Unchanged, local.version),
        );
    }
    if inc.at <= local.updated_at {
        let mut it = item(s, PlanAction::Conflict, local.version);
        it.note = Some("changed here after the bundle's version: kept this store's".into());
        return (None, Vec::new(), it);
    }
    let mut writes = Vec::new();
    let newer = s.versions.iter().filter(|v| v.at > local.updated_at);
    for v in newer {
        local.version += 1;
        local.versions.push(version_rec(v, local.version));
        writes.push((local.version, value_rec(v)));
    }
    local.stype = s.stype;
    local.description.clone_from(&s.description);
    local.integration.clone_from(&s.integration);
    local.meta.clone_from(&s.meta);
    local.max_age_days = s.max_age_days;
    local.updated_at = inc.at;
    by.clone_into(&mut local.updated_by);
    let v = local.version;
    (Some(local), writes, item(s, PlanAction::Update, v))
}

//! `check`: which names exist and may be seen, without reading a value or moving `last_used`.

use super::secrets::MAX_MAX_VERSIONS;
use super::{SECRETS, Store};
use crate::error::{Error, Result};
use crate::policy::{Op, pattern_matches};
use crate::types::{Actor, CheckResult, PrincipalKind};

impl Store {
    /// Which of `names` exist (resolved as a read would) and may be seen by the actor.
    /// `NAME#field` checks the field too. Nothing is read and nothing is recorded.
    ///
    /// For an agent, a name its grants do not cover is `not_granted` whether or not it exists,
    /// so that the answer depends only on the agent's own grants and says nothing about
    /// secrets beyond them; `missing` then means "granted, but not there". Owners and members
    /// see `present` or `missing` (a secret in a team scope a member is not in is `missing`).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad name.
    pub fn check(&self, actor: &Actor, names: &[String]) -> Result<CheckResult> {
        let (who, _) = self.principal_for(actor)?;
        let now = crate::sys::now();
        let agent = who.kind == PrincipalKind::Agent;
        let granted = |name: &str| {
            who.grants
                .iter()
                .any(|g| pattern_matches(&g.pattern, name) && g.expires.is_none_or(|e| e > now))
        };
        let mut out = CheckResult::default();
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SECRETS)?;
        for full in names {
            let (name, field) = match full.split_once('#') {
                Some((n, f)) => (n, Some(f)),
                None => (full.as_str(), None),
            };
            // A name that is not a valid name is a mistake in the request, not a missing secret.
            crate::types::validate_name(name)?;
            let found = self.resolve_in(&table, actor, name, None)?;
            let visible = found
                .as_ref()
                .filter(|(_, rec)| self.allow(actor, Op::ReadMeta, &rec.scope, name).is_ok());
            let present = visible.is_some_and(|(_, rec)| {
                field.is_none_or(|f| {
                    rec.versions
                        .iter()
                        .any(|v| v.version == rec.version && v.fields.iter().any(|x| x == f))
                })
            });
            if present {
                out.present.push(full.clone());
            } else if agent && (visible.is_none() && (found.is_some() || !granted(name))) {
                out.not_granted.push(full.clone());
            } else {
                out.missing.push(full.clone());
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Runs `f` on the current value of a `certificate` secret, for those who may see its
    /// metadata: a certificate's validity is public, and `report rotation` needs its expiry.
    /// Nothing is recorded and `last_used` does not move, because no value leaves the store:
    /// `f` is crate code that returns only what the certificate states (its `notAfter`).
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied` (audited), `Ambiguous`; `InvalidArgument` for a secret
    /// of another type.
    #[cfg_attr(not(feature = "protocol"), allow(dead_code))]
    pub(crate) fn with_certificate<R>(
        &self,
        actor: &Actor,
        name: &str,
        scope: Option<&crate::types::Scope>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let (h, rec) = self.find_meta(actor, name, scope, crate::types::Action::List)?;
        if rec.stype != crate::types::SecretType::Certificate {
            return Err(crate::error::Error::invalid(
                "type",
                format!("{}/{name} is not a certificate", rec.scope),
            ));
        }
        if rec.current_in_values {
            // Its value is the damaged row a format 1 store left: reading it says so.
            let v = self.current_from_values(&h, &rec)?;
            return Ok(f(v.value.expose()));
        }
        Ok(f(rec.current.value.expose()))
    }
}

/// Checks a write's parts that the store bounds: versions kept, field and label names, and an
/// empty value (refused unless `allow_empty`).
pub(super) fn validate_request(req: &crate::types::SetRequest) -> Result<()> {
    if let Some(v) = req.max_versions
        && !(1..=MAX_MAX_VERSIONS).contains(&v)
    {
        return Err(Error::invalid(
            "max_versions",
            format!("{v} is outside 1..={MAX_MAX_VERSIONS}"),
        ));
    }
    for k in req.fields.keys() {
        if k.is_empty()
            || k.len() > 64
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(Error::invalid(
                "fields",
                format!("field name {k:?} must be 1-64 of A-Z a-z 0-9 _ - ."),
            ));
        }
    }
    for k in req.meta.keys() {
        if k.is_empty() || k.chars().count() > 64 {
            return Err(Error::invalid(
                "meta",
                format!("label key {k:?} must have 1 to 64 characters"),
            ));
        }
    }
    let empty = req
        .value
        .as_ref()
        .is_some_and(crate::types::SecretBytes::is_empty)
        && req.fields.is_empty();
    if empty && !req.allow_empty {
        return Err(Error::invalid(
            "value",
            "the value is empty and there are no fields; pass --allow-empty to store an empty value",
        ));
    }
    Ok(())
}

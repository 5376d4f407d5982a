//! `/v1/secrets`, `/v1/check`, `/v1/env`: metadata, values, writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Context, Operation, ValueRead, endpoint};
use crate::error::{Error, Result};
use crate::protocol::{
    Deleted, EnvItem, EnvResponse, SecretList, SecretText, ValueResponse, decode_bytes, decode_map,
    encode_bytes, encode_map,
};
use crate::store::{ReadRequest, Store};
use crate::types::{
    Actor, CheckResult, ListFilter, Scope, SecretMeta, SecretType, SetRequest, ValueRef,
};

pub(super) fn read_request(actor: &Actor, v: ValueRef) -> ReadRequest {
    ReadRequest {
        actor: actor.clone(),
        name: v.name,
        scope: v.scope,
        version: v.version,
        field: v.field,
    }
}

/// `GET /v1/secrets`: metadata the caller may see, sorted by scope and name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    /// Only this scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Only this type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<SecretType>,
    /// Only this integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// Names containing this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// At most this many (1 to [`LIST_LIMIT_MAX`]); the answer's `next` names the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// The `next` of the previous page: an opaque cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Include each value's keyed fingerprint (one MAC of the current value per secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprints: Option<bool>,
}
endpoint!(List, Get "/v1/secrets" => SecretList);

/// The largest page of a listing.
pub const LIST_LIMIT_MAX: usize = 10_000;

/// The page the clients ask for when they follow a whole listing (`Api::list`, the Python
/// client): small enough that a full listing leaves the daemon's memory where it was.
pub const LIST_PAGE: usize = 1_000;

/// The cursor after `(scope, name)`: the position itself, `SCOPE/NAME` (a scope never holds
/// `/`). Clients pass it back as they got it; any position is valid (the page starts after it).
fn cursor(scope: &Scope, name: &str) -> String {
    format!("{scope}/{name}")
}

fn parse_cursor(s: &str) -> Result<(Scope, String)> {
    let bad = || {
        Error::invalid(
            "after",
            "not a cursor: pass the `next` of the previous page (SCOPE/NAME)",
        )
    };
    let (scope, name) = s.split_once('/').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    Ok((scope.parse().map_err(|_| bad())?, name.to_owned()))
}

impl From<&ListFilter> for List {
    fn from(f: &ListFilter) -> Self {
        Self {
            scope: f.scope.clone(),
            secret_type: f.secret_type,
            integration: f.integration.clone(),
            q: f.query.clone(),
            limit: None,
            after: None,
            fingerprints: None,
        }
    }
}

impl Operation for List {
    fn apply(self, cx: &Context<'_>) -> Result<SecretList> {
        let filter = ListFilter {
            scope: self.scope,
            secret_type: self.secret_type,
            integration: self.integration,
            query: self.q,
        };
        if let Some(l) = self.limit
            && !(1..=LIST_LIMIT_MAX).contains(&l)
        {
            return Err(Error::invalid(
                "limit",
                format!("{l}: a page holds 1 to {LIST_LIMIT_MAX} secrets"),
            ));
        }
        let after = self.after.as_deref().map(parse_cursor).transpose()?;
        let (secrets, more) = cx.store.list_page_as(
            cx.actor,
            &filter,
            after.as_ref(),
            self.limit,
            self.fingerprints.unwrap_or(false),
        )?;
        let next = more
            .then(|| secrets.last().map(|m| cursor(&m.scope, &m.name)))
            .flatten();
        Ok(SecretList { secrets, next })
    }
}

/// `GET /v1/secrets/{name}`: metadata and kept versions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Show {
    /// The secret (path).
    #[serde(skip)]
    pub name: String,
    /// An explicit scope; without it the lookup resolves user → team → org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}
endpoint!(Show, Get "/v1/secrets/{name}" => SecretMeta, name);

impl Operation for Show {
    fn apply(self, cx: &Context<'_>) -> Result<SecretMeta> {
        cx.store.show(cx.actor, &self.name, self.scope.as_ref())
    }
}

/// `GET /v1/secrets/{name}/value`: one value, audited before it is returned.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetValue {
    /// The secret (path).
    #[serde(skip)]
    pub name: String,
    /// An explicit scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// A kept version (default: current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Only this field, returned as the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
endpoint!(GetValue, Get "/v1/secrets/{name}/value" => ValueResponse, name);

impl From<&ValueRef> for GetValue {
    fn from(v: &ValueRef) -> Self {
        Self {
            name: v.name.clone(),
            scope: v.scope.clone(),
            version: v.version,
            field: v.field.clone(),
        }
    }
}

impl From<GetValue> for ValueRef {
    fn from(g: GetValue) -> Self {
        Self {
            scope: g.scope,
            name: g.name,
            version: g.version,
            field: g.field,
        }
    }
}

impl Operation for GetValue {
    fn apply(self, cx: &Context<'_>) -> Result<ValueResponse> {
        let v = super::upstream::read(cx, vec![read_request(cx.actor, self.into())])
            .pop()
            .unwrap_or_else(|| {
                Err(Error::Internal {
                    message: "the read returned nothing".into(),
                    source: None,
                })
            })?;
        Ok(ValueResponse::from(&v))
    }

    fn value_read(&self, store: &Store, actor: &Actor) -> Option<ValueRead<ValueResponse>> {
        let request = read_request(actor, ValueRef::from(self.clone()));
        super::upstream::is_local(store, &request).then_some(ValueRead {
            request,
            output: |v| ValueResponse::from(v),
        })
    }
}

/// `PUT /v1/secrets/{name}`: create, or write a new version. Text travels as `value`, bytes
/// that are not UTF-8 as `value_base64` (fields likewise).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Set {
    /// The secret (path).
    #[serde(skip)]
    pub name: String,
    /// The value, when UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretText>,
    /// The value in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<SecretText>,
    /// UTF-8 fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, SecretText>,
    /// Fields in base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields_base64: BTreeMap<String, SecretText>,
    /// The type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<SecretType>,
    /// The scope (default org).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Integration tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// Labels, merged into the current ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Rotation policy in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    /// How many versions to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<u32>,
    /// Accept an empty value with no fields.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty: bool,
}
endpoint!(Set, Put "/v1/secrets/{name}" => SecretMeta, name);

impl Set {
    /// The wire form of a library write.
    pub fn new(name: &str, req: &SetRequest) -> Self {
        let (value, value_base64) = req.value.as_ref().map(encode_bytes).unwrap_or_default();
        let (fields, fields_base64) = encode_map(&req.fields);
        Self {
            name: name.to_owned(),
            value,
            value_base64,
            fields,
            fields_base64,
            secret_type: req.secret_type,
            scope: Some(req.scope.clone()),
            description: req.description.clone(),
            integration: req.integration.clone(),
            meta: req.meta.clone(),
            max_age_days: req.max_age_days,
            max_versions: req.max_versions,
            allow_empty: req.allow_empty,
        }
    }

    /// Back to the library's write.
    ///
    /// # Errors
    /// `InvalidArgument` when base64 does not decode or both forms are given.
    pub fn into_request(self) -> Result<SetRequest> {
        Ok(SetRequest {
            value: decode_bytes("value", self.value.as_ref(), self.value_base64.as_ref())?,
            fields: decode_map("fields", &self.fields, &self.fields_base64)?,
            scope: self.scope.unwrap_or_default(),
            secret_type: self.secret_type,
            description: self.description,
            integration: self.integration,
            meta: self.meta,
            max_age_days: self.max_age_days,
            max_versions: self.max_versions,
            allow_empty: self.allow_empty,
        })
    }
}

impl Operation for Set {
    fn apply(self, cx: &Context<'_>) -> Result<SecretMeta> {
        let name = self.name.clone();
        cx.store.set(cx.actor, &name, self.into_request()?)
    }
}

/// `DELETE /v1/secrets/{name}`: refused with `conflict` and the references while any exist,
/// unless `force`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    /// The secret (path).
    #[serde(skip)]
    pub name: String,
    /// An explicit scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Delete even when referenced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}
endpoint!(Delete, Delete "/v1/secrets/{name}" => Deleted, name);

impl Operation for Delete {
    fn apply(self, cx: &Context<'_>) -> Result<Deleted> {
        let force = self.force.unwrap_or(false);
        // A remote secret's binding goes with it, but only once the delete is allowed (not
        // refused for its references); one never fetched has a binding and no local record.
        let bound = cx
            .store
            .binding(&self.scope.clone().unwrap_or_default(), &self.name)?
            .is_some();
        let broken = match cx
            .store
            .delete_forced(cx.actor, &self.name, self.scope.as_ref(), force)
        {
            Err(Error::NotFound { .. }) if bound => Vec::new(),
            other => other?,
        };
        if bound {
            super::upstream::unbind(cx, &self.name, self.scope.as_ref())?;
        }
        let deleted = match self.scope {
            Some(s) => format!("{s}/{}", self.name),
            None => self.name,
        };
        Ok(Deleted { deleted, broken })
    }
}

/// `POST /v1/secrets/{name}/rollback`: re-publishes version `to` as a new version.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The secret (path).
    #[serde(skip)]
    pub name: String,
    /// The version to re-publish.
    pub to: u64,
    /// An explicit scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}
endpoint!(Rollback, Post "/v1/secrets/{name}/rollback" => SecretMeta, name);

impl Operation for Rollback {
    fn apply(self, cx: &Context<'_>) -> Result<SecretMeta> {
        cx.store
            .rollback(cx.actor, &self.name, self.scope.as_ref(), self.to)
    }
}

/// `POST /v1/check`: which names (`NAME` or `NAME#field`) exist and are visible.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The names to look for.
    pub required: Vec<String>,
}
endpoint!(Check, Post "/v1/check" => CheckResult);

impl Operation for Check {
    fn apply(self, cx: &Context<'_>) -> Result<CheckResult> {
        cx.store.check(cx.actor, &self.required)
    }
}

/// The most secrets one `/v1/env` request may name (SPEC §9): a request costs at most this
/// many reads and audit records.
pub const MAX_ENV_SECRETS: usize = 256;

/// `POST /v1/env`: variable → value for `run`, every secret read in one audit commit; the
/// first failure fails the request (a half-filled environment is worse than none). At most
/// [`MAX_ENV_SECRETS`] secrets; a request naming any it may not read is refused before any
/// value is opened, with one audit record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Env {
    /// `NAME[#field][=VAR]` strings or full specs.
    pub secrets: Vec<EnvItem>,
}
endpoint!(Env, Post "/v1/env" => EnvResponse);

impl Operation for Env {
    fn apply(self, cx: &Context<'_>) -> Result<EnvResponse> {
        if self.secrets.len() > MAX_ENV_SECRETS {
            return Err(Error::invalid(
                "secrets",
                format!(
                    "{} secrets in one request; the limit is {MAX_ENV_SECRETS}: split the request",
                    self.secrets.len()
                ),
            ));
        }
        let mut vars = Vec::with_capacity(self.secrets.len());
        let mut reqs = Vec::with_capacity(self.secrets.len());
        let mut seen = BTreeMap::new();
        for item in &self.secrets {
            let (value, var) = item.resolve()?;
            // The same value asked for twice under one variable is read once; two different
            // values for one variable are a mistake.
            match seen.get(&var) {
                Some(earlier) if *earlier == value => continue,
                Some(_) => {
                    return Err(Error::invalid(
                        "env",
                        format!("{var} is asked for twice, for different secrets"),
                    ));
                }
                None => {
                    seen.insert(var.clone(), value.clone());
                }
            }
            vars.push(var);
            reqs.push(read_request(cx.actor, value));
        }
        cx.store.check_reads(&reqs)?;
        let mut out = EnvResponse::default();
        for (var, r) in vars.into_iter().zip(super::upstream::read(cx, reqs)) {
            let r = r?;
            if let Some(u) = r.upstream.filter(|u| u.stale) {
                out.stale.insert(var.clone(), u.fetched_at);
            }
            match encode_bytes(&r.value) {
                (Some(t), _) => out.env.insert(var, t),
                (_, Some(b)) => out.env_base64.insert(var, b),
                (None, None) => None,
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Check>(r#"{"required":[],"x":1}"#).is_err());
        assert!(serde_json::from_str::<Set>(r#"{"value":"v","colour":1}"#).is_err());
        assert!(serde_json::from_str::<Set>(r#"{"name":"x","value":"v"}"#).is_err());
    }
}

//! The JSON bodies of HTTP API v1 (SPEC §6), shared by the daemon and [`crate::Client`].
//!
//! Requests reject unknown fields (`invalid_argument`); responses may grow fields. Secret text
//! travels as [`SecretText`] (wiped on drop, never printed): `value` when UTF-8, else
//! `value_base64`, fields likewise. Every response carries the header [`API_HEADER`] with
//! [`API_VERSION`]; the client refuses a daemon that speaks another version.

mod error;
mod value;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use error::{ErrorBody, ErrorResponse};
pub use value::{
    SecretText, TextMaps, decode_bytes, decode_map, encode_bytes, encode_map, env_var_name,
};

use crate::error::{Error, Result};
use crate::types::{
    AuditQuery, AuditRecord, Grant, ListFilter, Principal, Role, Scope, SecretMeta, SecretType,
    SecretValue, SetRequest,
};

/// The API version this build speaks.
pub const API_VERSION: u32 = 1;
/// The header carrying the API version, on requests and responses.
pub const API_HEADER: &str = "tresor-api";
/// The largest request body the daemon reads (SPEC §9).
pub const MAX_BODY: usize = 1024 * 1024;

/// `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Whether the store is locked.
    pub locked: bool,
    /// The daemon's version.
    pub version: String,
    /// The API version.
    pub api: u32,
    /// The store id (hex).
    pub store_id: String,
    /// Number of secrets (all scopes); `null` while locked.
    pub secrets: Option<u64>,
    /// When the store entered its current state (unlocked or locked).
    pub since: Timestamp,
    /// The caller's principal, when the store is unlocked.
    pub principal: Option<String>,
    /// The caller's role, when the store is unlocked.
    pub role: Option<Role>,
}

/// `POST /v1/unlock`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    /// The passphrase.
    pub passphrase: SecretText,
}

/// `GET /v1/secrets` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this scope.
    pub scope: Option<Scope>,
    /// Only this type.
    #[serde(rename = "type")]
    pub secret_type: Option<SecretType>,
    /// Only this integration.
    pub integration: Option<String>,
    /// Names containing this.
    pub q: Option<String>,
}

impl From<ListQuery> for ListFilter {
    fn from(q: ListQuery) -> Self {
        Self {
            scope: q.scope,
            secret_type: q.secret_type,
            integration: q.integration,
            query: q.q,
        }
    }
}

/// `GET /v1/secrets` response, sorted by scope and name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretList {
    /// The secrets' metadata.
    pub secrets: Vec<SecretMeta>,
}

/// `?scope=` of `GET`/`DELETE /v1/secrets/{name}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    /// An explicit scope; without it the lookup resolves user → team → org.
    pub scope: Option<Scope>,
    /// `DELETE` only: delete even when grants name the secret.
    pub force: Option<bool>,
}

/// `GET /v1/secrets/{name}/value` query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueQuery {
    /// An explicit scope.
    pub scope: Option<Scope>,
    /// A kept version (default: current).
    pub version: Option<u64>,
    /// Only this field, returned as the value.
    pub field: Option<String>,
}

/// `GET /v1/secrets/{name}/value` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValueResponse {
    /// Name.
    pub name: String,
    /// The scope it was found in.
    pub scope: Scope,
    /// Type.
    #[serde(rename = "type")]
    pub secret_type: SecretType,
    /// Version read.
    pub version: u64,
    /// The value, when UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretText>,
    /// The value in base64, when not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<SecretText>,
    /// UTF-8 fields.
    #[serde(default)]
    pub fields: BTreeMap<String, SecretText>,
    /// Fields that are not UTF-8, in base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields_base64: BTreeMap<String, SecretText>,
    /// When it was read (after its audit record was durable).
    pub retrieved_at: Timestamp,
}

impl From<&SecretValue> for ValueResponse {
    fn from(v: &SecretValue) -> Self {
        let (value, value_base64) = encode_bytes(&v.value);
        let (fields, fields_base64) = encode_map(&v.fields);
        Self {
            name: v.name.clone(),
            scope: v.scope.clone(),
            secret_type: v.secret_type,
            version: v.version,
            value,
            value_base64,
            fields,
            fields_base64,
            retrieved_at: v.retrieved_at,
        }
    }
}

impl ValueResponse {
    /// Back to the library's value type.
    ///
    /// # Errors
    /// `InvalidArgument` when base64 does not decode.
    pub fn into_value(self) -> Result<SecretValue> {
        Ok(SecretValue {
            value: decode_bytes("value", self.value.as_ref(), self.value_base64.as_ref())?
                .unwrap_or_default(),
            fields: decode_map("fields", &self.fields, &self.fields_base64)?,
            name: self.name,
            scope: self.scope,
            secret_type: self.secret_type,
            version: self.version,
            retrieved_at: self.retrieved_at,
        })
    }
}

/// `PUT /v1/secrets/{name}` body. Without `value`, `value_base64` and fields it changes
/// metadata only (the secret must exist).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    /// The value, UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretText>,
    /// The value, base64 (binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<SecretText>,
    /// Named extra values, UTF-8.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, SecretText>,
    /// Named extra values, base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields_base64: BTreeMap<String, SecretText>,
    /// Type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<SecretType>,
    /// Scope (default org).
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

impl SetBody {
    /// The body of a library `SetRequest`.
    pub fn from_request(req: &SetRequest) -> Self {
        let (value, value_base64) = req.value.as_ref().map(encode_bytes).unwrap_or_default();
        let (fields, fields_base64) = encode_map(&req.fields);
        Self {
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

    /// The library request.
    ///
    /// # Errors
    /// `InvalidArgument` for both forms of one value or bad base64.
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

/// `DELETE /v1/secrets/{name}` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// What was deleted.
    pub deleted: String,
}

/// `POST /v1/secrets/{name}/rollback` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The kept version to re-publish.
    pub to: u64,
    /// An explicit scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// `POST /v1/check` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// Names (`NAME` or `NAME#field`).
    pub required: Vec<String>,
}

/// One secret asked for by `POST /v1/env`: a string `NAME[#field][=ENV]`, or an object.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvItem {
    /// `NAME[#field][=ENV]`.
    Short(String),
    /// Every option spelled out.
    Full(EnvSpec),
}

/// One secret to inject, spelled out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSpec {
    /// Secret name.
    pub name: String,
    /// Explicit scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Only this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A kept version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The variable name (default: [`env_var_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

impl EnvItem {
    /// The spelled-out form, with `env` filled in.
    ///
    /// # Errors
    /// `InvalidArgument` for an empty or malformed variable name.
    pub fn resolve(&self) -> Result<EnvSpec> {
        let mut spec = match self {
            Self::Full(s) => s.clone(),
            Self::Short(s) => {
                let (target, env) = match s.split_once('=') {
                    Some((t, e)) => (t, Some(e.to_owned())),
                    None => (s.as_str(), None),
                };
                let (name, field) = match target.split_once('#') {
                    Some((n, f)) => (n, Some(f.to_owned())),
                    None => (target, None),
                };
                EnvSpec {
                    name: name.to_owned(),
                    scope: None,
                    field,
                    version: None,
                    env,
                }
            }
        };
        let var = spec
            .env
            .take()
            .unwrap_or_else(|| env_var_name(&spec.name, spec.field.as_deref()));
        let ok = !var.is_empty()
            && !var.starts_with(|c: char| c.is_ascii_digit())
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::invalid(
                "env",
                format!("{var:?} is not a variable name (use A-Z a-z 0-9 _, not first a digit)"),
            ));
        }
        spec.env = Some(var);
        Ok(spec)
    }
}

/// `POST /v1/env` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvRequest {
    /// The secrets to inject.
    pub secrets: Vec<EnvItem>,
}

/// `POST /v1/env` response: variable → value (UTF-8) and variable → base64 (binary).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EnvResponse {
    /// UTF-8 values.
    pub env: BTreeMap<String, SecretText>,
    /// Values that are not UTF-8, in base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_base64: BTreeMap<String, SecretText>,
}

/// `GET /v1/audit` query: the core's [`AuditQuery`], which deserializes from the query string
/// and refuses unknown parameters.
pub type AuditParams = AuditQuery;

/// `GET /v1/audit` response, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditList {
    /// The matching records.
    pub records: Vec<AuditRecord>,
}

/// `GET /v1/principals` response, sorted by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrincipalList {
    /// Principals and teams.
    pub principals: Vec<Principal>,
}

/// `PUT /v1/principals/{name}` body: one operation on the principal (or team) `name`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum PrincipalOp {
    /// Add or replace a user or agent.
    Add {
        /// Role.
        role: Role,
        /// Peer uid to match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        /// Peer gid to match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gid: Option<u32>,
        /// Issue a bearer token (returned once).
        #[serde(default)]
        token: bool,
    },
    /// Add a grant.
    Grant {
        /// Exact name or glob.
        pattern: String,
        /// Only in this scope.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<Scope>,
        /// Not after this time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<Timestamp>,
    },
    /// Remove the grants with this pattern.
    Revoke {
        /// The pattern.
        pattern: String,
    },
    /// Create the team `name`.
    TeamAdd,
    /// Add `member` to the team `name`.
    TeamJoin {
        /// A principal.
        member: String,
    },
    /// Remove `member` from the team `name`.
    TeamLeave {
        /// A principal.
        member: String,
    },
}

impl PrincipalOp {
    /// The grant of a `Grant` op.
    pub fn grant(&self) -> Option<Grant> {
        match self {
            Self::Grant {
                pattern,
                scope,
                expires,
            } => Some(Grant {
                pattern: pattern.clone(),
                scope: scope.clone(),
                expires: *expires,
            }),
            _ => None,
        }
    }
}

/// `PUT /v1/principals/{name}` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrincipalResponse {
    /// The principal (or team) after the operation.
    pub principal: Principal,
    /// A new bearer token (`add` with `token: true`), shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretText>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<CheckRequest>(r#"{"required":[],"x":1}"#).is_err());
        assert!(
            serde_json::from_str::<PrincipalOp>(r#"{"op":"revoke","pattern":"a","x":1}"#).is_err()
        );
        let op: PrincipalOp = serde_json::from_str(r#"{"op":"team_add"}"#).expect("team_add");
        assert!(matches!(op, PrincipalOp::TeamAdd));
        assert!(serde_json::from_str::<SetBody>(r#"{"value":"v","colour":1}"#).is_err());
    }

    #[test]
    fn env_items() {
        let s = EnvItem::Short("db#password=PGPASS".into())
            .resolve()
            .expect("ok");
        assert_eq!(s.name, "db");
        assert_eq!(s.field.as_deref(), Some("password"));
        assert_eq!(s.env.as_deref(), Some("PGPASS"));
        let s = EnvItem::Short("github-pat".into()).resolve().expect("ok");
        assert_eq!(s.env.as_deref(), Some("GITHUB_PAT"));
        assert!(EnvItem::Short("x=1A".into()).resolve().is_err());
    }
}

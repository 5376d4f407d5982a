//! The JSON bodies of HTTP API v1 (SPEC §6), shared by the daemon and [`crate::Client`].
//!
//! Requests reject unknown fields (`invalid_argument`); responses may grow fields. Secret text
//! travels as [`SecretText`] (wiped on drop, never printed): `value` when UTF-8, else
//! `value_base64`, fields likewise. Every response carries the header [`API_HEADER`] with
//! [`API_VERSION`]; the client refuses a daemon that speaks another version.

mod error;
pub mod strict;
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
    AuditRecord, Grant, Principal, Role, Scope, SecretMeta, SecretType, SecretValue, ValueRef,
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
    #[serde(with = "crate::types::time")]
    pub since: Timestamp,
    /// The caller's principal, when the store is unlocked.
    pub principal: Option<String>,
    /// The caller's role, when the store is unlocked.
    pub role: Option<Role>,
    /// Whether the store is degraded: its last write failed on the disk (full or failing), so
    /// writes and value reads get `unavailable` (503) until a write reaches the disk again.
    #[serde(default)]
    pub degraded: bool,
    /// Why, naming the OS error (`no space left on device`), while degraded.
    #[serde(default)]
    pub degraded_reason: Option<String>,
}

/// `POST /v1/unlock`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    /// The passphrase.
    pub passphrase: SecretText,
}

/// `GET /v1/secrets` response, sorted by scope and name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretList {
    /// The secrets' metadata.
    pub secrets: Vec<SecretMeta>,
    /// The cursor of the next page (pass it as `after`), while more remain after a `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
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
    #[serde(with = "crate::types::time")]
    pub retrieved_at: Timestamp,
    /// For a remote secret (SPEC §11): upstream could not be reached and the cache was served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    /// For a remote secret: when the value was last fetched from upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::types::time::option")]
    pub fetched_at: Option<Timestamp>,
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
            stale: v.upstream.map(|u| u.stale),
            fetched_at: v.upstream.map(|u| u.fetched_at),
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
            upstream: self.fetched_at.map(|fetched_at| crate::types::Freshness {
                stale: self.stale.unwrap_or(false),
                fetched_at,
            }),
        })
    }
}

/// `DELETE /v1/secrets/{name}` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// What was deleted.
    pub deleted: String,
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
    /// The value this item asks for and the variable it goes into (default:
    /// [`env_var_name`]).
    ///
    /// # Errors
    /// `InvalidArgument` when the variable is not a valid name.
    pub fn resolve(&self) -> Result<(ValueRef, String)> {
        let spec = match self {
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
            .unwrap_or_else(|| env_var_name(&spec.name, spec.field.as_deref()));
        if !crate::types::is_var_name(&var) {
            return Err(Error::invalid(
                "env",
                format!("{var:?} is not a variable name (use A-Z a-z 0-9 _, not first a digit)"),
            ));
        }
        let value = ValueRef {
            scope: spec.scope,
            name: spec.name,
            version: spec.version,
            field: spec.field,
        };
        Ok((value, var))
    }
}

impl EnvSpec {
    /// `value` injected as `env` (default: [`env_var_name`]).
    pub fn new(value: &ValueRef, env: Option<String>) -> Self {
        Self {
            name: value.name.clone(),
            scope: value.scope.clone(),
            field: value.field.clone(),
            version: value.version,
            env,
        }
    }
}

/// `POST /v1/env` response: variable → value (UTF-8) and variable → base64 (binary).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EnvResponse {
    /// UTF-8 values.
    pub env: BTreeMap<String, SecretText>,
    /// Values that are not UTF-8, in base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_base64: BTreeMap<String, SecretText>,
    /// Variables whose remote secret was served stale from the cache (SPEC §11), with when
    /// it was last fetched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[serde(with = "crate::types::time::map")]
    pub stale: BTreeMap<String, Timestamp>,
}

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
        #[serde(with = "crate::types::time::option")]
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
        assert!(
            serde_json::from_str::<PrincipalOp>(r#"{"op":"revoke","pattern":"a","x":1}"#).is_err()
        );
        let op: PrincipalOp = serde_json::from_str(r#"{"op":"team_add"}"#).expect("team_add");
        assert!(matches!(op, PrincipalOp::TeamAdd));
    }

    #[test]
    fn env_items() {
        let (v, var) = EnvItem::Short("db#password=PGPASS".into())
            .resolve()
            .expect("ok");
        assert_eq!(v.name, "db");
        assert_eq!(v.field.as_deref(), Some("password"));
        assert_eq!(var, "PGPASS");
        let (_, var) = EnvItem::Short("github-pat".into()).resolve().expect("ok");
        assert_eq!(var, "GITHUB_PAT");
        assert!(EnvItem::Short("x=1A".into()).resolve().is_err());
    }
}

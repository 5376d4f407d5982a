//! The data model: names, scopes, types, secret metadata, values, actors, principals and
//! grants, passphrases, audit entries, and the base64 of binary values.
//!
//! These types are what the library hands out and what the daemon serializes; none of them
//! carries a key. [`SecretValue`] carries plaintext and zeroizes it on drop.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use unicode_normalization::{IsNormalized, is_nfc_quick};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

mod airgap;
mod audit;
mod duration;
mod encoding;
mod passphrase;
mod principal;
mod refs;
pub mod time;
mod upstream;
mod value_ref;

pub use airgap::{BundleInfo, BundlePlan, InboxKey, InboxOutcome, PlanAction, PlanItem};
pub use audit::{
    Action, AuditEntry, AuditHead, AuditQuery, AuditRecord, HeadSpec, Outcome, PruneReport,
    VerifyReport,
};
pub use duration::{format_duration, parse_duration};
pub use encoding::{b64, decode_b64};
pub use passphrase::Passphrase;
pub use principal::{Grant, Principal, PrincipalKind, PrincipalSpec};
pub use refs::{READERS_DAYS, Reader, RefKind, Reference, References};
pub use upstream::{
    Binding, BindingStatus, DEFAULT_TIMEOUT_MS, Freshness, Provider, ProviderAuth, ProviderKind,
    SyncReport, read_ca_file,
};
pub use value_ref::{SCHEME, ValueRef};

/// The longest secret name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks a secret name against SPEC §1: 1–128 bytes, `[A-Za-z0-9][A-Za-z0-9._/-]*`, no `..`
/// segment, no trailing `/`, NFC.
///
/// # Errors
/// `InvalidArgument` naming the offending character or rule.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: String| Err(Error::invalid("name", reason));
    if name.is_empty() {
        return bad("a name must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return bad(format!("{} bytes, the limit is {MAX_NAME_LEN}", name.len()));
    }
    if is_nfc_quick(name.chars()) != IsNormalized::Yes {
        return bad("the name is not in Unicode NFC".into());
    }
    for (i, c) in name.char_indices() {
        let ok = c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '.' | '_' | '/' | '-'));
        if !ok {
            let shown = if c.is_ascii_graphic() {
                format!("'{c}'")
            } else {
                format!("U+{:04X}", c as u32)
            };
            return bad(format!(
                "character {shown} at byte {i} is not allowed (use A-Z a-z 0-9, and . _ / - after the first)"
            ));
        }
    }
    if name.split('/').any(|seg| seg == "..") {
        return bad("a '..' segment is not allowed".into());
    }
    if name.ends_with('/') {
        return bad("a trailing '/' is not allowed".into());
    }
    Ok(())
}

/// Checks a principal or team name: like a secret name but 1–64 bytes and no `/`.
///
/// # Errors
/// `InvalidArgument` naming the offending character.
pub fn validate_principal_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 {
        return Err(Error::invalid(
            "principal",
            "a principal name has 1 to 64 bytes",
        ));
    }
    for (i, c) in name.char_indices() {
        if !(c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '.' | '_' | '-'))) {
            let shown = if c.is_ascii_graphic() {
                format!("'{c}'")
            } else {
                format!("U+{:04X}", c as u32)
            };
            return Err(Error::invalid(
                "principal",
                format!("character {shown} at byte {i} is not allowed (use A-Z a-z 0-9 . _ -)"),
            ));
        }
    }
    Ok(())
}

/// Whether `s` may name an environment variable: `[A-Za-z_][A-Za-z0-9_]*`. What `run` sets
/// and what `POST /v1/env` accepts.
pub fn is_var_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where a secret lives: `org`, `team:<team>` or `user:<user>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Scope {
    /// Visible to every principal the policy admits (the default).
    #[default]
    Org,
    /// Visible only to the members of the team.
    Team(String),
    /// A user's personal secrets.
    User(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Org => f.write_str("org"),
            Self::Team(t) => write!(f, "team:{t}"),
            Self::User(u) => write!(f, "user:{u}"),
        }
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "scope",
                format!("expected org, team:<team> or user:<user>, found {s:?}"),
            )
        };
        if s == "org" {
            return Ok(Self::Org);
        }
        let (kind, who) = s.split_once(':').ok_or_else(bad)?;
        validate_principal_name(who).map_err(|_| bad())?;
        match kind {
            "team" => Ok(Self::Team(who.to_owned())),
            "user" => Ok(Self::User(who.to_owned())),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The kind of a secret (SPEC §1).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SecretType {
    /// Anything (the default).
    #[default]
    Plain,
    /// An API token.
    Token,
    /// A bearer token for HTTP.
    Bearer,
    /// A username and password (fields `username`, `password`).
    Credentials,
    /// OAuth client credentials (fields `client_id`, `client_secret`, `scope`, ...).
    Oauth,
    /// A URL with credentials in it.
    Url,
    /// An X.509 certificate (and perhaps its key), PEM.
    Certificate,
    /// A value meant for one environment variable.
    EnvVar,
}

impl SecretType {
    /// Every type, in spec order.
    pub const ALL: [Self; 8] = [
        Self::Plain,
        Self::Token,
        Self::Bearer,
        Self::Credentials,
        Self::Oauth,
        Self::Url,
        Self::Certificate,
        Self::EnvVar,
    ];

    /// The spec's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Token => "token",
            Self::Bearer => "bearer",
            Self::Credentials => "credentials",
            Self::Oauth => "oauth",
            Self::Url => "url",
            Self::Certificate => "certificate",
            Self::EnvVar => "env_var",
        }
    }
}

impl fmt::Display for SecretType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecretType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Self::ALL.iter().map(|t| t.as_str()).collect();
                Error::invalid(
                    "type",
                    format!("unknown type {s:?}; expected one of {}", all.join(", ")),
                )
            })
    }
}

/// How a request reached the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Over the daemon's socket.
    Socket,
    /// In-process, on the file (`--direct`, the library).
    #[default]
    Direct,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Socket => "socket",
            Self::Direct => "direct",
        })
    }
}

/// The role of a principal (SPEC §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Owner,
    /// Metadata, check, reports; values only of its own `user:` scope.
    Member,
    /// Values of the secrets its grants cover.
    Agent,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Owner => "owner",
            Self::Member => "member",
            Self::Agent => "agent",
        })
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "owner" => Ok(Self::Owner),
            "member" => Ok(Self::Member),
            "agent" => Ok(Self::Agent),
            _ => Err(Error::invalid(
                "role",
                format!("expected owner, member or agent, found {s:?}"),
            )),
        }
    }
}

/// Who is asking, as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Actor {
    /// The principal's name.
    pub principal: String,
    /// The principal's role.
    pub role: Option<Role>,
    /// Peer uid (from the kernel over the socket; the process's own uid in direct mode).
    pub uid: u32,
    /// Peer gid.
    pub gid: u32,
    /// Peer pid.
    pub pid: u32,
    /// The peer's executable, when readable.
    pub exe: Option<String>,
    /// Socket or direct.
    pub channel: Channel,
}

impl Actor {
    /// The owner acting in this process on the file (`--direct`, the library): the principal is
    /// the Unix user name, the uid/gid/pid this process's own.
    pub fn direct_owner() -> Self {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let pid = rustix::process::getpid()
            .as_raw_nonzero()
            .get()
            .cast_unsigned();
        let principal = crate::sys::user_name(uid).unwrap_or_else(|| format!("uid-{uid}"));
        Self {
            principal,
            role: Some(Role::Owner),
            uid,
            gid,
            pid,
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string()),
            channel: Channel::Direct,
        }
    }
    /// The daemon acting for itself, as the idle lock's audit record names it: principal
    /// `tresord`, this process's uid/gid/pid, an owner on the direct channel.
    pub fn daemon() -> Self {
        Self {
            principal: "tresord".into(),
            ..Self::direct_owner()
        }
    }
}

/// A plaintext byte string that is wiped when dropped and never printed.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct SecretBytes(#[serde(with = "serde_bytes_vec")] Vec<u8>);

mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

impl SecretBytes {
    /// Wraps bytes (taking ownership, so no copy is left behind).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The plaintext.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// The plaintext as UTF-8, when it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&str> for SecretBytes {
    fn from(v: &str) -> Self {
        Self(v.as_bytes().to_vec())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One version of a secret, as listed by `history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version number, from 1.
    pub version: u64,
    /// When it was written.
    #[serde(with = "crate::types::time")]
    pub created_at: Timestamp,
    /// Who wrote it.
    pub created_by: String,
    /// The names of its fields.
    pub fields: Vec<String>,
    /// The value's length in bytes (0 when the secret has only fields).
    pub size: u64,
    /// Set when this version re-published an older one (`rollback`).
    pub rolled_back_from: Option<u64>,
}

/// Everything about a secret but its value: what listings and `show` return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    /// The name.
    pub name: String,
    /// The scope.
    pub scope: Scope,
    /// The type.
    #[serde(rename = "type")]
    pub secret_type: SecretType,
    /// Free text.
    pub description: Option<String>,
    /// An integration tag (`github`, `aws`, ...).
    pub integration: Option<String>,
    /// Labels.
    pub meta: BTreeMap<String, String>,
    /// When it was created.
    #[serde(with = "crate::types::time")]
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// When its value or metadata last changed.
    #[serde(with = "crate::types::time")]
    pub updated_at: Timestamp,
    /// Who changed it last.
    pub updated_by: String,
    /// When its value was last read.
    #[serde(default, with = "crate::types::time::option")]
    pub last_used: Option<Timestamp>,
    /// The current version.
    pub version: u64,
    /// How many versions are kept.
    pub max_versions: u32,
    /// Rotation policy, in days.
    pub max_age_days: Option<u32>,
    /// The field names of the current version.
    pub fields: Vec<String>,
    /// The kept versions, oldest first.
    pub versions: Vec<VersionInfo>,
    /// The current value's keyed fingerprint (SPEC §1: a MAC under the store's fingerprint
    /// subkey, hex): equal values have equal fingerprints within one store, and nothing of
    /// the value can be learned from it. `None` for an empty value (a secret of fields only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl SecretMeta {
    /// When the current version was written (what rotation reports measure age from).
    pub fn current_version_at(&self) -> Timestamp {
        self.versions
            .iter()
            .find(|v| v.version == self.version)
            .map_or(self.updated_at, |v| v.created_at)
    }
}

/// A secret's value and fields, as read.
#[derive(Clone, Debug)]
pub struct SecretValue {
    /// The name.
    pub name: String,
    /// The scope it was found in.
    pub scope: Scope,
    /// The type.
    pub secret_type: SecretType,
    /// The version read.
    pub version: u64,
    /// The value (empty when the secret has fields only).
    pub value: SecretBytes,
    /// Named extra values.
    pub fields: BTreeMap<String, SecretBytes>,
    /// When it was read (and audited).
    pub retrieved_at: Timestamp,
    /// For a remote binding: whether the value is stale and when it was fetched.
    pub upstream: Option<Freshness>,
}

/// What `set` writes. `None` fields keep the current metadata on an update.
#[derive(Clone, Debug, Default)]
pub struct SetRequest {
    /// The scope (default org).
    pub scope: Scope,
    /// The new value, or `None` to keep the current value and fields (metadata-only update).
    pub value: Option<SecretBytes>,
    /// Named extra values; replace the current fields when `value` is `Some`.
    pub fields: BTreeMap<String, SecretBytes>,
    /// The type.
    pub secret_type: Option<SecretType>,
    /// Free text.
    pub description: Option<String>,
    /// Integration tag.
    pub integration: Option<String>,
    /// Labels, merged into the current ones; a label with an empty value is removed.
    pub meta: BTreeMap<String, String>,
    /// Rotation policy in days.
    pub max_age_days: Option<u32>,
    /// How many versions to keep (default 10).
    pub max_versions: Option<u32>,
    /// Accept an empty value with no fields.
    pub allow_empty: bool,
}

/// Filters for `list`.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only this scope.
    pub scope: Option<Scope>,
    /// Only this type.
    pub secret_type: Option<SecretType>,
    /// Only this integration.
    pub integration: Option<String>,
    /// Names containing this.
    pub query: Option<String>,
}

/// What `check` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CheckResult {
    /// Names found.
    pub present: Vec<String>,
    /// Names missing.
    pub missing: Vec<String>,
    /// Names an agent's grants do not cover (whether or not they exist: an agent may not
    /// learn which secrets exist beyond its grants). Always empty for owners and members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_granted: Vec<String>,
}

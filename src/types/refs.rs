//! References to a secret (SPEC §1): who and what would break if it were deleted, and who
//! read it recently.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::Scope;

/// What kind of thing refers to a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// A principal's grant: its exact name, or a glob that matches it.
    Grant,
    /// An `apply` manifest that declares it.
    Manifest,
    /// A `run --env-file` file that resolved it.
    EnvFile,
    /// An `inject` template that resolved it.
    Template,
    /// A remote binding or an upstream provider that uses it (SPEC §11).
    Remote,
}

impl RefKind {
    /// The kinds a client may record (grants and remote bindings are read off the store).
    pub fn is_recorded(self) -> bool {
        matches!(self, Self::Manifest | Self::EnvFile | Self::Template)
    }

    /// Its name in messages (`env file`, not `env_file`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Manifest => "manifest",
            Self::EnvFile => "env file",
            Self::Template => "template",
            Self::Remote => "remote",
        }
    }
}

/// One reference to a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// What refers to it.
    pub kind: RefKind,
    /// A grant's `principal pattern`, a file's path, a binding's description.
    pub what: String,
    /// The principal that recorded a file reference (or holds the grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The host uid that recorded a file reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// When a file last resolved the secret.
    #[serde(
        default,
        with = "crate::types::time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last: Option<Timestamp>,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.label(), self.what)?;
        if self.kind != RefKind::Grant
            && let Some(p) = &self.principal
        {
            write!(f, " (by {p}")?;
            if let Some(uid) = self.uid {
                write!(f, ", uid {uid}")?;
            }
            if let Some(t) = self.last {
                write!(f, ", last {}", t.strftime("%Y-%m-%dT%H:%M:%SZ"))?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// A principal that read a secret's value recently (from the audit log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reader {
    /// The principal.
    pub principal: String,
    /// How many reads.
    pub reads: u64,
    /// The last read.
    #[serde(with = "crate::types::time")]
    pub last: Timestamp,
}

/// A secret's references and recent readers: `refs NAME`, `GET /v1/secrets/{name}/references`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct References {
    /// The secret's name.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
    /// Everything that refers to it, sorted by kind and what.
    pub references: Vec<Reference>,
    /// Principals that read its value in the last [`READERS_DAYS`] days, most reads first.
    pub readers: Vec<Reader>,
}

/// How far back `readers` looks (SPEC §1: the last 30 days).
pub const READERS_DAYS: i64 = 30;

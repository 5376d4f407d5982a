//! Principals as the API shows them: owners, members, agents and teams, their grants, and
//! what `principal add` asks for. The store seals them; policy decides on them.

use serde::{Deserialize, Serialize};

use super::{Role, Scope};

/// What a principal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// Everything.
    Owner,
    /// Metadata; values of its own `user:` scope.
    Member,
    /// Values its grants cover.
    Agent,
    /// A named set of users and agents.
    Team,
}

impl From<Role> for PrincipalKind {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => Self::Owner,
            Role::Member => Self::Member,
            Role::Agent => Self::Agent,
        }
    }
}

impl PrincipalKind {
    /// The role, for callers (teams have none).
    pub fn role(self) -> Option<Role> {
        match self {
            Self::Owner => Some(Role::Owner),
            Self::Member => Some(Role::Member),
            Self::Agent => Some(Role::Agent),
            Self::Team => None,
        }
    }
}

/// A grant: an exact name or a glob, optionally limited to a scope, optionally expiring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Exact name or glob (`github-*`).
    pub pattern: String,
    /// Only in this scope.
    pub scope: Option<Scope>,
    /// Not after this time.
    #[serde(default, with = "crate::types::time::option")]
    pub expires: Option<jiff::Timestamp>,
}

/// A principal or team as the API shows it (never the token hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: PrincipalKind,
    /// Matched peer uid.
    pub uid: Option<u32>,
    /// Matched peer gid.
    pub gid: Option<u32>,
    /// Whether a bearer token is set.
    pub has_token: bool,
    /// Grants (agents).
    pub grants: Vec<Grant>,
    /// Members (teams).
    pub members: Vec<String>,
    /// When added.
    #[serde(with = "crate::types::time")]
    pub created_at: jiff::Timestamp,
}

/// What `principal add` asks for.
#[derive(Clone, Debug)]
pub struct PrincipalSpec {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Peer uid to match.
    pub uid: Option<u32>,
    /// Peer gid to match.
    pub gid: Option<u32>,
    /// Issue a bearer token (returned once).
    pub token: bool,
}

//! The audit vocabulary: actions, outcomes, records as read back, queries, verify reports.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Actor, Channel, Scope};
use crate::error::{Error, Result};

/// The outcome of an audited action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Ok,
    /// The policy said no (or the credentials were wrong).
    Denied,
    /// Nothing by that name.
    NotFound,
    /// Something else failed.
    Error,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::NotFound => "not_found",
            Self::Error => "error",
        })
    }
}

impl FromStr for Outcome {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ok" => Ok(Self::Ok),
            "denied" => Ok(Self::Denied),
            "not_found" => Ok(Self::NotFound),
            "error" => Ok(Self::Error),
            _ => Err(Error::invalid(
                "outcome",
                format!("expected ok, denied, not_found or error, found {s:?}"),
            )),
        }
    }
}

/// The audited actions of SPEC §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Action {
    Read,
    List,
    Set,
    Delete,
    Rollback,
    Principal,
    Grant,
    Revoke,
    Unlock,
    Lock,
    Passwd,
    Keyslot,
    Rekey,
    Export,
    Import,
    /// Refused connections of one uid, summarized (SPEC §3). Last, so that records written
    /// before it existed decode unchanged.
    Connect,
    /// A fetch from an upstream provider (read-through, refresh, fallback to the cache, sync).
    Fetch,
    /// A provider added, changed or removed.
    Provider,
    /// Audit records removed by retention (`audit prune`, `tresord --audit-retention`); the
    /// record names the seq range and the counts by action.
    Prune,
}

impl Action {
    /// Every action.
    pub const ALL: [Self; 19] = [
        Self::Read,
        Self::List,
        Self::Set,
        Self::Delete,
        Self::Rollback,
        Self::Principal,
        Self::Grant,
        Self::Revoke,
        Self::Unlock,
        Self::Lock,
        Self::Passwd,
        Self::Keyslot,
        Self::Rekey,
        Self::Export,
        Self::Import,
        Self::Connect,
        Self::Fetch,
        Self::Provider,
        Self::Prune,
    ];

    /// The spec's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::List => "list",
            Self::Set => "set",
            Self::Delete => "delete",
            Self::Rollback => "rollback",
            Self::Principal => "principal",
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::Unlock => "unlock",
            Self::Lock => "lock",
            Self::Passwd => "passwd",
            Self::Keyslot => "keyslot",
            Self::Rekey => "rekey",
            Self::Export => "export",
            Self::Import => "import",
            Self::Connect => "connect",
            Self::Fetch => "fetch",
            Self::Provider => "provider",
            Self::Prune => "prune",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::invalid("action", format!("unknown action {s:?}")))
    }
}

/// One audit record, as read back (never a value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// What was recorded (its fields appear beside `seq` in JSON).
    #[serde(flatten)]
    pub entry: AuditEntry,
}

impl std::ops::Deref for AuditRecord {
    type Target = AuditEntry;
    fn deref(&self) -> &AuditEntry {
        &self.entry
    }
}

/// Filters for audit queries. Every field narrows; `limit` keeps the newest N. Also the query
/// string of `GET /v1/audit`, where unknown parameters are refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Secret name.
    pub secret: Option<String>,
    /// Principal name.
    pub principal: Option<String>,
    /// Action.
    pub action: Option<Action>,
    /// Outcome.
    pub outcome: Option<Outcome>,
    /// At or after.
    #[serde(default, with = "crate::types::time::option")]
    pub since: Option<Timestamp>,
    /// Before.
    #[serde(default, with = "crate::types::time::option")]
    pub until: Option<Timestamp>,
    /// Records after this seq (for `--follow`).
    pub after_seq: Option<u64>,
    /// Keep only the last N matches.
    pub limit: Option<usize>,
}

/// What `audit verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether the whole chain verified.
    pub ok: bool,
    /// How many records were walked.
    pub records: u64,
    /// The first seq that failed, if any.
    pub first_broken_seq: Option<u64>,
    /// Why the log disagrees with a witnessed head (`audit verify --head`), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_mismatch: Option<String>,
    /// Records removed by retention before the walk's start, if any were (the walk starts
    /// at the checkpoint, seq `pruned_before_seq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_records: Option<u64>,
    /// The first seq kept after pruning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_before_seq: Option<u64>,
}

/// What `audit prune` removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneReport {
    /// Records removed by this prune.
    pub pruned: u64,
    /// The first seq removed, when any was.
    pub first_seq: Option<u64>,
    /// The first seq kept: the chain is checked from here.
    pub before_seq: u64,
    /// Records removed by every prune so far.
    pub total_pruned: u64,
}

/// A witnessed head of the audit chain (SPEC §3): the last seq and its chain MAC. Kept outside
/// the store, it shows a store rolled back to an older copy (`audit verify --head`). Written
/// and parsed as `SEQ:MAC` (the MAC in lowercase hex); a bare MAC names no seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    /// The seq of the last record (0 for an empty log).
    pub seq: u64,
    /// Its chain MAC, 64 lowercase hex digits.
    pub mac: String,
}

impl fmt::Display for AuditHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.mac)
    }
}

/// A head as given to `audit verify --head`: `SEQ:MAC`, or a bare MAC (then any seq).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadSpec {
    /// The seq, when given.
    pub seq: Option<u64>,
    /// The MAC.
    pub mac: [u8; 32],
}

impl FromStr for HeadSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "head",
                "expected SEQ:MAC or MAC (64 hex digits), as `tresor audit head` prints",
            )
        };
        let s = s.trim();
        let (seq, mac) = match s.split_once(':') {
            Some((seq, mac)) => (Some(seq.parse::<u64>().map_err(|_| bad())?), mac),
            None => (None, s),
        };
        if mac.len() != 64 || !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&mac[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self { seq, mac: out })
    }
}

/// One audit record to append ([`Store::record`](crate::Store::record), or inside a store
/// transaction). Names objects and secrets, never a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    #[serde(with = "crate::types::time")]
    pub time: jiff::Timestamp,
    /// Who.
    pub principal: String,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// pid.
    pub pid: u32,
    /// Executable.
    pub exe: Option<String>,
    /// What.
    pub action: Action,
    /// Secret scope.
    pub scope: Option<String>,
    /// Secret (or other object) name.
    pub name: Option<String>,
    /// Version.
    pub version: Option<u64>,
    /// Outcome.
    pub outcome: Outcome,
    /// Channel.
    pub channel: Channel,
}

impl AuditEntry {
    /// An entry for `actor` doing `action`, now.
    pub fn new(actor: &Actor, action: Action, outcome: Outcome) -> Self {
        Self {
            time: crate::sys::now(),
            principal: actor.principal.clone(),
            uid: actor.uid,
            gid: actor.gid,
            pid: actor.pid,
            exe: actor.exe.clone(),
            action,
            scope: None,
            name: None,
            version: None,
            outcome,
            channel: actor.channel,
        }
    }

    /// Names the object (not a secret).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Names a secret and version.
    #[must_use]
    pub fn secret(mut self, scope: &Scope, name: &str, version: Option<u64>) -> Self {
        self.scope = Some(scope.to_string());
        self.name = Some(name.to_owned());
        self.version = version;
        self
    }
}

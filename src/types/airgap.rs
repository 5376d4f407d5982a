//! What bundle and inbox operations report (SPEC §7): names, actions and counts, never values.

use serde::{Deserialize, Serialize};

use super::Scope;

/// What applying a bundle does to one secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    /// New here.
    Create,
    /// The bundle's version is newer: written as a new version here.
    Update,
    /// Same value and fields here already.
    Unchanged,
    /// Deleted at the source, and not changed here since: deleted.
    Delete,
    /// Both sides changed; this store's change is newer and is kept (reported, not applied).
    Conflict,
}

/// One line of a bundle's plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    /// Scope.
    pub scope: Scope,
    /// Name.
    pub name: String,
    /// What happens.
    pub action: PlanAction,
    /// The version here after applying (none for a delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Why, for a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The plan of a bundle, and whether it was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundlePlan {
    /// The source store's id (hex).
    pub source: String,
    /// The bundle's sequence number.
    pub seq: u64,
    /// The signer's public key, as `tresor inbox key --sign` prints it.
    pub signer: String,
    /// When the bundle was made.
    pub created_at: jiff::Timestamp,
    /// One item per secret and deletion in the bundle, sorted by scope and name.
    pub items: Vec<PlanItem>,
    /// False for `--dry-run`.
    pub applied: bool,
}

/// What `bundle create` wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// The source store's id (hex).
    pub source: String,
    /// The bundle's sequence number.
    pub seq: u64,
    /// Secrets carried.
    pub secrets: usize,
    /// Versions carried.
    pub versions: usize,
    /// Deletions carried.
    pub tombstones: usize,
}

/// The store's public keys (`tresor inbox key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxKey {
    /// The age recipient (`age1…`).
    pub recipient: String,
    /// The Ed25519 bundle-signing key (`tresor-ed25519:…`).
    pub sign: String,
}

/// What happened to one inbox submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxOutcome {
    /// The submission's file name in the inbox (or quarantine).
    pub file: String,
    /// `scope/name`, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The version written, when applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Why it was quarantined, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
}

//! Air-gapped hosts (SPEC §7): sealed bundles and the write-only inbox.
//!
//! `GET /v1/inbox/key` and `POST /v1/inbox` are served also while the daemon is locked, to any
//! known peer: the daemon routes them itself (`daemon/inbox.rs`), not through the generic
//! operation handler; they are [`Operation`]s so that [`crate::Local`] and the client share
//! them.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{Context, Operation, endpoint};
use crate::crypto::identity::parse_sign_key;
use crate::error::Result;
use crate::store::BundleRequest;
use crate::types::{BundleInfo, BundlePlan, InboxKey, InboxOutcome, Scope, decode_b64};

/// `GET /v1/inbox/key`: the store's age recipient and bundle-signing key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxKeyGet {}
endpoint!(InboxKeyGet, Get "/v1/inbox/key" => InboxKey);

impl Operation for InboxKeyGet {
    fn apply(self, cx: &Context<'_>) -> Result<InboxKey> {
        cx.store.inbox_key(cx.actor)
    }
}

/// `POST /v1/inbox`: drops one submission (an age file for the store's recipient, base64).
/// Applied at once when unlocked, at the next unlock when locked. Nothing is read back.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSubmit {
    /// The age file, base64.
    pub submission_base64: String,
}
endpoint!(InboxSubmit, Post "/v1/inbox" => InboxReceipt);

/// The answer of `POST /v1/inbox`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxReceipt {
    /// True when the store was unlocked and the inbox was applied; false when the submission
    /// waits for the next unlock.
    pub applied: bool,
    /// What happened to each submission applied now (this one and any waiting).
    #[serde(default)]
    pub outcomes: Vec<InboxOutcome>,
}

impl Operation for InboxSubmit {
    fn apply(self, cx: &Context<'_>) -> Result<InboxReceipt> {
        let bytes = decode_b64("submission_base64", &self.submission_base64)?;
        Ok(InboxReceipt {
            applied: true,
            outcomes: cx.store.inbox_submit(cx.actor, &bytes)?,
        })
    }
}

/// `POST /v1/bundles`: a sealed bundle (owners; audited as `export`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleCreate {
    /// age recipients (`age1…`).
    pub to: Vec<String>,
    /// Secret names; empty for all.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Limits `secrets` to one scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Only changes at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<jiff::Timestamp>,
    /// Every kept version.
    #[serde(default)]
    pub with_history: bool,
}
endpoint!(BundleCreate, Post "/v1/bundles" => BundleCreated);

/// The answer of `POST /v1/bundles`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleCreated {
    /// What it carries.
    pub info: Option<BundleInfo>,
    /// The bundle (age, binary), base64.
    pub bundle_base64: String,
}

impl Operation for BundleCreate {
    fn apply(self, cx: &Context<'_>) -> Result<BundleCreated> {
        let req = BundleRequest {
            recipients: self.to,
            secrets: self
                .secrets
                .into_iter()
                .map(|n| (self.scope.clone(), n))
                .collect(),
            since: self.since,
            with_history: self.with_history,
        };
        let (bytes, info) = cx.store.bundle_create(cx.actor, &req)?;
        Ok(BundleCreated {
            info: Some(info),
            bundle_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }
}

/// `POST /v1/bundles/apply`: verifies, plans and (unless `dry_run`) applies a bundle (owners;
/// audited as `import`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleApply {
    /// The bundle, base64.
    pub bundle_base64: String,
    /// Refuse a bundle not signed by this key (`tresor-ed25519:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_key: Option<String>,
    /// Plan only.
    #[serde(default)]
    pub dry_run: bool,
}
endpoint!(BundleApply, Post "/v1/bundles/apply" => BundlePlan);

impl Operation for BundleApply {
    fn apply(self, cx: &Context<'_>) -> Result<BundlePlan> {
        let key = self.from_key.as_deref().map(parse_sign_key).transpose()?;
        let bytes = decode_b64("bundle_base64", &self.bundle_base64)?;
        cx.store
            .bundle_apply(cx.actor, &bytes, key.as_ref(), self.dry_run)
    }
}

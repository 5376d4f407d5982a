//! `/v1/audit`: records and the chain check.

use serde::{Deserialize, Serialize};

use super::{Context, Operation, endpoint};
use crate::error::Result;
use crate::protocol::AuditList;
use crate::types::{Action, AuditHead, AuditQuery, HeadSpec, VerifyReport};

/// `GET /v1/audit`: records matching every filter, oldest first (all of them unless
/// `limit`). The core's [`AuditQuery`] is the query string; unknown parameters are refused.
pub type Audit = AuditQuery;
endpoint!(AuditQuery, Get "/v1/audit" => AuditList);

impl Operation for AuditQuery {
    fn apply(self, cx: &Context<'_>) -> Result<AuditList> {
        Ok(AuditList {
            records: cx.store.audit(cx.actor, &self)?,
        })
    }
}

/// `POST /v1/audit/verify`: walks the MAC chain (owners); with `head` (`SEQ:MAC` or `MAC`, as
/// `GET /v1/audit/head` gave it earlier), also fails when the log is shorter than, or forked
/// from, that witnessed head.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditVerify {
    /// A head witnessed earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
}
endpoint!(AuditVerify, Post "/v1/audit/verify" => VerifyReport);

impl Operation for AuditVerify {
    fn apply(self, cx: &Context<'_>) -> Result<VerifyReport> {
        let head = self
            .head
            .as_deref()
            .map(str::parse::<HeadSpec>)
            .transpose()?;
        cx.store.authorize(cx.actor, Action::List, "audit verify")?;
        cx.store.audit_verify_head(head.as_ref())
    }
}

/// `GET /v1/audit/head`: the current seq and chain MAC (owners), to keep outside the store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {}
endpoint!(Head, Get "/v1/audit/head" => AuditHead);

impl Operation for Head {
    fn apply(self, cx: &Context<'_>) -> Result<AuditHead> {
        cx.store.audit_head(cx.actor)
    }
}

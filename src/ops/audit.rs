//! `/v1/audit`: records and the chain check.

use serde::{Deserialize, Serialize};

use super::{Context, Operation, endpoint};
use crate::error::Result;
use crate::protocol::AuditList;
use crate::types::{Action, AuditQuery, VerifyReport};

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

/// `POST /v1/audit/verify`: walks the MAC chain (owners).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditVerify {}
endpoint!(AuditVerify, Post "/v1/audit/verify" => VerifyReport);

impl Operation for AuditVerify {
    fn apply(self, cx: &Context<'_>) -> Result<VerifyReport> {
        cx.store.authorize(cx.actor, Action::List, "audit verify")?;
        cx.store.audit_verify()
    }
}

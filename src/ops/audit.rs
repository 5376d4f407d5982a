//! `/v1/audit`: records and the chain check.

use serde::{Deserialize, Serialize};

use super::{Context, Operation, endpoint};
use crate::error::{Error, Result};
use crate::protocol::AuditList;
use crate::types::{Action, AuditHead, AuditQuery, HeadSpec, PruneReport, VerifyReport};

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

/// `POST /v1/audit/prune`: removes the records older than `before`, or than `keep_days`
/// days (exactly one), leaving a checkpoint so that verify still passes (owners; SPEC §3).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPrune {
    /// Remove records older than this time.
    #[serde(
        default,
        with = "crate::types::time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub before: Option<jiff::Timestamp>,
    /// Remove records older than this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_days: Option<u32>,
}
endpoint!(AuditPrune, Post "/v1/audit/prune" => PruneReport);

impl AuditPrune {
    /// The cutoff time: `before`, or now less `keep_days`.
    ///
    /// # Errors
    /// `InvalidArgument` unless exactly one is given.
    pub fn cutoff(&self) -> Result<jiff::Timestamp> {
        match (self.before, self.keep_days) {
            (Some(t), None) => Ok(t),
            (None, Some(days)) => crate::sys::now()
                .checked_sub(jiff::SignedDuration::from_hours(i64::from(days) * 24))
                .map_err(|_| {
                    Error::invalid(
                        "keep_days",
                        format!("{days} days reaches before year -9999"),
                    )
                }),
            _ => Err(Error::invalid(
                "before",
                "give exactly one of `before` (a time) and `keep_days` (a number of days)",
            )),
        }
    }
}

impl Operation for AuditPrune {
    fn apply(self, cx: &Context<'_>) -> Result<PruneReport> {
        let before = self.cutoff()?;
        cx.store.audit_prune(cx.actor, before)
    }
}

/// The most records one `GET /v1/audit/export` returns.
pub const EXPORT_PAGE_MAX: usize = 10_000;

/// `GET /v1/audit/export`: a page of records for a SIEM, oldest first (owners): those
/// matching the filters after `after_seq`, at most `page` (default and maximum
/// [`EXPORT_PAGE_MAX`]); audited as `export` with the seq range. Ask again with the last
/// seq as `after_seq` until a page comes back short.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditExport {
    /// Records at or after this time.
    #[serde(
        default,
        with = "crate::types::time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<jiff::Timestamp>,
    /// Records before this time.
    #[serde(
        default,
        with = "crate::types::time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<jiff::Timestamp>,
    /// Records after this seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<u64>,
    /// At most this many records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<usize>,
}
endpoint!(AuditExport, Get "/v1/audit/export" => AuditList);

impl Operation for AuditExport {
    fn apply(self, cx: &Context<'_>) -> Result<AuditList> {
        let page = self.page.unwrap_or(EXPORT_PAGE_MAX);
        if page == 0 || page > EXPORT_PAGE_MAX {
            return Err(Error::invalid(
                "page",
                format!("{page}: between 1 and {EXPORT_PAGE_MAX}"),
            ));
        }
        let q = AuditQuery {
            since: self.since,
            until: self.until,
            after_seq: self.after_seq,
            ..AuditQuery::default()
        };
        Ok(AuditList {
            records: cx.store.audit_export(cx.actor, &q, page)?,
        })
    }
}

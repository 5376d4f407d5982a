//! `GET /v1/inbox/key` and `POST /v1/inbox`: served to any known peer, also while locked
//! (SPEC §6). A submission made while locked waits in the store, encrypted to its recipient,
//! and is applied at the next unlock. And `POST /v1/bundles/apply`, whose body (a whole
//! bundle) may exceed the 1 MiB of other requests: for owners only, checked before a byte of
//! it is read.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxState;

use super::http::{ApiError, ApiResult, Body, Caller, blocking, read_body};
use super::state::State;
use crate::error::Error;
use crate::ops::airgap::{BundleApply, InboxReceipt, InboxSubmit};
use crate::ops::{Context, Operation};
use crate::types::{Action, BundlePlan};
use crate::types::{InboxKey, decode_b64};

fn no_identity() -> ApiError {
    ApiError(Error::Locked)
}

/// `GET /v1/inbox/key`.
pub(crate) async fn key(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
) -> ApiResult<Json<InboxKey>> {
    if let Some(store) = caller.store.clone() {
        let actor = caller.actor.clone();
        return Ok(Json(blocking(move || store.inbox_key(&actor)).await?));
    }
    let locked = state.cell.locked().ok_or_else(no_identity)?;
    // A store made before identities existed gets one at its first unlock; until then there
    // is no key to give, and the answer is `locked`.
    let key = blocking(move || locked.inbox_key()).await?;
    key.map(Json).ok_or_else(no_identity)
}

/// `POST /v1/inbox`.
pub(crate) async fn submit(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    Body(body): Body<InboxSubmit>,
) -> ApiResult<Json<InboxReceipt>> {
    let bytes = decode_b64("submission_base64", &body.submission_base64).map_err(ApiError)?;
    let actor = caller.actor.clone();
    if let Some(store) = caller.store.clone() {
        let outcomes = blocking(move || store.inbox_submit(&actor, &bytes)).await?;
        if let Some(w) = state.witness.clone()
            && let Ok(s) = state.cell.store()
        {
            w.note(&s);
        }
        return Ok(Json(InboxReceipt {
            applied: true,
            outcomes,
        }));
    }
    let locked = state.cell.locked().ok_or_else(|| ApiError(Error::Locked))?;
    blocking(move || locked.inbox_drop(&actor, &bytes)).await?;
    tracing::info!(
        uid = caller.actor.uid,
        "inbox submission kept for the next unlock"
    );
    Ok(Json(InboxReceipt {
        applied: false,
        outcomes: Vec::new(),
    }))
}

/// The largest `POST /v1/bundles/apply` body: 256 MiB (a bundle of 100k secrets with their
/// history, base64).
pub(crate) const BUNDLE_BODY_MAX: usize = 256 * 1024 * 1024;

/// `POST /v1/bundles/apply`: owners only, decided (and a refusal audited) before the body is
/// read; then as any operation.
pub(crate) async fn bundle_apply(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    req: axum::extract::Request,
) -> ApiResult<Json<BundlePlan>> {
    let store = caller.store()?;
    let actor = caller.actor.clone();
    let check = store.clone();
    blocking(move || check.authorize(&actor, Action::Import, "bundle")).await?;
    let op: BundleApply = read_body(req, BUNDLE_BODY_MAX).await?;
    let reads = state.batcher.clone();
    let actor = caller.actor;
    let plan = blocking(move || {
        op.apply(&Context {
            store: &store,
            actor: &actor,
            reads: &reads,
        })
    })
    .await?;
    if let Some(w) = state.witness.clone()
        && let Ok(s) = state.cell.store()
    {
        w.note(&s);
    }
    Ok(Json(plan))
}

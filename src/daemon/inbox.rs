//! `GET /v1/inbox/key` and `POST /v1/inbox`: served to any known peer, also while locked
//! (SPEC §6). A submission made while locked waits in the store, encrypted to its recipient,
//! and is applied at the next unlock.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxState;

use super::http::{ApiError, ApiResult, Body, Caller, blocking};
use super::state::State;
use crate::error::Error;
use crate::ops::airgap::{InboxReceipt, InboxSubmit};
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

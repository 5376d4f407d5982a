//! The session endpoints: status, unlock, lock (they act on the daemon, not the store).

use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxState;

use super::http::{ApiError, ApiResult, Body, Caller, blocking};
use super::state::State;
use crate::Passphrase;
use crate::error::Error;
use crate::ops::session::Unlock;
use crate::protocol::{API_VERSION, Status};
use crate::types::{Action, ListFilter};

fn status_of(state: &State, caller: Option<&Caller>) -> Status {
    let store = state.cell.store().ok();
    let known = caller.filter(|c| c.store.is_some());
    let degraded = state.cell.degraded();
    Status {
        locked: store.is_none(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        api: API_VERSION,
        store_id: state.cell.store_id(),
        // What the caller may see: the whole store for an owner, the secrets its grants
        // reach (as `ls` lists them) for anyone else.
        secrets: store.and_then(|s| match known {
            Some(c) if !c.is_owner() => s
                .list(&c.actor, &ListFilter::default())
                .ok()
                .map(|l| u64::try_from(l.len()).unwrap_or(u64::MAX)),
            _ => s.count().ok(),
        }),
        since: state.since(),
        principal: known.map(|c| c.actor.principal.clone()),
        role: known.and_then(|c| c.actor.role),
        degraded: degraded.is_some(),
        degraded_reason: degraded.map(|d| d.reason),
    }
}

/// `GET /v1/status`.
pub(crate) async fn status(AxState(state): AxState<Arc<State>>, caller: Caller) -> Json<Status> {
    Json(status_of(&state, Some(&caller)))
}

/// `POST /v1/unlock`: owners only; failures back off (429) and are staged for the audit log.
pub(crate) async fn unlock(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    Body(body): Body<Unlock>,
) -> ApiResult<Json<Status>> {
    if let Some(store) = caller.store.clone() {
        let actor = caller.actor.clone();
        blocking(move || store.authorize(&actor, Action::Unlock, "unlock")).await?;
        return Ok(Json(status_of(&state, Some(&caller))));
    }
    if !caller.is_owner() {
        return Err(ApiError(Error::denied(
            "only an owner may unlock the store",
        )));
    }
    let pass = Passphrase::new(body.passphrase.expose().as_bytes().to_vec());
    let (uid, gid) = (caller.actor.uid, caller.actor.gid);
    state.unlock(caller.actor.clone(), pass).await?;
    // The answer names the unlocking owner as `status` would now, authenticated by the
    // store that was just opened (not by the role remembered while it was locked).
    let Ok(store) = state.cell.store() else {
        return Ok(Json(status_of(&state, None)));
    };
    let opened = store.clone();
    let principal = blocking(move || {
        let admission = opened.admit(uid, gid)?;
        opened.authenticate_admitted(&admission, None)
    })
    .await;
    // The store is unlocked either way; a peer the opened store does not name is answered
    // as the locked daemon knew it, not with an error for an unlock that succeeded.
    let Ok(principal) = principal else {
        return Ok(Json(status_of(&state, None)));
    };
    let mut actor = caller.actor;
    actor.principal = principal.name;
    actor.role = principal.kind.role();
    let known = Caller {
        actor,
        store: Some(store),
    };
    Ok(Json(status_of(&state, Some(&known))))
}

/// `POST /v1/lock`: owners only.
pub(crate) async fn lock(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
) -> ApiResult<Json<Status>> {
    let store = caller.store()?;
    let actor = caller.actor.clone();
    blocking(move || store.authorize(&actor, Action::Lock, "lock")).await?;
    // The handler's own reference must go, or the lock would wait for itself.
    let Caller { actor, store } = caller;
    drop(store);
    state.lock(Some(&actor)).await?;
    Ok(Json(status_of(&state, None)))
}

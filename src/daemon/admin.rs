//! Handlers of status, unlock/lock, audit and principals.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxState;

use super::http::{ApiError, ApiResult, Body, Caller, Name, Params, blocking};
use super::state::State;
use crate::error::Error;
use crate::protocol::{
    API_VERSION, AuditList, AuditParams, Deleted, PrincipalList, PrincipalOp, PrincipalResponse,
    SecretText, Status, UnlockRequest,
};
use crate::types::{Action, VerifyReport};
use crate::types::{Passphrase, Principal, PrincipalSpec};

fn status_of(state: &State, caller: Option<&Caller>) -> Status {
    let store = state.cell.store().ok();
    let known = caller.filter(|c| c.store.is_some());
    Status {
        locked: store.is_none(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        api: API_VERSION,
        store_id: state.cell.store_id(),
        secrets: store.and_then(|s| s.count().ok()),
        since: state.since(),
        principal: known.map(|c| c.actor.principal.clone()),
        role: known.and_then(|c| c.actor.role),
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
    Body(body): Body<UnlockRequest>,
) -> ApiResult<Json<Status>> {
    if let Some(store) = caller.store.clone() {
        let actor = caller.actor.clone();
        blocking(move || store.authorize_admin(&actor, Action::Unlock, "unlock")).await?;
        return Ok(Json(status_of(&state, Some(&caller))));
    }
    if !caller.is_owner() {
        return Err(ApiError(Error::denied(
            "only an owner may unlock the store",
        )));
    }
    let pass = Passphrase::new(body.passphrase.expose().as_bytes().to_vec());
    state.unlock(caller.actor, pass).await?;
    Ok(Json(status_of(&state, None)))
}

/// `POST /v1/lock`: owners only.
pub(crate) async fn lock(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
) -> ApiResult<Json<Status>> {
    let store = caller.store()?;
    let actor = caller.actor.clone();
    blocking(move || store.authorize_admin(&actor, Action::Lock, "lock")).await?;
    // The handler's own reference must go, or the lock would wait for itself.
    let Caller { actor, store } = caller;
    drop(store);
    state.lock(Some(&actor)).await?;
    Ok(Json(status_of(&state, None)))
}

/// `GET /v1/audit`.
pub(crate) async fn audit(
    caller: Caller,
    Params(q): Params<AuditParams>,
) -> ApiResult<Json<AuditList>> {
    let store = caller.store()?;
    let actor = caller.actor;
    let records = blocking(move || store.audit(&actor, &q)).await?;
    Ok(Json(AuditList { records }))
}

/// `POST /v1/audit/verify`: owners only.
pub(crate) async fn audit_verify(caller: Caller) -> ApiResult<Json<VerifyReport>> {
    let store = caller.store()?;
    let actor = caller.actor;
    Ok(Json(
        blocking(move || {
            store.authorize_admin(&actor, Action::List, "audit verify")?;
            store.audit_verify()
        })
        .await?,
    ))
}

/// `GET /v1/principals`.
pub(crate) async fn principals(caller: Caller) -> ApiResult<Json<PrincipalList>> {
    let store = caller.store()?;
    let actor = caller.actor;
    let principals = blocking(move || store.principals(&actor)).await?;
    Ok(Json(PrincipalList { principals }))
}

/// `GET /v1/principals/{name}`.
pub(crate) async fn principal_get(caller: Caller, Name(name): Name) -> ApiResult<Json<Principal>> {
    let store = caller.store()?;
    let actor = caller.actor;
    Ok(Json(
        blocking(move || store.principal_get(&actor, &name)).await?,
    ))
}

/// `PUT /v1/principals/{name}`: one operation (add, grant, revoke, team_add, team_join,
/// team_leave).
pub(crate) async fn principal_put(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    Name(name): Name,
    Body(op): Body<PrincipalOp>,
) -> ApiResult<Json<PrincipalResponse>> {
    let store = caller.store()?;
    let actor = caller.actor;
    let st = Arc::clone(&store);
    let (principal, token) = blocking(move || {
        let s = &st;
        Ok(match op {
            PrincipalOp::Add {
                role,
                uid,
                gid,
                token,
            } => {
                let spec = PrincipalSpec {
                    name,
                    role,
                    uid,
                    gid,
                    token,
                };
                let (p, t) = s.principal_add(&actor, &spec)?;
                (
                    p,
                    t.and_then(|t| t.as_str().map(|x| SecretText::new(x.to_owned()))),
                )
            }
            PrincipalOp::Grant { .. } => {
                let g = op.grant().ok_or_else(|| Error::invalid("op", "grant"))?;
                (s.grant(&actor, &name, &g)?, None)
            }
            PrincipalOp::Revoke { pattern } => (s.revoke(&actor, &name, &pattern)?, None),
            PrincipalOp::TeamAdd => (s.team_add(&actor, &name)?, None),
            PrincipalOp::TeamJoin { member } => (s.team_join(&actor, &name, &member)?, None),
            PrincipalOp::TeamLeave { member } => (s.team_leave(&actor, &name, &member)?, None),
        })
    })
    .await?;
    state.remember_peers(&store);
    Ok(Json(PrincipalResponse { principal, token }))
}

/// `DELETE /v1/principals/{name}`.
pub(crate) async fn principal_delete(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    Name(name): Name,
) -> ApiResult<Json<Deleted>> {
    let store = caller.store()?;
    let actor = caller.actor;
    let (st, n) = (Arc::clone(&store), name.clone());
    blocking(move || st.principal_remove(&actor, &n)).await?;
    state.remember_peers(&store);
    Ok(Json(Deleted { deleted: name }))
}

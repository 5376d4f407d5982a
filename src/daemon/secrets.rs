//! Handlers of `/v1/secrets`, `/v1/check` and `/v1/env`: translate, call the store, answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxState;

use super::http::{ApiError, ApiResult, Body, Caller, Name, Params, blocking};
use super::state::State;
use crate::error::Error;
use crate::protocol::{
    CheckRequest, Deleted, EnvRequest, EnvResponse, ListQuery, RollbackRequest, ScopeQuery,
    SecretList, SetBody, ValueQuery, ValueResponse, encode_bytes,
};
use crate::store::ReadRequest;
use crate::types::{CheckResult, SecretMeta};

/// `GET /v1/secrets`.
pub(crate) async fn list(
    caller: Caller,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<SecretList>> {
    let store = caller.store()?;
    let actor = caller.actor;
    let secrets = blocking(move || store.list(&actor, &q.into())).await?;
    Ok(Json(SecretList { secrets }))
}

/// `GET /v1/secrets/{name}`.
pub(crate) async fn show(
    caller: Caller,
    Name(name): Name,
    Params(q): Params<ScopeQuery>,
) -> ApiResult<Json<SecretMeta>> {
    let store = caller.store()?;
    let actor = caller.actor;
    // Off the async workers: a denial is audited with a durable commit.
    let meta = blocking(move || store.show(&actor, &name, q.scope.as_ref())).await?;
    Ok(Json(meta))
}

/// `GET /v1/secrets/{name}/value`: through the group commit.
pub(crate) async fn value(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    Name(name): Name,
    Params(q): Params<ValueQuery>,
) -> ApiResult<Json<ValueResponse>> {
    caller.store()?;
    let req = ReadRequest {
        actor: caller.actor,
        name,
        scope: q.scope,
        version: q.version,
        field: q.field,
    };
    let v = state
        .batcher
        .read(vec![req])
        .await
        .pop()
        .unwrap_or(Err(Error::Internal {
            message: "the committer returned nothing".into(),
            source: None,
        }))?;
    Ok(Json(ValueResponse::from(&v)))
}

/// `PUT /v1/secrets/{name}`.
pub(crate) async fn put(
    caller: Caller,
    Name(name): Name,
    Body(body): Body<SetBody>,
) -> ApiResult<Json<SecretMeta>> {
    let store = caller.store()?;
    let req = body.into_request()?;
    let actor = caller.actor;
    Ok(Json(blocking(move || store.set(&actor, &name, req)).await?))
}

/// `DELETE /v1/secrets/{name}`.
pub(crate) async fn delete(
    caller: Caller,
    Name(name): Name,
    Params(q): Params<ScopeQuery>,
) -> ApiResult<Json<Deleted>> {
    let store = caller.store()?;
    let actor = caller.actor;
    let shown = match &q.scope {
        Some(s) => format!("{s}/{name}"),
        None => name.clone(),
    };
    blocking(move || store.delete(&actor, &name, q.scope.as_ref(), q.force.unwrap_or(false)))
        .await?;
    Ok(Json(Deleted { deleted: shown }))
}

/// `POST /v1/secrets/{name}/rollback`.
pub(crate) async fn rollback(
    caller: Caller,
    Name(name): Name,
    Body(body): Body<RollbackRequest>,
) -> ApiResult<Json<SecretMeta>> {
    let store = caller.store()?;
    let actor = caller.actor;
    Ok(Json(
        blocking(move || store.rollback(&actor, &name, body.scope.as_ref(), body.to)).await?,
    ))
}

/// `POST /v1/check`.
pub(crate) async fn check(
    caller: Caller,
    Body(body): Body<CheckRequest>,
) -> ApiResult<Json<CheckResult>> {
    let store = caller.store()?;
    let actor = caller.actor;
    let result = blocking(move || store.check(&actor, &body.required)).await?;
    Ok(Json(result))
}

/// `POST /v1/env`: every secret read in one group commit, each audited; the first failure
/// fails the request (a half-filled environment is worse than none).
pub(crate) async fn env(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    Body(body): Body<EnvRequest>,
) -> ApiResult<Json<EnvResponse>> {
    caller.store()?;
    let mut vars = Vec::with_capacity(body.secrets.len());
    let mut reqs = Vec::with_capacity(body.secrets.len());
    let mut seen = BTreeSet::new();
    for item in &body.secrets {
        let spec = item.resolve()?;
        let var = spec.env.unwrap_or_default();
        if !seen.insert(var.clone()) {
            return Err(ApiError(Error::invalid(
                "env",
                format!("{var} is asked for twice"),
            )));
        }
        vars.push(var);
        reqs.push(ReadRequest {
            actor: caller.actor.clone(),
            name: spec.name,
            scope: spec.scope,
            version: spec.version,
            field: spec.field,
        });
    }
    let results = state.batcher.read(reqs).await;
    let mut out = EnvResponse {
        env: BTreeMap::new(),
        env_base64: BTreeMap::new(),
    };
    for (var, r) in vars.into_iter().zip(results) {
        match encode_bytes(&r?.value) {
            (Some(t), _) => out.env.insert(var, t),
            (_, Some(b)) => out.env_base64.insert(var, b),
            (None, None) => None,
        };
    }
    Ok(Json(out))
}

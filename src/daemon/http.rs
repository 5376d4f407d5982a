//! HTTP plumbing: the peer of a connection, the caller of a request, JSON bodies with a size
//! limit, query strings and path names that fail as JSON errors, and `Error` → response.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use super::state::State;
use crate::error::Error;
use crate::protocol::{ErrorResponse, MAX_BODY};
use crate::store::{PeerAdmission, Store};
use crate::types::{Actor, Channel, Role};

/// The kernel's view of the peer of one connection, attached to each of its requests, with
/// what the store decided about it when it connected (`None` while locked).
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    pub exe: Option<String>,
    pub admission: Option<Arc<PeerAdmission>>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub(crate) struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = %code, error = %self.0, "request failed");
        } else {
            tracing::debug!(code = %code, "request refused");
        }
        let mut resp = (status, axum::Json(ErrorResponse::from(&self.0))).into_response();
        if let Error::TooManyRequests { retry_after_ms } = self.0 {
            let secs = retry_after_ms.div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Handler results.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Who is asking: the peer mapped to a principal (with its bearer token, if any). While the
/// store is locked, `store` is `None` and the role comes from the last session.
pub(crate) struct Caller {
    pub actor: Actor,
    pub store: Option<Arc<Store>>,
}

impl Caller {
    /// The unlocked store, or `locked`.
    pub(crate) fn store(&self) -> Result<Arc<Store>, ApiError> {
        self.store.clone().ok_or(ApiError(Error::Locked))
    }
}

fn bearer(parts: &Parts) -> Result<Option<&[u8]>, ApiError> {
    let Some(v) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.as_bytes();
    match v.strip_prefix(b"Bearer ") {
        Some(t) if !t.is_empty() => Ok(Some(t)),
        _ => Err(ApiError(Error::Unauthenticated {
            reason: "the Authorization header must be `Bearer <token>`".into(),
        })),
    }
}

impl FromRequestParts<Arc<State>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<State>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<Peer>().cloned().ok_or_else(|| {
            ApiError(Error::Internal {
                message: "request without a peer".into(),
                source: None,
            })
        })?;
        let refused = |e: Error| {
            // Unknown or empty tokens, a token from the wrong uid: summarized in the audit
            // log (SPEC §3).
            if let Error::Unauthenticated { reason } = &e {
                let _logged = state.refusals.note(&peer, reason);
            }
            ApiError(e)
        };
        let token = bearer(parts).map_err(|e| refused(e.0))?;
        let mut actor = Actor {
            principal: String::new(),
            role: None,
            uid: peer.uid,
            gid: peer.gid,
            pid: peer.pid,
            exe: peer.exe.clone(),
            channel: Channel::Socket,
        };
        if let Ok(store) = state.cell.store() {
            // The connection's admission already authenticated a peer without a token; a
            // request is authenticated here only with a token or when principals changed.
            let p = match &peer.admission {
                Some(admission) => store.authenticate_admitted(admission, token),
                None => store.authenticate(peer.uid, peer.gid, token),
            }
            .map_err(refused)?;
            // Only an authenticated request keeps the store from the idle lock.
            state.touch();
            actor.principal = p.name;
            actor.role = p.kind.role();
            return Ok(Self {
                actor,
                store: Some(store),
            });
        }
        actor.role = state.locked_role(peer.uid, peer.gid);
        actor.principal =
            crate::sys::user_name(peer.uid).unwrap_or_else(|| format!("uid-{}", peer.uid));
        if actor.role.is_none() {
            return Err(refused(Error::Unauthenticated {
                reason: format!("uid {} is not a known principal", peer.uid),
            }));
        }
        Ok(Self { actor, store: None })
    }
}

impl Caller {
    /// Whether the caller is an owner.
    pub(crate) fn is_owner(&self) -> bool {
        self.actor.role == Some(Role::Owner)
    }
}

/// A JSON request body: over [`MAX_BODY`] is `payload_too_large` (by `Content-Length` before
/// reading, else as soon as the limit is passed); bad JSON and unknown fields are
/// `invalid_argument` with the line and column.
pub(crate) struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_body(req, MAX_BODY).await.map(Body)
    }
}

/// Reads and parses a JSON body of at most `limit` bytes (see [`Body`]). Only routes that
/// check the caller first (owners applying a bundle) pass more than [`MAX_BODY`].
pub(crate) async fn read_body<T: DeserializeOwned>(
    req: Request,
    limit: usize,
) -> Result<T, ApiError> {
    {
        let is_post = req.method() == axum::http::Method::POST;
        let too_large = |size: u64| {
            ApiError(Error::PayloadTooLarge {
                size,
                limit: limit as u64,
            })
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = declared.filter(|n| *n > limit as u64) {
            return Err(too_large(n));
        }
        let bytes = match Limited::new(req.into_body(), limit).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(too_large(limit as u64 + 1));
            }
            Err(e) => {
                return Err(ApiError(Error::invalid(
                    "body",
                    format!("reading the body failed: {e}"),
                )));
            }
        };
        // A POST without a body is an empty object: `curl -X POST …/v1/audit/verify` needs no
        // `-d '{}'`, and one that lacks a required field says which. A PUT replaces something
        // and must say with what: no body is malformed.
        let bytes: &[u8] = if bytes.is_empty() && is_post {
            b"{}"
        } else {
            &bytes
        };
        parse_json(bytes)
    }
}

/// Parses JSON, keeping serde's message only where it names fields, never where it could
/// quote a value back. The body's shape is checked first ([`crate::protocol::strict`]): an
/// object, no `null`, no struct written as an array.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    use crate::protocol::strict;
    if let Some(v) = strict::check(bytes) {
        return Err(ApiError(Error::invalid(v.field, v.reason)));
    }
    // `1.0` is an integer to JSON Schema (and so to openapi.json), not to serde. Rare: only
    // such bodies take the detour through a JSON tree.
    if strict::has_integral_float(bytes)
        && let Ok(v) = strict::integers_normalized(bytes)
        && let Ok(t) = serde_json::from_value(v)
    {
        return Ok(t);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let (line, col) = (e.line(), e.column());
        let msg = e.to_string();
        let what = match e.classify() {
            serde_json::error::Category::Data
                if ["unknown field", "missing field", "unknown variant"]
                    .iter()
                    .any(|p| msg.starts_with(p)) =>
            {
                msg.split(" at line").next().unwrap_or(&msg).to_owned()
            }
            serde_json::error::Category::Data => {
                "a value has the wrong type or is out of range".into()
            }
            serde_json::error::Category::Eof => "the JSON ends early".into(),
            _ => "not valid JSON".into(),
        };
        ApiError(Error::invalid(
            "body",
            format!("{what} at line {line} column {col}"),
        ))
    })
}

/// A query string that fails as `invalid_argument` (unknown parameters included).
pub(crate) struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Self(q.0))
            .map_err(|e| ApiError(Error::invalid("query", e.body_text())))
    }
}

/// The `{name}` path segment, percent-decoded; not UTF-8 is `invalid_argument`.
pub(crate) struct Name(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Name {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_| {
                ApiError(Error::invalid(
                    "name",
                    "the path segment is not percent-encoded UTF-8",
                ))
            })
    }
}

/// Runs blocking store work (commits, scans) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(Error::internal("a worker task failed", e)))?
        .map_err(ApiError)
}

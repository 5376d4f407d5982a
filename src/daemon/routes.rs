//! The router of API v1, built from the operation list ([`crate::ops::operations!`]): every
//! [`Operation`] is served by one generic handler, the session endpoints (status, unlock,
//! lock) by `admin.rs`. A test checks [`ROUTES`] against the committed `openapi.json` both
//! ways.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State as AxState};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, on};
use zeroize::Zeroizing;

use super::http::{ApiError, ApiResult, Body, Caller, Name, Params, blocking};
use super::state::State;
use super::{admin, backup};
use crate::error::Error;
use crate::ops::{self, Context, Endpoint, Operation, operations, session};

pub use crate::ops::ROUTES;

/// The OpenAPI 3 document, as committed at the repository root.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Decodes `O` from the request (path name, then query string or JSON body), runs it off the
/// async workers as the caller, and answers its output as JSON. Value reads go through the
/// group commit; an operation that is one value read of a local secret
/// ([`Operation::value_read`]) runs on this task and awaits its commit instead.
async fn operation<O: Operation>(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    let (mut parts, body) = req.into_parts();
    let name = if O::PATH.contains("{name}") {
        Some(Name::from_request_parts(&mut parts, &state).await?.0)
    } else {
        None
    };
    let mut op: O = if O::METHOD.has_body() {
        let req = Request::from_parts(parts, body);
        Body::<O>::from_request(req, &state).await?.0
    } else {
        Params::<O>::from_request_parts(&mut parts, &state).await?.0
    };
    if let Some(name) = name {
        op.set_path_name(name);
    }
    let store = caller.store()?;
    if let Some(read) = op.value_read(&store, &caller.actor) {
        // One value read: read on this task, await the group commit (the committer witnesses
        // the new head), answer — no blocking thread held while the commit is waited for.
        let v = state
            .batcher
            .read_async(store, vec![read.request])
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(Error::Internal {
                    message: "the read returned nothing".into(),
                    source: None,
                })
            })?;
        return wiped_json(&(read.output)(&v));
    }
    let reads = state.batcher.clone();
    let witness = state.witness.clone();
    let actor = caller.actor;
    let out = blocking(move || {
        let out = op.apply(&Context {
            store: &store,
            actor: &actor,
            reads: &reads,
        });
        // Denials are audited too: witness the head whatever the outcome.
        if let Some(w) = witness {
            w.note(&store);
        }
        out
    })
    .await?;
    wiped_json(&out)
}

/// The body of a response, wiped when hyper has sent it and dropped it (SPEC §4.6).
struct WipedBody(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for WipedBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Counts the bytes a serialization would write.
struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Answers `out` as JSON from a zeroizing buffer. Every operation's output goes this way (it
/// costs one extra counting pass): values, environments and exports carry plaintext, and the
/// buffer is sized exactly first, so that no growth leaves an unwiped copy behind in freed
/// memory. `Bytes::from_owner` drops (and so wipes) the buffer once hyper has written it.
fn wiped_json<T: serde::Serialize>(out: &T) -> ApiResult<Response> {
    let failed = |e: serde_json::Error| {
        ApiError(Error::Internal {
            message: format!("cannot encode the response: {e}"),
            source: None,
        })
    };
    let mut count = Count(0);
    serde_json::to_writer(&mut count, out).map_err(failed)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(count.0));
    serde_json::to_writer(&mut *buf, out).map_err(failed)?;
    let body = axum::body::Body::from(axum::body::Bytes::from_owner(WipedBody(buf)));
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

fn method_of<E: Endpoint>() -> axum::routing::MethodFilter {
    use axum::routing::MethodFilter;
    match E::METHOD {
        ops::Method::Get => MethodFilter::GET,
        ops::Method::Put => MethodFilter::PUT,
        ops::Method::Post => MethodFilter::POST,
        ops::Method::Delete => MethodFilter::DELETE,
    }
}

fn route<E: Endpoint>(r: Router<Arc<State>>, h: MethodRouter<Arc<State>>) -> Router<Arc<State>> {
    r.route(E::PATH, h)
}

macro_rules! register {
    ($($op:ty),*) => {
        fn register_operations(mut r: Router<Arc<State>>) -> Router<Arc<State>> {
            $( r = route::<$op>(r, on(method_of::<$op>(), operation::<$op>)); )*
            r
        }
    };
}
operations!(register);

/// Served to known peers while unlocked (while locked only status and unlock are).
async fn openapi(caller: Caller) -> Result<impl IntoResponse, ApiError> {
    caller.store()?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    ))
}

/// 404 for a path no route serves. A secret name with a raw `/` lands here
/// (`/v1/secrets/db/main`), so the message says how to send it.
async fn no_route(uri: Uri) -> ApiError {
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/v1/secrets/") {
        let name = ["/value", "/rollback"]
            .iter()
            .find_map(|suffix| rest.strip_suffix(suffix))
            .unwrap_or(rest);
        if name.contains('/') {
            let encoded = name.replace('/', "%2F");
            return ApiError(Error::not_found(
                "route",
                format!(
                    "{path} (a secret name containing `/` goes in the path percent-encoded: \
                     encode `/` as %2F, as in /v1/secrets/{encoded})"
                ),
            ));
        }
    }
    ApiError(Error::not_found("route", path.to_owned()))
}

async fn no_method(method: Method, uri: Uri) -> Response {
    let mut resp = ApiError(Error::invalid(
        "method",
        format!("{method} is not allowed on {}", uri.path()),
    ))
    .into_response();
    *resp.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    resp
}

/// The router of every route in [`ROUTES`], with JSON 404/405 fallbacks.
pub(crate) fn router(state: Arc<State>) -> Router {
    let r = Router::new();
    let r = route::<session::Status>(r, on(method_of::<session::Status>(), admin::status));
    let r = route::<session::Unlock>(r, on(method_of::<session::Unlock>(), admin::unlock));
    let r = route::<session::Lock>(r, on(method_of::<session::Lock>(), admin::lock));
    let r = r.route(ops::OPENAPI_PATH, axum::routing::get(openapi));
    let r = route::<ops::backup::Backup>(r, axum::routing::get(backup::backup));
    let r = route::<ops::airgap::InboxKeyGet>(
        r,
        on(method_of::<ops::airgap::InboxKeyGet>(), super::inbox::key),
    );
    let r = route::<ops::airgap::InboxSubmit>(
        r,
        on(
            method_of::<ops::airgap::InboxSubmit>(),
            super::inbox::submit,
        ),
    );
    let r = route::<ops::airgap::BundleApply>(
        r,
        on(
            method_of::<ops::airgap::BundleApply>(),
            super::inbox::bundle_apply,
        ),
    );
    register_operations(r)
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(state)
}

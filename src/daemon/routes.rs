//! The route table of API v1. The router is built from [`ROUTES`] alone, and a test checks
//! [`ROUTES`] against the committed `openapi.json` both ways.

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::{MethodRouter, delete, get, post, put};

use super::http::ApiError;
use super::state::State;
use super::{admin, secrets};
use crate::error::Error;

/// Every (method, path) the daemon serves, in OpenAPI path syntax.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/status"),
    ("POST", "/v1/unlock"),
    ("POST", "/v1/lock"),
    ("GET", "/v1/secrets"),
    ("GET", "/v1/secrets/{name}"),
    ("PUT", "/v1/secrets/{name}"),
    ("DELETE", "/v1/secrets/{name}"),
    ("GET", "/v1/secrets/{name}/value"),
    ("POST", "/v1/secrets/{name}/rollback"),
    ("POST", "/v1/check"),
    ("POST", "/v1/env"),
    ("GET", "/v1/audit"),
    ("POST", "/v1/audit/verify"),
    ("GET", "/v1/principals"),
    ("GET", "/v1/principals/{name}"),
    ("PUT", "/v1/principals/{name}"),
    ("DELETE", "/v1/principals/{name}"),
    ("GET", "/v1/openapi.json"),
];

/// The OpenAPI 3 document, as committed at the repository root.
pub const OPENAPI: &str = include_str!("../../openapi.json");

fn handler(method: &str, path: &str) -> Option<MethodRouter<Arc<State>>> {
    Some(match (method, path) {
        ("GET", "/v1/status") => get(admin::status),
        ("POST", "/v1/unlock") => post(admin::unlock),
        ("POST", "/v1/lock") => post(admin::lock),
        ("GET", "/v1/secrets") => get(secrets::list),
        ("GET", "/v1/secrets/{name}") => get(secrets::show),
        ("PUT", "/v1/secrets/{name}") => put(secrets::put),
        ("DELETE", "/v1/secrets/{name}") => delete(secrets::delete),
        ("GET", "/v1/secrets/{name}/value") => get(secrets::value),
        ("POST", "/v1/secrets/{name}/rollback") => post(secrets::rollback),
        ("POST", "/v1/check") => post(secrets::check),
        ("POST", "/v1/env") => post(secrets::env),
        ("GET", "/v1/audit") => get(admin::audit),
        ("POST", "/v1/audit/verify") => post(admin::audit_verify),
        ("GET", "/v1/principals") => get(admin::principals),
        ("GET", "/v1/principals/{name}") => get(admin::principal_get),
        ("PUT", "/v1/principals/{name}") => put(admin::principal_put),
        ("DELETE", "/v1/principals/{name}") => delete(admin::principal_delete),
        ("GET", "/v1/openapi.json") => get(openapi),
        _ => return None,
    })
}

async fn openapi(_caller: super::http::Caller) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError(Error::not_found("route", uri.path().to_owned()))
}

async fn no_method(method: Method, uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
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
    let mut r = Router::new();
    for (method, path) in ROUTES {
        let h = handler(method, path).expect("every entry of ROUTES has a handler");
        r = r.route(path, h);
    }
    r.fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(state)
}

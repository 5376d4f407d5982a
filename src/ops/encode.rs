//! A request on the wire: the path with its `{name}` segment percent-encoded, then the query
//! string (`GET`, `DELETE`) or the JSON body (`PUT`, `POST`), all from the request type's
//! serde form — the daemon decodes the same form with the same derive.

use std::fmt::Write as _;

use serde_json::Value;

use super::Endpoint;
use crate::error::{Error, Result};

/// Percent-encodes everything but RFC 3986's unreserved characters, so that a secret name
/// with `/` stays one path segment.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn query_string(params: &serde_json::Map<String, Value>) -> Result<String> {
    let mut q = String::new();
    for (k, v) in params {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(Error::invalid(
                    k,
                    "a query parameter is a single value, not a list or an object",
                ));
            }
        };
        q.push(if q.is_empty() { '?' } else { '&' });
        q.push_str(k);
        q.push('=');
        q.push_str(&encode_component(&text));
    }
    Ok(q)
}

/// The request line's target (path and query) and the body of `req`.
///
/// # Errors
/// `InvalidArgument` when a query parameter is not a single value; `Internal` when the request
/// does not serialize.
pub fn encode_request<E: Endpoint>(req: &E) -> Result<(String, Option<Vec<u8>>)> {
    let mut path = E::PATH.to_owned();
    if let Some(name) = req.path_name() {
        path = path.replace("{name}", &encode_component(name));
    }
    if E::METHOD.has_body() {
        let body = serde_json::to_vec(req).map_err(|e| Error::internal("cannot encode", e))?;
        return Ok((path, Some(body)));
    }
    match serde_json::to_value(req).map_err(|e| Error::internal("cannot encode", e))? {
        Value::Object(params) => path.push_str(&query_string(&params)?),
        Value::Null => {}
        _ => {
            return Err(Error::Internal {
                message: format!("the parameters of {} are not an object", E::PATH),
                source: None,
            });
        }
    }
    Ok((path, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::secrets::{GetValue, Show};
    use crate::types::Scope;

    #[test]
    fn names_stay_one_segment() {
        assert_eq!(encode_component("ci/aws.key"), "ci%2Faws.key");
        assert_eq!(encode_component("team:x"), "team%3Ax");
        let show = Show {
            name: "db/main".into(),
            scope: Some(Scope::User("bob".into())),
        };
        let (target, body) = encode_request(&show).expect("encodes");
        assert_eq!(target, "/v1/secrets/db%2Fmain?scope=user%3Abob");
        assert!(body.is_none());
        let v = GetValue {
            name: "a".into(),
            version: Some(3),
            ..GetValue::default()
        };
        assert_eq!(
            encode_request(&v).expect("encodes").0,
            "/v1/secrets/a/value?version=3"
        );
    }
}

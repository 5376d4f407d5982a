//! The error body of API v1: `{"error": {"code": C, "message": M, ...context}}`.
//!
//! Besides the fixed `code` and `message`, the body carries the context fields of the error's
//! variant (the references blocking a delete, the scopes of an ambiguous name, the wait before
//! a retry, ...) so that the client rebuilds the very same [`Error`] variant the daemon had.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode};

/// The whole error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorBody,
}

/// One error: a stable snake_case code, a human message and the variant's context.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One of SPEC §6's codes.
    pub code: String,
    /// The error's message (lowercase, never a value).
    pub message: String,
    /// `not_found`: what kind of thing was missing (`secret`, `version`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// `not_found`, `ambiguous`: the name looked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `invalid_argument`: the field, option or line that was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `invalid_argument`, `permission_denied`, `unauthenticated`, `conflict`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `conflict`: the references that block the operation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// `ambiguous`: the scopes holding the name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `too_many_requests`: how long to wait (also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// `payload_too_large`: the size seen and the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// `payload_too_large`: the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// `integrity`: the table and the record that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// `integrity`: the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// `NotFound::what` is a `&'static str`; the kinds the store uses map back to themselves.
fn static_what(what: &str) -> &'static str {
    const KNOWN: [&str; 10] = [
        "secret",
        "version",
        "field",
        "principal",
        "grant",
        "team",
        "team member",
        "keyslot",
        "store",
        "route",
    ];
    KNOWN.into_iter().find(|k| *k == what).unwrap_or("resource")
}

impl ErrorBody {
    /// The body of `e`, with its variant's context.
    pub fn from_error(e: &Error) -> Self {
        let mut b = Self {
            code: e.code().as_str().to_owned(),
            message: e.to_string(),
            ..Self::default()
        };
        match e {
            Error::NotFound { what, name } => {
                b.what = Some((*what).to_owned());
                b.name = Some(name.clone());
            }
            Error::PermissionDenied { reason }
            | Error::Unauthenticated { reason }
            | Error::Unavailable { reason } => {
                b.reason = Some(reason.clone());
            }
            Error::InvalidArgument { field, reason } => {
                b.field = Some(field.clone());
                b.reason = Some(reason.clone());
            }
            Error::Conflict { reason, references } => {
                b.reason = Some(reason.clone());
                b.references.clone_from(references);
            }
            Error::Ambiguous { name, scopes } => {
                b.name = Some(name.clone());
                b.scopes.clone_from(scopes);
            }
            Error::PayloadTooLarge { size, limit } => {
                b.size = Some(*size);
                b.limit = Some(*limit);
            }
            Error::TooManyRequests { retry_after_ms } => b.retry_after_ms = Some(*retry_after_ms),
            Error::Integrity { table, record } => {
                b.table = Some(table.clone());
                b.record = Some(record.clone());
            }
            Error::Internal { message, .. } => b.reason = Some(message.clone()),
            _ => {}
        }
        b
    }

    /// Rebuilds the [`Error`] variant this body describes. An unknown code is `Internal`.
    pub fn into_error(self) -> Error {
        let Some(code) = ErrorCode::parse(&self.code) else {
            return Error::Internal {
                message: format!("unknown error code {:?}: {}", self.code, self.message),
                source: None,
            };
        };
        // The message is the variant's whole Display (`unauthenticated: why`); rebuilding the
        // variant from it would repeat the prefix, so without a `reason` the prefix goes.
        let reason = self
            .reason
            .unwrap_or_else(|| Error::from_code(code, &self.message).reason_text());
        match code {
            ErrorCode::NotFound => Error::NotFound {
                what: static_what(self.what.as_deref().unwrap_or("")),
                name: self.name.unwrap_or(self.message),
            },
            ErrorCode::PermissionDenied => Error::PermissionDenied { reason },
            ErrorCode::Unauthenticated if self.message == "wrong passphrase" => {
                Error::WrongPassphrase
            }
            ErrorCode::Unauthenticated => Error::Unauthenticated { reason },
            ErrorCode::InvalidArgument => Error::InvalidArgument {
                field: self.field.unwrap_or_else(|| "request".into()),
                reason,
            },
            ErrorCode::Conflict => Error::Conflict {
                reason,
                references: self.references,
            },
            ErrorCode::Ambiguous => Error::Ambiguous {
                name: self.name.unwrap_or(self.message),
                scopes: self.scopes,
            },
            ErrorCode::PayloadTooLarge => Error::PayloadTooLarge {
                size: self.size.unwrap_or(0),
                limit: self.limit.unwrap_or(0),
            },
            ErrorCode::TooManyRequests => Error::TooManyRequests {
                retry_after_ms: self.retry_after_ms.unwrap_or(0),
            },
            ErrorCode::Integrity => Error::Integrity {
                table: self.table.unwrap_or(self.message),
                record: self.record.unwrap_or_default(),
            },
            ErrorCode::Unavailable => Error::Unavailable { reason },
            ErrorCode::Internal => Error::Internal {
                message: reason,
                source: None,
            },
            other => Error::from_code(other, &self.message),
        }
    }
}

impl From<&Error> for ErrorResponse {
    fn from(e: &Error) -> Self {
        Self {
            error: ErrorBody::from_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_round_trip_through_the_body() {
        let cases = [
            Error::not_found("secret", "org/x"),
            Error::denied("no grant covers org/x"),
            Error::invalid("name", "bad"),
            Error::WrongPassphrase,
            Error::Locked,
            Error::Conflict {
                reason: "referenced".into(),
                references: vec!["grant bot x".into()],
            },
            Error::Ambiguous {
                name: "x".into(),
                scopes: vec!["team:a".into(), "team:b".into()],
            },
            Error::PayloadTooLarge { size: 5, limit: 4 },
            Error::TooManyRequests {
                retry_after_ms: 1000,
            },
            Error::integrity("secrets", "ab12"),
        ];
        for e in cases {
            let json = serde_json::to_string(&ErrorResponse::from(&e)).expect("serialize");
            let back: ErrorResponse = serde_json::from_str(&json).expect("parse");
            let again = back.error.into_error();
            assert_eq!(again.to_string(), e.to_string(), "{json}");
            assert_eq!(again.code(), e.code());
        }
    }

    /// Finding 15: a message shows its prefix once, however often it crosses the wire, with or
    /// without the body's context fields.
    #[test]
    fn prefixes_are_not_repeated() {
        let cases = [
            (
                Error::Unauthenticated {
                    reason: "uid 1003 is not a known principal".into(),
                },
                "unauthenticated: uid 1003 is not a known principal",
            ),
            (
                Error::Internal {
                    message: "database transaction failed".into(),
                    source: None,
                },
                "internal: database transaction failed",
            ),
            (
                Error::denied("no grant covers org/x"),
                "permission denied: no grant covers org/x",
            ),
            (
                Error::Conflict {
                    reason: "referenced".into(),
                    references: Vec::new(),
                },
                "conflict: referenced",
            ),
        ];
        for (e, shown) in cases {
            assert_eq!(e.to_string(), shown);
            let mut body = ErrorBody::from_error(&e);
            for _ in 0..3 {
                let again = body.clone().into_error();
                assert_eq!(again.to_string(), shown);
                body = ErrorBody::from_error(&again);
            }
            // A body with only code and message (another client, an older daemon).
            let bare = ErrorBody {
                code: body.code.clone(),
                message: body.message.clone(),
                ..ErrorBody::default()
            };
            assert_eq!(bare.into_error().to_string(), shown);
        }
    }
}

//! `tresor://[scope/]name[#field]` references, as `run --env-file`, `inject` and `check` take
//! them: parsed into the one "which value" type, [`ValueRef`].

use crate::error::Error;

pub use crate::types::{SCHEME, ValueRef as Reference};

/// The reason of an `InvalidArgument` (or the whole message of anything else), to be put
/// after a location such as `line 3`.
pub fn reason(e: &Error) -> String {
    match e {
        Error::InvalidArgument { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

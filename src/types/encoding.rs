//! Base64 as the API and the CLI carry binary values.

use base64::Engine;

use crate::error::{Error, Result};

/// Base64 (standard, padded) used for binary values in JSON and on the CLI.
pub fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Decodes base64, naming the field on error.
///
/// # Errors
/// `InvalidArgument` naming `field`.
pub fn decode_b64(field: &str, s: &str) -> Result<Vec<u8>> {
    b64().decode(s.trim()).map_err(|e| {
        // base64's own message quotes the offending byte, which may be part of a value.
        let at = match e {
            base64::DecodeError::InvalidByte(i, _)
            | base64::DecodeError::InvalidLastSymbol(i, _) => {
                format!(" (bad symbol at offset {i})")
            }
            base64::DecodeError::InvalidLength(_) => " (bad length)".to_owned(),
            base64::DecodeError::InvalidPadding => " (bad padding)".to_owned(),
        };
        Error::invalid(field, format!("not valid base64{at}"))
    })
}

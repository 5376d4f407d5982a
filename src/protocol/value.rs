//! Secret text in JSON bodies: `value` when the bytes are UTF-8, else `value_base64`
//! (fields likewise, in `fields` and `fields_base64`), SPEC §6.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::types::{SecretBytes, decode_b64};

/// A string that holds a secret (a value, a passphrase, a token): wiped on drop, printed as
/// `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps a string.
    pub fn new(s: String) -> Self {
        Self(s)
    }
    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The text's bytes, as a zeroizing buffer.
    pub fn to_secret_bytes(&self) -> SecretBytes {
        SecretBytes::new(self.0.as_bytes().to_vec())
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for SecretText {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Splits bytes into the UTF-8 form or the base64 form, as the API sends them.
pub fn encode_bytes(b: &SecretBytes) -> (Option<SecretText>, Option<SecretText>) {
    match b.as_str() {
        Some(s) => (Some(SecretText(s.to_owned())), None),
        None => (
            None,
            Some(SecretText(crate::types::b64().encode(b.expose()))),
        ),
    }
}

/// Joins the UTF-8 form and the base64 form back into bytes; both at once is an error.
///
/// # Errors
/// `InvalidArgument` naming `field` when both are given or base64 does not decode.
pub fn decode_bytes(
    field: &str,
    text: Option<&SecretText>,
    b64: Option<&SecretText>,
) -> Result<Option<SecretBytes>> {
    match (text, b64) {
        (Some(_), Some(_)) => Err(Error::invalid(
            field,
            format!("give {field} or {field}_base64, not both"),
        )),
        (Some(t), None) => Ok(Some(t.to_secret_bytes())),
        (None, Some(b)) => Ok(Some(SecretBytes::new(decode_b64(
            &format!("{field}_base64"),
            b.expose(),
        )?))),
        (None, None) => Ok(None),
    }
}

/// Named values split into UTF-8 and base64 maps.
pub type TextMaps = (BTreeMap<String, SecretText>, BTreeMap<String, SecretText>);

/// Splits named values into the `fields` and `fields_base64` maps.
pub fn encode_map(m: &BTreeMap<String, SecretBytes>) -> TextMaps {
    let mut text = BTreeMap::new();
    let mut b64 = BTreeMap::new();
    for (k, v) in m {
        match encode_bytes(v) {
            (Some(t), _) => {
                text.insert(k.clone(), t);
            }
            (_, Some(b)) => {
                b64.insert(k.clone(), b);
            }
            (None, None) => {}
        }
    }
    (text, b64)
}

/// Joins the `fields` and `fields_base64` maps; a name in both is an error.
///
/// # Errors
/// `InvalidArgument` naming the field.
pub fn decode_map(
    field: &str,
    text: &BTreeMap<String, SecretText>,
    b64: &BTreeMap<String, SecretText>,
) -> Result<BTreeMap<String, SecretBytes>> {
    let mut out = BTreeMap::new();
    for (k, v) in text {
        out.insert(k.clone(), v.to_secret_bytes());
    }
    for (k, v) in b64 {
        if out.contains_key(k) {
            return Err(Error::invalid(
                field,
                format!("{k:?} is in both {field} and {field}_base64"),
            ));
        }
        let bytes = decode_b64(&format!("{field}_base64.{k}"), v.expose())?;
        out.insert(k.clone(), SecretBytes::new(bytes));
    }
    Ok(out)
}

/// The environment variable a secret is injected as by default: `github-pat` → `GITHUB_PAT`,
/// `db#password` → `DB_PASSWORD`, `ci/aws.key` → `CI_AWS_KEY`. Characters outside
/// `[A-Z0-9_]` become `_`; a leading digit gets a `_` in front.
pub fn env_var_name(name: &str, field: Option<&str>) -> String {
    let mut s: String = std::iter::once(name)
        .chain(field)
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert_eq!(env_var_name("github-pat", None), "GITHUB_PAT");
        assert_eq!(env_var_name("db", Some("password")), "DB_PASSWORD");
        assert_eq!(env_var_name("ci/aws.key", None), "CI_AWS_KEY");
        assert_eq!(env_var_name("1pw", None), "_1PW");
    }

    #[test]
    fn binary_goes_base64() {
        let (t, b) = encode_bytes(&SecretBytes::new(vec![0xff, 0]));
        assert!(t.is_none());
        let back = decode_bytes("value", None, b.as_ref()).expect("decode");
        assert_eq!(back.expect("some").expose(), &[0xff, 0]);
        assert_eq!(format!("{:?}", SecretText::from("x")), "[redacted]");
    }
}

//! Layouts of the air-gapped features (SPEC §7): the store's public keys, sealed bundles and
//! inbox submissions.
//!
//! # Public keys (meta table, key `"identity_pub"`, plaintext)
//!
//! ```text
//! offset  size  field
//!      0     1  layout version (1)
//!      1    32  Ed25519 bundle-signing public key
//!     33     n  age X25519 recipient, ASCII (`age1…`, 62 bytes)
//! ```
//!
//! The secret halves are sealed under DK in the meta table (key `"identity"`); on unlock the
//! public halves are checked against them, so a swapped recipient fails with `integrity`.
//!
//! # Bundle (inside the age encryption)
//!
//! ```text
//! offset  size  field
//!      0    12  magic "TRESORBUNDLE"
//!     12     2  layout version (1)
//!     14    32  signer: the source store's Ed25519 public key
//!     46    64  Ed25519 signature over "tresor bundle v1" || signer || payload
//!    110     n  payload: version byte (1) then postcard [`BundlePayload`]
//! ```
//!
//! # Submission (inside the age encryption)
//!
//! One line of JSON (a trailing newline is allowed), at most [`SUBMISSION_MAX`] bytes:
//!
//! ```text
//! {"tresor":"submit/1","name":"db-password","value":"…"}
//! ```
//!
//! Fields: `tresor` (must be `submit/1`), `name`, one of `value` (UTF-8) or `value_base64`,
//! optional `scope` (default `org`), `type`, `description`, `id` (any unique string; makes a
//! resend of the same submission a replay) and `time` (RFC 3339; a submission older than the
//! secret's last change is refused as stale). Unknown fields are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{PAYLOAD_V1, encode_payload};
use crate::crypto::identity::{SIGN_PUBLIC_LEN, SIGNATURE_LEN};
use crate::error::{Error, Result};
use crate::types::{Scope, SecretBytes, SecretType, validate_name};

/// The public-keys layout version.
pub const PUBLIC_KEYS_V1: u8 = 1;
/// The bundle magic.
pub const BUNDLE_MAGIC: [u8; 12] = *b"TRESORBUNDLE";
/// The bundle layout version.
pub const BUNDLE_V1: u16 = 1;
/// Bytes before the payload.
pub const BUNDLE_HEADER_LEN: usize = 12 + 2 + SIGN_PUBLIC_LEN + SIGNATURE_LEN;
/// The largest submission plaintext accepted.
pub const SUBMISSION_MAX: u64 = 256 * 1024;
/// The largest submission file (age-encrypted) accepted.
pub const SUBMISSION_FILE_MAX: u64 = SUBMISSION_MAX + 4096;
/// The `tresor` field of a submission envelope.
pub const SUBMISSION_TAG: &str = "submit/1";

/// Encodes the public keys.
pub fn encode_public_keys(sign: &[u8; SIGN_PUBLIC_LEN], recipient: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + SIGN_PUBLIC_LEN + recipient.len());
    out.push(PUBLIC_KEYS_V1);
    out.extend_from_slice(sign);
    out.extend_from_slice(recipient.as_bytes());
    out
}

/// Decodes the public keys.
///
/// # Errors
/// `Integrity` (meta, identity_pub) when malformed.
pub fn decode_public_keys(b: &[u8]) -> Result<([u8; SIGN_PUBLIC_LEN], String)> {
    let fail = || Error::integrity("meta", "identity_pub");
    let (&v, rest) = b.split_first().ok_or_else(fail)?;
    if v != PUBLIC_KEYS_V1 || rest.len() <= SIGN_PUBLIC_LEN {
        return Err(fail());
    }
    let mut sign = [0u8; SIGN_PUBLIC_LEN];
    sign.copy_from_slice(&rest[..SIGN_PUBLIC_LEN]);
    let r = std::str::from_utf8(&rest[SIGN_PUBLIC_LEN..]).map_err(|_| fail())?;
    if !r.starts_with("age1") {
        return Err(fail());
    }
    Ok((sign, r.to_owned()))
}

/// What a bundle carries (postcard, behind [`PAYLOAD_V1`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct BundlePayload {
    /// The source store's id.
    pub source: [u8; 16],
    /// The source's bundle sequence number (1, 2, …).
    pub seq: u64,
    /// When it was made (µs since the epoch).
    pub created_at: i64,
    /// Whether every kept version travels, or only the current one.
    pub with_history: bool,
    /// The secrets.
    pub secrets: Vec<BundleSecret>,
    /// Secrets deleted at the source.
    pub tombstones: Vec<Tombstone>,
}

/// One secret in a bundle.
#[derive(Debug, Serialize, Deserialize)]
pub struct BundleSecret {
    /// Scope.
    pub scope: Scope,
    /// Name.
    pub name: String,
    /// Type.
    pub stype: SecretType,
    /// Description.
    pub description: Option<String>,
    /// Integration tag.
    pub integration: Option<String>,
    /// Labels.
    pub meta: BTreeMap<String, String>,
    /// Rotation policy.
    pub max_age_days: Option<u32>,
    /// Versions kept.
    pub max_versions: u32,
    /// Created (µs) and by whom.
    pub created_at: i64,
    /// Creator.
    pub created_by: String,
    /// Last change (µs).
    pub updated_at: i64,
    /// The versions, oldest first; the last is the current one.
    pub versions: Vec<BundleVersion>,
}

/// One version in a bundle. Its `Debug` never shows the value (`SecretBytes`).
#[derive(Debug, Serialize, Deserialize)]
pub struct BundleVersion {
    /// Version number at the source.
    pub version: u64,
    /// When written (µs).
    pub at: i64,
    /// By whom.
    pub by: String,
    /// The value.
    pub value: SecretBytes,
    /// Extra fields.
    pub fields: Vec<(String, SecretBytes)>,
}

/// A secret deleted at the source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tombstone {
    /// Scope.
    pub scope: Scope,
    /// Name.
    pub name: String,
    /// When deleted (µs).
    pub deleted_at: i64,
}

/// A bundle's plaintext (inside age), before or after the signature check.
pub struct SignedBundle<'a> {
    /// The signer's public key.
    pub signer: [u8; SIGN_PUBLIC_LEN],
    /// The signature.
    pub signature: [u8; SIGNATURE_LEN],
    /// The payload bytes (version byte, postcard).
    pub payload: &'a [u8],
}

/// The message a bundle signature covers.
pub fn bundle_message(signer: &[u8; SIGN_PUBLIC_LEN], payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + SIGN_PUBLIC_LEN + payload.len());
    m.extend_from_slice(b"tresor bundle v1");
    m.extend_from_slice(signer);
    m.extend_from_slice(payload);
    m
}

impl SignedBundle<'_> {
    /// The layout's bytes.
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out =
            zeroize::Zeroizing::new(Vec::with_capacity(BUNDLE_HEADER_LEN + self.payload.len()));
        out.extend_from_slice(&BUNDLE_MAGIC);
        out.extend_from_slice(&BUNDLE_V1.to_be_bytes());
        out.extend_from_slice(&self.signer);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(self.payload);
        out
    }

    /// Splits the layout (no signature check here).
    ///
    /// # Errors
    /// `Integrity` (bundle) when the magic, version or length is wrong.
    pub fn decode(b: &[u8]) -> Result<SignedBundle<'_>> {
        if b.len() < BUNDLE_HEADER_LEN || b[..12] != BUNDLE_MAGIC {
            return Err(Error::integrity("bundle", "not a tresor bundle (magic)"));
        }
        if u16::from_be_bytes([b[12], b[13]]) != BUNDLE_V1 {
            return Err(Error::integrity("bundle", "unknown bundle version"));
        }
        let mut signer = [0u8; SIGN_PUBLIC_LEN];
        signer.copy_from_slice(&b[14..46]);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(&b[46..110]);
        Ok(SignedBundle {
            signer,
            signature,
            payload: &b[BUNDLE_HEADER_LEN..],
        })
    }
}

/// Encodes a bundle payload.
///
/// # Errors
/// `Internal` when serialization fails.
pub fn encode_bundle_payload(p: &BundlePayload) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    encode_payload(p)
}

/// Decodes a bundle payload and checks every name in it.
///
/// # Errors
/// `Integrity` (bundle) when it does not parse or names are invalid.
pub fn decode_bundle_payload(b: &[u8]) -> Result<BundlePayload> {
    let fail = |what: &str| Error::integrity("bundle", what.to_owned());
    let Some((&PAYLOAD_V1, body)) = b.split_first() else {
        return Err(fail("payload version"));
    };
    let (p, rest): (BundlePayload, _) =
        postcard::take_from_bytes(body).map_err(|_| fail("payload does not parse"))?;
    if !rest.is_empty() {
        return Err(fail("trailing bytes after the payload"));
    }
    for s in &p.secrets {
        validate_name(&s.name).map_err(|_| fail("a secret name is invalid"))?;
        if s.versions.is_empty() {
            return Err(fail("a secret without versions"));
        }
        if s.versions.windows(2).any(|w| w[0].version >= w[1].version) {
            return Err(fail("versions out of order"));
        }
    }
    for t in &p.tombstones {
        validate_name(&t.name).map_err(|_| fail("a deleted name is invalid"))?;
    }
    Ok(p)
}

/// A submission envelope as sent (see the module docs).
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Must be [`SUBMISSION_TAG`].
    pub tresor: String,
    /// The secret's name.
    pub name: String,
    /// Scope (default `org`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The value as UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value as base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    /// Type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<SecretType>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A unique id (replay protection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<jiff::Timestamp>,
}

impl Drop for Submission {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(v) = &mut self.value {
            v.zeroize();
        }
        if let Some(v) = &mut self.value_base64 {
            v.zeroize();
        }
    }
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A checked submission.
#[derive(Debug)]
pub struct ParsedSubmission {
    /// Scope.
    pub scope: Scope,
    /// Name.
    pub name: String,
    /// Value.
    pub value: SecretBytes,
    /// Type.
    pub secret_type: Option<SecretType>,
    /// Description.
    pub description: Option<String>,
    /// Id, if given.
    pub id: Option<String>,
    /// Time, if given.
    pub time: Option<jiff::Timestamp>,
}

/// Parses and checks a decrypted submission. Messages name the field, never the value.
///
/// # Errors
/// `InvalidArgument` naming what is wrong.
pub fn parse_submission(plain: &[u8]) -> Result<ParsedSubmission> {
    use base64::Engine as _;
    if plain.len() as u64 > SUBMISSION_MAX {
        return Err(Error::invalid(
            "submission",
            format!("larger than {SUBMISSION_MAX} bytes"),
        ));
    }
    let text = plain.strip_suffix(b"\n").unwrap_or(plain);
    if text.contains(&b'\n') {
        return Err(Error::invalid(
            "submission",
            "expected one line of JSON, found several lines",
        ));
    }
    let mut s: Submission = serde_json::from_slice(text).map_err(|e| {
        Error::invalid(
            "submission",
            format!(
                "not a submission envelope (line 1, column {}: {:?})",
                e.column(),
                e.classify()
            ),
        )
    })?;
    if s.tresor != SUBMISSION_TAG {
        return Err(Error::invalid(
            "tresor",
            format!("expected {SUBMISSION_TAG:?}"),
        ));
    }
    validate_name(&s.name)?;
    let value = match (s.value.take(), s.value_base64.take()) {
        (Some(v), None) => SecretBytes::new(v.into_bytes()),
        (None, Some(b)) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|_| Error::invalid("value_base64", "not valid base64"))?;
            SecretBytes::new(raw)
        }
        _ => {
            return Err(Error::invalid(
                "value",
                "expected exactly one of value and value_base64",
            ));
        }
    };
    if value.is_empty() {
        return Err(Error::invalid("value", "empty"));
    }
    Ok(ParsedSubmission {
        scope: s.scope.take().unwrap_or_default(),
        name: std::mem::take(&mut s.name),
        value,
        secret_type: s.secret_type,
        description: s.description.take(),
        id: s.id.take(),
        time: s.time,
    })
}

/// Seals a submission for `recipient`: the one-line JSON envelope, age-encrypted.
///
/// # Errors
/// `InvalidArgument` for a bad recipient or name.
pub fn seal_submission(recipient: &str, sub: &Submission) -> Result<Vec<u8>> {
    validate_name(&sub.name)?;
    let mut line = zeroize::Zeroizing::new(
        serde_json::to_vec(sub).map_err(|e| Error::internal("cannot encode a submission", e))?,
    );
    line.push(b'\n');
    if line.len() as u64 > SUBMISSION_MAX {
        return Err(Error::PayloadTooLarge {
            size: line.len() as u64,
            limit: SUBMISSION_MAX,
        });
    }
    crate::crypto::identity::age_encrypt(&[recipient.to_owned()], &line)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_round_trip_and_reject_damage() {
        let r = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq";
        let b = encode_public_keys(&[7; 32], r);
        assert_eq!(decode_public_keys(&b).unwrap(), ([7; 32], r.to_owned()));
        assert!(decode_public_keys(&b[..33]).is_err());
        let mut bad = b.clone();
        bad[0] = 2;
        assert!(decode_public_keys(&bad).is_err());
    }

    #[test]
    fn bundle_layout_round_trip() {
        let payload = BundlePayload {
            source: [1; 16],
            seq: 3,
            created_at: 5,
            with_history: true,
            secrets: vec![BundleSecret {
                scope: Scope::Org,
                name: "db".into(),
                stype: SecretType::Token,
                description: None,
                integration: None,
                meta: BTreeMap::new(),
                max_age_days: None,
                max_versions: 10,
                created_at: 1,
                created_by: "a".into(),
                updated_at: 2,
                versions: vec![BundleVersion {
                    version: 1,
                    at: 2,
                    by: "a".into(),
                    value: SecretBytes::from("v"),
                    fields: Vec::new(),
                }],
            }],
            tombstones: vec![Tombstone {
                scope: Scope::Org,
                name: "gone".into(),
                deleted_at: 4,
            }],
        };
        let body = encode_bundle_payload(&payload).unwrap();
        let bytes = SignedBundle {
            signer: [2; 32],
            signature: [3; 64],
            payload: &body,
        }
        .encode();
        let back = SignedBundle::decode(&bytes).unwrap();
        assert_eq!((back.signer, back.signature), ([2; 32], [3; 64]));
        let p = decode_bundle_payload(back.payload).unwrap();
        assert_eq!((p.seq, p.secrets.len(), p.tombstones.len()), (3, 1, 1));
        assert!(SignedBundle::decode(&bytes[..100]).is_err());
        assert!(decode_bundle_payload(&back.payload[..back.payload.len() - 1]).is_err());
    }

    #[test]
    fn submissions_parse_and_errors_never_quote_the_value() {
        let ok = parse_submission(br#"{"tresor":"submit/1","name":"a","value":"s3cr3t"}"#);
        assert_eq!(ok.unwrap().value.expose(), b"s3cr3t");
        let b64 = parse_submission(br#"{"tresor":"submit/1","name":"a","value_base64":"AAE="}"#);
        assert_eq!(b64.unwrap().value.expose(), &[0, 1]);
        for bad in [
            &br#"{"tresor":"submit/2","name":"a","value":"s3cr3t"}"#[..],
            br#"{"tresor":"submit/1","name":"../a","value":"s3cr3t"}"#,
            br#"{"tresor":"submit/1","name":"a","value":"s3cr3t","value_base64":"AA=="}"#,
            br#"{"tresor":"submit/1","name":"a","value":"s3cr3t","extra":1}"#,
            br#"{"tresor":"submit/1","name":"a","value":"s3cr3t"#,
            b"{\"tresor\":\"submit/1\",\n\"name\":\"a\",\"value\":\"s3cr3t\"}",
        ] {
            let e = parse_submission(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }
}

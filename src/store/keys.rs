//! Unlock secrets: passphrases, key files, recovery keys, and the KDF choice.

use zeroize::Zeroizing;

use crate::crypto::kdf::{self, KdfParams};
use crate::crypto::{KEY_LEN, Key};
use crate::error::{Error, Result};
use crate::format::KeyslotKind;
use crate::types::{Passphrase, SecretBytes};

/// What unlocks a store.
#[derive(Debug, Clone)]
pub enum UnlockSecret {
    /// A passphrase (Argon2id slots).
    Passphrase(Passphrase),
    /// The contents of a key file (32 or more bytes).
    Keyfile(SecretBytes),
    /// A recovery key as printed by `keyslot add --recovery` (spaces and dashes ignored).
    Recovery(SecretBytes),
    /// A systemd credential's contents as `tresord --unlock-credential` reads them (32 or
    /// more bytes).
    Credential(SecretBytes),
}

impl UnlockSecret {
    /// The keyslot kind this secret opens.
    pub fn kind(&self) -> KeyslotKind {
        match self {
            Self::Passphrase(_) => KeyslotKind::Passphrase,
            Self::Keyfile(_) => KeyslotKind::Keyfile,
            Self::Recovery(_) => KeyslotKind::Recovery,
            Self::Credential(_) => KeyslotKind::SystemdCreds,
        }
    }

    /// The key-encryption key for a slot with this salt and these parameters.
    pub(crate) fn kek(&self, salt: &[u8; 16], params: Option<&KdfParams>) -> Result<Key> {
        match (self, params) {
            (Self::Passphrase(p), Some(params)) => kdf::derive(p.expose(), salt, params),
            (Self::Keyfile(bytes), None) => {
                at_least_a_key(bytes, "keyfile", "a key file")?;
                Ok(stretch(
                    "tresor 2026-11 keyfile kek v1",
                    bytes.expose(),
                    salt,
                ))
            }
            (Self::Credential(bytes), None) => {
                at_least_a_key(bytes, "credential", "a systemd credential of tresor's")?;
                Ok(stretch(
                    "tresor 2026-11 systemd-creds kek v1",
                    bytes.expose(),
                    salt,
                ))
            }
            (Self::Recovery(text), None) => {
                let raw = decode_recovery(text)?;
                Ok(stretch("tresor 2026-11 recovery kek v1", &raw, salt))
            }
            _ => Err(Error::integrity(
                "keyslots",
                "kdf does not match the slot kind",
            )),
        }
    }
}

fn at_least_a_key(bytes: &SecretBytes, field: &str, what: &str) -> Result<()> {
    if bytes.len() < KEY_LEN {
        return Err(Error::invalid(
            field,
            format!(
                "{} bytes; {what} holds at least {KEY_LEN} random bytes",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

fn stretch(label: &str, material: &[u8], salt: &[u8; 16]) -> Key {
    let mut input = Zeroizing::new(Vec::with_capacity(material.len() + 16));
    input.extend_from_slice(salt);
    input.extend_from_slice(material);
    Key::from_bytes(blake3::derive_key(label, &input))
}

/// Formats 32 random bytes as a recovery key: base32 (RFC 4648, no padding) in groups of 4.
pub(crate) fn encode_recovery(raw: &[u8; 32]) -> SecretBytes {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut chars = Zeroizing::new(Vec::with_capacity(60));
    for &b in raw {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 5 {
            nbits -= 5;
            chars.push(ALPHABET[((bits >> nbits) & 31) as usize]);
        }
    }
    if nbits > 0 {
        chars.push(ALPHABET[((bits << (5 - nbits)) & 31) as usize]);
    }
    let mut out = Vec::with_capacity(chars.len() + chars.len() / 4);
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(b'-');
        }
        out.push(*c);
    }
    SecretBytes::new(out)
}

fn decode_recovery(text: &SecretBytes) -> Result<Zeroizing<Vec<u8>>> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Zeroizing::new(Vec::with_capacity(32));
    for &c in text.expose() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            b'-' | b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => {
                return Err(Error::invalid(
                    "recovery key",
                    "expected letters A-Z and digits 2-7 in groups",
                ));
            }
        };
        bits = (bits << 5) | u32::from(v);
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    if out.len() != 32 {
        return Err(Error::invalid(
            "recovery key",
            format!("{} bytes decoded, expected 32", out.len()),
        ));
    }
    Ok(out)
}

/// How to pick Argon2id parameters for a new passphrase slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdfChoice {
    /// About 1 s on this host, never below the floor (the default).
    Calibrate,
    /// Exactly these (range-checked against the floor).
    Params(KdfParams),
    /// Instant parameters for tests (`--insecure-kdf`); recorded in the header, warned about on
    /// every open.
    Insecure,
}

impl KdfChoice {
    pub(crate) fn resolve(&self) -> Result<KdfParams> {
        match self {
            Self::Calibrate => kdf::calibrate(std::time::Duration::from_secs(1)),
            Self::Params(p) => {
                p.check(false)?;
                Ok(*p)
            }
            Self::Insecure => Ok(kdf::INSECURE),
        }
    }
}

/// A keyslot to add.
#[derive(Debug)]
pub enum NewKeyslot {
    /// Another passphrase.
    Passphrase(Passphrase, KdfChoice),
    /// A key file's contents (32+ bytes).
    Keyfile(SecretBytes),
    /// A new recovery key, generated and returned once.
    Recovery,
    /// The contents of a systemd credential (32+ bytes; the CLI generates them and has
    /// `systemd-creds encrypt` seal them to the host).
    Credential(SecretBytes),
}

/// A keyslot as `keyslot ls` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyslotInfo {
    /// Slot id.
    pub id: u32,
    /// Kind name.
    pub kind: &'static str,
    /// Argon2id parameters, for passphrase slots.
    pub kdf: Option<KdfParams>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn recovery_round_trip(raw in any::<[u8; 32]>()) {
            let s = encode_recovery(&raw);
            let back = decode_recovery(&s).expect("decode");
            prop_assert_eq!(back.as_slice(), &raw[..]);
            let lower = SecretBytes::new(s.expose().to_ascii_lowercase());
            let back_lower = decode_recovery(&lower).expect("decode");
            prop_assert_eq!(back_lower.as_slice(), &raw[..]);
        }
    }
}

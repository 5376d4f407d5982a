//! The store's identity (SPEC §4.1, §7): an age X25519 key pair (the inbox recipient, and the
//! recipient bundles are encrypted to) and an Ed25519 key pair (bundle signatures).
//!
//! The secret halves are sealed under DK in the meta table; the public halves are stored in the
//! clear next to the header so that `tresor inbox key` works on a locked store. Encryption is
//! the `age` crate's, so files interoperate with the stock `age` CLI.

use std::io::{Read, Write};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use ed25519_dalek::Signer;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of an Ed25519 public key.
pub const SIGN_PUBLIC_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// How an Ed25519 public key is printed: this prefix and 64 lowercase hex digits.
pub const SIGN_KEY_PREFIX: &str = "tresor-ed25519:";

/// A store's key pairs. Never printed; the secret halves are wiped on drop.
pub struct StoreIdentity {
    age: age::x25519::Identity,
    sign: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for StoreIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreIdentity([redacted])")
    }
}

/// The public halves of a store's identity: readable without a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeys {
    /// The age recipient (`age1…`).
    pub recipient: String,
    /// The Ed25519 bundle-signing public key.
    pub sign: [u8; SIGN_PUBLIC_LEN],
}

impl PublicKeys {
    /// The signing key as printed by `tresor inbox key --sign`.
    pub fn sign_text(&self) -> String {
        format!("{SIGN_KEY_PREFIX}{}", hex(&self.sign))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Parses a signing public key as `tresor inbox key --sign` prints it (the prefix optional).
///
/// # Errors
/// `InvalidArgument` when it is not 64 hex digits.
pub fn parse_sign_key(text: &str) -> Result<[u8; SIGN_PUBLIC_LEN]> {
    let t = text.trim();
    let h = t.strip_prefix(SIGN_KEY_PREFIX).unwrap_or(t);
    let bad = || {
        Error::invalid(
            "from-key",
            format!(
                "expected {SIGN_KEY_PREFIX} and 64 hex digits (tresor inbox key --sign), found {} characters",
                t.len()
            ),
        )
    };
    if h.len() != 64 || !h.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; SIGN_PUBLIC_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Parses an age X25519 recipient (`age1…`).
///
/// # Errors
/// `InvalidArgument` naming what was found.
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(text.trim()).map_err(|e| {
        Error::invalid(
            "recipient",
            format!("expected an age X25519 recipient (age1…, from tresor inbox key): {e}"),
        )
    })
}

/// Encrypts to every recipient with age (binary format).
///
/// # Errors
/// `InvalidArgument` for a bad or missing recipient.
pub fn age_encrypt(recipients: &[String], plaintext: &[u8]) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(Error::invalid("to", "at least one recipient is needed"));
    }
    let parsed = recipients
        .iter()
        .map(|r| parse_recipient(r))
        .collect::<Result<Vec<_>>>()?;
    let enc = age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| Error::invalid("to", e.to_string()))?;
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let io = |e: std::io::Error| Error::Internal {
        message: format!("age encryption: {e}"),
        source: None,
    };
    let mut w = enc.wrap_output(&mut out).map_err(io)?;
    w.write_all(plaintext).map_err(io)?;
    w.finish().map_err(io)?;
    Ok(out)
}

impl StoreIdentity {
    /// Fresh key pairs from the OS random source.
    ///
    /// # Errors
    /// `Internal` when the OS has no randomness.
    pub fn generate() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        super::fill_random(seed.as_mut())?;
        Ok(Self {
            age: age::x25519::Identity::generate(),
            sign: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The sealed form: the age secret key text (`AGE-SECRET-KEY-1…`) and the Ed25519 seed.
    pub fn to_parts(&self) -> (Zeroizing<Vec<u8>>, Zeroizing<[u8; 32]>) {
        let text = self.age.to_string();
        (
            Zeroizing::new(text.expose_secret().as_bytes().to_vec()),
            Zeroizing::new(self.sign.to_bytes()),
        )
    }

    /// Rebuilds an identity from [`StoreIdentity::to_parts`].
    ///
    /// # Errors
    /// `Integrity` (meta table, identity) when the age key does not parse.
    pub fn from_parts(age_text: &[u8], seed: &[u8; 32]) -> Result<Self> {
        let fail = || Error::integrity("meta", "identity");
        let text = std::str::from_utf8(age_text).map_err(|_| fail())?;
        let age = age::x25519::Identity::from_str(text).map_err(|_| fail())?;
        Ok(Self {
            age,
            sign: ed25519_dalek::SigningKey::from_bytes(seed),
        })
    }

    /// The public halves.
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            recipient: self.age.to_public().to_string(),
            sign: self.sign.verifying_key().to_bytes(),
        }
    }

    /// Signs a message with the Ed25519 key.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign.sign(msg).to_bytes()
    }

    /// Decrypts an age file addressed to this identity, reading at most `max` plaintext bytes.
    ///
    /// # Errors
    /// `Integrity` (table `what`) when the file is not age, not for this store, tampered with,
    /// truncated, or larger than `max`. The error never carries plaintext.
    pub fn decrypt(&self, what: &str, ciphertext: &[u8], max: u64) -> Result<Zeroizing<Vec<u8>>> {
        let d = age::Decryptor::new_buffered(ciphertext)
            .map_err(|e| Error::integrity(what, format!("not an age file ({e})")))?;
        let mut r = d
            .decrypt(std::iter::once(&self.age as &dyn age::Identity))
            .map_err(|e| Error::integrity(what, format!("cannot decrypt ({e})")))?;
        let mut out = Zeroizing::new(Vec::new());
        (&mut r)
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|_| Error::integrity(what, "truncated or tampered with"))?;
        if out.len() as u64 > max {
            return Err(Error::integrity(what, format!("larger than {max} bytes")));
        }
        Ok(out)
    }
}

/// Checks an Ed25519 signature.
pub fn verify(public: &[u8; SIGN_PUBLIC_LEN], msg: &[u8], sig: &[u8; SIGNATURE_LEN]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .is_ok()
}

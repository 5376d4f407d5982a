//! The only module that names the cipher and the KDF.
//!
//! - Sealing: XChaCha20-Poly1305 with a fresh OS-random 24-byte nonce per call ([`seal`]).
//! - Subkeys: BLAKE3 `derive_key` from the data key with distinct context labels, one per use
//!   (record sealing, the name index, the audit chain, token hashes), so that a key is never used
//!   for two purposes.
//! - Passphrases: Argon2id ([`kdf`]); key files and recovery keys carry 256 bits of entropy and
//!   are stretched with BLAKE3 `derive_key` alone.

pub mod identity;
pub mod kdf;
mod locked;

pub use locked::Locked;

use std::fmt;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Length of every symmetric key.
pub const KEY_LEN: usize = 32;
/// Length of an XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// A 256-bit key that is wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A fresh key from the operating system's random source.
    ///
    /// # Errors
    /// `Internal` when the OS has no randomness to give.
    pub fn random() -> Result<Self> {
        let mut k = Self::zeroed();
        fill_random(&mut k.0)?;
        Ok(k)
    }

    /// An all-zero key to fill in place, so that no unwiped copy of the key bytes is left on
    /// the stack.
    pub(crate) fn zeroed() -> Self {
        Self([0u8; KEY_LEN])
    }

    /// The key bytes, to fill in place.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }

    /// Wraps key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Derives a subkey for one purpose. `label` must be unique per purpose.
    #[must_use]
    pub fn derive(&self, label: &str) -> Self {
        Self(blake3::derive_key(label, &self.0))
    }

    /// Keyed BLAKE3 of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.0, data).as_bytes()
    }

    /// Keyed BLAKE3 over several parts, each length-prefixed so that part boundaries count.
    pub fn mac_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        for p in parts {
            h.update(&(p.len() as u64).to_be_bytes());
            h.update(p);
        }
        *h.finalize().as_bytes()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// The subkeys derived from the data key. Built once at unlock.
#[derive(Debug, Zeroize)]
pub struct SubKeys {
    /// Seals every record.
    pub seal: Key,
    /// Keys the hash of (scope, name) that indexes secrets, and principal names.
    pub name: Key,
    /// Keys the audit chain's MACs.
    pub audit: Key,
    /// Keys the hashes of agents' bearer tokens.
    pub token: Key,
    /// Keys the fingerprints of values (SPEC §1), never an unkeyed hash.
    pub fingerprint: Key,
}

impl SubKeys {
    /// Derives all subkeys from the data key, onto locked pages of their own.
    pub fn derive(dk: &Key) -> Locked<Self> {
        Locked::new(Self {
            seal: dk.derive("tresor 2026-11 record sealing v1"),
            name: dk.derive("tresor 2026-11 name index v1"),
            audit: dk.derive("tresor 2026-11 audit chain v1"),
            token: dk.derive("tresor 2026-11 token hash v1"),
            fingerprint: dk.derive("tresor 2026-11 value fingerprint v1"),
        })
    }
}

/// Fills `buf` from the operating system's random source.
///
/// # Errors
/// `Internal` when the OS random source fails.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Internal {
        message: format!("the OS random source failed: {e}"),
        source: None,
    })
}

/// Seals `plaintext` under `key`, binding `ad`. Returns `nonce || ciphertext || tag`.
///
/// Nonce rule: every call draws a fresh 24-byte nonce from the OS. XChaCha20's 192-bit nonce
/// makes random nonces safe for any number of messages a store will ever see; never pass a
/// nonce in, never derive one from a counter or the record key.
///
/// # Errors
/// `Internal` when the OS random source fails.
pub fn seal(key: &Key, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(&XNonce::from(nonce), ad, (&mut out[NONCE_LEN..]).into())
        .map_err(|_| Error::Internal {
            message: "encryption failed".into(),
            source: None,
        })?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens what [`seal`] made. `None` when the bytes are too short or fail authentication; the
/// caller turns that into an `Integrity` error naming the table and record.
pub fn open(key: &Key, ad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = XNonce::try_from(nonce).ok()?;
    let tag = chacha20poly1305::Tag::try_from(tag).ok()?;
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let mut buf = Zeroizing::new(ct.to_vec());
    cipher
        .decrypt_inout_detached(&nonce, ad, buf.as_mut_slice().into(), &tag)
        .ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn seal_open_round_trip(pt in proptest::collection::vec(any::<u8>(), 0..512),
                                ad in proptest::collection::vec(any::<u8>(), 0..64)) {
            let k = Key::random().expect("rng");
            let s = seal(&k, &ad, &pt).expect("seal");
            let opened = open(&k, &ad, &s).expect("open");
            prop_assert_eq!(opened.as_slice(), pt.as_slice());
        }

        #[test]
        fn any_bit_flip_fails(pt in proptest::collection::vec(any::<u8>(), 0..64), bit in 0usize..1000) {
            let k = Key::random().expect("rng");
            let mut s = seal(&k, b"ad", &pt).expect("seal");
            let i = bit % (s.len() * 8);
            s[i / 8] ^= 1 << (i % 8);
            prop_assert!(open(&k, b"ad", &s).is_none());
        }
    }

    #[test]
    fn wrong_ad_or_key_fails() {
        let k = Key::random().expect("rng");
        let s = seal(&k, b"a", b"x").expect("seal");
        assert!(open(&k, b"b", &s).is_none());
        assert!(open(&Key::random().expect("rng"), b"a", &s).is_none());
        assert!(open(&k, b"a", &s[..10]).is_none());
    }

    #[test]
    fn debug_is_redacted() {
        let k = Key::from_bytes([7; 32]);
        assert_eq!(format!("{k:?}"), "Key([redacted])");
    }
}

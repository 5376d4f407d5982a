//! The keyslot layout.

use crate::crypto::kdf::KdfParams;
use crate::crypto::{self, KEY_LEN, Key, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};

/// Length of a stored keyslot.
pub const SLOT_LEN: usize = 30 + NONCE_LEN + KEY_LEN + TAG_LEN;

/// What unlocks a keyslot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyslotKind {
    /// A passphrase through Argon2id.
    Passphrase = 1,
    /// 32 random bytes in a file.
    Keyfile = 2,
    /// A printed recovery key (32 random bytes).
    Recovery = 3,
    /// 32 random bytes kept as a systemd credential (`systemd-creds encrypt`: TPM2 when
    /// present, else the host key), handed to `tresord` in `$CREDENTIALS_DIRECTORY`.
    SystemdCreds = 4,
}

impl KeyslotKind {
    /// The kind's name as shown by `keyslot ls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passphrase => "passphrase",
            Self::Keyfile => "keyfile",
            Self::Recovery => "recovery",
            Self::SystemdCreds => "systemd-creds",
        }
    }
}

/// A keyslot: the data key wrapped under a key-encryption key.
///
/// ```text
/// offset  size  field
///      0     1  kind (1 passphrase, 2 keyfile, 3 recovery, 4 systemd-creds)
///      1     1  kdf (0 none: BLAKE3 derive_key of 256-bit input; 1 argon2id)
///      2     4  memory KiB        (0 when kdf = 0)
///      6     4  iterations        (0 when kdf = 0)
///     10     4  parallelism       (0 when kdf = 0)
///     14    16  salt
///     30    72  wrapped data key: nonce (24) || XChaCha20-Poly1305(DK) (32) || tag (16)
///    102        end
/// ```
///
/// Associated data of the wrap: `"tresor keyslot" || header (28) || slot id (4) || bytes 0..30`,
/// so the parameters, the salt and the header are authenticated: changing them makes the slot
/// fail to open (after the range check, which runs first so that a hostile file cannot ask for
/// 4 TiB of memory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyslotRecord {
    /// Kind.
    pub kind: KeyslotKind,
    /// Argon2id parameters, for passphrase slots.
    pub kdf: Option<KdfParams>,
    /// Salt.
    pub salt: [u8; 16],
    /// Nonce, ciphertext and tag of the data key.
    pub wrapped: [u8; NONCE_LEN + KEY_LEN + TAG_LEN],
}

impl KeyslotRecord {
    fn prefix(kind: KeyslotKind, kdf: Option<&KdfParams>, salt: &[u8; 16]) -> [u8; 30] {
        let mut b = [0u8; 30];
        b[0] = kind as u8;
        if let Some(p) = kdf {
            b[1] = 1;
            b[2..6].copy_from_slice(&p.memory_kib.to_be_bytes());
            b[6..10].copy_from_slice(&p.iterations.to_be_bytes());
            b[10..14].copy_from_slice(&p.parallelism.to_be_bytes());
        }
        b[14..30].copy_from_slice(salt);
        b
    }

    fn ad(header: &[u8], slot_id: u32, prefix: &[u8; 30]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(14 + header.len() + 4 + 30);
        ad.extend_from_slice(b"tresor keyslot");
        ad.extend_from_slice(header);
        ad.extend_from_slice(&slot_id.to_be_bytes());
        ad.extend_from_slice(prefix);
        ad
    }

    /// Wraps `dk` under `kek` into a new slot.
    ///
    /// # Errors
    /// `Internal` when the OS random source fails.
    pub fn wrap(
        kind: KeyslotKind,
        kdf: Option<KdfParams>,
        salt: [u8; 16],
        kek: &Key,
        dk: &Key,
        header: &[u8],
        slot_id: u32,
    ) -> Result<Self> {
        let prefix = Self::prefix(kind, kdf.as_ref(), &salt);
        let sealed = crypto::seal(kek, &Self::ad(header, slot_id, &prefix), dk.expose())?;
        let mut wrapped = [0u8; NONCE_LEN + KEY_LEN + TAG_LEN];
        wrapped.copy_from_slice(&sealed);
        Ok(Self {
            kind,
            kdf,
            salt,
            wrapped,
        })
    }

    /// Unwraps the data key; `None` when `kek` is not this slot's key (or the slot, its
    /// parameters or the header were changed).
    pub fn unwrap_key(&self, kek: &Key, header: &[u8], slot_id: u32) -> Option<Key> {
        let prefix = Self::prefix(self.kind, self.kdf.as_ref(), &self.salt);
        let pt = crypto::open(kek, &Self::ad(header, slot_id, &prefix), &self.wrapped)?;
        let mut k = Key::zeroed();
        k.bytes_mut().copy_from_slice(pt.get(..KEY_LEN)?);
        Some(k)
    }

    /// The fixed encoding.
    pub fn encode(&self) -> [u8; SLOT_LEN] {
        let mut b = [0u8; SLOT_LEN];
        b[..30].copy_from_slice(&Self::prefix(self.kind, self.kdf.as_ref(), &self.salt));
        b[30..].copy_from_slice(&self.wrapped);
        b
    }

    /// Parses a slot. KDF parameters are parsed here and range-checked by the caller.
    ///
    /// # Errors
    /// `Integrity` naming the slot when malformed.
    pub fn decode(b: &[u8], slot_id: u32) -> Result<Self> {
        let fail = || Error::integrity("keyslots", format!("slot {slot_id}"));
        if b.len() != SLOT_LEN {
            return Err(fail());
        }
        let kind = match b[0] {
            1 => KeyslotKind::Passphrase,
            2 => KeyslotKind::Keyfile,
            3 => KeyslotKind::Recovery,
            4 => KeyslotKind::SystemdCreds,
            _ => return Err(fail()),
        };
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let kdf = match (kind, b[1]) {
            (KeyslotKind::Passphrase, 1) => Some(KdfParams {
                memory_kib: word(2),
                iterations: word(6),
                parallelism: word(10),
            }),
            (KeyslotKind::Keyfile | KeyslotKind::Recovery | KeyslotKind::SystemdCreds, 0)
                if b[2..14].iter().all(|&x| x == 0) =>
            {
                None
            }
            _ => return Err(fail()),
        };
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&b[14..30]);
        let mut wrapped = [0u8; NONCE_LEN + KEY_LEN + TAG_LEN];
        wrapped.copy_from_slice(&b[30..]);
        Ok(Self {
            kind,
            kdf,
            salt,
            wrapped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn slot_round_trip(salt in any::<[u8; 16]>(), m in 8u32..100_000, t in 1u32..10, id in any::<u32>()) {
            let kek = Key::random().expect("rng");
            let dk = Key::random().expect("rng");
            let p = KdfParams { memory_kib: m, iterations: t, parallelism: 1 };
            let s = KeyslotRecord::wrap(KeyslotKind::Passphrase, Some(p), salt, &kek, &dk, b"hdr", id).expect("wrap");
            let back = KeyslotRecord::decode(&s.encode(), id).expect("decode");
            prop_assert_eq!(&back, &s);
            prop_assert_eq!(back.unwrap_key(&kek, b"hdr", id), Some(dk));
            prop_assert!(back.unwrap_key(&kek, b"hdx", id).is_none());
            prop_assert!(back.unwrap_key(&kek, b"hdr", id.wrapping_add(1)).is_none());
        }

        #[test]
        fn slot_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = KeyslotRecord::decode(&b, 0);
        }
    }
}

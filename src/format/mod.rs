//! Fixed byte layouts: header, keyslot, sealed-record envelope, audit record.
//!
//! Everything a reader can see without a key is in this module: the header, the keyslots and
//! the store's public keys (its age X25519 recipient and Ed25519 bundle-signing key, the meta
//! row `identity_pub`, laid out in [`bundle`]) (SPEC §4.1). Everything else is an envelope. Plaintext payloads inside envelopes are postcard
//! behind a payload version byte ([`encode_payload`]).
//!
//! All integers are big-endian. A layout only ever gains a new version; old versions stay
//! readable and are kept as golden files under `tests/data/`.

pub mod bundle;
mod keyslot;

#[cfg(feature = "test-util")]
pub use keyslot::SLOT_LEN;
pub use keyslot::{KeyslotKind, KeyslotRecord};

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::crypto::{self, Key, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};

/// The file magic.
pub const MAGIC: [u8; 8] = *b"TRESORDB";
/// The format version this build writes. It also opens format 1, which it migrates to 2 at
/// the first unlock (`store/migrate.rs`).
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this build opens.
pub const OLDEST_FORMAT_VERSION: u16 = 1;
/// The version that keyslot wraps and record envelopes bind in their associated data. It
/// stays 1 across format versions: a migration rewrites tables, not every keyslot (whose
/// keys it does not have) nor every audit envelope (whose bytes the chain MACs cover). The
/// header's own version is bound by the sealed `format` row of the meta table instead.
pub const BINDING_VERSION: u16 = 1;
/// Header length.
pub const HEADER_LEN: usize = 28;
/// Header flag: the store was created with `--insecure-kdf`.
pub const FLAG_INSECURE_KDF: u16 = 1;

/// The store header, the only plaintext apart from keyslots.
///
/// ```text
/// offset  size  field
///      0     8  magic "TRESORDB"
///      8     2  format version (2; 1 is still opened, and migrated at unlock)
///     10     2  flags (bit 0: created with --insecure-kdf)
///     12    16  store id (random)
///     28        end
/// ```
///
/// Every keyslot wrap binds the whole header as associated data ([`Header::slot_binding`],
/// with the version field as [`BINDING_VERSION`]), so changing a byte here makes every unlock
/// fail with `integrity`; the version field is checked at unlock against the sealed `format`
/// row instead, with the same effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Flags.
    pub flags: u16,
    /// Random store id, bound into every envelope.
    pub store_id: [u8; 16],
}

impl Header {
    /// Whether the store was made with `--insecure-kdf`.
    pub fn insecure_kdf(&self) -> bool {
        self.flags & FLAG_INSECURE_KDF != 0
    }

    /// The fixed 28-byte encoding.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.version.to_be_bytes());
        b[10..12].copy_from_slice(&self.flags.to_be_bytes());
        b[12..28].copy_from_slice(&self.store_id);
        b
    }

    /// The header as keyslot wraps bind it: [`Header::encode`] with the version field as
    /// [`BINDING_VERSION`], so that a format migration keeps every keyslot valid.
    pub fn slot_binding(&self) -> [u8; HEADER_LEN] {
        let mut b = self.encode();
        b[8..10].copy_from_slice(&BINDING_VERSION.to_be_bytes());
        b
    }

    /// Parses a header. Checks the magic, the length and the version.
    ///
    /// # Errors
    /// `Integrity` when malformed; `UnsupportedVersion` when from a newer format.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() < 10 || b[..8] != MAGIC {
            return Err(Error::integrity("header", "magic"));
        }
        let version = u16::from_be_bytes([b[8], b[9]]);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if b.len() != HEADER_LEN {
            return Err(Error::integrity("header", "length"));
        }
        let flags = u16::from_be_bytes([b[10], b[11]]);
        if flags & !FLAG_INSECURE_KDF != 0 {
            return Err(Error::integrity("header", "flags"));
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&b[12..28]);
        Ok(Self {
            version,
            flags,
            store_id,
        })
    }
}

/// Tables whose records are sealed, as bound into the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TableId {
    /// Secrets (metadata and, in format 2, the current value), keyed by name hash.
    Secrets = 1,
    /// Secret values (in format 2, of older versions only), keyed by name hash and version.
    Values = 2,
    /// Principals and teams, keyed by name hash.
    Principals = 3,
    /// Audit records, keyed by seq.
    Audit = 4,
    /// Singletons in the meta table (the audit head).
    Meta = 5,
    /// Upstream providers and remote bindings, keyed by a name hash.
    Upstream = 6,
    /// Recorded references to a secret (manifests, env files, templates), keyed by name hash.
    References = 7,
    // 8 was format 1's `fingerprints` table (format 2 derives fingerprints from the current
    // value); it is not reused.
    /// Buckets of folded `last_used` times, keyed by bucket number (format 2).
    LastUsed = 9,
}

impl TableId {
    /// The table's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Secrets => "secrets",
            Self::Values => "values",
            Self::Principals => "principals",
            Self::Audit => "audit",
            Self::Meta => "meta",
            Self::Upstream => "upstream",
            Self::References => "refs",
            Self::LastUsed => "last_used",
        }
    }
}

/// Envelope version byte.
pub const ENVELOPE_V1: u8 = 1;
/// Bytes an envelope adds to its plaintext.
pub const ENVELOPE_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// A sealed record.
///
/// ```text
/// offset  size  field
///      0     1  envelope version (1)
///      1    24  nonce (fresh from the OS for every write)
///     25     n  ciphertext (XChaCha20 of the payload)
///   25+n    16  Poly1305 tag
/// ```
///
/// Associated data (not stored): `"tresor record" || binding version (2, always 1) || store id (16) ||
/// table id (1) || record key`, where the record key is the row key: a 32-byte name hash, a
/// name hash and a version (40 bytes), or a seq (8 bytes). A ciphertext moved to another row,
/// table, version or store therefore fails to open.
pub struct Envelope;

impl Envelope {
    fn ad(store_id: &[u8; 16], table: TableId, record_key: &[u8]) -> Vec<u8> {
        let mut ad = Vec::with_capacity(13 + 2 + 16 + 1 + record_key.len());
        ad.extend_from_slice(b"tresor record");
        ad.extend_from_slice(&BINDING_VERSION.to_be_bytes());
        ad.extend_from_slice(store_id);
        ad.push(table as u8);
        ad.extend_from_slice(record_key);
        ad
    }

    /// Seals a plaintext payload for one row.
    ///
    /// # Errors
    /// `Internal` when the OS random source fails.
    pub fn seal(
        key: &Key,
        store_id: &[u8; 16],
        table: TableId,
        record_key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let sealed = crypto::seal(key, &Self::ad(store_id, table, record_key), plaintext)?;
        let mut out = Vec::with_capacity(1 + sealed.len());
        out.push(ENVELOPE_V1);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens an envelope for one row.
    ///
    /// # Errors
    /// `Integrity` naming the table and record when the bytes are malformed or fail
    /// authentication.
    pub fn open(
        key: &Key,
        store_id: &[u8; 16],
        table: TableId,
        record_key: &[u8],
        bytes: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let fail = || Error::integrity(table.name(), record_label(record_key));
        match bytes.split_first() {
            Some((&ENVELOPE_V1, rest)) => {
                crypto::open(key, &Self::ad(store_id, table, record_key), rest).ok_or_else(fail)
            }
            _ => Err(fail()),
        }
    }
}

/// A printable label for a record key: a seq as a number, a hash as its first 8 bytes in hex.
pub fn record_label(key: &[u8]) -> String {
    use std::fmt::Write;
    if key.len() == 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(key);
        return format!("seq {}", u64::from_be_bytes(b));
    }
    let mut s = String::new();
    for byte in key.iter().take(8) {
        let _ = write!(s, "{byte:02x}");
    }
    if key.len() == 40 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&key[32..40]);
        let _ = write!(s, " version {}", u64::from_be_bytes(b));
    }
    s
}

/// Payload version byte for the postcard payloads of format 1.
pub const PAYLOAD_V1: u8 = 1;

/// Encodes a payload: the version byte, then postcard. The result is wiped on drop.
///
/// # Errors
/// `Internal` when serialization fails.
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![PAYLOAD_V1]);
    let body = Zeroizing::new(postcard::to_stdvec(value).map_err(|e| Error::Internal {
        message: format!("encoding failed: {e}"),
        source: None,
    })?);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a payload made by [`encode_payload`]. Trailing bytes are refused.
///
/// # Errors
/// `Integrity` naming `table` and `record` when the version or the body does not parse.
pub fn decode_payload<T: DeserializeOwned>(
    bytes: &[u8],
    table: TableId,
    record_key: &[u8],
) -> Result<T> {
    let fail = || Error::integrity(table.name(), record_label(record_key));
    match bytes.split_first() {
        Some((&PAYLOAD_V1, body)) => {
            let (value, rest) = postcard::take_from_bytes(body).map_err(|_| fail())?;
            if rest.is_empty() {
                Ok(value)
            } else {
                Err(fail())
            }
        }
        _ => Err(fail()),
    }
}

/// An audit record as stored.
///
/// ```text
/// offset  size  field
///      0    32  chain MAC = BLAKE3-keyed(audit key, prev MAC || seq (8) || envelope)
///     32     n  envelope (sealed postcard audit entry; record key = seq)
/// ```
///
/// The first record's previous MAC is `BLAKE3-keyed(audit key, "tresor audit genesis" ||
/// store id)`. The meta table's sealed `audit_head` holds the last seq and MAC, so a removed
/// tail is detected too.
pub struct AuditLayout;

impl AuditLayout {
    /// Length of the chain MAC.
    pub const MAC_LEN: usize = 32;

    /// The chain MAC of a record.
    pub fn mac(audit_key: &Key, prev: &[u8; 32], seq: u64, envelope: &[u8]) -> [u8; 32] {
        audit_key.mac_parts(&[prev, &seq.to_be_bytes(), envelope])
    }

    /// The previous MAC of the first record.
    pub fn genesis(audit_key: &Key, store_id: &[u8; 16]) -> [u8; 32] {
        audit_key.mac_parts(&[b"tresor audit genesis", store_id])
    }

    /// Splits a stored record into its MAC and envelope.
    pub fn split(bytes: &[u8]) -> Option<([u8; 32], &[u8])> {
        if bytes.len() < Self::MAC_LEN + ENVELOPE_OVERHEAD {
            return None;
        }
        let (mac, env) = bytes.split_at(Self::MAC_LEN);
        let mut m = [0u8; 32];
        m.copy_from_slice(mac);
        Some((m, env))
    }
}

/// A staged unlock attempt, recorded while the store is locked (nothing secret in it).
///
/// ```text
/// offset  size  field
///      0     8  time, microseconds since the Unix epoch (signed)
///      8     4  uid
///     12     4  pid
///     16     1  outcome (0 ok, 1 denied, 2 refused during backoff, 3 error)
///     17        end
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StagedAttempt {
    /// When.
    pub time_us: i64,
    /// Who (uid).
    pub uid: u32,
    /// Who (pid).
    pub pid: u32,
    /// 0 ok, 1 denied, 2 refused during backoff, 3 error.
    pub outcome: u8,
}

impl StagedAttempt {
    /// Length of the layout.
    pub const LEN: usize = 17;

    /// Encodes it.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.time_us.to_be_bytes());
        b[8..12].copy_from_slice(&self.uid.to_be_bytes());
        b[12..16].copy_from_slice(&self.pid.to_be_bytes());
        b[16] = self.outcome;
        b
    }

    /// Decodes it; `None` when malformed.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != Self::LEN {
            return None;
        }
        Some(Self {
            time_us: i64::from_be_bytes(b[..8].try_into().ok()?),
            uid: u32::from_be_bytes(b[8..12].try_into().ok()?),
            pid: u32::from_be_bytes(b[12..16].try_into().ok()?),
            outcome: b[16],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_round_trip(flags in 0u16..2, id in any::<[u8; 16]>()) {
            let h = Header { version: FORMAT_VERSION, flags, store_id: id };
            prop_assert_eq!(Header::decode(&h.encode()).expect("decode"), h);
        }

        #[test]
        fn header_decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Header::decode(&b);
        }

        #[test]
        fn envelope_round_trip(pt in proptest::collection::vec(any::<u8>(), 0..256), rk in any::<[u8; 8]>()) {
            let k = Key::random().expect("rng");
            let id = [3u8; 16];
            let e = Envelope::seal(&k, &id, TableId::Values, &rk, &pt).expect("seal");
            prop_assert_eq!(e.len(), pt.len() + ENVELOPE_OVERHEAD);
            let opened = Envelope::open(&k, &id, TableId::Values, &rk, &e).expect("open");
            prop_assert_eq!(opened.as_slice(), pt.as_slice());
            prop_assert!(Envelope::open(&k, &id, TableId::Secrets, &rk, &e).is_err());
            prop_assert!(Envelope::open(&k, &[4u8; 16], TableId::Values, &rk, &e).is_err());
        }

        #[test]
        fn payload_round_trip(v in proptest::collection::vec(any::<String>(), 0..8)) {
            let b = encode_payload(&v).expect("encode");
            let back: Vec<String> = decode_payload(&b, TableId::Secrets, &[0; 32]).expect("decode");
            prop_assert_eq!(back, v);
        }

        #[test]
        fn staged_round_trip(t in any::<i64>(), uid in any::<u32>(), pid in any::<u32>(), o in 0u8..4) {
            let s = StagedAttempt { time_us: t, uid, pid, outcome: o };
            prop_assert_eq!(StagedAttempt::decode(&s.encode()), Some(s));
        }
    }

    #[test]
    fn newer_version_is_named() {
        let mut b = Header {
            version: FORMAT_VERSION,
            flags: 0,
            store_id: [0; 16],
        }
        .encode();
        b[9] = 9;
        let e = Header::decode(&b).expect_err("newer");
        assert_eq!(
            e.to_string(),
            "unsupported store format version 9; this build reads versions 1 to 2 (a newer tresor wrote this file)"
        );
    }
}

//! tresor: an offline secret store for the hosts where agents run.
//!
//! One encrypted redb file holds secrets, principals, grants and a sealed, MAC-chained audit
//! log. A random data key seals every record with XChaCha20-Poly1305; keyslots (Argon2id
//! passphrase, key file, recovery key) wrap the data key.
//!
//! # Architecture
//!
//! ```text
//!  core (no clap, no tokio, no HTTP)          front ends (default features)
//!  ─────────────────────────────────          ─────────────────────────────
//!  error    one Error, one variant per code   protocol  JSON bodies of API v1
//!  types    names, scopes, metadata, values,  client    Client over the Unix socket
//!           principals, grants, passphrases,  daemon    tresord: listener, routes, group commit
//!           audit entries, base64             cli       tresor: clap commands, output
//!  crypto   keys, seal/open, Argon2id
//!  format   byte layouts, payload versions
//!  store    Store / LockedStore, tables, audit chain (store/audit.rs), peers (store/peers.rs)
//!  policy   (principal, op, secret) -> Allow | Deny, on types alone
//!  paths    default store and socket paths (shared by tresord and tresor)
//!  sys      user names, file modes, process hardening
//! ```
//!
//! Imports go one way: a front end may use the core, the core never a front end; `policy`
//! uses only `types`; `protocol` and `client` use `types` and `error`, never `store`.
//! `tests/layers.rs` checks this from the source.
//!
//! # Example
//!
//! ```
//! use tresor::{Actor, KdfChoice, Passphrase, SetRequest, Store, UnlockSecret};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("store.tresor");
//! let owner = Actor::direct_owner();
//! let pass = Passphrase::from("correct horse battery staple");
//! let store = Store::create(&path, &pass, &KdfChoice::Insecure, &owner)?;
//! store.set(&owner, "github-pat", SetRequest { value: Some("ghp_example".into()), ..Default::default() })?;
//! drop(store);
//!
//! let store = Store::open(&path)?.unlock(&UnlockSecret::Passphrase(pass), &owner)?;
//! let v = store.get_value(&owner, "github-pat", None, None)?;
//! assert_eq!(v.value.expose(), b"ghp_example");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
mod crypto;
#[cfg(feature = "daemon")]
pub mod daemon;
mod error;
mod format;
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "protocol")]
pub mod ops;
pub mod paths;
mod policy;
#[cfg(feature = "protocol")]
pub mod protocol;
mod store;
// Host facilities the front ends use (file modes, hardening, user names); the core alone
// needs only some of them.
#[cfg_attr(not(any(feature = "cli", feature = "daemon")), allow(dead_code))]
mod sys;
mod types;
#[cfg(any(feature = "cli", feature = "daemon"))]
pub mod unlock;
#[cfg(feature = "upstream")]
pub mod upstream;

#[cfg(feature = "client")]
pub use client::{AsyncClient, Client};
pub use crypto::kdf::KdfParams;
pub use error::{Error, ErrorCode, Result};
#[cfg(feature = "protocol")]
pub use ops::{Api, Local};
pub use store::{
    BundleRequest, CreateOptions, KdfChoice, KeyslotInfo, LockedStore, NewKeyslot, PeerAdmission,
    PeerRoles, PreparedReads, ReadRequest, Store, UnlockSecret, format_1_backups, journal_path,
};
pub use types::*;

/// Air-gapped hosts (SPEC §7): what a program needs to feed a store's inbox or check a bundle's
/// signer without the CLI: the submission envelope and its sealing to a store's recipient, and
/// the parsers of recipients and signing keys. The store side is [`Store::bundle_create`],
/// [`Store::bundle_apply`], [`Store::inbox_key`] and [`Store::inbox_process`].
pub mod airgap {
    pub use crate::crypto::identity::{SIGN_KEY_PREFIX, parse_sign_key};
    pub use crate::format::bundle::{SUBMISSION_MAX, SUBMISSION_TAG, Submission, seal_submission};
    pub use crate::store::inbox_dir;
}

/// Internals for the project's own tests, benchmarks and fuzz targets (feature `test-util`):
/// byte layouts, keys and KDF parameters. Not part of the API.
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod testing {
    pub use crate::crypto::Key;
    pub use crate::crypto::kdf::{INSECURE, derive};
    pub use crate::format::{
        Envelope, FORMAT_VERSION, HEADER_LEN, Header, KeyslotRecord, SLOT_LEN, TableId,
        decode_payload,
    };
    pub use crate::store::{BackendFactory, DEFAULT_CACHE_BYTES};
    pub use crate::sys::{group_id, user_id};
}

//! `tresord`: holds the unlocked store and serves API v1 over a Unix socket (SPEC §5, §6).
//!
//! ```text
//!  accept ─▶ peer uid/gid/pid (kernel) ─▶ principal? ── no ─▶ 401, close (nothing read;
//!                                            │ yes               summarized in the audit log)
//!                    slot (per uid, total, owners' reserve; slots.rs) or wait in the uid's queue
//!                    hyper http1 (header timeout 5 s) ─▶ axum Router (routes.rs)
//!                                            │
//!      routes.rs: Caller ─▶ decode the ops:: request ─▶ Operation::apply ─▶ JSON / error
//!      admin.rs: status, unlock, lock (the session, not the store)
//!      value reads ─▶ batch.rs committer thread ─▶ Store::read_batch (group commit)
//! ```
//!
//! [`run`] is the library entry point that tests start in-process on a temp socket;
//! [`main_with_args`] is the whole daemon (`tresord`, `tresor daemon`): socket, store, signals.

mod admin;
mod args;
mod backup;
mod batch;
mod http;
mod inbox;
mod probe;
mod refresh;
mod refusals;
mod retention;
mod routes;
mod serve;
mod session;
mod slots;
mod socket;
mod state;
mod witness;

use std::sync::Arc;
use std::time::Duration;

pub use args::{DaemonArgs, LogFormat, main_with_args};
pub use routes::{OPENAPI, ROUTES};
pub use serve::run;
pub use socket::{BoundSocket, bind};

use crate::store::{LockedStore, Store};

/// The store the daemon starts with.
pub enum Opened {
    /// Locked: only status and unlock are served until an owner unlocks it.
    Locked(LockedStore),
    /// Unlocked.
    Unlocked(Box<Store>),
}

impl From<Store> for Opened {
    fn from(s: Store) -> Self {
        Self::Unlocked(Box::new(s))
    }
}

impl From<LockedStore> for Opened {
    fn from(s: LockedStore) -> Self {
        Self::Locked(s)
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Locked(_) => "Opened::Locked",
            Self::Unlocked(_) => "Opened::Unlocked",
        })
    }
}

/// How the daemon runs.
#[derive(Debug)]
pub struct Config {
    /// The store.
    pub store: Opened,
    /// Lock after this long without a request.
    pub idle_lock: Option<Duration>,
    /// The most connections served at once; an eighth of them are kept for owners, and one
    /// uid is served on at most a quarter. Further connections of a known uid wait (up to
    /// four times that many; beyond, 429); unknown peers are closed at once.
    pub max_connections: usize,
    /// Commit the audit records of concurrent reads together (SPEC §3). Off only to measure
    /// what it buys.
    pub group_commit: bool,
    /// Make value reads' audit records durable in the audit journal (`<store>.journal`, one
    /// synced append per batch) instead of by a durable commit of the store. Off only to
    /// measure what it buys (`--without audit-journal`).
    pub audit_journal: bool,
    /// Commit a value read on its own task when nothing else is queued or committing
    /// (`batch.rs`). Off only to measure what it buys (`--without idle-commit`).
    pub idle_commit: bool,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a whole request (body and handling) may take.
    pub request_timeout: Duration,
    /// Append each new head of the audit chain to this file (`--audit-head-file`).
    pub audit_head_file: Option<std::path::PathBuf>,
    /// Prune audit records older than this, at start and hourly (`--audit-retention`).
    pub audit_retention: Option<Duration>,
}

impl Config {
    /// The defaults: no idle lock, 256 connections, group commit and audit journal on, 5 s /
    /// 30 s timeouts.
    pub fn new(store: impl Into<Opened>) -> Self {
        Self {
            store: store.into(),
            idle_lock: None,
            max_connections: 256,
            group_commit: true,
            audit_journal: true,
            idle_commit: true,
            header_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            audit_head_file: None,
            audit_retention: None,
        }
    }
}

fn session_of(o: Opened) -> session::Session {
    match o {
        Opened::Locked(l) => session::Session::Locked(Arc::new(l)),
        Opened::Unlocked(s) => session::Session::Unlocked(Arc::new(*s)),
    }
}

//! The store as the daemon holds it (locked, unlocked, or between the two), shared by the
//! handlers and the committer thread. Knows nothing of either.

use std::sync::{Arc, PoisonError, RwLock};

use crate::error::{Error, Result};
use crate::store::{LockedStore, Store};

/// The store as the daemon holds it. `Busy` is the moment between taking an unlocked store
/// out (to lock it) and putting the locked one back; requests then see `locked`.
pub(crate) enum Session {
    Locked(Arc<LockedStore>),
    Unlocked(Arc<Store>),
    Busy,
}

/// The session, shared by the handlers and the committer thread.
pub(crate) struct SessionCell {
    session: RwLock<Session>,
    /// Whether an unlocked store journals its read records (`Config::audit_journal`).
    journal: bool,
}

impl SessionCell {
    pub(crate) fn new(s: Session, journal: bool) -> Self {
        if let (Session::Unlocked(store), true) = (&s, journal) {
            enable_journal(store);
        }
        Self {
            session: RwLock::new(s),
            journal,
        }
    }

    /// Serves `store`, unlocked.
    pub(crate) fn unlocked(&self, store: Store) {
        if self.journal {
            enable_journal(&store);
        }
        *self.write() = Session::Unlocked(Arc::new(store));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Session> {
        self.session.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Session> {
        self.session.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The unlocked store, or `Locked`.
    pub(crate) fn store(&self) -> Result<Arc<Store>> {
        match &*self.read() {
            Session::Unlocked(s) => Ok(Arc::clone(s)),
            _ => Err(Error::Locked),
        }
    }

    /// The locked store, when locked.
    pub(crate) fn locked(&self) -> Option<Arc<LockedStore>> {
        match &*self.read() {
            Session::Locked(l) => Some(Arc::clone(l)),
            _ => None,
        }
    }

    /// The store id, in any state but `Busy`.
    pub(crate) fn store_id(&self) -> String {
        match &*self.read() {
            Session::Locked(l) => l.store_id(),
            Session::Unlocked(s) => s.store_id(),
            Session::Busy => String::new(),
        }
    }

    /// `Some` while the store is degraded (its last write failed on the disk).
    pub(crate) fn degraded(&self) -> Option<crate::store::Degraded> {
        match &*self.read() {
            Session::Locked(l) => l.degraded(),
            Session::Unlocked(s) => s.degraded(),
            Session::Busy => None,
        }
    }

    /// Drops whatever store is held (keys are wiped as the last reference goes).
    pub(crate) fn clear(&self) {
        *self.write() = Session::Busy;
    }
}

/// Turns the audit journal on (value reads' records made durable by one synced append;
/// `store/journal.rs`). When it cannot be created, reads commit durably, as without it.
fn enable_journal(store: &Store) {
    if let Err(e) = store.enable_journal() {
        tracing::warn!(error = %e, "no audit journal; every read batch commits durably");
    }
}

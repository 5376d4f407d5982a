//! The daemon's shared state: the session (see `session.rs`), unlock backoff, idle lock, and
//! who may talk to the daemon while the store is locked.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::batch::Batcher;
use super::refusals::Refusals;
use super::session::{Session, SessionCell};
use crate::error::{Error, Result};
use crate::store::{PeerRoles, Store, UnlockSecret};
use crate::types::{Action, Actor, AuditEntry, Outcome, Passphrase, Role};

/// Failed unlocks allowed before backoff starts.
const FREE_ATTEMPTS: u32 = 3;
/// The longest wait between unlock attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Unlock backoff: after [`FREE_ATTEMPTS`] failures, each attempt must wait 1 s, 2 s, 4 s, ...
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    fn wait(&self, now: Instant) -> Option<Duration> {
        self.not_before
            .filter(|t| *t > now)
            .map(|t| t.duration_since(now))
    }

    fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= FREE_ATTEMPTS {
            let exp = (self.failures - FREE_ATTEMPTS).min(16);
            let wait = Duration::from_secs(1u64 << exp).min(MAX_BACKOFF);
            self.not_before = Some(now + wait);
        }
    }
}

/// Settings and state shared by every connection.
pub(crate) struct State {
    pub cell: Arc<SessionCell>,
    pub batcher: Batcher,
    pub idle_lock: Option<Duration>,
    since: Mutex<jiff::Timestamp>,
    last_activity: Mutex<Instant>,
    /// Peers that may connect while locked, from the last unlocked session.
    locked_peers: Mutex<PeerRoles>,
    /// Refused connections and requests not yet in the audit log.
    pub refusals: Refusals,
    backoff: tokio::sync::Mutex<Backoff>,
    daemon_uid: u32,
    /// Where new audit heads are appended (`--audit-head-file`).
    pub witness: Option<Arc<super::witness::Witness>>,
}

impl State {
    pub(crate) fn new(
        cell: Arc<SessionCell>,
        batcher: Batcher,
        idle_lock: Option<Duration>,
    ) -> Self {
        let s = Self {
            cell,
            batcher,
            idle_lock,
            since: Mutex::new(crate::sys::now()),
            last_activity: Mutex::new(Instant::now()),
            locked_peers: Mutex::new(PeerRoles::default()),
            refusals: Refusals::default(),
            backoff: tokio::sync::Mutex::new(Backoff::default()),
            daemon_uid: rustix::process::geteuid().as_raw(),
            witness: None,
        };
        if let Ok(store) = s.cell.store() {
            s.remember_peers(&store);
        }
        s
    }

    pub(crate) fn since(&self) -> jiff::Timestamp {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks activity (for the idle lock): called for authenticated requests only.
    pub(crate) fn touch(&self) {
        *self
            .last_activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    pub(crate) fn last_activity(&self) -> Instant {
        *self
            .last_activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The role a peer has while the store is locked: the daemon's own uid and root are
    /// owners; other principals of the last session keep their role; anyone else is unknown.
    pub(crate) fn locked_role(&self, uid: u32, gid: u32) -> Option<Role> {
        if uid == self.daemon_uid || uid == 0 {
            return Some(Role::Owner);
        }
        self.locked_peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .role(uid, gid)
    }

    /// Writes the pending summaries of refused connections to the audit log of `store`
    /// (SPEC §3); when that fails they stay pending.
    pub(crate) async fn flush_refusals(&self, store: &Arc<Store>) {
        let batch = self.refusals.take();
        if batch.is_empty() {
            return;
        }
        let entries = batch.entries();
        let store = Arc::clone(store);
        let written =
            tokio::task::spawn_blocking(move || entries.iter().try_for_each(|e| store.record(e)))
                .await
                .map_err(|e| Error::internal("the audit task failed", e))
                .and_then(|r| r);
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot record refused connections; kept for later");
            self.refusals.restore(batch);
        }
    }

    /// Remembers the uids of the store's principals, for the locked state.
    pub(crate) fn remember_peers(&self, store: &Store) {
        let Ok(map) = store.peer_roles() else {
            return;
        };
        *self
            .locked_peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = map;
    }

    /// Unlocks with a passphrase, serialized and rate limited. Failures are staged by the
    /// store (SPEC §3).
    pub(crate) async fn unlock(&self, actor: Actor, pass: Passphrase) -> Result<()> {
        let mut backoff = self.backoff.lock().await;
        if let Some(wait) = backoff.wait(Instant::now()) {
            // Refused without being tried, and staged for the audit log all the same.
            if let Some(locked) = self.cell.locked() {
                let staged =
                    tokio::task::spawn_blocking(move || locked.stage_refused(&actor)).await;
                if !matches!(staged, Ok(Ok(()))) {
                    tracing::error!("cannot stage an unlock attempt refused during backoff");
                }
            }
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            return Err(Error::TooManyRequests { retry_after_ms: ms });
        }
        let Some(locked) = self.cell.locked() else {
            return match self.cell.store() {
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
        };
        let result = tokio::task::spawn_blocking(move || {
            locked.unlock(&UnlockSecret::Passphrase(pass), &actor)
        })
        .await
        .map_err(|e| Error::internal("the unlock task failed", e))?;
        match result {
            Ok(store) => {
                *backoff = Backoff::default();
                self.remember_peers(&store);
                self.cell.unlocked(store);
                self.set_since();
                self.touch();
                tracing::info!("store unlocked");
                Ok(())
            }
            Err(e) => {
                if matches!(e, Error::WrongPassphrase) {
                    backoff.failed(Instant::now());
                }
                tracing::warn!(error = %e, "unlock failed");
                Err(e)
            }
        }
    }

    fn set_since(&self) {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = crate::sys::now();
    }

    /// Locks: records `lock`, waits for in-flight users of the store to finish, then drops
    /// every key. `actor` is `None` for the idle lock.
    pub(crate) async fn lock(&self, actor: Option<&Actor>) -> Result<()> {
        let taken = {
            let mut s = self.cell.write();
            match std::mem::replace(&mut *s, Session::Busy) {
                Session::Unlocked(store) => store,
                other => {
                    *s = other;
                    return Ok(());
                }
            }
        };
        // Long polls (`GET /v1/watch`) answer now instead of holding the store.
        taken.close_watches();
        self.flush_refusals(&taken).await;
        let who = actor.cloned().unwrap_or_else(Actor::daemon);
        let entry = AuditEntry::new(&who, Action::Lock, Outcome::Ok).named(if actor.is_some() {
            "lock"
        } else {
            "idle lock"
        });
        let for_audit = Arc::clone(&taken);
        let recorded = tokio::task::spawn_blocking(move || for_audit.record(&entry))
            .await
            .map_err(|e| Error::internal("the lock task failed", e))
            .and_then(|r| r);
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record the lock; locking anyway");
        }
        let mut store = taken;
        let store = loop {
            match Arc::try_unwrap(store) {
                Ok(s) => break s,
                Err(still) => {
                    store = still;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        // The roles peers keep while locked are read now, after every in-flight request (a
        // principal change among them) has finished.
        self.remember_peers(&store);
        *self.cell.write() = Session::Locked(Arc::new(store.lock()));
        self.set_since();
        tracing::info!(idle = actor.is_none(), "store locked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_three_failures_and_doubles() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        b.failed(t0);
        b.failed(t0);
        assert_eq!(b.wait(t0), None);
        b.failed(t0);
        assert_eq!(b.wait(t0), Some(Duration::from_secs(1)));
        b.failed(t0);
        assert_eq!(b.wait(t0), Some(Duration::from_secs(2)));
        assert_eq!(b.wait(t0 + Duration::from_secs(3)), None);
    }
}

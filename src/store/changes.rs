//! Change notification for watchers (`GET /v1/watch`, `run --watch`): a generation number that
//! moves whenever a secret's value or versions change (set, import, rollback, delete, an
//! upstream refresh), and a condition variable to wait on it. Value reads and metadata reads
//! do not move it, so a watcher is not woken by the traffic it watches.
//!
//! The generation starts at the unlock time in microseconds, so that a generation from another
//! session (a daemon restarted meanwhile) differs from every one of this session and a watcher
//! holding it is answered at once.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Store;

/// The generation and its waiters.
#[derive(Debug)]
pub(crate) struct Changes {
    state: Mutex<(u64, bool)>,
    moved: Condvar,
}

impl Changes {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new((super::records::now_us().cast_unsigned(), false)),
            moved: Condvar::new(),
        }
    }
}

impl Store {
    /// Marks a committed change of secrets: wakes every watcher.
    pub(super) fn changed(&self) {
        let mut s = self
            .changes
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.0 = s.0.wrapping_add(1);
        drop(s);
        self.changes.moved.notify_all();
    }

    /// The current change generation.
    pub fn change_generation(&self) -> u64 {
        self.changes
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Waits until the generation differs from `since`, `timeout` passes, or watches are
    /// closed ([`Store::close_watches`]); returns the generation then.
    pub fn wait_for_change(&self, since: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut s = self
            .changes
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while s.0 == since && !s.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .changes
                .moved
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        s.0
    }

    /// Answers every watcher now and every later one at once: the store is about to be locked
    /// or the daemon to stop, and a long poll must not hold either up.
    pub fn close_watches(&self) {
        self.changes
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1 = true;
        self.changes.moved.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_change_wakes_a_waiter_and_a_timeout_ends_the_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            Store::create(
                &dir.path().join("s.tresor"),
                &crate::Passphrase::from("pass"),
                &crate::store::KdfChoice::Insecure,
                &crate::Actor::direct_owner(),
            )
            .expect("create"),
        );
        let g0 = store.change_generation();
        let t = Instant::now();
        assert_eq!(store.wait_for_change(g0, Duration::from_millis(50)), g0);
        assert!(t.elapsed() >= Duration::from_millis(50));
        let waiter = {
            let store = Arc::clone(&store);
            std::thread::spawn(move || store.wait_for_change(g0, Duration::from_secs(20)))
        };
        std::thread::sleep(Duration::from_millis(50));
        store.changed();
        assert_ne!(waiter.join().expect("join"), g0);
        let g1 = store.change_generation();
        store.close_watches();
        let t = Instant::now();
        assert_eq!(store.wait_for_change(g1, Duration::from_secs(20)), g1);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

//! Connection slots (SPEC §5, §9): a total cap, a cap per uid, and a reserve only owners may
//! use, so that one uid, known or not, cannot starve the others. Unknown peers never get here:
//! they are closed as soon as their credentials are read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// Why a connection gets no slot and must not wait for one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct QueueFull {
    /// The cap per uid.
    pub per_uid: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Served connections by uid.
    by_uid: HashMap<u32, usize>,
    /// Connections waiting for a slot, by uid.
    waiting: HashMap<u32, usize>,
}

/// The daemon's connection slots.
pub(crate) struct Slots {
    max: usize,
    reserve: usize,
    per_uid: usize,
    counts: Mutex<Counts>,
    freed: Notify,
}

/// A served connection's slot, given back on drop.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut c = self.slots.lock();
            c.total = c.total.saturating_sub(1);
            dec(&mut c.by_uid, self.uid);
        }
        self.slots.freed.notify_waiters();
    }
}

fn dec(map: &mut HashMap<u32, usize>, uid: u32) {
    if let Some(n) = map.get_mut(&uid) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&uid);
        }
    }
}

impl Slots {
    /// `max` connections in all; an eighth of them kept for owners; a quarter (at least one)
    /// for any one uid.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(Self {
            max,
            reserve: max / 8,
            per_uid: (max / 4).max(1),
            counts: Mutex::new(Counts::default()),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_take(self: &Arc<Self>, uid: u32, owner: bool) -> Option<Slot> {
        let mut c = self.lock();
        let pool = if owner {
            self.max
        } else {
            self.max - self.reserve
        };
        let mine = c.by_uid.get(&uid).copied().unwrap_or(0);
        if c.total >= pool || mine >= self.per_uid {
            return None;
        }
        c.total += 1;
        *c.by_uid.entry(uid).or_default() += 1;
        Some(Slot {
            slots: Arc::clone(self),
            uid,
        })
    }

    /// A slot now, or a place in the queue of `uid` (at most four times its cap may wait).
    ///
    /// # Errors
    /// `QueueFull` when that many connections of `uid` already wait.
    pub(crate) fn admit(self: &Arc<Self>, uid: u32, owner: bool) -> Result<Ticket, QueueFull> {
        if let Some(s) = self.try_take(uid, owner) {
            return Ok(Ticket::Ready(s));
        }
        let mut c = self.lock();
        let waiting = c.waiting.entry(uid).or_default();
        if *waiting >= self.per_uid.saturating_mul(4) {
            return Err(QueueFull {
                per_uid: self.per_uid,
            });
        }
        *waiting += 1;
        Ok(Ticket::Queued(Waiter {
            slots: Arc::clone(self),
            uid,
            owner,
        }))
    }
}

/// What [`Slots::admit`] gives: a slot, or a place in the queue.
pub(crate) enum Ticket {
    Ready(Slot),
    Queued(Waiter),
}

/// A connection waiting for a slot; leaves the queue on drop.
pub(crate) struct Waiter {
    slots: Arc<Slots>,
    uid: u32,
    owner: bool,
}

impl Waiter {
    /// Waits until a slot is free.
    pub(crate) async fn slot(self) -> Slot {
        loop {
            let freed = self.slots.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(s) = self.slots.try_take(self.uid, self.owner) {
                return s;
            }
            freed.await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        dec(&mut self.slots.lock().waiting, self.uid);
    }
}

impl Ticket {
    /// The slot, waiting for it if queued.
    pub(crate) async fn slot(self) -> Slot {
        match self {
            Self::Ready(s) => s,
            Self::Queued(w) => w.slot().await,
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so that connections waiting for a
/// slot (and those refused at once) do not make `accept` fail with EMFILE. Best effort.
pub(crate) fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    if l.current.is_some() && l.current != l.maximum {
        let raised = Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "cannot raise the open-file limit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_is_capped_and_owners_keep_a_reserve() {
        let slots = Slots::new(16);
        let member: Vec<_> = (0..4).filter_map(|_| slots.try_take(1000, false)).collect();
        assert_eq!(member.len(), 4, "a quarter per uid");
        assert!(slots.try_take(1000, false).is_none());
        let others: Vec<_> = (1001..1011)
            .filter_map(|u| slots.try_take(u, false))
            .collect();
        assert_eq!(others.len(), 10, "non-owners stop at 14 of 16");
        assert!(
            slots.try_take(2000, true).is_some(),
            "an owner uses the reserve"
        );
        drop(member);
        assert!(
            slots.try_take(1000, false).is_some(),
            "a slot comes back on drop"
        );
    }

    #[test]
    fn the_queue_of_a_uid_is_bounded() {
        let slots = Slots::new(4);
        let _served = slots.admit(7, false).expect("a slot");
        let queued: Vec<_> = (0..4).map(|_| slots.admit(7, false)).collect();
        assert!(queued.iter().all(Result::is_ok));
        assert!(matches!(
            slots.admit(7, false),
            Err(QueueFull { per_uid: 1 })
        ));
        drop(queued);
        assert!(
            slots.admit(7, false).is_ok(),
            "leaving the queue frees a place"
        );
    }
}

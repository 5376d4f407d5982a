//! Refused connections and requests (unknown uid, unknown or empty bearer token, a token used
//! from the wrong uid), summarized per uid (SPEC §3): the daemon writes at most one audit record
//! per uid per minute, carrying the count and the first and last time, and logs at most one
//! line per uid per minute.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;

use super::http::Peer;
use crate::types::{Action, AuditEntry, Channel, Outcome};

/// How often summaries are written, and how often a uid's refusals are logged.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Uids summarized at once; refusals of further uids are counted together.
const MAX_UIDS: usize = 4096;

struct Summary {
    count: u64,
    first: Timestamp,
    last: Timestamp,
    gid: u32,
    pid: u32,
    exe: Option<String>,
    reason: String,
    /// Refusals since the last log line, and when that line was written.
    unlogged: u64,
    logged: tokio::time::Instant,
}

/// Refusals not yet written to the audit log.
#[derive(Default)]
pub(crate) struct Refusals {
    pending: Mutex<HashMap<u32, Summary>>,
}

impl Refusals {
    /// Counts one refusal of `peer`, logging it when this uid was not logged in the last
    /// [`WINDOW`]. Returns whether it logged.
    pub(crate) fn note(&self, peer: &Peer, reason: &str) -> bool {
        let now = crate::sys::now();
        let tick = tokio::time::Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let uid = if pending.len() >= MAX_UIDS && !pending.contains_key(&peer.uid) {
            u32::MAX
        } else {
            peer.uid
        };
        let s = pending.entry(uid).or_insert_with(|| Summary {
            count: 0,
            first: now,
            last: now,
            gid: peer.gid,
            pid: peer.pid,
            exe: None,
            reason: String::new(),
            unlogged: 0,
            logged: tick.checked_sub(WINDOW).unwrap_or(tick),
        });
        s.count += 1;
        s.last = now;
        s.gid = peer.gid;
        s.pid = peer.pid;
        s.exe.clone_from(&peer.exe);
        reason.clone_into(&mut s.reason);
        s.unlogged += 1;
        if tick.duration_since(s.logged) >= WINDOW {
            tracing::warn!(
                uid = peer.uid,
                pid = peer.pid,
                refused = s.unlogged,
                reason,
                "connections refused (logged at most once a minute per uid)"
            );
            s.unlogged = 0;
            s.logged = tick;
            return true;
        }
        false
    }

    /// Takes every pending summary.
    pub(crate) fn take(&self) -> Batch {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut v: Vec<(u32, Summary)> = pending.into_iter().collect();
        v.sort_by_key(|(uid, s)| (s.first, *uid));
        Batch(v)
    }

    /// Logs the summaries that cannot be written because the daemon stops while locked.
    pub(crate) fn log_unwritten(&self) {
        for e in self.take().entries() {
            tracing::warn!(
                uid = e.uid,
                summary = e.name.as_deref().unwrap_or_default(),
                "refused connections not audited: the store is locked"
            );
        }
    }

    /// Puts back summaries that could not be written (the store was locked or the write
    /// failed), merged with what arrived meanwhile.
    pub(crate) fn restore(&self, batch: Batch) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for (uid, old) in batch.0 {
            match pending.get_mut(&uid) {
                Some(s) => {
                    s.count += old.count;
                    s.first = s.first.min(old.first);
                }
                None => {
                    pending.insert(uid, old);
                }
            }
        }
    }
}

/// Summaries taken for writing ([`Refusals::take`]).
pub(crate) struct Batch(Vec<(u32, Summary)>);

impl Batch {
    /// Whether there is nothing to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One audit entry per uid: action `connect`, outcome `denied`, at the first refusal's
    /// time, named with the count, the first and last time and the last reason.
    pub(crate) fn entries(&self) -> Vec<AuditEntry> {
        self.0
            .iter()
            .map(|(uid, s)| AuditEntry {
                time: s.first,
                principal: crate::sys::user_name(*uid).unwrap_or_else(|| format!("uid-{uid}")),
                uid: *uid,
                gid: s.gid,
                pid: s.pid,
                exe: s.exe.clone(),
                action: Action::Connect,
                scope: None,
                name: Some(format!(
                    "{} refused from {} to {}: {}",
                    s.count, s.first, s.last, s.reason
                )),
                version: None,
                outcome: Outcome::Denied,
                channel: Channel::Socket,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32) -> Peer {
        Peer {
            uid,
            gid: uid,
            pid: 1,
            exe: None,
            admission: None,
        }
    }

    /// The refused-connection log line is written at most once per uid per minute; the audit
    /// summary carries every refusal.
    #[tokio::test(start_paused = true)]
    async fn refusals_are_logged_once_a_minute_per_uid_and_all_counted() {
        let r = Refusals::default();
        let logged = (0..1000).filter(|_| r.note(&peer(7), "unknown")).count();
        assert_eq!(logged, 1);
        assert!(r.note(&peer(8), "unknown"), "another uid is logged");
        tokio::time::sleep(WINDOW).await;
        assert!(r.note(&peer(7), "unknown"), "logged again a minute later");
        let batch = r.take();
        let names: Vec<_> = batch.entries().into_iter().filter_map(|e| e.name).collect();
        assert!(
            names.iter().any(|n| n.starts_with("1001 refused from ")),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.starts_with("1 refused from ")),
            "{names:?}"
        );
        r.restore(batch);
        r.note(&peer(7), "unknown");
        assert!(
            r.take()
                .entries()
                .iter()
                .any(|e| e.name.as_deref().is_some_and(|n| n.starts_with("1002 ")))
        );
    }
}
